"""Every native image encoder, over odd and even sizes, concurrently, with guard pages after each input.

A gray 4000 x 2647 JPEG scan crashed colorize-batch (libjpeg-turbo read the 4:2:0 Y' plane one row
past its end: TurboJPEG's planes are padded to even sizes). The overread was invisible for small
photos and a segmentation fault for large ones. Here every input array ends at an inaccessible page
(:mod:`guarded_memory`), so any overread crashes at any size, and the encoders run in a child
process on several threads, as the batch's writers do: a crash fails the test, not the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).parent

_CHILD = textwrap.dedent("""
    import sys, tempfile
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    import numpy as np
    from guarded_memory import guarded_array, guarded_copy
    from colorizer.desktop.media.image_write import JpegPlanes, write_image

    sizes = [(h, w) for h in range(1, 10) for w in range(1, 10)] + [(17, 33), (33, 17), (250, 161)]
    big = [(2647, 4000), (2647, 4001), (2648, 4001)]
    out = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)

    def planes(h, w):
        ch, cw = (h + 1) // 2, (w + 1) // 2
        return JpegPlanes(guarded_copy(rng.integers(0, 256, (h, w), dtype=np.uint8)),
                          guarded_array((ch, cw), fill=90), guarded_array((ch, cw), fill=170))

    def jobs():
        for h, w in sizes:
            rgb8 = guarded_copy(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            rgb16 = guarded_copy(rng.integers(0, 65536, (h, w, 3), dtype=np.uint16))
            alpha = guarded_array((h, w), fill=200)
            tag = f"{h}x{w}"
            yield f"{tag}.jpg", planes(h, w), {}
            yield f"{tag}.rgb.jpg", rgb8, {}
            yield f"{tag}.png", rgb8, {"alpha": alpha}
            yield f"{tag}.16.png", rgb16, {}
            yield f"{tag}.tif", rgb8, {"alpha": alpha}
            yield f"{tag}.16.tif", rgb16, {"alpha": guarded_array((h, w), np.uint16, 40000)}
            yield f"{tag}.webp", rgb8, {"alpha": alpha}
            yield f"{tag}.bmp", rgb8, {}
        for h, w in big:
            yield f"{h}x{w}.jpg", planes(h, w), {}

    def write(job):
        name, pixels, options = job
        write_image(out / name, pixels, **options)
        return name

    with ThreadPoolExecutor(4) as pool:
        written = list(pool.map(write, list(jobs())))
    print("ok", len(written))
""")


def _run_child(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=TESTS, env=_child_env())


def _child_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    return env


def test_guard_pages_catch_an_overread():
    """The guard works: reading one byte past a guarded array kills the child (so the test below can fail)."""
    script = textwrap.dedent("""
        import ctypes
        from guarded_memory import guarded_array
        a = guarded_array((3, 5))
        ctypes.string_at(a.ctypes.data, a.nbytes)  # the array itself: fine
        print("inside ok", flush=True)
        ctypes.string_at(a.ctypes.data, a.nbytes + 1)
        print("not reached")
    """)
    result = _run_child(script)
    assert "inside ok" in result.stdout
    assert result.returncode < 0 and "not reached" not in result.stdout


def test_every_encoder_reads_only_its_input_at_any_size():
    result = _run_child(_CHILD)
    assert result.returncode == 0, f"the encoders crashed (exit {result.returncode}):\n{result.stderr[-3000:]}"
    assert result.stdout.startswith("ok ")
