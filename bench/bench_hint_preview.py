"""The app's live hint preview: what a click costs on a large photo (desktop/pipeline/hint_preview.py).

A gray 12 MP photo (4000x3000 JPEG, a sample photo enlarged, or --photo) is opened once as the app
opens it (decode, prepare as a run does, predict at render size with the shipped model on the CPU),
then each "click" adds a point to those already there and renders the preview again (spread at
render size + finish at screen size). Prints the once-per-photo cost, then for 3, 50, 200 and 500
hints (--counts; 500 is ``colorizer.hints.MAX_POINTS``):

* *click*: the latency of the click that adds the last point (median and worst of --repeat), the
  others having been shown before: what the user waits for;
* *all new*: a render where every point is new (a photo opened with its sidecar, an undo of
  "remove all"): what a run computes for the photo;
* *baseline*: the click with the spread of git revision --baseline (default HEAD: the committed
  ``colorizer/hint_spread.py``) and nothing kept between edits, measured in the same run on the same
  photo and points (``--baseline none``: skipped).

With --viewer, only the viewer's load of the photo for a 3000-pixel view (``preview.load_preview``):
its time and the memory traced at its peak (tracemalloc: numpy's arrays; Pillow's own buffers are
not traced), against the former whole decode reduced afterwards, in the same run.

The allocator is set as the app sets it (``keep_freed_memory``). Nothing is written into the project.

    python bench/bench_hint_preview.py [--photo scan.jpg] [--threads 2] [--baseline REV]
    python bench/bench_hint_preview.py --viewer [--size 12000x8400]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from colorizer import colorize, hint_guidance  # noqa: E402
from colorizer.allocator import keep_freed_memory  # noqa: E402
from colorizer.desktop.backends import open_backend  # noqa: E402
from colorizer.desktop.pipeline.hint_preview import HintPreview  # noqa: E402
from colorizer.hints import HintPoint, PhotoHints  # noqa: E402

COLORS = ("#b03a2e", "#3a6ea5", "#2e8b57", "#d4a017", "#6b3fa0")


def make_photo(folder: Path, width: int, height: int) -> Path:
    """A sample photo enlarged to width x height, gray, as an old scan would be (JPEG, quality 92)."""
    rgb = cv2.imread(str(REPO / "assets" / "samples" / "astronaut.jpg"))
    gray = cv2.cvtColor(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2GRAY)
    noise = np.random.default_rng(0).normal(0, 4, gray.shape)  # film grain: a real scan's texture
    gray = np.clip(gray + noise, 0, 255).astype(np.uint8)
    path = folder / f"scan_{width}x{height}.jpg"
    cv2.imwrite(str(path), gray, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def random_points(rng: np.random.Generator, count: int, width: int, height: int) -> tuple[HintPoint, ...]:
    return tuple(HintPoint(float(rng.integers(0, width)), float(rng.integers(0, height)), COLORS[i % len(COLORS)])
                 for i in range(count))


def baseline_spread(revision: str):
    """``colorizer/hint_spread.py`` as of git ``revision``, loaded as a module of its own (None: no git there)."""
    try:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:colorizer/hint_spread.py"],
                                check=True, capture_output=True, text=True).stdout
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", revision],
                                check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"no baseline: {exc}")
        return None, ""
    spec = importlib.util.spec_from_loader("baseline_hint_spread", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    exec(compile(source, f"{revision}:colorizer/hint_spread.py", "exec"), module.__dict__)  # noqa: S102
    return module, commit


class _NothingKept:
    """A :class:`HintWeights` stand-in that keeps nothing: every edit computes every hint's weights."""

    def attach(self, prepared):
        return prepared


@contextlib.contextmanager
def as_baseline(preview: HintPreview, spread):
    """The preview rendering with ``spread`` (a baseline hint_spread module) and nothing kept between edits."""
    kept = preview.weights
    preview.weights = _NothingKept()
    try:
        with mock.patch.object(colorize, "spread_hints", spread.spread_hints), \
                mock.patch.object(hint_guidance, "hint_weights", spread.hint_weights):
            yield
    finally:
        preview.weights = kept


def clicks(preview: HintPreview, count: int, repeat: int, seed: int) -> list[float]:
    """Seconds of each of ``repeat`` clicks that add the ``count``-th point to ``count - 1`` shown before."""
    h, w = preview.full_hw
    rng = np.random.default_rng(seed)
    shown = random_points(rng, count - 1, w, h)
    preview.render(PhotoHints(shown + random_points(rng, 1, w, h)))  # the points the user put before
    seconds = []
    for _ in range(repeat):
        hints = PhotoHints(shown + random_points(rng, 1, w, h))
        t = time.perf_counter()
        preview.render(hints)
        seconds.append(time.perf_counter() - t)
    return seconds


def all_new(preview: HintPreview, count: int, repeat: int, seed: int) -> list[float]:
    """Seconds of renders of ``count`` points none of which was shown before."""
    h, w = preview.full_hw
    rng = np.random.default_rng(seed)
    seconds = []
    for _ in range(repeat):
        hints = PhotoHints(random_points(rng, count, w, h))
        t = time.perf_counter()
        preview.render(hints)
        seconds.append(time.perf_counter() - t)
    return seconds


def viewer_loads(photo: Path, repeat: int) -> None:
    """The viewer's load of ``photo`` now (a reduced decode) and as it was (decoded whole, then reduced)."""
    import tracemalloc

    from colorizer.desktop.app.preview import MAX_PREVIEW_SIDE, load_preview, screen_size
    from colorizer.desktop.media.image_read import read_image

    loads = {"whole decode, then reduced (former)": lambda: screen_size(read_image(photo).rgb, MAX_PREVIEW_SIDE),
             "reduced decode (load_preview)": lambda: load_preview(photo)}
    for name, load in loads.items():
        seconds = []
        for _ in range(repeat):
            t = time.perf_counter()
            load()
            seconds.append(time.perf_counter() - t)
        tracemalloc.start()
        image = load()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"  {name}: {image.width()}x{image.height()}, {figures(seconds)}, {peak / 1e6:.0f} MB traced at the peak")


def figures(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds) * 1000:6.1f} ms, worst {max(seconds) * 1000:6.1f} ms"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photo", type=Path, help="a photo (default: a 4000x3000 gray JPEG made from a sample)")
    p.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--counts", default="3,50,200,500", help="numbers of hints to measure")
    p.add_argument("--sides", default="1600", help="preview long sides to measure")
    p.add_argument("--baseline", default="HEAD", help="git revision of hint_spread.py to compare with ('none': skip)")
    p.add_argument("--viewer", action="store_true", help="measure the viewer's load of the photo instead")
    p.add_argument("--size", default="4000x3000", help="the photo made when --photo is not given, WxH")
    args = p.parse_args(argv)
    keep_freed_memory()  # as the app runs
    print(machine())
    print(f"OpenCV threads: {cv2.getNumThreads()}, CPUs: {os.cpu_count()}")
    width, height = (int(v) for v in args.size.split("x"))
    if args.viewer:
        with tempfile.TemporaryDirectory(prefix="hint-preview-") as tmp:
            photo = args.photo or make_photo(Path(tmp), width, height)
            print(f"\n{photo.name}: the viewer's load")
            viewer_loads(photo, args.repeat)
        return 0
    spread, commit = baseline_spread(args.baseline) if args.baseline != "none" else (None, "")
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory(prefix="hint-preview-") as tmp:
        photo = args.photo or make_photo(Path(tmp), width, height)
        with open_backend(args.model, "cpu", threads=args.threads) as backend:
            for side in (int(s) for s in args.sides.split(",")):
                t = time.perf_counter()
                preview = HintPreview.open(photo, backend, max_side=side)
                once = time.perf_counter() - t
                h, w = preview.full_hw
                print(f"\n{photo.name}: {w}x{h} ({w * h / 1e6:.1f} MP), render {preview.prepared.render_hw}, "
                      f"preview {preview.screen_hw[1]}x{preview.screen_hw[0]} on {backend.name}"
                      f"{' (a model with hint inputs: predicted at each edit)' if preview.predictor else ''}")
                print(f"  once per photo: {once:.2f} s (" + ", ".join(f"{k} {v:.2f}"
                                                            for k, v in preview.timings.items()) + ")")
                preview.render(None)  # warm up
                print(f"  no hint:            {figures(all_new(preview, 0, args.repeat, 0))}")
                for count in counts:
                    print(f"  {count:3d} hints, click:   {figures(clicks(preview, count, args.repeat, count))}")
                    print(f"  {count:3d} hints, all new: {figures(all_new(preview, count, args.repeat, count))}")
                    if spread is not None:
                        with as_baseline(preview, spread):
                            seconds = clicks(preview, count, args.repeat, count)
                        print(f"  {count:3d} hints, click, baseline {commit}: {figures(seconds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
