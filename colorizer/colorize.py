"""Full-resolution colorization around any ab predictor (PyTorch, ONNX Runtime, TensorRT).

The model runs at a *render size* (long side); its ab prediction is upsampled to the original
size and merged with the original full-resolution L, so luminance detail is never lost. The work
is split in two halves so a runtime can batch the model call between them:

    prepared = prepare(rgb, render_size, size_multiple)   # decode side
    ab = predict(prepared.model_input[None])[0]           # batched inference
    rgb_out = finish(prepared, ab)                        # encode side
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from colorizer.contract import Padding, denormalize_ab, merge_l_ab, normalize_l, pad_to_multiple, rgb_to_l

Predictor = Callable[[np.ndarray], np.ndarray]
"""(N, 1, H, W) normalized L -> (N, 2, H, W) normalized ab."""

UPSAMPLING_MODES = ("guided", "bilinear")


@dataclass(frozen=True)
class Prepared:
    """One image made ready for the model, and what is needed to finish it."""

    l_full: np.ndarray  # (H, W) float32 L in [0, 100] at full resolution
    model_input: np.ndarray  # (1, h, w) float32 normalized L at render size, padded
    padding: Padding

    @property
    def render_shape(self) -> tuple[int, int]:
        return self.model_input.shape[-2], self.model_input.shape[-1]


def render_hw(height: int, width: int, render_size: int) -> tuple[int, int]:
    """Size at which the model sees an image: long side = render_size, aspect kept, never upscaled."""
    scale = min(1.0, render_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def prepare_l(l_full: np.ndarray, render_size: int, size_multiple: int, pad_mode: str = "reflect") -> Prepared:
    h, w = l_full.shape
    rh, rw = render_hw(h, w, render_size)
    l_small = l_full if (rh, rw) == (h, w) else cv2.resize(l_full, (rw, rh), interpolation=cv2.INTER_AREA)
    padded, padding = pad_to_multiple(normalize_l(l_small), size_multiple, pad_mode)
    return Prepared(l_full=l_full, model_input=padded[None].astype(np.float32, copy=False), padding=padding)


def prepare(rgb: np.ndarray, render_size: int, size_multiple: int, pad_mode: str = "reflect") -> Prepared:
    """RGB (H, W, 3) uint8/uint16/float -> a Prepared; color photos are reduced to their L."""
    return prepare_l(rgb_to_l(rgb), render_size, size_multiple, pad_mode)


def guided_coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """He et al.'s guided filter as a local linear model: src ~= a * guide + b in each window."""
    ksize = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, ksize, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    var_i = box(guide * guide) - mean_i * mean_i
    a = (box(guide * src) - mean_i * mean_p) / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a), box(b)


def upsample_ab(ab: np.ndarray, l_full: np.ndarray, mode: str = "guided") -> np.ndarray:
    """ab (h, w, 2) at render size -> (H, W, 2) at the size of ``l_full``.

    ``guided`` is fast guided upsampling (He & Sun 2015): the linear model ab ~= a * L + b is fitted
    at render size against the downscaled L, then a and b are upsampled and applied to the
    full-resolution L, so chroma edges follow the real luminance edges. Memory stays at a few
    full-resolution planes. ``bilinear`` simply resizes.
    """
    if mode not in UPSAMPLING_MODES:
        raise ValueError(f"unknown upsampling {mode!r}; choose from {', '.join(UPSAMPLING_MODES)}")
    h, w = l_full.shape
    if ab.shape[:2] == (h, w):
        return ab
    if mode == "bilinear":
        return cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
    small_h, small_w = ab.shape[:2]
    guide_full = l_full * np.float32(1 / 100)
    guide_small = cv2.resize(guide_full, (small_w, small_h), interpolation=cv2.INTER_AREA)
    coeffs = [guided_coefficients(guide_small, np.ascontiguousarray(ab[..., c]), radius=2, eps=1e-3) for c in range(2)]
    # both channels resized in one call each, then out = A * L + B in place: a few full-size planes only
    a_full = cv2.resize(np.dstack([coeffs[0][0], coeffs[1][0]]), (w, h), interpolation=cv2.INTER_LINEAR)
    b_full = cv2.resize(np.dstack([coeffs[0][1], coeffs[1][1]]), (w, h), interpolation=cv2.INTER_LINEAR)
    a_full *= guide_full[..., None]
    a_full += b_full
    return a_full


def finish(prepared: Prepared, ab_norm: np.ndarray, saturation: float = 1.0, upsampling: str = "guided") -> np.ndarray:
    """Model output (2, h, w) normalized ab for ``prepared`` -> float32 RGB (H, W, 3) in [0, 1]."""
    ab = denormalize_ab(prepared.padding.crop(ab_norm)).transpose(1, 2, 0)
    ab = upsample_ab(np.ascontiguousarray(ab), prepared.l_full, upsampling)
    if saturation != 1.0:
        ab = ab * np.float32(saturation)
    return merge_l_ab(prepared.l_full, ab)


def colorize(
    rgb: np.ndarray,
    predict: Predictor,
    render_size: int,
    size_multiple: int,
    saturation: float = 1.0,
    upsampling: str = "guided",
) -> np.ndarray:
    """Colorize one image with ``predict``; returns float32 RGB in [0, 1] at full resolution."""
    prepared = prepare(rgb, render_size, size_multiple)
    ab = predict(prepared.model_input[None])[0]
    return finish(prepared, ab, saturation, upsampling)
