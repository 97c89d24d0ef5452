"""How close colorized video comes to the true colors: the luma pass-through path against the Lab path.

Color photos (e.g. a validation folder) are center-cropped to one even size and made into a
black-and-white H.264 clip, one photo per frame, the way a color video loses its color: its chroma
planes set to neutral, its luma (Y', BT.601, limited range) kept. (``--gray lab`` makes the gray
frames from Lab L instead, as the photo evaluation does.) The clip is colorized through
``colorize_video`` twice -- luma pass-through (the default for such a clip) and the Lab path --
and each output frame is compared with its color photo: ΔE2000 (lower is better), colorfulness
relative to the photo's, and the same for the gray clip itself. Temporal smoothing is off (every
frame is a new shot). Nothing is written into the project.

    python bench/video_color_check.py ../shared/data/bsds500/val --size 480x320
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import write_clip  # noqa: E402  (bench/ is on sys.path when run as a script)

from colorizer.contract import gray_to_l, rgb_to_lab  # noqa: E402
from colorizer.desktop.backends import default_model_path, open_backend  # noqa: E402
from colorizer.desktop.media.image_read import read_image  # noqa: E402
from colorizer.desktop.media.video_source import sws_colorspace  # noqa: E402
from colorizer.desktop.pipeline.settings import VideoSettings  # noqa: E402
from colorizer.desktop.pipeline.video import colorize_video  # noqa: E402
from colorizer.trainer.metrics import colorfulness, delta_e2000  # noqa: E402

BT601 = 6


def color_photos(folder: Path) -> Iterator[np.ndarray]:
    """The 8-bit RGB of each readable photo in ``folder``, in name order."""
    for path in sorted(folder.iterdir()):
        try:
            rgb = read_image(path).rgb
        except Exception:
            continue
        if rgb.dtype == np.uint8:
            yield rgb


def center_crop(rgb: np.ndarray, width: int, height: int) -> np.ndarray | None:
    h, w = rgb.shape[:2]
    if h < height or w < width:
        if h >= width and w >= height:  # portrait: turn it
            rgb = np.rot90(rgb)
            h, w = w, h
        else:
            return None
    y0, x0 = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(rgb[y0 : y0 + height, x0 : x0 + width])


def lab_gray(rgb: np.ndarray) -> np.ndarray:
    """The 8-bit gray levels whose L is nearest above the color photo's L (the photo evaluation's gray)."""
    table = gray_to_l(np.arange(256, dtype=np.uint8)[None])[0]  # L of each 8-bit gray level
    return np.searchsorted(table, rgb_to_lab(rgb)[..., 0]).clip(0, 255).astype(np.uint8)


def gray_picture(rgb: np.ndarray, mode: str) -> av.VideoFrame:
    """A yuv420p frame with neutral chroma: Y' of the color frame (``luma``), or the gray of its L (``lab``)."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=sws_colorspace(BT601), dst_color_range=1)
    planes = frame.to_ndarray()
    h = rgb.shape[0]
    if mode == "lab":
        planes[:h] = np.round(16 + lab_gray(rgb).astype(np.float32) * (219 / 255)).astype(np.uint8)
    planes[h:] = 128
    out = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    out.colorspace, out.color_range = BT601, 1
    return out


def make_clip(photos: list[np.ndarray], path: Path, mode: str) -> None:
    write_clip(path, (gray_picture(rgb, mode) for rgb in photos), options={"crf": "12"}, colorspace=BT601,
               color_range=1)


def decoded_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24", src_colorspace=sws_colorspace(BT601), src_color_range=1)
                for f in c.decode(video=0)]


def scores(truth: list[np.ndarray], frames: list[np.ndarray]) -> tuple[float, float]:
    de = [delta_e2000(t, f) for t, f in zip(truth, frames, strict=True)]
    cf = sum(colorfulness(f) for f in frames) / max(1e-9, sum(colorfulness(t) for t in truth))
    return float(np.mean(de)), cf


def print_scores(title: str, rows: dict[str, tuple[float, float]]) -> None:
    """The run's line, then ΔE2000 and colorfulness relative to the photos for each row."""
    print(title)
    print(f"{'':<20}{'dE2000':>8}{'colorfulness/GT':>17}")
    for name, (de, cf) in rows.items():
        print(f"{name:<20}{de:>8.2f}{cf:>17.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", type=Path, help="folder of color photos")
    p.add_argument("--size", default="480x320", help="WIDTHxHEIGHT of the clip (even)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--gray", choices=("luma", "lab"), default="luma", help="how the gray clip is made")
    p.add_argument("--model", type=Path, default=None)
    args = p.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    photos = []
    for rgb in color_photos(args.photos):
        if len(photos) >= args.limit:
            break
        crop = center_crop(rgb, width, height)
        if crop is not None:
            photos.append(crop)
    with open_backend(args.model or default_model_path(), "cpu") as backend:
        base = VideoSettings(temporal_strength=0.0, crf=12, overwrite=True)
        tmp = Path(tempfile.mkdtemp(prefix="colorizer-video-check-"))
        try:
            clip = tmp / "gray.mp4"
            make_clip(photos, clip, args.gray)
            rows = {"gray clip": scores(photos, decoded_rgb(clip))}
            for name, settings in (("luma pass-through", base),
                                   ("Lab path", dataclasses.replace(base, luma_passthrough=False))):
                out = tmp / f"{name.split()[0]}.mp4"
                result = colorize_video(clip, out, backend, settings)
                if result.status != "done":
                    raise SystemExit(f"{name}: {result.reason}")
                rows[name] = scores(photos, decoded_rgb(out))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print_scores(f"{len(photos)} photos from {args.photos}, {width}x{height}, gray made from {args.gray}, model "
                     f"{backend.contract.model_name} {backend.contract.model_version}, H.264 CRF 12 in and out", rows)


if __name__ == "__main__":
    main()
