"""The backends, best first: one table drives ``--backend``, the app's backend menu and ``auto``.

``auto`` tries every entry in order; a named choice tries its own entries only and, when none can
run, raises :class:`BackendError` listing why each could not. A model whose color contract is
missing or unknown fails at once (``ContractError``): no backend could run it.

To add a backend: write a class with ``name``, ``contract``, ``predict`` and ``close`` and an
``open(files, options)`` classmethod that raises when it cannot run here, then add one
:class:`BackendEntry` below (a new ``choice`` appears in the CLI and the app by itself).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from colorizer.contract import ContractError
from colorizer.desktop.backends.base import (
    NO_NVIDIA_DRIVER,
    Backend,
    BackendError,
    ModelFiles,
    OpenOptions,
    default_model_path,
)
from colorizer.desktop.backends.onnxruntime import OnnxRuntimeBackend
from colorizer.gpu import nvidia_driver_present

log = logging.getLogger(__name__)

AUTO = "auto"


@dataclass(frozen=True)
class BackendEntry:
    choice: str  # what --backend and the app call it; entries sharing a choice are tried in order
    label: str  # the app's menu entry for the choice
    title: str  # for messages: "<title> is not usable here"
    name: str  # for messages: which attempt failed
    open: Callable[[ModelFiles, OpenOptions], Backend]


def _open_tensorrt(files: ModelFiles, options: OpenOptions) -> Backend:
    """TensorRTBackend.open; its modules (with the engine builder's, ~40 ms) is imported only where a driver is."""
    if not nvidia_driver_present():
        raise BackendError(NO_NVIDIA_DRIVER)
    from colorizer.desktop.backends.tensorrt import TensorRTBackend

    return TensorRTBackend.open(files, options)


REGISTRY: tuple[BackendEntry, ...] = (
    BackendEntry("tensorrt", "GPU: TensorRT", "TensorRT", "tensorrt", _open_tensorrt),
    BackendEntry("tensorrt", "GPU: TensorRT", "TensorRT", "onnxruntime-tensorrt", OnnxRuntimeBackend.open_tensorrt),
    BackendEntry("cuda", "GPU: CUDA", "CUDA", "onnxruntime-cuda", OnnxRuntimeBackend.open_cuda),
    BackendEntry("cpu", "CPU", "The CPU", "onnxruntime-cpu", OnnxRuntimeBackend.open_cpu),
)

BACKEND_CHOICES: tuple[str, ...] = (AUTO, *dict.fromkeys(e.choice for e in REGISTRY))
BACKEND_LABELS: dict[str, str] = {AUTO: "Auto (best available)"} | {e.choice: e.label for e in REGISTRY}


def open_backend(model: Path | None = None, backend: str = AUTO, device: int = 0, threads: int = 0,
                 cache_dir: Path | None = None,
                 engine_progress: Callable[[str, int, int], None] | None = None,
                 engine_cancel: Callable[[], bool] | None = None, render_size: int | None = None,
                 cpu_int8: bool = False) -> Backend:
    """Open the best available backend of ``backend`` (a :data:`BACKEND_CHOICES`) for ``model``
    (the shipped model by default). The caller closes it: ``with open_backend(...) as backend:``."""
    if backend not in BACKEND_CHOICES:
        raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKEND_CHOICES)}")
    files = ModelFiles.from_path(model or default_model_path())
    options = OpenOptions(device, threads, cpu_int8, cache_dir, render_size, engine_progress, engine_cancel)
    errors: list[str] = []
    for entry in REGISTRY:
        if backend not in (AUTO, entry.choice):
            continue
        try:
            opened = entry.open(files, options)
        except ContractError:
            raise
        except Exception as exc:  # cannot run here: note why and try the next
            errors.append(f"{entry.name}: {exc}")
            log.info("backend %s unavailable: %s", entry.name, exc)
            continue
        if errors and backend == AUTO:
            log.info("using %s; faster backends unavailable: %s", opened.name, "; ".join(errors))
        return opened
    title = next((e.title for e in REGISTRY if e.choice == backend), "No backend")
    raise BackendError(f"{title} is not usable here:\n  " + "\n  ".join(errors))
