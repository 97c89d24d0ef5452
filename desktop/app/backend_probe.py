"""Which backends can run here, found once per launch on a background thread.

The window shows the answer when it comes (``ready``); a run started before it came waits for it
on the worker thread (:meth:`BackendProbe.wait`), never on the GUI thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from colorizer.desktop.backends.detect import Detection, detect_backends, resolve_choice

log = logging.getLogger(__name__)

WAIT_S = 60.0


class BackendProbe(QObject):
    ready = Signal(object)  # Detection, on the GUI thread

    def __init__(self, detect: Callable[[], Detection] | None = None, parent=None) -> None:
        super().__init__(parent)
        self._detect = detect or detect_backends
        self._done = threading.Event()
        self.detection: Detection | None = None
        self._thread = threading.Thread(target=self._run, name="colorizer-detect-backends", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.detection = self._detect()
            log.debug("backends: %s", self.detection)
        except Exception:  # detection is advice: without it every choice stays offered
            log.exception("looking for GPUs failed")
        self._done.set()
        if self.detection is not None:
            with contextlib.suppress(RuntimeError):  # the window is gone
                self.ready.emit(self.detection)

    def wait(self, timeout: float = WAIT_S) -> Detection | None:
        self._done.wait(timeout)
        return self.detection

    def choose(self, requested: str) -> str:
        """The choice to open for ``requested`` (any thread; may wait for the detection)."""
        return resolve_choice(requested, self.wait())
