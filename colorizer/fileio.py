"""Small helpers every part shares: atomic writes, pixel depth conversion, hashing, the formats table.

Atomic writes: :func:`atomic_path` reserves ``.<stem>.partial-XXXXXXXX<suffix>`` beside the final
path; whatever is written there is fsynced and renamed over the final name when the ``with``
block ends normally, and removed when it raises. A crash therefore never leaves a half-written
file under a final name, and :func:`is_partial_file` recognizes what a killed process left behind.
Checkpoints, ONNX models, TensorRT engines, reports, images and videos are all written this way.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import threading
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
class WritesAbandoned(OSError):
    """Raised by :func:`atomic_path` after :func:`abandon_writes`: the process is stopping at once."""

    def __init__(self) -> None:
        super().__init__(errno.ECANCELED, "abandoned: the run was stopped")


class _LiveFiles:
    """The temporary files this process is writing, and the gate every rename goes through.

    Process-wide on purpose: a second Ctrl-C must remove every temporary file of the process and
    stop all renames, whichever thread or run created them (see :func:`abandon_writes`).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.partials: set[Path] = set()
        self.abandoned = False

    def add(self, partial: Path) -> None:
        with self.lock:
            if self.abandoned:
                raise WritesAbandoned()
            self.partials.add(partial)

    def discard(self, partial: Path) -> None:
        with self.lock:
            self.partials.discard(partial)


_LIVE = _LiveFiles()


def abandon_writes() -> int:
    """Stop every atomic write of this process for good: remove the temporary files being written
    and make later renames fail (:class:`WritesAbandoned`). Returns how many files were removed.

    For a process about to exit at once (a second signal): once this returns, no file of the
    process appears under a final name any more, and none of its temporary files is left.
    """
    with _LIVE.lock:
        _LIVE.abandoned = True
        partials, _LIVE.partials = list(_LIVE.partials), set()
    for partial in partials:
        remove_quietly(partial)
    return len(partials)


def is_partial_file(path: PathLike) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_path` (left over if a process was killed)."""
    name = Path(path).name
    return name.startswith(".") and PARTIAL_MARKER in name


PARTIAL_STEM_BYTES, PARTIAL_SUFFIX_BYTES = 100, 32
"""The most bytes of the final name's stem and suffix a temporary file's name keeps: with the marker and
8 hex digits it stays below the 255-byte limit of a name, whatever the final name's characters."""


def name_prefix(name: str, max_bytes: int) -> str:
    """The longest start of ``name`` that takes at most ``max_bytes`` bytes as a file name (in the file
    system's encoding: 4 bytes for an emoji, 1 for an undecodable byte), never cut inside a character."""
    name = name[:max_bytes]  # no character takes less than a byte
    while len(os.fsencode(name)) > max_bytes:
        name = name[:-1]
    return name


def _reserve_partial(path: Path, track: bool = True) -> Path:
    """A new empty temporary file beside ``path``; ``track``: one :func:`abandon_writes` removes."""
    stem = name_prefix(path.stem, PARTIAL_STEM_BYTES)  # stay below the 255-byte name limit
    suffix = name_prefix(path.suffix, PARTIAL_SUFFIX_BYTES)
    for _ in range(8):
        partial = path.with_name(f".{stem}{PARTIAL_MARKER}{secrets.token_hex(4)}{suffix}")
        if track:
            _LIVE.add(partial)
        try:
            os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies
            return partial
        except FileExistsError:
            _LIVE.discard(partial)
            continue
        except BaseException:
            _LIVE.discard(partial)
            raise
    raise FileExistsError(f"could not create a temporary file next to {path}")


def _commit(partial: Path, path: Path, expected_size: int | None, gated: bool = True, mode: int | None = None
            ) -> None:
    """fsync ``partial``, check its size, rename it to ``path``; ``gated``: through the gate, so never
    after :func:`abandon_writes`; ``mode``: the permissions it was created with, given back when the
    writer replaced the file by one of its own (safetensors writes 0600)."""
    with open(partial, "rb+") as fh:
        os.fsync(fh.fileno())
        st = os.fstat(fh.fileno())
        size = st.st_size
        if mode is not None and st.st_mode & 0o777 != mode:
            os.fchmod(fh.fileno(), mode)
    if expected_size is not None and size != expected_size:
        raise OSError(errno.EIO, f"incomplete write: {size} of {expected_size} bytes reached the disk")
    with _LIVE.lock:
        if _LIVE.abandoned and gated:
            raise WritesAbandoned()
        os.replace(partial, path)
        _LIVE.partials.discard(partial)


@contextlib.contextmanager
def atomic_path(path: PathLike, *, expected_size: Callable[[], int | None] | None = None) -> Iterator[Path]:
    """Yield a new empty temporary file beside ``path`` to write; on success it becomes ``path``.

    On normal exit the file is fsynced, checked (not empty; ``expected_size()``, when given, is
    the number of bytes the caller wrote, and the file must hold exactly that many), renamed over
    ``path`` and the folder fsynced; if the block raises, the check fails or the rename fails, the
    temporary file is removed and the exception goes on.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _reserve_partial(path)
    mode = os.stat(partial).st_mode & 0o777  # 0666 less the umask
    try:
        yield partial
        _commit(partial, path, expected_size() if expected_size is not None else None, mode=mode)
    except BaseException:
        remove_quietly(partial)
        _LIVE.discard(partial)
        raise
    fsync_directory(path.parent)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> int:
    """Write every byte of ``data`` to the file descriptor ``fd`` (short writes are continued; a
    write that makes no progress is an error). Returns the number of bytes written."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        n = os.write(fd, view[done : done + (1 << 24)])
        if n <= 0:
            raise OSError(errno.EIO, f"the disk took no more data after {done} of {len(view)} bytes")
        done += n
    return done


def atomic_write(path: PathLike, data: bytes | bytearray | memoryview | Any | Callable[[IO[bytes]], None]) -> Path:
    """Write ``data`` (any buffer, or a function that writes to a binary file) atomically to ``path``.

    A buffer is written completely and the file's size on disk is checked against it before the
    rename; a function's output is checked against the position it reached.
    """
    written: list[int] = []
    with atomic_path(path, expected_size=lambda: written[0]) as partial:
        if callable(data):
            with open(partial, "r+b") as fh:
                data(fh)
                fh.flush()
                written.append(fh.seek(0, os.SEEK_END))
        else:
            descriptor = os.open(partial, os.O_WRONLY)
            try:
                written.append(write_all(descriptor, data))
            finally:
                os.close(descriptor)
    return Path(path)


class ReservedFile:
    """A file whose disk space is set aside now and whose content is written at the end (the report).

    The temporary file is created and ``size`` bytes allocated at once; :meth:`commit` writes the
    content over the allocated blocks, cuts the file to its length, checks, fsyncs and renames it
    like :func:`atomic_path`, so a disk that filled up in between does not stop it (as long as the
    content fits in what was reserved). :meth:`discard` removes it. Its owner alone decides its
    fate: :func:`abandon_writes` leaves it alone (the report of an abandoned run is written with it).
    """

    def __init__(self, path: PathLike, size: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = _reserve_partial(self.path, track=False)
        try:
            self.fd = os.open(self.partial, os.O_RDWR)
        except BaseException:
            self.discard()
            raise
        try:
            os.posix_fallocate(self.fd, 0, max(1, size))
        except (OSError, AttributeError) as exc:  # no space now, or no fallocate here: written at the end
            log.debug("could not reserve %d bytes for %s: %s", size, self.path, exc)

    def commit(self, data: bytes) -> Path:
        try:
            os.lseek(self.fd, 0, os.SEEK_SET)
            write_all(self.fd, data)
            os.ftruncate(self.fd, len(data))
            os.close(self.fd)
            self.fd = -1
            _commit(self.partial, self.path, len(data), gated=False)
        except BaseException:
            self.discard()
            raise
        fsync_directory(self.path.parent)
        return self.path

    def discard(self) -> None:
        if getattr(self, "fd", -1) >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        remove_quietly(self.partial)
        _LIVE.discard(self.partial)


def os_error_reason(exc: OSError, *, reading: bool = False) -> str:
    """A short reason a user can act on for an error on a file: while ``reading`` it (not found, not
    readable...) or writing it (disk full, read-only...). The one errno -> message table."""
    code = exc.errno
    if reading:
        if isinstance(exc, FileNotFoundError):
            return "file not found"
        if isinstance(exc, IsADirectoryError):
            return "is a directory, not a file"
        if isinstance(exc, PermissionError):
            return "permission denied (the file is not readable by this user)"
        if code == errno.EINVAL and exc.strerror:
            return exc.strerror
        return f"cannot read the file ({exc.strerror or exc})"
    if code == errno.ENOSPC:
        return "disk full (no space left on the device)"
    if code == errno.EDQUOT:
        return "disk quota exceeded"
    if code == errno.EROFS:
        return "read-only file system"
    if code in (errno.EACCES, errno.EPERM) or isinstance(exc, PermissionError):
        return "permission denied (the folder is not writable by this user)"
    if isinstance(exc, IsADirectoryError):
        return "a folder of that name exists"
    if isinstance(exc, WritesAbandoned):
        return "abandoned: the run was stopped"
    return f"{exc.strerror or exc}"


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
