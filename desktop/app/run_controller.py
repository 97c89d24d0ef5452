"""One run at a time: the worker thread, pause/resume/cancel/close through :mod:`.run_state`, and the
run's progress (:class:`RunClock`), on the GUI thread.

The window asks (``start``, ``pause``, ``resume``, ``cancel``, ``close``); the controller moves the
state machine, sets the worker's :class:`RunControl` and re-emits the worker's signals on the GUI
thread after updating the clock. Whatever the window asked meanwhile, the worker's end always
brings the state back to idle, and a close asked at any point closes the window once it has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Qt, QThread, Signal

from colorizer.desktop.app.run_clock import RunClock
from colorizer.desktop.app.run_state import (
    ACTIVE,
    CANCELLING,
    CLOSING,
    IDLE,
    PAUSED,
    PAUSING,
    RUNNING,
    RunState,
    RunStateMachine,
)
from colorizer.desktop.app.settings import AppSettings
from colorizer.desktop.app.worker import OpenBackend, QueuedTask, RunControl, RunWorker, WorkerOutcome
from colorizer.desktop.pipeline.report import FileResult

log = logging.getLogger(__name__)
QUEUED = Qt.ConnectionType.QueuedConnection


class RunController(QObject):
    state_changed = Signal(object, object)  # old, new RunState
    backend_ready = Signal(str)
    engine_progress = Signal(str, int, int)
    item_started = Signal(int)
    item_progress = Signal(int, object)  # item id, VideoProgress
    item_finished = Signal(int, object, int, int)  # item id, FileResult, finished, total
    finished = Signal(object)  # WorkerOutcome; the state is idle again when it is emitted
    _gate_reached = Signal()  # from a pipeline thread: the run waits at the pause gate

    def __init__(self, open_backend: OpenBackend | None = None,
                 choose_backend: Callable[[str], str] | None = None, parent=None) -> None:
        super().__init__(parent)
        self._open_backend = open_backend
        self._choose_backend = choose_backend
        self.machine = RunStateMachine(self)
        self.machine.changed.connect(self.state_changed)
        self._gate_reached.connect(self._at_gate, QUEUED)
        self.thread: QThread | None = None
        self.worker: RunWorker | None = None
        self.control: RunControl | None = None
        self.clock: RunClock | None = None
        self.queued: list[QueuedTask] = []
        self.close_when_done = False

    @property
    def state(self) -> RunState:
        return self.machine.state

    @property
    def busy(self) -> bool:
        return self.machine.busy

    # ------------------------------------------------------------------ requests (GUI thread)
    def start(self, queued: Sequence[QueuedTask], settings: AppSettings) -> bool:
        if not self.machine.can(RUNNING) or not queued:
            return False
        self.queued = list(queued)
        self.control = RunControl(on_gate=self._gate_reached.emit)
        self.worker = RunWorker(self.queued, settings, self.control, self._open_backend, self._choose_backend)
        self.thread = QThread(self)
        self.worker.moveToThread(self.thread)
        w = self.worker
        w.backend_ready.connect(self.backend_ready, QUEUED)
        w.engine_progress.connect(self.engine_progress, QUEUED)
        w.item_started.connect(self.item_started, QUEUED)
        w.item_progress.connect(self._item_progress, QUEUED)
        w.item_finished.connect(self._item_finished, QUEUED)
        w.finished.connect(self._worker_finished, QUEUED)
        self.thread.started.connect(w.run)
        self.clock = RunClock(len(self.queued))
        self.close_when_done = False
        self.machine.go(RUNNING)
        self.thread.start()
        return True

    def pause(self) -> bool:
        if not self.machine.go(PAUSING):
            return False
        self.control.pause()
        self.clock.pause(True)
        return True

    def resume(self) -> bool:
        if self.state not in (PAUSING, PAUSED) or not self.machine.go(RUNNING):
            return False
        self.control.resume()
        self.clock.pause(False)
        return True

    def cancel(self) -> bool:
        """Stop after the files being written; the rest is cancelled."""
        if self.state not in ACTIVE or not self.machine.go(CANCELLING):
            return False
        self._stop()
        log.info("cancel requested")
        return True

    def close(self) -> bool:
        """True: nothing runs, close now. False: the run is stopping and the window closes after it."""
        if self.state == IDLE:
            return True
        if self.state != CLOSING:
            self.machine.go(CLOSING)
            self._stop()
        self.close_when_done = True
        return False

    def _stop(self) -> None:
        self.control.cancel()
        self.clock.pause(False)

    # ------------------------------------------------------------------ the worker's signals
    def _at_gate(self) -> None:
        if self.state == PAUSING:
            self.machine.go(PAUSED)

    def _item_progress(self, item_id: int, progress) -> None:
        if self.clock is not None:
            self.clock.film_progress(item_id, progress)
        self.item_progress.emit(item_id, progress)

    def _item_finished(self, item_id: int, result: FileResult, finished: int, total: int) -> None:
        if self.clock is not None:
            self.clock.add(result, item_id)
        self.item_finished.emit(item_id, result, finished, total)

    def _worker_finished(self, outcome: WorkerOutcome) -> None:
        self.thread.quit()
        self.thread.wait()
        self.worker.deleteLater()
        self.thread.deleteLater()
        self.thread = self.worker = self.control = None
        if self.clock is not None:
            self.clock.stop()
        self.machine.go(IDLE)
        self.finished.emit(outcome)
