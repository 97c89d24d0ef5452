"""What the bench scripts share: a backend without inference (the I/O bound), the machine line, and
the one loop that encodes a clip of frames."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from colorizer.contract import ModelContract


@dataclass
class NoInference:
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


def write_clip(path: Path, frames: Iterable, *, fps: int = 24, options: dict[str, str] | None = None,
               colorspace: int | None = None, color_range: int | None = None) -> Path:
    """Encode ``frames`` — gray (H, W) or RGB (H, W, 3) uint8 arrays, or ready ``av.VideoFrame``s —
    as an H.264 (yuv420p) video at ``fps``; the size is the first frame's."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = None
        for i, picture in enumerate(frames):
            if isinstance(picture, np.ndarray):
                rgb = np.repeat(picture[..., None], 3, 2) if picture.ndim == 2 else picture
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if stream is None:
                stream = out.add_stream("libx264", rate=fps)
                stream.width, stream.height, stream.pix_fmt = picture.width, picture.height, "yuv420p"
                if colorspace is not None:
                    stream.codec_context.colorspace = colorspace
                if color_range is not None:
                    stream.codec_context.color_range = color_range
                if options:
                    stream.options = dict(options)
            picture.pts, picture.time_base = i, Fraction(1, fps)
            for packet in stream.encode(picture):
                out.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return path

