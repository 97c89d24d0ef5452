"""What the bench scripts share: a backend without inference (the I/O bound) and the machine line."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import numpy as np

from colorizer.contract import ModelContract


@dataclass
class NoInference:
    """A backend that returns zero chroma at once: measures everything but the model."""

    contract: ModelContract
    name: str = "none (I/O bound)"

    def predict(self, l_norm: np.ndarray) -> np.ndarray:
        return np.zeros((l_norm.shape[0], 2, *l_norm.shape[2:]), np.float32)

    def close(self) -> None:
        pass


def machine() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores ({usable} usable), "
            f"{platform.platform()}, Python {platform.python_version()}")
