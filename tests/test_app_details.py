"""The app's smaller promises: skipped rows show their output, the details follow the row, the log follows
its newest line, the queue's names can be widened, the toolbar does not shift, the close question is true."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported: no display needed

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

pytest_plugins = ["app_fixtures"]  # the fixtures model, store, stop_runs

import logging  # noqa: E402

from app_helpers import RUN_TIMEOUT_MS, make_window, photos, slow_window_with_photos, small_clip  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QHeaderView, QMessageBox, QToolBar  # noqa: E402

from colorizer.desktop.app import dialogs  # noqa: E402
from colorizer.desktop.app.log_view import LogView  # noqa: E402
from colorizer.desktop.app.queue_model import NAME  # noqa: E402


def _run(qtbot, window):
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        window.start()
    return blocker.args[0]


def test_a_skipped_row_shows_its_existing_output_and_says_how_to_redo_it_in_the_app(qtbot, store, tmp_path, model,
                                                                                    stop_runs):
    window = make_window(qtbot, store, model, tmp_path / "out")
    stop_runs(window)
    photos(tmp_path / "in", 2)
    window.add_paths([tmp_path / "in"])
    _run(qtbot, window)
    window.queue.clear()
    window.add_paths([tmp_path / "in"])  # a new session: the outputs exist
    outcome = _run(qtbot, window)
    assert [r.status for r in outcome.results] == ["skipped", "skipped"]
    row = window.queue.item(0)
    assert "--overwrite" not in row.message and "Redo files whose output exists" in row.message
    window.table.selectRow(0)
    qtbot.waitUntil(lambda: window.compare.view.has_result(), timeout=5000)  # the existing output, not the original
    assert window.compare.show_button.isEnabled()


def test_details_follow_the_selected_row_and_show_in_folder_waits_for_a_result(qtbot, store, tmp_path, model,
                                                                                stop_runs):
    window = slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, seconds=0.3, n=3)
    small_clip(tmp_path / "in" / "reel.mp4")
    window.add_paths([tmp_path / "in" / "reel.mp4"])
    film_row = window.queue.rowCount() - 1
    window.table.selectRow(film_row)
    assert "status: waiting" in window.viewer.details.toPlainText()
    assert not window.compare.show_button.isEnabled()  # a film not colorized yet has nothing to show
    statuses = set()
    window.queue.dataChanged.connect(lambda *_: statuses.add(window.viewer.details.toPlainText().splitlines()[1]))
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.start()
        qtbot.waitUntil(lambda: window.queue.item(film_row).status == "working", timeout=RUN_TIMEOUT_MS)
        assert "status: working" in window.viewer.details.toPlainText()
    assert "status: working" in statuses
    assert "status: done" in window.viewer.details.toPlainText()
    assert window.compare.show_button.isEnabled()


def test_the_log_follows_new_lines_after_a_long_one_unless_scrolled_up(qtbot):
    view = LogView()
    qtbot.addWidget(view)
    view.resize(300, 120)
    view.show()
    for i in range(40):
        view.append_record(logging.INFO, f"line {i}")
    view.append_record(logging.WARNING, "a very long reason " * 40)  # once a horizontal scrollbar appeared
    for i in range(40):
        view.append_record(logging.INFO, f"after {i}")
        QApplication.processEvents()
    bar = view.verticalScrollBar()
    assert bar.value() == bar.maximum() and bar.maximum() > 0
    assert not view.horizontalScrollBar().isVisible()  # long lines wrap: the reason is read whole
    bar.setValue(0)  # the user scrolls up to read: new lines do not pull the view down
    view.append_record(logging.INFO, "later")
    assert bar.value() == 0


def test_queue_names_can_be_widened_and_the_toolbar_keeps_its_place(qtbot, store):
    window = make_window(qtbot, store)
    header = window.table.horizontalHeader()
    assert header.sectionResizeMode(NAME) == QHeaderView.ResizeMode.Interactive
    wide = header.sectionSize(NAME) + 150
    header.resizeSection(NAME, wide)
    assert header.sectionSize(NAME) == wide
    window.show()
    bar = window.findChild(QToolBar, "run-toolbar")
    QApplication.processEvents()
    pause, cancel = bar.widgetForAction(window.pause_action), bar.widgetForAction(window.cancel_action)
    before = pause.width(), cancel.x()
    assert cancel.x() > pause.x() > 0
    for text in ("Resume", "Pause", "Resume"):
        window.pause_action.setText(text)
        QApplication.processEvents()
        assert (pause.width(), cancel.x()) == before, text


def test_the_close_question_changes_when_the_run_ends_while_it_is_open(qtbot, store, tmp_path, model, stop_runs):
    window = make_window(qtbot, store, model, tmp_path / "out")
    texts = []

    def answer() -> None:
        box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
        texts.append(box.text())
        window.run_finished.emit(None)  # the run ends while the question is open
        texts.append(box.text())
        box.button(QMessageBox.StandardButton.Yes).click()

    QTimer.singleShot(50, answer)
    assert dialogs.confirm_stop(window, window.run_finished) is True
    assert texts == [dialogs._RUN_IN_PROGRESS, dialogs._RUN_ENDED]


def test_the_add_files_filter_names_every_suffix_the_runtime_reads():
    from colorizer.desktop.app.window import _FILE_FILTER
    from colorizer.fileio import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    first = _FILE_FILTER.split(";;")[0]
    for suffix in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        assert f"*{suffix} " in first + " " or f"*{suffix})" in first, suffix
    assert {".jfif", ".jpe", ".dib", ".mxf", ".vob"} <= {s for s in IMAGE_SUFFIXES | VIDEO_SUFFIXES}
