"""Films in the app: a video or a frame folder is one row, its output named in it, frame progress and
ETA while it runs, before/after with a frame slider for both, and Add folder asking about frames."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

pytest_plugins = ["app_fixtures"]  # the fixtures model, store, stop_runs
pytest.importorskip("av")


from app_helpers import (  # noqa: E402
    RUN_TIMEOUT_MS,
    drop,
    make_window,
    photos,
    slow_opener,
    small_clip,
)


def test_a_dropped_folder_of_frames_asks_film_or_photos(qtbot, store, tmp_path):
    window = make_window(qtbot, store)
    reel = tmp_path / "reel"
    photos(reel, 10, size=(24, 32), name="frame_{:04d}.png")
    asked = []
    answers = iter(["film", "photos", None])

    def ask(folder, sequence):
        asked.append((folder, sequence.pattern, len(sequence)))
        return next(answers)

    window.ask_film_or_photos = ask
    assert drop(window, [reel])  # a real drag and drop of the folder onto the window
    assert asked == [(reel, "frame_####.png", 10)]
    assert [(i.source.name, i.kind) for i in window.queue.items()] == [("reel", "frames")]
    assert window.queue.items()[0]._result_text() == "→ reel.mp4"  # the film's output is named in its row
    window.clear_queue()
    assert drop(window.drop_zone, [reel]) and window.queue.rowCount() == 10  # "Separate photos"
    window.clear_queue()
    window.add_paths([reel])  # "Cancel": nothing added
    assert window.queue.rowCount() == 0 and len(asked) == 3
    few = photos(tmp_path / "few", 3, name="img_{:02d}.png")[0].parent
    window.add_paths([few])  # a few numbered photos are photos: no question
    assert window.queue.rowCount() == 3 and len(asked) == 3


def test_a_video_shows_frame_progress_and_eta_then_before_after_by_frame(qtbot, store, tmp_path, model, stop_runs):
    out = tmp_path / "out"
    window = make_window(qtbot, store, model, out, open_backend=slow_opener(0.05))
    stop_runs(window)
    (tmp_path / "in").mkdir()
    clip = small_clip(tmp_path / "in" / "film.mp4", n=16)
    window.add_paths([clip])
    item = window.queue.items()[0]
    assert item.kind == "video" and item.output == out / "film.mp4" and item._result_text() == "→ film.mp4"
    seen = []

    def progress(item_id, p):
        seen.append((p.frames_done, p.frames_total, window.overall.value(), window.eta_label.text(),
                     window.queue.item_by_id(item_id).progress))

    window.runs.item_progress.connect(progress)
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.start()
    assert [s[0] for s in seen] == list(range(1, 17)) and {s[1] for s in seen} == {16}
    bar_values = [s[2] for s in seen]
    assert bar_values == sorted(bar_values) and 0 < bar_values[0] < bar_values[-1]  # moves frame by frame
    assert "frame 8 / 16" in seen[7][3] and "frames/s" in seen[7][3] and "left" in seen[7][3]
    assert seen[7][4] == pytest.approx(0.5)
    assert window.overall.format() == "1 of 1 · 1 done"

    window.table.selectRow(0)  # a video: the slider walks through before/after frames
    compare = window.compare
    assert compare.scrubber.isVisibleTo(window) and compare.scrubber.maximum() == 15
    compare.scrubber.setValue(9)
    compare.wait_for_frame()
    assert compare.view.has_result() and compare.caption.full_text() == "frame 10 / 16"
    assert compare.show_button.isEnabled()


def test_a_frame_folder_can_become_frames_only(qtbot, store, tmp_path, model, stop_runs):
    out = tmp_path / "out"
    window = make_window(qtbot, store, model, out, frames_output="frames")
    stop_runs(window)
    reel = photos(tmp_path / "reel", 4, size=(24, 32), name="frame_{:04d}.png")[0].parent
    window.add_paths([reel], as_frames=True)
    assert window.queue.items()[0]._result_text() == "→ reel/ (frames)"
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.start()
    assert sorted(p.name for p in (out / "reel").iterdir()) == [f"frame_{i:04d}.png" for i in range(4)]
    window.table.selectRow(0)
    window.compare.wait_for_frame()
    assert window.compare.scrubber.maximum() == 3 and window.compare.view.has_result()
    window.clear_queue()  # nothing stale is left in the viewer
    assert not window.compare.scrubber.isVisibleTo(window) and window.compare.caption.full_text() == ""
    assert not window.compare.view.has_image() and window.viewer.details.toPlainText() == ""
