"""ONNX Runtime: its TensorRT, CUDA and CPU execution providers.

ONNX Runtime falls back silently when a provider cannot start, so the name of a backend is read
back from ``session.get_providers()``; an ``open_*`` that did not get the provider it asked for
closes the session and raises, and the registry goes on to the next backend. The CUDA provider
runs the FP16 ONNX where there is one, TensorRT's builds FP16 engines itself from the FP32 one; the
CPU runs the FP32 ONNX, or when asked (``cpu_int8``) the INT8 one where there is one (its name then
ends in ``-int8``).
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorizer.contract import INPUT_NAME, ModelContract
from colorizer.desktop.backends.base import (
    BackendError,
    ClosesOnExit,
    ModelFiles,
    OpenOptions,
    hint_feeds,
    read_contract,
)

PROVIDER_NAMES = {
    "TensorrtExecutionProvider": "onnxruntime-tensorrt",
    "CUDAExecutionProvider": "onnxruntime-cuda",
    "CPUExecutionProvider": "onnxruntime-cpu",
}
CPU = "CPUExecutionProvider"
log = logging.getLogger(__name__)


def _x86_without_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on an x86 CPU whose flags (Linux) show no VNNI: there ONNX Runtime's u8s8 kernels can
    saturate and an INT8 model's colors may suffer (the INT8 twin was checked on a VNNI CPU only).
    False elsewhere, or when it cannot tell."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), None)
    except OSError:
        return False
    return flags is not None and not {"avx512_vnni", "avx_vnni"} & set(flags)


def _available_providers() -> list[str]:
    import onnxruntime as ort

    return ort.get_available_providers()


def default_cpu_threads() -> int:
    """Threads for ONNX Runtime on the CPU: all cores but one left for decoding and encoding."""
    cores = os.cpu_count() or 1
    return max(1, cores - 1) if cores > 2 else cores


@dataclass
class OnnxRuntimeBackend(ClosesOnExit):
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
        # its threads sleep between calls instead of spinning: decoding, merging and encoding share
        # the cores with them (a 720p film: 19.7 vs 15.5 frames/s on 2 cores, training running)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.model_path), options, providers=self.providers)
        except Exception as exc:
            raise BackendError(f"{self.model_path}: ONNX Runtime could not load the model ({exc})") from exc
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.contract = ModelContract.from_metadata(metadata, source=str(self.model_path))
        self.contract_precision = metadata.get("colorizer.precision", "")
        used = self.session.get_providers()
        self.name = PROVIDER_NAMES.get(used[0], used[0])
        if self.contract_precision == "int8":
            self.name += "-int8"

    def predict(self, l_norm: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        feeds = {INPUT_NAME: np.ascontiguousarray(l_norm, dtype=np.float32)}
        feeds |= hint_feeds(self.contract, l_norm, hints)
        (ab,) = self.session.run(None, feeds)
        return ab

    def close(self) -> None:
        self.session = None  # ONNX Runtime frees the session's memory with its last reference

    # ------------------------------------------------------------------ the registry's entries
    @classmethod
    def open_tensorrt(cls, files: ModelFiles, options: OpenOptions) -> OnnxRuntimeBackend:
        provider = {"device_id": options.device, "trt_fp16_enable": True, "trt_engine_cache_enable": True}
        if options.cache_dir is not None:
            provider |= {"trt_engine_cache_path": str(options.cache_dir), "trt_timing_cache_enable": True,
                         "trt_timing_cache_path": str(options.cache_dir)}
        providers = [("TensorrtExecutionProvider", provider), ("CUDAExecutionProvider", {"device_id": options.device}),
                     CPU]
        return cls._open_expecting("TensorrtExecutionProvider", files.onnx, providers, options.threads)

    @classmethod
    def open_cuda(cls, files: ModelFiles, options: OpenOptions) -> OnnxRuntimeBackend:
        providers = [("CUDAExecutionProvider", {"device_id": options.device}), CPU]
        return cls._open_expecting("CUDAExecutionProvider", files.same_model_twins().gpu_onnx, providers,
                                   options.threads)

    @classmethod
    def open_cpu(cls, files: ModelFiles, options: OpenOptions) -> OnnxRuntimeBackend:
        onnx = (files.same_model_twins() if options.cpu_int8 else files).cpu_onnx(options.cpu_int8)
        if onnx != files.onnx and read_contract(files.onnx).takes_hints and not read_contract(onnx).takes_hints:
            # said where hints are used (colorize-batch's hints line): the shipped model has hint inputs
            log.info("the INT8 twin of this model has no hint inputs: color hints are spread over its colors "
                     "(the training-free route); without --cpu-int8 the model itself follows them")
        if onnx != files.onnx and _x86_without_vnni():
            log.warning("this CPU has no VNNI instructions: the INT8 model may lose color here (it was "
                        "checked on a CPU with VNNI); without --cpu-int8 the FP32 model runs")
        return cls(onnx, [CPU], options.threads or default_cpu_threads())

    @classmethod
    def _open_expecting(cls, provider: str, onnx: Path, providers: list, threads: int) -> OnnxRuntimeBackend:
        if provider not in _available_providers():
            gpu_build = "" if provider == CPU else "; install the GPU build with `pip uninstall onnxruntime && " \
                                                   "pip install onnxruntime-gpu`"
            raise BackendError(f"this ONNX Runtime has no {provider}{gpu_build}")
        backend = cls(onnx, providers, threads)
        if backend.name != PROVIDER_NAMES[provider]:
            backend.close()
            raise BackendError(f"the {provider} did not start and ONNX Runtime fell back to {backend.name} "
                               "(see ONNX Runtime's log above)")
        return backend
