"""What a TensorRT engine was built for, where it is cached, and when it must be rebuilt.

Nothing here imports TensorRT (or any GPU library): the runtime reads a cached engine's sidecar,
decides whether it still fits this machine, and only then loads TensorRT to deserialize it.

* :class:`EngineProfile` -- the optimization profile: min/opt/max batch and render sizes (H, W).
* :class:`EngineSpec` -- everything an engine is specific to (ONNX bytes, TensorRT module and
  version, GPU, precision, profile). Its :meth:`EngineSpec.cache_key` names the cached file.
* :class:`EngineInfo` -- the sidecar JSON written beside each engine: the spec plus how it was
  built (workspace, build time, timestamp, engine size).
* :func:`stale_reasons` -- why an existing engine does not fit the current spec (empty: reuse it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from colorizer.errors import ColorizerError
from colorizer.gpu import GpuInfo

Precision = Literal["fp16", "fp32"]
PRECISIONS: tuple[str, ...] = ("fp16", "fp32")
SIDECAR_FORMAT_VERSION = 1
CACHE_DIR_ENV = "COLORIZER_CACHE_DIR"
ENGINE_SUBDIR = "tensorrt"
Size = tuple[int, int]  # (H, W)


class EngineInfoError(ColorizerError, ValueError):
    """A sidecar JSON is missing, unreadable or not in a format this version understands."""


def check_precision(precision: str) -> Precision:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return precision  # type: ignore[return-value]


# --------------------------------------------------------------------------- profile
@dataclass(frozen=True)
class EngineProfile:
    """The shapes an engine accepts for input ``L`` (N, 1, H, W): min <= opt <= max per axis.

    TensorRT tunes kernels for ``opt`` and accepts anything between ``min`` and ``max``; device
    buffers are allocated once at ``max``, so keep ``max_batch * max_size`` realistic.
    """

    min_batch: int
    opt_batch: int
    max_batch: int
    min_size: Size
    opt_size: Size
    max_size: Size

    def __post_init__(self) -> None:
        for name in ("min_size", "opt_size", "max_size"):  # JSON gives lists; keep them hashable
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("min_batch", "opt_batch", "max_batch"):
            object.__setattr__(self, name, int(getattr(self, name)))
        if any(len(s) != 2 for s in (self.min_size, self.opt_size, self.max_size)):
            raise ValueError(f"profile sizes must be (H, W) pairs, got {self.min_size}, {self.opt_size}, "
                             f"{self.max_size}")
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(f"profile batch sizes must satisfy 1 <= min <= opt <= max, got "
                             f"{self.min_batch}, {self.opt_batch}, {self.max_batch}")
        for axis, label in ((0, "height"), (1, "width")):
            lo, opt, hi = self.min_size[axis], self.opt_size[axis], self.max_size[axis]
            if not 1 <= lo <= opt <= hi:
                raise ValueError(f"profile {label}s must satisfy 1 <= min <= opt <= max, "
                                 f"got {lo}, {opt}, {hi}")

    @classmethod
    def for_render_size(cls, render_size: int, size_multiple: int, *, max_batch: int = 4,
                        opt_batch: int | None = None) -> EngineProfile:
        """A profile for images rendered at long side ``render_size`` (padded to ``size_multiple``).

        Any aspect ratio fits: sizes run from one ``size_multiple`` up to the padded render size on
        both axes; kernels are tuned for a square render-size batch of ``opt_batch`` (default: max).
        """
        if render_size < 1 or size_multiple < 1:
            raise ValueError(f"render_size and size_multiple must be positive, "
                             f"got {render_size}, {size_multiple}")
        side = -(-render_size // size_multiple) * size_multiple
        smallest = (size_multiple, size_multiple)
        return cls(1, opt_batch or max_batch, max_batch, smallest, (side, side), (side, side))

    def input_shapes(self, channels: int = 1) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) NCHW shapes for ``IOptimizationProfile.set_shape``."""
        return (
            (self.min_batch, channels, *self.min_size),
            (self.opt_batch, channels, *self.opt_size),
            (self.max_batch, channels, *self.max_size),
        )

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Whether an (N, C, H, W) input shape lies inside this profile."""
        if len(shape) != 4:
            return False
        n, _, h, w = shape
        return (self.min_batch <= n <= self.max_batch and self.min_size[0] <= h <= self.max_size[0]
                and self.min_size[1] <= w <= self.max_size[1])

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineProfile:
        keys = ("min_batch", "opt_batch", "max_batch", "min_size", "opt_size", "max_size")
        return cls(**{k: data[k] for k in keys})


# --------------------------------------------------------------------------- spec and sidecar
@dataclass(frozen=True)
class EngineSpec:
    """Everything a serialized engine is specific to; any difference means a rebuild."""

    onnx_sha256: str
    trt_module: str  # "tensorrt" or "tensorrt_rtx"
    trt_version: str
    gpu_name: str | None  # None: no GPU was visible at build time (TensorRT-RTX builds on the CPU)
    gpu_compute_capability: str | None
    precision: Precision
    profile: EngineProfile

    def __post_init__(self) -> None:
        check_precision(self.precision)

    @property
    def gpu(self) -> GpuInfo | None:
        if self.gpu_name is None:
            return None
        return GpuInfo(self.gpu_name, self.gpu_compute_capability or "")

    def cache_key(self, length: int = 16) -> str:
        """Short hex hash of every field: the engine's file name in the cache."""
        payload = {**asdict(self), "profile": self.profile.to_dict()}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return digest[:length]

    def describe(self) -> str:
        gpu = f"{self.gpu_name} (sm {self.gpu_compute_capability})" if self.gpu_name else "no GPU visible"
        return f"{self.trt_module} {self.trt_version}, {self.precision}, {gpu}"


@dataclass(frozen=True)
class EngineInfo:
    """The sidecar JSON beside an engine file: what it was built for and how."""

    onnx_sha256: str
    trt_module: str
    trt_version: str
    gpu_name: str | None
    gpu_compute_capability: str | None
    precision: Precision
    profile: EngineProfile
    workspace_bytes: int
    build_seconds: float
    created: str  # ISO 8601, UTC
    engine_size: int  # bytes of the engine file; a different size means a damaged or replaced file
    strongly_typed: bool = False
    onnx_name: str = ""
    format_version: int = SIDECAR_FORMAT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: EngineSpec, **build: Any) -> EngineInfo:
        return cls(**{**asdict(spec), "profile": spec.profile}, **build)

    @property
    def spec(self) -> EngineSpec:
        return EngineSpec(self.onnx_sha256, self.trt_module, self.trt_version, self.gpu_name,
                          self.gpu_compute_capability, self.precision, self.profile)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = self.profile.to_dict()
        data["extra"] = dict(self.extra)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "engine sidecar") -> EngineInfo:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested thousands deep
            raise EngineInfoError(f"{source} is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise EngineInfoError(f"{source} does not hold a JSON object")
        version = data.get("format_version")
        if version != SIDECAR_FORMAT_VERSION:
            raise EngineInfoError(f"{source} has format version {version!r}; this Colorizer writes "
                                  f"{SIDECAR_FORMAT_VERSION}")
        try:
            return cls(
                onnx_sha256=str(data["onnx_sha256"]),
                trt_module=str(data["trt_module"]),
                trt_version=str(data["trt_version"]),
                gpu_name=data["gpu_name"],
                gpu_compute_capability=data["gpu_compute_capability"],
                precision=check_precision(data["precision"]),
                profile=EngineProfile.from_dict(data["profile"]),
                workspace_bytes=int(data["workspace_bytes"]),
                build_seconds=float(data["build_seconds"]),
                created=str(data["created"]),
                engine_size=int(data["engine_size"]),
                strongly_typed=bool(data.get("strongly_typed", False)),
                onnx_name=str(data.get("onnx_name", "")),
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineInfoError(f"{source} is incomplete or malformed ({exc!r})") from exc

    @classmethod
    def read(cls, path: Path) -> EngineInfo:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise EngineInfoError(f"cannot read engine sidecar {path}: {exc}") from exc
        return cls.from_json(text, source=str(path))


_SPEC_FIELDS = (
    ("onnx_sha256", "the ONNX model changed"),
    ("trt_module", "a different TensorRT module is in use"),
    ("trt_version", "the TensorRT version changed"),
    ("gpu_name", "the GPU changed"),
    ("gpu_compute_capability", "the GPU's compute capability changed"),
    ("precision", "a different precision was requested"),
    ("profile", "a different optimization profile was requested"),
)


def stale_reasons(info: EngineInfo, spec: EngineSpec, engine_path: Path | None = None) -> list[str]:
    """Why the engine described by ``info`` cannot serve ``spec`` (empty list: it can)."""
    reasons = []
    for name, why in _SPEC_FIELDS:
        have, want = getattr(info, name), getattr(spec, name)
        if have != want:
            reasons.append(f"{why} ({name}: engine has {_short(have)}, need {_short(want)})")
    if engine_path is not None:
        try:
            size = Path(engine_path).stat().st_size
        except OSError:
            reasons.append(f"the engine file {engine_path} is missing")
        else:
            if size != info.engine_size:
                reasons.append(f"the engine file is {size} bytes, its sidecar says {info.engine_size} "
                               "(damaged or replaced)")
    return reasons


def _short(value: object) -> str:
    if isinstance(value, str) and len(value) == 64:  # a sha256
        return value[:12] + "…"
    if isinstance(value, EngineProfile):
        return str(value.to_dict())
    return repr(value)


# --------------------------------------------------------------------------- files and paths
def engine_cache_dir(cache_dir: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Where engines are cached.

    ``cache_dir`` (an argument) is used as given. Otherwise the Colorizer cache root -- the
    ``COLORIZER_CACHE_DIR`` environment variable, else ``platformdirs.user_cache_dir("colorizer")``
    -- with a ``tensorrt`` subfolder.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ if environ is None else environ
    root = env.get(CACHE_DIR_ENV)
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("colorizer", appauthor=False)
    return Path(root).expanduser() / ENGINE_SUBDIR


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text).strip("-").lower() or "x"


def engine_path_for(cache_dir: Path, onnx_path: Path, spec: EngineSpec) -> Path:
    """``<cache>/<onnx stem>-<precision>-<key>.engine``: readable, and unique per spec."""
    stem = _slug(Path(onnx_path).name.removesuffix(".onnx"))[:48]
    return Path(cache_dir) / f"{stem}-{spec.precision}-{spec.cache_key()}.engine"


def sidecar_path_for(engine_path: Path) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def timing_cache_path_for(cache_dir: Path, trt_module: str, trt_version: str, gpu: GpuInfo | None) -> Path:
    """One timing cache per TensorRT module + version + GPU, shared by all models built there."""
    gpu_part = f"{_slug(gpu.name)}-sm{_slug(gpu.compute_capability)}" if gpu else "no-gpu"
    return Path(cache_dir) / "timing" / f"{_slug(trt_module)}-{_slug(trt_version)}-{gpu_part}.cache"
