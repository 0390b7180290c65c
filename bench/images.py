"""Time bot.media.sanitize.normalize() on a generated phone-sized JPEG.

    .venv/bin/python bench/images.py            # 12 MP (4032x3024), 5 runs
    .venv/bin/python bench/images.py --mp 48 -n 3

Reports CPU time per image and the process's peak RSS, to size IMAGE_JOB_SLOTS and the
container's memory. Output goes to stdout: this is a command-line tool.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.media.phash import perceptual_hash
from bot.media.sanitize import normalize


def phone_photo(megapixels: float) -> bytes:
    """A 4:3 JPEG with photo-like detail (noise + shapes), so the encoder does real work;
    a flat gradient would compress trivially and flatter the numbers."""
    width = int(math.sqrt(megapixels * 1e6 * 4 / 3))
    height = width * 3 // 4
    rng = random.Random(0)
    base = Image.effect_noise((width // 4, height // 4), 64).convert("RGB")
    img = base.resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(200):
        x, y = rng.randrange(width), rng.randrange(height)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + rng.randrange(50, 600), y + rng.randrange(50, 600)), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(1))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def peak_rss_mb() -> float:
    # VmHWM belongs to this process image only; ru_maxrss is carried over from the parent
    # across fork/exec on Linux and would report the memory used to generate the photo.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(raw: bytes, runs: int) -> None:
    cpu, wall = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        out, width, height = normalize(raw)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    t0 = time.perf_counter()
    perceptual_hash(out)
    phash_s = time.perf_counter() - t0
    rss_peak = peak_rss_mb()

    print(f"output: {width}x{height} JPEG, {len(out) / 1e3:.0f} kB")
    print(
        f"normalize: {min(wall):.3f} s best, {sum(wall) / len(wall):.3f} s mean wall; "
        f"{sum(cpu) / len(cpu):.3f} s CPU per image"
    )
    print(f"perceptual_hash(stored bytes), incl. decode: {phash_s * 1000:.1f} ms")
    print(f"peak RSS of a process that only normalizes: {rss_peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mp", type=float, default=12.2, help="megapixels (default 12.2)")
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()

    if args.input is not None:
        measure(args.input.read_bytes(), args.runs)
        return

    raw = phone_photo(args.mp)
    size = Image.open(io.BytesIO(raw)).size
    print(f"input: {size[0]}x{size[1]} JPEG, {len(raw) / 1e6:.1f} MB")
    # Generating the test photo needs far more memory than normalizing it; measure in a
    # fresh process so peak RSS reflects normalize() alone.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        path.write_bytes(raw)
        cmd = [sys.executable, __file__, "--input", str(path), "--runs", str(args.runs)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
