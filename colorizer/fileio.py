"""Small helpers every part shares: atomic writes, pixel depth conversion, hashing, the formats table.

Atomic writes: :func:`atomic_path` reserves ``.<stem>.partial-XXXXXXXX<suffix>`` beside the final
path; whatever is written there is fsynced and renamed over the final name when the ``with``
block ends normally, and removed when it raises. A crash therefore never leaves a half-written
file under a final name, and :func:`is_partial_file` recognizes what a killed process left behind.
Checkpoints, ONNX models, TensorRT engines, reports, images and videos are all written this way.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

PARTIAL_MARKER = ".partial-"
"""Part of the name of every temporary file :func:`atomic_path` creates."""

# --------------------------------------------------------------------------- formats and suffixes
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "TIFF", "WEBP", "BMP")
"""Canonical image format names (as Pillow spells them)."""

FORMAT_SUFFIXES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "PNG": (".png",),
    "TIFF": (".tif", ".tiff"),
    "WEBP": (".webp",),
    "BMP": (".bmp", ".dib"),
})
"""Suffixes of each image format, the canonical (written) one first."""

FORMAT_ALIASES: Mapping[str, str] = MappingProxyType(
    {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "tiff": "TIFF", "tif": "TIFF", "webp": "WEBP", "bmp": "BMP"})
"""What users may type for each format (``--format``, the GUI's choices)."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(s for suffixes in FORMAT_SUFFIXES.values() for s in suffixes)
VIDEO_SUFFIXES: frozenset[str] = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv",
    ".3gp", ".ogv", ".dv", ".vob", ".mxf"})
"""Suffixes of files that usually are videos (files are recognized by content; this names the likely ones)."""


# --------------------------------------------------------------------------- atomic writes
def is_partial_file(path: PathLike) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_path` (left over if a process was killed)."""
    name = Path(path).name
    return name.startswith(".") and PARTIAL_MARKER in name


def _reserve_partial(path: Path) -> Path:
    stem = path.stem[:100]  # stay below the 255-byte name limit
    for _ in range(8):
        partial = path.with_name(f".{stem}{PARTIAL_MARKER}{secrets.token_hex(4)}{path.suffix}")
        try:
            os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies
            return partial
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {path}")


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a new empty temporary file beside ``path`` to write; on success it becomes ``path``.

    On normal exit the file is fsynced, renamed over ``path`` and the folder fsynced; if the block
    raises (or the rename fails) the temporary file is removed and the exception goes on.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _reserve_partial(path)
    try:
        yield partial
        with open(partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, path)
    except BaseException:
        remove_quietly(partial)
        raise
    fsync_directory(path.parent)


def atomic_write(path: PathLike, data: bytes | bytearray | memoryview | Any | Callable[[IO[bytes]], None]) -> Path:
    """Write ``data`` (any buffer, or a function that writes to a binary file) atomically to ``path``."""
    with atomic_path(path) as partial, open(partial, "r+b") as fh:
        if callable(data):
            data(fh)
        else:
            fh.write(data)
    return Path(path)


def remove_quietly(path: Path) -> None:
    """Remove a file if it exists; a failure is logged, never raised."""
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove the temporary file %s: %s", path, exc)


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where directories cannot be opened."""
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


# --------------------------------------------------------------------------- pixels and hashes
def to_bit_depth(array: np.ndarray, bit_depth: int) -> np.ndarray:
    """uint8 / uint16 / float in [0, 1] -> uint8 (``bit_depth`` 8) or uint16 (16), rounded to nearest."""
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


def to_uint8(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float in [0, 1] -> C-contiguous uint8 (the one rounding used for 8-bit output)."""
    return np.ascontiguousarray(to_bit_depth(np.asarray(array), 8))


def sha256_file(path: PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
