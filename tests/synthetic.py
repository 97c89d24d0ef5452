"""Synthetic test data, made on the fly (tests never read ../shared)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


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
