"""The little CUDA an engine runner needs: device buffers, one stream, copies, synchronization.

Two implementations behind one protocol, chosen by :func:`select_allocator`: cuda-python's runtime
bindings (``pip install cuda-python``), else PyTorch built with CUDA. Both are imported when an
allocator is made, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from colorizer.errors import ColorizerError
from colorizer.gpu import cuda_ok, import_cudart, torch_with_cuda


class CudaUnavailable(ColorizerError, RuntimeError):
    """No way to allocate CUDA memory (neither cuda-python nor torch with CUDA is usable)."""


@dataclass
class DeviceBuffer:
    """``nbytes`` of device memory at ``ptr``; ``owner`` keeps the backing object alive (a torch tensor)."""

    ptr: int
    nbytes: int
    owner: Any = None


class DeviceAllocator(Protocol):
    """The little CUDA an engine runner needs: device buffers, one stream, copies, synchronization."""

    name: str

    def allocate(self, nbytes: int) -> DeviceBuffer: ...
    def free(self, buffer: DeviceBuffer) -> None: ...
    def create_stream(self) -> Any: ...
    def stream_handle(self, stream: Any) -> int: ...
    def destroy_stream(self, stream: Any) -> None: ...
    def copy_to_device(self, dst: DeviceBuffer, src: np.ndarray, stream: Any) -> None: ...
    def copy_to_host(self, dst: np.ndarray, src: DeviceBuffer, stream: Any) -> None: ...
    def synchronize(self, stream: Any) -> None: ...


def _check_fits(array: np.ndarray, buffer: DeviceBuffer) -> None:
    if not array.flags.c_contiguous:
        raise ValueError("host array must be C-contiguous")
    if array.nbytes > buffer.nbytes:
        raise ValueError(f"{array.nbytes} bytes do not fit a device buffer of {buffer.nbytes} bytes")


class CudaPythonAllocator:
    """CUDA memory through cuda-python's runtime bindings (``pip install cuda-python``)."""

    name = "cuda-python"

    def __init__(self, cudart: Any, device: int = 0) -> None:
        self._rt = cudart
        self._call(cudart.cudaSetDevice(device), "cudaSetDevice")

    def _call(self, result: Any, what: str) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if not cuda_ok(err):
            detail = ""
            try:
                detail = self._rt.cudaGetErrorString(err)[1]
                detail = detail.decode() if isinstance(detail, bytes) else str(detail)
            except Exception:
                pass
            raise RuntimeError(f"CUDA error in {what}: {err} {detail}".strip())
        return values[0] if len(values) == 1 else values

    def allocate(self, nbytes: int) -> DeviceBuffer:
        return DeviceBuffer(int(self._call(self._rt.cudaMalloc(nbytes), "cudaMalloc")), nbytes)

    def free(self, buffer: DeviceBuffer) -> None:
        if buffer.ptr:
            self._call(self._rt.cudaFree(buffer.ptr), "cudaFree")
            buffer.ptr = 0

    def create_stream(self) -> Any:
        return self._call(self._rt.cudaStreamCreate(), "cudaStreamCreate")

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def destroy_stream(self, stream: Any) -> None:
        self._call(self._rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def copy_to_device(self, dst: DeviceBuffer, src: np.ndarray, stream: Any) -> None:
        _check_fits(src, dst)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        result = self._rt.cudaMemcpyAsync(dst.ptr, src.ctypes.data, src.nbytes, kind, stream)
        self._call(result, "cudaMemcpyAsync (host to device)")

    def copy_to_host(self, dst: np.ndarray, src: DeviceBuffer, stream: Any) -> None:
        _check_fits(dst, src)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        result = self._rt.cudaMemcpyAsync(dst.ctypes.data, src.ptr, dst.nbytes, kind, stream)
        self._call(result, "cudaMemcpyAsync (device to host)")

    def synchronize(self, stream: Any) -> None:
        self._call(self._rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")


class TorchAllocator:
    """CUDA memory through PyTorch (uint8 CUDA tensors and a ``torch.cuda.Stream``)."""

    name = "torch"

    def __init__(self, torch: Any, device: int = 0) -> None:
        self._torch = torch
        self._device = torch.device("cuda", device)
        torch.cuda.set_device(self._device)

    def allocate(self, nbytes: int) -> DeviceBuffer:
        tensor = self._torch.empty(nbytes, dtype=self._torch.uint8, device=self._device)
        return DeviceBuffer(int(tensor.data_ptr()), nbytes, owner=tensor)

    def free(self, buffer: DeviceBuffer) -> None:
        buffer.owner = None
        buffer.ptr = 0

    def create_stream(self) -> Any:
        return self._torch.cuda.Stream(device=self._device)

    def stream_handle(self, stream: Any) -> int:
        return int(stream.cuda_stream)

    def destroy_stream(self, stream: Any) -> None:
        stream.synchronize()

    def _bytes(self, array: np.ndarray) -> Any:
        return self._torch.from_numpy(array.reshape(-1).view(np.uint8))

    def copy_to_device(self, dst: DeviceBuffer, src: np.ndarray, stream: Any) -> None:
        _check_fits(src, dst)
        with self._torch.cuda.stream(stream):  # ordered on the engine's stream
            dst.owner[: src.nbytes].copy_(self._bytes(src))

    def copy_to_host(self, dst: np.ndarray, src: DeviceBuffer, stream: Any) -> None:
        _check_fits(dst, src)
        with self._torch.cuda.stream(stream):  # a blocking copy into dst's memory, after the engine ran
            self._bytes(dst).copy_(src.owner[: dst.nbytes])

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()


def select_allocator(prefer: str | None = None, device: int = 0) -> DeviceAllocator:
    """cuda-python if importable, else torch with CUDA (or the one named by ``prefer``)."""
    if prefer not in (None, "cuda-python", "torch"):
        raise ValueError(f"unknown allocator {prefer!r}; use 'cuda-python' or 'torch'")
    if prefer in (None, "cuda-python"):
        cudart = import_cudart()
        if cudart is not None:
            return CudaPythonAllocator(cudart, device)
    if prefer in (None, "torch"):
        torch = torch_with_cuda()
        if torch is not None:
            return TorchAllocator(torch, device)
    asked = f" (asked for {prefer})" if prefer else ""
    raise CudaUnavailable("TensorRT inference needs CUDA memory from cuda-python (`pip install cuda-python`) "
                          f"or from PyTorch built with CUDA, and neither is usable here{asked}. Install "
                          "cuda-python, or use the ONNX Runtime backend.")
