"""A whole run: photos through the batch pipeline (locally or on Ray), then videos and frame folders
one by one, with one cancel token, one progress callback per finished input, and the JSON report.

The CLI (:class:`ReportedRun` directly, so that its signal handler can :meth:`~ReportedRun.abandon`
it), the desktop app (:func:`run_and_report`, which wraps it) and the Ray path all go through
:class:`ReportedRun`; none holds pipeline logic of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from colorizer.desktop.backends import Backend
from colorizer.desktop.core import CancelToken, Status, TaskKind
from colorizer.desktop.pipeline.batch import BatchRunner, ProgressCallback
from colorizer.desktop.pipeline.file_warnings import FileWarnings
from colorizer.desktop.pipeline.frames import colorize_frame_folder, outputs_finished, the_sequence
from colorizer.desktop.pipeline.hint_tracking import read_film_hints
from colorizer.desktop.pipeline.journal import RunJournal
from colorizer.desktop.pipeline.ray_runner import RayOptions, run_on_ray
from colorizer.desktop.pipeline.report import FileResult, report_bytes
from colorizer.desktop.pipeline.settings import RunSettings, VideoSettings
from colorizer.desktop.pipeline.tasks import Rejected, Task
from colorizer.desktop.pipeline.video import FrameProgressCallback, colorize_video, output_suffix
from colorizer.fileio import ReservedFile, abandon_writes, os_error_reason
from colorizer.hints import HintsError, read_photo_hints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    results: tuple[FileResult, ...]  # one per task and per rejected input
    backend: str  # what did the work, as the report names it
    interrupted: bool  # the cancel token was set
    report: Path | None  # None when it could not be written (report_error says why)
    report_error: str | None = None


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


def planned_action(task: Task, settings: RunSettings, journal: RunJournal) -> str:
    """What a run would do with ``task`` (``--dry-run``), decided as the run decides it with the output
    folder's ``journal`` (:meth:`RunJournal.read_only`): "colorize", "skip: finished", "redo: <why>" or
    "fails: <why>" (a hints sidecar it cannot use, a frame folder without one sequence)."""
    digest = None  # of the hints the run would use (as hints_digest gives it), the sidecar read once
    if task.hints is not None and os.path.lexists(task.hints):
        try:
            hints = read_photo_hints(task.hints) if task.kind == TaskKind.IMAGE else read_film_hints(task.hints)
        except HintsError as exc:
            return f"fails: {exc}"
        digest = hints.digest() if hints is not None and len(hints) else None
    overwrite = settings.images.overwrite if task.kind == TaskKind.IMAGE else settings.video.overwrite
    if task.kind == TaskKind.FRAMES:
        sequence, why_not = the_sequence(task.source)
        if sequence is None:
            return f"fails: {why_not}"
        finished = [(task.output / p.name, TaskKind.IMAGE) for p in sequence.frames]
        if settings.frames_to_video:
            finished.append((frames_video_path(task, settings.video), TaskKind.VIDEO))
    else:
        finished = [(task.output, task.kind)]
    there = [path for path, _ in finished if path.exists()]
    if not there:
        return "colorize"
    if overwrite:
        return "redo: --overwrite"
    if outputs_finished(finished, journal, digest):  # a frame folder left half written: none decoded
        return "skip: finished"
    if task.kind == TaskKind.FRAMES:
        return f"redo: {len(there)} of {len(finished)} outputs there, not all finished"
    if journal.lists(task.output):
        return "redo: its hints changed since it was made"
    return "redo: not a finished output" if digest is None else "redo: not known to be made with these hints"


def run_tasks(tasks: Sequence[Task], backend: Backend | None, settings: RunSettings | None = None, *,
              progress: ProgressCallback | None = None, frame_progress: FrameProgressCallback | None = None,
              cancel: CancelToken | None = None, ray: RayOptions | None = None,
              model: Path | None = None, journal: RunJournal | None = None,
              results: _Results | None = None) -> list[FileResult]:
    """Run every task; ``progress(result, finished, total)`` after each input, ``frame_progress``
    after each frame of a video or frame folder. With ``ray``, photos run on Ray with ``model``
    (``backend`` may then be None if there is nothing else). Every task gets exactly one result."""
    settings = settings or RunSettings()
    cancel = cancel or CancelToken()
    results = results if results is not None else _Results(len(tasks), progress)
    images = [t for t in tasks if t.kind == TaskKind.IMAGE]
    others = [t for t in tasks if t.kind != TaskKind.IMAGE]
    if others and backend is None:
        raise ValueError("videos and frame folders need a local backend")
    try:
        if images and ray is not None:
            run_on_ray(images, model, settings.images, ray, progress=results, cancel=cancel, journal=journal)
        elif images:
            BatchRunner(backend, settings.images, results, cancel, journal).run(images)
        warnings = FileWarnings()
        for task in others:
            if cancel.cancelled:
                results(FileResult.cancelled(task))
                continue
            if journal is not None:
                journal.working_on(task.source)
            with warnings.working_on(task.source):
                result = _run_film(task, backend, settings, frame_progress, cancel, journal)
            results(warnings.attach(result))
            if journal is not None:
                journal.finished_with(task.source)
    except Exception as exc:  # never leave a caller waiting: what is left fails with the reason
        log.info("the run failed", exc_info=True)
        finished = {r.input for r in results.items}
        for task in tasks:
            if task.source not in finished:
                results(FileResult.failed(task, f"run failed: {exc}", getattr(backend, "name", None)))
    return results.items


def _run_film(task: Task, backend: Backend, settings: RunSettings, frame_progress: FrameProgressCallback | None,
              cancel: CancelToken, journal: RunJournal | None) -> FileResult:
    if task.kind == TaskKind.VIDEO:
        return colorize_video(task.source, task.output, backend, settings.video, frame_progress, cancel, journal,
                              task.hints)
    to_video = frames_video_path(task, settings.video) if settings.frames_to_video else None
    return colorize_frame_folder(task.source, task.output, backend, settings.video, frame_progress, cancel,
                                 to_video, journal, task.hints)


class ReportedRun:
    """A run that always ends with a true report: :meth:`execute` runs the tasks and writes it;
    :meth:`abandon` (from another thread, e.g. on a second signal) stops every write at once and
    writes it from what is known. The output folder's journal marks the run and lists what it finished.
    """

    def __init__(self, tasks: Sequence[Task], backend: Backend | None, settings: RunSettings, *, report_path: Path,
                 model: Path | str | None = None, rejected: Sequence[Rejected] = (),
                 progress: ProgressCallback | None = None, frame_progress: FrameProgressCallback | None = None,
                 cancel: CancelToken | None = None, ray: RayOptions | None = None,
                 output_dir: Path | None = None) -> None:
        self.tasks, self.backend, self.settings, self.rejected, self.ray = list(tasks), backend, settings, rejected, ray
        self.report_path, self.model = Path(report_path), model
        self.output_dir = Path(output_dir) if output_dir is not None else self.report_path.parent
        self.progress, self.frame_progress = progress, frame_progress
        self.cancel = cancel or CancelToken()
        self.results = _Results(len(self.tasks), progress)
        self._report_lock = threading.Lock()
        self._outcome: RunOutcome | None = None
        self.started = time.time()
        self.reserved: ReservedFile | None = None
        self.previous_run: dict | None = None  # the last run in the folder, if it died mid-file

    def execute(self) -> RunOutcome:
        self.started = time.time()
        journal = self._open_journal()
        self.previous_run = journal.previous_run if journal is not None else None
        reserved = self._reserve_report()
        try:
            run_tasks(self.tasks, self.backend, self.settings, frame_progress=self.frame_progress, cancel=self.cancel,
                      ray=self.ray, model=Path(self.model) if self.model else None, journal=journal,
                      results=self.results)
            return self._write_report(list(self.results.items), reserved)
        finally:
            if journal is not None:
                journal.close()

    def abandon(self) -> RunOutcome:
        """Stop at once: no more outputs renamed into place, temporary files removed; the report says
        which outputs this run finished (on disk, complete) and that the rest were abandoned."""
        abandon_writes()
        results = list(self.results.items)
        finished = {r.input for r in results}
        for task in self.tasks:
            if task.source not in finished:
                results.append(_abandoned(task, self.started))
        self.cancel.cancel()
        return self._write_report(results, self.reserved)

    def _open_journal(self) -> RunJournal | None:
        folders = {t.output.parent for t in self.tasks} | {t.output for t in self.tasks if t.kind == TaskKind.FRAMES}
        try:
            return RunJournal.open(self.output_dir, folders | {self.report_path.parent})
        except OSError as exc:  # the journal as it is, read only: an existing output counts as finished only
            # when it lists it or it decodes completely (not because it exists: it may be cut short)
            log.warning("cannot lock the output folder %s (%s): existing outputs are checked, but another run "
                        "into it at the same time is not kept out", self.output_dir, os_error_reason(exc))
            return RunJournal.read_only(self.output_dir)

    def _reserve_report(self) -> ReservedFile | None:
        try:
            self.reserved = ReservedFile(self.report_path,
                                         REPORT_BYTES_PER_FILE * (len(self.tasks) + len(self.rejected) + 8))
        except OSError as exc:
            log.info("could not set space aside for the report %s: %s", self.report_path, exc)
            self.reserved = None
        return self.reserved

    def _write_report(self, results: list[FileResult], reserved: ReservedFile | None) -> RunOutcome:
        with self._report_lock:  # one report, whoever gets here first (the run, or an abandonment)
            if self._outcome is not None:
                return self._outcome
            results += [FileResult(r.source, Status.FAILED, reason=r.reason) for r in self.rejected]
            name = _backend_name(self.tasks, results, self.backend, self.ray)
            extra = {"ray": self.ray.address, "ray_actors": self.ray.actors} if self.ray is not None else {}
            report, error = None, None
            try:
                data = report_bytes(results, backend=name, settings=self.settings.to_report(self.model, **extra),
                                    started=self.started, interrupted=self.cancel.cancelled,
                                    previous_run=self.previous_run)
                reserved = reserved or ReservedFile(self.report_path, len(data))  # not gated: written even if abandoned
                report = reserved.commit(data)
            except Exception as exc:  # noqa: BLE001 - a report that cannot be written is said, never a crash
                error = f"could not write the report {self.report_path}: " + (
                    os_error_reason(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
                log.warning("%s", error)
                if reserved is not None:
                    reserved.discard()
            self._outcome = RunOutcome(tuple(results), name, self.cancel.cancelled, report, error)
            return self._outcome


REPORT_BYTES_PER_FILE = 1024
"""Disk space set aside for the report per input when a run starts (a full disk cannot stop it)."""


def _abandoned(task: Task, started: float) -> FileResult:
    """The result of a file in flight when a run was abandoned: done if its output was renamed into
    place during this run (complete: nothing is renamed unverified), else cancelled."""
    try:
        written = task.kind != TaskKind.FRAMES and task.output.stat().st_mtime >= started
    except OSError:
        written = False
    if written:
        return FileResult(task.source, Status.DONE, task.output, reason="finished as the run was stopped")
    return FileResult(task.source, Status.CANCELLED, task.output, reason="abandoned: the run was stopped at once")


def run_and_report(tasks: Sequence[Task], backend: Backend | None, settings: RunSettings, *, report_path: Path,
                   model: Path | str | None = None, rejected: Sequence[Rejected] = (),
                   progress: ProgressCallback | None = None, frame_progress: FrameProgressCallback | None = None,
                   cancel: CancelToken | None = None, ray: RayOptions | None = None,
                   output_dir: Path | None = None) -> RunOutcome:
    """:func:`run_tasks`, then the JSON report at ``report_path`` (``rejected`` inputs listed as failed).

    ``output_dir`` (default: the report's folder) holds the run's journal (see :mod:`.journal`)."""
    return ReportedRun(tasks, backend, settings, report_path=report_path, model=model, rejected=rejected,
                       progress=progress, frame_progress=frame_progress, cancel=cancel, ray=ray,
                       output_dir=output_dir).execute()


def _backend_name(tasks: Sequence[Task], results: Sequence[FileResult], backend: Backend | None,
                  ray: RayOptions | None) -> str:
    local = backend.name if backend is not None else "none"
    if ray is None:
        return local
    on_ray = {t.source for t in tasks if t.kind == TaskKind.IMAGE}  # the backends the actors really used
    used = {("ray/" if r.input in on_ray else "") + r.backend for r in results if r.backend}
    return ", ".join(sorted(used)) or (f"Ray ({ray.address})" if backend is None else local)
