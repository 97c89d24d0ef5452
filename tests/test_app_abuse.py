"""The window used the way users break it: a damaged settings file, undo in the middle of a drag or of a
run, a sidecar changed by another program while the window shows it.

Each test here failed before its fix (see the docstrings); all run offscreen over the tiny model.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6.QtWidgets", reason="the gui extra (PySide6) is not installed")

from app_helpers import click, hint_window, make_window, mouse, photos, slow_opener  # noqa: E402
from PySide6.QtCore import QEvent, QSettings, Qt  # noqa: E402

from colorizer.desktop.app import settings as app_settings  # noqa: E402
from colorizer.desktop.app.queue_model import QUEUED  # noqa: E402
from colorizer.hints import HintPoint, PhotoHints, read_photo_hints, sidecar_path, write_hints  # noqa: E402

pytest_plugins = ["app_fixtures"]

SIZE = (60, 80)  # height, width of the test photos


def _ini(tmp_path, text: str) -> QSettings:
    path = tmp_path / "settings.ini"
    path.write_text(text)
    return QSettings(str(path), QSettings.Format.IniFormat)


def _hint_window(qtbot, store, model, tmp_path, stop_runs, open_backend=None):
    window, view, paths = hint_window(qtbot, store, model, tmp_path, 1, open_backend, SIZE)
    stop_runs(window)
    return window, view, paths


# ---------------------------------------------------------------------------- a damaged settings file
def test_a_damaged_window_state_in_the_settings_file_opens_the_window_as_the_first_time(qtbot, tmp_path):
    """Was: TypeError from restoreGeometry(str) in MainWindow.__init__: the app did not start at all."""
    store = _ini(tmp_path, "[ui]\ngeometry=hello\nsplitter=not a state\n")
    window = make_window(qtbot, store)
    window.show()
    qtbot.waitExposed(window)
    assert window.width() > 300 and sum(window.splitter.sizes()) > 0
    window.close()  # and the state saved now is a real one, which the next window takes
    again = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert window.restoreGeometry(again.value("ui/geometry"))
    assert window.splitter.restoreState(again.value("ui/splitter"))
    make_window(qtbot, again).show()


def test_numbers_a_settings_panel_cannot_hold_fall_back_to_defaults_or_limits(qtbot, tmp_path):
    """Was: saturation=nan gave 0.0 (gray results, silently); render_size=1e400 raised OverflowError
    and render_size=1e300 an OverflowError in the panel's spin box: the app did not start."""
    store = _ini(tmp_path, "[settings]\nsaturation=nan\ntemporal_smoothing=inf\nquality=1e400\n"
                           "render_size=1e300\ngpu=99999999999\n")
    s = app_settings.load(store)
    assert s.saturation == 1.0 and s.temporal_smoothing == 0.5 and s.quality == 95
    assert s.render_size == app_settings.MAX_RENDER_SIZE and s.gpu == app_settings.MAX_GPU_INDEX
    window = make_window(qtbot, store)
    assert window.app_settings.render_size == window.settings_panel.render_size.value()


def test_an_unquoted_comma_in_a_text_setting_is_not_taken_for_a_folder_named_like_a_list(tmp_path):
    """Was: output_dir=/a, b (QSettings reads a list) became the folder "['/a', 'b']", relative to the
    current folder: a run wrote there."""
    s = app_settings.load(_ini(tmp_path, "[settings]\noutput_dir=/photos, 2020\nmodel=a,b.onnx\n"))
    assert s.output_dir == "" and s.model == ""
    quoted = QSettings(str(tmp_path / "saved.ini"), QSettings.Format.IniFormat)  # what the app writes
    app_settings.save(quoted, app_settings.AppSettings(output_dir="/photos, 2020"))
    assert app_settings.load(quoted).output_dir == "/photos, 2020"


def test_recent_hint_colors_edited_by_hand_are_read_or_dropped(qtbot, tmp_path):
    """Was: "#ff0000, #00ff00" (a list for QSettings) lost them all, and "#zzzzzz" became the hint
    color, which a point cannot have."""
    store = _ini(tmp_path, "[hints]\nrecent_colors=#zzzzzz, #FF0000 ,#00ff00\n")
    window = make_window(qtbot, store)
    assert window.hints.recent == ["#ff0000", "#00ff00"] and window.hints.color == "#ff0000"


# ---------------------------------------------------------------------------- hint mode
def test_undo_in_the_middle_of_a_drag_ends_the_drag_and_moves_no_other_point(qtbot, store, model, tmp_path,
                                                                              stop_runs):
    """Was: the drag went on with the index of a point that the undo had removed; its release moved
    the other point (10, 10) to where the pointer was let go."""
    window, view, paths = _hint_window(qtbot, store, model, tmp_path, stop_runs)
    editor = window.hints
    click(view, view.photo_to_view(10, 10))
    click(view, view.photo_to_view(60, 40))
    mouse(view, QEvent.Type.MouseButtonPress, view.photo_to_view(60, 40))
    mouse(view, QEvent.Type.MouseMove, view.photo_to_view(40, 30))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undoes the second point's add
    assert [(p.x, p.y) for p in editor.points] == [(10, 10)]
    mouse(view, QEvent.Type.MouseMove, view.photo_to_view(20, 20))
    mouse(view, QEvent.Type.MouseButtonRelease, view.photo_to_view(20, 20))
    assert [(p.x, p.y) for p in editor.points] == [(10, 10)]
    assert [(p.x, p.y) for p in read_photo_hints(sidecar_path(paths[0])).points] == [(10, 10)]
    assert [(x, y) for x, y, _ in view.hints()] == [(10, 10)]
    # a drag that nothing interrupts still moves its point, and the marker follows it meanwhile
    mouse(view, QEvent.Type.MouseButtonPress, view.photo_to_view(10, 10))
    mouse(view, QEvent.Type.MouseMove, view.photo_to_view(30, 25))
    editor._refresh()  # the editor redraws (a film's tracking does) while the button is held
    assert [(x, y) for x, y, _ in view.hints()] == [(30, 25)]
    mouse(view, QEvent.Type.MouseButtonRelease, view.photo_to_view(30, 25))
    assert [(p.x, p.y) for p in editor.points] == [(30, 25)]


def test_undo_and_redo_are_refused_while_the_photo_is_being_colorized(qtbot, store, model, tmp_path, stop_runs):
    """Was: edits were refused during the run but Ctrl+Z went through and removed the sidecar the run
    was reading."""
    window, view, paths = _hint_window(qtbot, store, model, tmp_path, stop_runs, open_backend=slow_opener(0.5))
    editor = window.hints
    click(view, view.photo_to_view(10, 10))
    window.start()
    assert window.queue.items()[0].status == QUEUED
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    editor.undo_button.click()
    assert len(editor.points) == 1 and len(read_photo_hints(sidecar_path(paths[0])).points) == 1
    assert "being colorized" in window.statusBar().currentMessage()


def test_a_sidecar_changed_by_another_program_is_read_again_not_overwritten(qtbot, store, model, tmp_path,
                                                                            stop_runs):
    """Was: the next click wrote the window's points over the other program's (and over a sidecar it
    had left unreadable), and an undo brought back the window's old state over it."""
    window, view, paths = _hint_window(qtbot, store, model, tmp_path, stop_runs)
    editor = window.hints
    side = sidecar_path(paths[0])
    click(view, view.photo_to_view(10, 10))
    theirs = PhotoHints((HintPoint(1, 2, "#00ff00"), HintPoint(3, 4, "#00ff00")))
    write_hints(side, theirs)
    click(view, view.photo_to_view(60, 40))  # not made: the file is read again instead
    assert read_photo_hints(side).points == theirs.points == editor.points
    assert "changed by another program" in window.statusBar().currentMessage()
    assert editor.stack.count() == 0 and [(x, y) for x, y, _ in view.hints()] == [(1, 2), (3, 4)]
    with qtbot.waitSignal(editor.preview_ready, timeout=10_000):  # from now on edits are made again
        click(view, view.photo_to_view(60, 40))
    assert len(read_photo_hints(side).points) == 3
    # an undo after another change: refused the same way
    write_hints(side, theirs)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert read_photo_hints(side).points == theirs.points == editor.points
    # damaged by the other program: the window says so and never overwrites it
    side.write_text("{broken")
    click(view, view.photo_to_view(30, 30))
    click(view, view.photo_to_view(35, 30))
    assert side.read_text() == "{broken" and editor.points == () and "cannot edit the hints" in editor.error
    # removed by the other program: the window's points go too, the next click starts afresh
    write_hints(side, theirs)
    click(view, view.photo_to_view(30, 30))
    assert editor.points == theirs.points
    side.unlink()
    click(view, view.photo_to_view(30, 30))
    assert editor.points == () and not side.exists()
    click(view, view.photo_to_view(30, 30))
    assert [(p.x, p.y) for p in read_photo_hints(side).points] == [(30, 30)]


def test_fit_keeps_a_tiny_photo_within_the_zoom_limit_and_survives_a_view_of_no_size(qtbot):
    """A 1x1 photo was blown up to the whole view (past the 32x limit, so the first zoom-in shrank it);
    a view of no size set the scale to 0, and the next zoom put the photo at minus infinity."""
    import math

    from PySide6.QtGui import QColor, QImage

    from colorizer.desktop.app.compare_view import MAX_SCALE, CompareView

    view = CompareView()
    qtbot.addWidget(view)
    view.setMinimumSize(0, 0)
    view.resize(400, 300)
    dot = QImage(1, 1, QImage.Format.Format_RGB888)
    dot.fill(QColor("#808080"))
    view.set_images(dot, None)
    view.fit()
    assert view.scale() == MAX_SCALE
    view.zoom_by(1.25)
    assert view.scale() == MAX_SCALE  # zooming in never shrinks it
    view.resize(0, 0)
    view.fit()
    view.zoom_by(1.25)
    rect = view.image_rect()
    assert view.scale() > 0 and all(math.isfinite(v) for v in (rect.x(), rect.y(), rect.width(), rect.height()))


def test_two_frame_folders_of_one_name_each_get_their_own_output(tmp_path):
    """Two frame folders called "reel" (from two tapes) both went to OUT/reel, the second refused; now
    each gets as many parent names as tell them apart, as colorize-batch does for folders of photos."""
    import numpy as np
    from PIL import Image

    from colorizer.desktop.app.inputs import collect_frames, plan_run

    items = []
    for tape in ("tape1", "tape2"):
        reel = tmp_path / tape / "reel"
        reel.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(reel / f"f_{i:04d}.png")
        found, refused = collect_frames(reel)
        assert not refused
        items += found
    planned, refused = plan_run(items, tmp_path / "out", None)
    assert not refused
    assert sorted(t.output for t in planned.values()) == [tmp_path / "out" / "tape1" / "reel",
                                                          tmp_path / "out" / "tape2" / "reel"]


def test_a_warning_about_a_photo_shows_in_its_details(qtbot, store, model, tmp_path, stop_runs):
    """What the run noticed about a file (here its damaged EXIF block, dropped) is in its details pane."""
    from app_helpers import RUN_TIMEOUT_MS
    from PIL import Image

    src = photos(tmp_path / "in", 1, size=SIZE)[0]
    damaged = src.with_name("damaged.jpg")
    Image.open(src).convert("L").save(damaged, exif=b"Exif\x00\x00not a TIFF header at all")
    window = make_window(qtbot, store, model, tmp_path / "out")
    stop_runs(window)
    window.add_paths([damaged])
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.start()
    window.table.selectRow(0)
    assert "warning: " in window.viewer.details.toPlainText()
    assert "dropping a damaged EXIF block" in window.viewer.details.toPlainText()
