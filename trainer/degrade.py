""""Old photo" input filters, applied to the L channel only so the model learns to colorize
degraded scans while its target (the ab of the clean photo) stays the same."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from colorizer.contract import rgb_to_l

Filter = Callable[[np.ndarray, np.random.Generator], np.ndarray]  # L (H, W) in [0, 100] -> L


def sepia(l_channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sepia-toned print scanned back: the L of a brown-tinted gray, with a lifted black point."""
    gray = (l_channel / 100.0).astype(np.float32)
    tone = np.array([1.0, 0.85, 0.62], np.float32) * rng.uniform(0.9, 1.0)
    rgb = np.clip(gray[..., None] * tone + rng.uniform(0.02, 0.08), 0, 1)
    return rgb_to_l(rgb)


def film_grain(l_channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(1.0, 5.0)
    noise = rng.normal(0.0, sigma, l_channel.shape).astype(np.float32)
    if rng.random() < 0.5:  # clumpy grain
        noise = cv2.GaussianBlur(noise, (0, 0), 0.7) * 1.5
    return np.clip(l_channel + noise, 0, 100)


def blur(l_channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(l_channel, (0, 0), rng.uniform(0.5, 1.5))


def faded(l_channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Faded contrast: blacks lifted, whites lowered."""
    low, high = rng.uniform(0, 20), rng.uniform(80, 100)
    return low + l_channel * (high - low) / 100.0


def jpeg_artifacts(l_channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    quality = int(rng.integers(15, 60))
    img = np.clip(l_channel * 2.55, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 2.55


FILTERS: dict[str, Filter] = {
    "sepia": sepia,
    "grain": film_grain,
    "blur": blur,
    "faded": faded,
    "jpeg": jpeg_artifacts,
}


@dataclass(frozen=True)
class OldPhotoFilter:
    """Applies each named filter with probability ``p`` (independently, in a fixed order)."""

    names: Sequence[str]
    p: float = 0.3

    def __post_init__(self) -> None:
        unknown = set(self.names) - set(FILTERS)
        if unknown:
            raise ValueError(f"unknown old-photo filters {sorted(unknown)}; choose from {sorted(FILTERS)}")

    def __call__(self, l_channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = l_channel.astype(np.float32, copy=True)
        for name in self.names:
            if rng.random() < self.p:
                out = FILTERS[name](out, rng).astype(np.float32)
        return out
