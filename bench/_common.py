"""What the bench scripts share: a backend without inference (the I/O bound), the machine line, and
the tests' one loop that encodes a clip of frames (``write_clip``, from tests/synthetic_media.py)."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colorizer.contract import ModelContract
from colorizer.desktop.backends import ClosesOnExit

TESTS = Path(__file__).resolve().parents[1] / "tests"


@dataclass
class NoInference(ClosesOnExit):
    """A backend that returns zero chroma at once: measures everything but the model."""

    contract: ModelContract
    name: str = "none (I/O bound)"

    def predict(self, l_norm: np.ndarray) -> np.ndarray:
        return np.zeros((l_norm.shape[0], 2, *l_norm.shape[2:]), np.float32)

    def close(self) -> None:
        pass


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        return "? GiB"


def _versions() -> str:
    import cv2
    import PIL

    try:
        import onnxruntime

        ort = f"ONNX Runtime {onnxruntime.__version__}"
    except ImportError:
        ort = "no ONNX Runtime"
    return f"{ort}, OpenCV {cv2.__version__}, Pillow {PIL.__version__}, numpy {np.__version__}"


def machine() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{_cpu_model()}, {os.cpu_count()} cores ({usable} usable), {_memory_gib()}, "
            f"{platform.platform()}, Python {platform.python_version()}, {_versions()}")


def write_clip(*args, **kwargs) -> Path:
    """tests/synthetic_media.py's ``write_clip`` (imported on first use: a photo benchmark loads no PyAV)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from synthetic_media import write_clip as write

    return write(*args, **kwargs)

