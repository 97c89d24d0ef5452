"""A whole run: photos through the batch pipeline (locally or on Ray), then videos and frame folders
one by one, with one cancel token, one progress callback per finished input, and the JSON report.

The CLI, the desktop app and the Ray path all go through :func:`run_and_report`; neither holds
pipeline logic of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from colorizer.desktop.backends import Backend
from colorizer.desktop.core import CancelToken, Status, TaskKind
from colorizer.desktop.pipeline.batch import BatchRunner, ProgressCallback
from colorizer.desktop.pipeline.frames import colorize_frame_folder
from colorizer.desktop.pipeline.ray_runner import RayOptions, run_on_ray
from colorizer.desktop.pipeline.report import FileResult, write_report
from colorizer.desktop.pipeline.settings import RunSettings, VideoSettings
from colorizer.desktop.pipeline.tasks import Rejected, Task
from colorizer.desktop.pipeline.video import FrameProgressCallback, colorize_video, output_suffix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    results: tuple[FileResult, ...]  # one per task and per rejected input
    backend: str  # what did the work, as the report names it
    interrupted: bool  # the cancel token was set
    report: Path | None  # None when it could not be written (the reason is logged)


class _Results:
    """Collects results from any thread and numbers them across the whole run."""

    def __init__(self, total: int, progress: ProgressCallback | None) -> None:
        self.total, self.progress = total, progress
        self.items: list[FileResult] = []
        self._lock = threading.Lock()

    def __call__(self, result: FileResult, *_counts) -> None:
        with self._lock:
            self.items.append(result)
            n = len(self.items)
        if self.progress:
            self.progress(result, n, self.total)


def frames_video_path(task: Task, settings: VideoSettings) -> Path:
    """Where a colorized frame folder's video goes: inside the output folder, named after the input."""
    name = task.source.resolve().name
    return task.output / (name + output_suffix(task.source / f"{name}.mp4", settings))


def run_tasks(tasks: Sequence[Task], backend: Backend | None, settings: RunSettings | None = None, *,
              progress: ProgressCallback | None = None, frame_progress: FrameProgressCallback | None = None,
              cancel: CancelToken | None = None, ray: RayOptions | None = None,
              model: Path | None = None) -> list[FileResult]:
    """Run every task; ``progress(result, finished, total)`` after each input, ``frame_progress``
    after each frame of a video or frame folder. With ``ray``, photos run on Ray with ``model``
    (``backend`` may then be None if there is nothing else). Every task gets exactly one result."""
    settings = settings or RunSettings()
    cancel = cancel or CancelToken()
    results = _Results(len(tasks), progress)
    images = [t for t in tasks if t.kind == TaskKind.IMAGE]
    others = [t for t in tasks if t.kind != TaskKind.IMAGE]
    if others and backend is None:
        raise ValueError("videos and frame folders need a local backend")
    try:
        if images and ray is not None:
            run_on_ray(images, model, settings.images, ray, progress=results, cancel=cancel)
        elif images:
            BatchRunner(backend, settings.images, results, cancel).run(images)
        for task in others:
            results(FileResult.cancelled(task) if cancel.cancelled else
                    _run_film(task, backend, settings, frame_progress, cancel))
    except Exception as exc:  # never leave a caller waiting: what is left fails with the reason
        log.exception("the run failed")
        finished = {r.input for r in results.items}
        for task in tasks:
            if task.source not in finished:
                results(FileResult.failed(task, f"run failed: {exc}", getattr(backend, "name", None)))
    return results.items


def _run_film(task: Task, backend: Backend, settings: RunSettings, frame_progress: FrameProgressCallback | None,
              cancel: CancelToken) -> FileResult:
    if task.kind == TaskKind.VIDEO:
        return colorize_video(task.source, task.output, backend, settings.video, frame_progress, cancel)
    to_video = frames_video_path(task, settings.video) if settings.frames_to_video else None
    return colorize_frame_folder(task.source, task.output, backend, settings.video, frame_progress, cancel,
                                 to_video)


def run_and_report(tasks: Sequence[Task], backend: Backend | None, settings: RunSettings, *, report_path: Path,
                   model: Path | str | None = None, rejected: Sequence[Rejected] = (),
                   progress: ProgressCallback | None = None, frame_progress: FrameProgressCallback | None = None,
                   cancel: CancelToken | None = None, ray: RayOptions | None = None) -> RunOutcome:
    """:func:`run_tasks`, then the JSON report at ``report_path`` (``rejected`` inputs listed as failed)."""
    cancel = cancel or CancelToken()
    started = time.time()
    results = run_tasks(tasks, backend, settings, progress=progress, frame_progress=frame_progress, cancel=cancel,
                        ray=ray, model=Path(model) if model else None)
    results += [FileResult(r.source, Status.FAILED, reason=r.reason) for r in rejected]
    name = _backend_name(tasks, results, backend, ray)
    extra = {"ray": ray.address, "ray_actors": ray.actors} if ray is not None else {}
    try:
        report = write_report(report_path, results, backend=name, settings=settings.to_report(model, **extra),
                              started=started, interrupted=cancel.cancelled)
    except OSError as exc:
        log.warning("could not write the report %s: %s", report_path, exc)
        report = None
    return RunOutcome(tuple(results), name, cancel.cancelled, report)


def _backend_name(tasks: Sequence[Task], results: Sequence[FileResult], backend: Backend | None,
                  ray: RayOptions | None) -> str:
    local = backend.name if backend is not None else "none"
    if ray is None:
        return local
    on_ray = {t.source for t in tasks if t.kind == TaskKind.IMAGE}  # the backends the actors really used
    used = {("ray/" if r.input in on_ray else "") + r.backend for r in results if r.backend}
    return ", ".join(sorted(used)) or (f"Ray ({ray.address})" if backend is None else local)
