"""Stored files: ids, relative download paths, and photo-size generation with Pillow."""

from __future__ import annotations

import io
import mimetypes
import secrets
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, UnidentifiedImageError

from sandbox.validation import bad_request

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
THUMB_SIDES = (90, 320, 800)  # Telegram's s/m/x sizes, roughly

_EXT_BY_FORMAT = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}
_FOLDERS = {"photo": "photos", "document": "documents", "sticker": "stickers",
            "voice": "voice", "thumbnail": "thumbnails"}


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
        """Store a photo and its resized variants; returns PhotoSizes smallest first.

        strict applies Telegram's sendPhoto limits (size, w+h, ratio) to bot uploads.
        """
        if strict and len(data) > MAX_PHOTO_BYTES:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                width, height = img.size
                fmt = img.format or "JPEG"
                variants: list[tuple[bytes, int, int]] = []
                longest = max(width, height)
                for side in THUMB_SIDES:
                    if side >= longest:
                        break
                    scale = side / longest
                    size = (max(1, round(width * scale)), max(1, round(height * scale)))
                    small = img.convert("RGB").resize(size)
                    buf = io.BytesIO()
                    small.save(buf, "JPEG", quality=80)
                    variants.append((buf.getvalue(), size[0], size[1]))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise bad_request("IMAGE_PROCESS_FAILED") from exc
        if strict and (width + height > 10000 or max(width, height) > 20 * min(width, height)):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        sizes = [self.add("photo", blob, "image/jpeg", "jpg", width=w, height=h)
                 for blob, w, h in variants]
        ext = _EXT_BY_FORMAT.get(fmt, "jpg")
        mime = Image.MIME.get(fmt, "image/jpeg")
        # The largest size keeps the exact original bytes so downloads round-trip in tests.
        sizes.append(self.add("photo", data, mime, ext, width=width, height=height))
        for s in sizes:
            s.photo_set = sizes
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
