"""Modules imported on first use, so that a photo run never pays for video or progress-bar imports.

``av = LazyModule("av")`` at the top of a module reads like ``import av``; the import happens at
the first attribute access (``av.open``, ``except av.FFmpegError``), under Python's import lock,
so two threads touching it at once both get the one fully imported module.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A stand-in for a module: imports it when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r}, {state}>"
