"""Inference backends behind one small interface (open / predict / close), chosen best-first.

``auto`` order: TensorRT engine (module ``tensorrt`` or ``tensorrt_rtx``, engine built and cached
on first use) -> ONNX Runtime TensorRT EP -> CUDA EP -> CPU EP (:mod:`.registry`). Nothing here
imports a GPU library at module import time.
"""

from colorizer.desktop.backends.base import (
    Backend,
    BackendError,
    ClosesOnExit,
    ModelFiles,
    OpenOptions,
    default_model_path,
    read_contract,
)
from colorizer.desktop.backends.onnxruntime import OnnxRuntimeBackend
from colorizer.desktop.backends.registry import AUTO, BACKEND_CHOICES, BACKEND_LABELS, REGISTRY, open_backend

__all__ = ["AUTO", "BACKEND_CHOICES", "BACKEND_LABELS", "REGISTRY", "Backend", "BackendError", "ClosesOnExit",
           "ModelFiles", "OnnxRuntimeBackend", "OpenOptions", "default_model_path", "open_backend", "read_contract"]
