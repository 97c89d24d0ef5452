"""One call at a time off the GUI thread, its result back on the GUI thread (the latest call's only).

Used where a queue of an archive makes ordinary work slow: planning the outputs of 20,000 rows for
Start, or naming the outputs of the films among them, opens every file again (seconds), which must
not freeze the window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Signals(QObject):
    done = Signal(int, object, object)  # call, result, exception (or None)


class BackgroundCall(QObject):
    """``call(work, then)``: ``work()`` on a pool thread, then ``then(result, error)`` on the GUI thread,
    ``error`` the exception ``work`` raised (None when it returned). :meth:`forget` drops the call in
    flight: its ``then`` is never called."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals()
        self._signals.done.connect(self._deliver)
        self._calls = 0
        self._then: Callable | None = None

    @property
    def busy(self) -> bool:
        return self._then is not None

    def call(self, work: Callable[[], object], then: Callable[[object, BaseException | None], None]) -> None:
        self._calls += 1
        self._then = then
        call = self._calls
        self._pool.start(lambda: self._run(call, work))

    def forget(self) -> None:
        self._calls += 1
        self._then = None

    def wait(self) -> None:
        self._pool.waitForDone()

    def _run(self, call: int, work: Callable[[], object]) -> None:
        try:
            result, error = work(), None
        except Exception as exc:  # carried to the GUI thread, which says what went wrong
            result, error = None, exc
        self._signals.done.emit(call, result, error)

    def _deliver(self, call: int, result, error) -> None:
        if call == self._calls and self._then is not None:
            then, self._then = self._then, None
            then(result, error)
