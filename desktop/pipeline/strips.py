"""Photos of any size in bounded memory: L computed and color merged a strip of rows at a time.

The colorization needs only the render-size L (for the model) and the full-resolution L (to merge
with the upsampled ab). :func:`prepare_image` computes that L strip by strip from the decoded
pixels, so the float32 RGB and Lab planes of the whole photo never exist; :func:`finish_image`
upsamples the predicted ab (guided by the full-resolution L, as :func:`colorizer.colorize.finish`
does), merges it with L and converts to RGB strip by strip, straight into the output's 8- or 16-bit
array. What is held at full resolution is then the decoded pixels (until L is made), L (float32)
and the output: a few bytes per pixel instead of several float32 planes.

The results are those of :mod:`colorizer.colorize` up to float rounding: the color coefficients are
fitted at render size the same way, resized across the width with OpenCV and down the height here,
with OpenCV's half-pixel convention and edge clamping.
"""

from __future__ import annotations

import cv2
import numpy as np

from colorizer.colorize import Prepared, guided_coefficients, prepare_l
from colorizer.contract import denormalize_ab, merge_l_ab, rgb_to_l
from colorizer.fileio import to_bit_depth

STRIP_PIXELS = 1 << 19
"""Pixels per strip (0.5 MP: about 30 MB of float32 temporaries, whatever the size of the photo)."""


def _strips(height: int, width: int) -> range:
    return range(0, height, max(1, STRIP_PIXELS // max(1, width)))


def luminance(rgb: np.ndarray) -> np.ndarray:
    """``contract.rgb_to_l`` of an (H, W, 3) image, computed a strip of rows at a time (own float32 array)."""
    height, width = rgb.shape[:2]
    rows = max(1, STRIP_PIXELS // max(1, width))
    out = np.empty((height, width), np.float32)
    for y0 in _strips(height, width):
        out[y0 : y0 + rows] = rgb_to_l(rgb[y0 : y0 + rows])
    return out


def prepare_image(rgb: np.ndarray, render_size: int, size_multiple: int) -> Prepared:
    """:func:`colorizer.colorize.prepare` in bounded memory (the same arrays)."""
    return prepare_l(luminance(rgb), render_size, size_multiple)


def _row_weights(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each destination row: the two source rows and the weight of the second (OpenCV's bilinear)."""
    position = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    first = np.floor(position).astype(np.int64)
    weight = (position - first).astype(np.float32)
    weight[first < 0] = 0.0
    first = np.clip(first, 0, src - 1)
    weight[first >= src - 1] = 0.0
    return first, np.minimum(first + 1, src - 1), weight


def _color_planes(prepared: Prepared, ab_norm: np.ndarray, upsampling: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(A, B) at render height and full width such that ab = A * L/100 + B (B None: ab = A)."""
    l_full = prepared.l_full
    height, width = l_full.shape
    ab = np.ascontiguousarray(denormalize_ab(prepared.padding.crop(ab_norm)).transpose(1, 2, 0))
    small_h, small_w = ab.shape[:2]
    if upsampling == "bilinear" or (small_h, small_w) == (height, width):
        return cv2.resize(ab, (width, small_h), interpolation=cv2.INTER_LINEAR), None
    if upsampling != "guided":
        raise ValueError(f"unknown upsampling {upsampling!r}; choose from guided, bilinear")
    guide_small = cv2.resize(l_full, (small_w, small_h), interpolation=cv2.INTER_AREA) * np.float32(1 / 100)
    coeffs = [guided_coefficients(guide_small, np.ascontiguousarray(ab[..., c]), radius=2, eps=1e-3) for c in range(2)]
    a = cv2.resize(np.dstack([coeffs[0][0], coeffs[1][0]]), (width, small_h), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(np.dstack([coeffs[0][1], coeffs[1][1]]), (width, small_h), interpolation=cv2.INTER_LINEAR)
    return a, b


def finish_image(prepared: Prepared, ab_norm: np.ndarray, saturation: float = 1.0, upsampling: str = "guided",
                 bit_depth: int = 8) -> np.ndarray:
    """:func:`colorizer.colorize.finish` in bounded memory, straight to uint8 (``bit_depth`` 8) or uint16 RGB."""
    l_full = prepared.l_full
    height, width = l_full.shape
    a, b = _color_planes(prepared, ab_norm, upsampling)
    first, second, weight = _row_weights(height, a.shape[0])
    out = np.empty((height, width, 3), np.uint8 if bit_depth == 8 else np.uint16)
    rows = max(1, STRIP_PIXELS // max(1, width))
    for y0 in _strips(height, width):
        y1 = min(height, y0 + rows)
        w = weight[y0:y1, None, None]
        ab = a[first[y0:y1]] * (1 - w) + a[second[y0:y1]] * w
        if b is not None:
            ab *= l_full[y0:y1, :, None] * np.float32(1 / 100)
            ab += b[first[y0:y1]] * (1 - w) + b[second[y0:y1]] * w
        if saturation != 1.0:
            ab *= np.float32(saturation)
        out[y0:y1] = to_bit_depth(merge_l_ab(l_full[y0:y1], ab), bit_depth)
    return out
