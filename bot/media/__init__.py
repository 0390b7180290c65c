"""Images: decoding, stamps, pictures. Pillow reads HEIC (an iPhone's photo sent as a file)
through libheif once pillow-heif registers its opener, here, before any module of the package
opens an image; bot/media/sanitize.py still lets only the formats it sniffs through."""

from pillow_heif import register_heif_opener

register_heif_opener()
