"""TensorRT engine building, caching and running.

Most tests replace ``tensorrt`` / ``tensorrt_rtx`` with a fake module (the ultralytics idea) so the
build logic runs on a CPU; one test builds a real engine with ``tensorrt_rtx`` when it is installed
(TensorRT for RTX builds without a GPU).
"""

from __future__ import annotations

import enum
import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from colorizer.contract import ModelContract
from colorizer.desktop.backends import cuda_memory, tensorrt_runner
from colorizer.desktop.backends import tensorrt_engine as te
from colorizer.desktop.backends.engine_info import (
    EngineInfo,
    EngineInfoError,
    EngineProfile,
    EngineSpec,
    GpuInfo,
    engine_cache_dir,
    sidecar_path_for,
    stale_reasons,
)

PROFILE = EngineProfile(min_batch=1, opt_batch=2, max_batch=4, min_size=(64, 64), opt_size=(128, 192),
                        max_size=(256, 256))
GPU = GpuInfo("NVIDIA GeForce RTX 3060", "8.6")


# --------------------------------------------------------------------------- fake TensorRT
class Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


def make_fake_trt(name: str = "tensorrt", version: str = "10.9.0.34", *,
                  fp16_flag: bool = True) -> ModuleType:
    """A module with the slice of the TensorRT 10/11/RTX Python API that tensorrt_engine uses.

    ``mod.record`` collects what the code under test asked for; ``mod.knobs`` steers the fake.
    """
    mod = ModuleType(name)
    mod.__version__ = version
    rec = SimpleNamespace(network_flags=[], shapes=[], flags=[], pools=[], timing_in=[], builds=0,
                          targets=[], executes=[], input_shapes=[], extra_shapes=[])
    knobs = SimpleNamespace(parse_errors=[], half=False, fail_build=False, device_memory=None,
                            phases=[("Building engine", 2), ("Tactic selection", 3)],
                            hint_channels=0)  # > 0: the model also takes "hints" (N, C, H, W)
    mod.record, mod.knobs = rec, knobs

    class ILogger:
        pass

    ILogger.Severity = Severity  # type: ignore[attr-defined]
    mod.ILogger = ILogger
    mod.BuilderFlag = enum.Enum("BuilderFlag", ["TF32", "FP16"] if fp16_flag else ["TF32"])
    mod.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", {"STRONGLY_TYPED": 1})
    mod.MemoryPoolType = enum.Enum("MemoryPoolType", ["WORKSPACE"])
    mod.DataType = enum.Enum("DataType", ["FLOAT", "HALF"])
    mod.TensorIOMode = enum.Enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    if name == "tensorrt_rtx":
        targets = ["NONE", "CURRENT", "SM75", "SM80", "SM86", "SM89"]
        mod.ComputeCapability = enum.Enum("ComputeCapability", targets)

    class IProgressMonitor:
        pass

    mod.IProgressMonitor = IProgressMonitor

    def tensor(tname: str, shape: tuple[int, ...], dtype: Any = mod.DataType.FLOAT) -> SimpleNamespace:
        return SimpleNamespace(name=tname, shape=shape, dtype=dtype)

    class Layer:
        def __init__(self, dtype: Any) -> None:
            self.num_outputs = 1
            self._out = tensor("x", (-1, 2, -1, -1), dtype)

        def get_output(self, index: int) -> SimpleNamespace:
            return self._out

    class Network:
        def __init__(self) -> None:
            self.inputs: list[SimpleNamespace] = []
            self.outputs: list[SimpleNamespace] = []
            self.layers: list[Layer] = []

        num_inputs = property(lambda self: len(self.inputs))
        num_outputs = property(lambda self: len(self.outputs))
        num_layers = property(lambda self: len(self.layers))

        def get_input(self, i: int) -> SimpleNamespace:
            return self.inputs[i]

        def get_output(self, i: int) -> SimpleNamespace:
            return self.outputs[i]

        def get_layer(self, i: int) -> Layer:
            return self.layers[i]

    class ParserError:
        def __init__(self, desc: str, node_name: str, op: str) -> None:
            self._desc, self._node_name, self._op = desc, node_name, op

        def desc(self) -> str:
            return self._desc

        def node_name(self) -> str:
            return self._node_name

        def node_operator(self) -> str:
            return self._op

    class OnnxParser:
        def __init__(self, network: Network, logger: Any) -> None:
            self.network = network

        def parse(self, data: bytes, path: str | None = None) -> bool:
            if knobs.parse_errors:
                return False
            self.network.inputs = [tensor("L", (-1, 1, -1, -1))]
            if knobs.hint_channels:
                self.network.inputs.append(tensor("hints", (-1, knobs.hint_channels, -1, -1)))
            self.network.outputs = [tensor("ab", (-1, 2, -1, -1))]
            self.network.layers = [Layer(mod.DataType.HALF if knobs.half else mod.DataType.FLOAT)]
            return True

        @property
        def num_errors(self) -> int:
            return len(knobs.parse_errors)

        def get_error(self, i: int) -> ParserError:
            return ParserError(*knobs.parse_errors[i])

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return self.data

    class OptimizationProfile:
        def __init__(self) -> None:
            self.by_name: dict[str, tuple] = {}

        def set_shape(self, tname: str, lo: tuple, opt: tuple, hi: tuple) -> None:
            rec.shapes.append((tname, lo, opt, hi))
            self.by_name[tname] = (lo, opt, hi)

        @property
        def shapes(self) -> tuple:
            return self.by_name["L"]

    class Config:
        def __init__(self) -> None:
            self.profiles: list[OptimizationProfile] = []
            self.timing_cache: TimingCache | None = None
            self.progress_monitor: Any = None
            self.num_compute_capabilities = 0

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            rec.pools.append((pool, size))

        def set_flag(self, flag: Any) -> None:
            rec.flags.append(flag)

        def add_optimization_profile(self, profile: OptimizationProfile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache:
            rec.timing_in.append(bytes(data))
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> TimingCache | None:
            return self.timing_cache

        def set_compute_capability(self, cc: Any, index: int) -> bool:
            rec.targets.append((cc, index, self.num_compute_capabilities))
            return True

    class Builder:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            rec.network_flags.append(flags)
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> OptimizationProfile:
            return OptimizationProfile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
            rec.builds += 1
            monitor = config.progress_monitor
            for phase, steps in knobs.phases:
                if monitor is not None:
                    monitor.phase_start(phase, None, steps)
                for step in range(steps):
                    if monitor is not None and not monitor.step_complete(phase, step):
                        monitor.phase_finish(phase)
                        self.logger.log(Severity.ERROR, "Error Code 7: BuildCanceled (canceled by user)")
                        return None
                if monitor is not None:
                    monitor.phase_finish(phase)
            if knobs.fail_build:
                self.logger.log(Severity.ERROR, "Error Code 2: Internal Error (out of memory)")
                return None
            if config.timing_cache is not None:
                config.timing_cache.data += f"|build{rec.builds}".encode()
            lo, opt, hi = config.profiles[0].shapes
            extra = {k: v for k, v in config.profiles[0].by_name.items() if k != "L"}
            return json.dumps({"fake_engine": True, "min": lo, "opt": opt, "max": hi, "extra": extra}).encode()

    class ExecutionContext:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.shape: tuple[int, ...] | None = None
            self.extra_shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}

        def set_input_shape(self, tname: str, shape: tuple[int, ...]) -> bool:
            profile = self.engine.extra.get(tname, self.engine.profile)
            lo, hi = profile[0], profile[2]
            if not all(a <= s <= b for s, a, b in zip(shape, lo, hi, strict=True)):
                return False
            if tname in self.engine.extra:
                self.extra_shapes[tname] = tuple(shape)
                rec.extra_shapes.append((tname, tuple(shape)))
                return True
            self.shape = tuple(shape)
            rec.input_shapes.append(self.shape)
            return True

        def get_tensor_shape(self, tname: str) -> tuple[int, ...]:
            n, _, h, w = self.shape
            return (n, 1, h, w) if tname == "L" else (n, 2, h, w)

        def set_tensor_address(self, tname: str, ptr: int) -> bool:
            self.addresses[tname] = ptr
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            rec.executes.append(stream_handle)
            memory = knobs.device_memory
            n, _, h, w = self.shape
            x = memory[self.addresses["L"]][: n * h * w * 4].view(np.float32).reshape(n, 1, h, w)
            ab = np.concatenate([np.tanh(x), -np.tanh(x)], axis=1).astype(np.float32)
            if "hints" in self.engine.extra:  # ab + the guidance's first two planes
                c = self.extra_shapes["hints"][1]
                g = memory[self.addresses["hints"]][: n * c * h * w * 4].view(np.float32).reshape(n, c, h, w)
                ab = ab + g[:, :2]
            memory[self.addresses["ab"]][: ab.nbytes] = ab.reshape(-1).view(np.uint8)
            return True

    class Engine:
        def __init__(self, profile: tuple, extra: dict | None = None) -> None:
            self.profile = profile
            self.extra = {k: tuple(tuple(s) for s in v) for k, v in (extra or {}).items()}
            self.names = ["L", *self.extra, "ab"]
            self.num_io_tensors = len(self.names)

        def get_tensor_name(self, i: int) -> str:
            return self.names[i]

        def get_tensor_shape(self, tname: str) -> tuple[int, ...]:
            if tname in self.extra:
                return (-1, self.extra[tname][0][1], -1, -1)
            return (-1, 1 if tname == "L" else 2, -1, -1)

        def get_tensor_mode(self, tname: str) -> Any:
            return mod.TensorIOMode.OUTPUT if tname == "ab" else mod.TensorIOMode.INPUT

        def get_tensor_dtype(self, tname: str) -> Any:
            return mod.DataType.FLOAT

        def get_tensor_profile_shape(self, tname: str, index: int) -> list[tuple[int, ...]]:
            return [tuple(s) for s in self.profile]

        def create_execution_context(self) -> ExecutionContext:
            return ExecutionContext(self)

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            try:
                blob = json.loads(bytes(data))
            except ValueError:
                self.logger.log(Severity.ERROR, "Error Code 1: Serialization (magic tag does not match)")
                return None
            return Engine((blob["min"], blob["opt"], blob["max"]), blob.get("extra"))

    mod.Builder, mod.OnnxParser, mod.Runtime = Builder, OnnxParser, Runtime
    return mod


class FakeAllocator:
    """Host memory standing in for device memory; the fake execution context reads and writes it."""

    name = "fake"

    def __init__(self) -> None:
        self.memory: dict[int, np.ndarray] = {}
        self.allocations: list[int] = []
        self.freed = 0
        self.syncs = 0
        self.streams_destroyed = 0

    def allocate(self, nbytes: int) -> cuda_memory.DeviceBuffer:
        ptr = 4096 * (len(self.allocations) + 1)
        self.memory[ptr] = np.zeros(nbytes, dtype=np.uint8)
        self.allocations.append(nbytes)
        return cuda_memory.DeviceBuffer(ptr, nbytes)

    def free(self, buffer: cuda_memory.DeviceBuffer) -> None:
        del self.memory[buffer.ptr]
        self.freed += 1

    def create_stream(self) -> str:
        return "stream"

    def stream_handle(self, stream: Any) -> int:
        return 77

    def destroy_stream(self, stream: Any) -> None:
        self.streams_destroyed += 1

    def copy_to_device(self, dst: cuda_memory.DeviceBuffer, src: np.ndarray, stream: Any) -> None:
        self.memory[dst.ptr][: src.nbytes] = src.reshape(-1).view(np.uint8)

    def copy_to_host(self, dst: np.ndarray, src: cuda_memory.DeviceBuffer, stream: Any) -> None:
        dst.reshape(-1).view(np.uint8)[:] = self.memory[src.ptr][: dst.nbytes]

    def synchronize(self, stream: Any) -> None:
        self.syncs += 1


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch):
    """install(name, version, fp16_flag=...) puts a fake module in sys.modules and hides the other one."""

    def _install(name: str = "tensorrt", version: str = "10.9.0.34", *, fp16_flag: bool = True) -> ModuleType:
        mod = make_fake_trt(name, version, fp16_flag=fp16_flag)
        monkeypatch.setitem(sys.modules, name, mod)
        for other in te.MODULE_NAMES:
            if other != name and not hasattr(sys.modules.get(other), "record"):  # not one of our fakes
                monkeypatch.setitem(sys.modules, other, None)  # "import other" raises ImportError
        return mod

    return _install


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> GpuInfo:
    monkeypatch.setattr(te, "query_gpu", lambda device=0: GPU)
    return GPU


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "colorizer.onnx"
    path.write_bytes(b"not really onnx; the fake parser does not read it")
    return path


def build(onnx_path: Path, cache: Path, **kwargs: Any) -> Path:
    kwargs.setdefault("precision", "fp32")
    kwargs.setdefault("profile", PROFILE)
    return te.ensure_engine(onnx_path, cache_dir=cache, **kwargs)


# --------------------------------------------------------------------------- module selection
def test_importing_the_project_modules_imports_no_gpu_library() -> None:
    code = ("import sys, colorizer.desktop.backends.tensorrt_engine, colorizer.desktop.backends.engine_info\n"
            "import colorizer.desktop.backends, colorizer.desktop.backends.tensorrt_runner\n"
            "bad = [m for m in ('tensorrt', 'tensorrt_rtx', 'torch', 'cuda') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_tensorrt_module_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch, onnx_file: Path,
                                                tmp_path: Path) -> None:
    for name in te.MODULE_NAMES:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(te.TensorRTUnavailable) as err:
        te.load_tensorrt()
    message = str(err.value)
    assert "tensorrt:" in message and "tensorrt_rtx:" in message  # what was tried, and why it failed
    assert "pip install tensorrt`" in message and "pip install tensorrt-rtx-cu13" in message
    with pytest.raises(te.TensorRTUnavailable, match="you chose"):
        te.load_tensorrt("tensorrt_rtx")
    with pytest.raises(te.TensorRTUnavailable):  # a build says the same before touching the cache
        build(onnx_file, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_tensorrt_is_preferred_then_tensorrt_rtx(install) -> None:
    install("tensorrt_rtx", "1.7.1.116", fp16_flag=False)
    assert te.load_tensorrt().name == "tensorrt_rtx"  # tensorrt is hidden
    install("tensorrt", "10.9.0.34")
    assert te.load_tensorrt().name == "tensorrt"
    assert te.load_tensorrt("tensorrt_rtx").name == "tensorrt_rtx"
    with pytest.raises(ValueError, match="unknown TensorRT module"):
        te.load_tensorrt("tensorrt_llm")


@pytest.mark.parametrize(("name", "version", "fp16_flag", "strong", "flags"), [
    ("tensorrt", "10.9.0.34", True, False, 0),
    ("tensorrt", "11.0.0.1", False, True, 0),  # strongly typed always; the flag is deprecated and ignored
    ("tensorrt_rtx", "1.7.1.116", False, True, 1 << 1),
])
def test_typing_mode_per_module(install, name: str, version: str, fp16_flag: bool, strong: bool,
                                flags: int) -> None:
    trt = te.load_tensorrt(install(name, version, fp16_flag=fp16_flag))
    assert trt.strongly_typed is strong
    assert trt.network_flags() == flags
    assert trt.uses_timing_cache is (name == "tensorrt")


def test_choose_onnx_per_module(install, tmp_path: Path) -> None:
    fp32, fp16 = tmp_path / "m.onnx", tmp_path / "m.fp16.onnx"
    install("tensorrt", "10.9.0.34")
    assert te.choose_onnx("fp16", fp32, fp16, "tensorrt") == fp32  # + BuilderFlag.FP16
    install("tensorrt_rtx", "1.7.1.116", fp16_flag=False)
    assert te.choose_onnx("fp16", fp32, fp16, "tensorrt_rtx") == fp16
    assert te.choose_onnx("fp32", fp32, fp16, "tensorrt_rtx") == fp32
    with pytest.raises(te.EngineBuildError, match="FP16 ONNX"):
        te.choose_onnx("fp16", fp32, None, "tensorrt_rtx")


# --------------------------------------------------------------------------- building
def test_build_passes_profile_workspace_and_fp16_flag_on_tensorrt_10(install, gpu, onnx_file: Path,
                                                                     tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    path = build(onnx_file, tmp_path / "cache", precision="fp16", workspace_bytes=3 << 28)
    assert path.is_file() and path.parent == tmp_path / "cache"
    assert fake.record.shapes == [("L", (1, 1, 64, 64), (2, 1, 128, 192), (4, 1, 256, 256))]
    assert fake.record.pools == [(fake.MemoryPoolType.WORKSPACE, 3 << 28)]
    assert fake.record.flags == [fake.BuilderFlag.FP16]
    assert fake.record.network_flags == [0]  # weakly typed: FP16 comes from the flag


def test_fp32_on_tensorrt_10_sets_no_precision_flag(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    build(onnx_file, tmp_path / "cache", precision="fp32")
    assert fake.record.flags == []


@pytest.mark.parametrize(("name", "version"), [("tensorrt", "11.1.0.5"), ("tensorrt_rtx", "1.7.1.116")])
def test_strongly_typed_fp16_sets_no_flag_and_needs_the_fp16_onnx(install, gpu, onnx_file: Path,
                                                                  tmp_path: Path, name: str,
                                                                  version: str) -> None:
    fake = install(name, version, fp16_flag=False)
    with pytest.raises(te.EngineBuildError, match=r"fp16\.onnx"):  # float32 network: not an FP16 engine
        build(onnx_file, tmp_path / "cache", precision="fp16", trt_module=name)
    assert not list((tmp_path / "cache").glob("*.engine*"))
    fake.knobs.half = True  # the FP16 ONNX: float16 tensors inside
    path = build(onnx_file, tmp_path / "cache", precision="fp16", trt_module=name)
    assert path.is_file()
    assert fake.record.flags == []
    assert fake.record.network_flags[-1] == (1 << 1 if name == "tensorrt_rtx" else 0)


def test_fp32_engine_from_an_fp16_onnx_is_refused(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    fake.knobs.half = True
    with pytest.raises(te.EngineBuildError, match="FP32 ONNX"):
        build(onnx_file, tmp_path / "cache", precision="fp32")


def test_rtx_targets_the_gpu_it_knows(install, gpu, onnx_file: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install("tensorrt_rtx", "1.7.1.116", fp16_flag=False)
    path = build(onnx_file, tmp_path / "cache")
    assert fake.record.targets == [(fake.ComputeCapability.SM86, 0, 1)]
    assert EngineInfo.read(sidecar_path_for(path)).extra == {"compute_capability_targets": ["SM86"]}
    monkeypatch.setattr(te, "query_gpu", lambda device=0: None)  # no GPU: the module's default targets
    build(onnx_file, tmp_path / "cache2")
    assert len(fake.record.targets) == 1


def test_parser_errors_are_reported_with_their_messages(install, gpu, onnx_file: Path,
                                                        tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    fake.knobs.parse_errors = [("Unsupported operator GridSample3D", "/up3/grid", "GridSample3D"),
                               ("Invalid weights for Conv", "/enc1/conv", "Conv")]
    with pytest.raises(te.EngineBuildError) as err:
        build(onnx_file, tmp_path / "cache")
    message = str(err.value)
    assert "Unsupported operator GridSample3D" in message and "/up3/grid" in message
    assert "Invalid weights for Conv" in message and "colorizer.onnx" in message
    assert fake.record.builds == 0


def test_failed_build_reports_tensorrt_errors_and_writes_nothing(install, gpu, onnx_file: Path,
                                                                 tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    fake.knobs.fail_build = True
    with pytest.raises(te.EngineBuildError, match="out of memory") as err:
        build(onnx_file, tmp_path / "cache")
    assert "workspace" in str(err.value)
    assert not list((tmp_path / "cache").glob("*.engine*"))


def test_progress_is_forwarded_phase_by_phase(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    install("tensorrt", "10.9.0.34")
    events: list[tuple[str, int, int]] = []
    build(onnx_file, tmp_path / "cache", progress=lambda *e: events.append(e))
    assert events == [("Building engine", 0, 2), ("Building engine", 1, 2), ("Building engine", 2, 2),
                      ("Building engine", 2, 2), ("Tactic selection", 0, 3), ("Tactic selection", 1, 3),
                      ("Tactic selection", 2, 3), ("Tactic selection", 3, 3), ("Tactic selection", 3, 3)]


def test_a_failing_progress_callback_does_not_break_the_build(install, gpu, onnx_file: Path,
                                                              tmp_path: Path) -> None:
    install("tensorrt", "10.9.0.34")

    def broken(*_: object) -> None:
        raise RuntimeError("GUI went away")

    assert build(onnx_file, tmp_path / "cache", progress=broken).is_file()


def test_cancel_stops_the_build_and_leaves_no_engine(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    asked = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) >= 3  # once before the build, then at the second step

    cache = tmp_path / "cache"
    with pytest.raises(te.BuildCancelled):
        build(onnx_file, cache, cancel=cancel)
    assert fake.record.builds == 1
    assert not [p for p in cache.glob("*") if p.is_file()]  # no engine, sidecar or partial file
    assert not list(cache.glob("timing/*"))  # the timing cache is only saved after a complete build


def test_cancel_before_the_build_starts(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    with pytest.raises(te.BuildCancelled):
        build(onnx_file, tmp_path / "cache", cancel=lambda: True)
    assert fake.record.builds == 0


def test_missing_onnx_says_how_to_make_one(install, tmp_path: Path) -> None:
    install("tensorrt", "10.9.0.34")
    with pytest.raises(FileNotFoundError, match="colorizer-export"):
        build(tmp_path / "absent.onnx", tmp_path / "cache")


# --------------------------------------------------------------------------- timing cache
def test_timing_cache_is_saved_and_reused(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    cache = tmp_path / "cache"
    build(onnx_file, cache, precision="fp32")
    build(onnx_file, cache, precision="fp16")  # another engine, same TensorRT + GPU: same timing cache
    assert fake.record.timing_in == [b"", b"|build1"]
    timing_files = list((cache / "timing").iterdir())
    assert [p.name for p in timing_files] == ["tensorrt-10.9.0.34-nvidia-geforce-rtx-3060-sm8.6.cache"]
    assert timing_files[0].read_bytes() == b"|build1|build2"


def test_timing_cache_is_per_tensorrt_version(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    install("tensorrt", "10.9.0.34")
    build(onnx_file, cache)
    fake = install("tensorrt", "10.13.0.1")
    build(onnx_file, cache)
    assert fake.record.timing_in == [b""]
    assert len(list((cache / "timing").iterdir())) == 2


def test_tensorrt_rtx_uses_no_timing_cache(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    fake = install("tensorrt_rtx", "1.7.1.116", fp16_flag=False)
    build(onnx_file, tmp_path / "cache")
    assert fake.record.timing_in == []  # deprecated no-ops in TensorRT-RTX
    assert not (tmp_path / "cache" / "timing").exists()


# --------------------------------------------------------------------------- cache and sidecar
def test_sidecar_says_what_the_engine_was_built_for(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    install("tensorrt", "10.9.0.34")
    path = build(onnx_file, tmp_path / "cache", precision="fp16", workspace_bytes=1 << 29)
    data = json.loads(sidecar_path_for(path).read_text())
    assert path.name.startswith("colorizer-fp16-") and path.suffix == ".engine"
    assert sidecar_path_for(path).name == path.name + ".json"
    assert data["onnx_sha256"] == te.sha256_file(onnx_file)
    assert (data["trt_module"], data["trt_version"]) == ("tensorrt", "10.9.0.34")
    assert (data["gpu_name"], data["gpu_compute_capability"]) == (GPU.name, "8.6")
    assert data["precision"] == "fp16" and data["workspace_bytes"] == 1 << 29
    assert data["profile"] == {"min_batch": 1, "opt_batch": 2, "max_batch": 4, "min_size": [64, 64],
                               "opt_size": [128, 192], "max_size": [256, 256]}
    assert data["engine_size"] == path.stat().st_size and data["build_seconds"] >= 0
    assert data["created"].endswith("+00:00") and data["strongly_typed"] is False
    info = EngineInfo.from_json(sidecar_path_for(path).read_text())
    assert EngineInfo.from_json(info.to_json()) == info
    assert info.profile == PROFILE


def test_sidecar_errors_are_clear() -> None:
    with pytest.raises(EngineInfoError, match="not valid JSON"):
        EngineInfo.from_json("{")
    with pytest.raises(EngineInfoError, match="format version"):
        EngineInfo.from_json('{"format_version": 99}')
    with pytest.raises(EngineInfoError, match="incomplete"):
        EngineInfo.from_json('{"format_version": 1}')


def spec(**changes: Any) -> EngineSpec:
    base = EngineSpec("a" * 64, "tensorrt", "10.9.0.34", GPU.name, "8.6", "fp16", PROFILE)
    return replace(base, **changes)


@pytest.mark.parametrize("changes", [
    {"onnx_sha256": "b" * 64}, {"trt_module": "tensorrt_rtx"}, {"trt_version": "10.13.0.1"},
    {"gpu_name": "NVIDIA GeForce RTX 4090"}, {"gpu_compute_capability": "8.9"}, {"gpu_name": None},
    {"precision": "fp32"}, {"profile": replace(PROFILE, max_batch=8)},
    {"profile": replace(PROFILE, opt_size=(128, 128))}, {"profile": replace(PROFILE, min_size=(64, 128))},
])
def test_cache_key_changes_with_each_field(changes: dict[str, Any]) -> None:
    assert spec().cache_key() == spec().cache_key()
    assert spec(**changes).cache_key() != spec().cache_key()


def test_stale_reasons_name_what_changed(tmp_path: Path) -> None:
    info = EngineInfo.from_spec(spec(), workspace_bytes=1, build_seconds=1.0, created="x", engine_size=3)
    assert stale_reasons(info, spec()) == []
    reasons = stale_reasons(info, spec(trt_version="11.0.0.1", precision="fp32"))
    assert len(reasons) == 2 and "TensorRT version" in reasons[0] and "precision" in reasons[1]
    engine = tmp_path / "x.engine"
    engine.write_bytes(b"12345")
    assert "damaged or replaced" in stale_reasons(info, spec(), engine)[0]
    assert "missing" in stale_reasons(info, spec(), tmp_path / "gone.engine")[0]


def test_ensure_engine_reuses_a_matching_engine(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    cache = tmp_path / "cache"
    first = te.ensure_engine(onnx_file, precision="fp16", profile=PROFILE, cache_dir=cache)
    again = te.ensure_engine(onnx_file, precision="fp16", profile=PROFILE, cache_dir=cache)
    assert again == first and fake.record.builds == 1
    other = te.ensure_engine(onnx_file, precision="fp32", profile=PROFILE, cache_dir=cache)
    assert other != first and fake.record.builds == 2  # another precision: another engine


@pytest.mark.parametrize("stale", ["sidecar_field", "sidecar_missing", "sidecar_garbage", "engine_truncated"])
def test_ensure_engine_rebuilds_a_stale_engine(install, gpu, onnx_file: Path, tmp_path: Path,
                                               stale: str) -> None:
    fake = install("tensorrt", "10.9.0.34")
    cache = tmp_path / "cache"
    path = te.ensure_engine(onnx_file, precision="fp32", profile=PROFILE, cache_dir=cache)
    sidecar = sidecar_path_for(path)
    if stale == "sidecar_field":
        sidecar.write_text(sidecar.read_text().replace('"10.9.0.34"', '"10.8.0.1"'))
    elif stale == "sidecar_missing":
        sidecar.unlink()
    elif stale == "sidecar_garbage":
        sidecar.write_text("{not json")
    else:
        path.write_bytes(path.read_bytes()[:10])
    assert te.ensure_engine(onnx_file, precision="fp32", profile=PROFILE, cache_dir=cache) == path
    assert fake.record.builds == 2
    assert EngineInfo.read(sidecar).trt_version == "10.9.0.34" and path.stat().st_size > 10


def test_new_onnx_gpu_or_tensorrt_gives_a_new_engine(install, gpu, onnx_file: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    install("tensorrt", "10.9.0.34")
    cache = tmp_path / "cache"
    paths = {te.ensure_engine(onnx_file, profile=PROFILE, cache_dir=cache)}
    onnx_file.write_bytes(onnx_file.read_bytes() + b" retrained")
    paths.add(te.ensure_engine(onnx_file, profile=PROFILE, cache_dir=cache))
    monkeypatch.setattr(te, "query_gpu", lambda device=0: GpuInfo("NVIDIA GeForce RTX 4090", "8.9"))
    paths.add(te.ensure_engine(onnx_file, profile=PROFILE, cache_dir=cache))
    install("tensorrt", "10.13.0.1")
    paths.add(te.ensure_engine(onnx_file, profile=PROFILE, cache_dir=cache))
    assert len(paths) == 4 and all(p.is_file() for p in paths)


def test_engine_for_model_keys_and_builds_for_the_device_asked(install, onnx_file: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine for GPU 1 is built on GPU 1 and cached under GPU 1's key, not GPU 0's."""
    gpus = {0: GPU, 1: GpuInfo("NVIDIA GeForce RTX 4090", "8.9")}
    current = []
    monkeypatch.setattr(te, "query_gpu", lambda device=0: gpus[device])
    monkeypatch.setattr(te, "use_device", current.append)
    fake = install("tensorrt", "10.9.0.34")
    contract = ModelContract(size_multiple=64, render_size=256)
    cache = tmp_path / "cache"
    on_1 = te.engine_for_model(onnx_file, None, contract, precision="fp32", max_batch=2, cache_dir=cache, device=1)
    assert EngineInfo.read(sidecar_path_for(on_1)).gpu_name == "NVIDIA GeForce RTX 4090"
    assert current == [1]  # the build ran with device 1 current
    on_0 = te.engine_for_model(onnx_file, None, contract, precision="fp32", max_batch=2, cache_dir=cache, device=0)
    assert on_0 != on_1 and EngineInfo.read(sidecar_path_for(on_0)).gpu_name == GPU.name
    assert current == [1, 0] and fake.record.builds == 2
    assert te.engine_for_model(onnx_file, None, contract, precision="fp32", max_batch=2, cache_dir=cache,
                               device=1) == on_1  # cached for device 1
    assert fake.record.builds == 2


def test_engine_cache_dir_argument_then_env_then_platformdirs(tmp_path: Path) -> None:
    import platformdirs

    env = {"COLORIZER_CACHE_DIR": "/elsewhere"}
    assert engine_cache_dir(tmp_path / "mine", environ=env) == tmp_path / "mine"
    assert engine_cache_dir(environ={"COLORIZER_CACHE_DIR": str(tmp_path)}) == tmp_path / "tensorrt"
    default = Path(platformdirs.user_cache_dir("colorizer", appauthor=False)) / "tensorrt"
    assert engine_cache_dir(environ={}) == default


def test_env_var_moves_the_cache(install, gpu, onnx_file: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    install("tensorrt", "10.9.0.34")
    monkeypatch.setenv("COLORIZER_CACHE_DIR", str(tmp_path / "root"))
    path = te.ensure_engine(onnx_file, precision="fp32", profile=PROFILE)
    assert path.parent == tmp_path / "root" / "tensorrt"


def test_profile_validation_and_helpers() -> None:
    with pytest.raises(ValueError, match="batch"):
        EngineProfile(2, 1, 4, (64, 64), (64, 64), (64, 64))
    with pytest.raises(ValueError, match="width"):
        EngineProfile(1, 1, 1, (64, 128), (64, 64), (64, 256))
    profile = EngineProfile.for_render_size(500, 64, max_batch=8, opt_batch=4)
    assert profile.input_shapes() == ((1, 1, 64, 64), (4, 1, 512, 512), (8, 1, 512, 512))
    assert PROFILE.accepts((4, 1, 256, 64)) and not PROFILE.accepts((5, 1, 64, 64))


# --------------------------------------------------------------------------- running
def test_runner_allocates_once_at_max_shape_and_runs_each_shape(install, gpu, onnx_file: Path,
                                                                tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    path = build(onnx_file, tmp_path / "cache")
    alloc = FakeAllocator()
    fake.knobs.device_memory = alloc.memory
    rng = np.random.default_rng(0)
    with tensorrt_runner.EngineRunner(path, allocator=alloc) as runner:
        assert alloc.allocations == [4 * 1 * 256 * 256 * 4, 4 * 2 * 256 * 256 * 4]  # L and ab at max shape
        assert runner.max_shape == (4, 1, 256, 256) and runner.max_output_shape == (4, 2, 256, 256)
        for shape in [(1, 1, 64, 128), (4, 1, 256, 256), (3, 1, 192, 64)]:
            x = rng.uniform(-1, 1, shape).astype(np.float32)
            ab = runner.run(x)
            assert ab.shape == (shape[0], 2, *shape[2:]) and ab.dtype == np.float32
            np.testing.assert_allclose(ab[:, :1], np.tanh(x), rtol=1e-6)
            np.testing.assert_allclose(ab[:, 1:], -np.tanh(x), rtol=1e-6)
        assert len(alloc.allocations) == 2  # no reallocation per call
        assert fake.record.executes == [77, 77, 77]  # execute_async_v3 on the runner's stream
        with pytest.raises(ValueError, match="outside the engine's profile"):
            runner.run(np.zeros((5, 1, 64, 64), np.float32))
        with pytest.raises(ValueError, match="outside"):
            runner.run(np.zeros((1, 1, 512, 64), np.float32))
    assert alloc.freed == 2 and alloc.streams_destroyed == 1
    with pytest.raises(RuntimeError, match="closed"):
        runner.run(np.zeros((1, 1, 64, 64), np.float32))


def test_runner_loads_with_the_module_that_built_the_engine(install, gpu, onnx_file: Path,
                                                           tmp_path: Path) -> None:
    rtx = install("tensorrt_rtx", "1.7.1.116", fp16_flag=False)
    path = build(onnx_file, tmp_path / "cache")
    install("tensorrt", "10.9.0.34")  # both importable now; the sidecar picks tensorrt_rtx
    alloc = FakeAllocator()
    rtx.knobs.device_memory = alloc.memory
    with tensorrt_runner.EngineRunner(path, allocator=alloc) as runner:
        assert runner.run(np.zeros((1, 1, 64, 64), np.float32)).shape == (1, 2, 64, 64)
    assert rtx.record.executes == [77]


def test_runner_reports_an_engine_it_cannot_load(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    install("tensorrt", "10.9.0.34")
    path = build(onnx_file, tmp_path / "cache")
    path.write_bytes(b"\x00garbage")
    with pytest.raises(tensorrt_runner.EngineLoadError, match="magic tag") as err:
        tensorrt_runner.EngineRunner(path, allocator=FakeAllocator())
    assert "ensure_engine" in str(err.value) and "tensorrt 10.9.0.34" in str(err.value)


def test_no_cuda_memory_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "torch"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(cuda_memory.CudaUnavailable, match="pip install cuda-python"):
        cuda_memory.select_allocator()


def test_cuda_python_allocator_calls_the_runtime_api() -> None:
    """The cuda-python path against a stand-in for ``cuda.bindings.runtime`` (no GPU here)."""
    calls: list[tuple] = []

    class Err(enum.IntEnum):
        cudaSuccess = 0
        cudaErrorMemoryAllocation = 2

    class FakeCudart:
        cudaError_t = Err
        cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice="H2D", cudaMemcpyDeviceToHost="D2H")

        def __getattr__(self, fn: str) -> Any:
            def call(*args: Any) -> tuple:
                calls.append((fn, *args))
                if fn == "cudaMalloc" and args[0] > 1 << 40:
                    return (Err.cudaErrorMemoryAllocation, 0)
                if fn == "cudaGetErrorString":
                    return (Err.cudaSuccess, b"out of memory")
                values = {"cudaMalloc": (0xABC000,), "cudaStreamCreate": (99,)}.get(fn, ())
                return (Err.cudaSuccess, *values)
            return call

    alloc = cuda_memory.CudaPythonAllocator(FakeCudart(), device=1)
    buf = alloc.allocate(64)
    stream = alloc.create_stream()
    host = np.arange(16, dtype=np.float32)
    alloc.copy_to_device(buf, host, stream)
    alloc.copy_to_host(host, buf, stream)
    alloc.synchronize(stream)
    alloc.free(buf)
    assert [c[0] for c in calls] == ["cudaSetDevice", "cudaMalloc", "cudaStreamCreate", "cudaMemcpyAsync",
                                     "cudaMemcpyAsync", "cudaStreamSynchronize", "cudaFree"]
    assert calls[3] == ("cudaMemcpyAsync", 0xABC000, host.ctypes.data, 64, "H2D", 99)
    assert calls[4] == ("cudaMemcpyAsync", host.ctypes.data, 0xABC000, 64, "D2H", 99)
    assert alloc.stream_handle(stream) == 99 and buf.ptr == 0
    with pytest.raises(RuntimeError, match="cudaMalloc.*out of memory"):
        alloc.allocate(1 << 41)
    with pytest.raises(ValueError, match="do not fit"):
        alloc.copy_to_device(cuda_memory.DeviceBuffer(1, 8), host, stream)


# --------------------------------------------------------------------------- real TensorRT-RTX
def tiny_onnx(path: Path, fp16: bool) -> Path:
    """Conv 1->2 channels (3x3, pad 1) + Tanh, dynamic N/H/W; the FP16 variant casts in and out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = (np.random.default_rng(0).standard_normal((2, 1, 3, 3)) * 0.3).astype(np.float32)
    bias = np.array([0.1, -0.2], np.float32)
    dtype = np.float16 if fp16 else np.float32
    inits = [numpy_helper.from_array(weight.astype(dtype), "w"),
             numpy_helper.from_array(bias.astype(dtype), "b")]
    if fp16:
        nodes = [helper.make_node("Cast", ["L"], ["L16"], to=TensorProto.FLOAT16),
                 helper.make_node("Conv", ["L16", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node("Tanh", ["c"], ["t"]),
                 helper.make_node("Cast", ["t"], ["ab"], to=TensorProto.FLOAT)]
    else:
        nodes = [helper.make_node("Conv", ["L", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node("Tanh", ["c"], ["ab"])]
    graph = helper.make_graph(
        nodes, "tiny_colorizer",
        [helper.make_tensor_value_info("L", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["N", 2, "H", "W"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def reference_ab(path: Path, x: np.ndarray) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in graph.initializer}
    padded = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
    h, w = x.shape[2:]
    out = np.empty((x.shape[0], 2, h, w), np.float32)
    for c in range(2):
        acc = sum(init["w"][c, 0, i, j] * padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3))
        out[:, c] = np.tanh(acc + init["b"][c])
    return out


@pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx") is None,
                    reason="tensorrt_rtx is not installed (`pip install tensorrt-rtx-cu13`; no GPU needed)")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_real_tensorrt_rtx_builds_a_tiny_engine(tmp_path: Path, precision: str) -> None:
    pytest.importorskip("onnx")
    onnx_path = tiny_onnx(tmp_path / f"tiny.{precision}.onnx", fp16=precision == "fp16")
    profile = EngineProfile(1, 2, 2, (64, 64), (64, 128), (128, 128))
    steps: list[tuple[str, int, int]] = []
    cache = tmp_path / "cache"
    path = te.ensure_engine(onnx_path, precision=precision, profile=profile, cache_dir=cache,
                            progress=lambda *e: steps.append(e), trt_module="tensorrt_rtx")
    assert path.is_file() and path.stat().st_size > 0
    info = EngineInfo.read(sidecar_path_for(path))
    assert info.trt_module == "tensorrt_rtx" and info.precision == precision and info.strongly_typed
    assert info.engine_size == path.stat().st_size and info.profile == profile
    assert steps, "the progress monitor heard no build phases"
    mtime = path.stat().st_mtime_ns
    assert te.ensure_engine(onnx_path, precision=precision, profile=profile, cache_dir=cache,
                            trt_module="tensorrt_rtx") == path
    assert path.stat().st_mtime_ns == mtime  # reused, not rebuilt

    gpu = te.query_gpu()
    if gpu is None:  # no GPU: deserializing must fail with TensorRT's reason, not crash
        with pytest.raises(tensorrt_runner.EngineLoadError, match="could not load"):
            tensorrt_runner.EngineRunner(path, allocator=FakeAllocator())
        return
    try:
        runner = tensorrt_runner.EngineRunner(path)
    except tensorrt_runner.EngineLoadError:
        rtx = importlib.import_module("tensorrt_rtx")
        if not hasattr(rtx.ComputeCapability, "SM" + gpu.compute_capability.replace(".", "")):
            pytest.skip(f"TensorRT-RTX does not run on {gpu.name} (sm {gpu.compute_capability})")
        raise
    x = np.random.default_rng(1).uniform(-1, 1, (2, 1, 64, 128)).astype(np.float32)
    with runner:
        ab = runner.run(x)
    np.testing.assert_allclose(ab, reference_ab(onnx_path, x), atol=2e-2 if precision == "fp16" else 1e-4)


# --------------------------------------------------------------------------- models with hint inputs
def test_a_hint_model_gets_a_profile_for_its_guidance_and_the_runner_feeds_it(install, gpu, onnx_file: Path,
                                                                               tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    fake.knobs.hint_channels = 3
    path = build(onnx_file, tmp_path / "cache")
    # the guidance follows L's batch, height and width, with its own channels
    assert fake.record.shapes == [("L", (1, 1, 64, 64), (2, 1, 128, 192), (4, 1, 256, 256)),
                                  ("hints", (1, 3, 64, 64), (2, 3, 128, 192), (4, 3, 256, 256))]
    alloc = FakeAllocator()
    fake.knobs.device_memory = alloc.memory
    rng = np.random.default_rng(0)
    with tensorrt_runner.EngineRunner(path, allocator=alloc) as runner:
        assert runner.extra_inputs == {"hints": 3}
        assert alloc.allocations == [4 * 1 * 256 * 256 * 4, 4 * 2 * 256 * 256 * 4, 4 * 3 * 256 * 256 * 4]
        x = rng.uniform(-1, 1, (2, 1, 64, 128)).astype(np.float32)
        g = rng.uniform(-1, 1, (2, 3, 64, 128)).astype(np.float32)
        ab = runner.run(x, {"hints": g})
        np.testing.assert_allclose(ab[:, :1], np.tanh(x) + g[:, :1], rtol=1e-5)
        np.testing.assert_allclose(runner.run(x)[:, :1], np.tanh(x), rtol=1e-6)  # no guidance: zeros
        assert fake.record.extra_shapes[-1] == ("hints", (2, 3, 64, 128))
        with pytest.raises(ValueError, match="expected"):
            runner.run(x, {"hints": g[:, :2]})
        with pytest.raises(ValueError, match="no input"):
            runner.run(x, {"mask": g})
    assert alloc.freed == 3


def test_a_plain_engine_has_no_extra_inputs(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    fake = install("tensorrt", "10.9.0.34")
    path = build(onnx_file, tmp_path / "cache")
    assert [s[0] for s in fake.record.shapes] == ["L"]
    alloc = FakeAllocator()
    fake.knobs.device_memory = alloc.memory
    with tensorrt_runner.EngineRunner(path, allocator=alloc) as runner:
        assert runner.extra_inputs == {}
        with pytest.raises(ValueError, match="no input"):
            runner.run(np.zeros((1, 1, 64, 64), np.float32), {"hints": np.zeros((1, 3, 64, 64), np.float32)})


def test_the_builder_refuses_an_unknown_extra_input(install, gpu, onnx_file: Path, tmp_path: Path) -> None:
    from colorizer.desktop.backends.tensorrt_engine import EngineBuildError, _check_network

    fake = install("tensorrt", "10.9.0.34")
    network = SimpleNamespace(inputs=[SimpleNamespace(name="L", shape=(-1, 1, -1, -1)),
                                      SimpleNamespace(name="mask", shape=(-1, 1, -1, -1))],
                              outputs=[SimpleNamespace(name="ab")], layers=[])
    network.num_inputs, network.num_outputs, network.num_layers = 2, 1, 0
    network.get_input = lambda i: network.inputs[i]
    network.get_output = lambda i: network.outputs[i]
    from colorizer.desktop.backends.tensorrt_module import load_tensorrt

    with pytest.raises(EngineBuildError, match="mask"):
        _check_network(load_tensorrt(fake.__name__), network, "fp32", onnx_file)


def test_the_tensorrt_backend_feeds_a_hint_models_guidance(install, gpu, onnx_file: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from colorizer.contract import HintInputs
    from colorizer.desktop.backends.base import BackendError
    from colorizer.desktop.backends.tensorrt import TensorRTBackend

    fake = install("tensorrt", "10.9.0.34")
    fake.knobs.hint_channels = 3
    path = build(onnx_file, tmp_path / "cache")
    alloc = FakeAllocator()
    fake.knobs.device_memory = alloc.memory
    monkeypatch.setattr(tensorrt_runner, "select_allocator", lambda device=0: alloc)
    hinted = TensorRTBackend(path, ModelContract(size_multiple=32, render_size=128, hint_inputs=HintInputs()))
    x = np.full((2, 1, 64, 64), 0.3, np.float32)
    g = np.zeros((2, 3, 64, 64), np.float32)
    g[:, 0] = 0.25
    np.testing.assert_allclose(hinted.predict(x, hints=g)[:, 0], np.tanh(0.3) + 0.25, rtol=1e-5)
    np.testing.assert_allclose(hinted.predict(x)[:, 0], np.tanh(0.3), rtol=1e-5)  # no hint: zeros
    hinted.close()
    plain = TensorRTBackend(path, ModelContract(size_multiple=32, render_size=128))
    with pytest.raises(BackendError, match="no hint inputs"):
        plain.predict(x, hints=g)
    plain.close()
