"""TensorRT: the model's engine, built (or found in the cache) for this GPU on first use, then run.

Imports TensorRT only when opened; raises when TensorRT or a GPU is missing so the registry can
fall back to ONNX Runtime and say why. Engines are built and cached by
:func:`.tensorrt_engine.engine_for_model` (which ``colorizer-export --engine`` calls too) and run by
:class:`EngineRunner`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorizer.contract import ModelContract
from colorizer.desktop.backends.base import (
    NO_NVIDIA_DRIVER,
    BackendError,
    ClosesOnExit,
    ModelFiles,
    OpenOptions,
    hint_feeds,
    read_contract,
)
from colorizer.desktop.backends.tensorrt_engine import engine_for_model
from colorizer.desktop.backends.tensorrt_module import load_tensorrt
from colorizer.desktop.backends.tensorrt_runner import EngineRunner
from colorizer.gpu import nvidia_driver_present, query_gpu

log = logging.getLogger(__name__)

MAX_BATCH = 8  # the engine's profile: batches up to this many images at the render size


@dataclass
class TensorRTBackend(ClosesOnExit):
    engine: Path
    contract: ModelContract
    device: int = 0
    name: str = field(init=False, default="tensorrt")

    def __post_init__(self) -> None:
        self.runner = EngineRunner(self.engine, device=self.device)
        info = self.runner.info
        self.name = f"tensorrt ({info.trt_module} {info.trt_version}, {info.precision})" if info else "tensorrt"

    def predict(self, l_norm: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        extra = hint_feeds(self.contract, l_norm, hints)  # a model with hint inputs: guidance or zeros
        if self.runner.accepts(l_norm.shape):
            return self.runner.run(l_norm, extra) if extra else self.runner.run(l_norm)
        # larger than the engine's profile: run in pieces along the batch, refuse larger images
        if l_norm.shape[0] > self.runner.max_batch:
            step = self.runner.max_batch
            return np.concatenate([self.predict(l_norm[i : i + step], None if hints is None else hints[i : i + step])
                                   for i in range(0, len(l_norm), step)])
        raise ValueError(f"input {l_norm.shape} is outside the engine's profile "
                         f"{self.runner.min_shape}..{self.runner.max_shape}; use a smaller --render-size")

    def close(self) -> None:
        self.runner.close()

    @classmethod
    def open(cls, files: ModelFiles, options: OpenOptions) -> TensorRTBackend:
        if not nvidia_driver_present():  # before importing TensorRT (~0.1 s) on a machine without a GPU
            raise BackendError(NO_NVIDIA_DRIVER)
        load_tensorrt()  # raises TensorRTUnavailable with what to install
        if query_gpu(options.device) is None:
            raise BackendError(f"no CUDA GPU {options.device} found (cuda-python or torch with CUDA is needed "
                               "to see it)")
        if files.onnx.suffix != ".onnx":
            raise BackendError(f"{files.engine}: a TensorRT engine needs its ONNX model beside it (same name, "
                               ".onnx) so its color contract can be checked")
        contract = read_contract(files.onnx)
        if files.engine is None:
            files = files.same_model_twins()
        engine = files.engine or engine_for_model(
            files.onnx, files.fp16_onnx, contract, max_batch=MAX_BATCH, max_render_size=options.render_size,
            cache_dir=options.cache_dir, progress=options.engine_progress, cancel=options.engine_cancel,
            device=options.device)
        return cls(engine, contract, options.device)
