"""What every backend is: open a model, predict ab from L in batches, close. And the model's files.

A backend turns normalized L (N, 1, H, W) into normalized ab (N, 2, H, W) (the color contract,
``colorizer.contract``); ``name`` says what really runs (read back from the library, never
assumed) and ``contract`` what the model computes. Each backend class has an ``open`` classmethod
the registry (:mod:`.registry`) calls with the model's files and the user's options; it raises
(:class:`BackendError` or the library's own error) when it cannot run here, and the registry
tries the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from colorizer.contract import ContractError, ModelContract
from colorizer.errors import ColorizerError

log = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
NO_NVIDIA_DRIVER = "no NVIDIA GPU here (no NVIDIA driver is loaded)"


class BackendError(ColorizerError, RuntimeError):
    """The requested backend cannot run here; the message says why and what to do."""


@dataclass(frozen=True)
class ModelFiles:
    """An exported model: the FP32 ONNX and, when present beside it, its FP16 twin (for GPUs) and
    its INT8 twin (for CPUs)."""

    onnx: Path
    fp16_onnx: Path | None = None
    int8_onnx: Path | None = None
    engine: Path | None = None  # a prebuilt TensorRT engine given by the user

    @classmethod
    def from_path(cls, path: Path) -> ModelFiles:
        path = Path(path)
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        if path.suffix in ENGINE_SUFFIXES:
            onnx_guess = path.with_suffix(".onnx")
            return cls(onnx=onnx_guess if onnx_guess.is_file() else path, engine=path)
        if path.suffix != ".onnx":
            raise BackendError(f"{path}: expected an ONNX model (.onnx) or a TensorRT engine (.engine/.plan)")
        name = path.name.removesuffix(".onnx").removesuffix(".fp16").removesuffix(".int8")
        fp32, fp16, int8 = (path.with_name(name + suffix) for suffix in (".onnx", ".fp16.onnx", ".int8.onnx"))
        return cls(onnx=fp32 if fp32.is_file() else path, fp16_onnx=fp16 if fp16.is_file() else None,
                   int8_onnx=int8 if int8.is_file() else None)

    def same_model_twins(self) -> ModelFiles:
        """These files without a twin exported from another checkpoint than the FP32 model (a model
        copied over an older one, its twins left beside it: a GPU would run the older model), with a
        warning. Each twin's contract is read: call it where a twin is about to be used."""
        want = read_contract(self.onnx).checkpoint_sha256
        kept = {}
        for field in ("fp16_onnx", "int8_onnx"):
            twin = getattr(self, field)
            if twin is None:
                continue
            try:
                have = read_contract(twin).checkpoint_sha256
            except (BackendError, ContractError) as exc:
                log.warning("%s is not used: %s", twin, exc)
                kept[field] = None
                continue
            if want and have and have != want:
                log.warning("%s is not used: it was exported from another checkpoint than %s (%s…, not %s…); "
                            "export the model again to make its twins", twin, self.onnx.name, have[:12], want[:12])
                kept[field] = None
        return replace(self, **kept) if kept else self

    @property
    def gpu_onnx(self) -> Path:
        """The ONNX a GPU runs best: the FP16 one when there is one."""
        return self.fp16_onnx or self.onnx

    def cpu_onnx(self, int8: bool = False) -> Path:
        """The ONNX a CPU runs: the FP32 one, or with ``int8`` the INT8 one when there is one."""
        return self.int8_onnx if int8 and self.int8_onnx else self.onnx


@dataclass(frozen=True)
class OpenOptions:
    """What the user chose besides the model: the GPU, CPU threads, where engines are cached..."""

    device: int = 0  # CUDA device index
    threads: int = 0  # CPU inference threads (0: the backend's default)
    cpu_int8: bool = False  # the CPU runs the model's INT8 twin when it has one (opt-in: see exporter/int8.py)
    cache_dir: Path | None = None  # TensorRT engines (None: the user's cache folder)
    render_size: int | None = None  # largest render size an engine must accept (None: the model's)
    engine_progress: Callable[[str, int, int], None] | None = None  # engine build: (phase, step, total)
    engine_cancel: Callable[[], bool] | None = None  # True: stop the engine build


class ClosesOnExit:
    """``with open_backend(...) as backend:`` closes the backend however the block ends (every backend
    ``open_backend`` returns, and every wrapper of one, is a context manager this way)."""

    def __enter__(self):
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


class Backend(Protocol):
    name: str  # the backend actually in use, e.g. "onnxruntime-cpu"
    contract: ModelContract

    def predict(self, l_norm: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """(N, 1, H, W) float32 normalized L -> (N, 2, H, W) float32 normalized ab. ``hints``: the
        (N, 3, H, W) hint guidance (:func:`colorizer.colorize.model_guidance`) for a model with hint
        inputs (``contract.takes_hints``; None: no hint, zeros are fed); a model without refuses it."""
        ...

    def close(self) -> None:
        """Free what the backend holds (GPU memory, sessions); it cannot predict afterwards."""
        ...

    def __enter__(self) -> Backend:
        """``with backend:`` (:class:`ClosesOnExit`) closes it when the block ends."""
        ...

    def __exit__(self, *exc) -> None: ...


def hint_feeds(contract: ModelContract, l_norm: np.ndarray, hints: np.ndarray | None) -> dict[str, np.ndarray]:
    """The extra inputs of a model with hint inputs: the guidance given (checked against L's shape),
    or zeros (no hint); nothing for a model without, which refuses guidance (BackendError)."""
    spec = contract.hint_inputs
    if spec is None:
        if hints is not None:
            raise BackendError("this model has no hint inputs: its colors take hints through the runtime's "
                               "spread (colorizer.colorize.predict_prepared), not as model input")
        return {}
    shape = (l_norm.shape[0], len(spec.channels), *l_norm.shape[-2:])
    if hints is None:
        return {spec.name: np.zeros(shape, np.float32)}
    if tuple(hints.shape) != shape:
        raise BackendError(f"hint guidance of shape {tuple(hints.shape)} for L of shape {tuple(l_norm.shape)}; "
                           f"expected {shape}")
    return {spec.name: np.ascontiguousarray(hints, dtype=np.float32)}


def default_model_path() -> Path:
    """The shipped default model (installed with the package as colorizer.assets)."""
    from importlib.resources import files

    return Path(str(files("colorizer.assets") / "models" / "colorizer.onnx"))


def read_contract(onnx_path: Path) -> ModelContract:
    """The color contract in an ONNX model's metadata (ContractError when it has none, or an unknown one)."""
    import onnxruntime as ort

    try:
        meta = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BackendError(f"{onnx_path}: cannot be loaded as an ONNX model ({exc})") from exc
    return ModelContract.from_metadata(meta.custom_metadata_map, source=str(onnx_path))
