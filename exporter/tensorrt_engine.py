"""Build, cache and run TensorRT engines for the colorizer model, with ``tensorrt`` or ``tensorrt_rtx``.

Nothing here imports TensorRT, CUDA or torch at import time; :func:`load_tensorrt` imports a
TensorRT module when an engine is built or loaded, and the CUDA memory helpers import
cuda-python or torch when a :class:`EngineRunner` is created.

Precision across the three TensorRT flavours (see :class:`TensorRT`):

* ``tensorrt`` 10.x builds *weakly typed* networks by default: TensorRT may pick FP16 kernels
  when ``BuilderFlag.FP16`` is set. FP16 engines are built from the FP32 ONNX with that flag.
* ``tensorrt`` 11.x removed ``BuilderFlag.FP16`` (and every other precision flag): all networks
  are *strongly typed* and each tensor keeps the type the ONNX gives it. FP16 engines are built
  from the FP16 ONNX (float32 I/O, float16 inside); ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``
  is deprecated and ignored there, so no flag is passed.
* ``tensorrt_rtx`` (TensorRT for RTX) is strongly typed as well and has no FP16 flag either; the
  ``STRONGLY_TYPED`` creation flag is passed. It builds without a GPU (ahead of time), its timing
  cache calls are deprecated no-ops (it compiles kernels at run time instead), and by default it
  targets compute capabilities 8.0/8.6/8.9/12.0: the GPU of this machine is targeted when known
  (Turing, 7.5, needs that).

Which ONNX to give :func:`build_engine` for a precision: :func:`choose_onnx`. A mismatch (an FP32
ONNX for an FP16 strongly typed build, or an FP16 ONNX for an FP32 build) is refused with a
message, since the engine would not have the precision its sidecar claims.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from colorizer.contract import INPUT_NAME, OUTPUT_NAME, ModelContract
from colorizer.exporter.engine_info import (
    EngineInfo,
    EngineInfoError,
    EngineProfile,
    EngineSpec,
    GpuInfo,
    Precision,
    check_precision,
    engine_cache_dir,
    engine_path_for,
    sha256_file,
    sidecar_path_for,
    stale_reasons,
    timing_cache_path_for,
    write_atomic,
)

log = logging.getLogger(__name__)

MODULE_NAMES: tuple[str, ...] = ("tensorrt", "tensorrt_rtx")
DEFAULT_WORKSPACE_BYTES = 1 << 30
TRT_VERBOSE = logging.DEBUG - 5  # TensorRT's VERBOSE messages log at this level
INSTALL_HINT = (
    "Install one of them: `pip install tensorrt` (NVIDIA TensorRT, Linux or Windows with a supported "
    "NVIDIA GPU and driver) or `pip install tensorrt-rtx-cu13` (TensorRT for RTX, for GeForce/RTX GPUs "
    "with a CUDA 13 driver). Without TensorRT, use the ONNX Runtime backend instead."
)

ProgressCallback = Callable[[str, int, int], None]  # (phase, step, total)
CancelCallback = Callable[[], bool]  # True: stop the build


class TensorRTUnavailable(RuntimeError):
    """No TensorRT Python module could be imported; the message says which were tried and what to install."""


class EngineBuildError(RuntimeError):
    """TensorRT could not parse the ONNX model or build an engine; the message says why."""


class BuildCancelled(Exception):
    """The build was cancelled through ``cancel()``; no engine file was written."""


class EngineLoadError(RuntimeError):
    """A serialized engine could not be loaded or does not have the model's inputs and outputs."""


class CudaUnavailable(RuntimeError):
    """No way to allocate CUDA memory (neither cuda-python nor torch with CUDA is usable)."""


# --------------------------------------------------------------------------- module selection
@dataclass(frozen=True)
class TensorRT:
    """An imported TensorRT Python module and what differs between its flavours and versions."""

    module: ModuleType
    name: str  # "tensorrt" or "tensorrt_rtx"
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt_rtx"

    @property
    def major(self) -> int:
        try:
            return int(self.version.split(".")[0])
        except ValueError:
            return 0

    @property
    def strongly_typed(self) -> bool:
        """True where precision comes from the ONNX tensor types rather than builder flags.

        TensorRT 11 removed ``BuilderFlag.FP16`` (strong typing is always on) and TensorRT-RTX never
        had it; the flag's absence is checked too, so a version string we do not understand still
        takes the right path.
        """
        return self.is_rtx or self.major >= 11 or not hasattr(self.module.BuilderFlag, "FP16")

    @property
    def uses_timing_cache(self) -> bool:
        """TensorRT-RTX deprecated its timing cache calls (no-ops since RTX 1.2); TensorRT uses one."""
        return not self.is_rtx

    def network_flags(self) -> int:
        """Flags for ``Builder.create_network``.

        10.x: 0 (weakly typed; FP16 comes from the builder flag). 11.x: 0 (strongly typed always;
        the STRONGLY_TYPED flag is deprecated and ignored). TensorRT-RTX: STRONGLY_TYPED.
        """
        if not self.strongly_typed or (not self.is_rtx and self.major >= 11):
            return 0
        flag = getattr(self.module.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        return 0 if flag is None else 1 << int(flag)

    def describe(self) -> str:
        typing_mode = "strongly typed" if self.strongly_typed else "weakly typed"
        return f"{self.name} {self.version} ({typing_mode})"


def load_tensorrt(choice: str | ModuleType | TensorRT | None = None) -> TensorRT:
    """Import a TensorRT module: ``tensorrt`` first, then ``tensorrt_rtx``, or the one chosen.

    Raises :class:`TensorRTUnavailable` saying what was tried, why it failed and what to install.
    """
    if isinstance(choice, TensorRT):
        return choice
    if isinstance(choice, ModuleType):
        return TensorRT(choice, choice.__name__.split(".")[0], str(getattr(choice, "__version__", "unknown")))
    if choice is not None and choice not in MODULE_NAMES:
        raise ValueError(f"unknown TensorRT module {choice!r}; use one of {', '.join(MODULE_NAMES)}")
    names = MODULE_NAMES if choice is None else (choice,)
    failures = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # ImportError, or OSError/RuntimeError from missing CUDA libraries
            failures.append(f"{name}: {exc}")
            continue
        trt = TensorRT(module, name, str(getattr(module, "__version__", "unknown")))
        log.info("using %s", trt.describe())
        return trt
    tried = "; ".join(failures)
    what = "the TensorRT module you chose" if choice else "no TensorRT Python module"
    raise TensorRTUnavailable(f"Cannot build or run TensorRT engines: {what} could be imported ({tried}). "
                              + INSTALL_HINT)


def choose_onnx(precision: str, fp32_onnx: Path, fp16_onnx: Path | None,
                trt_module: str | ModuleType | TensorRT | None = None) -> Path:
    """The ONNX file to build an engine of ``precision`` from, for the TensorRT module in use.

    FP32: the FP32 ONNX. FP16: the FP32 ONNX plus ``BuilderFlag.FP16`` on weakly typed TensorRT
    10.x; the FP16 ONNX on strongly typed TensorRT 11.x and TensorRT-RTX.
    """
    if check_precision(precision) == "fp32" or not load_tensorrt(trt_module).strongly_typed:
        return Path(fp32_onnx)
    if fp16_onnx is None:
        raise EngineBuildError("an FP16 engine with a strongly typed TensorRT (11.x or TensorRT-RTX) is "
                               "built from the FP16 ONNX (NAME.fp16.onnx from colorizer-export); export it, "
                               "or use precision 'fp32'")
    return Path(fp16_onnx)


# --------------------------------------------------------------------------- GPU and CUDA
def _import_cudart() -> Any | None:
    """cuda-python's runtime module (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6), or None."""
    try:
        from cuda.bindings import runtime

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart  # type: ignore[attr-defined]

        return cudart
    except ImportError:
        return None


def _cuda_ok(err: Any) -> bool:
    return int(getattr(err, "value", err)) == 0


def _torch_with_cuda() -> Any | None:
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch
    except Exception as exc:  # a broken torch install must not stop the build
        log.debug("torch import failed: %s", exc)
        return None
    return torch if torch.cuda.is_available() else None


def query_gpu(device: int = 0) -> GpuInfo | None:
    """Name and compute capability of CUDA device ``device`` via cuda-python, else torch; None if unknown."""
    cudart = _import_cudart()
    if cudart is not None:
        try:
            err, count = cudart.cudaGetDeviceCount()
            if not _cuda_ok(err) or count <= device:
                return None
            err, props = cudart.cudaGetDeviceProperties(device)
            if not _cuda_ok(err):
                return None
            name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
            return GpuInfo(name.strip("\x00 "), f"{props.major}.{props.minor}")
        except Exception as exc:
            log.debug("cuda-python could not query device %d: %s", device, exc)
    torch = _torch_with_cuda()
    if torch is not None and torch.cuda.device_count() > device:
        major, minor = torch.cuda.get_device_capability(device)
        return GpuInfo(torch.cuda.get_device_name(device), f"{major}.{minor}")
    return None


# --------------------------------------------------------------------------- TensorRT callbacks
def _make_logger(trt: TensorRT) -> Any:
    """An ``ILogger`` that forwards TensorRT's messages to :mod:`logging` and keeps the last errors."""
    base = trt.module.ILogger
    severity = base.Severity
    levels = {  # TensorRT's INFO is chatty (memory stats, block assignment): DEBUG; VERBOSE below that
        getattr(severity, "INTERNAL_ERROR", None): logging.CRITICAL,
        getattr(severity, "ERROR", None): logging.ERROR,
        getattr(severity, "WARNING", None): logging.WARNING,
        getattr(severity, "INFO", None): logging.DEBUG,
        getattr(severity, "VERBOSE", None): TRT_VERBOSE,
    }

    class LoggingBridge(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.errors: deque[str] = deque(maxlen=10)

        def log(self, sev: Any, msg: str) -> None:
            level = levels.get(sev, logging.DEBUG)
            if level >= logging.ERROR and "cancel" in msg.lower():
                level = logging.INFO  # "BuildCanceled" after our own cancel request is no error
            elif level >= logging.ERROR:
                self.errors.append(msg)
            if log.isEnabledFor(level):
                log.log(level, "[%s] %s", trt.name, msg)

    return LoggingBridge()


def _make_progress_monitor(trt: TensorRT, progress: ProgressCallback | None,
                           cancel: CancelCallback | None) -> Any | None:
    """An ``IProgressMonitor`` forwarding phases to ``progress`` and stopping the build when ``cancel()``."""
    base = getattr(trt.module, "IProgressMonitor", None)
    if base is None:
        log.warning("%s has no IProgressMonitor: no build progress, and cancel only before the build",
                    trt.describe())
        return None

    class ProgressBridge(base):  # type: ignore[misc, valid-type]
        # TensorRT may call from several threads; and an exception must never cross into C++.
        def __init__(self) -> None:
            base.__init__(self)
            self._lock = threading.Lock()
            self._totals: dict[str, int] = {}
            self._progress_failed = False
            self.cancelled = False

        def _report(self, phase: str, step: int, total: int) -> None:
            if progress is None or self._progress_failed:
                return
            try:
                progress(phase, step, total)
            except Exception:
                self._progress_failed = True  # report once, then build on without progress
                log.exception("progress callback failed; no more build progress will be reported")

        def _should_stop(self) -> bool:
            if self.cancelled:
                return True
            try:
                stop = bool(cancel is not None and cancel())
            except Exception:
                log.exception("cancel callback failed (build goes on)")
                stop = False
            if stop:
                log.info("engine build cancelled")
                self.cancelled = True
            return stop

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            with self._lock:
                self._totals[phase_name] = int(num_steps)
            self._report(phase_name, 0, int(num_steps))

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                total = self._totals.get(phase_name, 0)
            self._report(phase_name, min(int(step) + 1, total) if total else int(step) + 1, total)
            return not self._should_stop()

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                total = self._totals.pop(phase_name, 0)
            self._report(phase_name, total, total)

    return ProgressBridge()


# --------------------------------------------------------------------------- building
def _parser_errors(parser: Any) -> str:
    lines = []
    for i in range(int(parser.num_errors)):
        err = parser.get_error(i)
        where = ""
        name = _call_or(err, "node_name", "")
        op = _call_or(err, "node_operator", "")
        if name or op:
            where = f"node {name or '?'} ({op or '?'}): "
        lines.append(f"  - {where}{err.desc()}")
    return "\n".join(lines) or "  (no details from the parser; log at DEBUG to see TensorRT's own log)"


def _call_or(obj: Any, method: str, default: Any) -> Any:
    try:
        return getattr(obj, method)()
    except Exception:
        return default


def _check_network(trt: TensorRT, network: Any, precision: Precision, onnx_path: Path) -> None:
    """The parsed network has the contract's tensors, and its tensor types fit the precision."""
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise EngineBuildError(f"{onnx_path.name} has inputs {sorted(inputs)} and outputs {outputs}; a "
                               f"Colorizer model has input {INPUT_NAME!r} and output {OUTPUT_NAME!r}. Export "
                               "it with colorizer-export.")
    input_shape = tuple(inputs[INPUT_NAME].shape)
    if len(input_shape) != 4:
        raise EngineBuildError(f"{onnx_path.name}: input {INPUT_NAME!r} has shape {input_shape}, expected 4 "
                               "dimensions (N, 1, H, W)")
    half = trt.module.DataType.HALF
    has_half = any(
        layer.get_output(j).dtype == half
        for layer in (network.get_layer(i) for i in range(network.num_layers))
        for j in range(layer.num_outputs)
    )
    if precision == "fp32" and has_half:
        raise EngineBuildError(f"{onnx_path.name} computes in float16 but an FP32 engine was requested; "
                               "build it from the FP32 ONNX (NAME.onnx), or request precision 'fp16'")
    if precision == "fp16" and trt.strongly_typed and not has_half:
        raise EngineBuildError(f"{trt.describe()} takes precision from the model's tensor types, and "
                               f"{onnx_path.name} is float32 throughout: build the FP16 engine from the FP16 "
                               "ONNX (NAME.fp16.onnx from colorizer-export; see choose_onnx), or request "
                               "precision 'fp32'")
    if precision == "fp16" and not trt.strongly_typed and has_half:
        log.info("%s already computes in float16; building it with BuilderFlag.FP16 (the FP32 ONNX lets "
                 "TensorRT 10 choose per layer)", onnx_path.name)


def _load_timing_cache(config: Any, path: Path) -> Any:
    data = b""
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read timing cache %s (%s); starting a new one", path, exc)
    cache = None
    try:
        cache = config.create_timing_cache(data)
        if cache is not None and config.set_timing_cache(cache, False):
            if data:
                log.info("reusing timing cache %s", path)
            return cache
    except Exception as exc:
        log.debug("timing cache %s rejected: %s", path, exc)
    if data:
        log.warning("timing cache %s is damaged or from another GPU/TensorRT; starting a new one", path)
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)
    return cache


def _save_timing_cache(config: Any, path: Path) -> None:
    try:
        cache = config.get_timing_cache()
        if cache is not None:
            write_atomic(path, cache.serialize())
            log.debug("saved timing cache %s", path)
    except Exception as exc:  # a cache must never fail a build
        log.warning("could not save timing cache %s: %s", path, exc)


def _target_gpu(trt: TensorRT, config: Any, gpu: GpuInfo | None) -> list[str]:
    """TensorRT-RTX: compile for this machine's GPU when known (Turing 7.5 is not a default target)."""
    if not trt.is_rtx or gpu is None or not hasattr(trt.module, "ComputeCapability"):
        return []
    target = "SM" + gpu.compute_capability.replace(".", "")
    value = getattr(trt.module.ComputeCapability, target, None)
    if value is None:
        log.warning("%s has no target for compute capability %s (%s); building for its default targets, "
                    "which may not run on this GPU", trt.describe(), gpu.compute_capability, gpu.name)
        return []
    config.num_compute_capabilities = 1
    if not config.set_compute_capability(value, 0):
        log.warning("%s refused target %s; building for its default targets", trt.describe(), target)
        config.num_compute_capabilities = 0
        return []
    return [target]


def _build_serialized(trt: TensorRT, onnx_path: Path, spec: EngineSpec, workspace_bytes: int,
                      timing_cache_path: Path, progress: ProgressCallback | None,
                      cancel: CancelCallback | None) -> tuple[Any, list[str]]:
    m = trt.module
    logger = _make_logger(trt)
    builder = m.Builder(logger)
    network = builder.create_network(trt.network_flags())
    parser = m.OnnxParser(network, logger)  # network, builder and logger must outlive the parser: keep names
    if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
        raise EngineBuildError(f"{trt.describe()} could not parse {onnx_path}:\n{_parser_errors(parser)}\n"
                               "Re-export the model with colorizer-export, or try a newer TensorRT.")
    _check_network(trt, network, spec.precision, onnx_path)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(m.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if spec.precision == "fp16" and not trt.strongly_typed:
        config.set_flag(m.BuilderFlag.FP16)  # TensorRT 10.x weak typing: FP16 kernels allowed where faster
    shape_profile = builder.create_optimization_profile()
    shape_profile.set_shape(INPUT_NAME, *spec.profile.input_shapes())
    if config.add_optimization_profile(shape_profile) < 0:
        raise EngineBuildError(f"TensorRT rejected the optimization profile {spec.profile.input_shapes()} "
                               f"for {onnx_path.name}")
    targets = _target_gpu(trt, config, spec.gpu)
    timing_cache = _load_timing_cache(config, timing_cache_path) if trt.uses_timing_cache else None
    monitor = _make_progress_monitor(trt, progress, cancel) if progress or cancel else None
    if monitor is not None:
        config.progress_monitor = monitor

    log.info("building %s engine for %s with %s (this can take minutes)", spec.precision, onnx_path.name,
             trt.describe())
    serialized = builder.build_serialized_network(network, config)
    if (monitor is not None and monitor.cancelled) or (cancel is not None and cancel()):
        raise BuildCancelled(f"engine build for {onnx_path.name} was cancelled")
    if serialized is None:
        errors = "\n".join(f"  - {e}" for e in logger.errors) or "  (no error message from TensorRT)"
        raise EngineBuildError(f"{trt.describe()} could not build an engine for {onnx_path.name}:\n{errors}\n"
                               "If it ran out of memory, lower the profile's max batch or size "
                               f"({spec.profile.max_batch} x {spec.profile.max_size}) or raise the workspace "
                               f"({workspace_bytes / 2**30:.1f} GiB).")
    if timing_cache is not None:
        _save_timing_cache(config, timing_cache_path)
    return serialized, targets


def engine_spec_for(onnx_path: Path, *, precision: str, profile: EngineProfile, trt: TensorRT,
                    gpu: GpuInfo | None = None) -> EngineSpec:
    """What an engine for ``onnx_path`` built now, here, would be specific to (``gpu``: queried if None)."""
    gpu = gpu if gpu is not None else query_gpu()
    return EngineSpec(
        onnx_sha256=sha256_file(onnx_path),
        trt_module=trt.name,
        trt_version=trt.version,
        gpu_name=gpu.name if gpu else None,
        gpu_compute_capability=gpu.compute_capability if gpu else None,
        precision=check_precision(precision),
        profile=profile,
    )


def _check_onnx(onnx_path: Path | str) -> Path:
    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model {path} not found; export one with colorizer-export")
    return path


def build_engine(onnx_path: Path | str, *, precision: str = "fp16", profile: EngineProfile,
                 workspace_bytes: int = DEFAULT_WORKSPACE_BYTES, cache_dir: Path | str | None = None,
                 progress: ProgressCallback | None = None, cancel: CancelCallback | None = None,
                 trt_module: str | ModuleType | TensorRT | None = None) -> Path:
    """Build an engine for ``onnx_path`` into the engine cache and return its path.

    Writes ``<name>-<precision>-<key>.engine`` atomically, then its sidecar ``.engine.json``
    (:class:`EngineInfo`). ``progress(phase, step, total)`` hears TensorRT's build phases;
    ``cancel()`` returning True stops the build with :class:`BuildCancelled` and writes nothing.
    Raises :class:`TensorRTUnavailable`, :class:`EngineBuildError` or FileNotFoundError with a
    message saying what to do.
    """
    path = _check_onnx(onnx_path)
    trt = load_tensorrt(trt_module)
    spec = engine_spec_for(path, precision=precision, profile=profile, trt=trt)
    cache = engine_cache_dir(cache_dir)
    return _build_into_cache(trt, path, spec, cache, workspace_bytes, progress, cancel)


def _build_into_cache(trt: TensorRT, onnx_path: Path, spec: EngineSpec, cache: Path, workspace_bytes: int,
                      progress: ProgressCallback | None, cancel: CancelCallback | None) -> Path:
    if cancel is not None and cancel():
        raise BuildCancelled(f"engine build for {onnx_path.name} was cancelled before it started")
    engine_path = engine_path_for(cache, onnx_path, spec)
    timing_path = timing_cache_path_for(cache, trt.name, trt.version, spec.gpu)
    started = time.perf_counter()
    serialized, targets = _build_serialized(trt, onnx_path, spec, workspace_bytes, timing_path, progress,
                                            cancel)
    build_seconds = time.perf_counter() - started
    write_atomic(engine_path, serialized)
    info = EngineInfo.from_spec(
        spec,
        workspace_bytes=int(workspace_bytes),
        build_seconds=round(build_seconds, 3),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        engine_size=engine_path.stat().st_size,
        strongly_typed=trt.strongly_typed,
        onnx_name=onnx_path.name,
        extra={"compute_capability_targets": targets} if targets else {},
    )
    try:
        write_atomic(sidecar_path_for(engine_path), info.to_json().encode("utf-8"))
    except BaseException:
        engine_path.unlink(missing_ok=True)  # an engine without its sidecar would only be rebuilt
        raise
    log.info("built %s in %.1f s (%s, %.1f MB)", engine_path, build_seconds, spec.describe(),
             info.engine_size / 1e6)
    return engine_path


def cached_engine(onnx_path: Path | str, *, precision: str = "fp16", profile: EngineProfile,
                  cache_dir: Path | str | None = None,
                  trt_module: str | ModuleType | TensorRT | None = None) -> Path | None:
    """The cached engine for ``onnx_path`` if one exists and its sidecar matches this machine, else None."""
    path = _check_onnx(onnx_path)
    trt = load_tensorrt(trt_module)
    spec = engine_spec_for(path, precision=precision, profile=profile, trt=trt)
    return _find_cached(engine_path_for(engine_cache_dir(cache_dir), path, spec), spec)


def _find_cached(engine_path: Path, spec: EngineSpec) -> Path | None:
    sidecar = sidecar_path_for(engine_path)
    if not engine_path.is_file():
        return None
    try:
        reasons = stale_reasons(EngineInfo.read(sidecar), spec, engine_path)
    except EngineInfoError as exc:
        reasons = [str(exc)]
    if reasons:
        log.info("cached engine %s is stale: %s", engine_path.name, "; ".join(reasons))
        return None
    return engine_path


def ensure_engine(onnx_path: Path | str, *, precision: str = "fp16", profile: EngineProfile,
                  workspace_bytes: int = DEFAULT_WORKSPACE_BYTES, cache_dir: Path | str | None = None,
                  progress: ProgressCallback | None = None, cancel: CancelCallback | None = None,
                  trt_module: str | ModuleType | TensorRT | None = None) -> Path:
    """The cached engine if its sidecar fits this ONNX, TensorRT, GPU, precision and profile; else build."""
    path = _check_onnx(onnx_path)
    trt = load_tensorrt(trt_module)
    spec = engine_spec_for(path, precision=precision, profile=profile, trt=trt)
    cache = engine_cache_dir(cache_dir)
    found = _find_cached(engine_path_for(cache, path, spec), spec)
    if found is not None:
        log.info("using cached engine %s (%s)", found, spec.describe())
        return found
    return _build_into_cache(trt, path, spec, cache, workspace_bytes, progress, cancel)


# --------------------------------------------------------------------------- CUDA memory
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
        if not _cuda_ok(err):
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
        cudart = _import_cudart()
        if cudart is not None:
            return CudaPythonAllocator(cudart, device)
    if prefer in (None, "torch"):
        torch = _torch_with_cuda()
        if torch is not None:
            return TorchAllocator(torch, device)
    asked = f" (asked for {prefer})" if prefer else ""
    raise CudaUnavailable("TensorRT inference needs CUDA memory from cuda-python (`pip install cuda-python`) "
                          f"or from PyTorch built with CUDA, and neither is usable here{asked}. Install "
                          "cuda-python, or use the ONNX Runtime backend.")


# --------------------------------------------------------------------------- inference
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
        self._logger = _make_logger(self._trt)
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
        self.max_output_shape = tuple(int(d) for d in self._context.get_tensor_shape(OUTPUT_NAME))
        if any(d < 0 for d in self.max_output_shape):
            raise EngineLoadError(f"{self.engine_path}: output shape {self.max_output_shape} is not resolved")
        try:
            itemsize = np.dtype(np.float32).itemsize
            self._input = self._alloc.allocate(math.prod(self.max_shape) * itemsize)
            self._buffers.append(self._input)
            self._output = self._alloc.allocate(math.prod(self.max_output_shape) * itemsize)
            self._buffers.append(self._output)
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

    @property
    def max_batch(self) -> int:
        return self.max_shape[0]

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Whether an input of ``shape`` (N, 1, H, W) lies inside the engine's optimization profile."""
        if len(shape) != 4:
            return False
        return all(lo <= s <= hi for s, lo, hi in zip(shape, self.min_shape, self.max_shape, strict=True))

    def run(self, l_batch: np.ndarray) -> np.ndarray:
        """Normalized L (N, 1, H, W) -> normalized ab (N, 2, H, W), both float32."""
        x = np.ascontiguousarray(l_batch, dtype=np.float32)
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
            ctx.set_tensor_address(OUTPUT_NAME, self._output.ptr)
            out = np.empty(tuple(int(d) for d in ctx.get_tensor_shape(OUTPUT_NAME)), dtype=np.float32)
            self._alloc.copy_to_device(self._input, x, self._stream)
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


# --------------------------------------------------------------------------- for an exported model
def engine_for_model(onnx: Path, fp16_onnx: Path | None, contract: ModelContract, *, precision: str = "fp16",
                     max_batch: int = 8, max_render_size: int | None = None, workspace_bytes: int = 2 << 30,
                     cache_dir: Path | None = None, progress: Callable[[str, int, int], None] | None = None,
                     cancel: Callable[[], bool] | None = None, device: int = 0) -> Path:
    """The engine for an exported model on this GPU: from the cache, or built now (minutes)."""
    trt = load_tensorrt()
    profile = EngineProfile.for_render_size(max(max_render_size or 0, contract.render_size),
                                            contract.size_multiple, max_batch=max_batch)
    source = choose_onnx(precision, onnx, fp16_onnx, trt)
    return ensure_engine(source, precision=precision, profile=profile, workspace_bytes=workspace_bytes,
                         cache_dir=cache_dir, progress=progress, cancel=cancel, trt_module=trt)
