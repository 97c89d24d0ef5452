"""The run, off the GUI thread: open the backend, colorize the queue, report progress as signals.

:class:`RunWorker` lives in a QThread. Its ``run`` slot calls the runtime library (``open_backend``,
then ``pipeline.run.run_and_report``: photos through the batch pipeline, then videos and frame
folders, and the report, exactly as ``colorize-batch`` runs them) and turns its callbacks into Qt
signals;
the window connects to them with queued connections, so widgets are only ever touched from the
GUI thread. The signals may be emitted from the runtime's own threads (its writer pool), which
Qt allows: a queued connection posts an event to the receiver's thread.

Pause and cancel (:class:`RunControl`) are plain thread-safe flags the GUI sets directly.

* Cancel sets the runtime's :class:`CancelToken`: files being written are finished (each output is
  written to a temporary file and renamed, so no partial file is ever left), the rest are reported
  as cancelled. It also stops a TensorRT engine build (``engine_cancel``).
* Pause closes a gate in front of the backend's ``predict``. The inference stage then waits before
  its next batch; the readers stop as soon as the bounded queue in front of inference is full and
  the writers as soon as they have written what was already predicted, so the run is idle within
  about one batch, holds a bounded amount of memory, and resumes exactly where it stopped, with
  the pipeline's overlap intact. (Waiting inside the progress callback instead would block writer
  threads while inference went on until the memory budget filled; splitting the run into small
  chunks would lose the overlap and batching.) Videos and frame folders wait at the same gate
  before their next batch of frames.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from colorizer.contract import ContractError
from colorizer.desktop import backends
from colorizer.desktop.app.settings import AppSettings
from colorizer.desktop.core import CancelToken
from colorizer.desktop.pipeline.journal import OutputFolderBusy
from colorizer.desktop.pipeline.report import FileResult, summarize
from colorizer.desktop.pipeline.run import run_and_report
from colorizer.desktop.pipeline.tasks import Task

log = logging.getLogger(__name__)


class RunControl:
    """Pause / resume / cancel, set from the GUI thread and read by the run's threads."""

    def __init__(self, on_gate: Callable[[], None] | None = None) -> None:
        self.token = CancelToken()
        self._running = threading.Event()
        self._running.set()
        self._on_gate = on_gate  # called (any thread) when the run reaches the closed pause gate

    def pause(self) -> None:
        if not self.token.cancelled:
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self.token.cancel()
        self._running.set()  # wake anything waiting at the pause gate

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def wait_while_paused(self) -> None:
        """Block while paused; returns at once when running or cancelled."""
        if not self._running.is_set() and self._on_gate is not None:
            self._on_gate()
        self._running.wait()


class PausableBackend(backends.ClosesOnExit):
    """A backend whose ``predict`` waits at the pause gate first (see the module notes)."""

    def __init__(self, backend: backends.Backend, control: RunControl) -> None:
        self._backend = backend
        self._control = control
        self.name = backend.name
        self.contract = backend.contract

    def predict(self, l_norm, hints=None):
        """The backend's prediction, after the pause gate; ``hints``: a hint model's guidance, passed on."""
        self._control.wait_while_paused()
        return self._backend.predict(l_norm) if hints is None else self._backend.predict(l_norm, hints)

    def close(self) -> None:
        self._backend.close()


@dataclass(frozen=True)
class QueuedTask:
    """A queue row's id and the runtime task made of it."""

    item_id: int
    task: Task


@dataclass(frozen=True)
class WorkerOutcome:
    results: tuple[FileResult, ...]
    backend: str | None
    cancelled: bool
    report: str | None  # path of the JSON report, when one was written
    error: str | None = None  # why the run could not start


OpenBackend = Callable[..., backends.Backend]


class RunWorker(QObject):
    backend_ready = Signal(str)  # name of the backend actually in use
    engine_progress = Signal(str, int, int)  # TensorRT engine build: phase, step, total
    item_started = Signal(int)  # item id (videos: photos are reported when finished)
    item_progress = Signal(int, object)  # item id, VideoProgress (videos and frame folders, every frame)
    item_finished = Signal(int, object, int, int)  # item id, FileResult, finished count, total
    finished = Signal(object)  # WorkerOutcome, always emitted last

    def __init__(self, queued: Sequence[QueuedTask], settings: AppSettings, control: RunControl,
                 open_backend: OpenBackend | None = None, choose_backend: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self.queued = list(queued)
        self.settings = settings
        self.control = control
        self._open_backend = open_backend or backends.open_backend
        self._choose_backend = choose_backend  # "auto" -> what can run here (may wait for detection)
        self._ids = {q.task.source: q.item_id for q in self.queued}
        self._lock = threading.Lock()
        self._results: list[FileResult] = []
        self._started: set[int] = set()

    @Slot()
    def run(self) -> None:
        backend, error = self._open()
        if backend is None and self.control.cancelled:  # e.g. the engine build was cancelled
            for q in self.queued:
                self._on_result(FileResult.cancelled(q.task))
            self.finished.emit(WorkerOutcome(tuple(self._results), None, True, None))
            return
        if backend is None:
            log.error("%s", error)
            self.finished.emit(WorkerOutcome((), None, False, None, error))
            return
        self.backend_ready.emit(backend.name)
        with backend:
            try:
                outcome = run_and_report([q.task for q in self.queued], PausableBackend(backend, self.control),
                                         self.settings.run_settings(), model=self.settings.model or None,
                                         report_path=report_path(self.settings.output_folder),
                                         progress=self._on_result, frame_progress=self._on_frames,
                                         cancel=self.control.token)
            except OutputFolderBusy as exc:  # a colorize-batch (or another window) is writing there: nothing done
                log.error("%s", exc)
                self.finished.emit(WorkerOutcome((), backend.name, False, None, str(exc)))
                return
        counts = summarize(outcome.results)
        log.info("%d colorized, %d skipped, %d failed, %d cancelled; report: %s", counts["done"],
                 counts["skipped"], counts["failed"], counts["cancelled"], outcome.report)
        self.finished.emit(WorkerOutcome(outcome.results, backend.name, self.control.cancelled,
                                         str(outcome.report) if outcome.report else None))

    # ------------------------------------------------------------------ steps
    def _open(self) -> tuple[backends.Backend | None, str | None]:
        s = self.settings
        try:
            choice = self._choose_backend(s.backend) if self._choose_backend else s.backend
            if choice != s.backend:
                log.info("backend %s: %s is what can run here", s.backend, choice)
            return self._open_backend(s.model_path, choice, device=s.gpu, render_size=s.render_size or None,
                                      engine_progress=self.engine_progress.emit,
                                      engine_cancel=lambda: self.control.cancelled), None
        except (backends.BackendError, ContractError) as exc:
            return None, str(exc)
        except Exception as exc:  # a model file ONNX Runtime cannot read, a broken engine...
            log.exception("opening the backend failed")
            return None, f"could not open the model: {exc}"

    def _on_result(self, result: FileResult, *_counts) -> None:
        """Progress callback of the runtime (any thread): count and emit in one ordered sequence."""
        with self._lock:
            self._results.append(result)
            item_id = self._ids.get(result.input, 0)
            self.item_finished.emit(item_id, result, len(self._results), len(self.queued))

    def _on_frames(self, progress) -> None:
        """Frame progress of a video or frame folder (``VideoProgress``, the pipeline's thread)."""
        item_id = self._ids.get(progress.path)
        if item_id is None:
            return
        if item_id not in self._started:
            self._started.add(item_id)
            self.item_started.emit(item_id)
        self.item_progress.emit(item_id, progress)


def report_path(folder: Path, now: float | None = None) -> Path:
    """A report of its own for every run (``colorize-report-20250131-142501.json``): history is kept."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path = folder / f"colorize-report-{stamp}.json"
    n = 2
    while path.exists():
        path = folder / f"colorize-report-{stamp}-{n}.json"
        n += 1
    return path
