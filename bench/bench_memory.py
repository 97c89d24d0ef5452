"""Peak memory of colorize-batch against the number of photos, on photos of many sizes.

Memory must be bounded by the largest photo in flight, not by the number of files: a run over 8k
photos should peak within 10 % of a run over 1k. The set is made from real photos (default: the
held-out ``../shared/data`` sets, never copied into the project): each photo turned gray and resized
to a random size (long side 200-800 px, its own aspect), saved as PNG in a cache folder; the 1k run
reads those, the 8k run the same files eight times over (symlinks in eight folders). Each run is a
fresh ``colorize-batch`` process; its peak RSS (VmHWM) is sampled from /proc as it runs, with the
RSS against files done, so growth shows as a slope.

    python bench/bench_memory.py                       # 1k and 8k, PNG out
    python bench/bench_memory.py --counts 1000 4000 --format jpeg

With ``--large``, one synthetic photo a run instead (gray noise over gradients, made in the cache folder
and removed after): its peak RSS and time against the memory the run judges it to need from its header
(``pipeline.stages.memory_needed``, what ``--max-memory`` is compared with). Same format out as in.

    python bench/bench_memory.py --large 150:jpeg 192:png 192:tiff16 100:tiff16rgb
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCES = [ROOT.parent / "shared" / "data" / d for d in ("bsds500/test", "bsds500/val", "imagenette-224/val")]


def varied_set(sources: list[Path], count: int, cache: Path, seed: int = 0) -> list[Path]:
    """``count`` gray PNGs of random sizes made from the photos under ``sources`` (made once, cached)."""
    cache.mkdir(parents=True, exist_ok=True)
    made = sorted(cache.glob("*.png"))
    if len(made) >= count:
        return made[:count]
    photos = sorted(p for s in sources for p in s.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not photos:
        sys.exit(f"no photos under {', '.join(map(str, sources))}")
    rng = np.random.default_rng(seed)
    for i in range(count):
        with Image.open(photos[i % len(photos)]) as im:
            gray = im.convert("L")
        long_side = int(rng.integers(200, 801))
        scale = long_side / max(gray.size)
        size = (max(16, round(gray.width * scale)), max(16, round(gray.height * scale)))
        gray.resize(size, Image.Resampling.LANCZOS).save(cache / f"v{i:05d}.png")
    return sorted(cache.glob("*.png"))[:count]


def input_tree(base: list[Path], count: int, folder: Path) -> Path:
    """``count`` inputs: the base photos repeated (symlinks), ``len(base)`` per subfolder."""
    for i in range(count):
        sub = folder / f"set{i // len(base):02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / base[i % len(base)].name).symlink_to(base[i % len(base)])
    return folder


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run(inputs: Path, output: Path, fmt: str, extra: list[str]) -> dict:
    """One colorize-batch process: its peak RSS, time, and RSS sampled against outputs written."""
    cmd = [sys.executable, "-m", "colorizer.desktop.cli", str(inputs), "-o", str(output), "--recursive",
           "--format", fmt, "--report", str(output / "report.json"), *extra]
    start = time.perf_counter()
    log = output.parent / "colorize-batch.log"  # a file, not a pipe: a full pipe would block the run's progress bar
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    peak, samples, next_sample = 0, [], start
    while proc.poll() is None:
        hwm = _status_kb(proc.pid, "VmHWM")
        peak = max(peak, hwm or 0)
        if time.perf_counter() >= next_sample:
            rss = _status_kb(proc.pid, "VmRSS")
            done = sum(1 for _ in output.rglob(f"*.{fmt if fmt != 'jpeg' else 'jpg'}")) if output.exists() else 0
            if rss:
                samples.append((done, rss / 1024))
            next_sample += 5.0
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    stderr = log.read_text(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"colorize-batch failed (exit {proc.returncode}):\n{stderr[-2000:]}")
    report = json.loads((output / "report.json").read_text())
    done = sum(1 for f in report["files"] if f["status"] == "done")
    return {"files": len(report["files"]), "done": done, "seconds": seconds, "peak_mb": peak / 1024,
            "samples": samples}


LARGE_KINDS = ("jpeg", "png", "tiff16", "tiff16rgb")


def large_photo(megapixels: float, kind: str, folder: Path, seed: int = 0) -> Path:
    """A 4:3 photo of about ``megapixels``: 8-bit gray JPEG or PNG, 16-bit gray TIFF, or 16-bit RGB TIFF
    (sepia-toned), with EXIF-like tags; rows are made a band at a time (the making stays small)."""
    import tifffile

    height = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    width = int(height * 4 / 3)
    rng = np.random.default_rng(seed)
    deep = kind.startswith("tiff16")
    gray = np.empty((height, width), np.uint16 if deep else np.uint8)
    x = np.linspace(0, 1, width, dtype=np.float32)
    for y0 in range(0, height, 1024):
        rows = (np.arange(y0, min(height, y0 + 1024), dtype=np.float32) / height)[:, None]
        band = 0.2 + 0.5 * x * (1 - rows) + 0.2 * np.sin(rows * 20) + rng.normal(0, 0.05, (len(rows), width))
        gray[y0 : y0 + len(rows)] = np.clip(band, 0, 1) * (65535 if deep else 255)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"large_{megapixels:g}mp.{ {'jpeg': 'jpg', 'png': 'png'}.get(kind, 'tif') }"
    if kind == "tiff16rgb":
        rgb = np.empty((height, width, 3), np.uint16)
        for c, tone in enumerate((1.0, 0.9, 0.75)):
            np.multiply(gray, tone, out=rgb[..., c], casting="unsafe")
        del gray
        tifffile.imwrite(path, rgb, photometric="rgb", description="caption", datetime="1931:07:04 12:00:00")
    elif deep:
        tifffile.imwrite(path, gray, photometric="minisblack", description="caption", datetime="1931:07:04 12:00:00")
    else:
        Image.fromarray(gray).save(path, **({"quality": 90} if kind == "jpeg" else {"compress_level": 1}))
    return path


def large_runs(specs: list[str], cache: Path, extra: list[str]) -> None:
    """One colorize-batch run a ``MEGAPIXELS:KIND`` spec: peak RSS, time, the run's own estimate."""
    from colorizer.desktop.pipeline.stages import memory_needed

    for spec in specs:
        megapixels, _, kind = spec.partition(":")
        if kind not in LARGE_KINDS:
            sys.exit(f"--large {spec}: KIND is one of {', '.join(LARGE_KINDS)}")
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            photo = large_photo(float(megapixels), kind, Path(tmp) / "in")
            h = header_of(photo)
            result = run(photo.parent, Path(tmp) / "out", "same", extra)
            peak = result["peak_mb"] * 2**20
            print(f"{h.width}x{h.height} {kind} ({h.pixels / 1e6:.0f} MP, {photo.stat().st_size / 1e6:.0f} MB): "
                  f"{result['seconds']:.1f} s, peak RSS {peak / 1e6:.0f} MB ({peak / h.pixels:.1f} B/pixel, the "
                  f"process included); the run's estimate {memory_needed(h) / 1e6:.0f} MB")


class _GotHeader(Exception):
    def __init__(self, header) -> None:
        super().__init__()
        self.header = header


def header_of(photo: Path):
    """What ``photo`` declares (an ``ImageHeader``), without decoding its pixels."""
    from colorizer.desktop.media.image_read import read_image

    def stop(header) -> None:
        raise _GotHeader(header)

    try:
        read_image(photo, max_pixels=None, admit=stop)
    except _GotHeader as got:
        return got.header
    raise RuntimeError(f"{photo}: no header seen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", nargs="+", type=Path, default=DEFAULT_SOURCES, help="folders of photos")
    parser.add_argument("--counts", nargs="+", type=int, default=[1000, 8000], help="runs, by number of inputs")
    parser.add_argument("--base", type=int, default=1000, help="distinct photos the inputs repeat")
    parser.add_argument("--format", default="png", help="output format (colorize-batch --format)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "colorizer-bench-memory")
    parser.add_argument("--large", nargs="+", metavar="MEGAPIXELS:KIND",
                        help=f"instead: one large synthetic photo a run, KIND one of {', '.join(LARGE_KINDS)}")
    parser.add_argument("extra", nargs="*", help="more colorize-batch options (after --)")
    args = parser.parse_args()

    print(machine())
    if args.large:
        args.cache.mkdir(parents=True, exist_ok=True)
        large_runs(args.large, args.cache, args.extra)
        return 0
    base = varied_set(args.sources, args.base, args.cache / f"varied-{args.base}")
    sizes = [Image.open(p).size for p in base]
    print(f"{len(base)} distinct gray PNGs, {len(set(sizes))} distinct sizes, "
          f"{min(w * h for w, h in sizes) / 1e6:.2f}-{max(w * h for w, h in sizes) / 1e6:.2f} MP; out: {args.format}")
    results = []
    for count in args.counts:
        with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
            tree = input_tree(base, count, Path(tmp) / "in")
            result = run(tree, Path(tmp) / "out", args.format, args.extra)
        results.append(result)
        trace = ", ".join(f"{d}: {mb:.0f}" for d, mb in result["samples"][:: max(1, len(result["samples"]) // 8)])
        print(f"{count:6d} photos: {result['done']} done in {result['seconds']:.0f} s "
              f"({result['done'] / result['seconds']:.0f}/s), peak RSS {result['peak_mb']:.0f} MB; "
              f"RSS (MB) by outputs written: {trace}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"peak RSS {last['files']} vs {first['files']} photos: {last['peak_mb'] / first['peak_mb']:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
