"""What can run here, found once and cheaply: each backend choice, usable or not and why, and the GPUs.

Detection opens nothing: it asks ONNX Runtime which execution providers it was built with, looks
for the TensorRT modules without importing them, and counts the CUDA GPUs (cuda-python, else
torch with CUDA). The app runs it once per launch in the background, offers only the usable
choices, says why the others cannot run in plain words, and turns ``auto`` into ``cpu`` where
nothing else can run, so a CPU run never waits for a GPU probe.

Advice to install a GPU build of something is only given where there is a GPU to use it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from colorizer.desktop.backends.registry import AUTO, BACKEND_LABELS, REGISTRY
from colorizer.gpu import GpuInfo, query_gpu

log = logging.getLogger(__name__)

MAX_GPUS = 16
TENSORRT_MODULES = ("tensorrt", "tensorrt_rtx")
NO_GPU = "needs an NVIDIA graphics card (GPU), and none was found on this computer"


@dataclass(frozen=True)
class ChoiceStatus:
    """One backend choice (``BACKEND_CHOICES`` minus ``auto``): can it run here, and if not, why."""

    choice: str
    label: str
    usable: bool
    reason: str = ""  # plain words, empty when usable


@dataclass(frozen=True)
class Detection:
    choices: tuple[ChoiceStatus, ...]  # in the registry's (best-first) order
    gpus: tuple[GpuInfo, ...] = ()

    def usable(self) -> list[str]:
        return [c.choice for c in self.choices if c.usable]

    def status(self, choice: str) -> ChoiceStatus | None:
        return next((c for c in self.choices if c.choice == choice), None)

    def best(self) -> str:
        """The best usable choice (the CPU is always there)."""
        return next(iter(self.usable()), "cpu")


def _list_gpus(query: Callable[[int], GpuInfo | None] = query_gpu) -> tuple[GpuInfo, ...]:
    """The CUDA GPUs of this machine, device 0 first (empty without cuda-python or torch with CUDA)."""
    gpus: list[GpuInfo] = []
    for device in range(MAX_GPUS):
        try:
            info = query(device)
        except Exception as exc:  # a broken driver is "no GPU", not a crash at launch
            log.debug("GPU query %d failed: %s", device, exc)
            info = None
        if info is None:
            break
        gpus.append(info)
    return tuple(gpus)


def onnxruntime_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def tensorrt_modules() -> list[str]:
    """The TensorRT modules that are installed (found, not imported)."""
    return [name for name in TENSORRT_MODULES if importlib.util.find_spec(name) is not None]


def detect_backends(providers: Sequence[str] | None = None, gpus: Sequence[GpuInfo] | None = None,
                    trt_modules: Sequence[str] | None = None) -> Detection:
    """Which backend choices can run here (arguments: what to assume instead of looking, for tests)."""
    providers = onnxruntime_providers() if providers is None else list(providers)
    gpus = _list_gpus() if gpus is None else tuple(gpus)
    trt_modules = tensorrt_modules() if trt_modules is None else list(trt_modules)
    reasons = {
        "tensorrt": _tensorrt_reason(gpus, providers, trt_modules),
        "cuda": _cuda_reason(gpus, providers),
        "cpu": "" if "CPUExecutionProvider" in providers else "ONNX Runtime is not installed (pip install onnxruntime)",
    }
    choices = tuple(dict.fromkeys(e.choice for e in REGISTRY))
    statuses = tuple(ChoiceStatus(c, BACKEND_LABELS[c], not reasons.get(c, ""), reasons.get(c, "")) for c in choices)
    return Detection(statuses, tuple(gpus))


def _cuda_reason(gpus: Sequence[GpuInfo], providers: Sequence[str]) -> str:
    if not gpus:
        return NO_GPU
    if "CUDAExecutionProvider" not in providers:
        return ("the installed ONNX Runtime is its CPU-only build; for the GPU, replace it with the GPU build: "
                "pip uninstall onnxruntime && pip install onnxruntime-gpu")
    return ""


def _tensorrt_reason(gpus: Sequence[GpuInfo], providers: Sequence[str], trt_modules: Sequence[str]) -> str:
    if not gpus:
        return NO_GPU
    if not trt_modules and "TensorrtExecutionProvider" not in providers:
        return "TensorRT is not installed (pip install tensorrt, or tensorrt-rtx-cu13 on GeForce RTX cards)"
    return ""


def resolve_choice(requested: str, detection: Detection | None) -> str:
    """What to open for ``requested``: ``auto`` becomes ``cpu`` where only the CPU can run (no GPU
    probe, no waiting); a named choice is kept (opening it says why it fails)."""
    if requested == AUTO and detection is not None and detection.usable() == ["cpu"]:
        return "cpu"
    return requested
