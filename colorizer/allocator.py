"""Keep freed memory mapped, so that each photo's arrays do not page-fault afresh (glibc only).

A photo's arrays are a few to a few hundred MB, made and freed once per photo. With glibc's
defaults, allocations over 128 kB-32 MB are served by fresh ``mmap`` regions and freed memory at
the top of the heap goes back to the system, so every new photo page-faults its arrays in again:
on a virtual machine about 1 µs per 4 kB page, measured here as 10-15 ms of a 2 MP photo's
50 ms (the luma route's finish: 17 ms instead of 6). :func:`keep_freed_memory` serves
allocations up to 32 MB (glibc's largest threshold) from the heap and keeps up to 512 MB of freed
memory for the next photo. Memory is not used up by it: what is kept is what the last photos
needed, and it is reused before anything new is mapped. Larger arrays are still mapped each time.

Photos of many sizes leave the freed memory in pieces that the next photo's arrays do not always
fit, and the pieces add up: over thousands of photos of varied sizes the process held 20-25 %
more than over the first thousand, all of it free memory glibc kept (``mallinfo2``: memory in use
flat at 105-140 MB, free memory in the heaps growing; ONNX Runtime's arena and the number of glibc
arenas changed nothing). :class:`FreedMemoryReleaser` gives those pages back (``malloc_trim``)
when more is kept than the next photos could use, so memory is bounded by the photos in flight,
not the photos done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys
import threading

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's maximum (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 512 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc's allocator for per-photo arrays (see the module), once per process; False where it
    is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    log.debug("allocator: keep freed memory %s", "on" if done else "refused")
    return done


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Give the pages of memory freed so far back to the system, in every heap (glibc's
    ``malloc_trim(0)``: a few milliseconds); False where there is no such call."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


@functools.cache
def _mallinfo2():
    """glibc's ``mallinfo2`` (2.33+), or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        info = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    info.argtypes, info.restype = [], _MallInfo2
    return info


def kept_free_bytes() -> int | None:
    """Bytes glibc holds freed in its heaps (``mallinfo2().fordblks``), or None where it cannot say."""
    info = _mallinfo2()
    return None if info is None else int(info().fordblks)


class FreedMemoryReleaser:
    """Gives freed memory back (:func:`release_freed_memory`) once glibc keeps more of it than the
    next photos could use: more than ``min_kept`` bytes and ``bytes_per_pixel`` times the largest of
    the last photos (96: a photo's arrays take about 24 bytes a pixel, and about four are in flight). Checked after each photo (:meth:`finished`, from any thread; ``mallinfo2`` is
    cheap); where glibc cannot say, every ``every_pixels`` of photos instead. Photos of one size
    reuse their freed memory and are never trimmed; photos of many sizes cannot pile it up."""

    def __init__(self, min_kept: int = 96 << 20, bytes_per_pixel: float = 96.0, every_pixels: float = 64e6,
                 recent: int = 16) -> None:
        self.min_kept, self.bytes_per_pixel, self.every_pixels = min_kept, bytes_per_pixel, every_pixels
        self._recent: list[float] = []
        self._size = recent
        self._since = 0.0
        self._lock = threading.Lock()

    def finished(self, pixels: float) -> None:
        with self._lock:
            self._recent = [*self._recent[-(self._size - 1):], pixels]
            limit = max(self.min_kept, self.bytes_per_pixel * max(self._recent))
            self._since += pixels
            every = self._since >= self.every_pixels
            if every:
                self._since = 0.0
        kept = kept_free_bytes()
        if (kept > limit) if kept is not None else every:  # outside the lock: the other writers go on
            release_freed_memory()
