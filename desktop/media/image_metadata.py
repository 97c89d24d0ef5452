"""What of a photo's metadata travels to its colorized output, read from the source.

EXIF is carried as the source's own bytes (MakerNote and thumbnail included) with only the
Orientation rewritten to 1, because the pixels are rotated on reading; for TIFF sources it is
built from the descriptive IFD0 tags and the Exif/GPS sub-IFDs (:mod:`.tiff_tags`). XMP
``tiff:Orientation`` is rewritten to 1 as well. An ICC profile is kept only if it describes RGB
data. PNG text chunks are kept (not ImageMagick's stale ``Raw profile type`` copies); a JPEG
comment becomes the text ``Comment``. See :mod:`.image_write` for what each output format keeps.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFile

from colorizer.desktop.media.tiff_tags import (
    EXIF_PREFIX,
    exif_from_tiff_tags,
    plausible_exif_tiff,
    reset_orientation,
)

logger = logging.getLogger(__name__)

TAG_XMP = 700
PNG_SKIPPED_TEXT_PREFIXES = ("XML:com.adobe.xmp", "Raw profile type")
_XMP_ORIENTATION_PATTERNS = (
    re.compile(rb"(tiff:Orientation\s*=\s*[\"'])\s*\d+\s*([\"'])"),
    re.compile(rb"(<tiff:Orientation>)\s*\d+\s*(</tiff:Orientation>)"),
)


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


def read_metadata(im: ImageFile.ImageFile, data: bytes, fmt: str) -> tuple[ImageMetadata, int]:
    """The metadata of an opened image for its output, and the EXIF orientation to apply to its pixels."""
    exif, orientation = _exif_and_orientation(im, data, fmt)
    metadata = ImageMetadata(
        exif=exif,
        icc_profile=_rgb_icc_profile(im.info.get("icc_profile")),
        dpi=_clean_dpi(_declared_dpi(im, fmt)),
        xmp=_read_xmp(im, fmt),
        text=_read_text(im, fmt),
    )
    return metadata, orientation


def _exif_and_orientation(im: ImageFile.ImageFile, data: bytes, fmt: str) -> tuple[bytes | None, int]:
    """The EXIF block for the output (Orientation reset to 1) and the orientation to apply."""
    if fmt == "TIFF":
        return exif_from_tiff_tags(im, data), 1  # TIFF orientation is handled in _decode
    exif = raw_exif(im)
    if exif is None:
        return None, 1
    return reset_orientation(exif, len(EXIF_PREFIX))


def raw_exif(im: Image.Image) -> bytes | None:
    """The source's EXIF block, starting with ``Exif\\0\\0``; None if absent or not TIFF-structured."""
    raw = im.info.get("exif")
    if not raw and "Raw profile type exif" in im.info:  # ImageMagick's PNG text chunk, hex-encoded
        try:
            raw = bytes.fromhex("".join(str(im.info["Raw profile type exif"]).split("\n")[3:]))
        except ValueError:
            raw = None
    if not raw or not isinstance(raw, bytes):
        return None
    if not raw.startswith(EXIF_PREFIX):
        raw = EXIF_PREFIX + raw
    if not plausible_exif_tiff(raw[len(EXIF_PREFIX) :]):
        logger.warning("dropping a damaged EXIF block (no valid TIFF header or first IFD)")
        return None
    return raw


def _rgb_icc_profile(icc: Any) -> bytes | None:
    """The ICC profile if it describes RGB data; gray and CMYK profiles do not fit an RGB output."""
    if not icc or not isinstance(icc, bytes):
        return None
    if len(icc) >= 20 and icc[16:20] == b"RGB ":
        return icc
    logger.debug("dropping an ICC profile of color space %r (not RGB)", icc[16:20])
    return None


_TAG_X_RESOLUTION, _TAG_Y_RESOLUTION, _TAG_RESOLUTION_UNIT = 282, 283, 296
_INCHES_PER_UNIT = {2: 1.0, 3: 2.54}  # ResolutionUnit: 1 = no absolute unit, 2 = inch (the default), 3 = cm


def _declared_dpi(im: ImageFile.ImageFile, fmt: str) -> Any:
    """The resolution the file declares, or None: not Pillow's stand-ins for a missing one.

    Pillow reports 1 dpi for a TIFF without resolution tags and 72 dpi for a JPEG whose JFIF header
    gives no unit when its EXIF names no resolution; both would go to the output as if declared.
    """
    if fmt == "TIFF":
        return _tags_dpi(im.tag_v2)
    if fmt == "JPEG" and im.info.get("jfif_unit") not in (1, 2):
        try:
            return _tags_dpi(im.getexif())
        except Exception:  # a damaged EXIF block declares nothing
            return None
    return im.info.get("dpi")


def _tags_dpi(tags: Any) -> tuple[float, float] | None:
    """DPI from TIFF/EXIF XResolution, YResolution and ResolutionUnit (None when not all declared)."""
    scale = _INCHES_PER_UNIT.get(tags.get(_TAG_RESOLUTION_UNIT, 2))
    x, y = tags.get(_TAG_X_RESOLUTION), tags.get(_TAG_Y_RESOLUTION)
    if scale is None or x is None or y is None:
        return None
    try:
        return float(x) * scale, float(y) * scale
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _clean_dpi(dpi: Any) -> tuple[float, float] | None:
    try:
        x, y = (round(float(v), 4) for v in dpi)
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 and np.isfinite(x) and np.isfinite(y) else None


def _read_xmp(im: ImageFile.ImageFile, fmt: str) -> bytes | None:
    raw: Any = im.tag_v2.get(TAG_XMP) if fmt == "TIFF" else im.info.get("xmp")
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
            if isinstance(value, str) and not key.startswith(PNG_SKIPPED_TEXT_PREFIXES)
        )
    comment = im.info.get("comment") if fmt == "JPEG" else None
    if isinstance(comment, bytes) and comment:
        try:
            text = comment.decode("utf-8")
        except UnicodeDecodeError:
            text = comment.decode("latin-1")
        return (("Comment", text.rstrip("\x00")),)
    return ()
