"""The results grids of the model card: input | ground truth | one column per model, on
scikit-image's public-domain / CC0 color photos (the originals of assets/samples), through the
runtime exactly as colorize-batch runs it. Photos from ../shared/data are never put into the
repository.

``--old-photo`` first ages the input the way an old print looks when scanned: film grain, blur,
faded contrast, then a sepia tone (the runtime reduces it to its luminance like any color photo).

    python bench/model_card_grid.py --out docs/images/results_grid.png [--models A.onnx B.onnx]
    python bench/model_card_grid.py --out docs/images/old_photo_grid.png --old-photo --models v1.onnx v2.onnx
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from colorizer.contract import merge_l_ab, rgb_to_l
from colorizer.desktop.backends import open_backend
from colorizer.desktop.pipeline.batch import colorize_array
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.fileio import to_uint8
from colorizer.trainer.degrade import blur, faded, film_grain

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
SEPIA = np.array([1.0, 0.85, 0.62], np.float32)


def gray_input(truth: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def old_photo_input(truth: np.ndarray, seed: int) -> np.ndarray:
    """Grain, blur and faded contrast on L, printed in sepia: what an aged print's scan looks like."""
    rng = np.random.default_rng(seed)
    lightness = rgb_to_l(truth)
    for age in (film_grain, blur, faded):
        lightness = age(lightness, rng).astype(np.float32)
    gray = merge_l_ab(lightness, np.zeros((*lightness.shape, 2), np.float32))
    return to_uint8(np.clip(gray * SEPIA + 0.04, 0, 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--models", type=Path, nargs="*", default=[None], help="ONNX models (default: the shipped one)")
    p.add_argument("--old-photo", action="store_true", help="age the inputs (grain, blur, faded, sepia)")
    p.add_argument("--saturation", type=float, nargs="*", default=[], help="per model (default: each model's own)")
    p.add_argument("--height", type=int, default=256, help="row height in pixels")
    args = p.parse_args()
    rows = []
    with contextlib.ExitStack() as opened:  # the backends close at the end
        backends = [opened.enter_context(open_backend(m, "cpu")) for m in args.models]
        for i, name in enumerate(PHOTOS):
            truth = getattr(data, name)()
            source = old_photo_input(truth, seed=i) if args.old_photo else gray_input(truth)
            columns = [source, truth]
            for j, backend in enumerate(backends):
                settings = ImageSettings(saturation=args.saturation[j]) if j < len(args.saturation) else ImageSettings()
                columns.append(to_uint8(colorize_array(source, backend, settings)))
            scale = args.height / truth.shape[0]
            size = (round(truth.shape[1] * scale), args.height)
            rows.append(np.hstack([cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in columns]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    names = ", ".join(f"{b.contract.model_name} {b.contract.model_version}" for b in backends)
    print(f"wrote {args.out} (columns: input, ground truth, {names})")


if __name__ == "__main__":
    main()
