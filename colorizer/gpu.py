"""Which CUDA GPU is there, and making one current: for building engines and for running them.

Imports nothing GPU-related at import time: cuda-python (``cuda.bindings.runtime``, or
``cuda.cudart`` before 12.6) or torch with CUDA are imported when asked, whichever is installed --
and not even then on a Linux machine without an NVIDIA driver (no device nodes), so a CPU run
never pays for importing torch (seconds and hundreds of MB).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuInfo:
    """The GPU an engine is built for. ``compute_capability`` is "major.minor", e.g. "8.6"."""

    name: str
    compute_capability: str


_NVIDIA_NODES = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")  # dxg: WSL 2


def nvidia_driver_present() -> bool:
    """False on a Linux machine where no NVIDIA driver is loaded (none of its device nodes): there
    is no CUDA GPU to look for. True elsewhere (unknown: the libraries are asked)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(node) for node in _NVIDIA_NODES)


def import_cudart() -> Any | None:
    """cuda-python's runtime module (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6), or None."""
    try:
        from cuda.bindings import runtime

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart  # type: ignore[attr-defined]

        return cudart
    except ImportError:
        return None


def cuda_ok(err: Any) -> bool:
    return int(getattr(err, "value", err)) == 0


def torch_with_cuda() -> Any | None:
    """torch, if it is installed and sees a CUDA GPU; else None (without importing it where there
    is no NVIDIA driver)."""
    if not nvidia_driver_present() or importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch
    except Exception as exc:  # a broken torch install must not stop the caller
        log.debug("torch import failed: %s", exc)
        return None
    return torch if torch.cuda.is_available() else None


def query_gpu(device: int = 0) -> GpuInfo | None:
    """Name and compute capability of CUDA device ``device`` via cuda-python, else torch; None if unknown."""
    if not nvidia_driver_present():
        return None
    cudart = import_cudart()
    if cudart is not None:
        try:
            err, count = cudart.cudaGetDeviceCount()
            if not cuda_ok(err) or count <= device:
                return None
            err, props = cudart.cudaGetDeviceProperties(device)
            if not cuda_ok(err):
                return None
            name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
            return GpuInfo(name.strip("\x00 "), f"{props.major}.{props.minor}")
        except Exception as exc:
            log.debug("cuda-python could not query device %d: %s", device, exc)
    torch = torch_with_cuda()
    if torch is not None and torch.cuda.device_count() > device:
        major, minor = torch.cuda.get_device_capability(device)
        return GpuInfo(torch.cuda.get_device_name(device), f"{major}.{minor}")
    return None


def use_device(device: int) -> None:
    """Make CUDA device ``device`` the current one of this thread (what TensorRT builds and runs on).

    A no-op where neither cuda-python nor torch with CUDA is there (then there is no device to choose)."""
    cudart = import_cudart()
    if cudart is not None:
        result = cudart.cudaSetDevice(device)
        err = result[0] if isinstance(result, tuple) else result
        if cuda_ok(err):
            return
        log.debug("cudaSetDevice(%d) failed: %s", device, err)
    torch = torch_with_cuda()
    if torch is not None:
        torch.cuda.set_device(device)
