"""Benchmark: frames per second of a film with key-frame hints against the same film without (issue #22).

The clip is bench_video.py's (a panned grayscale texture with a hard cut in the middle, H.264 CRF 18
+ AAC, 24 fps), generated into a temporary folder. Its sidecar holds ``--points`` points (default 5)
on a key frame in each shot (a third into it), so both shots are tracked forward and backward. The
film is colorized with ``colorize_video`` (what colorize-batch runs; the default settings: luma
pass-through, temporal smoothing) without and with the sidecar, alternately, ``--rounds`` times
(a shared machine's speed drifts: each ratio compares the runs of one round; the median is printed).
With hints the film is decoded twice (the first pass tracks the points on L at 320 px) and every
hinted frame's ab is moved toward its hints at render size. Each round also runs the film with
hints spread as a photo's are (geodesic distances on a 96-pixel grid, ``--photo-spread``: what films
used before the film spread, ``hint_tracking.FILM_SPREAD``, 64 pixels, with still frames reusing
the previous distances; opt-in). For a model with hint inputs each round also runs the film with
the guidance's spread weights computed again on the color thread (``recomputed``: what films did
before session 9, when the guidance did not take the weights the decode thread had computed).
Nothing is written into the project.

    python bench/bench_film_hints.py                       # shipped model, 96 frames of 480p
    python bench/bench_film_hints.py --frames 48 --sizes 480 720 --rounds 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from bench_video import SIZES, make_clip  # noqa: E402

import colorizer.colorize as colorize_module  # noqa: E402
from colorizer.allocator import keep_freed_memory  # noqa: E402
from colorizer.desktop.backends import default_model_path, open_backend  # noqa: E402
from colorizer.desktop.pipeline import video  # noqa: E402
from colorizer.desktop.pipeline.hint_tracking import FilmSpread  # noqa: E402
from colorizer.desktop.pipeline.settings import VideoSettings  # noqa: E402
from colorizer.desktop.pipeline.video import colorize_video  # noqa: E402
from colorizer.hint_spread import DEFAULT_PARAMS  # noqa: E402
from colorizer.hints import FilmHints, FrameHints, HintPoint, sidecar_path, write_hints  # noqa: E402

COLORS = ("#b03a2e", "#3a6ea5", "#5a8f3c", "#d4a017", "#7d3c98", "#c0392b", "#16a085", "#2c3e50")


def key_frame(frame: int, width: int, height: int, count: int) -> FrameHints:
    spots = [((i + 1) / (count + 1), 0.3 + 0.4 * (i % 2)) for i in range(count)]
    return FrameHints(frame, tuple(HintPoint(round(fx * width), round(fy * height), COLORS[i % len(COLORS)])
                                   for i, (fx, fy) in enumerate(spots)))


MODEL_GUIDANCE = colorize_module.model_guidance


def recomputed_guidance(prepared, contract):
    """model_guidance as before session 9: the weights computed ahead are not used."""
    if prepared.hints is not None:
        prepared = replace(prepared, hints=replace(prepared.hints, weights=None))
    return MODEL_GUIDANCE(prepared, contract)


def run(src: Path, dst: Path, backend, settings: VideoSettings, sidecar: Path | None, photo_spread: bool = False,
        recomputed: bool = False) -> tuple[float, float, dict]:
    """frames/s, CPU ms per frame (all threads) and the report's hints of one run (``photo_spread``:
    the hints spread with a photo's parameters, as films were before FILM_SPREAD; ``recomputed``: a
    hint model's guidance weights computed again on the color thread)."""
    video.FilmSpread = (lambda: FilmSpread(DEFAULT_PARAMS)) if photo_spread else FilmSpread
    colorize_module.model_guidance = recomputed_guidance if recomputed else MODEL_GUIDANCE
    started, cpu = time.perf_counter(), time.process_time()
    try:
        result = colorize_video(src, dst, backend, settings, hints=sidecar)
    finally:
        video.FilmSpread = FilmSpread
        colorize_module.model_guidance = MODEL_GUIDANCE
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if result.status != "done":
        raise SystemExit(f"benchmark run failed: {result.reason}")
    frames = result.timings["frames"]
    return frames / seconds, 1000 * cpu / frames, result.hints or {}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--frames", type=int, default=96)
    p.add_argument("--sizes", type=int, nargs="+", default=[480], choices=sorted(SIZES))
    p.add_argument("--points", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--photo-spread", action="store_true",
                   help="also run with a photo's spread (the film spread's baseline)")
    p.add_argument("--no-recomputed", dest="recomputed", action="store_false",
                   help="leave out the runs whose guidance weights are computed again (a hint model's baseline)")
    args = p.parse_args()
    keep_freed_memory()
    with open_backend(args.model or default_model_path(), args.backend) as backend:
        settings = VideoSettings(overwrite=True)
        print(machine())
        print(f"model {backend.contract.model_name} {backend.contract.model_version} on {backend.name}; "
              f"{args.frames} frames, a cut at {args.frames // 2}; {args.points} points on frames "
              f"{args.frames // 6} and {args.frames // 2 + args.frames // 6}; {args.rounds} rounds")
        tmp = Path(tempfile.mkdtemp(prefix="colorizer-bench-film-hints-"))
        try:
            for size in args.sizes:
                width, height = SIZES[size]
                src = tmp / f"clip{size}.mp4"
                make_clip(src, width, height, args.frames)
                sidecar = write_hints(sidecar_path(src), FilmHints((
                    key_frame(args.frames // 6, width, height, args.points),
                    key_frame(args.frames // 2 + args.frames // 6, width, height, args.points))))
                plain, hinted, ratios, tracking, cpu, photo, again = [], [], [], [], [], [], []
                recompute = args.recomputed and backend.contract.takes_hints
                for _ in range(args.rounds):
                    fps_plain, cpu_plain, _ = run(src, tmp / "plain.mp4", backend, settings, None)
                    if args.photo_spread:
                        photo.append(run(src, tmp / "photo.mp4", backend, settings, sidecar, True)[0] / fps_plain)
                    if recompute:
                        again.append(run(src, tmp / "again.mp4", backend, settings, sidecar, recomputed=True)[0]
                                     / fps_plain)
                    fps_hints, cpu_hints, report = run(src, tmp / "hints.mp4", backend, settings, sidecar)
                    cpu.append(cpu_hints / cpu_plain)
                    plain.append(fps_plain)
                    hinted.append(fps_hints)
                    ratios.append(fps_hints / fps_plain)
                    tracking.append(report.get("tracking_s", 0.0))
                applied = [pt["applied_frames"] for k in report["key_frames"] for pt in k["points"]]
                print(f"{size}p ({width}x{height}): without hints {statistics.median(plain):.2f} frames/s, with hints "
                      f"{statistics.median(hinted):.2f} frames/s: {statistics.median(ratios):.2f}x "
                      f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}); CPU time per frame with / without "
                      f"{statistics.median(cpu):.2f}x; first pass (decode + track) "
                      f"{statistics.median(tracking):.2f} s; frames each point was applied to: {applied}")
                if photo:
                    print(f"  with a photo's spread (grid 96, as before): {statistics.median(photo):.2f}x "
                          f"(rounds {', '.join(f'{r:.2f}' for r in photo)})")
                if again:
                    print(f"  with the guidance's weights computed again on the color thread (before session 9): "
                          f"{statistics.median(again):.2f}x (rounds {', '.join(f'{r:.2f}' for r in again)})")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
