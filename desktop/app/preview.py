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



def video_frame(path: Path, index: int, max_side: int = 1280) -> QImage | None:
    """Frame ``index`` of a video, upright, for the viewer: a seek to its time, then decoding up to it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream_rate(stream) or 24)
        base = stream.time_base
        target = (stream.start_time or 0) + round(index / rate / base) if base else None
        if target is not None and index > 0:
            container.seek(target, stream=stream, backward=True)
        chosen = None
        for n, frame in enumerate(container.decode(stream)):
            chosen = frame
            if (target is None and n >= index) or (target is not None and frame.pts is not None
                                                    and frame.pts >= target - 0.5 / rate / base):
                break
        if chosen is None:
            return None
        rgb = np.rot90(chosen.to_ndarray(format="rgb24"), k=display_turns(chosen, stream))  # as the run turns it
        return screen_size(np.ascontiguousarray(rgb), max_side)


class VideoFrames:
    """A :class:`~colorizer.desktop.app.compare_view.FrameSource` over a video and, once colorized,
    its result (the same timestamps, so frame i of both is the same moment). Frames load when shown."""

    def __init__(self, source: Path, result: Path | None, max_side: int = 1280) -> None:
        info = probe_video(source)
        self._source, self._result, self._max_side = source, result, max_side
        self.frame_count = max(1, info.frames or 1)

    def frames(self, index: int) -> tuple[QImage, QImage | None]:
        before = video_frame(self._source, index, self._max_side)
        after = None
        if self._result is not None and self._result.is_file():
            after = video_frame(self._result, index, self._max_side)
            if after is not None and before is not None and after.size() != before.size():
                after = after.scaled(before.size())  # odd sizes are padded by one pixel for H.264
        return before, after
