"""Per-file results and the JSON report of a run: one schema for the CLI, the app and the Ray path."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from colorizer import __version__
from colorizer.desktop.core import Cancelled, Status
from colorizer.desktop.media.errors import MediaFileError
from colorizer.errors import ColorizerError
from colorizer.fileio import os_error_reason

log = logging.getLogger(__name__)

REPORT_VERSION = 1
REPORT_NAME = "colorize-report.json"


@dataclass(frozen=True)
class FileResult:
    input: Path
    status: Status
    output: Path | None = None
    backend: str | None = None
    seconds: float | None = None
    reason: str | None = None
    timings: dict = field(default_factory=dict)
    hints: dict | None = None  # the color hints used: {"sidecar", "count", "digest", "points"}; a film's
    # {"sidecar", "count", "digest", "tracking_s", "key_frames"} (None: none)
    warnings: tuple[str, ...] = ()  # what was logged about this file as it was worked on (.file_warnings)

    @classmethod
    def ok(cls, task, backend: str, seconds: float, timings: dict | None = None, hints: dict | None = None
           ) -> FileResult:
        return cls(task.source, Status.DONE, task.output, backend, round(seconds, 4),
                   timings={k: round(v, 4) for k, v in (timings or {}).items()}, hints=hints)

    @classmethod
    def skipped(cls, task, reason: str) -> FileResult:
        return cls(task.source, Status.SKIPPED, task.output, reason=reason)

    @classmethod
    def failed(cls, task, reason: str, backend: str | None = None) -> FileResult:
        return cls(task.source, Status.FAILED, getattr(task, "output", None), backend, reason=reason)

    @classmethod
    def of_error(cls, task, exc: BaseException, backend: str | None, *, subject: Path, writing: Path,
                 context: str = "") -> FileResult:
        """The one exception -> file result mapping of the pipeline's stages (photos, videos, frame
        folders): a stop is ``cancelled``; an error the project raised on purpose (a media file's, a
        hints sidecar's, a bad value) says itself, after ``context``; an OS error while writing
        names ``writing`` and the reason; anything else names ``subject`` and is logged in full (-v)."""
        if isinstance(exc, Cancelled):
            return cls.cancelled(task)
        if isinstance(exc, MediaFileError | ColorizerError | ValueError):
            reason = context + str(exc)
        elif isinstance(exc, OSError):
            reason = f"{writing}: cannot write ({os_error_reason(exc)})"
        elif isinstance(exc, MemoryError):
            reason = f"{subject}: not enough memory to colorize it"
        else:
            log.info("colorizing %s failed", subject, exc_info=exc)
            reason = f"{subject}: colorization failed ({type(exc).__name__}: {exc})"
        return cls.failed(task, reason, backend)

    @classmethod
    def cancelled(cls, task) -> FileResult:
        return cls(task.source, Status.CANCELLED, task.output, reason="stopped before this file was finished")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"] = str(self.input)
        d["output"] = str(self.output) if self.output else None
        if self.warnings:
            d["warnings"] = list(self.warnings)
        else:
            del d["warnings"]  # in the report only for a file that has some
        return d


def summarize(results: Sequence[FileResult]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {s.value: counts.get(s, 0) for s in Status} | {"total": len(results)}


def report_bytes(results: Sequence[FileResult], *, backend: str, settings: dict, started: float,
                 finished: float | None = None, interrupted: bool = False, previous_run: dict | None = None) -> bytes:
    """The JSON report as bytes (``run.ReportedRun`` writes it atomically). ``previous_run``: the run
    before this one in the output folder, when it died with inputs unfinished (who, which inputs)."""
    finished = finished or time.time()
    report = {
        "report_version": REPORT_VERSION,
        "colorizer_version": __version__,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count()},
        "backend": backend,
        "settings": settings,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(finished - started, 3),
        "interrupted": interrupted,
        "summary": summarize(results),
        "files": [r.to_dict() for r in sorted(results, key=lambda r: str(r.input))],
    }
    if previous_run:
        report["previous_run_died"] = previous_run
    return (json.dumps(report, indent=2, default=str) + "\n").encode()
