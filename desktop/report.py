"""Per-file results and the JSON report of a run (the same schema for every runner)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from colorizer import __version__

REPORT_VERSION = 1
STATUSES = ("done", "skipped", "failed", "cancelled")


@dataclass(frozen=True)
class FileResult:
    input: Path
    status: str  # done | skipped | failed | cancelled
    output: Path | None = None
    backend: str | None = None
    seconds: float | None = None
    reason: str | None = None
    timings: dict = field(default_factory=dict)

    @classmethod
    def ok(cls, task, backend: str, seconds: float, timings: dict | None = None) -> FileResult:
        return cls(task.source, "done", task.output, backend, round(seconds, 4),
                   timings={k: round(v, 4) for k, v in (timings or {}).items()})

    @classmethod
    def skipped(cls, task, reason: str) -> FileResult:
        return cls(task.source, "skipped", task.output, reason=reason)

    @classmethod
    def failed(cls, task, reason: str, backend: str | None = None) -> FileResult:
        return cls(task.source, "failed", getattr(task, "output", None), backend, reason=reason)

    @classmethod
    def cancelled(cls, task) -> FileResult:
        return cls(task.source, "cancelled", task.output, reason="stopped before this file was finished")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"] = str(self.input)
        d["output"] = str(self.output) if self.output else None
        return d


def summarize(results: Sequence[FileResult]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {s: counts.get(s, 0) for s in STATUSES} | {"total": len(results)}


def write_report(path: Path, results: Sequence[FileResult], *, backend: str, settings: dict,
                 started: float, finished: float | None = None, interrupted: bool = False) -> Path:
    """Write the JSON report atomically; returns its path."""
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path
