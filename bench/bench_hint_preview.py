"""The app's live hint preview: what a click costs on a large photo (desktop/pipeline/hint_preview.py).

A gray 12 MP photo (4000x3000 JPEG, a sample photo enlarged, or --photo) is opened once as the app
opens it (decode, prepare as a run does, predict at render size with the shipped model on the CPU),
then each "click" adds a hint and renders the preview again (spread at render size + finish at
screen size). Prints the once-per-photo cost and the per-edit latency (median and worst of --repeat)
for 1, 3 and 10 hints, at two screen sizes. Nothing is written into the project.

    python bench/bench_hint_preview.py [--photo scan.jpg] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from colorizer.desktop.backends import open_backend  # noqa: E402
from colorizer.desktop.pipeline.hint_preview import HintPreview  # noqa: E402
from colorizer.hints import HintPoint, PhotoHints  # noqa: E402


def make_photo(folder: Path, width: int, height: int) -> Path:
    """A sample photo enlarged to width x height, gray, as an old scan would be (JPEG, quality 92)."""
    rgb = cv2.imread(str(REPO / "assets" / "samples" / "astronaut.jpg"))
    gray = cv2.cvtColor(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2GRAY)
    noise = np.random.default_rng(0).normal(0, 4, gray.shape)  # film grain: a real scan's texture
    gray = np.clip(gray + noise, 0, 255).astype(np.uint8)
    path = folder / f"scan_{width}x{height}.jpg"
    cv2.imwrite(str(path), gray, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photo", type=Path, help="a photo (default: a 4000x3000 gray JPEG made from a sample)")
    p.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--sides", default="1600,1000", help="preview long sides to measure")
    args = p.parse_args(argv)
    print(machine())
    print(f"OpenCV threads: {cv2.getNumThreads()}, CPUs: {os.cpu_count()}")
    rng = np.random.default_rng(1)
    colors = ["#b03a2e", "#3a6ea5", "#2e8b57", "#d4a017", "#6b3fa0"]
    with tempfile.TemporaryDirectory(prefix="hint-preview-") as tmp:
        photo = args.photo or make_photo(Path(tmp), 4000, 3000)
        with open_backend(args.model, "cpu", threads=args.threads) as backend:
            for side in (int(s) for s in args.sides.split(",")):
                t = time.perf_counter()
                preview = HintPreview.open(photo, backend, max_side=side)
                once = time.perf_counter() - t
                h, w = preview.full_hw
                print(f"\n{photo.name}: {w}x{h} ({w * h / 1e6:.1f} MP), render {preview.prepared.render_hw}, "
                      f"preview {preview.screen_hw[1]}x{preview.screen_hw[0]} on {backend.name}")
                print(f"  once per photo: {once:.2f} s (" + ", ".join(f"{k} {v:.2f}"
                                                            for k, v in preview.timings.items()) + ")")
                preview.render(None)  # warm up
                for count in (0, 1, 3, 10):
                    points = tuple(HintPoint(float(rng.integers(0, w)), float(rng.integers(0, h)),
                                             colors[i % len(colors)]) for i in range(count))
                    seconds = []
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        preview.render(PhotoHints(points))
                        seconds.append(time.perf_counter() - t)
                    print(f"  edit with {count:2d} hint{'s' if count != 1 else ' '}: median "
                          f"{statistics.median(seconds) * 1000:6.1f} ms, worst {max(seconds) * 1000:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
