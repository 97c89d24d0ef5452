"""The installed PySide6 must keep Python's reference counts (6.12.0 on Python 3.11 did not: the app aborted).

A broken binding takes a reference off ``None`` on each void Qt call and off ``True`` on each bool
signal; the app aborts once a count reaches zero. The measurement runs in a child process, which
holds a million extra references to each so that a broken binding is measured, not crashed, and
leaves with ``os._exit`` before the interpreter's finalization would notice the deficit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("PySide6.QtGui", reason="the gui extra (PySide6) is not installed")

CALLS = 20_000

_CHILD = textwrap.dedent(f"""
    import os, sys
    from PySide6.QtCore import QCoreApplication, QObject, Signal
    from PySide6.QtGui import QColor
    pinned = [None] * 1_000_000, [True] * 1_000_000
    app = QCoreApplication([])

    class Emitter(QObject):
        changed = Signal(bool)

    emitter = Emitter()
    emitter.changed.connect(lambda value: None)
    color = QColor(1, 2, 3)
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range({CALLS}):
        color.setRed(5)
    for _ in range({CALLS}):
        emitter.changed.emit(True)
    print(sys.getrefcount(None) - before[0], sys.getrefcount(True) - before[1], flush=True)
    os._exit(0)
""")


def test_void_qt_calls_and_bool_signals_keep_the_reference_counts():
    result = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr[-2000:]
    none_delta, true_delta = (int(v) for v in result.stdout.split())
    from PySide6 import __version__

    # A sound binding moves the counts by a few (other objects come and go); a broken one by -CALLS.
    assert abs(none_delta) < CALLS // 10, f"PySide6 {__version__}: None lost {-none_delta} refs in {CALLS} calls"
    assert abs(true_delta) < CALLS // 10, f"PySide6 {__version__}: True lost {-true_delta} refs in {CALLS} emits"


def test_the_app_probe_accepts_the_installed_pyside():
    from colorizer.desktop.app.qt_check import pyside_refcount_problem

    assert pyside_refcount_problem() is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12: nothing to refuse")
def test_the_app_refuses_a_binding_that_loses_references(monkeypatch):
    from colorizer.desktop.app import qt_check

    monkeypatch.setattr(qt_check, "_none_references_lost", lambda calls: calls)
    problem = qt_check.pyside_refcount_problem()
    assert problem is not None and "cannot start" in problem and "!=6.12.0" in problem
