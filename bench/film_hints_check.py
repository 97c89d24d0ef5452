"""Do a film's key-frame hints carry through their shot? ΔE2000 against the true colors (issue #22).

A test film with known truth is generated into a temporary folder (nothing is written into the
project): shot 1 is a color photo seen through a moving crop -- a pan and a zoom over ``--shot1``
frames (default 120; the crop's center moves ``--pan`` of the photo's width, default 0.3, while
it shrinks from 0.7 to 0.5 of the width: a 1.4x zoom) -- and shot 2, after a hard cut, another
photo slowly panned (``--shot2`` frames). The film is black-and-white as
``bench/video_color_check.py --gray lab`` makes it (each frame's gray from its Lab L, H.264 CRF 12).
``--hints`` (default 5) ground-truth hints are put on
one key frame of shot 1 (``--key``, default 40: near the start): 3x3 px patches of the true key
frame at fixed places of a grid, each colored with its patch's mean Lab (as a user picks a color;
only its chroma is used).

The film is colorized four times through ``colorize_video`` (the code colorize-batch runs; output
H.264 CRF 0 on the luma route, which is lossless, so the comparison sees the colorized pixels):

* ``none``: no hints;
* ``key only``: the hints applied on the key frame only (no tracking);
* ``static``: the hints applied at the same pixel positions on every frame of shot 1 (no tracking);
* ``tracked``: the film's sidecar as colorize-batch uses it (points tracked through the shot).

(``key only`` and ``static`` replace the tracked plan by a fixed one; everything else is the same.)
Every output frame is compared with its true frame: mean ΔE2000 over the frame
(``colorizer.trainer.metrics.delta_e2000``), printed per distance from the key frame; shot 2's
output frames are compared with those of the ``none`` run (they must be identical).

    python bench/film_hints_check.py ../shared/data/bsds500/test
    python bench/film_hints_check.py ../shared/data/bsds500/test --photos 3 --key 60
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_clip  # noqa: E402
from video_color_check import BT601, color_photos, decoded_rgb, gray_picture  # noqa: E402

from colorizer.contract import lab_to_rgb, rgb_to_lab  # noqa: E402
from colorizer.desktop.backends import default_model_path, open_backend  # noqa: E402
from colorizer.desktop.pipeline import video as video_module  # noqa: E402
from colorizer.desktop.pipeline.settings import VideoSettings  # noqa: E402
from colorizer.desktop.pipeline.video import colorize_video  # noqa: E402
from colorizer.hints import FilmHints, FrameHints, HintPoint, PhotoHints, hex_color, sidecar_path, write_hints  # noqa: E402
from colorizer.trainer.metrics import delta_e2000  # noqa: E402

WIDTH, HEIGHT = 320, 208
GRID = ((0.2, 0.25), (0.8, 0.25), (0.5, 0.5), (0.2, 0.75), (0.8, 0.75), (0.35, 0.4), (0.65, 0.6), (0.5, 0.15),
        (0.5, 0.85), (0.1, 0.5))
BINS = ((0, 0), (1, 5), (6, 15), (16, 30), (31, 60), (61, 100), (101, 10**9))


def landscape(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(rgb)) if rgb.shape[0] > rgb.shape[1] else rgb


def crop_frame(rgb: np.ndarray, cx: float, cy: float, crop_w: float) -> np.ndarray:
    """The crop of ``crop_w`` x (crop_w * HEIGHT / WIDTH) px centered at (cx, cy), resized to WIDTH x HEIGHT."""
    s = crop_w / WIDTH
    m = np.array([[s, 0, cx - s * (WIDTH - 1) / 2], [0, s, cy - s * (HEIGHT - 1) / 2]], np.float32)
    return cv2.warpAffine(rgb, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def film_truth(first: np.ndarray, second: np.ndarray, n1: int, n2: int, pan: float) -> list[np.ndarray]:
    """Shot 1: a pan and a zoom (the crop shrinks from 0.7 to 0.5 of the photo's width while its
    center moves right by ``pan`` of the width and up a little); shot 2: a slow pan over the other photo."""
    frames = []
    h, w = first.shape[:2]
    for i in range(n1):
        t = i / max(1, n1 - 1)
        crop_w = (0.7 - 0.2 * t) * w
        frames.append(crop_frame(first, w * (0.5 - pan / 2 + pan * t), h * (0.5 - 0.05 * t), crop_w))
    h, w = second.shape[:2]
    for i in range(n2):
        frames.append(crop_frame(second, w * (0.45 + 0.1 * i / max(1, n2 - 1)), h * 0.5, 0.8 * w))
    return frames


def write_gray_film(truth: list[np.ndarray], path: Path) -> None:
    write_clip(path, (gray_picture(rgb, "lab") for rgb in truth), options={"crf": "12"}, colorspace=BT601,
               color_range=1)


def truth_hints(rgb: np.ndarray, count: int) -> tuple[HintPoint, ...]:
    """``count`` hints on the grid: 3x3 patches of the true frame, colored with their mean Lab."""
    lab = rgb_to_lab(rgb)
    height, width = rgb.shape[:2]
    points = []
    for fx, fy in GRID[:count]:
        x, y = int(fx * width), int(fy * height)
        mean = lab[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(axis=0).astype(np.float32)
        points.append(HintPoint(float(x), float(y), hex_color(lab_to_rgb(mean[None, None])[0, 0]), 3.0))
    return tuple(points)


class FixedPlan:
    """A plan without tracking: each key frame's points at the same positions on its range of frames
    (``frames``: one range per key frame of ``hints``, in order)."""

    def __init__(self, hints: FilmHints, frames: range | list[range]) -> None:
        self.hints, self.frames = hints, [frames] if isinstance(frames, range) else list(frames)
        self.applied = 0

    @property
    def digest(self) -> str:
        return self.hints.digest()

    def hints_at(self, frame: int) -> PhotoHints | None:
        for key, frames in zip(self.hints.frames, self.frames, strict=True):
            if frame in frames:
                self.applied += 1
                return PhotoHints(key.points, self.hints.source)
        return None

    def report(self) -> dict:
        return {"fixed": [[f.start, f.stop - 1] for f in self.frames], "applied": self.applied}


def colorize(clip: Path, out: Path, backend, settings: VideoSettings, sidecar: Path | None,
             fixed: range | list[range] | None = None, hints: FilmHints | None = None
             ) -> tuple[list[np.ndarray], dict, float]:
    """The frames (RGB) of ``clip`` colorized into ``out``, the report's hints and the seconds it took;
    ``fixed``: the hints of ``hints`` applied without tracking on these frames (see FixedPlan)."""
    original = video_module._video_hint_plan
    if fixed is not None:
        video_module._video_hint_plan = lambda *args: FixedPlan(hints, fixed)
    try:
        started = time.perf_counter()
        result = colorize_video(clip, out, backend, settings, hints=sidecar)
        seconds = time.perf_counter() - started
    finally:
        video_module._video_hint_plan = original
    if result.status != "done":
        raise SystemExit(f"{out.name}: {result.status} {result.reason}")
    return decoded_rgb(out), result.hints or {}, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", type=Path, help="folder of color photos (e.g. ../shared/data/bsds500/test)")
    p.add_argument("--photos", dest="first", type=int, default=0, help="index of the first photo (name order)")
    p.add_argument("--shot1", type=int, default=120)
    p.add_argument("--shot2", type=int, default=40)
    p.add_argument("--key", type=int, default=40, help="the key frame (in shot 1)")
    p.add_argument("--pan", type=float, default=0.3,
                   help="how far shot 1's crop moves, a fraction of the photo's width")
    p.add_argument("--hints", type=int, default=5, choices=range(1, len(GRID) + 1))
    p.add_argument("--model", type=Path, default=None)
    args = p.parse_args()
    photos = []
    for rgb in color_photos(args.photos):
        photos.append(landscape(rgb))
        if len(photos) >= args.first + 2:
            break
    first, second = photos[args.first], photos[args.first + 1]
    truth = film_truth(first, second, args.shot1, args.shot2, args.pan)
    backend = open_backend(args.model or default_model_path(), "cpu")
    settings = VideoSettings(crf=0, overwrite=True)  # CRF 0 on yuv420p: lossless; luma route; smoothing on
    tmp = Path(tempfile.mkdtemp(prefix="colorizer-film-hints-"))
    try:
        clip = tmp / "film.mp4"
        write_gray_film(truth, clip)
        hints = FilmHints((FrameHints(args.key, truth_hints(truth[args.key], args.hints)),), "truth")
        sidecar = write_hints(sidecar_path(clip), hints)
        shot1 = range(0, args.shot1)
        runs = {
            "none": colorize(clip, tmp / "none.mp4", backend, settings, None),
            "key only": colorize(clip, tmp / "key.mp4", backend, settings, sidecar, range(args.key, args.key + 1),
                                 hints),
            "static": colorize(clip, tmp / "static.mp4", backend, settings, sidecar, shot1, hints),
            "tracked": colorize(clip, tmp / "tracked.mp4", backend, settings, sidecar),
        }
        de = {name: [delta_e2000(t, f) for t, f in zip(truth, frames, strict=True)]
              for name, (frames, _, _) in runs.items()}
        print(machine())
        print(f"photos {args.photos}: #{args.first} (shot 1: {args.shot1} frames, pan {args.pan:g} of its width "
              f"+ zoom 1.4x), "
              f"#{args.first + 1} (shot 2: {args.shot2} frames); {WIDTH}x{HEIGHT}; key frame {args.key}, "
              f"{args.hints} hints (3x3 px true patches); model {backend.contract.model_name} "
              f"{backend.contract.model_version} on {backend.name}")
        report = runs["tracked"][1]
        cuts = [k["shot"] for k in report.get("key_frames", [])]
        print(f"tracked: shot {cuts}; applied frames per point "
              f"{[pt['applied_frames'] for k in report['key_frames'] for pt in k['points']]}; "
              f"tracked ranges {[pt['tracked'] for k in report['key_frames'] for pt in k['points']]}; "
              f"tracking {report.get('tracking_s', 0):.2f} s")
        print("mean dE2000 of shot 1's frames (lower is better), by distance from the key frame:")
        print(f"{'distance':>12}{'frames':>8}" + "".join(f"{name:>10}" for name in runs))
        for lo, hi in BINS:
            idx = [f for f in shot1 if lo <= abs(f - args.key) <= hi]
            if not idx:
                continue
            label = f"{lo}" if lo == hi else f"{lo}-{hi}" if hi < 10**9 else f">={lo}"
            print(f"{label:>12}{len(idx):>8}" + "".join(f"{np.mean([de[n][f] for f in idx]):>10.2f}" for n in runs))
        away = [f for f in shot1 if abs(f - args.key) >= 6]
        print(f"{'all shot 1':>12}{len(shot1):>8}" + "".join(f"{np.mean([de[n][f] for f in shot1]):>10.2f}"
                                                                for n in runs))
        print(f"{'>=6 away':>12}{len(away):>8}" + "".join(f"{np.mean([de[n][f] for f in away]):>10.2f}"
                                                            for n in runs))
        shot2 = range(args.shot1, args.shot1 + args.shot2)
        for name in ("key only", "static", "tracked"):
            same = sum(np.array_equal(runs[name][0][f], runs["none"][0][f]) for f in shot2)
            diff = max(int(np.abs(runs[name][0][f].astype(int) - runs["none"][0][f]).max()) for f in shot2)
            print(f"shot 2 ({len(shot2)} frames), {name} vs none: {same} identical, max |difference| {diff}")
        print("seconds per run: " + ", ".join(f"{n} {s:.1f}" for n, (_, _, s) in runs.items()))
        print(json.dumps({"tracked_report": report}, indent=None)[:2000])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
