"""The run's states and the only transitions between them; every path of the window goes through here.

    idle ──start──▶ running ──pause──▶ pausing ──at the gate──▶ paused
      ▲               ▲  ◀────resume────┘ ◀────────resume─────────┘
      │               └─(running, pausing, paused)──cancel──▶ cancelling
      │               └─(running, pausing, paused, cancelling)──close──▶ closing
      └──────────────── the worker has finished (from any state but idle) ──┘

``closing`` is ``cancelling`` with the window closing once the worker has finished. A request that
does not fit the current state (cancel while idle, a second close, resume after a cancel...) is
refused and changes nothing, so no sequence of clicks, keys and late signals can leave the window
in a state it cannot leave.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from colorizer.desktop.core import TextEnum

log = logging.getLogger(__name__)


class RunState(TextEnum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSING = "pausing"  # pause asked; the batch in progress is finishing
    PAUSED = "paused"  # the run waits at the pause gate
    CANCELLING = "cancelling"  # the files being written are finishing; the rest is cancelled
    CLOSING = "closing"  # cancelling, and the window closes when the worker has finished


IDLE, RUNNING, PAUSING, PAUSED, CANCELLING, CLOSING = RunState
ACTIVE = frozenset({RUNNING, PAUSING, PAUSED})  # a run that may still be paused, resumed or cancelled

_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    IDLE: frozenset({RUNNING}),
    RUNNING: frozenset({PAUSING, CANCELLING, CLOSING, IDLE}),
    PAUSING: frozenset({PAUSED, RUNNING, CANCELLING, CLOSING, IDLE}),
    PAUSED: frozenset({RUNNING, CANCELLING, CLOSING, IDLE}),
    CANCELLING: frozenset({CLOSING, IDLE}),
    CLOSING: frozenset({IDLE}),
}


class RunStateMachine(QObject):
    changed = Signal(object, object)  # old RunState, new RunState

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._state = IDLE
        self.history: list[RunState] = [IDLE]

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def busy(self) -> bool:
        """A worker is running (any state but idle)."""
        return self._state != IDLE

    def can(self, new: RunState) -> bool:
        return new in _TRANSITIONS[self._state]

    def go(self, new: RunState) -> bool:
        """Move to ``new`` if the transition exists; False (and nothing changes) otherwise."""
        if not self.can(new):
            log.debug("run state: %s -> %s refused", self._state, new)
            return False
        old, self._state = self._state, new
        self.history.append(new)
        self.changed.emit(old, new)
        return True
