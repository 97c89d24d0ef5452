"""Y'CbCr pictures (films, JPEG photos) whose luma plane passes through colorization untouched.

A black-and-white film decodes to a luma plane Y' and flat chroma planes; a gray photo is its
luma plane. Colorizing it only has to write new chroma: the output keeps the source's Y' (grain,
detail, exposure) and its Cb/Cr planes, a quarter of the pixels, are computed from the colorized
image at the chroma planes' resolution. Nothing is converted to full-resolution RGB and back,
neither here nor in the encoder (films go to libx264 in its own yuv420p, photos to libjpeg-turbo
as Y'CbCr 4:2:0 planes, :class:`colorizer.desktop.media.image_write.JpegPlanes`).

The matrix (BT.601, BT.709, ...) and range (limited 16-235 or full 0-255) are the source's, as
the writer tags the output with them (a JPEG's are always JFIF's: BT.601, full range). L, for
the model and the merge, is the L of the gray pixel that Y' decodes to (R' = G' = B'), exactly
what decoding to RGB and computing L gave before. A film's source may have any chroma
subsampling (its chroma is not read) and up to 16 bits: L then comes from all of them, and the 8-bit
output keeps each luma code's nearest 8-bit code (:func:`luma_to_8_bits`).
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
AVCOL_RANGE_JPEG = 2
AVCOL_SPC_BT470BG = 5  # BT.601, the matrix of JFIF (JPEG)
AV_FIELD_TT, AV_FIELD_BB, AV_FIELD_TB, AV_FIELD_BT = 2, 3, 4, 5  # AVFieldOrder of interlaced video
TOP_FIELD_FIRST = frozenset({AV_FIELD_TT, AV_FIELD_BT})  # by display order
BOTTOM_FIELD_FIRST = frozenset({AV_FIELD_BB, AV_FIELD_TB})


@functools.cache
def luma_bits(pix_fmt: str) -> int | None:
    """Bits of the luma plane of a decoded pixel format whose luma can pass through: planar Y'CbCr
    with Y' alone in the first plane (4:2:0, 4:2:2, 4:4:4, 4:1:1, ...: the chroma planes of a
    black-and-white source are not read), or gray (a film scanner's Y' alone), native byte order,
    8 to 16 integer bits; None for any other format."""
    import av  # PyAV only where videos are read: photos never call this

    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError):
        return None
    components = fmt.components
    gray = pix_fmt.startswith("gray") and not pix_fmt.startswith("grayf") and len(components) == 1
    planar_yuv = pix_fmt.startswith("yuv") and fmt.is_planar and len(components) == 3 \
        and all(c.plane != 0 for c in components[1:])
    if not (gray or planar_yuv) or fmt.is_big_endian or not components[0].is_luma or components[0].plane != 0:
        return None
    bits = components[0].bits
    return bits if 8 <= bits <= 16 else None


@functools.cache
def luma_l_table(full_range: bool, bits: int = 8) -> np.ndarray:
    """L in [0, 100] of each of the 2**bits luma codes: the L of the gray pixel (v, v, v) the code decodes to."""
    codes = np.arange(1 << bits, dtype=np.float32)
    if full_range:
        gray = codes / np.float32((1 << bits) - 1)
    else:  # limited range: the 8-bit codes 16-235 scaled by 2**(bits - 8)
        step = 1 << (bits - 8)
        gray = (codes - np.float32(16 * step)) / np.float32(219 * step)
    gray = np.clip(gray, 0.0, 1.0)
    table = np.ascontiguousarray(rgb_to_lab(np.repeat(gray[None, :, None], 3, axis=2))[0, :, 0])
    table.flags.writeable = False
    return table


def luma_to_8_bits(y: np.ndarray, bits: int, full_range: bool) -> np.ndarray:
    """A luma plane of ``bits`` bits as the nearest 8-bit codes (halves up): limited range divides by
    2**(bits - 8) (its codes are the 8-bit ones scaled), full range scales 0..2**bits - 1 to 0..255."""
    if bits == 8:
        return y
    wide = y.astype(np.uint32)
    if full_range:
        top = (1 << bits) - 1
        return ((wide * 510 + top) // (2 * top)).astype(np.uint8)
    shift = bits - 8
    return np.minimum((wide + (1 << (shift - 1))) >> shift, 255).astype(np.uint8)


@dataclass(frozen=True)
class LumaPicture:
    """An upright picture's luma plane and how to read it. Its 4:2:0 chroma planes have half its
    height and width, rounded up (as JPEG's: an odd last row or column has chroma of its own); a
    film's encoder needs an even size, to which ``VideoWriter.luma_frame`` pads or crops both."""

    y: np.ndarray  # (H, W) uint8, or uint16 holding ``bits`` bits; C-contiguous
    colorspace: int  # AVColorSpace of the matrix (see LUMA_COEFFICIENTS)
    color_range: int  # AVColorRange: 2 = full (JPEG), anything else = limited (MPEG)
    bits: int = 8
    interlaced: bool = False  # two fields in alternate rows: 4:2:0 chroma is sampled within each field

    def __post_init__(self) -> None:
        dtype = np.uint8 if self.bits == 8 else np.uint16
        if not 8 <= self.bits <= 16 or self.y.dtype != dtype or self.y.ndim != 2 or not self.y.flags.c_contiguous \
                or not self.y.size:
            raise ValueError(f"a {self.bits}-bit luma plane must be a C-contiguous 2-D {np.dtype(dtype).name} array, "
                             f"got {self.y.shape} {self.y.dtype}")

    @classmethod
    def jfif(cls, y: np.ndarray) -> LumaPicture:
        """A JPEG's luma plane (or the gray levels of a gray photo, which are their own luma)."""
        return cls(y, AVCOL_SPC_BT470BG, AVCOL_RANGE_JPEG)

    @property
    def full_range(self) -> bool:
        return self.color_range == AVCOL_RANGE_JPEG

    @property
    def chroma_shape(self) -> tuple[int, int]:
        return (self.y.shape[0] + 1) // 2, (self.y.shape[1] + 1) // 2

    @functools.cached_property
    def y8(self) -> np.ndarray:
        """The 8-bit luma plane an 8-bit output keeps: :attr:`y` itself, or its nearest 8-bit codes."""
        return luma_to_8_bits(self.y, self.bits, self.full_range)

    def l_plane(self) -> np.ndarray:
        """L (H, W) float32 of every pixel, by table lookup (of all :attr:`bits`)."""
        table = luma_l_table(self.full_range, self.bits)
        if self.bits == 8:
            return cv2.LUT(self.y, table).reshape(self.y.shape)
        return table[self.y]

    def l_chroma(self, l_plane: np.ndarray) -> np.ndarray:
        """``l_plane`` (:meth:`l_plane`) averaged over each chroma sample's 2x2 pixels (an odd last row
        or column repeated, as JPEG's encoder does): L at the chroma planes' resolution. In an
        interlaced picture (height a multiple of 4) a chroma row belongs to one field, as interlaced
        4:2:0 samples it: row 2j + f averages the pixel rows 4j + f and 4j + 2 + f of field f."""
        height, width = l_plane.shape
        if self.interlaced and height % 4 == 0 and width % 2 == 0:
            same_field = l_plane.reshape(height // 4, 2, 2, width).mean(axis=1, dtype=np.float32)
            rows = same_field.reshape(height // 2, width)
            return cv2.resize(rows, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        return halved_with_edges_repeated(l_plane)  # the chroma planes' size (:attr:`chroma_shape`)

    def chroma(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cb and Cr (uint8) of colorized float RGB in [0, 1] at the chroma planes' resolution (all
        their rows, or a strip of them), in this picture's matrix and range, rounded to nearest."""
        if rgb.ndim != 3 or rgb.shape[1:] != (self.chroma_shape[1], 3) or len(rgb) > self.chroma_shape[0]:
            raise ValueError(f"expected RGB rows of shape (n, {self.chroma_shape[1]}, 3), n <= "
                             f"{self.chroma_shape[0]}; got {rgb.shape}")
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


def halved_with_edges_repeated(plane: np.ndarray) -> np.ndarray:
    """``plane`` (H, W) float32 averaged over 2x2 blocks, an odd last row or column repeated: OpenCV's
    INTER_AREA halving of the plane padded by one row or column, block by block the same, without the
    padded copy of the whole plane (for a 150 MP scan of an odd size, 600 MB more at its peak)."""
    height, width = plane.shape
    if not height % 2 and not width % 2:
        return cv2.resize(plane, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    even_h, even_w = height - height % 2, width - width % 2
    out = np.empty(((height + 1) // 2, (width + 1) // 2), np.float32)
    if even_h and even_w:
        out[: even_h // 2, : even_w // 2] = cv2.resize(plane[:even_h, :even_w], (even_w // 2, even_h // 2),
                                                       interpolation=cv2.INTER_AREA)
    if width % 2:  # the last column beside itself (and the corner, under itself)
        column = cv2.copyMakeBorder(np.ascontiguousarray(plane[:, -1:]), 0, height % 2, 0, 1, cv2.BORDER_REPLICATE)
        out[:, -1:] = cv2.resize(column, (1, out.shape[0]), interpolation=cv2.INTER_AREA)
    if height % 2 and even_w:  # the last row under itself
        row = cv2.copyMakeBorder(np.ascontiguousarray(plane[-1:, :even_w]), 0, 1, 0, 0, cv2.BORDER_REPLICATE)
        out[-1:, : even_w // 2] = cv2.resize(row, (even_w // 2, 1), interpolation=cv2.INTER_AREA)
    return out
