"""Image formats: recognized by content (magic bytes), never by extension; names and suffixes.

The table of formats and their suffixes lives in :mod:`colorizer.fileio`; this module sniffs
files and turns what users type (``--format jpg``, ``same``) into canonical names and suffixes.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

from colorizer.desktop.media.errors import ImageReadError
from colorizer.fileio import FORMAT_ALIASES, FORMAT_SUFFIXES, FORMATS, PathLike, os_error_reason

SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})
SAME_FORMAT = "same"
"""The ``--format`` value meaning "the input's own format"."""
OUTPUT_FORMAT_CHOICES: tuple[str, ...] = (SAME_FORMAT, *(name.lower() for name in FORMATS))
"""What ``--format`` and the app offer."""

SNIFF_BYTES = 32
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


def check_regular_file(path: Path) -> None:
    """Raise OSError unless ``path`` is a regular file (a pipe or device would block or never end)."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file (a pipe, socket or device)", str(path))


def detect_format(path: PathLike) -> str | None:
    """The format of the file at ``path`` judged by its content, or None if it is no supported image.

    Raises :class:`ImageReadError` if the file cannot be opened (missing, directory, permission).
    """
    try:
        check_regular_file(Path(path))
        with open(path, "rb") as fh:
            header = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise ImageReadError(path, os_error_reason(exc, reading=True)) from exc
    return detect_format_bytes(header)


def canonical_format(name: str) -> str:
    """``"jpg"``, ``"JPEG"``, ``"tif"``, ``"WebP"``... -> the canonical name; ValueError if unknown."""
    key = name.strip().lower().lstrip(".")
    if key in FORMAT_ALIASES:
        return FORMAT_ALIASES[key]
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


def not_an_image_reason(header: bytes) -> str:
    for offset, signature, name in _UNSUPPORTED_SIGNATURES:
        if header[offset : offset + len(signature)] == signature:
            return f"unsupported format: {name} (supported: JPEG, PNG, TIFF, WebP, BMP)"
    return "not an image: the content is not JPEG, PNG, TIFF, WebP or BMP (whatever the extension says)"
