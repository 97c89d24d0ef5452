"""The desktop app (PySide6) with pytest-qt, offscreen, through a tiny exported model on the CPU."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported: no display needed

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

pytest_plugins = ["app_fixtures"]  # the fixtures model, store, stop_runs

import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from app_helpers import (  # noqa: E402
    RUN_TIMEOUT_MS,
    drop,
    files_in,
    make_window,
    photos,
    reports_in,
    slow_window_with_photos,
    small_clip,
)
from PIL import Image  # noqa: E402
from PySide6.QtCore import QEvent, QPoint, QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage, QMouseEvent, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QPushButton  # noqa: E402
from synthetic import synthetic_photo  # noqa: E402

from colorizer.desktop.app import settings as app_settings  # noqa: E402
from colorizer.desktop.app.compare_view import CompareView  # noqa: E402
from colorizer.desktop.backends import BackendError  # noqa: E402


# --------------------------------------------------------------------------- queue
def test_dropping_files_and_folders_queues_photos_and_refuses_the_rest(qtbot, store, tmp_path):
    window = make_window(qtbot, store)
    folder = tmp_path / "scans"
    photos(folder / "sub", 2)
    photos(folder, 1)
    (folder / "notes.txt").write_text("ignored inside a folder")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    single = photos(tmp_path / "single", 1)[0]
    text = tmp_path / "readme.txt"
    text.write_text("not a photo")

    assert drop(window.drop_zone, [folder])
    items = window.queue.items()
    assert sorted(i.source.name for i in items) == ["p00.png", "p00.png", "p01.png"]
    assert {i.kind for i in items} == {"image"} and {i.root for i in items} == {folder}
    assert [p.name for p, _ in window.last_refused] == ["broken.jpg"]  # notes.txt in a folder: not ours, ignored

    assert drop(window.drop_zone, [single, text])
    assert window.queue.rowCount() == 4
    assert [p.name for p, _ in window.last_refused] == ["readme.txt"]
    assert "not an image" in window.last_refused[0][1]
    message = window.statusBar().currentMessage()
    assert "Added 1 item" in message and "refused 1" in message and "readme.txt" in message

    assert drop(window, [folder])  # the window accepts drops too; already queued files are not added twice
    assert window.queue.rowCount() == 4 and "already queued" in window.statusBar().currentMessage()
    index = window.queue.index(0, 1)
    assert window.queue.data(index) == "image"

    window.table.selectRow(0)
    window.remove_selected()
    assert window.queue.rowCount() == 3
    window.clear_queue()
    assert window.queue.rowCount() == 0


def test_shortcuts(qtbot, store):
    window = make_window(qtbot, store)
    keys = {a.text(): [s.toString() for s in a.shortcuts()] for a in window.actions()}
    assert keys["Add files…"] == ["Ctrl+O"]
    assert keys["Add folder…"] == ["Ctrl+Shift+O"]
    assert "Ctrl+Return" in keys["Start"]
    assert keys["Cancel"] == ["Esc"]
    assert keys["Quit"] == ["Ctrl+Q"]


# --------------------------------------------------------------------------- runs
def test_run_writes_outputs_reports_progress_in_order_and_shows_errors(qtbot, store, tmp_path, model, stop_runs):
    out = tmp_path / "out"
    window = make_window(qtbot, store, model, out)
    stop_runs(window)
    photos(tmp_path / "in", 3)
    good = (tmp_path / "in" / "p00.png").read_bytes()
    (tmp_path / "in" / "truncated.png").write_bytes(good[: len(good) // 2])
    window.add_paths([tmp_path / "in"])
    assert window.queue.rowCount() == 4
    seen = []
    window.item_finished.connect(lambda item_id, result, done, total: seen.append((done, total, result.status)))

    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        window.start_action.trigger()
        assert window.running and not window.start_action.isEnabled()
    outcome = blocker.args[0]
    assert [(d, t) for d, t, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]  # in order, all before the end
    assert sorted(s for _, _, s in seen) == ["done", "done", "done", "failed"]
    assert not window.running and window.start_action.isEnabled()
    assert [p.name for p in files_in(out)] == ["p00.png", "p01.png", "p02.png"]
    assert [str(p) for p in reports_in(out)] == [outcome.report]
    assert window.settings_panel.backend_in_use.text() == "onnxruntime-cpu" == outcome.backend
    rows = {i.source.name: i for i in window.queue.items()}
    assert rows["truncated.png"].status == "failed" and "truncated.png" in rows["truncated.png"].message
    assert rows["p01.png"].status == "done" and rows["p01.png"].output == out / "p01.png"
    assert rows["p01.png"].progress == 1.0
    assert window.overall.value() == window.overall.maximum() and "took" in window.eta_label.text()
    assert window.overall.format() == "4 of 4 · 3 done · 1 failed"

    window.table.selectRow(1)  # the viewer loads the original and the result
    qtbot.waitUntil(lambda: window.compare.view.has_result(), timeout=5000)

    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as again:
        window.start()  # again: only the failed item is run
    assert [Path(r.input).name for r in again.args[0].results] == ["truncated.png"]
    assert len(reports_in(out)) == 2  # one report per run: the first one is kept


def test_cancel_stops_and_leaves_no_partial_file(qtbot, store, tmp_path, model, stop_runs):
    out = tmp_path / "out"
    window = slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, 0.15, 16)
    window.item_finished.connect(lambda *_: window.cancel_action.trigger())
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        window.start()
    outcome = blocker.args[0]
    statuses = [r.status for r in outcome.results]
    assert outcome.cancelled and len(statuses) == 16
    assert "cancelled" in statuses and "done" in statuses
    written = files_in(out)
    assert not [p for p in written if ".partial-" in p.name]
    assert len(written) == statuses.count("done")
    assert {i.status for i in window.queue.items()} <= {"done", "cancelled"}
    assert "Cancelled" in window.statusBar().currentMessage()


def test_pause_holds_the_run_until_resumed(qtbot, store, tmp_path, model, stop_runs):
    out = tmp_path / "out"
    window = slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, 0.01, 4)
    finished = []
    window.item_finished.connect(lambda *args: finished.append(args))
    window.start()
    window.pause_action.trigger()
    assert window.pause_action.isChecked() and window.pause_action.text() == "Resume"
    qtbot.wait(400)
    qtbot.waitUntil(lambda: window.state == "paused", timeout=5000)
    assert finished == [] and window.running and "paused" in window.eta_label.text()
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.pause_action.trigger()
    assert len(finished) == 4 and len(files_in(out)) == 4


def test_closing_during_a_run_cancels_and_waits(qtbot, store, tmp_path, model, stop_runs):
    out = tmp_path / "out"
    window = slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, 0.1, 12)
    window.show()
    window.start()
    qtbot.waitSignal(window.item_finished, timeout=RUN_TIMEOUT_MS).wait()
    thread = window.runs.thread
    assert not window.close()  # asks (answered yes here), cancels, and stays open until the run has stopped
    assert window.isVisible() and window.state == "closing"
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)
    assert not window.running and thread is not None
    assert not [p for p in files_in(out) if ".partial-" in p.name]


def test_engine_build_dialog_cancels_the_build(qtbot, store, tmp_path, model, stop_runs):
    calls = {}

    def building_opener(model, backend, render_size=None, engine_progress=None, engine_cancel=None, **_):
        engine_progress("Building engine", 1, 4)
        deadline = time.monotonic() + 10
        while not engine_cancel() and time.monotonic() < deadline:
            time.sleep(0.01)
        calls["cancelled"] = engine_cancel()
        raise BackendError("engine build cancelled")

    window = make_window(qtbot, store, model, tmp_path / "out", open_backend=building_opener)
    stop_runs(window)
    window.add_paths(photos(tmp_path / "in", 2))
    window.start()
    qtbot.waitUntil(lambda: window._engine_dialog is not None and window._engine_dialog.isVisible(), timeout=5000)
    assert window._engine_dialog.maximum() == 4 and "Building engine" in window._engine_dialog.labelText()
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        window._engine_dialog.findChild(QPushButton).click()  # the dialog's Cancel button
    assert calls["cancelled"] and blocker.args[0].cancelled and blocker.args[0].error is None
    assert {i.status for i in window.queue.items()} == {"cancelled"}
    assert window._engine_dialog is None


def test_a_model_that_cannot_be_opened_fails_the_items_with_the_reason(qtbot, store, tmp_path, stop_runs):
    window = make_window(qtbot, store, tmp_path / "missing.onnx", tmp_path / "out")
    stop_runs(window)
    window.add_paths(photos(tmp_path / "in", 1))
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        window.start()
    assert "model file not found" in blocker.args[0].error
    item = window.queue.item(0)
    assert item.status == "failed" and "model file not found" in item.message


def test_videos_and_frame_folders_run_through_the_video_pipeline(qtbot, store, tmp_path, model, stop_runs):
    out = tmp_path / "out"
    window = make_window(qtbot, store, model, out)
    stop_runs(window)
    photos(tmp_path / "in", 1)
    small_clip(tmp_path / "in" / "film.mp4")
    film = tmp_path / "reel"
    film.mkdir()
    for i in range(1, 5):
        Image.fromarray(synthetic_photo(i, 24, 32).mean(axis=2).astype(np.uint8)).save(film / f"frame_{i:04d}.png")
    window.add_paths([tmp_path / "in"])
    window.add_paths([film], as_frames=True)
    assert [(i.source.name, i.kind) for i in window.queue.items()] == \
        [("film.mp4", "video"), ("p00.png", "image"), ("reel", "frames")]
    window.add_paths([tmp_path / "in" / "p00.png"], as_frames=True)  # not a folder of frames: refused
    assert window.last_refused[0][1].endswith("p00.png: not a folder")

    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        window.start()
    statuses = {Path(r.input).name: (r.status, r.reason) for r in blocker.args[0].results}
    assert statuses == {"p00.png": ("done", None), "film.mp4": ("done", None), "reel": ("done", None)}
    assert (out / "p00.png").is_file() and (out / "film.mp4").is_file()
    assert sorted(p.name for p in (out / "reel").iterdir()) == [f"frame_{i:04d}.png" for i in range(1, 5)] + \
        ["reel.mp4"]  # a frame folder becomes a video (its frames kept beside it) by default
    assert [i.progress for i in window.queue.items()] == [1.0, 1.0, 1.0]
    assert window.queue.items()[2].output == out / "reel" / "reel.mp4"
    window.table.selectRow(2)  # a frame folder: the scrubber walks through before/after frames
    assert window.compare.scrubber.isVisibleTo(window) and window.compare.scrubber.maximum() == 3
    window.compare.scrubber.setValue(2)
    window.compare.wait_for_frame()
    assert window.compare.view.has_result() and window.compare.caption.full_text() == "frame 3 / 4"


def test_eta_counts_working_time_only(monkeypatch):
    from colorizer.desktop.app import run_clock
    from colorizer.desktop.pipeline.report import FileResult

    now = [100.0]
    monkeypatch.setattr(run_clock.time, "monotonic", lambda: now[0])
    clock = run_clock.RunClock(total=5)
    clock.add(FileResult(Path("a"), "skipped"))  # instant: not used for the rate
    assert clock.eta() is None
    now[0] = 110.0
    clock.add(FileResult(Path("b"), "done"))
    assert clock.eta() == pytest.approx(10 * 3)  # 10 s per worked file, 3 left
    clock.pause(True)
    now[0] = 200.0  # 90 s paused
    clock.pause(False)
    assert clock.elapsed() == pytest.approx(10) and clock.eta() == pytest.approx(30)
    assert run_clock.format_duration(30) == "30 s" and run_clock.format_duration(3725) == "1 h 02 min"


# --------------------------------------------------------------------------- settings
def test_settings_persist_across_a_restart(qtbot, tmp_path):
    ini = str(tmp_path / "settings.ini")
    first = make_window(qtbot, QSettings(ini, QSettings.Format.IniFormat))
    panel = first.settings_panel
    panel.saturation.setValue(1.4)
    panel.output_format.setCurrentIndex(panel.output_format.findData("png"))
    panel.backend.setCurrentIndex(panel.backend.findData("cpu"))
    panel.overwrite.setChecked(True)
    panel.render_size.setValue(256)
    panel.temporal.setValue(0.8)
    panel.output_dir.setText(str(tmp_path / "colorized"))
    panel.output_dir.editingFinished.emit()
    panel._set_model(str(tmp_path / "mine.onnx"))
    expected = first.app_settings
    assert expected.saturation == 1.4 and expected.output_format == "png" and expected.overwrite
    first.close()

    second = make_window(qtbot, QSettings(ini, QSettings.Format.IniFormat))
    assert second.app_settings == replace(expected, overwrite=False)  # risky: for one session only
    assert not second.settings_panel.overwrite.isChecked()
    assert second.settings_panel.saturation.value() == pytest.approx(1.4)
    assert second.settings_panel.model.text() == "mine.onnx"
    image = second.app_settings.image_settings()
    assert image.output_format == "PNG" and image.render_size == 256 and not image.overwrite


def test_unreadable_settings_fall_back_to_defaults(tmp_path):
    store = QSettings(str(tmp_path / "bad.ini"), QSettings.Format.IniFormat)
    for key, value in (("backend", "quantum"), ("saturation", "lots"), ("quality", "500"), ("overwrite", "true")):
        store.setValue(f"settings/{key}", value)
    s = app_settings.load(store)
    assert s.backend == "auto" and s.saturation == 1.0 and s.quality == 100
    assert s.overwrite is False  # never read back: a later launch must not overwrite silently


# --------------------------------------------------------------------------- viewer and log
def solid(color, w=100, h=50) -> QImage:
    image = QImage(w, h, QImage.Format.Format_RGB888)
    image.fill(QColor(color))
    return image


def rgb_at(widget, x, y):
    c = widget.grab().toImage().pixelColor(x, y)
    return c.red(), c.green(), c.blue()


def send_mouse(widget, kind, x, y):
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
    QApplication.sendEvent(widget, QMouseEvent(kind, QPointF(x, y), widget.mapToGlobal(QPointF(x, y)),
                                               Qt.MouseButton.LeftButton, buttons, Qt.KeyboardModifier.NoModifier))


def test_compare_view_shows_both_images_split_zoom_and_pan(qtbot):
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(300, 150)
    view.set_images(solid("#ff0000"), solid("#0000ff"))  # fits exactly: 100x50 at scale 3
    assert view.size().width() == 300 and view.scale() == pytest.approx(3.0)
    assert rgb_at(view, 60, 120) == (255, 0, 0)  # original left of the split
    assert rgb_at(view, 240, 120) == (0, 0, 255)  # result right of it

    send_mouse(view, QEvent.Type.MouseButtonPress, 150, 120)  # grab the split line, drag it left
    send_mouse(view, QEvent.Type.MouseMove, 75, 120)
    send_mouse(view, QEvent.Type.MouseButtonRelease, 75, 120)
    assert view.split() == pytest.approx(0.25)
    assert rgb_at(view, 110, 120) == (0, 0, 255) and rgb_at(view, 40, 120) == (255, 0, 0)

    before = view.image_rect()
    QApplication.sendEvent(view, QWheelEvent(QPointF(225, 75), view.mapToGlobal(QPointF(225, 75)), QPoint(),
                                             QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                             Qt.ScrollPhase.NoScrollPhase, False))
    assert view.scale() == pytest.approx(3.75)  # one wheel step: x1.25 around the pointer
    zoomed = view.image_rect()
    assert zoomed.width() > before.width() and zoomed.contains(QPointF(225, 75))
    send_mouse(view, QEvent.Type.MouseButtonPress, 225, 90)  # away from the split: pans
    send_mouse(view, QEvent.Type.MouseMove, 205, 80)
    send_mouse(view, QEvent.Type.MouseButtonRelease, 205, 80)
    assert view.image_rect().topLeft() == zoomed.topLeft() + QPointF(-20, -10)
    view.mouseDoubleClickEvent(None)
    assert view.scale() == pytest.approx(3.0)


def test_compare_view_without_a_result_shows_the_original_on_both_sides(qtbot):
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(300, 150)
    view.set_images(solid("#00ff00"), None, message="Not colorized yet")
    assert rgb_at(view, 60, 120) == rgb_at(view, 240, 120) == (0, 255, 0)


def test_log_records_from_any_thread_reach_the_log_view(qtbot, store):
    window = make_window(qtbot, store)
    worker = threading.Thread(target=lambda: logging.getLogger("colorizer.test").warning("from a thread"))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: "from a thread" in window.log_view.toPlainText(), timeout=3000)


# --------------------------------------------------------------------------- polish
def test_the_default_output_folder_is_shown_as_a_real_path(qtbot, store, tmp_path):
    from colorizer.desktop.app.settings import default_output_dir

    window = make_window(qtbot, store)
    field = window.settings_panel.output_dir
    assert field.text() == str(default_output_dir()) and window.app_settings.output_dir == ""
    field.setText(str(tmp_path / "mine"))
    field.editingFinished.emit()
    assert window.app_settings.output_folder == tmp_path / "mine"
    field.setText("")  # emptied: back to the default, shown again
    field.editingFinished.emit()
    assert window.app_settings.output_dir == "" and field.text() == str(default_output_dir())


def test_errors_are_readable_in_full_in_the_details_pane(qtbot, store, tmp_path, model, stop_runs):
    window = make_window(qtbot, store, model, tmp_path / "out")
    stop_runs(window)
    broken = tmp_path / "in" / ("a_long_name_" * 8 + ".png")
    broken.parent.mkdir()
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    window.add_paths([broken])
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.start()
    item = window.queue.item(0)
    assert item.status == "failed"
    window.table.selectRow(0)
    details = window.viewer.details.toPlainText()
    assert f"error: {item.message}" in details and str(broken) in details
    assert window.queue.data(window.queue.index(0, 4), Qt.ItemDataRole.ToolTipRole) == item.details()


def test_zoom_percent_one_to_one_and_fit(qtbot):
    from colorizer.desktop.app.compare_view import ComparePanel

    panel = ComparePanel()
    qtbot.addWidget(panel)
    panel.resize(400, 300)
    panel.show()
    panel.view.set_images(solid("#ff0000", 1000, 500), solid("#0000ff", 1000, 500))
    fitted = panel.view.scale()
    assert fitted < 1 and panel.zoom_label.text() == f"{fitted * 100:.0f} %"
    panel.actual_button.click()
    assert panel.view.scale() == pytest.approx(1.0) and panel.zoom_label.text() == "100 %"
    panel.fit_button.click()
    assert panel.view.scale() == pytest.approx(fitted)


def test_show_in_folder_says_so_when_nothing_can_open_it(qtbot, store, tmp_path, model, stop_runs):
    out = tmp_path / "out"
    window = make_window(qtbot, store, model, out)
    stop_runs(window)
    window.add_paths(photos(tmp_path / "in", 1))
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.start()
    window.table.selectRow(0)
    opened = []
    window.open_url = lambda url: opened.append(url.toLocalFile()) or False  # no file manager here
    window.compare.show_button.click()
    assert opened == [str(out)]
    message = window.statusBar().currentMessage()
    assert "No file manager could open" in message and "copied to the clipboard" in message
    assert QApplication.clipboard().text() == str(out / "p00.png")
    window.open_url = lambda url: True
    window.open_output_action.trigger()
    assert window.statusBar().currentMessage().startswith("Opened")
