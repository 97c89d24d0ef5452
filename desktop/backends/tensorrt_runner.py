"""Running a built TensorRT engine: ``L`` float32 (N, 1, H, W) in, ``ab`` float32 (N, 2, H, W) out.

The TensorRT 10 way (as Polygraphy and NVIDIA's samples do it): tensors looked up by name, device
buffers allocated once at the profile's maximum shape, then per call ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3`` on the runner's own stream. Building engines is
:mod:`.tensorrt_engine`'s job; this module only loads and runs them.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from colorizer.contract import INPUT_NAME, OUTPUT_NAME
from colorizer.desktop.backends.cuda_memory import DeviceAllocator, DeviceBuffer, select_allocator
from colorizer.desktop.backends.engine_info import EngineInfo, EngineInfoError, sidecar_path_for
from colorizer.desktop.backends.tensorrt_module import TensorRT, load_tensorrt, make_logger
from colorizer.errors import ColorizerError

log = logging.getLogger(__name__)

class EngineLoadError(ColorizerError, RuntimeError):
    """A serialized engine could not be loaded or does not have the model's inputs and outputs."""


class EngineRunner:
    """Run a built engine: ``L`` float32 (N, 1, H, W) in, ``ab`` float32 (N, 2, H, W) out.

    Device buffers are allocated once at the profile's maximum shape; each call sets the input
    shape and tensor addresses, copies in, runs ``execute_async_v3`` on the runner's stream and
    copies out. One runner per engine per thread (calls are serialized by a lock); ``close()``
    frees the GPU memory (or use it as a context manager).
    """

    def __init__(self, engine_path: Path | str, *, trt_module: str | ModuleType | TensorRT | None = None,
                 allocator: DeviceAllocator | None = None, device: int = 0) -> None:
        self.engine_path = Path(engine_path)
        self.info = self._read_sidecar()
        if trt_module is None and self.info is not None:
            trt_module = self.info.trt_module  # an engine only loads with the module that built it
        self._trt = load_tensorrt(trt_module)
        self._alloc = allocator if allocator is not None else select_allocator(device=device)
        self._lock = threading.Lock()
        self._buffers: list[DeviceBuffer] = []
        self._stream: Any = None
        m = self._trt.module
        self._logger = make_logger(self._trt)
        self._runtime = m.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            built_for = f" It was built for {self.info.spec.describe()}." if self.info else ""
            errors = "; ".join(self._logger.errors)
            raise EngineLoadError(f"{self._trt.describe()} could not load {self.engine_path}"
                                  f"{': ' + errors if errors else ''}.{built_for} Delete it; ensure_engine "
                                  "builds a new one for this GPU and TensorRT.")
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise EngineLoadError(f"could not create an execution context for {self.engine_path} "
                                  "(out of GPU memory?)")
        self._check_io()
        mins, _, maxs = self._engine.get_tensor_profile_shape(INPUT_NAME, 0)
        self.min_shape = tuple(int(d) for d in mins)
        self.max_shape = tuple(int(d) for d in maxs)
        if not self._context.set_input_shape(INPUT_NAME, self.max_shape):
            raise EngineLoadError(f"{self.engine_path}: TensorRT rejected the profile's max shape "
                                  f"{self.max_shape}")
        # a model's hint guidance (N, C, H, W): the same batch and size as L
        self.extra_inputs = self._extra_inputs()
        for name, channels in self.extra_inputs.items():
            if not self._context.set_input_shape(name, self._extra_shape(self.max_shape, channels)):
                raise EngineLoadError(f"{self.engine_path}: TensorRT rejected the max shape of input {name!r}")
        self.max_output_shape = tuple(int(d) for d in self._context.get_tensor_shape(OUTPUT_NAME))
        if any(d < 0 for d in self.max_output_shape):
            raise EngineLoadError(f"{self.engine_path}: output shape {self.max_output_shape} is not resolved")
        try:
            itemsize = np.dtype(np.float32).itemsize
            self._input = self._alloc.allocate(math.prod(self.max_shape) * itemsize)
            self._buffers.append(self._input)
            self._output = self._alloc.allocate(math.prod(self.max_output_shape) * itemsize)
            self._buffers.append(self._output)
            self._extra_buffers = {}
            for name, channels in self.extra_inputs.items():
                self._extra_buffers[name] = self._alloc.allocate(
                    math.prod(self._extra_shape(self.max_shape, channels)) * itemsize)
                self._buffers.append(self._extra_buffers[name])
            self._stream = self._alloc.create_stream()
        except BaseException:
            self.close()
            raise
        log.info("loaded %s with %s; %s memory for inputs up to %s", self.engine_path.name,
                 self._trt.describe(), self._alloc.name, self.max_shape)

    def _read_sidecar(self) -> EngineInfo | None:
        sidecar = sidecar_path_for(self.engine_path)
        if not sidecar.is_file():
            return None
        try:
            return EngineInfo.read(sidecar)
        except EngineInfoError as exc:
            log.warning("ignoring sidecar: %s", exc)
            return None

    def _check_io(self) -> None:
        m, engine = self._trt.module, self._engine
        modes = {engine.get_tensor_name(i): engine.get_tensor_mode(engine.get_tensor_name(i))
                 for i in range(engine.num_io_tensors)}
        for name, mode in ((INPUT_NAME, m.TensorIOMode.INPUT), (OUTPUT_NAME, m.TensorIOMode.OUTPUT)):
            if modes.get(name) != mode:
                raise EngineLoadError(f"{self.engine_path} has tensors {sorted(modes)}; a Colorizer engine "
                                      f"has input {INPUT_NAME!r} and output {OUTPUT_NAME!r}")
            dtype = engine.get_tensor_dtype(name)
            if dtype != m.DataType.FLOAT:
                raise EngineLoadError(f"{self.engine_path}: tensor {name!r} is {dtype}, expected float32 "
                                      "(the FP16 ONNX keeps float32 inputs and outputs)")

    def _extra_inputs(self) -> dict[str, int]:
        """The engine's inputs besides L (a model's hint guidance): name -> channels."""
        m, engine = self._trt.module, self._engine
        out = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if name != INPUT_NAME and engine.get_tensor_mode(name) == m.TensorIOMode.INPUT:
                out[name] = int(tuple(engine.get_tensor_shape(name))[1])
        return out

    @staticmethod
    def _extra_shape(l_shape: tuple[int, ...], channels: int) -> tuple[int, ...]:
        return (l_shape[0], channels, *l_shape[2:])

    @property
    def max_batch(self) -> int:
        return self.max_shape[0]

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Whether an input of ``shape`` (N, 1, H, W) lies inside the engine's optimization profile."""
        if len(shape) != 4:
            return False
        return all(lo <= s <= hi for s, lo, hi in zip(shape, self.min_shape, self.max_shape, strict=True))

    def run(self, l_batch: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Normalized L (N, 1, H, W) -> normalized ab (N, 2, H, W), both float32. ``extra``: the other
        inputs by name (a model's hint guidance, (N, C, H, W)); one not given is fed zeros (no hint)."""
        x = np.ascontiguousarray(l_batch, dtype=np.float32)
        extra = dict(extra or {})
        unknown = sorted(set(extra) - set(self.extra_inputs))
        if unknown:
            raise ValueError(f"{self.engine_path.name} has no input {', '.join(map(repr, unknown))}")
        feeds = {}
        for name, channels in self.extra_inputs.items():
            want = self._extra_shape(x.shape, channels)
            given = extra.get(name)
            feeds[name] = np.zeros(want, np.float32) if given is None else np.ascontiguousarray(given, np.float32)
            if feeds[name].shape != want:
                raise ValueError(f"input {name!r} of shape {feeds[name].shape}; expected {want} for L {x.shape}")
        if not self.accepts(x.shape):
            raise ValueError(f"input shape {x.shape} is outside the engine's profile "
                             f"{self.min_shape}..{self.max_shape}; split the batch, or rebuild the engine "
                             "with a larger profile")
        if self._stream is None:
            raise RuntimeError(f"EngineRunner for {self.engine_path.name} is closed")
        ctx = self._context
        with self._lock:
            if not ctx.set_input_shape(INPUT_NAME, x.shape):
                raise RuntimeError(f"TensorRT rejected input shape {x.shape}")
            ctx.set_tensor_address(INPUT_NAME, self._input.ptr)
            for name, value in feeds.items():
                if not ctx.set_input_shape(name, value.shape):
                    raise RuntimeError(f"TensorRT rejected input {name!r} of shape {value.shape}")
                ctx.set_tensor_address(name, self._extra_buffers[name].ptr)
            ctx.set_tensor_address(OUTPUT_NAME, self._output.ptr)
            out = np.empty(tuple(int(d) for d in ctx.get_tensor_shape(OUTPUT_NAME)), dtype=np.float32)
            self._alloc.copy_to_device(self._input, x, self._stream)
            for name, value in feeds.items():
                self._alloc.copy_to_device(self._extra_buffers[name], value, self._stream)
            if not ctx.execute_async_v3(self._alloc.stream_handle(self._stream)):
                errors = "; ".join(self._logger.errors)
                detail = f": {errors}" if errors else ""
                raise RuntimeError(f"TensorRT inference failed for input {x.shape}{detail}")
            self._alloc.copy_to_host(out, self._output, self._stream)
            self._alloc.synchronize(self._stream)
        return out

    def close(self) -> None:
        """Free device buffers and the stream, then the TensorRT objects (context, engine, runtime)."""
        with self._lock:
            if self._stream is not None:
                try:
                    self._alloc.synchronize(self._stream)
                    self._alloc.destroy_stream(self._stream)
                finally:
                    self._stream = None
            while self._buffers:
                self._alloc.free(self._buffers.pop())
            for attr in ("_context", "_engine", "_runtime"):  # reverse order of creation
                if hasattr(self, attr):
                    setattr(self, attr, None)

    def __enter__(self) -> EngineRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
