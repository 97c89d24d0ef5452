"""Ordinary use, repeated: the app must survive thousands of Qt calls (in a child, so an abort fails a test).

With PySide6 6.12.0 on Python 3.11 the window aborted (``none_dealloc``) after about 480 drags of
the before/after line and in the middle of film runs. ``test_qt_refcount.py`` measures the cause;
these run what the user did: thousands of drags, wheel turns and repaints of the compare view, and
a whole film run through the real ``colorizer`` command, each in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="the gui extra (PySide6) is not installed")

TESTS = Path(__file__).parent
MOVES = 3000

_DRAG_CHILD = textwrap.dedent(f"""
    from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
    from PySide6.QtGui import QColor, QImage, QMouseEvent, QWheelEvent
    from PySide6.QtWidgets import QApplication
    from colorizer.desktop.app.compare_view import CompareView

    app = QApplication([])
    view = CompareView()
    view.resize(300, 150)
    left, right = QImage(100, 50, QImage.Format.Format_RGB888), QImage(100, 50, QImage.Format.Format_RGB888)
    left.fill(QColor("#ff0000")); right.fill(QColor("#0000ff"))
    view.set_images(left, right)
    view.show()

    def mouse(kind, x, y, button=Qt.MouseButton.LeftButton):
        held = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
        QApplication.sendEvent(view, QMouseEvent(kind, QPointF(x, y), view.mapToGlobal(QPointF(x, y)),
                                                 button, held, Qt.KeyboardModifier.NoModifier))

    mouse(QEvent.Type.MouseButtonPress, 150, 75)  # the split line
    for i in range({MOVES}):
        mouse(QEvent.Type.MouseMove, 20 + (i * 7) % 260, 75)
        view.repaint()
    mouse(QEvent.Type.MouseButtonRelease, 100, 75)
    for i in range({MOVES} // 3):
        delta = 120 if (i // 20) % 2 == 0 else -120
        QApplication.sendEvent(view, QWheelEvent(QPointF(150, 75), view.mapToGlobal(QPointF(150, 75)), QPoint(),
                                                 QPoint(0, delta), Qt.MouseButton.NoButton,
                                                 Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))
        view.repaint()
    for i in range({MOVES}):  # hover: no button
        mouse(QEvent.Type.MouseMove, 20 + (i * 13) % 260, 20 + i % 110, Qt.MouseButton.NoButton)
    app.processEvents()
    view.close()
    print("ok", round(view.split(), 3), flush=True)
""")


def _child_env(home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    if home is not None:  # the app's settings and default output folder: never the user's
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    return env


def test_thousands_of_drags_wheel_turns_and_repaints_of_the_compare_view():
    result = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _DRAG_CHILD], capture_output=True,
                            text=True, timeout=300, env=_child_env())
    assert result.returncode == 0, f"the view died (exit {result.returncode}):\n{result.stderr[-3000:]}"
    assert result.stdout.startswith("ok")


def test_a_film_and_photos_run_through_the_window_to_the_end(tmp_path):
    from app_helpers import photos, small_clip

    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (tmp_path / "in").mkdir()
    film = small_clip(tmp_path / "in" / "reel.mp4", n=48)
    stills = photos(tmp_path / "in", 3)
    result = subprocess.run([sys.executable, "-X", "faulthandler", "-m", "colorizer.desktop.app.main", "--run-and-quit",
                             str(film), *map(str, stills)],
                            capture_output=True, text=True, timeout=600, env=_child_env(home))
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout[-1000:]}\n{result.stderr[-3000:]}"
    reports = list((home / "Pictures" / "Colorized").glob("colorize-report-*.json"))
    assert len(reports) == 1
    files = json.loads(reports[0].read_text())["files"]
    assert sorted(f["status"] for f in files) == ["done"] * 4
