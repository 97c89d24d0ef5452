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
fit, and the pieces add up (``mallinfo2`` in a run of 3k varied photos: memory in use flat at
105-140 MB, the heaps' free memory growing 127 -> 200 MB). :class:`FreedMemoryReleaser` gives those
pages back (``malloc_trim``) every 64 MP of finished photos: for a folder of 2 MP scans once every
32 photos, a few milliseconds. (Trimming whenever ``mallinfo2`` reports much free memory does not
work: it counts the released pages as free still, so it trimmed after every photo.)
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
def _glibc_function(name: str, argtypes: tuple, restype):
    """A function of the C library's allocator (``mallopt``, ``malloc_trim``), or None where the C
    library is not glibc (musl and others lack them) or this is not Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = list(argtypes), restype
    return function


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc's allocator for per-photo arrays (see the module), once per process; False where it
    is not glibc."""
    mallopt = _glibc_function("mallopt", (ctypes.c_int, ctypes.c_int), ctypes.c_int)
    if mallopt is None:
        return False
    done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    log.debug("allocator: keep freed memory %s", "on" if done else "refused")
    return done


def _release_freed_memory() -> bool:
    """Give the pages of memory freed so far back to the system, in every heap (glibc's
    ``malloc_trim(0)``: a few milliseconds); False where there is no such call."""
    trim = _glibc_function("malloc_trim", (ctypes.c_size_t,), ctypes.c_int)
    if trim is None:
        return False
    trim(0)
    return True


class FreedMemoryReleaser:
    """Calls :func:`_release_freed_memory` each time ``every_pixels`` more photo pixels have been
    finished (:meth:`finished`, from any thread). Between two calls the kept memory serves the next
    photos as :func:`keep_freed_memory` intends; over a long run it cannot pile up."""

    def __init__(self, every_pixels: float = 64e6) -> None:
        self.every_pixels = every_pixels
        self._since = 0.0
        self._lock = threading.Lock()

    def finished(self, pixels: float) -> None:
        with self._lock:
            self._since += pixels
            due = self._since >= self.every_pixels
            if due:
                self._since = 0.0
        if due:  # outside the lock: the other writers go on meanwhile
            _release_freed_memory()

