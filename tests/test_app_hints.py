"""Hint mode of the desktop app (issue #21): points put, moved, removed, undone; saved to the sidecar;
the live preview; the queue's Hints column; Start gives what colorize-batch gives from the sidecar."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported: no display needed

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

pytest_plugins = ["app_fixtures"]  # the fixtures model, store, stop_runs

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from app_helpers import RUN_TIMEOUT_MS, click, hint_window, make_window, mouse, photos, small_clip  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage, QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from colorizer.contract import rgb_to_lab  # noqa: E402
from colorizer.desktop.app import hint_mode  # noqa: E402
from colorizer.desktop.app.queue_model import HINTS, WAITING  # noqa: E402
from colorizer.desktop.cli import main as batch_main  # noqa: E402
from colorizer.desktop.media.image_read import read_image  # noqa: E402
from colorizer.desktop.pipeline.hint_preview import HintPreview  # noqa: E402
from colorizer.hints import HintPoint, PhotoHints, read_photo_hints, sidecar_path, write_hints  # noqa: E402

SIZE = (60, 80)  # height, width of the test photos
BLUE = "#1e50ff"


def qimage_array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes()).reshape(h, image.bytesPerLine())
    return data[:, : w * 3].reshape(h, w, 3).copy()




def preview_lab_at(view, x: int, y: int) -> np.ndarray:
    rgb = qimage_array(view.hint_preview())
    return rgb_to_lab(rgb)[y, x]


def test_click_puts_a_point_the_preview_follows_and_the_sidecar_holds_it(qtbot, store, model, tmp_path, stop_runs):
    window, view, paths = hint_window(qtbot, store, model, tmp_path)
    stop_runs(window)
    editor = window.hints
    editor.set_color(BLUE)
    x, y = 50, 20
    before = preview_lab_at(view, x, y)
    with qtbot.waitSignal(editor.preview_ready, timeout=10_000):
        click(view, view.photo_to_view(x, y))
    assert [(p.x, p.y, p.color) for p in editor.points] == [(x, y, BLUE)]
    assert editor.selected == 0
    # the preview's chroma at the point moved toward the hint's
    target = np.array(HintPoint(x, y, BLUE).ab())
    after = preview_lab_at(view, x, y)
    assert np.linalg.norm(after[1:] - target) < np.linalg.norm(before[1:] - target) - 5
    assert np.linalg.norm(after[1:] - target) < 6
    assert editor.last_latency is not None and editor.last_latency < 5
    # saved beside the photo, in its pixels
    saved = read_photo_hints(sidecar_path(paths[0]))
    assert [(p.x, p.y, p.color) for p in saved.points] == [(x, y, BLUE)]
    # the row says so
    assert window.queue.data(window.queue.index(0, HINTS)) == "1 hint"
    assert "color hints: 1 hint" in window.viewer.details.toPlainText()


def test_drag_moves_delete_removes_undo_redo(qtbot, store, model, tmp_path, stop_runs):
    window, view, paths = hint_window(qtbot, store, model, tmp_path)
    stop_runs(window)
    editor = window.hints
    click(view, view.photo_to_view(10, 10))
    click(view, view.photo_to_view(60, 40))
    assert [(p.x, p.y) for p in editor.points] == [(10, 10), (60, 40)]

    # drag the first point
    mouse(view, QEvent.Type.MouseButtonPress, view.photo_to_view(10, 10))
    mouse(view, QEvent.Type.MouseMove, view.photo_to_view(20, 15))
    mouse(view, QEvent.Type.MouseMove, view.photo_to_view(30, 25))
    mouse(view, QEvent.Type.MouseButtonRelease, view.photo_to_view(30, 25))
    assert [(p.x, p.y) for p in editor.points] == [(30, 25), (60, 40)]
    assert [(p.x, p.y) for p in read_photo_hints(sidecar_path(paths[0])).points] == [(30, 25), (60, 40)]
    assert editor.stack.count() == 3  # add, add, move

    # Delete removes the selected point (and not the queue row, which Delete removes elsewhere)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert [(p.x, p.y) for p in editor.points] == [(60, 40)]
    assert window.queue.rowCount() == 2
    assert window.queue.data(window.queue.index(0, HINTS)) == "1 hint"

    # undo: the point is back where it was moved to; again: where it was put
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [(p.x, p.y) for p in editor.points] == [(30, 25), (60, 40)]
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [(p.x, p.y) for p in editor.points] == [(10, 10), (60, 40)]
    assert [(p.x, p.y) for p in read_photo_hints(sidecar_path(paths[0])).points] == [(10, 10), (60, 40)]
    # redo twice (Ctrl+Shift+Z): moved, then removed again
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert [(p.x, p.y) for p in editor.points] == [(60, 40)]
    # undo everything: no point left, no sidecar left
    for _ in range(4):
        editor.stack.undo()
    assert editor.points == () and not sidecar_path(paths[0]).exists()
    assert window.queue.data(window.queue.index(0, HINTS)) == ""


def test_colors_double_click_swatches_and_the_reference_eyedropper(qtbot, store, model, tmp_path, stop_runs):
    window, view, paths = hint_window(qtbot, store, model, tmp_path)
    stop_runs(window)
    editor = window.hints
    editor.ask_color = lambda initial: QColor("#2e8b57")  # the QColorDialog's answer
    at = view.photo_to_view(25, 30)  # (not on the split line, in the middle)
    click(view, at)
    QApplication.sendEvent(view, QMouseEvent(QEvent.Type.MouseButtonDblClick, at, view.mapToGlobal(at),
                                             Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                                             Qt.KeyboardModifier.NoModifier))
    assert [p.color for p in editor.points] == ["#2e8b57"]
    assert editor.recent[0] == "#2e8b57" and editor.recent_buttons[0].isVisible()
    # a reference photo: a click on it picks its color there for the selected point
    reference = np.zeros((40, 60, 3), np.uint8)
    reference[:, 30:] = (200, 40, 30)
    Image.fromarray(reference).save(tmp_path / "uniform.png")
    dialog = editor.show_reference()
    assert dialog.load(tmp_path / "uniform.png")
    rect = dialog.pane.image_rect()
    click(dialog.pane, QPointF(rect.x() + rect.width() * 0.8, rect.center().y()))
    assert [p.color for p in editor.points] == ["#c8281e"]
    # a recent swatch gives its color back
    editor.recent_buttons[1].click()
    assert [p.color for p in editor.points] == ["#2e8b57"]
    editor.stack.undo()
    assert [p.color for p in editor.points] == ["#c8281e"]
    # the recent colors are remembered
    assert str(store.value(hint_mode._RECENT_KEY)).startswith("#2e8b57,#c8281e")


def test_hints_reload_when_the_row_is_selected_again_and_rows_show_sidecars(qtbot, store, model, tmp_path, stop_runs):
    folder = tmp_path / "in"
    paths = photos(folder, 3, size=SIZE)
    write_hints(sidecar_path(paths[2]), PhotoHints((HintPoint(1, 2, "#ff0000"), HintPoint(3, 4, "#00ff00"),
                                                    HintPoint(5, 6, "#0000ff"))))
    sidecar_path(paths[1]).write_text("{not json")
    window = make_window(qtbot, store, model, tmp_path / "out")
    stop_runs(window)
    window.add_paths([folder])
    assert [window.queue.data(window.queue.index(r, HINTS)) for r in range(3)] == ["", "unreadable", "3 hints"]
    editor = window.hints
    window.table.selectRow(2)
    assert [(p.x, p.y) for p in editor.points] == [(1, 2), (3, 4), (5, 6)]
    window.table.selectRow(1)
    assert editor.points == () and "cannot edit the hints" in editor.error
    editor.add_point(3, 3)  # refused: the file is not overwritten
    assert sidecar_path(paths[1]).read_text() == "{not json"
    write_hints(sidecar_path(paths[2]), PhotoHints((HintPoint(7, 8, "#123456"),)))  # edited elsewhere meanwhile
    window.table.selectRow(2)
    assert [(p.x, p.y, p.color) for p in editor.points] == [(7, 8, "#123456")]
    assert editor.stack.count() == 0


def test_a_photo_holds_at_most_max_points_and_the_refusal_is_said(qtbot, store, model, tmp_path, stop_runs,
                                                                  monkeypatch):
    monkeypatch.setattr(hint_mode, "MAX_POINTS", 2)
    window, view, paths = hint_window(qtbot, store, model, tmp_path, n=1)
    stop_runs(window)
    editor = window.hints
    said = []
    editor.message.connect(lambda text, ms: said.append(text))
    for x in (10, 20, 30):
        editor.add_point(x, 10)
    assert [p.x for p in editor.points] == [10, 20] and editor.stack.count() == 2
    assert len(read_photo_hints(sidecar_path(paths[0])).points) == 2
    assert any("at most 2 hints" in text for text in said)


def test_a_folder_that_cannot_be_written_is_said_and_nothing_is_lost(qtbot, store, model, tmp_path, stop_runs,
                                                                     monkeypatch):
    window, view, paths = hint_window(qtbot, store, model, tmp_path)
    stop_runs(window)
    editor = window.hints

    def read_only(path, hints):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(hint_mode, "write_hints", read_only)
    click(view, view.photo_to_view(20, 20))
    message = window.statusBar().currentMessage()
    assert "Cannot save the hints of p00.png" in message and "Permission denied" in message
    assert "kept in this window only" in message
    assert window.queue.data(window.queue.index(0, HINTS)) == "1 hint (not saved)"
    assert editor.save_button.isVisibleTo(editor.bar)
    # another row and back: the points are still there
    window.table.selectRow(1)
    window.table.selectRow(0)
    assert [(p.x, p.y) for p in editor.points] == [(20, 20)]
    monkeypatch.undo()  # the folder is writable again
    editor.save_button.click()
    assert [(p.x, p.y) for p in read_photo_hints(sidecar_path(paths[0])).points] == [(20, 20)]
    assert window.queue.data(window.queue.index(0, HINTS)) == "1 hint"


def test_hint_mode_is_available_on_films(qtbot, store, model, tmp_path, stop_runs):
    # issue #22: films too (tests/test_app_film_hints.py tests it in full)
    window = make_window(qtbot, store, model, tmp_path / "out")
    stop_runs(window)
    clip = small_clip(tmp_path / "clip.mp4")
    window.add_paths([clip])
    window.table.selectRow(0)
    assert window.hints.action.isEnabled()
    assert "key frame" in window.hints.action.toolTip()


def test_start_after_hints_gives_what_colorize_batch_gives(qtbot, store, model, tmp_path, stop_runs):
    window, view, paths = hint_window(qtbot, store, model, tmp_path, n=1)
    stop_runs(window)
    editor = window.hints
    editor.set_color(BLUE)
    click(view, view.photo_to_view(15, 12))
    editor.set_color("#d4a017")
    click(view, view.photo_to_view(65, 45))
    assert len(read_photo_hints(sidecar_path(paths[0])).points) == 2
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as finished:
        window.start()
    result = finished.args[0].results[0]
    assert result.status == "done" and result.hints["count"] == 2
    app_out = read_image(result.output).rgb

    assert batch_main([str(paths[0]), "-o", str(tmp_path / "cli"), "--model", str(model), "--backend", "cpu",
                       "--render-size", "32", "-q"]) == 0
    cli_out = read_image(tmp_path / "cli" / paths[0].name).rgb
    np.testing.assert_array_equal(app_out, cli_out)

    # the preview is that output at screen size (the test photo is smaller than a screen: the same pixels
    # but for the finish's rounding)
    preview = qimage_array(view.hint_preview())
    assert preview.shape == app_out.shape
    assert np.abs(preview.astype(int) - app_out.astype(int)).max() <= 1

    # an edit after the run: the row goes back to waiting (its output was made with other hints)
    click(view, view.photo_to_view(28, 30))
    item = window.queue.items()[0]
    assert item.status == WAITING and "hints changed" in item.message


def test_preview_module_is_the_run_at_screen_size(model, tmp_path):
    """The Qt-free preview: same spread and finish as the run, at a smaller size."""
    from colorizer.desktop.backends import open_backend
    from colorizer.desktop.pipeline.settings import ImageSettings

    path = photos(tmp_path, 1, size=(120, 160))[0]
    hints = PhotoHints((HintPoint(100, 30, BLUE),))
    backend = open_backend(model, "cpu", render_size=32)
    try:
        full = HintPreview.open(path, backend, ImageSettings(render_size=32), max_side=10_000)
        small = HintPreview.open(path, backend, ImageSettings(render_size=32), max_side=80)
    finally:
        backend.close()
    assert full.full_hw == (120, 160) and full.screen_hw == (120, 160) and small.screen_hw == (60, 80)
    np.testing.assert_array_equal(full.ab, small.ab)
    big = full.render(hints)
    assert batch_main([str(path), "-o", str(tmp_path / "cli"), "--model", str(model), "--backend", "cpu",
                       "--render-size", "32", "-q", "--hints-dir", str(_hints_tree(tmp_path, path, hints))]) == 0
    assert np.abs(big.astype(int) - read_image(tmp_path / "cli" / path.name).rgb.astype(int)).max() <= 1
    assert small.render(hints).shape == (60, 80, 3)


def _hints_tree(tmp_path: Path, photo: Path, hints: PhotoHints) -> Path:
    tree = tmp_path / "hints"
    write_hints(sidecar_path(photo, tree), hints)
    return tree


def test_in_hint_mode_a_click_on_the_split_line_puts_a_point_and_its_knob_still_moves_it(
        qtbot, store, model, tmp_path, stop_runs):
    """The split line crosses the photo: in hint mode a click on it (away from its knob) is a click on
    the photo, a point; the knob still drags the line."""
    window, view, _ = hint_window(qtbot, store, model, tmp_path)
    stop_runs(window)
    editor = window.hints
    view.set_split(0.5)
    width = window.width()
    split = view._split_x()
    shown = view.image_rect()
    on_line = QPointF(split, shown.top() + 0.1 * shown.height())  # on the line, near the photo's top
    assert view._view_to_photo(on_line) is not None and abs(on_line.y() - view.height() / 2) > 40, shown
    with qtbot.waitSignal(editor.preview_ready, timeout=20_000):
        click(view, on_line)
    assert len(editor.points) == 1 and view._split_x() == split  # the line stays, the view does not resize
    assert window.width() == width
    knob = view.rect().center().toPointF()
    knob.setX(split)
    mouse(view, QEvent.Type.MouseButtonPress, knob)
    mouse(view, QEvent.Type.MouseMove, knob + QPointF(-100, 0))
    mouse(view, QEvent.Type.MouseButtonRelease, knob + QPointF(-100, 0))
    assert abs(view._split_x() - (split - 100)) <= 2 and len(editor.points) == 1
