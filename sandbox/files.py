"""Stored files: ids, relative download paths, and photo-size generation with Pillow.

A photo sent as a *photo* (sendPhoto, sendMediaGroup, editMessageMedia, or a user's compressed
photo) is re-encoded as Telegram re-encodes it: every PhotoSize, the largest included, is a fresh
JPEG made from the pixels only, so no EXIF (capture time, GPS, camera), XMP, ICC profile or
comment survives, and a photo the camera turned by an EXIF Orientation tag is stored upright.
A *document* keeps its exact bytes, metadata included, as Telegram keeps a file.
"""

from __future__ import annotations

import io
import mimetypes
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from sandbox.validation import bad_request

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
THUMB_SIDES = (90, 320, 800)  # Telegram's s/m/x sizes, roughly
THUMB_QUALITY = 80
PHOTO_QUALITY = 87  # about what Telegram's own re-encoded photos measure

_FOLDERS = {"photo": "photos", "document": "documents", "sticker": "stickers",
            "voice": "voice", "thumbnail": "thumbnails"}

register_heif_opener()  # Telegram takes an iPhone's HEIC as a photo and stores a JPEG


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    mime_type: str
    file_path: str
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    # For photos: the whole PhotoSize array this file belongs to, so that re-sending by any
    # file_id of the set reproduces the set.
    photo_set: list[StoredFile] = field(default_factory=list, repr=False)
    # For photos: the bytes as the sender uploaded them, before the re-encoding. Telegram does
    # not keep them; the sandbox does, only for its inspection API (GET
    # /_sandbox/files/{file_id}/upload), so a test can check what the bot put on the wire.
    upload: bytes | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    def photo_size(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                "width": self.width or 0, "height": self.height or 0, "file_size": self.size}

    def file_object(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                "file_size": self.size, "file_path": self.file_path}


class FileStore:
    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = 0

    def clear(self) -> None:
        self._by_id.clear()
        self._by_path.clear()
        self._counter = 0

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path.lstrip("/"))

    def add(self, kind: str, data: bytes, mime_type: str, ext: str, *,
            file_name: str | None = None, width: int | None = None,
            height: int | None = None) -> StoredFile:
        self._counter += 1
        n = self._counter
        # Shaped like real ids (opaque, non-numeric) so nobody is tempted to parse them.
        file_id = f"SBX{kind[:3].upper()}{n:06d}{secrets.token_hex(6)}"
        unique = f"AQAD{n:06d}{secrets.token_hex(3)}"
        path = f"{_FOLDERS.get(kind, 'files')}/file_{n}.{ext}"
        stored = StoredFile(file_id, unique, kind, data, mime_type, path, file_name, width,
                            height)
        self._by_id[file_id] = stored
        self._by_path[path] = stored
        return stored

    # ------------------------------------------------------------------------------ photos

    def add_photo(self, data: bytes, *, strict: bool) -> list[StoredFile]:
        """Store a photo as Telegram does; returns PhotoSizes smallest first.

        Every size, the largest (the image's own dimensions) included, is re-encoded as a JPEG
        without metadata (see the module docstring). strict applies Telegram's sendPhoto limits
        (size, w+h, ratio) to bot uploads.
        """
        if strict and len(data) > MAX_PHOTO_BYTES:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                upright = _pixels_only(img)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
                Image.DecompressionBombError) as exc:
            raise bad_request("IMAGE_PROCESS_FAILED") from exc
        width, height = upright.size
        if strict and (width + height > 10000 or max(width, height) > 20 * min(width, height)):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        variants: list[tuple[bytes, int, int]] = []
        longest = max(width, height)
        for side in THUMB_SIDES:
            if side >= longest:
                break
            scale = side / longest
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            variants.append((_jpeg(upright.resize(size), THUMB_QUALITY), size[0], size[1]))
        variants.append((_jpeg(upright, PHOTO_QUALITY), width, height))
        sizes = [self.add("photo", blob, "image/jpeg", "jpg", width=w, height=h)
                 for blob, w, h in variants]
        for s in sizes:
            s.photo_set = sizes
            s.upload = data
        return sizes

    def add_document(self, data: bytes, file_name: str | None, content_type: str | None
                     ) -> StoredFile:
        if len(data) > MAX_UPLOAD_BYTES:
            raise bad_request("file is too big")
        mime = content_type or ""
        if not mime or mime == "application/octet-stream":
            guessed = mimetypes.guess_type(file_name or "")[0]
            mime = guessed or "application/octet-stream"
        ext = (file_name or "").rsplit(".", 1)[-1] if file_name and "." in file_name else "bin"
        return self.add("document", data, mime, ext[:8] or "bin", file_name=file_name)


def _pixels_only(img: Image.Image) -> Image.Image:
    """The picture upright, as RGB on white (a transparent PNG's background), with nothing of
    the original file's metadata: a new image holds only pixels."""
    try:
        turned = ImageOps.exif_transpose(img) or img
    except (SyntaxError, ValueError, OSError, KeyError, TypeError, struct.error):
        turned = img  # unreadable EXIF: shown as stored, like a phone that ignores it
    if turned.mode in ("RGBA", "LA", "PA") or (turned.mode == "P"
                                                 and "transparency" in turned.info):
        rgba = turned.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    out = turned.convert("RGB")
    out.info.clear()
    return out


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)  # no exif=, icc_profile=, comment=: none is written
    return buf.getvalue()


def document_dict(f: StoredFile) -> dict[str, Any]:
    out: dict[str, Any] = {"file_id": f.file_id, "file_unique_id": f.file_unique_id,
                           "file_size": f.size, "mime_type": f.mime_type}
    if f.file_name:
        out["file_name"] = f.file_name
    return out


def guess_document_name(filename: str | None, content_type: str | None) -> str:
    if filename and filename != "application.octet-stream":
        return filename
    ext = mimetypes.guess_extension(content_type or "") or ".bin"
    return f"file{ext}"
