"""Overall progress of a run: what became of each input (done, skipped, failed, cancelled, counted
apart), frames of the films in progress, elapsed working time (pauses excluded) and the time left.

The bar counts what was processed (done, skipped or failed) plus the finished part of the films
in progress; cancelled inputs are never counted as progress, so a cancelled run's bar stops where
the work stopped.
"""

from __future__ import annotations

import time
from collections import Counter

from colorizer.desktop.core import Status
from colorizer.desktop.pipeline.report import FileResult

BAR_STEPS = 1000  # steps of the bar per input (films move it frame by frame)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class RunClock:
    """Counts, frame progress and the ETA of one run."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.counts: Counter[str] = Counter()
        self.work_s = 0.0  # elapsed time when the last worked input finished
        self.films: dict[int, object] = {}  # item id -> the latest VideoProgress of a film in progress
        self.started = time.monotonic()
        self.paused_at: float | None = None
        self.paused_for = 0.0
        self.stopped_at: float | None = None

    # ------------------------------------------------------------------ time
    def pause(self, on: bool) -> None:
        now = time.monotonic()
        if on and self.paused_at is None:
            self.paused_at = now
        elif not on and self.paused_at is not None:
            self.paused_for += now - self.paused_at
            self.paused_at = None

    def stop(self) -> None:
        self.pause(False)
        self.stopped_at = time.monotonic()

    def elapsed(self) -> float:
        now = self.paused_at or self.stopped_at or time.monotonic()
        return now - self.started - self.paused_for

    # ------------------------------------------------------------------ counting
    @property
    def finished(self) -> int:
        """Inputs with a result, cancelled ones included."""
        return sum(self.counts.values())

    @property
    def processed(self) -> int:
        """Inputs done, skipped or failed: what the bar shows."""
        return self.finished - self.counts[Status.CANCELLED]

    @property
    def worked(self) -> int:
        """Inputs that took work (done or failed): the rate of the ETA."""
        return self.counts[Status.DONE] + self.counts[Status.FAILED]

    def add(self, result: FileResult, item_id: int | None = None) -> None:
        self.counts[Status(result.status)] += 1
        self.films.pop(item_id, None)
        if result.status in (Status.DONE, Status.FAILED):
            self.work_s = self.elapsed()

    def film_progress(self, item_id: int, progress) -> None:
        """A film's latest ``VideoProgress`` (frames done, total, frames per second)."""
        self.films[item_id] = progress

    def bar(self) -> tuple[int, int]:
        """(value, maximum) of the overall bar."""
        films = sum(p.fraction or 0.0 for p in self.films.values())
        return round((self.processed + films) * BAR_STEPS), max(1, self.total) * BAR_STEPS

    # ------------------------------------------------------------------ words
    def counts_text(self) -> str:
        """'12 of 30' while running; then what became of them, each status apart."""
        parts = [f"{self.counts[s]} {_WORDS[s]}" for s in Status if self.counts[s]]
        return f"{self.processed} of {self.total}" + (" · " + " · ".join(parts) if parts else "")

    def film_text(self) -> str:
        """'frame 120 / 300 · 14.2 frames/s' of the film in progress (empty without one)."""
        if not self.films:
            return ""
        p = next(reversed(self.films.values()))
        total = f" / {'~' if p.total_is_estimate else ''}{p.frames_total}" if p.frames_total else ""
        return f"frame {p.frames_done}{total} · {p.fps:.1f} frames/s"

    def eta(self) -> float | None:
        """Seconds left: the films in progress from their frame rate, the inputs not started from the
        average working time of those finished (None until there is something to go by)."""
        film_left = 0.0
        for p in self.films.values():
            if not p.frames_total or p.fps <= 0:
                return None
            film_left += max(0, p.frames_total - p.frames_done) / p.fps
        waiting = self.total - self.finished - len(self.films)
        if waiting <= 0:
            return film_left if self.films else None
        if not self.worked:
            return None
        return film_left + self.work_s / self.worked * waiting


_WORDS = {Status.DONE: "done", Status.SKIPPED: "skipped", Status.FAILED: "failed", Status.CANCELLED: "cancelled"}
