"""Whether the installed PySide6 keeps Python's reference counts: a broken one crashes the app later.

PySide6 6.12.0 on Python 3.11 takes a reference off ``None`` on every Qt call that returns nothing
(and off ``True`` on some signals): after a few thousand calls — dragging the before/after line,
a film run's progress, quitting — the interpreter aborts with ``none_dealloc``, the window gone
without a word. From Python 3.12 on, ``None`` is immortal and its count does not matter.

:func:`pyside_refcount_problem` measures instead of trusting a list of versions: a few void Qt
calls on a ``QColor`` (no ``QApplication`` needed) must leave ``sys.getrefcount(None)`` where it
was. The app calls it before it opens its window; ``tests/test_qt_refcount.py`` runs the same
measurement so that the next broken release fails the suite instead of a user's archive run.
"""

from __future__ import annotations

import sys

PROBE_CALLS = 256
"""Void calls measured: 1 ms; a broken binding loses one reference per call, a sound one none."""


def _none_references_lost(calls: int = PROBE_CALLS) -> int:
    """References to ``None`` lost over ``calls`` void Qt calls (0 for a sound PySide6)."""
    from PySide6.QtGui import QColor

    color = QColor(1, 2, 3)
    before = sys.getrefcount(None)
    for _ in range(calls):
        color.setRed(5)  # returns void: the binding hands back None
    return before - sys.getrefcount(None)


def pyside_refcount_problem(calls: int = PROBE_CALLS) -> str | None:
    """Why this PySide6 would crash the app, with the fix; None when it keeps the counts."""
    if sys.version_info >= (3, 12):  # None and True are immortal: a lost reference cannot crash
        return None
    lost = _none_references_lost(calls)
    if lost < calls // 2:  # a sound binding: 0 (other code may move the count by a few)
        return None
    from PySide6 import __version__ as pyside_version

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return (f"Colorizer's window cannot start: PySide6 {pyside_version} on Python {python} loses a reference to "
            f"None on every Qt call ({lost} in {calls} calls), which crashes the app after a few thousand.\n"
            "Install a PySide6 that keeps the count (6.11.3 does), e.g.:\n"
            '  pip install "PySide6-Essentials>=6.6,!=6.12.0"\n'
            "or use Python 3.12 or newer.")
