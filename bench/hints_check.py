"""How much color hints help, measured through colorize-batch with sidecar files at full resolution.

For each folder of color photos (one set each), up to ``--limit`` color photos (evenly spread through
the sorted list; gray ones skipped) are made black-and-white and written as gray JPEGs (quality 95,
from their luma: a scan of a black-and-white print; ``--gray lab`` writes PNGs of their Lab L, which
take the RGB route instead) into a temporary folder. For each hint count (0, 1, 3, 10), simulated
ground-truth hints (``size`` x ``size`` px patches at seeded positions, each colored with its patch's
mean, written as the sRGB hex a user would pick: :func:`colorizer.hints.simulated_hints`; the first
hints of a larger count are those of a smaller one) are written as sidecars into a hints tree, and
the folder is colorized by ``colorize-batch --hints-dir TREE`` (0 hints: ``--no-hints``). Each output
is compared with its color photo: mean ΔE2000 as a multiple of the gray photo's (lower is better),
colorfulness relative to the photo's, and mean ΔE2000 at the hint pixels. Nothing is written into
the project.

    python bench/hints_check.py ../shared/data/bsds500/test ../shared/data/imagenette-224/val --limit 100
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from video_color_check import lab_gray  # noqa: E402

from colorizer.desktop.cli import main as colorize_batch  # noqa: E402
from colorizer.desktop.media.image_read import read_image  # noqa: E402
from colorizer.hints import patch_pixels, sidecar_path, simulated_hints, write_hints  # noqa: E402
from colorizer.trainer.data import list_images, spread  # noqa: E402
from colorizer.trainer.metrics import colorfulness, delta_e2000  # noqa: E402

QUALITY = 95


def color_photos(folder: Path, limit: int) -> list[tuple[Path, np.ndarray]]:
    """Up to ``limit`` 8-bit color photos under ``folder`` (upright), evenly spread, gray ones skipped."""
    photos = []
    for path in spread(list_images([folder]), limit * 2):
        try:
            rgb = read_image(path).rgb
        except Exception:  # noqa: BLE001 - an unreadable file is left out
            continue
        if rgb.dtype == np.uint8 and colorfulness(rgb) >= 5 and len(photos) < limit:
            photos.append((path, rgb))
    return photos


def measure(folder: Path, args, tmp: Path) -> list[dict]:
    """Measure one set in its own folder ``tmp`` (sets may share a name: imagenette-224/val, bsds500/val)."""
    photos = color_photos(folder, args.limit)
    gray_dir = tmp / "gray"
    gray_dir.mkdir(parents=True)
    sources = []
    for i, (_, rgb) in enumerate(photos):
        if args.gray == "luma":
            source = gray_dir / f"{i:04d}.jpg"
            cv2.imwrite(str(source), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        else:
            source = gray_dir / f"{i:04d}.png"
            cv2.imwrite(str(source), lab_gray(rgb))
        sources.append(source)
    truth = [rgb for _, rgb in photos]
    gray_de = [delta_e2000(t, read_image(s).rgb) for t, s in zip(truth, sources, strict=True)]
    rows = []
    for count in args.counts:
        hints_dir = tmp / f"hints-{count}"
        hints = [simulated_hints(t, count, np.random.default_rng([args.seed, i]), args.size)
                 for i, t in enumerate(truth)]
        for source, h in zip(sources, hints, strict=True):
            if count:
                write_hints(sidecar_path(source, hints_dir, gray_dir), h)
        out = tmp / f"out-{count}"
        flags = ["--hints-dir", str(hints_dir)] if count else ["--no-hints"]
        started = time.perf_counter()
        code = colorize_batch([str(gray_dir), "-o", str(out), "--backend", "cpu", "-q", "--quality", str(QUALITY),
                               *(["--model", str(args.model)] if args.model else []), *flags])
        seconds = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"colorize-batch failed (exit {code}) on {gray_dir} with {count} hints")
        outputs = [read_image(out / s.name).rgb for s in sources]
        de = [delta_e2000(t, o) for t, o in zip(truth, outputs, strict=True)]
        at_hints = [delta_e2000(patch_pixels(t, h), patch_pixels(o, h))
                    for t, o, h in zip(truth, outputs, hints, strict=True) if len(h)]
        rows.append({"hints": count, "delta_e": float(np.mean(de)), "x_gray": float(np.sum(de) / np.sum(gray_de)),
                     "colorfulness": float(np.sum([colorfulness(o) for o in outputs])
                                           / np.sum([colorfulness(t) for t in truth])),
                     "at_hints": float(np.mean(at_hints)) if at_hints else None, "seconds": seconds})
    print(f"\n{folder}: {len(photos)} color photos, gray {args.gray} "
          f"({'JPEG q95, luma route' if args.gray == 'luma' else 'PNG, RGB route'}), gray ΔE2000 "
          f"{np.mean(gray_de):.2f}")
    print(f"  {'hints':>5}  {'ΔE2000':>7}  {'x gray':>7}  {'colorfulness/truth':>18}  {'ΔE at hints':>11}"
          f"  {'run s':>6}")
    for r in rows:
        at = f"{r['at_hints']:.2f}" if r["at_hints"] is not None else "-"
        print(f"  {r['hints']:>5}  {r['delta_e']:>7.2f}  {r['x_gray']:>7.3f}  {r['colorfulness']:>18.3f}  {at:>11}  "
              f"{r['seconds']:>6.1f}", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="+", type=Path, help="folders of color photos (one set each)")
    p.add_argument("--limit", type=int, default=100, help="photos per set")
    p.add_argument("--counts", default="0,1,3,10", help="hint counts to measure")
    p.add_argument("--seed", type=int, default=0, help="seed of the hints' positions")
    p.add_argument("--size", type=int, default=3, help="side of each hint's square (pixels)")
    p.add_argument("--gray", choices=("luma", "lab"), default="luma", help="how the gray photos are made")
    p.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    args = p.parse_args()
    args.counts = [int(n) for n in args.counts.split(",")]
    from colorizer.hint_spread import DEFAULT_PARAMS

    print(f"machine: {machine()}\nspread: {DEFAULT_PARAMS}")
    tmp = Path(tempfile.mkdtemp(prefix="colorizer-hints-check-"))
    try:
        for index, folder in enumerate(args.photos):
            measure(folder, args, tmp / str(index))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
