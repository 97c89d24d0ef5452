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


def test_freed_memory_is_given_back_when_more_is_kept_than_the_next_photos_could_use(monkeypatch):
    from colorizer import allocator

    calls, kept = [], [0]
    monkeypatch.setattr(allocator, "release_freed_memory", lambda: calls.append(kept[0]) or True)
    monkeypatch.setattr(allocator, "kept_free_bytes", lambda: kept[0])
    releaser = allocator.FreedMemoryReleaser(min_kept=100, bytes_per_pixel=10, recent=2)
    for pixels, free in ((5, 90), (5, 101), (20, 150), (20, 210), (5, 150), (5, 150)):
        kept[0] = free
        releaser.finished(pixels)
    # limit: max(100, 10 x the largest of the last two photos) = 100, 100, 200, 200, 200, 100
    assert calls == [101, 210, 150]


def test_without_mallinfo_freed_memory_is_given_back_every_so_many_pixels_from_any_thread(monkeypatch):
    import threading

    from colorizer import allocator

    calls = []
    monkeypatch.setattr(allocator, "release_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(allocator, "kept_free_bytes", lambda: None)
    releaser = allocator.FreedMemoryReleaser(every_pixels=10e6)
    threads = [threading.Thread(target=lambda: [releaser.finished(1e6) for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 10  # 100 MP finished, one release per 10 MP


def test_kept_free_bytes_sees_freed_memory():
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("needs glibc (mallinfo2)")
    import numpy as np

    from colorizer.allocator import keep_freed_memory, kept_free_bytes

    keep_freed_memory()
    arrays = [np.ones(1_000_000 + 4096 * i, np.uint8) for i in range(40)]
    before = kept_free_bytes()
    del arrays[::2]
    assert kept_free_bytes() - before > 15_000_000


def test_release_freed_memory_returns_pages_to_the_system():
    """Freed pieces between live arrays stay in the process until released (a child process: its own heap)."""
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("needs glibc (malloc_trim)")
    import subprocess
    import sys
    import textwrap

    child = textwrap.dedent("""
        import numpy as np
        from colorizer.allocator import keep_freed_memory, release_freed_memory

        def rss_mb():
            return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) // 1024

        keep_freed_memory()
        arrays = [np.ones(1_000_000 + 4096 * i, np.uint8) for i in range(240)]  # heap chunks, pages touched
        del arrays[::2]  # 120 MB freed between live arrays
        before = rss_mb()
        assert release_freed_memory()
        print(before, rss_mb())
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = map(int, result.stdout.split())
    assert before - after > 80, (before, after)
