"""The TensorRT backend of the runtime: engine built (or found in the cache) on first use, then run.

Imports TensorRT only inside :func:`open_tensorrt`; raises when TensorRT or a GPU is missing so
``open_backend`` can fall back to ONNX Runtime and say why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorizer.contract import ModelContract
from colorizer.exporter.tensorrt_engine import EngineRunner, engine_for_model, load_tensorrt, query_gpu

log = logging.getLogger(__name__)


@dataclass
class TensorRTBackend:
    engine: Path
    contract: ModelContract
    device: int = 0
    name: str = field(init=False, default="tensorrt")

    def __post_init__(self) -> None:
        self.runner = EngineRunner(self.engine, device=self.device)
        self.name = f"tensorrt ({self.runner.info.trt_module} {self.runner.info.trt_version}, " \
                    f"{self.runner.info.precision})"

    def predict(self, l_norm: np.ndarray) -> np.ndarray:
        if self.runner.accepts(l_norm.shape):
            return self.runner.run(l_norm)
        # larger than the engine's profile: run in pieces along the batch, refuse larger images
        if l_norm.shape[0] > self.runner.max_batch:
            step = self.runner.max_batch
            return np.concatenate([self.predict(l_norm[i : i + step]) for i in range(0, len(l_norm), step)])
        raise ValueError(f"input {l_norm.shape} is outside the engine's profile "
                         f"{self.runner.min_shape}..{self.runner.max_shape}; use a smaller --render-size")


def open_tensorrt(files, device: int = 0, cache_dir: Path | None = None,
                  progress: Callable[[str, int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None, render_size: int | None = None,
                  max_batch: int = 8) -> TensorRTBackend:
    from colorizer.desktop.backends import BackendError, read_contract

    load_tensorrt()  # raises TensorRTUnavailable with what to install
    if query_gpu(device) is None:
        raise BackendError(f"no CUDA GPU {device} found (cuda-python or torch with CUDA is needed to see it)")
    if files.onnx.suffix != ".onnx":
        raise BackendError(f"{files.engine}: a TensorRT engine needs its ONNX model beside it (same name, "
                           ".onnx) so its color contract can be checked")
    contract = read_contract(files.onnx)
    engine = files.engine or engine_for_model(files.onnx, files.fp16_onnx, contract, max_batch=max_batch,
                                              max_render_size=render_size, cache_dir=cache_dir,
                                              progress=progress, cancel=cancel, device=device)
    return TensorRTBackend(engine, contract, device)
