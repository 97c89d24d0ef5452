"""Adding an archive to the queue without freezing the window.

A dropped folder of thousands of scans takes seconds to list and plan (every file is opened to see
what it is; minutes on a network share). :class:`QueueFiller` does that on a pool thread, one folder
of the tree at a time (:func:`~colorizer.desktop.app.inputs.collect_in_chunks`, each new row's hints
counted there too), and the rows come to the GUI thread in chunks (what was found gathered: at most
``chunk`` items, sent at least every :data:`FLUSH_S`), one chunk per turn of the event loop, so the
window repaints, scrolls and answers between them. Drops
made while one is being added wait their turn (the queue keeps the order they were made in);
:meth:`QueueFiller.cancel` (Clear, closing the window) stops the adding in progress.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from colorizer.desktop.app.inputs import Refused, collect_frames, collect_in_chunks, with_hint_counts
from colorizer.desktop.app.queue_model import QueueItem, QueueModel

log = logging.getLogger(__name__)

ADD_CHUNK = 500  # rows added to the queue per turn of the event loop
FLUSH_S = 0.25  # what was found is sent on at least this often (a slow share: rows keep coming)


@dataclass
class AddSummary:
    """What one drop (or several made while adding) came to."""

    added: list[QueueItem] = field(default_factory=list)
    already: int = 0  # items found that were queued already
    refused: Refused = field(default_factory=list)

    def add(self, found: int, added: list[QueueItem], refused: Refused) -> None:
        self.added += added
        self.already += found - len(added)
        self.refused += refused


def _found_in(inputs: list[tuple[Path, bool]], cancel: threading.Event):
    """(items, refused) of each input, a folder's a run of files at a time (see :func:`collect_in_chunks`)."""
    for path, film in inputs:
        if cancel.is_set():
            return
        yield from [collect_frames(path)] if film else collect_in_chunks([path], cancel.is_set)


class _Signals(QObject):
    found = Signal(int, list, list)  # job, items, refused
    done = Signal(int)  # job


class QueueFiller(QObject):
    """``add(inputs)``: (path, as a film) pairs listed and planned on a pool thread, their rows put in
    ``queue`` in chunks on the GUI thread (``rows_added`` after each); ``finished`` with the
    :class:`AddSummary` of everything added since the filler was last idle."""

    rows_added = Signal(list)  # list[QueueItem], one chunk
    finished = Signal(object)  # AddSummary

    def __init__(self, queue: QueueModel, parent=None, chunk: int = ADD_CHUNK) -> None:
        super().__init__(parent)
        self.queue = queue
        self.chunk = chunk
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # drops are listed in the order they were made
        self._signals = _Signals()
        self._signals.found.connect(self._found)
        self._signals.done.connect(self._done)
        self._job = 0  # the current generation: what a cancel leaves behind is not added
        self._jobs_left = 0
        self._cancel = threading.Event()
        self._incoming: deque[tuple[list[QueueItem], Refused]] = deque()
        self._drain = QTimer(self, singleShot=True, interval=0)
        self._drain.timeout.connect(self._add_chunk)
        self.summary = AddSummary()

    @property
    def busy(self) -> bool:
        """Whether files are still being listed or rows still being added."""
        return self._jobs_left > 0 or bool(self._incoming)

    def added_so_far(self) -> int:
        return len(self.summary.added)

    def add(self, inputs: Sequence[tuple[Path, bool]]) -> None:
        """List and plan ``inputs`` (each a path, and whether it is a folder of frames taken as one film)."""
        self._jobs_left += 1
        job, cancel = self._job, self._cancel
        self._pool.start(lambda: self._collect(job, cancel, list(inputs)))

    def cancel(self) -> None:
        """Stop listing, and add nothing more of what was dropped so far."""
        self._cancel.set()
        self._cancel = threading.Event()
        self._job += 1
        self._jobs_left = 0
        self._incoming.clear()
        self._drain.stop()
        self.summary = AddSummary()

    def wait(self) -> None:
        self._pool.waitForDone()

    # ------------------------------------------------------------------ the pool's thread
    def _collect(self, job: int, cancel: threading.Event, inputs: list[tuple[Path, bool]]) -> None:
        """What ``inputs`` hold, sent on in chunks: at most ``chunk`` items, at least every FLUSH_S (a drop
        of 5,000 single files is 10 chunks, not 5,000 signals; a slow share still shows rows as it goes)."""
        items: list[QueueItem] = []
        refused: Refused = []
        sent = time.monotonic()
        try:
            for found, why in _found_in(inputs, cancel):
                if cancel.is_set():
                    return
                items += found
                refused += why
                if len(items) >= self.chunk or time.monotonic() - sent >= FLUSH_S:
                    self._send(job, items, refused)
                    items, refused, sent = [], [], time.monotonic()
            self._send(job, items, refused)
        except Exception as exc:  # a folder that vanished mid-way: said, never raised into the pool
            log.warning("listing %s stopped: %s", inputs[0][0] if inputs else "?", exc)
            log.debug("listing failed", exc_info=True)
        finally:
            self._signals.done.emit(job)

    def _send(self, job: int, items: list[QueueItem], refused: Refused) -> None:
        for start in range(0, len(items), self.chunk):
            self._signals.found.emit(job, with_hint_counts(items[start : start + self.chunk]),
                                     refused if start == 0 else [])
        if refused and not items:
            self._signals.found.emit(job, [], refused)

    # ------------------------------------------------------------------ back on the GUI thread
    def _found(self, job: int, items: list, refused: list) -> None:
        if job == self._job:
            self._incoming.append((items, refused))
            self._drain.start()

    def _done(self, job: int) -> None:
        if job == self._job:
            self._jobs_left -= 1
            self._drain.start()

    def _add_chunk(self) -> None:
        """One chunk into the queue (the next comes on the next turn of the event loop)."""
        if self._incoming:
            items, refused = self._incoming.popleft()
            added = self.queue.add(items)
            self.summary.add(len(items), added, refused)
            if added:
                self.rows_added.emit(added)
        if self._incoming:
            self._drain.start()
        elif self._jobs_left == 0:
            summary, self.summary = self.summary, AddSummary()
            self.finished.emit(summary)
