"""The content-addressed store of sanitised photos, written off the event loop."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bot.media.capture import CaptureTime, capture_time
from bot.media.jobs import run_image_job
from bot.media.phash import perceptual_hash
from bot.media.sanitize import DEFAULT_LIMITS, ImageLimits, decode, encode_jpeg

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StoredImage:
    sha256: str  # of the stored, normalized JPEG bytes
    width: int
    height: int
    size: int  # bytes of the stored file
    phash: int  # unsigned 64-bit dHash; see perceptual_hash()
    relpath: str  # POSIX path relative to the MediaStore root, e.g. "ab/cd/<sha>.jpg"
    # When the camera took it (EXIF, read from the upload before it was stripped); None: the
    # upload carried no capture time (Telegram drops EXIF from photos not sent as a file).
    captured: CaptureTime | None = None



class MediaStore:
    """Normalized JPEGs on disk at ``<root>/ab/cd/<sha256>.jpg``.

    Files are immutable and named by the hash of their bytes, so writes are idempotent and
    concurrent writers of the same image are harmless (both os.replace identical content).
    """

    def __init__(self, root: Path, limits: ImageLimits = DEFAULT_LIMITS) -> None:
        self.root = Path(root)
        self.limits = limits

    @staticmethod
    def relpath(sha: str) -> str:
        if not _SHA256_RE.fullmatch(sha):
            # The sha may come from callback data or the DB; never let it build a path
            # like "../../etc".
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return f"{sha[:2]}/{sha[2:4]}/{sha}.jpg"

    def path(self, sha: str) -> Path:
        return self.root / self.relpath(sha)

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def read(self, sha: str) -> bytes:
        """Stored bytes; raises FileNotFoundError if absent."""
        return self.path(sha).read_bytes()

    def put(self, raw: bytes) -> StoredImage:
        """Verify, normalize and store an upload. Raises :class:`ImageRejected`.

        Every check runs before anything touches the disk, and the file appears under its
        final name only complete (temp file + fsync + os.replace), so a rejection or a
        crash never leaves a half-written image behind.
        """
        img = decode(raw, self.limits)
        data = encode_jpeg(img, self.limits.jpeg_quality)
        sha = hashlib.sha256(data).hexdigest()
        stored = StoredImage(
            sha256=sha,
            width=img.width,
            height=img.height,
            size=len(data),
            # Hash the pixels we store (not the upload), so duplicates are compared on the
            # same footing whatever format or size they arrived in.
            phash=perceptual_hash(img),
            relpath=self.relpath(sha),
            captured=capture_time(raw),
        )
        target = self.root / stored.relpath
        if not target.is_file():
            self._write_atomic(target, data)
        return stored

    async def aput(self, raw: bytes) -> StoredImage:
        """:meth:`put` off the event loop, bounded by the shared image-job semaphore."""
        return await run_image_job(self.put, raw)

    @staticmethod
    def _write_atomic(target: Path, data: bytes) -> None:
        write_atomic(target, data, prefix=".tmp-", suffix=".jpg")


def write_atomic(target: Path, data: bytes, *, prefix: str = "tmp", suffix: str = ".tmp") -> None:
    """Write `data` to `target` so that the file appears under its name only complete (temp
    file + fsync + os.replace); a failure leaves nothing behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target, so os.replace is an atomic rename on one filesystem.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        # BaseException: a cancelled task or KeyboardInterrupt must not leave litter.
        Path(tmp_name).unlink(missing_ok=True)
        raise
