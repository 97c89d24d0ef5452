"""How the frames of a video or frame sequence enter and leave the colorizing engine.

:func:`~colorizer.desktop.pipeline.video.colorize_frames` is the same for every stream; a frame
format says how a decoded picture becomes the model's input and how a predicted ab becomes the
output picture:

* :class:`RgbFrames`: RGB arrays (or a gray frame's one plane) in, RGB out at full resolution
  (float, or 8/16-bit) -- frame folders, lossless FFV1 output, sources that are not planar Y'CbCr.
* :class:`LumaFrames`: planar Y'CbCr video pictures in, whose luma plane passes through (bit for bit
  at 8 bits, rounded to 8 bits from more); only the output's 4:2:0 chroma planes are computed, at
  their own (quarter) resolution (:mod:`..media.yuv`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from colorizer.colorize import Prepared, merge_color, merge_color_strips, pixels_to_l, prepare, prepare_l
from colorizer.desktop.media.yuv import LumaPicture


def picture_hw(picture: Any) -> tuple[int, int]:
    """The upright (height, width) of a decoded picture of either format (what hints' pixels count)."""
    return tuple(picture.y.shape) if isinstance(picture, LumaPicture) else tuple(picture.shape[:2])


def picture_l(picture: Any) -> np.ndarray:
    """L (H, W) in [0, 100] of a decoded picture, as its frame format's ``prepare`` computes it."""
    return picture.l_plane() if isinstance(picture, LumaPicture) else pixels_to_l(picture)


class FrameFormat(Protocol):
    keeps_picture: bool  # whether finish() needs the decoded picture (else it is dropped once prepared)

    def prepare(self, picture: Any, render_size: int, size_multiple: int) -> Prepared: ...

    def finish(self, picture: Any, prepared: Prepared, ab: np.ndarray, saturation: float, upsampling: str
               ) -> Any: ...


@dataclass(frozen=True)
class RgbFrames:
    """RGB frames (uint8 / uint16 / float) colorized to RGB at full resolution: float32 in [0, 1],
    or with ``bit_depth`` 8 / 16 the pixels ``fileio.to_bit_depth`` makes of it (made cheaper in the
    merge); ``convert`` (e.g. to the encoder's picture) is applied to the result."""

    bit_depth: int | None = None
    convert: Callable[[np.ndarray], Any] | None = None
    keeps_picture = False

    def prepare(self, picture: np.ndarray, render_size: int, size_multiple: int) -> Prepared:
        return prepare(picture, render_size, size_multiple)  # RGB, or a gray frame's one plane

    def finish(self, picture: None, prepared: Prepared, ab: np.ndarray, saturation: float, upsampling: str
               ) -> Any:
        if self.bit_depth is None:
            rgb = merge_color(prepared, ab, saturation, upsampling)
        else:  # quantized strip by strip, bit-identical to fileio.to_bit_depth of the float frame
            dtype = np.uint8 if self.bit_depth == 8 else np.uint16
            rgb = merge_color(prepared, ab, saturation, upsampling, dtype, half_up=True)
        return self.convert(rgb) if self.convert else rgb


@dataclass(frozen=True)
class LumaFrames:
    """Y'CbCr pictures whose luma passes through: the model sees L of the full-resolution luma;
    the color is merged with L at the chroma planes' resolution and turned into Cb/Cr there;
    ``encode(picture, cb, cr)`` makes the output picture."""

    encode: Callable[[LumaPicture, np.ndarray, np.ndarray], Any]
    keeps_picture = True

    def prepare(self, picture: LumaPicture, render_size: int, size_multiple: int) -> Prepared:
        l_full = picture.l_plane()
        return prepare_l(l_full, render_size, size_multiple, l_merge=picture.l_chroma(l_full))

    def finish(self, picture: LumaPicture, prepared: Prepared, ab: np.ndarray, saturation: float,
               upsampling: str) -> Any:
        cb, cr = (np.empty(picture.chroma_shape, np.uint8) for _ in range(2))
        for y0, rgb in merge_color_strips(prepared, ab, saturation, upsampling):  # a strip at a time: bounded memory
            cb[y0 : y0 + len(rgb)], cr[y0 : y0 + len(rgb)] = picture.chroma(rgb)
        return self.encode(picture, cb, cr)
