"""Helpers of the desktop app's tests: windows over a tiny model, slowed backends, photos, clips, drops."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported: no display needed

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from synthetic import synthetic_photo
from synthetic_media import write_clip

from colorizer.desktop.app.window import MainWindow
from colorizer.desktop.backends import ClosesOnExit, open_backend
from colorizer.desktop.backends.detect import detect_backends
from colorizer.gpu import GpuInfo

RUN_TIMEOUT_MS = 30_000
NO_GPU = dict(providers=["CPUExecutionProvider"], gpus=[], trt_modules=[])
TWO_GPUS = dict(providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
                gpus=[GpuInfo("NVIDIA RTX A4000", "8.6"), GpuInfo("NVIDIA GeForce RTX 4090", "8.9")], trt_modules=[])


def cpu_only():
    return detect_backends(**NO_GPU)


def two_gpus():
    return detect_backends(**TWO_GPUS)


class SlowBackend(ClosesOnExit):
    """The real CPU backend, slowed down so a run lasts long enough to pause or cancel it."""

    def __init__(self, backend, seconds: float) -> None:
        self.backend, self.seconds = backend, seconds
        self.name, self.contract = backend.name, backend.contract
        self.calls = 0

    def predict(self, x):
        self.calls += 1
        time.sleep(self.seconds)
        return self.backend.predict(x)

    def close(self):
        self.backend.close()


def slow_opener(seconds: float, opened: list | None = None):
    def opener(*args, **kwargs):
        if opened is not None:
            opened.append((args, kwargs))
        return SlowBackend(open_backend(*args, **kwargs), seconds)
    return opener


def make_window(qtbot, store, model=None, output=None, open_backend=None, detect=cpu_only, **settings) -> MainWindow:
    window = MainWindow(store, open_backend=open_backend, detect=detect)
    QTest.keyRelease(window, Qt.Key.Key_Control)  # a Ctrl+Z of an earlier test leaves Ctrl "held" for selectRow
    window.confirm_stop = lambda: True  # never a modal question in tests
    window.ask_film_or_photos = lambda folder, sequence: "photos"
    window.open_url = lambda url: False  # no file manager here
    qtbot.addWidget(window)
    window.backends.wait()
    qtbot.waitUntil(lambda: window.settings_panel.detection is not None, timeout=5000)
    if model is not None:
        s = replace(window.app_settings, model=str(model), output_dir=str(output), backend="cpu", render_size=32,
                    **settings)
        window.settings_panel.set_settings(s)
    return window


def slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, seconds: float, n: int) -> MainWindow:
    """A window writing to tmp_path/out through a backend slowed by ``seconds`` per call, ``n`` photos queued."""
    window = make_window(qtbot, store, model, tmp_path / "out", open_backend=slow_opener(seconds))
    stop_runs(window)
    photos(tmp_path / "in", n)
    window.add_paths([tmp_path / "in"])
    return window


def stop_all(windows) -> None:
    for w in windows:  # never leave a worker thread behind
        if w.running:
            w.cancel_run()
            deadline = time.monotonic() + 10
            while w.running and time.monotonic() < deadline:
                QApplication.processEvents()
                time.sleep(0.01)


def hint_window(qtbot, store, model, tmp_path, n: int = 2, open_backend=None, size=(60, 80)):
    """A shown window over the tiny model, ``n`` photos of ``size`` queued (the first selected), in
    hint mode, its preview ready: (window, its compare view, the photos)."""
    window = make_window(qtbot, store, model, tmp_path / "out", open_backend=open_backend)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    paths = photos(tmp_path / "in", n, size=size)
    window.add_paths(paths)
    view = window.compare.view
    qtbot.waitUntil(view.has_image, timeout=10_000)
    with qtbot.waitSignal(window.hints.preview_ready, timeout=20_000):
        window.hints.action.trigger()
    assert view.hint_mode() and window.hints.bar.isVisible()
    return window, view, paths


def photos(folder: Path, n: int, size=(40, 56), name: str = "p{:02d}.png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        gray = synthetic_photo(i, *size).mean(axis=2).astype(np.uint8)
        paths.append(folder / name.format(i))
        Image.fromarray(gray).save(paths[-1])
    return paths


def small_clip(path: Path, n: int = 8, w: int = 48, h: int = 32) -> Path:
    return write_clip(path, (synthetic_photo(i, h, w).mean(axis=2).astype(np.uint8) for i in range(n)))


def drop(widget, paths) -> bool:
    """A real drag-and-drop: QMimeData with file URLs, entered and dropped on ``widget``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    center = widget.rect().center()
    enter = QDragEnterEvent(center, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    event = QDropEvent(QPointF(center), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    return enter.isAccepted()


def files_in(folder: Path) -> list[Path]:
    """Outputs (and partial files, if any were left), reports and the run's own bookkeeping left out."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(("colorize-report",
                                                                                          ".colorize-")))


def reports_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("colorize-report*.json"))


def mouse(widget, kind: QEvent.Type, pos: QPointF, button=Qt.MouseButton.LeftButton) -> None:
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button if kind != QEvent.Type.MouseMove
                        else Qt.MouseButton.NoButton, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def click(widget, pos: QPointF) -> None:
    mouse(widget, QEvent.Type.MouseButtonPress, pos)
    mouse(widget, QEvent.Type.MouseButtonRelease, pos)
