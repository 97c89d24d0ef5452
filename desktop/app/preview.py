"""Loading the selected item's original and result for the viewer, on a pool thread.

Files are decoded by the runtime's reader (content-sniffed, EXIF orientation applied, 16-bit kept),
so the viewer shows them the way the pipeline sees them, reduced to a screen size: a JPEG already
while it is decoded (:func:`read_image_for_display`; a 100 MP scan is not decoded whole to be
shown on a screen). A photo is shown up to the size a run colorizes (the decoders' limit), with the
run's memory check (:func:`stages.photo_limits`): one too large for it says why in the view. Only
the latest request is delivered; an older one finishing late is dropped.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from colorizer.desktop.media.errors import ImageFileError
from colorizer.desktop.media.image_read import read_image_for_display
from colorizer.desktop.media.video_source import display_turns, probe_video, stream_rate
from colorizer.desktop.pipeline import stages
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.fileio import to_uint8

log = logging.getLogger(__name__)

MAX_PREVIEW_SIDE = 3000


def array_to_qimage(rgb: np.ndarray) -> QImage:
    """uint8/uint16/float RGB (H, W, 3) -> an 8-bit QImage owning its pixels."""
    rgb = to_uint8(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()


def screen_rgb(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """RGB (H, W, 3) or gray levels (H, W), reduced to a long side of at most ``max_side``, as RGB of the
    same dtype (gray made RGB at that size)."""
    h, w = pixels.shape[:2]
    if max(h, w) > max_side:
        f = max_side / max(h, w)
        pixels = cv2.resize(pixels, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return pixels


def screen_size(pixels: np.ndarray, max_side: int) -> QImage:
    """:func:`screen_rgb` as a QImage."""
    return array_to_qimage(screen_rgb(pixels, max_side))


def read_for_display(path: Path, max_side: int = MAX_PREVIEW_SIDE) -> np.ndarray:
    """The photo at ``path`` to be shown with a long side of at most ``max_side``: RGB or gray levels,
    upright, reduced while decoding where its format allows (:func:`read_image_for_display`, not yet
    to ``max_side``). Photos up to the size a run takes, each refused (ImageReadError, saying why)
    when a run with the default settings would refuse it for its memory (:func:`stages.photo_limits`)."""
    return read_image_for_display(path, max_side, **stages.photo_limits(path, ImageSettings())).pixels


def load_preview(path: Path, max_side: int = MAX_PREVIEW_SIDE) -> QImage:
    return screen_size(read_for_display(path, max_side), max_side)


class _Signals(QObject):
    loaded = Signal(int, object, object, str)  # request id, before, after (or None), message


class _Load(QRunnable):
    def __init__(self, request: int, before: Path, after: Path | None, signals: _Signals) -> None:
        super().__init__()
        self.request, self.before, self.after, self.signals = request, before, after, signals

    def run(self) -> None:
        before = after = None
        message = ""
        try:
            before = load_preview(self.before)
            if self.after is not None and self.after.is_file():
                after = load_preview(self.after)
                if after.size() != before.size():  # e.g. a result from another run
                    after = after.scaled(before.size())
        except ImageFileError as exc:
            message = str(exc)
        except Exception as exc:  # the viewer must never take the app down
            log.exception("preview of %s failed", self.before)
            message = f"cannot show {self.before.name}: {exc}"
        self.signals.loaded.emit(self.request, before, after, message)


class PreviewLoader(QObject):
    """``request(before, after)``; ``ready(before, after, message)`` comes back on the GUI thread."""

    ready = Signal(object, object, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals()
        self._signals.loaded.connect(self._deliver)
        self._ids = itertools.count(1)
        self._latest = 0

    def request(self, before: Path, after: Path | None) -> None:
        self._latest = next(self._ids)
        self._pool.start(_Load(self._latest, before, after, self._signals))

    def forget(self) -> None:
        """Drop the requests in flight (something else is shown now)."""
        self._latest = next(self._ids)

    def wait(self) -> None:
        self._pool.waitForDone()

    def _deliver(self, request: int, before, after, message: str) -> None:
        if request == self._latest:
            self.ready.emit(before, after, message)


class FrameFolderFrames:
    """A :class:`~colorizer.desktop.app.compare_view.FrameSource` over a folder of numbered frames
    and, once colorized, its output folder (same file names). Frames load when shown."""

    def __init__(self, frames: list[Path], output_dir: Path | None, max_side: int = 1600) -> None:
        self._frames = list(frames)
        self._output_dir = output_dir
        self._max_side = max_side
        self.frame_count = len(self._frames)

    def frames(self, index: int) -> tuple[QImage, QImage | None]:
        source = self._frames[index]
        before = load_preview(source, self._max_side)
        result = self._output_dir / source.name if self._output_dir is not None else None
        after = load_preview(result, self._max_side) if result is not None and result.is_file() else None
        return before, after


KEEP_FRAMES = 6  # frames of a film its reader keeps: those shown and those decoded just before them
DECODE_ON = 120  # a frame at most this far after the reader's is decoded on to, not sought


class Superseded(Exception):
    """Another frame was asked for: the decode of this one stopped where it was."""


class FilmReader:
    """A video's frames for the viewer, upright and at screen size, from a decoder kept open between
    frames: the next frame (a step, the slider moved a little) is decoded on from where the decoder is,
    not sought again from the key frame before it (a 1080p film with a key frame every 600 frames took
    0.35 s a step). A frame is found by its timestamp, as the run numbers them; a film whose frames have
    none (a raw H.264 stream) is read from its start, its frames counted. The frames shown and
    those decoded just before them are kept (:data:`KEEP_FRAMES` in all; made screen images when
    shown): a step back costs no seek. A film changed on disk since (removed, cut short, written again)
    is opened again. One thread at a time uses it (the viewer's frame thread)."""

    def __init__(self, path: Path, max_side: int = 1280) -> None:
        self.path, self.max_side = Path(path), max_side
        self._container = self._stream = self._decoder = None
        self._signature: tuple | None = None
        self._rate = self._base = self._start = None
        self.position = -1  # the index of the frame the decoder gave last (-1: none since it was opened or sought)
        self._last = None  # that frame (av.VideoFrame)
        self._kept: OrderedDict[int, object] = OrderedDict()  # index -> its screen image, or its decoded frame
        self.seeks = 0  # how often a frame was sought from a key frame (tests)
        self._seekable = True  # False: its frames have no timestamps to seek by (counted from the start)
        self._sought = False  # the decoder was sought (its frames are numbered by their timestamps alone)

    def frame(self, index: int, wanted: Callable[[], bool] = lambda: True) -> QImage | None:
        """Frame ``index`` (None: the film has no frame at all); past its end, its last frame. Raises
        :class:`Superseded` as soon as ``wanted()`` says it is not wanted any more."""
        self._check_file()
        if index in self._kept:
            return self._keep(index, self._kept[index])
        if self._decoder is None or not self.position < index <= self.position + DECODE_ON:
            self._seek(index)
        chosen = None
        while True:
            if self.position >= index and self._last is not None:
                chosen = self._last
                break
            if not wanted():
                raise Superseded(index)
            frame = next(self._decoder, None)
            if frame is None:  # the film ends before it: its last frame
                chosen = self._last
                break
            position = self._index_of(frame)
            if position is None:  # no timestamp to tell where the seek landed: from the start, counted
                self._seekable = False
                self._seek(index)
                continue
            self.position, self._last = position, frame
            if index - KEEP_FRAMES < self.position < index:
                self._keep(self.position, frame, shown=False)
        return None if chosen is None else self._keep(index, chosen)

    def close(self) -> None:
        """Close the film (the next frame asked for opens it again)."""
        if self._container is not None:
            self._container.close()
        self._container = self._stream = self._decoder = self._last = None
        self.position = -1
        self._kept.clear()

    def _check_file(self) -> None:
        try:
            st = self.path.stat()
            signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            signature = None
        if signature != self._signature or signature is None:
            self.close()
            self._signature = signature

    def _open(self) -> None:
        self._container = av.open(str(self.path))
        self._stream = stream = self._container.streams.video[0]
        self._rate = float(stream_rate(stream) or 24)
        self._base = stream.time_base
        self._start = stream.start_time or 0

    def _seek(self, index: int) -> None:
        """The decoder put before frame ``index``: at the key frame before it (the film's start without
        timestamps to seek by)."""
        if self._container is None:
            self._open()
        restart, self._sought = self._decoder is not None, False
        if index > 0 and self._seekable and self._base:
            try:
                self._container.seek(self._start + round(index / self._rate / self._base), stream=self._stream,
                                     backward=True)
                self._sought = True
                self.seeks += 1
            except av.FFmpegError:  # nothing to seek by (a raw stream): from the start
                self._seekable, restart = False, True
        if restart and not self._sought:  # the start again: opened afresh
            self.close()
            self._open()
        self.position, self._last = -1, None
        self._decoder = iter(self._container.decode(self._stream))

    def _index_of(self, frame) -> int | None:
        """The frame's number by its timestamp; without one, the next one's (None: the decoder was sought,
        so where it is is not known)."""
        if frame.pts is None or not self._base:
            return None if self._sought else self.position + 1
        return max(0, round(float((frame.pts - self._start) * self._base) * self._rate))

    def _keep(self, index: int, frame, shown: bool = True) -> QImage | None:
        """Keep frame ``index`` (the oldest kept goes); ``shown``: as a screen image, returned."""
        image = None
        if shown and not isinstance(frame, QImage):
            turns = display_turns(frame, self._stream)  # as the run turns it
            image = screen_size(np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k=turns)),
                                self.max_side)
        self._kept[index] = image if image is not None else frame
        self._kept.move_to_end(index)
        while len(self._kept) > KEEP_FRAMES:
            self._kept.popitem(last=False)
        return self._kept[index] if shown else None


def video_frame(path: Path, index: int, max_side: int = 1280) -> QImage | None:
    """Frame ``index`` of a video, upright, for the viewer (a reader of its own: see :class:`FilmReader`)."""
    reader = FilmReader(path, max_side)
    try:
        return reader.frame(index)
    finally:
        reader.close()


class VideoFrames:
    """A :class:`~colorizer.desktop.app.compare_view.FrameSource` over a video and, once colorized,
    its result (the same timestamps, so frame i of both is the same moment). Frames load when shown,
    each film through a :class:`FilmReader` kept open (:meth:`release` closes them)."""

    stops_early = True  # frames(index, wanted) raises Superseded once wanted() is false

    def __init__(self, source: Path, result: Path | None, max_side: int = 1280) -> None:
        info = probe_video(source)
        self._source, self._result, self._max_side = source, result, max_side
        self.frame_count = max(1, info.frames or 1)
        self.readers = {"before": FilmReader(source, max_side)}
        if result is not None:
            self.readers["after"] = FilmReader(result, max_side)

    def frames(self, index: int, wanted: Callable[[], bool] = lambda: True) -> tuple[QImage, QImage | None]:
        """Frame ``index`` before and after; :class:`Superseded` when ``wanted()`` says no meanwhile."""
        before = self.readers["before"].frame(index, wanted)
        after = None
        if self._result is not None and self._result.is_file():
            after = self.readers["after"].frame(index, wanted)
            if after is not None and before is not None and after.size() != before.size():
                after = after.scaled(before.size())  # odd sizes are padded by one pixel for H.264
        return before, after

    def release(self) -> None:
        """Close the films (the next frame opens them again): nothing of them is held open."""
        for reader in self.readers.values():
            reader.close()
