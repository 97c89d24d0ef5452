"""Build and cache TensorRT engines for the colorizer model, with ``tensorrt`` or ``tensorrt_rtx``.

Nothing here imports TensorRT, CUDA or torch at import time; :func:`load_tensorrt` imports a
TensorRT module when an engine is built (:mod:`.tensorrt_module` says how the flavours differ).
Engines are built for one GPU (``device``) and cached keyed by ONNX hash, GPU, TensorRT version,
precision and profile (:mod:`.engine_info`). The TensorRT backend builds one on first use
(:mod:`.tensorrt`), ``colorizer-export --engine`` ahead of time; running an engine is
:mod:`.tensorrt_runner`'s job.

Which ONNX to give :func:`ensure_engine` for a precision: :func:`choose_onnx`. A mismatch (an FP32
ONNX for an FP16 strongly typed build, or an FP16 ONNX for an FP32 build) is refused with a
message, since the engine would not have the precision its sidecar claims.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from colorizer.contract import HINT_INPUT_NAME, INPUT_NAME, OUTPUT_NAME, ModelContract
from colorizer.desktop.backends.engine_info import (
    EngineInfo,
    EngineInfoError,
    EngineProfile,
    EngineSpec,
    GpuInfo,
    Precision,
    check_precision,
    engine_cache_dir,
    engine_path_for,
    sidecar_path_for,
    stale_reasons,
    timing_cache_path_for,
)
from colorizer.desktop.backends.tensorrt_module import (  # noqa: F401 - MODULE_NAMES, TensorRTUnavailable: API
    MODULE_NAMES,
    TensorRT,
    TensorRTUnavailable,
    load_tensorrt,
    make_logger,
)
from colorizer.errors import ColorizerError
from colorizer.fileio import atomic_write, sha256_file
from colorizer.gpu import query_gpu, use_device

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE_BYTES = 1 << 30
BuildProgress = Callable[[str, int, int], None]  # (phase, step, total)
CancelCallback = Callable[[], bool]  # True: stop the build


class EngineBuildError(ColorizerError, RuntimeError):
    """TensorRT could not parse the ONNX model or build an engine; the message says why."""


class BuildCancelled(ColorizerError):
    """The build was cancelled through ``cancel()``; no engine file was written."""


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


# --------------------------------------------------------------------------- TensorRT callbacks
def _make_progress_monitor(trt: TensorRT, progress: BuildProgress | None,
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


def extra_inputs(network: Any) -> dict[str, int]:
    """The parsed network's inputs besides ``L`` (a model's hint guidance, ``hints`` (N, C, H, W)):
    name -> channels. Their profile follows L's batch, height and width."""
    out = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.name != INPUT_NAME:
            out[tensor.name] = int(tuple(tensor.shape)[1])
    return out


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
    for name, tensor in inputs.items():
        shape = tuple(tensor.shape)
        if name != INPUT_NAME and (name != HINT_INPUT_NAME or len(shape) != 4 or int(shape[1]) <= 0):
            raise EngineBuildError(f"{onnx_path.name}: input {name!r} of shape {shape}; a Colorizer model takes "
                                   f"{INPUT_NAME!r} and optionally {HINT_INPUT_NAME!r} (N, C, H, W) hint guidance")
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
            atomic_write(path, cache.serialize())
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
                      timing_cache_path: Path, progress: BuildProgress | None,
                      cancel: CancelCallback | None) -> tuple[Any, list[str]]:
    m = trt.module
    logger = make_logger(trt)
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
    for name, channels in extra_inputs(network).items():  # a model's hint guidance: the same N, H and W as L
        shape_profile.set_shape(name, *spec.profile.input_shapes(channels))
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
                    gpu: GpuInfo | None = None, device: int = 0) -> EngineSpec:
    """What an engine for ``onnx_path`` built now, for CUDA device ``device``, would be specific to
    (``gpu``: that device's, queried if None)."""
    gpu = gpu if gpu is not None else query_gpu(device)
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


def _plan(onnx_path: Path | str, precision: str, profile: EngineProfile, cache_dir: Path | str | None,
          trt_module: str | ModuleType | TensorRT | None, device: int) -> tuple[Path, TensorRT, EngineSpec, Path]:
    """The ONNX file, the TensorRT module, the engine's spec for ``device`` and the cache folder."""
    path = _check_onnx(onnx_path)
    trt = load_tensorrt(trt_module)
    spec = engine_spec_for(path, precision=precision, profile=profile, trt=trt, device=device)
    return path, trt, spec, engine_cache_dir(cache_dir)


def _build_into_cache(trt: TensorRT, onnx_path: Path, spec: EngineSpec, cache: Path, workspace_bytes: int,
                      progress: BuildProgress | None, cancel: CancelCallback | None, device: int) -> Path:
    if cancel is not None and cancel():
        raise BuildCancelled(f"engine build for {onnx_path.name} was cancelled before it started")
    engine_path = engine_path_for(cache, onnx_path, spec)
    timing_path = timing_cache_path_for(cache, trt.name, trt.version, spec.gpu)
    if spec.gpu is not None:
        use_device(device)  # TensorRT builds (and tunes kernels) for the current CUDA device
    started = time.perf_counter()
    serialized, targets = _build_serialized(trt, onnx_path, spec, workspace_bytes, timing_path, progress,
                                            cancel)
    build_seconds = time.perf_counter() - started
    atomic_write(engine_path, serialized)
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
        atomic_write(sidecar_path_for(engine_path), info.to_json().encode("utf-8"))
    except BaseException:
        engine_path.unlink(missing_ok=True)  # an engine without its sidecar would only be rebuilt
        raise
    log.info("built %s in %.1f s (%s, %.1f MB)", engine_path, build_seconds, spec.describe(),
             info.engine_size / 1e6)
    return engine_path


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
                  progress: BuildProgress | None = None, cancel: CancelCallback | None = None,
                  trt_module: str | ModuleType | TensorRT | None = None, device: int = 0) -> Path:
    """The cached engine if its sidecar fits this ONNX, TensorRT, GPU ``device``, precision and profile;
    else build one on that device."""
    path, trt, spec, cache = _plan(onnx_path, precision, profile, cache_dir, trt_module, device)
    found = _find_cached(engine_path_for(cache, path, spec), spec)
    if found is not None:
        log.info("using cached engine %s (%s)", found, spec.describe())
        return found
    return _build_into_cache(trt, path, spec, cache, workspace_bytes, progress, cancel, device)


def engine_for_model(onnx: Path, fp16_onnx: Path | None, contract: ModelContract, *, precision: str = "fp16",
                     max_batch: int = 8, max_render_size: int | None = None, workspace_bytes: int = 2 << 30,
                     cache_dir: Path | None = None, progress: BuildProgress | None = None,
                     cancel: CancelCallback | None = None, device: int = 0) -> Path:
    """The engine for an exported model on CUDA device ``device``: from the cache, or built now (minutes)."""
    trt = load_tensorrt()
    profile = EngineProfile.for_render_size(max(max_render_size or 0, contract.render_size),
                                            contract.size_multiple, max_batch=max_batch)
    source = choose_onnx(precision, onnx, fp16_onnx, trt)
    return ensure_engine(source, precision=precision, profile=profile, workspace_bytes=workspace_bytes,
                         cache_dir=cache_dir, progress=progress, cancel=cancel, trt_module=trt, device=device)
