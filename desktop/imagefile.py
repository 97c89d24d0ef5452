"""Reading and writing image files for the batch runtime.

Files are recognized by their content (magic bytes), never by their extension. Supported formats:
JPEG, PNG, TIFF, WebP and BMP.

Reading (:func:`read_image`) returns a :class:`DecodedImage`: RGB pixels (uint8, or uint16 for
16-bit PNG and TIFF sources) with the EXIF orientation already applied, the alpha channel if the
source had one, and an :class:`ImageMetadata` ready to be given to :func:`write_image`. Pixels of
8-bit sources come from Pillow; 16-bit (and float) PNG and TIFF pixels come from OpenCV, because
Pillow truncates 16-bit RGB to 8 bits. Metadata always comes from Pillow. The input file is only
ever opened for reading, and a truncated or corrupt file is an error, never a half-gray picture.

Writing (:func:`write_image`) is atomic: the encoder writes ``.<stem>.partial-<random><suffix>``
in the output folder, the file is fsynced and then renamed over the final name, so a crash never
leaves a file a re-run could take for a finished output (:func:`is_partial_file` recognizes
leftovers of a killed process). The encoder is chosen by the format, never by a file suffix.

What each output format keeps ("no" = dropped: the format cannot hold it, or this writer does not):

======  =========  =====  =========================  ===  ===  ===  ===========================
format  bit depth  alpha  EXIF                       ICC  DPI  XMP  text
======  =========  =====  =========================  ===  ===  ===  ===========================
JPEG    8          no     yes (APP1, <= 64 KiB)      yes  yes  yes  only ``Comment`` (COM)
PNG     8 or 16    yes    yes (eXIf)                 yes  yes  yes  all (tEXt, zTXt, iTXt)
TIFF    8 or 16    yes    IFD0 tags + Exif/GPS IFDs  yes  yes  yes  no
WebP    8          yes    yes                        yes  no   yes  no
BMP     8          no     no                         no   yes  no   no
======  =========  =====  =========================  ===  ===  ===  ===========================

What is read from each input format: pixels of any Pillow mode (palette, 1-bit, gray, gray+alpha,
RGB, RGBA, CMYK...) become RGB; PNG and TIFF with 16-bit samples stay 16-bit (float TIFF samples
are taken as [0, 1] and stored as 16 bits). EXIF comes from JPEG APP1, PNG eXIf (or ImageMagick's
hex "Raw profile type exif" text), the WebP EXIF chunk and TIFF tags; ICC from all formats but BMP;
DPI from JPEG, PNG, TIFF and BMP; XMP from JPEG, PNG, TIFF and WebP; text from PNG text chunks
and the JPEG comment. (For 16-bit PNGs, chunks placed after the pixel data are not read.)

Notes on the metadata:

* EXIF is carried as the source's own bytes (MakerNote and thumbnail included) with only the
  Orientation value rewritten to 1, because the pixels were rotated on reading. For a TIFF source
  the EXIF block is built from its descriptive IFD0 tags (ImageDescription, Make, Model, DateTime,
  Artist, Copyright, Software, XP* captions, Rating) and its Exif and GPS sub-IFDs. A TIFF output
  gets the same: descriptive IFD0 tags plus Exif and GPS sub-IFDs (not for BigTIFF, > 4 GiB).
  The EXIF thumbnail, where kept, still shows the source.
* XMP ``tiff:Orientation`` is rewritten to 1 as well.
* An ICC profile is kept only if it describes RGB data: the gray profile of a grayscale scan or
  the CMYK profile of a CMYK file does not fit the RGB output and is dropped (CMYK pixels are
  converted to sRGB through their profile when they have one).
* PNG text chunks are carried to PNG outputs (ImageMagick's ``Raw profile type`` chunks are not:
  they hold stale copies of the EXIF); a JPEG comment becomes the text ``Comment`` and back.
* JPEG stores DPI as integers; the PNG ``pHYs`` chunk stores pixels per metre (300 dpi reads
  back as 299.9994).
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, NamedTuple

import cv2
import numpy as np
import tifffile
from PIL import BmpImagePlugin, Image, ImageFile, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, TiffTags

from colorizer.desktop.errors import MediaFileError

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

FORMATS: tuple[str, ...] = ("JPEG", "PNG", "TIFF", "WEBP", "BMP")
"""Canonical format names (as Pillow spells them)."""

SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})

DEFAULT_MAX_PIXELS = 300_000_000
"""Images above this many pixels are refused unless the caller raises ``max_pixels``."""

SAME_FORMAT = "same"
"""The ``--format`` value meaning "the input's own format"."""

PARTIAL_MARKER = ".partial-"
"""Part of the name of every temporary file :func:`write_image` creates."""

FORMAT_SUFFIXES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
        "PNG": (".png",),
        "TIFF": (".tif", ".tiff"),
        "WEBP": (".webp",),
        "BMP": (".bmp", ".dib"),
    }
)
"""Suffixes of each format, the canonical (written) one first."""

_FORMAT_ALIASES: Mapping[str, str] = MappingProxyType(
    {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "tiff": "TIFF", "tif": "TIFF", "webp": "WEBP", "bmp": "BMP"}
)

_SNIFF_BYTES = 32
_BMP_DIB_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# Signatures of common formats this module does not read, for a clearer error message.
_UNSUPPORTED_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF8", "GIF"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG 2000"),
    (0, b"8BPS", "Photoshop PSD"),
    (0, b"%PDF", "PDF"),
)

_EXIF_PREFIX = b"Exif\x00\x00"
_TAG_ORIENTATION = 0x0112
_TAG_EXIF_IFD = 0x8769
_TAG_GPS_IFD = 0x8825
_TAG_INTEROP_IFD = 0xA005
_TAG_XMP = 700
# IFD0 tags that describe the picture (not its pixel layout), carried between TIFF and EXIF:
# DocumentName, ImageDescription, Make, Model, PageName, Software, DateTime, Artist, HostComputer,
# Rating, RatingPercent, Copyright, Windows XPTitle/XPComment/XPAuthor/XPKeywords/XPSubject.
_DESCRIPTIVE_IFD0_TAGS = (269, 270, 271, 272, 285, 305, 306, 315, 316, 18246, 18249, 33432, *range(40091, 40096))
_TIFFFILE_DESCRIPTION_PREFIXES = (b'{"shape":', b"ImageJ=", b"<?xml version")  # machine-made, not captions
_POINTER_TAGS = frozenset({_TAG_EXIF_IFD, _TAG_GPS_IFD, _TAG_INTEROP_IFD, 330})  # offsets cannot be copied
_CLASSIC_TIFF_HEADER = b"II*\x00\x08\x00\x00\x00"

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
_COLOR_CHROMA_THRESHOLD = 0.012  # mean (max - min) channel spread, fraction of full scale
_CHROMA_SAMPLE_PIXELS = 1_000_000

_JPEG_MARKER_MAX = 65533
_JPEG_XMP_MAX = _JPEG_MARKER_MAX - len(b"http://ns.adobe.com/xap/1.0/\x00")
_PNG_COMPRESSION = 4
_PNG_SKIPPED_TEXT_PREFIXES = ("XML:com.adobe.xmp", "Raw profile type")
_XMP_ORIENTATION_PATTERNS = (
    re.compile(rb"(tiff:Orientation\s*=\s*[\"'])\s*\d+\s*([\"'])"),
    re.compile(rb"(<tiff:Orientation>)\s*\d+\s*(</tiff:Orientation>)"),
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


# --------------------------------------------------------------------------- errors
class ImageFileError(MediaFileError):
    """An image file could not be read or written; the message names the file and the cause."""

    kind = "image"


class ImageReadError(ImageFileError):
    """An image file could not be read (missing, unreadable, empty, truncated, corrupt, unsupported...)."""

    action = "read"


class ImageWriteError(ImageFileError):
    """An image file could not be written (folder not writable, disk full, would overwrite the input...)."""

    action = "write"


class _DecodeError(Exception):
    """Internal: why decoding failed; :func:`read_image` adds the path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class ImageMetadata:
    """What of a source's metadata should go to its output (see the module docstring)."""

    exif: bytes | None = None
    """EXIF block as in a JPEG APP1 segment (starting with ``b"Exif\\0\\0"``), Orientation = 1."""
    icc_profile: bytes | None = None
    """An RGB ICC profile (profiles of other color spaces are not kept)."""
    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    """XMP packet, with ``tiff:Orientation`` set to 1."""
    text: tuple[tuple[str, str], ...] = ()
    """PNG text chunks, or a JPEG comment as ``("Comment", ...)``."""

    def text_value(self, key: str) -> str | None:
        """The first text entry called ``key`` (case-insensitive), or None."""
        return next((value for k, value in self.text if k.lower() == key.lower()), None)


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """A decoded image file: upright RGB pixels, alpha, and the metadata for its output."""

    rgb: np.ndarray
    """(H, W, 3) uint8 or uint16, EXIF orientation applied; grayscale replicated to 3 channels."""
    alpha: np.ndarray | None
    """(H, W) of the same dtype as ``rgb``, or None."""
    format: str
    """One of :data:`FORMATS`."""
    bit_depth: int
    """8 or 16 (bits per channel of ``rgb``)."""
    is_color: bool
    """Whether the source had color (a color mode and visible chroma)."""
    metadata: ImageMetadata
    mode: str
    """Pillow's mode of the source ("RGB", "P", "CMYK", "I;16", ...), for reports."""

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


class _Pixels(NamedTuple):
    rgb: np.ndarray
    alpha: np.ndarray | None
    gray_source: bool


# --------------------------------------------------------------------------- formats
def detect_format_bytes(header: bytes) -> str | None:
    """The format of a file from its first bytes (32 are enough), or None."""
    if header.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if header.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if header[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "WEBP"
    if header[:2] == b"BM" and len(header) >= 18:
        (dib_size,) = struct.unpack_from("<I", header, 14)
        if dib_size in _BMP_DIB_HEADER_SIZES:
            return "BMP"
    return None


def detect_format(path: PathLike) -> str | None:
    """The format of the file at ``path`` judged by its content, or None if it is no supported image.

    Raises :class:`ImageReadError` if the file cannot be opened (missing, directory, permission).
    """
    try:
        with open(path, "rb") as fh:
            header = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise ImageReadError(path, _os_error_reason(exc)) from exc
    return detect_format_bytes(header)


def canonical_format(name: str) -> str:
    """``"jpg"``, ``"JPEG"``, ``"tif"``, ``"WebP"``... -> the canonical name; ValueError if unknown."""
    key = name.strip().lower().lstrip(".")
    if key in _FORMAT_ALIASES:
        return _FORMAT_ALIASES[key]
    choices = ", ".join(sorted({"jpeg", "png", "tiff", "webp", "bmp"}))
    raise ValueError(f"unknown image format {name!r}; choose one of {choices}")


def parse_format_option(value: str) -> str | None:
    """Parse a user's ``--format`` value: a canonical format name, or None for ``"same"``."""
    if value.strip().lower() == SAME_FORMAT:
        return None
    try:
        return canonical_format(value)
    except ValueError:
        raise ValueError(
            f"unknown output format {value!r}; choose one of jpeg (jpg), png, tiff (tif), webp, bmp, "
            f"or {SAME_FORMAT} (keep each input's format)"
        ) from None


def resolve_output_format(option: str | None, input_format: str) -> str:
    """The format to write: the parsed ``--format`` value, or the input's format for ``same``."""
    return input_format if option is None else canonical_format(option)


def format_for_suffix(path_or_suffix: PathLike) -> str | None:
    """The format a file suffix usually stands for (``"photo.JPG"`` or ``".jpg"`` -> "JPEG")."""
    text = os.fspath(path_or_suffix)
    suffix = (Path(text).suffix or (text if text.startswith(".") else "")).lower()
    return next((fmt for fmt, suffixes in FORMAT_SUFFIXES.items() if suffix in suffixes), None)


def suffix_for_format(fmt: str, *, source: PathLike | None = None) -> str:
    """The file suffix for an output in ``fmt``.

    If ``source`` already has a suffix of that format (``.jpeg``, ``.TIF``...) it is kept as it is,
    so outputs mirror their inputs' names; otherwise the canonical suffix (``.jpg``, ``.tif``...).
    """
    suffixes = FORMAT_SUFFIXES[canonical_format(fmt)]
    if source is not None:
        source_suffix = Path(source).suffix
        if source_suffix.lower() in suffixes:
            return source_suffix
    return suffixes[0]


def is_partial_file(path: PathLike) -> bool:
    """Whether ``path`` is a temporary file of :func:`write_image` (left over if a process was killed)."""
    name = Path(path).name
    return name.startswith(".") and PARTIAL_MARKER in name


# --------------------------------------------------------------------------- reading
def read_image(path: PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode the image file at ``path`` (see :class:`DecodedImage`).

    ``max_pixels`` (None = no limit) refuses larger images before their pixels are decoded.
    Raises :class:`ImageReadError` for a missing, unreadable, empty, truncated, corrupt, too large
    or unsupported file. The file is opened read-only and never modified.
    """
    path = Path(path)
    data = _read_file(path)
    fmt = detect_format_bytes(data[:_SNIFF_BYTES])
    if fmt is None:
        raise ImageReadError(path, _not_an_image_reason(data[:_SNIFF_BYTES]))
    try:
        return _decode(data, fmt, max_pixels)
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
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ImageReadError(path, _os_error_reason(exc)) from exc
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    return data


def _os_error_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied (the file is not readable by this user)"
    return f"cannot read the file ({exc.strerror or exc})"


def _not_an_image_reason(header: bytes) -> str:
    for offset, signature, name in _UNSUPPORTED_SIGNATURES:
        if header[offset : offset + len(signature)] == signature:
            return f"unsupported format: {name} (supported: JPEG, PNG, TIFF, WebP, BMP)"
    return "not an image: the content is not JPEG, PNG, TIFF, WebP or BMP (whatever the extension says)"


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


def _decode(data: bytes, fmt: str, max_pixels: int | None) -> DecodedImage:
    tiff_orientation = 1
    if fmt == "TIFF":
        # Recent Pillow and OpenCV rotate TIFFs while decoding, older ones do not: neutralize the
        # tag in this in-memory copy so every decoder gives the pixels as stored, then rotate here.
        data, tiff_orientation = _reset_orientation(data)
    # The plugin class is used directly (not Image.open) so that ``max_pixels`` is the limit,
    # not Pillow's process-wide MAX_IMAGE_PIXELS and its warnings.
    with _pillow_image_class(fmt)(io.BytesIO(data)) as im:
        _check_pixel_count(im.size, max_pixels)
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            logger.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: truncated files may go unnoticed")
        bits = _source_bits(im, data, fmt)
        if bits > 8 or _large_plain_tiff(im, fmt):
            pixels = _decode_with_opencv(data, fmt, bits, im)
        else:
            im.load()  # forces the full decode: truncated data raises here
            pixels = _pillow_pixels(im)
        exif, orientation = _exif_and_orientation(im, data, fmt)
        orientation = tiff_orientation if fmt == "TIFF" else orientation
        metadata = ImageMetadata(
            exif=exif,
            icc_profile=_rgb_icc_profile(im.info.get("icc_profile")),
            dpi=_clean_dpi(im.info.get("dpi")),
            xmp=_read_xmp(im, fmt),
            text=_read_text(im, fmt),
        )
        mode = im.mode
    rgb = _apply_orientation(pixels.rgb, orientation)
    alpha = None if pixels.alpha is None else _apply_orientation(pixels.alpha, orientation)
    return DecodedImage(
        rgb=rgb,
        alpha=alpha,
        format=fmt,
        bit_depth=16 if rgb.dtype == np.uint16 else 8,
        is_color=not pixels.gray_source and has_color(rgb),
        metadata=metadata,
        mode=mode,
    )


def _check_pixel_count(size: tuple[int, int], max_pixels: int | None) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise _DecodeError(f"invalid image size {width}x{height}")
    if max_pixels is not None and width * height > max_pixels:
        raise _DecodeError(
            f"image too large: {width}x{height} = {width * height / 1e6:.0f} megapixels exceeds the limit of "
            f"{max_pixels / 1e6:.0f} megapixels (raise max_pixels to allow it, if memory permits)"
        )


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
    if array.ndim == 2:
        return _Pixels(_gray_to_rgb(array), None, gray_source=True)
    channels = array.shape[2]
    if channels == 1:
        return _Pixels(_gray_to_rgb(array[..., 0]), None, gray_source=True)
    if channels == 2:
        return _Pixels(_gray_to_rgb(array[..., 0]), np.ascontiguousarray(array[..., 1]), gray_source=True)
    if channels == 3:
        return _Pixels(np.ascontiguousarray(array[..., ::-1]), None, gray_source=False)
    if channels == 4:
        return _Pixels(np.ascontiguousarray(array[..., 2::-1]), np.ascontiguousarray(array[..., 3]), False)
    raise _DecodeError(f"unsupported number of channels: {channels}")


def _high_depth_samples(array: np.ndarray) -> np.ndarray:
    if array.dtype in (np.uint8, np.uint16):
        return array
    if np.issubdtype(array.dtype, np.floating):
        logger.debug("floating-point samples taken as [0, 1] and stored as 16 bits")
        scaled = np.clip(np.nan_to_num(array.astype(np.float32)), 0.0, 1.0) * 65535.0 + 0.5
        return scaled.astype(np.uint16)
    raise _DecodeError(f"unsupported sample type {array.dtype} (only 8- and 16-bit integer samples are read)")


def _pillow_pixels(im: Image.Image) -> _Pixels:
    """Pixels of a loaded Pillow image as RGB (+ alpha), whatever its mode."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        gray = np.asarray(im)
        gray = np.clip(gray, 0, 65535).astype(np.uint16) if mode == "I" else gray.astype(np.uint16)
        return _Pixels(_gray_to_rgb(gray), None, gray_source=True)
    gray_source = mode in _GRAY_MODES
    im = _to_basic_mode(im)
    array = np.asarray(im)
    if im.mode == "L":
        return _Pixels(_gray_to_rgb(array), None, gray_source)
    if im.mode == "LA":
        return _Pixels(_gray_to_rgb(array[..., 0]), np.ascontiguousarray(array[..., 1]), gray_source)
    if im.mode == "RGBA":
        return _Pixels(np.ascontiguousarray(array[..., :3]), np.ascontiguousarray(array[..., 3]), gray_source)
    return _Pixels(np.array(array), None, gray_source)


def _to_basic_mode(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to one of L, LA, RGB, RGBA."""
    mode = im.mode
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


# --------------------------------------------------------------------------- metadata (read)
def _exif_and_orientation(im: ImageFile.ImageFile, data: bytes, fmt: str) -> tuple[bytes | None, int]:
    """The EXIF block for the output (Orientation reset to 1) and the orientation to apply."""
    if fmt == "TIFF":
        return _exif_from_tiff_tags(im, data), 1  # TIFF orientation is handled in _decode
    exif = _raw_exif(im)
    if exif is None:
        return None, 1
    return _reset_orientation(exif, len(_EXIF_PREFIX))


def _raw_exif(im: Image.Image) -> bytes | None:
    """The source's EXIF block, starting with ``Exif\\0\\0``; None if absent or not TIFF-structured."""
    raw = im.info.get("exif")
    if not raw and "Raw profile type exif" in im.info:  # ImageMagick's PNG text chunk, hex-encoded
        try:
            raw = bytes.fromhex("".join(str(im.info["Raw profile type exif"]).split("\n")[3:]))
        except ValueError:
            raw = None
    if not raw or not isinstance(raw, bytes):
        return None
    if not raw.startswith(_EXIF_PREFIX):
        raw = _EXIF_PREFIX + raw
    if not _plausible_exif_tiff(raw[len(_EXIF_PREFIX) :]):
        logger.warning("dropping a damaged EXIF block (no valid TIFF header or first IFD)")
        return None
    return raw


def _plausible_exif_tiff(tiff: bytes) -> bool:
    """Whether an EXIF payload has a classic TIFF header whose first IFD lies inside it."""
    endian = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if endian is None or len(tiff) < 14:
        return False
    version, ifd0 = struct.unpack_from(endian + "HI", tiff, 2)
    return version == 42 and ifd0 >= 8 and ifd0 + 2 <= len(tiff)


def _ifd_entries(buf: bytes, endian: str, offset: int) -> list[tuple[int, int, int, int, int]]:
    """Entries (tag, type, count, raw value, entry offset) of the classic-TIFF IFD at ``offset``."""
    if offset + 2 > len(buf):
        return []
    (count,) = struct.unpack_from(endian + "H", buf, offset)
    entries = []
    for index in range(count):
        position = offset + 2 + 12 * index
        if position + 12 > len(buf):
            break
        tag, kind, n, value = struct.unpack_from(endian + "HHII", buf, position)
        entries.append((tag, kind, n, value, position))
    return entries


def _find_orientation(tiff: bytes | memoryview) -> tuple[int, int, str] | None:
    """(orientation, byte offset of its value, struct code) in IFD0 of a TIFF-structured buffer.

    Works on TIFF files (classic and BigTIFF) and on EXIF blocks without their prefix; None when
    there is no Orientation tag or the structure is damaged.
    """
    endian = {b"II": "<", b"MM": ">"}.get(bytes(tiff[:2]))
    if endian is None or len(tiff) < 16:
        return None
    (version,) = struct.unpack_from(endian + "H", tiff, 2)
    if version == 42:
        (ifd0,) = struct.unpack_from(endian + "I", tiff, 4)
        count_code, entry_code, entry_size, value_at = "H", "HHI", 12, 8
    elif version == 43:
        (ifd0,) = struct.unpack_from(endian + "Q", tiff, 8)
        count_code, entry_code, entry_size, value_at = "Q", "HHQ", 20, 12
    else:
        return None
    count_size = struct.calcsize(endian + count_code)
    if ifd0 + count_size > len(tiff):
        return None
    (count,) = struct.unpack_from(endian + count_code, tiff, ifd0)
    for index in range(count):
        position = ifd0 + count_size + entry_size * index
        if position + entry_size > len(tiff):
            return None
        tag, kind, n = struct.unpack_from(endian + entry_code, tiff, position)
        if tag == _TAG_ORIENTATION:
            if n < 1 or kind not in (3, 4):
                return None
            code = endian + ("H" if kind == 3 else "I")
            return struct.unpack_from(code, tiff, position + value_at)[0], position + value_at, code
    return None


def _reset_orientation(buffer: bytes, offset: int = 0) -> tuple[bytes, int]:
    """Set the IFD0 Orientation of the TIFF structure at ``buffer[offset:]`` to 1 (in a copy).

    Returns the new buffer and the orientation found (1 when there is none).
    """
    found = _find_orientation(memoryview(buffer)[offset:])
    if found is None or found[0] == 1:
        return buffer, 1
    value, position, code = found
    patched = bytearray(buffer)
    struct.pack_into(code, patched, offset + position, 1)
    return bytes(patched), value


def _exif_from_tiff_tags(im: ImageFile.ImageFile, data: bytes) -> bytes | None:
    """An EXIF block from a TIFF's descriptive IFD0 tags and its Exif/GPS sub-IFDs."""
    try:
        top, subs = _descriptive_ifds(data, im.tag_v2)
        top.tagtype[_TAG_ORIENTATION] = TiffTags.SHORT
        top[_TAG_ORIENTATION] = 1
        if len(top) == 1 and not subs:  # nothing but the Orientation
            return None
        return _EXIF_PREFIX + _CLASSIC_TIFF_HEADER + _layout_ifds(top, subs, len(_CLASSIC_TIFF_HEADER))
    except Exception as exc:  # metadata must never make a readable image unreadable
        logger.warning("ignoring unreadable TIFF metadata tags: %s", exc)
        return None


# ----- TIFF directories (IFDs), shared by EXIF blocks and TIFF outputs. Pillow (de)serializes the
# tags; copying each tag's type keeps the directory valid (Pillow would guess types of the many
# EXIF tags it does not know), and ASCII values go back as the original bytes (UTF-8 survives).
def _load_ifd(tiff: bytes, offset: int, group: int | None = None) -> TiffImagePlugin.ImageFileDirectory_v2:
    """The IFD at ``offset`` of a TIFF-structured buffer (a TIFF file or an EXIF block without prefix)."""
    bigtiff = tiff[2:4] in (b"+\x00", b"\x00+")
    ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=tiff[:16] if bigtiff else tiff[:8], group=group)
    stream = io.BytesIO(tiff)
    stream.seek(offset)
    ifd.load(stream)
    return ifd


def _copy_ifd(
    source: TiffImagePlugin.ImageFileDirectory_v2, tags: Iterable[int] | None = None, group: int | None = None
) -> TiffImagePlugin.ImageFileDirectory_v2:
    """A little-endian classic copy of ``tags`` (default all) of ``source``, types kept, pointers left out."""
    target = TiffImagePlugin.ImageFileDirectory_v2(ifh=_CLASSIC_TIFF_HEADER, group=group)
    for tag in sorted(source) if tags is None else tags:
        if tag not in source or tag in _POINTER_TAGS:
            continue
        value = source[tag]
        target.tagtype[tag] = source.tagtype[tag]
        target[tag] = value.encode("latin-1", "replace") if isinstance(value, str) else value
    return target


def _descriptive_ifds(
    tiff: bytes, ifd0: TiffImagePlugin.ImageFileDirectory_v2
) -> tuple[TiffImagePlugin.ImageFileDirectory_v2, dict[int, TiffImagePlugin.ImageFileDirectory_v2]]:
    """The descriptive tags of ``ifd0`` and copies of its Exif and GPS sub-IFDs (read from ``tiff``)."""
    top = _copy_ifd(ifd0, _DESCRIPTIVE_IFD0_TAGS)
    description = top.get(270)
    if isinstance(description, bytes) and description.lstrip().startswith(_TIFFFILE_DESCRIPTION_PREFIXES):
        del top[270]  # tifffile/ImageJ/OME metadata, meaningless once the pixels change
    subs = {}
    for tag in (_TAG_EXIF_IFD, _TAG_GPS_IFD):
        offset = ifd0.get(tag)
        if isinstance(offset, int) and 8 <= offset < len(tiff):
            sub = _copy_ifd(_load_ifd(tiff, offset, group=tag), group=tag)
            if len(sub):
                subs[tag] = sub
    return top, subs


def _layout_ifds(
    top: TiffImagePlugin.ImageFileDirectory_v2,
    subs: Mapping[int, TiffImagePlugin.ImageFileDirectory_v2],
    base: int,
) -> bytes:
    """Serialize ``top`` at file offset ``base`` followed by the sub-IFDs it then points to."""
    for tag in subs:
        top.tagtype[tag] = TiffTags.LONG
        top[tag] = 0
    position = base + len(_even(top.tobytes(base)))
    blobs = []
    for tag, sub in subs.items():
        top[tag] = position
        blobs.append(_even(sub.tobytes(position)))
        position += len(blobs[-1])
    head = _even(top.tobytes(base))
    if base + len(head) + sum(map(len, blobs)) != position:  # pragma: no cover - Pillow changed
        raise ValueError("inconsistent IFD layout")
    return head + b"".join(blobs)


def _even(blob: bytes) -> bytes:
    """TIFF offsets must be even (word-aligned)."""
    return blob + b"\x00" if len(blob) % 2 else blob


def _rgb_icc_profile(icc: Any) -> bytes | None:
    """The ICC profile if it describes RGB data; gray and CMYK profiles do not fit an RGB output."""
    if not icc or not isinstance(icc, bytes):
        return None
    if len(icc) >= 20 and icc[16:20] == b"RGB ":
        return icc
    logger.debug("dropping an ICC profile of color space %r (not RGB)", icc[16:20])
    return None


def _clean_dpi(dpi: Any) -> tuple[float, float] | None:
    try:
        x, y = (round(float(v), 4) for v in dpi)
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 and np.isfinite(x) and np.isfinite(y) else None


def _read_xmp(im: ImageFile.ImageFile, fmt: str) -> bytes | None:
    raw: Any = im.tag_v2.get(_TAG_XMP) if fmt == "TIFF" else im.info.get("xmp")
    if isinstance(raw, tuple):
        raw = bytes(raw)
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return reset_xmp_orientation(raw) if raw else None


def reset_xmp_orientation(xmp: bytes) -> bytes:
    """Set ``tiff:Orientation`` (attribute or element form) to 1 in an XMP packet."""
    for pattern in _XMP_ORIENTATION_PATTERNS:
        xmp = pattern.sub(rb"\g<1>1\g<2>", xmp)
    return xmp


def _read_text(im: Image.Image, fmt: str) -> tuple[tuple[str, str], ...]:
    if fmt == "PNG":
        return tuple(
            (key, str(value))
            for key, value in im.info.items()
            if isinstance(value, str) and not key.startswith(_PNG_SKIPPED_TEXT_PREFIXES)
        )
    comment = im.info.get("comment") if fmt == "JPEG" else None
    if isinstance(comment, bytes) and comment:
        try:
            text = comment.decode("utf-8")
        except UnicodeDecodeError:
            text = comment.decode("latin-1")
        return (("Comment", text.rstrip("\x00")),)
    return ()


# --------------------------------------------------------------------------- writing
def write_image(
    path: PathLike,
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    format: str | None = None,
    bit_depth: int | None = None,
    quality: int = 95,
    metadata: ImageMetadata | None = None,
    source: PathLike | None = None,
) -> Path:
    """Write an RGB image atomically and return its path.

    ``rgb``: (H, W, 3) float in [0, 1] (the colorizer's output), uint8 or uint16. ``alpha``: (H, W)
    of any of those types, kept by PNG, TIFF and WebP and dropped by JPEG and BMP. ``format``: one
    of :data:`FORMATS` or an alias (``"jpg"``, ``"tif"``); None takes it from the path's suffix.
    ``bit_depth``: 8 or 16; None means 16 for uint16 input and 8 otherwise; 16 is only possible
    for PNG and TIFF (other formats get 8). ``quality`` (1-100) applies to JPEG and WebP.
    ``metadata``: what to embed (see the module docstring for what each format keeps).
    ``source``: the input file; writing over it is refused.

    Raises ValueError for bad arguments and :class:`ImageWriteError` when the file cannot be
    written; whatever happens, no partial file is left behind.
    """
    path = Path(path)
    fmt = _output_format(path, format)
    _refuse_source(path, source)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    pixels = _check_rgb(rgb)
    depth = _output_bit_depth(fmt, pixels.dtype, bit_depth)
    pixels = to_bit_depth(pixels, depth)
    alpha_pixels = _prepare_alpha(alpha, pixels.shape[:2], depth, fmt)
    meta = metadata or ImageMetadata()

    def encode(fh: IO[bytes]) -> None:
        _encode(fh, fmt, pixels, alpha_pixels, meta, quality)

    _write_atomically(path, encode)
    logger.debug("wrote %s (%s, %d-bit)", path, fmt, depth)
    return path


def to_bit_depth(array: np.ndarray, bit_depth: int) -> np.ndarray:
    """uint8 / uint16 / float in [0, 1] -> uint8 (``bit_depth`` 8) or uint16 (16), rounded."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    target = np.uint8 if bit_depth == 8 else np.uint16
    if array.dtype == target:
        return array
    if array.dtype == np.uint8:
        return array.astype(np.uint16) * np.uint16(257)
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        scale = 255.0 if bit_depth == 8 else 65535.0
        values = np.nan_to_num(array.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(values, 0.0, 1.0) * scale + 0.5).astype(target)
    raise ValueError(f"unsupported pixel type {array.dtype} (expected uint8, uint16 or float in [0, 1])")


def _output_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        return canonical_format(fmt)
    from_suffix = format_for_suffix(path)
    if from_suffix is None:
        raise ValueError(f"cannot tell the image format from the name {path.name!r}; pass format=")
    return from_suffix


def _refuse_source(path: Path, source: PathLike | None) -> None:
    if source is None:
        return
    try:
        same = os.path.samefile(path, source)
    except OSError:
        same = path.resolve() == Path(source).resolve()
    if same:
        raise ImageWriteError(path, "refusing to overwrite the input file")


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {array.shape}")
    return array


def _output_bit_depth(fmt: str, dtype: np.dtype, requested: int | None) -> int:
    if requested not in (None, 8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {requested}")
    depth = requested or (16 if dtype == np.uint16 else 8)
    if depth == 16 and fmt not in SIXTEEN_BIT_FORMATS:
        logger.debug("%s holds 8 bits per channel; writing 8 instead of 16", fmt)
        return 8
    return depth


def _prepare_alpha(alpha: np.ndarray | None, shape: tuple[int, ...], depth: int, fmt: str) -> np.ndarray | None:
    if alpha is None:
        return None
    array = np.asarray(alpha)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.shape != tuple(shape):
        raise ValueError(f"alpha of shape {array.shape} does not match the image ({shape[0]}, {shape[1]})")
    if fmt not in ALPHA_FORMATS:
        logger.debug("%s has no alpha channel; dropping it", fmt)
        return None
    return to_bit_depth(array, depth)


def _write_atomically(path: Path, encode: Callable[[IO[bytes]], None]) -> None:
    """Run ``encode`` on a temporary file next to ``path``, fsync it, then rename it to ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial, fh = _create_partial_file(path)
    except OSError as exc:
        raise ImageWriteError(path, _os_error_reason_write(exc)) from exc
    try:
        with fh:
            encode(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
    except OSError as exc:
        _remove_quietly(partial)
        raise ImageWriteError(path, _os_error_reason_write(exc)) from exc
    except BaseException:
        _remove_quietly(partial)
        raise
    _fsync_directory(path.parent)


def _create_partial_file(path: Path) -> tuple[Path, IO[bytes]]:
    stem = path.stem[:100]  # stay below the 255-byte name limit
    for _ in range(8):
        partial = path.with_name(f".{stem}{PARTIAL_MARKER}{secrets.token_hex(4)}{path.suffix}")
        try:
            return partial, open(partial, "x+b")  # O_EXCL; the umask applies, like for any new file
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {path}")


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove the temporary file %s: %s", path, exc)


def _fsync_directory(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _os_error_reason_write(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (the folder is not writable by this user)"
    if isinstance(exc, IsADirectoryError):
        return "a folder of that name exists"
    return f"{exc.strerror or exc}"


def _encode(
    fh: IO[bytes], fmt: str, rgb: np.ndarray, alpha: np.ndarray | None, meta: ImageMetadata, quality: int
) -> None:
    """Dispatch on the format (module-level lookups, so tests can replace an encoder)."""
    if fmt == "JPEG":
        _encode_jpeg(fh, rgb, meta, quality)
    elif fmt == "PNG":
        _encode_png(fh, rgb, alpha, meta)
    elif fmt == "TIFF":
        _encode_tiff(fh, rgb, alpha, meta)
    elif fmt == "WEBP":
        _encode_webp(fh, rgb, alpha, meta, quality)
    elif fmt == "BMP":
        _encode_bmp(fh, rgb, meta)
    else:  # pragma: no cover - canonical_format() admits nothing else
        raise ValueError(f"no encoder for {fmt}")


def _fits(what: str, data: bytes | None, limit: int) -> bool:
    if data is None:
        return False
    if len(data) > limit:
        logger.warning("%s of %d bytes does not fit in a JPEG marker; dropped", what, len(data))
        return False
    return True


def _encode_jpeg(fh: IO[bytes], rgb: np.ndarray, meta: ImageMetadata, quality: int) -> None:
    options: dict[str, Any] = {"quality": quality}
    if _fits("EXIF", meta.exif, _JPEG_MARKER_MAX):
        options["exif"] = meta.exif
    if meta.icc_profile:
        options["icc_profile"] = meta.icc_profile
    if meta.dpi:
        options["dpi"] = tuple(round(v) for v in meta.dpi)
    if _fits("XMP", meta.xmp, _JPEG_XMP_MAX):
        options["xmp"] = meta.xmp
    comment = meta.text_value("Comment")
    if comment and _fits("comment", comment.encode("utf-8"), _JPEG_MARKER_MAX):
        options["comment"] = comment.encode("utf-8")
    Image.fromarray(rgb).save(fh, format="JPEG", **options)


def _encode_webp(fh: IO[bytes], rgb: np.ndarray, alpha: np.ndarray | None, meta: ImageMetadata, quality: int) -> None:
    pixels = rgb if alpha is None else np.dstack([rgb, alpha])
    options: dict[str, Any] = {"quality": quality}
    if meta.exif:
        options["exif"] = meta.exif
    if meta.icc_profile:
        options["icc_profile"] = meta.icc_profile
    if meta.xmp:
        options["xmp"] = meta.xmp
    Image.fromarray(pixels).save(fh, format="WEBP", **options)


def _encode_bmp(fh: IO[bytes], rgb: np.ndarray, meta: ImageMetadata) -> None:
    options: dict[str, Any] = {"dpi": meta.dpi} if meta.dpi else {}
    Image.fromarray(rgb).save(fh, format="BMP", **options)


# ----- PNG: OpenCV encodes 8 or 16 bits, the metadata chunks are inserted after IHDR
def _encode_png(fh: IO[bytes], rgb: np.ndarray, alpha: np.ndarray | None, meta: ImageMetadata) -> None:
    bgr = rgb[..., ::-1] if alpha is None else np.dstack([rgb[..., ::-1], alpha])
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESSION])
    if not ok:
        raise RuntimeError("OpenCV could not encode the PNG")
    data = memoryview(encoded.reshape(-1))
    ihdr_end = 8 + 8 + 13 + 4
    if bytes(data[12:16]) != b"IHDR":
        raise RuntimeError("unexpected PNG layout from the encoder")
    fh.write(data[:ihdr_end])
    for chunk in _png_metadata_chunks(meta):
        fh.write(chunk)
    fh.write(data[ihdr_end:])


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png_metadata_chunks(meta: ImageMetadata) -> list[bytes]:
    chunks = []
    if meta.icc_profile:
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(meta.icc_profile)))
    if meta.dpi:
        ppm_x, ppm_y = (round(v / 0.0254) for v in meta.dpi)
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm_x, ppm_y, 1)))
    if meta.exif:
        exif = meta.exif[len(_EXIF_PREFIX) :] if meta.exif.startswith(_EXIF_PREFIX) else meta.exif
        chunks.append(_png_chunk(b"eXIf", exif))
    if meta.xmp:
        chunks.append(_png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + meta.xmp))
    chunks.extend(_png_text_chunk(key, value) for key, value in meta.text if _valid_png_keyword(key))
    return chunks


def _valid_png_keyword(key: str) -> bool:
    try:
        encoded = key.encode("latin-1")
    except UnicodeEncodeError:
        encoded = b""
    valid = 1 <= len(encoded) <= 79 and b"\x00" not in encoded and key == key.strip()
    if not valid:
        logger.debug("skipping PNG text with an invalid keyword %r", key)
    return valid and not key.startswith(_PNG_SKIPPED_TEXT_PREFIXES)


def _png_text_chunk(key: str, value: str) -> bytes:
    keyword = key.encode("latin-1")
    try:
        text = value.encode("latin-1")
    except UnicodeEncodeError:
        text = b""
    if text or not value:
        if len(text) > 1024:
            return _png_chunk(b"zTXt", keyword + b"\x00\x00" + zlib.compress(text))
        return _png_chunk(b"tEXt", keyword + b"\x00" + text)
    # Not Latin-1: an international text chunk, UTF-8, with empty language and translated keyword.
    return _png_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + value.encode("utf-8"))


# ----- TIFF: tifffile encodes 8 or 16 bits; the EXIF tags are appended after it
def _encode_tiff(fh: IO[bytes], rgb: np.ndarray, alpha: np.ndarray | None, meta: ImageMetadata) -> None:
    pixels = rgb if alpha is None else np.dstack([rgb, alpha])
    tifffile.imwrite(
        fh,
        pixels,
        photometric="rgb",
        planarconfig="contig",
        extrasamples=("unassalpha",) if alpha is not None else None,
        compression="zlib",
        predictor=True,
        iccprofile=meta.icc_profile,
        resolution=meta.dpi,
        resolutionunit="INCH" if meta.dpi else None,
        metadata=None,
        software=False,
        extratags=[(_TAG_XMP, 1, len(meta.xmp), meta.xmp, True)] if meta.xmp else None,
    )
    if meta.exif:
        _append_exif_tags(fh, meta.exif)


def _append_exif_tags(fh: IO[bytes], exif: bytes) -> None:
    """Add the descriptive IFD0 tags and Exif/GPS sub-IFDs of an EXIF block to a written TIFF.

    tifffile does not write EXIF sub-IFDs. The tags are serialized at the end of the file, then a
    copy of the first IFD with their entries merged in is appended and the header pointed to it
    (the old first IFD stays as a few unused bytes; the pixel data does not move).
    """
    fh.seek(0)
    header = fh.read(8)
    if header[:4] != b"II*\x00":
        logger.warning("EXIF not written: the TIFF is not a little-endian classic TIFF (BigTIFF?)")
        return
    end = fh.seek(0, os.SEEK_END)
    try:
        blob = _exif_tags_blob(exif, end + end % 2)
    except Exception as exc:  # a damaged EXIF block must not fail the write
        logger.warning("EXIF not written to the TIFF: the EXIF block is unreadable (%s)", exc)
        return
    if blob is None:
        return
    (ifd0,) = struct.unpack_from("<I", header, 4)
    fh.seek(ifd0)
    (count,) = struct.unpack("<H", fh.read(2))
    ifd_bytes = struct.pack("<H", count) + fh.read(12 * count)
    next_ifd = fh.read(4)
    entries = {tag: ifd_bytes[pos : pos + 12] for tag, _, _, _, pos in _ifd_entries(ifd_bytes, "<", 0)}
    entries.update({tag: blob[pos : pos + 12] for tag, _, _, _, pos in _ifd_entries(blob, "<", 0)})

    _pad_to_word(fh)
    fh.write(blob)
    new_ifd0 = _pad_to_word(fh)
    fh.write(struct.pack("<H", len(entries)) + b"".join(entries[tag] for tag in sorted(entries)) + next_ifd)
    fh.seek(4)
    fh.write(struct.pack("<I", new_ifd0))
    fh.seek(0, os.SEEK_END)


def _exif_tags_blob(exif: bytes, position: int) -> bytes | None:
    """The descriptive IFD0 tags and Exif/GPS sub-IFDs of an EXIF block, laid out at ``position``."""
    tiff = exif[len(_EXIF_PREFIX) :] if exif.startswith(_EXIF_PREFIX) else exif
    endian = "<" if tiff[:2] == b"II" else ">"
    top, subs = _descriptive_ifds(tiff, _load_ifd(tiff, struct.unpack_from(endian + "I", tiff, 4)[0]))
    if not len(top) and not subs:
        return None
    return _layout_ifds(top, subs, position)


def _pad_to_word(fh: IO[bytes]) -> int:
    end = fh.seek(0, os.SEEK_END)
    if end % 2:
        fh.write(b"\x00")
        end += 1
    if end > 0xFFFFFFFF:
        raise ValueError("TIFF too large for classic TIFF offsets")
    return end
