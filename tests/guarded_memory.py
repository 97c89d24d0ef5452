"""Arrays that end exactly where readable memory ends, so a native library that reads past them crashes.

Inside a heap block, a read past an array's end returns garbage and goes unnoticed; the same read
on a large array (its own mmap'ed block) is a segmentation fault, but only when the array happens to
end on a page boundary. :func:`guarded_array` places every array's last byte just before an
inaccessible page, so any overread crashes every time, whatever the array's size. Use it in a
subprocess (a crash must fail a test, not kill the suite). Linux and macOS (``mprotect``).
"""

from __future__ import annotations

import ctypes
import mmap

import numpy as np

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_PROT_NONE = 0
_mappings: list[mmap.mmap] = []  # kept alive for the process's life: the arrays view them


def guarded_array(shape: tuple[int, ...], dtype: np.dtype | type = np.uint8, fill: float = 0) -> np.ndarray:
    """A C-contiguous array of ``shape`` whose last byte is followed by an inaccessible page."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    page = mmap.PAGESIZE
    data_pages = max(1, -(-nbytes // page))
    mapping = mmap.mmap(-1, (data_pages + 1) * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    if _libc.mprotect(base + data_pages * page, page, _PROT_NONE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed")
    _mappings.append(mapping)
    array = np.frombuffer(mapping, dtype, count=int(np.prod(shape)), offset=data_pages * page - nbytes)
    array = array.reshape(shape)
    array[...] = fill
    return array


def guarded_copy(source: np.ndarray) -> np.ndarray:
    """``source``'s values in a :func:`guarded_array`."""
    array = guarded_array(source.shape, source.dtype)
    array[...] = source
    return array
