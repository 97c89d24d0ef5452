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


def test_freed_memory_is_given_back_every_so_many_pixels_from_any_thread(monkeypatch):
    import threading

    from colorizer import allocator

    calls = []
    monkeypatch.setattr(allocator, "_release_freed_memory", lambda: calls.append(1) or True)
    releaser = allocator.FreedMemoryReleaser(every_pixels=10e6)
    threads = [threading.Thread(target=lambda: [releaser.finished(1e6) for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 10  # 100 MP finished, one release per 10 MP


def test_release_freed_memory_returns_pages_to_the_system():
    """Freed pieces between live arrays stay in the process until released (a child process: its own heap)."""
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("needs glibc (malloc_trim)")
    import subprocess
    import sys
    import textwrap

    child = textwrap.dedent("""
        import numpy as np
        from colorizer.allocator import keep_freed_memory, _release_freed_memory

        def rss_mb():
            return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) // 1024

        keep_freed_memory()
        arrays = [np.ones(1_000_000 + 4096 * i, np.uint8) for i in range(240)]  # heap chunks, pages touched
        del arrays[::2]  # 120 MB freed between live arrays
        before = rss_mb()
        assert _release_freed_memory()
        print(before, rss_mb())
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = map(int, result.stdout.split())
    assert before - after > 80, (before, after)
