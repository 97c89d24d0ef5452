"""colorizer.allocator: glibc keeps freed memory for the next photo's arrays."""

import platform

import pytest

from colorizer.allocator import keep_freed_memory


def test_glibc_takes_the_settings_once_per_process():
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("needs glibc (mallopt)")
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # cached: the same answer, no second call
    assert keep_freed_memory.cache_info().hits >= 1
