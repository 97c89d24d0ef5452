"""Inference backends behind one small interface, chosen best-first.

Order for ``auto``: TensorRT engine (module ``tensorrt`` or ``tensorrt_rtx``, engine built and
cached on first use) -> ONNX Runtime TensorRT EP -> CUDA EP -> CPU EP. ONNX Runtime falls back
silently when a provider cannot start, so the backend reported is always read back from
``session.get_providers()``. Nothing here imports a GPU library at module import time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from colorizer.contract import INPUT_NAME, ContractError, ModelContract

log = logging.getLogger(__name__)

BACKEND_CHOICES = ("auto", "tensorrt", "cuda", "cpu")
ORT_PROVIDER_NAMES = {
    "TensorrtExecutionProvider": "onnxruntime-tensorrt",
    "CUDAExecutionProvider": "onnxruntime-cuda",
    "CPUExecutionProvider": "onnxruntime-cpu",
}


class BackendError(RuntimeError):
    """The requested backend cannot run here; the message says why and what to do."""


class Backend(Protocol):
    name: str  # the backend actually in use, e.g. "onnxruntime-cpu"
    contract: ModelContract

    def predict(self, l_norm: np.ndarray) -> np.ndarray:
        """(N, 1, H, W) float32 normalized L -> (N, 2, H, W) float32 normalized ab."""
        ...


@dataclass(frozen=True)
class ModelFiles:
    """An exported model: the FP32 ONNX and, when present beside it, its FP16 twin (for GPUs)."""

    onnx: Path
    fp16_onnx: Path | None = None
    engine: Path | None = None  # a prebuilt TensorRT engine given by the user

    @classmethod
    def from_path(cls, path: Path) -> ModelFiles:
        path = Path(path)
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        if path.suffix in (".engine", ".plan", ".trt"):
            onnx_guess = path.with_suffix(".onnx")
            return cls(onnx=onnx_guess if onnx_guess.is_file() else path, engine=path)
        if path.suffix != ".onnx":
            raise BackendError(f"{path}: expected an ONNX model (.onnx) or a TensorRT engine (.engine/.plan)")
        name = path.name.removesuffix(".onnx").removesuffix(".fp16")
        fp32 = path.with_name(name + ".onnx")
        fp16 = path.with_name(name + ".fp16.onnx")
        return cls(onnx=fp32 if fp32.is_file() else path, fp16_onnx=fp16 if fp16.is_file() else None)


def default_model_path() -> Path:
    """The shipped default model (installed with the package as colorizer.assets)."""
    from importlib.resources import files

    return Path(str(files("colorizer.assets") / "models" / "colorizer.onnx"))


def read_contract(onnx_path: Path) -> ModelContract:
    import onnxruntime as ort

    try:
        meta = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BackendError(f"{onnx_path}: cannot be loaded as an ONNX model ({exc})") from exc
    return ModelContract.from_metadata(meta.custom_metadata_map, source=str(onnx_path))


@dataclass
class OnnxRuntimeBackend:
    """ONNX Runtime with the given providers; ``name`` reflects the provider really used."""

    model_path: Path
    providers: list
    threads: int = 0
    contract: ModelContract = field(init=False)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
        try:
            self.session = ort.InferenceSession(str(self.model_path), options, providers=self.providers)
        except Exception as exc:
            raise BackendError(f"{self.model_path}: ONNX Runtime could not load the model ({exc})") from exc
        self.contract = ModelContract.from_metadata(self.session.get_modelmeta().custom_metadata_map,
                                                    source=str(self.model_path))
        used = self.session.get_providers()
        self.name = ORT_PROVIDER_NAMES.get(used[0], used[0])
        self.providers_used = used

    def predict(self, l_norm: np.ndarray) -> np.ndarray:
        (ab,) = self.session.run(None, {INPUT_NAME: np.ascontiguousarray(l_norm, dtype=np.float32)})
        return ab


def ort_available_providers() -> list[str]:
    import onnxruntime as ort

    return ort.get_available_providers()


def _ort_provider_list(kind: str, device: int, cache_dir: Path | None) -> list:
    if kind == "tensorrt":
        options = {"device_id": device, "trt_fp16_enable": True, "trt_engine_cache_enable": True}
        if cache_dir is not None:
            options["trt_engine_cache_path"] = str(cache_dir)
            options["trt_timing_cache_enable"] = True
            options["trt_timing_cache_path"] = str(cache_dir)
        return [("TensorrtExecutionProvider", options), ("CUDAExecutionProvider", {"device_id": device}),
                "CPUExecutionProvider"]
    if kind == "cuda":
        return [("CUDAExecutionProvider", {"device_id": device}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _gpu_onnx(files: ModelFiles) -> Path:
    return files.fp16_onnx or files.onnx


def _try(factory: Callable[[], Backend], label: str, errors: list[str]) -> Backend | None:
    try:
        return factory()
    except ContractError:
        raise
    except Exception as exc:  # a backend that cannot start: note why and try the next
        errors.append(f"{label}: {exc}")
        log.info("backend %s unavailable: %s", label, exc)
        return None


def open_backend(model: Path | None = None, backend: str = "auto", device: int = 0, threads: int = 0,
                 cache_dir: Path | None = None,
                 engine_progress: Callable[[str, int, int], None] | None = None,
                 engine_cancel: Callable[[], bool] | None = None, render_size: int | None = None) -> Backend:
    """Open the best available backend for ``model`` (the shipped model by default).

    ``backend``: auto | tensorrt | cuda | cpu. An explicit GPU choice that cannot run raises
    BackendError naming the cause; ``auto`` falls back and logs why.
    """
    if backend not in BACKEND_CHOICES:
        raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKEND_CHOICES)}")
    files = ModelFiles.from_path(model or default_model_path())
    errors: list[str] = []
    available = ort_available_providers()

    if backend in ("auto", "tensorrt"):
        from colorizer.desktop import tensorrt_backend  # imports no TensorRT until an engine is opened

        trt = _try(lambda: tensorrt_backend.open_tensorrt(files, device, cache_dir, engine_progress, engine_cancel,
                                                               render_size),
                   "tensorrt", errors)
        if trt is not None:
            return trt
        if "TensorrtExecutionProvider" in available:
            ort_trt = _try(lambda: OnnxRuntimeBackend(files.onnx, _ort_provider_list("tensorrt", device, cache_dir),
                                                      threads), "onnxruntime-tensorrt", errors)
            if ort_trt is not None and ort_trt.name == "onnxruntime-tensorrt":
                return ort_trt
            if ort_trt is not None:
                errors.append(f"onnxruntime-tensorrt: fell back to {ort_trt.name}")
                if backend == "auto":
                    return ort_trt
        if backend == "tensorrt":
            raise BackendError("TensorRT is not usable here:\n  " + "\n  ".join(errors))
    if backend in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        cuda = _try(lambda: OnnxRuntimeBackend(_gpu_onnx(files), _ort_provider_list("cuda", device, None), threads),
                    "onnxruntime-cuda", errors)
        if cuda is not None and cuda.name == "onnxruntime-cuda":
            return cuda
        errors.append("onnxruntime-cuda: the CUDA provider did not start (see ONNX Runtime's log above)")
    if backend == "cuda":
        if "CUDAExecutionProvider" not in available:
            errors.append("onnxruntime-cuda: this ONNX Runtime has no CUDA provider; install the GPU build "
                          "with `pip uninstall onnxruntime && pip install onnxruntime-gpu`")
        raise BackendError("CUDA is not usable here:\n  " + "\n  ".join(errors))
    cpu = OnnxRuntimeBackend(files.onnx, ["CPUExecutionProvider"], threads or default_cpu_threads())
    if errors and backend == "auto":
        log.info("using %s; GPU backends unavailable: %s", cpu.name, "; ".join(errors))
    return cpu


def default_cpu_threads() -> int:
    """Threads for ONNX Runtime on the CPU: all cores but one left for decoding and encoding."""
    cores = os.cpu_count() or 1
    return max(1, cores - 1) if cores > 2 else cores
