"""What every stage of the runtime shares: the cancel token, result statuses and task kinds.

Statuses and kinds are ``str`` enums: they compare equal to (and serialize in JSON as) their
plain values, ``"done"``, ``"image"``..., so reports and settings files read the same as ever.
"""

from __future__ import annotations

import threading
from enum import Enum

from colorizer.errors import ColorizerError


class TextEnum(str, Enum):
    """A str enum that compares, hashes, prints and serializes as its value."""

    def __str__(self) -> str:  # "done", not "Status.DONE", in messages and f-strings
        return self.value


class Status(TextEnum):
    """What became of one input."""

    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskKind(TextEnum):
    """What one input is."""

    IMAGE = "image"
    VIDEO = "video"
    FRAMES = "frames"  # a folder of numbered frames, colorized as one film


class Cancelled(ColorizerError):
    """Raised inside a pipeline stage when its :class:`CancelToken` is set."""


class CancelToken:
    """Set from any thread to stop a run after the files in progress (no partial outputs)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()
