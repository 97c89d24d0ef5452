"""Warnings belong to the file they are about.

A warning logged by Colorizer's code while a file is worked on -- in any thread that says so with
:meth:`FileWarnings.working_on` -- names the file in the log (most warnings of the media code know no
path: a damaged EXIF block dropped, a JPEG marker too large to keep) and goes into that file's report
entry (:attr:`.report.FileResult.warnings`, through :meth:`FileWarnings.attach`). Threads do not inherit
the file they were started for: start them in a copy of the starting thread's context
(``contextvars.copy_context().run``). Ray's workers are other processes: each stage there collects its
file's warnings (:meth:`FileWarnings.take`) and sends them on with the file's row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path

from colorizer.desktop.pipeline.report import FileResult

_current: ContextVar[tuple[Path, FileWarnings] | None] = ContextVar("colorizer_file", default=None)


class FileWarnings:
    """The warnings of each file of a run, as they are logged (thread-safe)."""

    def __init__(self) -> None:
        self._notes: dict[Path, list[str]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def working_on(self, source: Path) -> Iterator[None]:
        """Warnings logged in this thread (and the threads it starts in its context) are ``source``'s."""
        token = _current.set((Path(source), self))
        try:
            yield
        finally:
            _current.reset(token)

    def attach(self, result: FileResult) -> FileResult:
        """``result`` with the warnings logged for its input (they are handed out once)."""
        notes = self.take(result.input)
        return replace(result, warnings=(*result.warnings, *notes)) if notes else result

    def take(self, source: Path) -> tuple[str, ...]:
        """The warnings logged for ``source`` so far (handed out once)."""
        with self._lock:
            return tuple(self._notes.pop(Path(source), ()))

    def _add(self, source: Path, message: str) -> None:
        with self._lock:
            self._notes.setdefault(source, []).append(message)


def _attribute(record: logging.LogRecord) -> None:
    current = _current.get()
    if current is None or not isinstance(record.levelno, int) or record.levelno < logging.WARNING \
            or not str(record.name).startswith("colorizer."):  # (logging.makeLogRecord makes one of no level)
        return
    source, warnings = current
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it as it always does
        return
    if str(source) not in message:  # the log line names the file it is about
        record.msg, record.args = f"{source}: {message}", ()
        message = record.msg
    warnings._add(source, message)


def _install() -> None:
    make = logging.getLogRecordFactory()
    if getattr(make, "colorizer_file_warnings", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _attribute(record)
        return record

    factory.colorizer_file_warnings = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install()
