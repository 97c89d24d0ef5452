"""Decoding image files: upright RGB (8 or 16 bits), alpha, and the metadata for the output.

Files are recognized by their content (:mod:`.formats`), never by their extension: JPEG, PNG,
TIFF, WebP and BMP. :func:`read_image` returns a :class:`DecodedImage` with the EXIF orientation
already applied; :func:`read_image_for_display` the same, reduced while decoding where the format
allows it (a JPEG's DCT scaling: 1/2, 1/4 or 1/8 of the size, for a fraction of the time and
memory), for a viewer that shows a photo at screen size and colorizes nothing. Pixels of 8-bit
sources come from Pillow; 16-bit (and float) PNG and TIFF pixels come from OpenCV, because Pillow
truncates 16-bit RGB to 8 bits; TIFFs whose samples Pillow has no mode for (float RGB, 16- or
64-bit float, 16-bit gray + alpha) come from tifffile. Metadata always comes from Pillow's tag
parsing (:mod:`.image_metadata`). The input is only ever opened for reading, and a truncated or
corrupt file is an error, never a half-gray picture.

What is read: pixels of any Pillow mode (palette, 1-bit, gray, gray+alpha, RGB, RGBA, CMYK...)
become RGB; PNG and TIFF with 16-bit samples stay 16-bit (float TIFF samples are taken as [0, 1]
and stored as 16 bits). EXIF comes from JPEG APP1, PNG eXIf (or ImageMagick's hex "Raw profile
type exif" text), the WebP EXIF chunk and TIFF tags; ICC from all formats but BMP; DPI from JPEG,
PNG, TIFF and BMP; XMP from JPEG, PNG, TIFF and WebP; text from PNG text chunks and the JPEG
comment. (For 16-bit PNGs, chunks placed after the pixel data are not read.)
"""

from __future__ import annotations

import functools
import io
import logging
import math
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import NamedTuple

import cv2
import numpy as np
import tifffile
from PIL import BmpImagePlugin, Image, ImageFile, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from colorizer.desktop.media.errors import ImageReadError
from colorizer.desktop.media.formats import (
    SNIFF_BYTES,
    check_regular_file,
    detect_format_bytes,
    not_an_image_reason,
)
from colorizer.desktop.media.image_metadata import ImageMetadata, read_metadata
from colorizer.desktop.media.tiff_tags import load_ifd, reset_orientation
from colorizer.fileio import PathLike, os_error_reason

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 300_000_000
"""Images above this many pixels are refused unless the caller raises ``max_pixels``."""
DECODER_MAX_PIXELS = 1 << 30
"""The most pixels the decoders take (OpenCV's CV_IO_MAX_IMAGE_PIXELS; it refuses larger images with an
error that reads like corrupt data): the highest ``max_pixels`` that means what it says. A run passes it
and lets the memory a photo may take decide (``pipeline.stages.check_memory``)."""
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
_COLOR_CHROMA_THRESHOLD = 0.012  # mean (max - min) channel spread, fraction of full scale
_CHROMA_SAMPLE_PIXELS = 1_000_000
_FLOAT_STRIP_SAMPLES = 1 << 20  # float samples made 16-bit at a time
_TAG_ICC_PROFILE = 34675
_TAG_PHOTOMETRIC, _MINISWHITE = 262, 0
_TIFFFILE_PHOTOMETRICS = frozenset(
    {tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE, tifffile.PHOTOMETRIC.RGB}
)
_ORIENTATION_TRANSFORMS: Mapping[int, Callable[[np.ndarray], np.ndarray]] = MappingProxyType(
    {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
)
# Exceptions Pillow and OpenCV raise on bad data.
_DECODER_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    TypeError,
    zlib.error,
    cv2.error,
)


class _DecodeError(Exception):
    """Internal: why decoding failed; :func:`read_image` adds the path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """A decoded image file: upright pixels, alpha, and the metadata for its output."""

    pixels: np.ndarray
    """uint8 or uint16, EXIF orientation applied: (H, W) gray levels for a gray source (a scan is
    decoded, colorized and measured without three copies of its one channel), else (H, W, 3) RGB."""
    alpha: np.ndarray | None
    """(H, W) of the same dtype as ``pixels``, or None."""
    format: str
    """One of :data:`FORMATS`."""
    bit_depth: int
    """8 or 16 (bits per channel of ``pixels``)."""
    is_color: bool
    """Whether the source had color (a color mode and visible chroma)."""
    metadata: ImageMetadata
    mode: str
    """Pillow's mode of the source ("RGB", "P", "CMYK", "I;16", ...), for reports."""

    @functools.cached_property
    def rgb(self) -> np.ndarray:
        """(H, W, 3) RGB of the same dtype: gray levels replicated to three channels (made once, on first use)."""
        return _gray_to_rgb(self.pixels) if self.pixels.ndim == 2 else self.pixels

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


@dataclass(frozen=True)
class ImageHeader:
    """What a file declares before its pixels are decoded."""

    format: str
    width: int
    height: int
    bits: int  # per sample of the source
    mode: str  # Pillow's mode

    @property
    def pixels(self) -> int:
        return self.width * self.height


Admit = Callable[[ImageHeader], None]
"""Called with the header before any pixel is decoded; may wait (a memory budget) or raise to refuse."""


class _Pixels(NamedTuple):
    pixels: np.ndarray  # (H, W) gray or (H, W, 3) RGB
    alpha: np.ndarray | None
    gray_source: bool


def read_image(path: PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, admit: Admit | None = None
               ) -> DecodedImage:
    """Decode the image file at ``path`` (see :class:`DecodedImage`).

    ``max_pixels`` (None = no limit) refuses larger images before their pixels are decoded, and so
    does a header that declares more pixels than the file's data could hold (a lying or truncated
    file is refused before memory is set aside for it). ``admit``, when given, sees the header
    before the pixels are decoded (whatever it raises goes on to the caller).
    Raises :class:`ImageReadError` for a missing, unreadable, empty, truncated, corrupt, too large
    or unsupported file. The file is opened read-only and never modified.
    """
    return _read(Path(path), max_pixels, admit)


def read_image_for_display(path: PathLike, max_side: int, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                           admit: Admit | None = None) -> DecodedImage:
    """:func:`read_image` for showing the photo with its long side at most ``max_side``: a JPEG is
    decoded at the smallest of 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling, Pillow's
    ``draft``) whose sides are at least the photo's reduced to ``max_side`` (the caller reduces it
    the rest of the way); other formats are decoded whole. Everything else is :func:`read_image`'s:
    the checks before decoding (``max_pixels``, ``admit``, which see the file's own size), the EXIF
    orientation, gray kept as one plane, 16 bits. Its pixels are a picture to look at, not the
    photo: never colorize them (a run decodes the photo whole)."""
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    return _read(Path(path), max_pixels, admit, max_side)


def _read(path: Path, max_pixels: int | None, admit: Admit | None, display_side: int | None = None) -> DecodedImage:
    """:func:`read_image` (``display_side`` None) or :func:`read_image_for_display`."""
    data = _read_file(path)
    fmt = detect_format_bytes(data[:SNIFF_BYTES])
    if fmt is None:
        raise ImageReadError(path, not_an_image_reason(data[:SNIFF_BYTES]))
    try:
        return _decode(data, fmt, max_pixels, admit, display_side)
    except _DecodeError as exc:
        raise ImageReadError(path, exc.reason) from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            path,
            f"image larger than Pillow's safety limit ({exc}); raise PIL.Image.MAX_IMAGE_PIXELS to allow it",
        ) from exc
    except MemoryError as exc:
        raise ImageReadError(path, "not enough memory to decode it") from exc
    except _DECODER_ERRORS as exc:
        raise ImageReadError(path, _decoder_error_reason(fmt, exc)) from exc


def _read_file(path: Path) -> bytes:
    try:
        check_regular_file(path)
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ImageReadError(path, os_error_reason(exc, reading=True)) from exc
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    return data


def _decoder_error_reason(fmt: str, exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    if "truncated" in detail.lower() or isinstance(exc, EOFError):
        return f"truncated {fmt} data, the file is incomplete ({detail})"
    return f"corrupt {fmt} data ({type(exc).__name__}: {detail})"


def _pillow_image_class(fmt: str) -> type[ImageFile.ImageFile]:
    if fmt == "WEBP":
        try:
            from PIL import WebPImagePlugin
        except ImportError as exc:
            raise _DecodeError("this Pillow build has no WebP support") from exc
        return WebPImagePlugin.WebPImageFile
    classes: dict[str, type[ImageFile.ImageFile]] = {
        "JPEG": JpegImagePlugin.JpegImageFile,
        "PNG": PngImagePlugin.PngImageFile,
        "TIFF": TiffImagePlugin.TiffImageFile,
        "BMP": BmpImagePlugin.BmpImageFile,
    }
    return classes[fmt]


def _decode(data: bytes, fmt: str, max_pixels: int | None, admit: Admit | None,
            display_side: int | None = None) -> DecodedImage:
    tiff_orientation = 1
    if fmt == "TIFF":
        # Recent Pillow and OpenCV rotate TIFFs while decoding, older ones do not: neutralize the
        # tag in this in-memory copy so every decoder gives the pixels as stored, then rotate here.
        data, tiff_orientation = reset_orientation(data)
    try:
        pixels, metadata, orientation, mode = _decode_with_pillow(data, fmt, max_pixels, admit, display_side)
    except SyntaxError as exc:  # Pillow knows no mode for these samples (float RGB, 16-bit gray + alpha...)
        if fmt != "TIFF" or "unknown pixel mode" not in str(exc):
            raise
        pixels, metadata, orientation, mode = _decode_tiff_with_tifffile(data, max_pixels, admit)
    orientation = tiff_orientation if fmt == "TIFF" else orientation
    upright = _apply_orientation(pixels.pixels, orientation)
    alpha = None if pixels.alpha is None else _apply_orientation(pixels.alpha, orientation)
    return DecodedImage(
        pixels=upright,
        alpha=alpha,
        format=fmt,
        bit_depth=16 if upright.dtype == np.uint16 else 8,
        is_color=upright.ndim == 3 and not pixels.gray_source and has_color(upright),
        metadata=metadata,
        mode=mode,
    )


def _decode_with_pillow(
    data: bytes, fmt: str, max_pixels: int | None, admit: Admit | None, display_side: int | None = None
) -> tuple[_Pixels, ImageMetadata, int, str]:
    """Pixels (as stored), metadata, EXIF orientation and Pillow's mode, Pillow reading the header;
    ``display_side``: a JPEG reduced while decoding (:func:`_draft_for_display`)."""
    # The plugin class is used directly (not Image.open) so that ``max_pixels`` is the limit,
    # not Pillow's process-wide MAX_IMAGE_PIXELS and its warnings.
    with _pillow_image_class(fmt)(io.BytesIO(data)) as im:
        _check_pixel_count(im.size, max_pixels)
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            logger.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: truncated files may go unnoticed")
        bits = _source_bits(im, data, fmt)
        _check_declared_data(data, fmt, im.size, bits)
        if admit is not None:
            admit(ImageHeader(fmt, im.size[0], im.size[1], bits, im.mode))
        _refuse_several_pictures(im, fmt)
        if bits > 8 or _large_plain_tiff(im, fmt):
            pixels = _decode_with_opencv(data, fmt, bits, im)
        else:
            if display_side is not None and fmt == "JPEG":
                _draft_for_display(im, display_side)
            im.load()  # forces the full decode: truncated data raises here
            pixels = _pillow_pixels(im)
        metadata, orientation = read_metadata(im, data, fmt)
        return pixels, metadata, orientation, im.mode


def _draft_for_display(im: ImageFile.ImageFile, display_side: int) -> None:
    """Set a JPEG to decode at the smallest DCT scale (1/2, 1/4, 1/8) whose sides are at least its own
    reduced to a long side of ``display_side`` (the same in any orientation); its mode stays."""
    width, height = im.size
    f = min(1.0, display_side / max(width, height))
    if f < 1.0:
        im.draft(im.mode, (max(1, math.ceil(width * f)), max(1, math.ceil(height * f))))


_NEW_SUBFILE_TYPE, _REDUCED_RESOLUTION = 254, 1


def _refuse_several_pictures(im: ImageFile.ImageFile, fmt: str) -> None:
    """A multi-page TIFF or an animated PNG/WebP is refused: colorizing its first picture alone would
    give an output that silently lacks the rest. A TIFF's reduced-resolution pages (thumbnails) do
    not count. The image is left at its first picture."""
    frames = getattr(im, "n_frames", 1)
    if frames <= 1:
        return
    if fmt != "TIFF":
        raise _DecodeError(f"an animated {fmt} ({frames} frames): only still pictures are colorized here; "
                           "convert it to a video or a folder of frames first")
    pages = 0
    try:
        for index in range(frames):
            im.seek(index)
            pages += not int(im.tag_v2.get(_NEW_SUBFILE_TYPE, 0)) & _REDUCED_RESOLUTION
    finally:
        im.seek(0)
    if pages > 1:
        raise _DecodeError(f"a multi-page TIFF ({pages} pages): each page needs its own output; "
                           "split it into one file a page first (for example with tiffsplit)")


def _decode_tiff_with_tifffile(
    data: bytes, max_pixels: int | None, admit: Admit | None
) -> tuple[_Pixels, ImageMetadata, int, str]:
    """A TIFF whose samples Pillow has no mode for (float RGB, 64- or 16-bit float, 16-bit gray with
    alpha...), read by tifffile: its first page, as stored; metadata from its first IFD's tags."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        photometric = tifffile.PHOTOMETRIC(page.photometric)
        mode = f"{photometric.name} {page.samplesperpixel}x{page.dtype}"
        _check_pixel_count((page.imagewidth, page.imagelength), max_pixels)
        if admit is not None:
            admit(ImageHeader("TIFF", page.imagewidth, page.imagelength, page.bitspersample, mode))
        if photometric not in _TIFFFILE_PHOTOMETRICS or page.imagedepth > 1:
            raise _DecodeError(f"unsupported TIFF samples: {mode} (photometric {photometric.name})")
        array = page.asarray()  # truncated or corrupt data raises
        if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and page.samplesperpixel > 1:
            array = np.moveaxis(array, 0, -1)
        tags = load_ifd(data, page.offset)
    array = _high_depth_samples(array)
    if array.ndim == 2:
        array = array[..., None]
    if photometric == tifffile.PHOTOMETRIC.RGB:
        rgb, extra = array[..., :3], array[..., 3:]
        gray_source = False
    else:
        rgb, extra = array[..., 0], array[..., 1:]
        if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
            rgb = np.iinfo(rgb.dtype).max - rgb
        gray_source = True
    alpha = np.ascontiguousarray(extra[..., 0]) if extra.shape[-1] else None
    icc = tags.get(_TAG_ICC_PROFILE)
    image = SimpleNamespace(tag_v2=tags, info={"icc_profile": bytes(icc) if icc else None})  # what it reads of a TIFF
    metadata, orientation = read_metadata(image, data, "TIFF")  # type: ignore[arg-type]
    return _Pixels(np.ascontiguousarray(rgb), alpha, gray_source), metadata, orientation, mode


def _check_pixel_count(size: tuple[int, int], max_pixels: int | None) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise _DecodeError(f"invalid image size {width}x{height}")
    if max_pixels is not None and width * height > max_pixels:
        raise _DecodeError(
            f"image too large: {width}x{height} = {width * height / 1e6:.0f} megapixels exceeds the limit of "
            f"{max_pixels / 1e6:.0f} megapixels " + ("(the most the decoders take)" if max_pixels >= DECODER_MAX_PIXELS
                                                    else "(raise max_pixels to allow it, if memory permits)")
        )


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand one byte into more than ~1032


def _check_declared_data(data: bytes, fmt: str, size: tuple[int, int], bits: int) -> None:
    """Refuse a header that declares more pixels than the file's data could possibly hold."""
    width, height = size
    if fmt == "PNG" and len(data) > 25:
        row_bytes = 1 + (width * _PNG_CHANNELS.get(data[25], 4) * bits + 7) // 8
        needed = height * row_bytes // _DEFLATE_MAX_RATIO
        held = _png_idat_bytes(data)
    elif fmt == "JPEG":
        needed = ((width + 7) // 8) * ((height + 7) // 8) // 8  # at least one bit per 8x8 block
        held = len(data)
    else:
        return
    if held < needed:
        raise _DecodeError(f"the header declares {width}x{height} pixels, but the file holds only {held} bytes of "
                           f"image data (at least {needed} needed): truncated or damaged")


def _png_idat_bytes(data: bytes) -> int:
    """Total length of the PNG's IDAT chunks (read from the chunk headers only)."""
    total, position = 0, 8
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        if kind == b"IDAT":
            total += min(length, len(data) - position - 8)
        elif kind == b"IEND":
            break
        position += 12 + length
    return total


def _source_bits(im: ImageFile.ImageFile, data: bytes, fmt: str) -> int:
    """Bits per sample of the source (8 for everything but deep PNG and TIFF)."""
    if fmt == "PNG" and len(data) > 24:
        return int(data[24])  # IHDR bit depth
    if fmt == "TIFF":
        bits = im.tag_v2.get(258, 1)
        return max(bits) if isinstance(bits, tuple) else int(bits)
    return 8


def _large_plain_tiff(im: ImageFile.ImageFile, fmt: str) -> bool:
    """Whether Pillow would refuse (or warn about) decoding this TIFF though ``max_pixels`` allows it.

    Pillow checks TIFFs against its own process-wide limit when it decodes them; OpenCV decodes
    these plain modes as well and has no such limit below ``max_pixels``.
    """
    limit = Image.MAX_IMAGE_PIXELS
    too_large = limit is not None and im.size[0] * im.size[1] > limit
    return fmt == "TIFF" and too_large and im.mode in ("L", "LA", "RGB", "RGBA")


def _decode_with_opencv(data: bytes, fmt: str, bits: int, im: ImageFile.ImageFile) -> _Pixels:
    """PNG/TIFF pixels through OpenCV, which keeps 16 bits (orientation not applied)."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        if im.mode.startswith("I;16"):  # 16-bit gray: Pillow keeps it too
            im.load()
            return _pillow_pixels(im)
        problem = "corrupt or truncated" if bits in (16, 32) else f"unsupported {bits}-bit samples, or corrupt"
        raise _DecodeError(f"{problem} {bits}-bit {fmt} data (the decoder rejected it)")
    if array.shape[:2] != (im.height, im.width):
        raise _DecodeError(f"decoders disagree on the size ({array.shape[1]}x{array.shape[0]} vs {im.size})")
    array = _high_depth_samples(array)
    if fmt == "TIFF" and im.tag_v2.get(_TAG_PHOTOMETRIC) == _MINISWHITE:  # OpenCV gives the stored values
        array = _inverted_gray(array)
    if array.ndim == 2:
        return _Pixels(np.ascontiguousarray(array), None, gray_source=True)
    channels = array.shape[2]
    if channels == 1:
        return _Pixels(np.ascontiguousarray(array[..., 0]), None, gray_source=True)
    if channels == 2:
        return _Pixels(np.ascontiguousarray(array[..., 0]), np.ascontiguousarray(array[..., 1]), gray_source=True)
    if channels == 3:
        return _Pixels(np.ascontiguousarray(array[..., ::-1]), None, gray_source=False)
    if channels == 4:
        return _Pixels(np.ascontiguousarray(array[..., 2::-1]), np.ascontiguousarray(array[..., 3]), False)
    raise _DecodeError(f"unsupported number of channels: {channels}")


def _inverted_gray(array: np.ndarray) -> np.ndarray:
    """A MinIsWhite TIFF's gray levels (0 = white) as MinIsBlack ones; alpha stays."""
    top = np.iinfo(array.dtype).max
    if array.ndim == 2:
        return top - array
    inverted = array.copy()
    inverted[..., 0] = top - array[..., 0]
    return inverted


def _high_depth_samples(array: np.ndarray) -> np.ndarray:
    if array.dtype in (np.uint8, np.uint16):
        return array
    if np.issubdtype(array.dtype, np.floating):
        logger.debug("floating-point samples taken as [0, 1] and stored as 16 bits")
        out = np.empty(array.shape, np.uint16)
        rows = max(1, _FLOAT_STRIP_SAMPLES // max(1, array[:1].size))
        for y in range(0, array.shape[0], rows):  # a strip at a time: whole, the temporaries of a 60 MP
            strip = array[y : y + rows].astype(np.float32)  # float RGB scan took 2.6 GB more than its pixels
            np.nan_to_num(strip, copy=False)
            np.clip(strip, 0.0, 1.0, out=strip)
            strip *= 65535.0
            strip += 0.5
            out[y : y + rows] = strip  # truncated, as astype(np.uint16)
        return out
    raise _DecodeError(f"unsupported sample type {array.dtype} (only 8- and 16-bit integer samples are read)")


def _pillow_pixels(im: Image.Image) -> _Pixels:
    """Pixels of a loaded Pillow image as RGB (+ alpha), whatever its mode."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        gray = np.asarray(im)
        gray = np.clip(gray, 0, 65535).astype(np.uint16) if mode == "I" else gray.astype(np.uint16)
        return _Pixels(np.ascontiguousarray(gray), None, gray_source=True)
    gray_source = mode in _GRAY_MODES
    im = _to_basic_mode(im)
    array = np.asarray(im)
    if im.mode == "L":
        return _Pixels(np.ascontiguousarray(array), None, gray_source)
    if im.mode == "LA":
        return _Pixels(np.ascontiguousarray(array[..., 0]), np.ascontiguousarray(array[..., 1]), gray_source)
    if im.mode == "RGBA":
        return _Pixels(np.ascontiguousarray(array[..., :3]), np.ascontiguousarray(array[..., 3]), gray_source)
    return _Pixels(np.array(array), None, gray_source)


def _to_basic_mode(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to one of L, LA, RGB, RGBA."""
    mode = im.mode
    if mode in ("L", "RGB") and im.info.get("transparency") is not None:  # PNG tRNS: one color is transparent
        return im.convert("LA" if mode == "L" else "RGBA")
    if mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode in ("P", "PA"):
        return im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    target = {"1": "L", "La": "LA", "RGBa": "RGBA"}.get(mode, "RGB")
    try:
        return im.convert(target)
    except ValueError as exc:
        raise _DecodeError(f"unsupported pixel mode {mode!r}") from exc


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    """CMYK -> sRGB through the embedded profile when there is one, else Pillow's plain formula."""
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                return converted
        except Exception as exc:  # ImportError, OSError, ImageCms.PyCMSError (a bare Exception subclass)
            logger.debug("CMYK conversion through the embedded profile failed (%s); using the plain one", exc)
    return im.convert("RGB")


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    transform = _ORIENTATION_TRANSFORMS.get(orientation)
    if transform is None:
        if orientation != 1:
            logger.debug("ignoring invalid EXIF orientation %r", orientation)
        return array
    return np.ascontiguousarray(transform(array))


def has_color(rgb: np.ndarray, threshold: float = _COLOR_CHROMA_THRESHOLD) -> bool:
    """Whether an RGB image shows color: mean channel spread (max - min) above ``threshold``.

    ``threshold`` is a fraction of full scale; the default ignores JPEG chroma noise on gray
    pictures stored as RGB, while sepia-toned prints count as color. Large images are subsampled.
    """
    step = max(1, int(np.ceil(np.sqrt(rgb.shape[0] * rgb.shape[1] / _CHROMA_SAMPLE_PIXELS))))
    sample = rgb[::step, ::step]
    spread = sample.max(axis=2).astype(np.float32) - sample.min(axis=2)
    full_scale = 65535.0 if rgb.dtype == np.uint16 else 255.0 if rgb.dtype == np.uint8 else 1.0
    return float(spread.mean()) / full_scale > threshold
