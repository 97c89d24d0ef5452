"""8-bit 4:2:0 video pictures whose luma plane passes through colorization untouched.

A black-and-white film decodes to a luma plane Y' and flat chroma planes. Colorizing it only has
to write new chroma: the output keeps the source's Y' bit for bit (grain, detail, exposure) and
its Cb/Cr planes, a quarter of the pixels, are computed from the colorized image at the chroma
planes' resolution. Nothing is converted to full-resolution RGB and back, neither here nor in the
encoder (the pictures go to libx264 in its own yuv420p).

The matrix (BT.601, BT.709, ...) and range (limited 16-235 or full 0-255) are the source's, as
the writer tags the output with them. L, for the model and the merge, is the L of the gray pixel
that Y' decodes to (R' = G' = B'), exactly what decoding to RGB and computing L gave before.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from colorizer.contract import rgb_to_lab

LUMA_COEFFICIENTS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114),
                     7: (0.212, 0.087), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
"""AVColorSpace -> (Kr, Kb) of its Y'CbCr matrix (BT.709, FCC, BT.470BG, SMPTE 170M, SMPTE 240M, BT.2020)."""
PASSTHROUGH_FORMATS = frozenset({"yuv420p", "yuvj420p"})
"""Decoded pixel formats whose luma passes through (8-bit 4:2:0)."""
AVCOL_RANGE_JPEG = 2


@functools.cache
def luma_l_table(full_range: bool) -> np.ndarray:
    """L in [0, 100] of each of the 256 luma codes: the L of the gray pixel (v, v, v) the code decodes to."""
    codes = np.arange(256, dtype=np.float32)
    gray = codes / 255 if full_range else (codes - 16) / 219
    gray = np.clip(gray, 0.0, 1.0)
    table = np.ascontiguousarray(rgb_to_lab(np.repeat(gray[None, :, None], 3, axis=2))[0, :, 0])
    table.flags.writeable = False
    return table


@dataclass(frozen=True)
class LumaPicture:
    """An upright video picture's luma plane (even height and width) and how to read it."""

    y: np.ndarray  # (H, W) uint8, C-contiguous
    colorspace: int  # AVColorSpace of the matrix (see LUMA_COEFFICIENTS)
    color_range: int  # AVColorRange: 2 = full (JPEG), anything else = limited (MPEG)

    def __post_init__(self) -> None:
        h, w = self.y.shape
        if self.y.dtype != np.uint8 or h % 2 or w % 2:
            raise ValueError(f"a luma plane must be uint8 with an even size, got {self.y.shape} {self.y.dtype}")

    @property
    def full_range(self) -> bool:
        return self.color_range == AVCOL_RANGE_JPEG

    @property
    def chroma_shape(self) -> tuple[int, int]:
        return self.y.shape[0] // 2, self.y.shape[1] // 2

    def l_plane(self) -> np.ndarray:
        """L (H, W) float32 of every pixel, by table lookup."""
        return cv2.LUT(self.y, luma_l_table(self.full_range)).reshape(self.y.shape)

    def chroma(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cb and Cr planes (uint8, the chroma shape) of the colorized float RGB in [0, 1] at the
        chroma planes' resolution, in this picture's matrix and range, rounded to nearest."""
        if rgb.shape != (*self.chroma_shape, 3):
            raise ValueError(f"expected RGB of shape {(*self.chroma_shape, 3)}, got {rgb.shape}")
        kr, kb = LUMA_COEFFICIENTS.get(self.colorspace, LUMA_COEFFICIENTS[5])
        scale = np.float32(255.0 if self.full_range else 224.0)
        red, green, blue = cv2.split(np.ascontiguousarray(rgb, dtype=np.float32))
        luma = cv2.addWeighted(red, kr, blue, kb, 0.0)
        cv2.scaleAdd(green, 1.0 - kr - kb, luma, dst=luma)
        planes = []
        for channel, k in ((blue, kb), (red, kr)):
            np.subtract(channel, luma, out=channel)  # B' - Y', R' - Y' in [-1+k, 1-k]
            # x * alpha + 128 >= 0.5 for every x in that range: the absolute value OpenCV takes changes nothing
            planes.append(cv2.convertScaleAbs(channel, alpha=float(scale / (2 * (1 - k))), beta=128.0))
        return planes[0], planes[1]
