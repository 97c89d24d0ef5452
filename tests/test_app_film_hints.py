"""Hint mode on films in the desktop app (issue #22): points put on the slider's frame make it a key
frame (sidecar, slider marker, "N key frames"), the points are tracked through the shot by the run's
own tracker and drawn on the other frames, undo/delete work, the preview is of the frame shown, and
Start gives an output whose frames near the key frame have the hint's color."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported: no display needed

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

pytest_plugins = ["app_fixtures"]  # the fixtures model, store, stop_runs

from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from app_helpers import RUN_TIMEOUT_MS, click, make_window, mouse  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QEvent, Qt  # noqa: E402
from synthetic_media import write_clip  # noqa: E402

from colorizer.contract import rgb_to_lab  # noqa: E402
from colorizer.desktop.app.queue_model import HINTS  # noqa: E402
from colorizer.desktop.core import TaskKind  # noqa: E402
from colorizer.desktop.pipeline.hint_preview import HintPreview, film_hint_plan  # noqa: E402
from colorizer.hints import FilmHints, HintPoint, read_hints, sidecar_path  # noqa: E402

W, H, FRAMES, STEP = 80, 60, 24, 1.0  # the clip pans its texture STEP pixels to the left each frame
BLUE = "#1e50ff"
KEY = 10


def texture(w: int, h: int, seed: int = 3) -> np.ndarray:
    """A gray texture with corners to track (blurred noise and blocks), larger than the clip."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    for _ in range(30):
        x, y = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
        noise[y : y + 6, x : x + 6] = rng.random()
    return (40 + 170 * noise).astype(np.uint8)


def pan_frames(n: int = FRAMES) -> list[np.ndarray]:
    big = texture(W + 2 * n + 8, H)
    return [big[:, round(i * STEP) : round(i * STEP) + W] for i in range(n)]


def pan_clip(path: Path, n: int = FRAMES) -> Path:
    """A gray clip whose picture moves STEP pixels to the left per frame (H.264, nearly lossless)."""
    return write_clip(path, pan_frames(n), options={"crf": "4"})


def pan_folder(folder: Path, n: int = FRAMES) -> Path:
    folder.mkdir(parents=True)
    for i, gray in enumerate(pan_frames(n)):
        Image.fromarray(gray).save(folder / f"frame_{i:04d}.png")
    return folder


def film_window(qtbot, store, model, tmp_path, source: Path, as_frames: bool = False, **settings):
    window = make_window(qtbot, store, model, tmp_path / "out", **settings)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    window.add_paths([source], as_frames=as_frames)
    window.table.selectRow(0)
    view = window.compare.view
    qtbot.waitUntil(view.has_image, timeout=10_000)
    view.set_split(0.1)  # the split line (dragged, not clicked) away from the points the tests put
    return window, view


def go_to(qtbot, window, frame: int) -> None:
    """Move the slider to ``frame`` and wait for that frame's preview."""
    with qtbot.waitSignal(window.hints.preview_ready, timeout=20_000):
        window.compare.show_frame(frame)
    window.compare.wait_for_frame()
    assert window.hints.frame == frame


def enter_hint_mode(qtbot, window) -> None:
    with qtbot.waitSignal(window.hints.preview_ready, timeout=20_000):
        window.hints.action.trigger()
    assert window.compare.view.hint_mode()


def wait_tracked(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.hints._plan_current(), timeout=20_000)
    window.hints.tracker.wait()


def test_point_on_a_frame_is_a_key_frame_tracked_through_the_shot(qtbot, store, model, tmp_path, stop_runs):
    clip = pan_clip(tmp_path / "pan.mp4")
    window, view = film_window(qtbot, store, model, tmp_path, clip)
    stop_runs(window)
    editor = window.hints
    assert editor.action.isEnabled() and "key frame" in editor.action.toolTip()
    enter_hint_mode(qtbot, window)
    go_to(qtbot, window, KEY)
    editor.set_color(BLUE)
    x, y = 40, 30
    with qtbot.waitSignal(editor.preview_ready, timeout=20_000):
        click(view, view.photo_to_view(x, y))
    # the sidecar beside the film holds key frame KEY, in pixels of the frame
    hints = read_hints(sidecar_path(clip))
    assert isinstance(hints, FilmHints)
    assert [(f.frame, [(p.x, p.y, p.color) for p in f.points]) for f in hints.frames] == [(KEY, [(x, y, BLUE)])]
    # the slider marks it, the row counts it
    assert window.compare.scrubber.key_frames() == [KEY]
    assert window.queue.data(window.queue.index(0, HINTS)) == "1 key frame"
    assert "key frame" in window.compare.caption.full_text()
    # the preview of the key frame has the hint's color at the point
    target = np.array(HintPoint(x, y, BLUE).ab())
    wait_tracked(qtbot, window)
    # another frame of the shot: the point is drawn (hollow, read-only) where the run's tracker puts it
    go_to(qtbot, window, KEY + 4)
    assert view.hints() == []  # nothing editable on a frame that is not a key frame
    tracked = view.tracked()
    assert len(tracked) == 1
    tx, ty, color = tracked[0]
    assert abs(tx - (x - 4 * STEP)) <= 1.0 and abs(ty - y) <= 1.0, (tx, ty)
    assert color.name() == BLUE
    # the same positions as the run's first pass (the same code, called here directly)
    plan = film_hint_plan(clip, TaskKind.VIDEO, editor.film_hints(), editor.previewer.preview.contract,
                          editor._settings().video_settings())
    assert plan.keys[0].points[0].positions == editor.plan.keys[0].points[0].positions
    # the preview of that frame is colorized with the tracked hint
    rgb = _qimage_rgb(view.hint_preview())
    (h, w), (sh, sw) = editor.previewer.preview.full_hw, editor.previewer.preview.screen_hw
    px, py = round(tx * sw / w), round(ty * sh / h)  # the photo's pixel on the preview
    ab = rgb_to_lab(rgb)[py - 1 : py + 2, px - 1 : px + 2, 1:].reshape(-1, 2).mean(axis=0)
    assert np.linalg.norm(ab - target) < 12, ab
    # the tracker's result is cached for the film: going back costs nothing
    assert any(key[0] == str(clip) for key in editor.tracker._cache)


def test_a_long_hint_state_never_widens_the_window(qtbot, store, model, tmp_path, stop_runs):
    """The hint bar's state ("frame N: ... · saved in <the film's long name>.hints.json") is shortened
    in the middle (full text in its tooltip), not laid out at full length: before, it pushed the
    window wider than the screen on a film with a long name."""
    clip = pan_clip(tmp_path / ("a film with a rather long name from the family archive, reel 3 of 12, "
                                "transferred 1987" + ".mp4"))
    window, view = film_window(qtbot, store, model, tmp_path, clip)
    stop_runs(window)
    width = window.width()
    enter_hint_mode(qtbot, window)
    go_to(qtbot, window, KEY)
    with qtbot.waitSignal(window.hints.preview_ready, timeout=20_000):
        click(view, view.photo_to_view(40, 30))
    wait_tracked(qtbot, window)
    go_to(qtbot, window, KEY + 4)  # "frame 15: click to make it a key frame · 1 key frame · 1 tracked here · ..."
    qtbot.wait(50)
    label = window.hints.state_label
    assert window.width() == width, (width, window.width())
    assert "saved in" in label.full_text() and clip.name in label.toolTip()
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width()


def test_undo_redo_delete_and_move_on_a_film(qtbot, store, model, tmp_path, stop_runs):
    clip = pan_clip(tmp_path / "pan.mp4")
    window, view = film_window(qtbot, store, model, tmp_path, clip)
    stop_runs(window)
    editor = window.hints
    enter_hint_mode(qtbot, window)
    go_to(qtbot, window, 3)
    click(view, view.photo_to_view(20, 20))
    go_to(qtbot, window, 15)
    click(view, view.photo_to_view(50, 40))
    assert sorted(editor.film) == [3, 15] and window.compare.scrubber.key_frames() == [3, 15]
    assert window.queue.data(window.queue.index(0, HINTS)) == "2 key frames"
    # move the point of frame 15
    mouse(view, QEvent.Type.MouseButtonPress, view.photo_to_view(50, 40))
    mouse(view, QEvent.Type.MouseMove, view.photo_to_view(55, 42))
    mouse(view, QEvent.Type.MouseButtonRelease, view.photo_to_view(55, 42))
    assert [(p.x, p.y) for p in editor.film[15]] == [(55, 42)]
    # Delete removes the selected point: frame 15 is no key frame any more
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert sorted(editor.film) == [3]
    frames = read_hints(sidecar_path(clip)).frames
    assert [f.frame for f in frames] == [3]
    assert window.compare.scrubber.key_frames() == [3]
    # undo brings it back, undo again the move; undo of frame 3's point goes to frame 3
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [(p.x, p.y) for p in editor.film[15]] == [(55, 42)]
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [(p.x, p.y) for p in editor.film[15]] == [(50, 40)]
    editor.stack.undo()  # frame 15's point
    editor.stack.undo()  # frame 3's point: the slider goes there
    assert editor.film == {} and window.compare.current_frame() == 3
    assert not sidecar_path(clip).exists()
    assert window.compare.scrubber.key_frames() == []
    assert window.queue.data(window.queue.index(0, HINTS)) == ""
    editor.stack.redo()
    assert sorted(editor.film) == [3] and read_hints(sidecar_path(clip)).frames[0].frame == 3


def test_a_film_holds_at_most_max_film_points_over_its_key_frames(qtbot, store, model, tmp_path, stop_runs,
                                                                  monkeypatch):
    """The app refuses a point that would make the film's sidecar one colorize-batch refuses."""
    from colorizer.desktop.app import hint_mode

    monkeypatch.setattr(hint_mode, "MAX_FILM_POINTS", 2)
    clip = pan_clip(tmp_path / "pan.mp4")
    window, view = film_window(qtbot, store, model, tmp_path, clip)
    stop_runs(window)
    editor = window.hints
    said = []
    editor.message.connect(lambda text, ms: said.append(text))
    enter_hint_mode(qtbot, window)
    go_to(qtbot, window, 3)
    editor.add_point(20, 20)
    go_to(qtbot, window, 15)
    editor.add_point(50, 40)
    editor.add_point(60, 40)  # a third point, on either key frame: refused
    go_to(qtbot, window, 3)
    editor.add_point(30, 30)
    assert {f: len(p) for f, p in editor.film.items()} == {3: 1, 15: 1}
    assert sum(len(f.points) for f in read_hints(sidecar_path(clip)).frames) == 2
    assert sum("at most 2 hints on all its key frames" in text for text in said) == 2


def test_frame_folder_sidecar_beside_the_folder_and_start_applies_the_hints(qtbot, store, model, tmp_path,
                                                                            stop_runs):
    folder = pan_folder(tmp_path / "reel")
    window, view = film_window(qtbot, store, model, tmp_path, folder, as_frames=True)
    stop_runs(window)
    editor = window.hints
    assert window.queue.items()[0].kind == TaskKind.FRAMES
    enter_hint_mode(qtbot, window)
    go_to(qtbot, window, KEY)
    editor.set_color(BLUE)
    x, y = 40, 30
    click(view, view.photo_to_view(x, y))
    sidecar = tmp_path / "reel.hints.json"
    assert sidecar.exists() and read_hints(sidecar).frames[0].frame == KEY
    wait_tracked(qtbot, window)
    positions = editor.plan.keys[0].points[0].positions
    assert len(positions) >= 6
    window.hints.action.trigger()  # leave hint mode
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as finished:
        window.start()
    result = finished.args[0].results[0]
    assert result.status == "done" and result.hints["count"] == 1
    target = np.array(HintPoint(x, y, BLUE).ab())
    out_frames = sorted((tmp_path / "out").rglob("frame_*.png"))
    assert len(out_frames) == FRAMES
    for f in (KEY - 2, KEY, KEY + 2):
        px, py = (round(v) for v in positions[f])
        lab = rgb_to_lab(np.asarray(Image.open(out_frames[f]).convert("RGB")))
        ab = lab[py - 1 : py + 2, px - 1 : px + 2, 1:].reshape(-1, 2).mean(axis=0)
        assert np.linalg.norm(ab - target) < 12, (f, ab)


def test_preview_of_a_film_frame_is_the_run_s_frame(model, tmp_path):
    from colorizer.desktop.backends import open_backend
    from colorizer.hints import PhotoHints

    clip = pan_clip(tmp_path / "pan.mp4", 12)
    backend = open_backend(model, "cpu", render_size=32)
    try:
        preview = HintPreview.open_frame(clip, TaskKind.VIDEO, 5, backend)
        assert preview.full_hw == (H, W) and preview.frame == 5
        plain = preview.render(None)
        hinted = preview.render(PhotoHints((HintPoint(40, 30, BLUE),)))
        assert plain.shape == hinted.shape == (H, W, 3)
        assert np.abs(plain.astype(int) - hinted.astype(int)).max() > 10
    finally:
        backend.close()


def _qimage_rgb(image) -> np.ndarray:
    from test_app_hints import qimage_array

    return qimage_array(image)
