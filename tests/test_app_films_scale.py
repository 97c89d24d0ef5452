"""Films at an archivist's scale in the window: long films with long groups of pictures stepped through
frame by frame, far frames asked for and left at once, and runs of many films reporting every frame.

Measured with films made by /tmp scripts (2 shared CPU cores): a 1080p film with a key frame every 600
frames took 0.68 s a step (original and result each sought again from the key frame); a far frame asked
for and left kept the frame asked for next waiting 0.6 s; 50 films of 100 frames sent 5,100
``dataChanged`` (a table repaint, and the details of the row shown written again, per frame). Each test
here failed before its fix; they test the mechanisms (decoders opened, decodes stopped, signals sent)
on tiny films made here, never the speed.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6.QtWidgets", reason="the gui extra (PySide6) is not installed")
pytest.importorskip("pytestqt")
av = pytest.importorskip("av")

from app_helpers import make_window, small_clip  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402
from synthetic_media import write_clip  # noqa: E402

from colorizer.desktop.app import preview  # noqa: E402
from colorizer.desktop.app.compare_view import ComparePanel  # noqa: E402
from colorizer.desktop.app.queue_model import QueueItem  # noqa: E402
from colorizer.desktop.pipeline.video import VideoProgress  # noqa: E402

pytest_plugins = ["app_fixtures"]

FRAMES = 90


def long_gop_clip(path, n: int = FRAMES):
    """A film whose only key frame is its first: each frame's gray level tells it from the others."""
    frames = [np.full((32, 48), 20 + 2 * i, np.uint8) for i in range(n)]
    return write_clip(path, frames, options={"g": str(n), "keyint_min": str(n), "sc_threshold": "0", "crf": "0",
                                             "bf": "0"})


class _CountingAv:
    """``preview.av`` with its ``open`` counted (every other name as av's)."""

    def __init__(self) -> None:
        self.opened = 0

    def open(self, *args, **kwargs):
        self.opened += 1
        return av.open(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(av, name)


def test_stepping_through_a_done_film_decodes_on_instead_of_seeking_each_frame_again(qtbot, tmp_path, monkeypatch):
    """Was: every frame shown opened the film and its result again and decoded from the key frame before
    it (0.68 s a step on a 1080p film with a key frame every 600 frames). Each film is opened once, a
    step decodes one frame more, a step back is kept, and the frame shown is the frame asked for."""
    clip = long_gop_clip(tmp_path / "reel.mp4")
    expected = {i: preview.video_frame(clip, i) for i in range(50, 72)}  # each alone, from the start
    counting = _CountingAv()
    monkeypatch.setattr(preview, "av", counting)
    panel = ComparePanel()
    qtbot.addWidget(panel)
    panel.set_frame_source(preview.VideoFrames(clip, clip), 50)
    panel.wait_for_frame()
    for index in [*range(51, 72), *range(70, 66, -1)]:  # 21 steps on, 4 back
        panel.scrubber.setValue(index)
        panel.wait_for_frame()
        assert panel.view._before == expected[index] and panel.view._after == expected[index], index
    assert counting.opened == 2  # the film and its result, once each (was: 2 a frame)
    assert all(reader.seeks <= 1 for reader in panel._frames.readers.values())


def test_a_film_changed_on_disk_while_its_decoder_is_kept_open_is_read_again(tmp_path):
    """The decoder kept open must not show a film that was replaced since (written again by a run)."""
    clip = long_gop_clip(tmp_path / "reel.mp4")
    reader = preview.FilmReader(clip, 64)
    first = reader.frame(10)
    small_clip(clip, n=30)  # another film under the same name
    assert reader.frame(11) == preview.video_frame(clip, 11) != first
    clip.unlink()
    with pytest.raises(Exception):  # noqa: B017 (FFmpeg's error: the film is gone)
        reader.frame(12)


def test_a_far_frame_left_for_another_stops_decoding(qtbot):
    """Was: a frame far from its key frame was decoded to its end after the slider had moved on (0.6 s
    before the frame asked for next began, 1080p). A source that can stop is told to, and does."""
    log, stop = [], threading.Event()

    class LongGopFilm:
        frame_count = 100
        stops_early = True

        def frames(self, index, wanted=lambda: True):
            for step in range(100):  # 100 frames from its key frame, 10 ms each
                if not wanted():
                    log.append((index, step))
                    raise preview.Superseded(index)
                if index == 99 and step == 2:
                    stop.set()
                time.sleep(0.01)
            log.append((index, "done"))
            image = QImage(4, 4, QImage.Format.Format_RGB888)
            image.fill(QColor(index, 0, 0))
            return image, None

    panel = ComparePanel()
    qtbot.addWidget(panel)
    panel.set_frame_source(LongGopFilm(), 0)
    panel.wait_for_frame()
    panel.scrubber.setValue(99)
    assert stop.wait(5)
    panel.scrubber.setValue(3)
    panel.wait_for_frame()
    (index, step), last = log[1], log[-1]
    assert index == 99 and step != "done" and step < 50, log  # stopped, not decoded to its end
    assert last == (3, "done") and QColor(panel.view._before.pixel(0, 0)).red() == 3
    assert "frame 4 / 100" in panel.caption.full_text()


def test_a_superseded_frame_decode_of_a_real_film_stops_where_it_is(tmp_path):
    clip = long_gop_clip(tmp_path / "reel.mp4")
    reader = preview.FilmReader(clip, 64)
    asked = []

    def wanted():
        asked.append(1)
        return len(asked) < 10

    with pytest.raises(preview.Superseded):
        reader.frame(80, wanted)
    assert reader.position < 15  # 9 frames of 80 decoded
    assert reader.frame(81) == preview.video_frame(clip, 81)  # and the next one asked for is right


def test_a_storm_of_frame_progress_repaints_the_row_a_few_times_not_at_every_frame(qtbot, store, tmp_path):
    """Was: one ``dataChanged`` per frame of every film (5,100 for 50 films of 100 frames, each a repaint
    of the row and, for the row shown, its details written again). The row's progress is current at
    once, the overall bar follows every frame, and the rows are told at most every PROGRESS_INTERVAL_MS."""
    window = make_window(qtbot, store)
    items = [QueueItem(tmp_path / f"reel{i}.mp4", "video") for i in range(3)]
    window.queue.add(items)
    window.table.selectRow(1)
    changed = []
    window.queue.dataChanged.connect(lambda *args: changed.append(args))
    for frame in range(1, 601):
        item = items[frame % 3]
        window.runs.item_progress.emit(item.id, VideoProgress(item.source, frame, 600, False, 500.0, frame / 500))
    assert items[0].progress == pytest.approx(600 / 600) and items[2].progress == pytest.approx(599 / 600)
    assert len(changed) <= 2  # was 600
    qtbot.waitUntil(lambda: len(changed) >= 1, timeout=2000)
    qtbot.wait(250)
    assert 1 <= len(changed) <= 3
    top, bottom = changed[-1][0].row(), changed[-1][1].row()
    assert (top, bottom) == (0, 2)  # every row whose progress changed, in one signal
    assert window.queue.data(window.queue.index(0, 4)) == "100%"


def raw_h264_clip(path, n: int = 40):
    """A raw H.264 stream (no container): a time base, but no frame has a timestamp to be found by."""
    with av.open(str(path), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.options = {"g": "10", "keyint_min": "10", "sc_threshold": "0", "bf": "0", "crf": "0"}
        for i in range(n):
            image = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 20 + 4 * i, np.uint8), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_film_without_timestamps_is_read_from_its_start_frame_by_frame(tmp_path):
    """Was: frame i of a raw H.264 stream was sought by a time it does not have (FFmpeg refused the seek:
    no frame past the first could be shown), and a frame without a timestamp after a seek would be
    numbered from the key frame the seek landed on. Its frames are counted from its start instead."""
    clip = raw_h264_clip(tmp_path / "reel.h264")
    reader = preview.FilmReader(clip, 64)
    for index in (0, 5, 25, 26, 12, 39):
        image = reader.frame(index)
        assert abs(QColor(image.pixel(0, 0)).red() - (20 + 4 * index)) <= 2, index
    assert abs(QColor(preview.video_frame(clip, 33).pixel(0, 0)).red() - (20 + 4 * 33)) <= 2


def test_frames_without_timestamps_after_a_seek_are_counted_from_the_start(tmp_path, monkeypatch):
    """A film the demuxer can seek in whose decoded frames carry no timestamp: where a seek landed is not
    known, so the frames are counted from the film's start instead of from the key frame it landed on."""
    frames = [np.full((32, 48), 20 + 2 * i, np.uint8) for i in range(40)]
    clip = write_clip(tmp_path / "reel.mp4", frames, options={"g": "10", "keyint_min": "10", "sc_threshold": "0",
                                                                 "crf": "0", "bf": "0"})  # a key frame every 10

    class NoTimestamps:
        def __init__(self, container) -> None:
            self._container = container

        def decode(self, *args, **kwargs):
            for frame in self._container.decode(*args, **kwargs):
                frame.pts = None
                yield frame

        def __getattr__(self, name):
            return getattr(self._container, name)

    class Av:
        def open(self, *args, **kwargs):
            return NoTimestamps(av.open(*args, **kwargs))

        def __getattr__(self, name):
            return getattr(av, name)

    monkeypatch.setattr(preview, "av", Av())
    reader = preview.FilmReader(clip, 64)
    for index in (30, 31, 10, 35):
        assert QColor(reader.frame(index).pixel(0, 0)).red() == pytest.approx(20 + 2 * index, abs=2), index


def test_a_films_progress_is_shown_on_its_row_after_rows_above_it_were_removed(tmp_path):
    """The rows whose progress changed were kept by number: a row removed above one before the next repaint
    sent the signal to the wrong row, or to none (its number past the end)."""
    from colorizer.desktop.app.queue_model import QueueModel

    model = QueueModel()
    items = [QueueItem(tmp_path / f"reel{i}.mp4", "video") for i in range(3)]
    model.add(items)
    model.set_progress(items[2].id, 0.5)
    model.remove_rows([0])
    changed = []
    model.dataChanged.connect(lambda top, bottom, *rest: changed.append((top.row(), bottom.row())))
    model.show_progress()
    assert changed == [(1, 1)]
    assert model.data(model.index(1, 4)) == "50%"
