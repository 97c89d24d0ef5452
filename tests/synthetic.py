"""Synthetic test data, made on the fly (tests never read ../shared)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import piexif
import tifffile
from PIL import Image


def synthetic_photo(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A colorful uint8 RGB image: smooth gradients plus a few colored rectangles."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([
        127 + 120 * np.sin(x / width * np.pi * rng.uniform(1, 3) + rng.uniform(0, 6)),
        127 + 120 * np.cos(y / height * np.pi * rng.uniform(1, 3) + rng.uniform(0, 6)),
        127 + 120 * np.sin((x + y) / (width + height) * np.pi * 2 + rng.uniform(0, 6)),
    ], axis=-1)
    for _ in range(3):
        y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
        img[y0 : y0 + height // 3, x0 : x0 + width // 3] = rng.integers(0, 256, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def gray(seed: int, h: int, w: int) -> np.ndarray:
    return cv2.cvtColor(synthetic_photo(seed, h, w), cv2.COLOR_RGB2GRAY)


def make_inputs(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    files["gray"] = root / "gray.jpg"
    exif = piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: b"Grandma, 1931"},
                        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1931:05:04 10:00:00"}})
    Image.fromarray(gray(1, 50, 70)).save(files["gray"], quality=95, exif=exif, dpi=(600, 600))
    files["rgb"] = root / "color.png"
    Image.fromarray(synthetic_photo(2, 33, 47)).save(files["rgb"])
    files["rgba"] = root / "sub" / "alpha.png"
    files["rgba"].parent.mkdir()
    rgba = np.dstack([np.repeat(gray(3, 40, 40)[..., None], 3, 2), np.linspace(0, 255, 1600).reshape(40, 40)])
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(files["rgba"])
    files["16bit"] = root / "scan16.tif"
    g16 = (gray(4, 64, 48).astype(np.uint16) * 257)
    tifffile.imwrite(files["16bit"], np.repeat(g16[..., None], 3, 2), photometric="rgb")
    files["rotated"] = root / "rotated.jpg"
    exif6 = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}})
    Image.fromarray(gray(5, 30, 60)).save(files["rotated"], exif=exif6)
    return files
