"""Which TensorRT is installed: ``tensorrt`` or ``tensorrt_rtx``, its version, and how it differs.

Nothing here imports TensorRT at import time; :func:`load_tensorrt` imports a module when an
engine is built or loaded. Precision across the three TensorRT flavours (see :class:`TensorRT`):

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
"""

from __future__ import annotations

import importlib
import logging
from collections import deque
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from colorizer.errors import ColorizerError

log = logging.getLogger(__name__)

MODULE_NAMES: tuple[str, ...] = ("tensorrt", "tensorrt_rtx")
TRT_VERBOSE = logging.DEBUG - 5  # TensorRT's VERBOSE messages log at this level
INSTALL_HINT = (
    "Install one of them: `pip install tensorrt` (NVIDIA TensorRT, Linux or Windows with a supported "
    "NVIDIA GPU and driver) or `pip install tensorrt-rtx-cu13` (TensorRT for RTX, for GeForce/RTX GPUs "
    "with a CUDA 13 driver). Without TensorRT, use the ONNX Runtime backend instead."
)


class TensorRTUnavailable(ColorizerError, RuntimeError):
    """No TensorRT Python module could be imported; the message says which were tried and what to install."""


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


def make_logger(trt: TensorRT) -> Any:
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
