"""Encoding colorized images, atomically, with the source's metadata.

:func:`write_image` encodes into a temporary file beside the output (``colorizer.fileio``), fsyncs
it and renames it over the final name, so a crash never leaves a file a re-run could take for a
finished output. The encoder is chosen by the format, never by a file suffix.

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

TIFF outputs get the descriptive IFD0 tags plus Exif and GPS sub-IFDs (not BigTIFF, > 4 GiB); the
EXIF thumbnail, where kept, still shows the source. JPEG stores DPI as integers; the PNG ``pHYs``
chunk stores pixels per metre (300 dpi reads back as 299.9994).

JPEG and PNG pixels are encoded by OpenCV, which lets go of the GIL (two writer threads encode
twice as fast; Pillow's JPEG encoder holds it); JPEG files are byte for byte Pillow's (same
libjpeg-turbo settings, Pillow's header and metadata markers). A JPEG can also be written from
its own Y'CbCr 4:2:0 planes (:class:`JpegPlanes`: a gray photo's luma kept, new chroma), which
libjpeg-turbo encodes as they are (simplejpeg; no color conversion, no chroma downsampling).
TIFF is deflate level 1 with the horizontal predictor: lossless, about half the time of zlib's
default level, ~9 % larger.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
import tifffile
from PIL import Image

from colorizer.desktop.media.errors import ImageWriteError
from colorizer.desktop.media.formats import ALPHA_FORMATS, SIXTEEN_BIT_FORMATS, canonical_format, format_for_suffix
from colorizer.desktop.media.image_metadata import PNG_SKIPPED_TEXT_PREFIXES, TAG_XMP, ImageMetadata
from colorizer.desktop.media.tiff_tags import EXIF_PREFIX, append_exif_tags
from colorizer.fileio import PathLike, atomic_write, os_error_reason, to_bit_depth

logger = logging.getLogger(__name__)

_JPEG_MARKER_MAX = 65533
_JPEG_XMP_MAX = _JPEG_MARKER_MAX - len(b"http://ns.adobe.com/xap/1.0/\x00")
_PNG_COMPRESSION = 4
_MAX_SIDE = {"JPEG": 65500, "WEBP": 16383}
"""The longest side each format's encoder takes (libjpeg's JPEG_MAX_DIMENSION, WebP's 14-bit sizes)."""
# Deflate level of TIFF outputs: lossless at any level. With imagecodecs (tifffile's codecs, a
# dependency) level 1 writes a 2 MP 16-bit colorized photo in 103 ms against 177 at level 2 and
# 350 with Python's zlib at either, the file within 1 % of level 2's size (zlib's default 6: about
# 9 % smaller than 2, twice the time).
_TIFF_ZLIB_LEVEL = 1


@dataclass(frozen=True)
class JpegPlanes:
    """A JPEG's picture as its encoder stores it: Y' (H, W) and Cb, Cr at half the height and width
    (rounded up), uint8, JFIF's matrix and range (BT.601, full range): what 4:2:0 JPEG holds."""

    y: np.ndarray
    cb: np.ndarray
    cr: np.ndarray

    def __post_init__(self) -> None:
        chroma = ((self.y.shape[0] + 1) // 2, (self.y.shape[1] + 1) // 2) if self.y.ndim == 2 else None
        for plane, shape in ((self.y, self.y.shape), (self.cb, chroma), (self.cr, chroma)):
            if plane.dtype != np.uint8 or plane.shape != shape or not plane.size:
                raise ValueError(f"4:2:0 planes must be uint8, Y' (H, W) and Cb, Cr {chroma}; got Y' {self.y.shape} "
                                 f"{self.y.dtype}, Cb {self.cb.shape} {self.cb.dtype}, Cr {self.cr.shape} "
                                 f"{self.cr.dtype}")


def write_image(
    path: PathLike,
    rgb: np.ndarray | JpegPlanes,
    *,
    alpha: np.ndarray | None = None,
    format: str | None = None,
    bit_depth: int | None = None,
    quality: int = 95,
    metadata: ImageMetadata | None = None,
    source: PathLike | None = None,
) -> Path:
    """Write an RGB image atomically and return its path.

    ``rgb``: (H, W, 3) float in [0, 1] (the colorizer's output), uint8 or uint16; or, for a JPEG
    only, its :class:`JpegPlanes` (encoded as they are; no alpha). ``alpha``: (H, W)
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
    if isinstance(rgb, JpegPlanes):
        if fmt != "JPEG":
            raise ValueError(f"Y'CbCr 4:2:0 planes are written as JPEG only (asked: {fmt})")
        _check_size(path, fmt, rgb.y.shape)
        pixels, depth = rgb, 8
        alpha_pixels = _prepare_alpha(alpha, rgb.y.shape, depth, fmt)  # JPEG: dropped
    else:
        pixels = _check_rgb(rgb)
        _check_size(path, fmt, pixels.shape)
        depth = _output_bit_depth(fmt, pixels.dtype, bit_depth)
        pixels = to_bit_depth(pixels, depth)
        alpha_pixels = _prepare_alpha(alpha, pixels.shape[:2], depth, fmt)
    meta = metadata or ImageMetadata()

    data = _encoded(path, fmt, pixels, alpha_pixels, meta, quality)
    del pixels, alpha_pixels
    _write_atomically(path, data)
    logger.debug("wrote %s (%s, %d-bit)", path, fmt, depth)
    return path


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


def _check_size(path: Path, fmt: str, shape: tuple[int, ...]) -> None:
    """Refuse a picture larger than the format can hold, before any encoder sees it."""
    limit = _MAX_SIDE.get(fmt)
    height, width = shape[:2]
    if limit is not None and max(height, width) > limit:
        raise ImageWriteError(
            path,
            f"{width}x{height} pixels do not fit in a {fmt} file (at most {limit} pixels a side); "
            "write it as PNG or TIFF instead",
        )


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


def _encoded(path: Path, fmt: str, rgb: np.ndarray | JpegPlanes, alpha: np.ndarray | None, meta: ImageMetadata,
             quality: int) -> memoryview:
    """The whole file, encoded in memory: what reaches the disk is then checked against its length."""
    buffer = io.BytesIO()
    try:
        _encode(buffer, fmt, rgb, alpha, meta, quality)
    except MemoryError as exc:
        raise ImageWriteError(path, f"not enough memory to encode the {fmt}") from exc
    except (OSError, cv2.error) as exc:  # an encoder's error: nothing was written to disk yet
        raise ImageWriteError(path, f"the {fmt} encoder failed ({exc})") from exc
    data = buffer.getbuffer()
    if not data.nbytes:
        raise ImageWriteError(path, f"the {fmt} encoder produced nothing")
    return data


def _write_atomically(path: Path, data: memoryview) -> None:
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise ImageWriteError(path, os_error_reason(exc)) from exc


def _encode(
    fh: IO[bytes], fmt: str, rgb: np.ndarray | JpegPlanes, alpha: np.ndarray | None, meta: ImageMetadata,
    quality: int
) -> None:
    """Dispatch on the format (module-level lookups, so tests can replace an encoder)."""
    if isinstance(rgb, JpegPlanes):
        _encode_jpeg_planes(fh, rgb, meta, quality)
    elif fmt == "JPEG":
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
    """OpenCV encodes the pixels (it lets go of the GIL, Pillow does not); the header is Pillow's.

    Both run the same libjpeg-turbo with the same settings (quality tables, 4:2:0, no optimized
    Huffman tables): from the first quantization table on, their bytes are the same. So Pillow
    writes the metadata markers for an 8×8 image, and OpenCV's stream follows them: the file is
    byte for byte the one Pillow alone would write, at half the cost and on any number of threads.
    """
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)  # 50x cheaper than numpy's rgb[..., ::-1]
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    del bgr
    if not ok:
        raise RuntimeError("OpenCV could not encode the JPEG")
    _write_jpeg(fh, memoryview(encoded.reshape(-1)), meta, quality)


def _encode_jpeg_planes(fh: IO[bytes], planes: JpegPlanes, meta: ImageMetadata, quality: int) -> None:
    """libjpeg-turbo (simplejpeg: it lets go of the GIL) encodes the planes as they are, with the
    same quantization tables as Pillow's and OpenCV's at that quality; the header is Pillow's."""
    import simplejpeg

    encoded = simplejpeg.encode_jpeg_yuv_planes(_luma_in_420_buffer(planes.y), planes.cb, planes.cr,
                                                quality=quality, fastdct=False)
    _write_jpeg(fh, memoryview(encoded), meta, quality)


def _luma_in_420_buffer(y: np.ndarray) -> np.ndarray:
    """``y`` backed by the buffer TurboJPEG reads for 4:2:0: its Y' plane padded to an even height
    and width (TurboJPEG's documented plane size), the padding a copy of the last row and column.

    Given a plane of exactly H x W, libjpeg-turbo reads one row past its end when H is odd and one
    byte past each row's end when W is odd: garbage where the array sits inside a heap block, a
    segmentation fault where it ends at the last page of an mmap'ed block (a large photo, e.g. a
    4000 x 2647 scan). The view returned has ``y``'s shape and a stride of the padded width."""
    height, width = y.shape
    if height % 2 == 0 and width % 2 == 0:
        return y
    padded = cv2.copyMakeBorder(y, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
    return padded[:height, :width]


def _write_jpeg(fh: IO[bytes], body: memoryview, meta: ImageMetadata, quality: int) -> None:
    """Pillow's SOI, JFIF and metadata markers for an 8x8 image, then ``body`` (an encoder's JPEG)
    from its first quantization table on."""
    header = io.BytesIO()
    Image.new("RGB", (8, 8)).save(header, format="JPEG", **_jpeg_options(meta, quality))
    head = header.getbuffer()
    fh.write(head[: _jpeg_tables_offset(head)])
    fh.write(body[_jpeg_tables_offset(body) :])


def _jpeg_options(meta: ImageMetadata, quality: int) -> dict[str, Any]:
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
    return options


def _jpeg_tables_offset(data: memoryview) -> int:
    """Where the first quantization table (DQT) starts: what precedes it is SOI, JFIF and metadata."""
    offset = 2  # SOI
    while offset + 4 <= data.nbytes and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker == 0xDB:
            return offset
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            break
        offset += 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
    raise RuntimeError("unexpected JPEG layout from the encoder")


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
    rgb = np.ascontiguousarray(rgb)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if alpha is None else cv2.merge([*cv2.split(rgb)[::-1], alpha])
    ok, encoded = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESSION])
    del bgr
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
        exif = meta.exif[len(EXIF_PREFIX) :] if meta.exif.startswith(EXIF_PREFIX) else meta.exif
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
    return valid and not key.startswith(PNG_SKIPPED_TEXT_PREFIXES)


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
        compressionargs={"level": _TIFF_ZLIB_LEVEL},
        predictor=True,
        iccprofile=meta.icc_profile,
        resolution=meta.dpi,
        resolutionunit="INCH" if meta.dpi else None,
        metadata=None,
        software=False,
        extratags=[(TAG_XMP, 1, len(meta.xmp), meta.xmp, True)] if meta.xmp else None,
    )
    if meta.exif:
        append_exif_tags(fh, meta.exif)
