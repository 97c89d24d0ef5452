"""Overall progress of a run: elapsed working time (pauses excluded) and the time left."""

from __future__ import annotations

import time

from colorizer.desktop.pipeline.report import FileResult


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class RunClock:
    """Elapsed working time of a run (pauses excluded) and the ETA from the files finished so far."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0
        self.worked = 0  # files that took work (done or failed), not skipped or cancelled ones
        self.started = time.monotonic()
        self.paused_at: float | None = None
        self.paused_for = 0.0

    def pause(self, on: bool) -> None:
        now = time.monotonic()
        if on and self.paused_at is None:
            self.paused_at = now
        elif not on and self.paused_at is not None:
            self.paused_for += now - self.paused_at
            self.paused_at = None

    def elapsed(self) -> float:
        now = self.paused_at if self.paused_at is not None else time.monotonic()
        return now - self.started - self.paused_for

    def add(self, result: FileResult) -> None:
        self.finished += 1
        if result.status in ("done", "failed"):
            self.worked += 1

    def eta(self) -> float | None:
        remaining = self.total - self.finished
        if not self.worked or remaining <= 0:
            return None
        return self.elapsed() / self.worked * remaining
