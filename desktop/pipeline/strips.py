"""Photos of any size in bounded memory: L computed and color merged a strip of rows at a time.

The colorization needs only the render-size L (for the model) and the full-resolution L (to merge
with the upsampled ab). :func:`prepare_image` computes that L strip by strip from the decoded
pixels, so the float32 RGB and Lab planes of the whole photo never exist; :func:`finish_image`
upsamples the predicted ab (guided by the full-resolution L, as :func:`colorizer.colorize.finish`
does), merges it with L and converts to RGB strip by strip, straight into the output's 8- or 16-bit
array. What is held at full resolution is then the decoded pixels (until L is made), L (float32)
and the output: a few bytes per pixel instead of several float32 planes.

The finish itself is :func:`colorizer.colorize.finish_to`; L of a gray photo is looked up from its
gray levels (:func:`colorizer.contract.rgb_to_l`).
"""

from __future__ import annotations

import numpy as np

from colorizer.colorize import STRIP_PIXELS, Prepared, finish_to, prepare_l
from colorizer.contract import gray_to_l, rgb_to_l


def _strips(height: int, width: int) -> range:
    return range(0, height, max(1, STRIP_PIXELS // max(1, width)))


def luminance(rgb: np.ndarray) -> np.ndarray:
    """``contract.rgb_to_l`` of an (H, W, 3) image, computed a strip of rows at a time, or
    ``contract.gray_to_l`` of (H, W) uint8/uint16 gray levels (a decoded gray source); own float32 array."""
    if rgb.ndim == 2:
        return gray_to_l(rgb)
    height, width = rgb.shape[:2]
    rows = max(1, STRIP_PIXELS // max(1, width))
    out = np.empty((height, width), np.float32)
    for y0 in _strips(height, width):
        out[y0 : y0 + rows] = rgb_to_l(rgb[y0 : y0 + rows])
    return out


def prepare_image(pixels: np.ndarray, render_size: int, size_multiple: int) -> Prepared:
    """:func:`colorizer.colorize.prepare` in bounded memory (the same arrays) of (H, W, 3) RGB or
    (H, W) gray levels (``DecodedImage.pixels``)."""
    return prepare_l(luminance(pixels), render_size, size_multiple)


def finish_image(prepared: Prepared, ab_norm: np.ndarray, saturation: float = 1.0, upsampling: str = "guided",
                 bit_depth: int = 8) -> np.ndarray:
    """:func:`colorizer.colorize.finish` in bounded memory, straight to uint8 (``bit_depth`` 8) or uint16 RGB
    (:func:`colorizer.colorize.finish_to`: a strip of rows at a time)."""
    return finish_to(prepared, ab_norm, saturation, upsampling, bit_depth)
