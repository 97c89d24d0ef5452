"""The results grid of the model card: gray input | ground truth | output, on scikit-image's
public-domain / CC0 color photos (the originals of assets/samples), through the runtime exactly
as colorize-batch runs it. Photos from ../shared/data are never put into the repository.

    python bench/model_card_grid.py --out docs/images/results_grid.png [--model M.onnx]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from colorizer.desktop.backends import open_backend
from colorizer.desktop.pipeline.batch import colorize_array
from colorizer.desktop.pipeline.settings import ImageSettings

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--height", type=int, default=256, help="row height in pixels")
    args = p.parse_args()
    backend = open_backend(args.model, "cpu")
    rows = []
    for name in PHOTOS:
        truth = getattr(data, name)()
        gray = np.repeat(cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        out = (colorize_array(gray, backend, ImageSettings()) * 255 + 0.5).astype(np.uint8)
        scale = args.height / truth.shape[0]
        size = (round(truth.shape[1] * scale), args.height)
        rows.append(np.hstack([cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (gray, truth, out)]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({backend.contract.model_name} {backend.contract.model_version} on {backend.name})")


if __name__ == "__main__":
    main()
