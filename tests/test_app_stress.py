"""Ordinary use, repeated: the app must survive thousands of Qt calls (in a child, so an abort fails a test).

With PySide6 6.12.0 on Python 3.11 the window aborted (``none_dealloc``) after about 480 drags of
the before/after line and in the middle of film runs. ``test_qt_refcount.py`` measures the cause;
these run what the user did: thousands of drags, wheel turns and repaints of the compare view, a
thousand edits in hint mode while its preview recomputes, and a whole film run through the real
``colorizer`` command, each in a child process.
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


_HINTS_CHILD = textwrap.dedent("""
    import random, sys, time
    from pathlib import Path
    from dataclasses import replace
    from PySide6.QtCore import QEvent, QPointF, QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    from app_helpers import cpu_only, mouse, photos
    from colorizer.desktop.app.window import MainWindow
    from colorizer.hints import read_photo_hints, sidecar_path

    model, tmp, edits = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    app = QApplication([])
    window = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat), detect=cpu_only)
    window.confirm_stop = lambda: True
    window.backends.wait()
    def until(test, seconds=20):
        end = time.monotonic() + seconds
        while not test():
            if time.monotonic() > end:
                raise SystemExit("timed out")
            app.processEvents(); time.sleep(0.005)
    until(lambda: window.settings_panel.detection is not None)
    window.settings_panel.set_settings(replace(window.app_settings, model=str(model), output_dir=str(tmp / "out"),
                                               backend="cpu", render_size=32))
    window.resize(1000, 700); window.show()
    paths = photos(tmp / "in", 2, size=(60, 80))
    window.add_paths(paths)
    view, editor = window.compare.view, window.hints
    until(view.has_image)
    editor.action.trigger()
    until(lambda: view.hint_preview() is not None)
    rng = random.Random(0)
    for i in range(edits):
        x, y = rng.uniform(-5, 85), rng.uniform(-5, 65)  # a few outside the photo
        kind = rng.random()
        if kind < 0.4 or not editor.points:
            pos = view.photo_to_view(x, y)
            mouse(view, QEvent.Type.MouseButtonPress, pos); mouse(view, QEvent.Type.MouseButtonRelease, pos)
        elif kind < 0.7:
            p = rng.choice(editor.points)
            mouse(view, QEvent.Type.MouseButtonPress, view.photo_to_view(p.x, p.y))
            for _ in range(rng.randint(1, 5)):
                mouse(view, QEvent.Type.MouseMove, view.photo_to_view(rng.uniform(0, 79), rng.uniform(0, 59)))
            mouse(view, QEvent.Type.MouseButtonRelease, view.photo_to_view(rng.uniform(0, 79), rng.uniform(0, 59)))
        elif kind < 0.8:
            view.setFocus(); QTest.keyClick(view, Qt.Key.Key_Delete)
        elif kind < 0.9:
            QTest.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        else:
            QTest.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        if i % 7 == 0:
            app.processEvents()
    until(lambda: view.hint_preview() is not None)
    side = sidecar_path(paths[0])
    saved = [(q.x, q.y) for q in read_photo_hints(side).points] if side.exists() else []
    assert saved == [(q.x, q.y) for q in editor.points], (saved, editor.points)
    window.hints.action.trigger()
    window.close(); app.processEvents()
    print("ok", len(editor.points), editor.stack.count(), flush=True)
""")


def test_a_thousand_edits_in_hint_mode_while_the_preview_recomputes(model, tmp_path):
    result = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _HINTS_CHILD, str(model), str(tmp_path),
                             "1000"], capture_output=True, text=True, timeout=600, env=_child_env(tmp_path / "home"))
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout[-1000:]}\n{result.stderr[-3000:]}"
    assert result.stdout.startswith("ok")


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
