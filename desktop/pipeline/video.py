"""Video colorization: decode, colorize frame by frame with temporal smoothing, encode.

One pass over the source (video2x's encoder is the model; a film with a hints sidecar is decoded
once before it, to track its hints: :mod:`.hint_tracking`): the video packets are decoded
(:class:`~colorizer.desktop.media.video_source.VideoSource`) and colorized; every other stream's
packets (audio, subtitles, extra video angles) are muxed into the output unchanged
(:class:`~colorizer.desktop.media.video_writer.VideoWriter`). Three threads: decoding and
preparing frames on the ``video-decode`` thread; inference, smoothing and merging on the
``video-color`` thread; encoding and muxing on the caller's thread (:func:`colorize_frames`); queues
are bounded, so memory stays at a few dozen frames whatever the length of the film.

Frames are colorized like photos (``colorizer.colorize``: L at render size -> batched
:func:`~colorizer.colorize.predict_prepared` -> guided upsampling and merge with L), plus temporal
smoothing of the predicted ab at render size, reset at scene cuts (:mod:`.temporal`).

Choices (documented for users):

* **Timestamps**: every output frame reuses its source frame's pts (and duration) in the source
  stream's time base, so frame count, frame rate, variable frame rate and duration are kept
  (Matroska stores milliseconds, so an MP4 -> MKV conversion rounds to 1 ms).
* **Rotation**: frames are colorized upright and written upright -- the display matrix (or the
  old ``rotate`` tag) is applied to the pixels and the output carries no rotation metadata, so
  every player and editor shows it the same way (as ``ffmpeg`` does by default). Multiples of
  90 degrees; flips in the matrix are ignored.
* **Odd sizes**: H.264 with yuv420p needs even sizes. ``odd_size="pad"`` (default) repeats the
  last row/column (the output is 1 pixel taller/wider; no source pixel is lost), ``"crop"``
  drops it. Never stretched. The lossless FFV1 output (8-bit RGB) keeps the exact size.
* **Colors**: a planar Y'CbCr or gray source -- any chroma subsampling, 8 to 16 bits, any size:
  nearly every H.264/HEVC/MPEG film, Motion JPEG and DV digitizations, 10-bit ProRes/FFV1 scans,
  a film scanner's gray (full range unless tagged otherwise, as FFmpeg reads it) -- keeps
  its luma plane (bit for bit at 8 bits; to the nearest 8-bit code, rounded, when it has more, L
  taken from all its bits): only the output's 4:2:0 chroma planes are computed, at their own
  resolution, from the colorized image there (:mod:`..media.yuv`, :class:`.frame_formats.LumaFrames`)
  -- no full-resolution RGB or Lab pass at all. Other sources (RGB or packed formats) and
  lossless output are decoded to RGB (16 bits per channel for more than 8 bits),
  colorized at full resolution in Lab and converted back. Either way the source's YUV matrix and
  range are used to decode and again to encode, and its color tags are copied. Output is 8-bit
  (yuv420p H.264, or RGB FFV1 when lossless).
* **Interlacing**: an interlaced source (DV, VHS and broadcast captures) is encoded interlaced in its
  own field order (libx264 ``tff``/``bff``), so players deinterlace it as they did the source; on the
  luma route its 4:2:0 chroma is sampled within each field (``LumaPicture.interlaced``). Frames are
  colorized whole (both fields together), as the model sees a progressive picture.
* **Output**: H.264 (libx264, CRF) in MP4/MOV/MKV chosen by the output suffix; ``lossless``:
  FFV1 in Matroska. ``output_suffix`` picks MKV when the source has streams MP4 cannot hold, MOV when only
  QuickTime holds them (u-law, A-law, IMA ADPCM audio).
* **Safety**: the output is written to a temporary file in the output folder, fsynced and renamed
  when complete (``colorizer.fileio.atomic_path``); on error or cancel it is removed. A truncated
  or damaged source is an error naming the file and the cause, never a short video; a packet the
  demuxer flags as damaged (a capture's lost packets) whose frames the decoder skips is a warning that
  names the file and the time (the other frames keep their timing).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from colorizer.colorize import Prepared, predict_prepared
from colorizer.contract import denormalize_ab, denormalize_l
from colorizer.desktop.backends import Backend
from colorizer.desktop.core import CancelToken, TaskKind
from colorizer.desktop.media.errors import VideoReadError, VideoWriteError
from colorizer.desktop.media.video_source import VideoSource, verify_video
from colorizer.desktop.media.video_writer import VideoWriter, geometry_of, muxer_for
from colorizer.desktop.pipeline.frame_formats import FrameFormat, LumaFrames, RgbFrames, picture_hw, picture_l
from colorizer.desktop.pipeline.hint_tracking import FilmSpread, HintPlan, plan_film_hints, read_film_hints
from colorizer.desktop.pipeline.journal import RunJournal, output_done
from colorizer.desktop.pipeline.report import FileResult
from colorizer.desktop.pipeline.settings import VideoSettings
from colorizer.desktop.pipeline.stages import SKIP_REASON
from colorizer.desktop.pipeline.tasks import Task
from colorizer.desktop.pipeline.temporal import FlickerMeter, SceneCutDetector, TemporalSmoother
from colorizer.fileio import atomic_path
from colorizer.hints import FilmHints, hints_digest

log = logging.getLogger(__name__)

P = TypeVar("P")


def output_suffix(source: os.PathLike | str, settings: VideoSettings) -> str:
    """The output suffix for the video ``source`` (see ``VideoEncoding.output_suffix``)."""
    return settings.encoding.output_suffix(source)


# --------------------------------------------------------------------------- progress
@dataclass(frozen=True)
class VideoProgress:
    """Progress of one video or frame sequence, reported after every written frame."""

    path: Path
    frames_done: int
    frames_total: int | None  # None when neither the count nor the duration is known
    total_is_estimate: bool  # True when frames_total comes from duration * frame rate
    fps: float  # frames per second so far
    elapsed_s: float

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else None


FrameProgressCallback = Callable[[VideoProgress], None]
"""Called after each written frame of a video or frame folder."""


class ProgressTracker:
    """Turns frame counts into :class:`VideoProgress` reports."""

    def __init__(self, path: Path, total: int | None, estimated: bool,
                 callback: FrameProgressCallback | None) -> None:
        self.path, self.total, self.estimated, self.callback = path, total, estimated, callback
        self.started = time.perf_counter()
        self.done = 0

    def frame_written(self) -> None:
        self.done += 1
        if self.callback is None:
            return
        elapsed = time.perf_counter() - self.started
        total = self.total
        if total is not None and self.done > total:
            total = self.done  # the estimate was short
        self.callback(VideoProgress(self.path, self.done, total, self.estimated, self.done / max(elapsed, 1e-9),
                                    elapsed))

    @property
    def fps(self) -> float:
        return self.done / max(time.perf_counter() - self.started, 1e-9)


# --------------------------------------------------------------------------- the frame colorizer
@dataclass
class StreamStats:
    """What the frame colorizer measured while colorizing a stream of frames."""

    frames: int = 0
    scene_cuts: list[int] = field(default_factory=list)  # indices of frames that start a new shot
    flicker_raw: FlickerMeter = field(default_factory=FlickerMeter)  # on the model's ab
    flicker_smoothed: FlickerMeter = field(default_factory=FlickerMeter)  # after smoothing
    inference_s: float = 0.0
    finish_s: float = 0.0

    def timings(self, fps: float) -> dict:
        """The ``timings`` of a video's or frame folder's result."""
        timings = {"frames": self.frames, "frames_per_second": fps, "scene_cuts": len(self.scene_cuts),
                   "inference_s": self.inference_s, "finish_s": self.finish_s}
        for name, meter in (("flicker_raw", self.flicker_raw), ("flicker_smoothed", self.flicker_smoothed)):
            if meter.value is not None:
                timings[name] = meter.value
        return timings


_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@dataclass
class _Pending(Generic[P]):
    payload: P
    prepared: Prepared
    picture: Any = None  # the decoded picture, kept when the frame format's finish needs it
    cut: bool = False


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, cancel: CancelToken, stop: threading.Event | None = None) -> Any:
    """The next item of ``q``; ``_END`` once ``stop`` is set (the consumer has gone: nothing more comes)."""
    while True:
        cancel.raise_if_cancelled()
        if stop is not None and stop.is_set():
            return _END
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


def _produce(frames: Iterable[tuple[P, Any]], ready: queue.Queue, stop: threading.Event,
             cancel: CancelToken, frame_format: FrameFormat, render_size: int, multiple: int,
             hint_plan: HintPlan | None = None) -> None:
    """The decode thread: prepares each frame's L (and places its tracked hints); errors are carried
    to the consumer, which re-raises them."""
    spread = FilmSpread()
    try:
        for index, (payload, picture) in enumerate(frames):
            if stop.is_set() or cancel.cancelled:
                return
            prepared = frame_format.prepare(picture, render_size, multiple)
            if hint_plan is not None:  # the spread's weights here, beside the inference thread
                prepared = spread.prepare(prepared, hint_plan.hints_at(index), picture_hw(picture))
            kept = picture if frame_format.keeps_picture else None
            del picture
            if not _put(ready, _Pending(payload, prepared, kept), stop):
                return
    except BaseException as exc:
        _put(ready, _Failure(exc), stop)
        return
    _put(ready, _END, stop)


class _FrameColorizer(Generic[P]):
    """Batches in, smoothed and finished frames out (the consumer side of :func:`colorize_frames`)."""

    def __init__(self, backend: Backend, settings: VideoSettings, stats: StreamStats,
                 frame_format: FrameFormat) -> None:
        self.backend, self.settings, self.stats, self.format = backend, settings, stats, frame_format
        self.detector = SceneCutDetector(settings.scene_cut_threshold)
        self.smoother: TemporalSmoother[_Pending[P]] = TemporalSmoother(settings.temporal_strength,
                                                                        settings.temporal_radius)
        self.position = 0  # index in the stream of the next frame the detector sees

    def infer(self, items: list[_Pending[P]]) -> Iterator[tuple[P, np.ndarray]]:
        t = time.perf_counter()
        predicted = predict_prepared(self.backend, [p.prepared for p in items])  # a hint model: guidance too
        self.stats.inference_s += time.perf_counter() - t
        done = []
        for pending, ab in zip(items, predicted, strict=True):
            ab = np.array(ab, dtype=np.float32)  # own copy: a backend may reuse its output buffer
            l_small = denormalize_l(pending.prepared.model_input[0])
            l_visible = pending.prepared.padding.crop(l_small)
            pending.cut = self.detector.update(l_visible)
            if pending.cut:
                self.stats.scene_cuts.append(self.position)
            self.position += 1
            self.stats.flicker_raw.update(l_visible, self._visible_ab(pending, ab), pending.cut)
            done.extend(self.smoother.push(pending, l_small, ab, pending.cut))
        return self.finished(done)

    def finished(self, pairs: list[tuple[_Pending[P], np.ndarray]]) -> Iterator[tuple[P, Any]]:
        for pending, ab in pairs:
            l_visible = denormalize_l(pending.prepared.padding.crop(pending.prepared.model_input[0]))
            self.stats.flicker_smoothed.update(l_visible, self._visible_ab(pending, ab), pending.cut)
            t = time.perf_counter()
            picture = self.format.finish(pending.picture, pending.prepared, ab, self.settings.saturation,
                                         self.settings.upsampling)
            self.stats.finish_s += time.perf_counter() - t
            self.stats.frames += 1
            yield pending.payload, picture

    @staticmethod
    def _visible_ab(pending: _Pending[P], ab: np.ndarray) -> np.ndarray:
        return denormalize_ab(pending.prepared.padding.crop(ab)).transpose(1, 2, 0)


def _batches(ready: queue.Queue, cancel: CancelToken, batch_size: int, stop: threading.Event
             ) -> Iterator[list[_Pending] | None]:
    """Prepared frames from ``ready`` in batches of one render shape; None once the stream has ended."""
    batch: list[_Pending] = []
    while True:
        item = _get(ready, cancel, stop)
        if isinstance(item, _Failure):
            raise item.exc
        if item is _END:
            if batch:
                yield batch
            yield None
            return
        if batch and item.prepared.render_shape != batch[0].prepared.render_shape:
            yield batch
            batch = []
        batch.append(item)
        if len(batch) >= batch_size:
            yield batch
            batch = []
        cancel.raise_if_cancelled()


def _color_loop(colorizer: _FrameColorizer, ready: queue.Queue, done: queue.Queue, stop: threading.Event,
                cancel: CancelToken) -> None:
    """The color thread: inference, smoothing, merge in order; errors go to the consumer."""
    try:
        for batch in _batches(ready, cancel, colorizer.settings.batch_size, stop):
            pairs = colorizer.infer(batch) if batch is not None else colorizer.finished(colorizer.smoother.flush())
            for payload, picture in pairs:
                if stop.is_set() or not _put(done, (payload, picture), stop):
                    return
            if batch is None:
                break
    except BaseException as exc:
        _put(done, _Failure(exc), stop)
        return
    _put(done, _END, stop)


def colorize_frames(frames: Iterable[tuple[P, Any]], backend: Backend, settings: VideoSettings,
                    cancel: CancelToken | None = None, stats: StreamStats | None = None,
                    frame_format: FrameFormat | None = None, hint_plan: HintPlan | None = None
                    ) -> Iterator[tuple[P, Any]]:
    """Colorize a stream of ``(payload, picture)`` in order; yields ``(payload, colorized picture)``,
    pictures as ``frame_format`` reads and makes them (default: RGB in, float32 RGB in [0, 1] out;
    see :mod:`.frame_formats`). Its finish runs on the color thread.

    Three threads overlap: ``frames`` is consumed and each frame's L prepared on a decode thread;
    frames are batched ``settings.batch_size`` at a time, predicted, smoothed over time (reset at
    scene cuts) and merged with their L on a color thread; the caller's thread
    takes them in order (to encode them). With a ``hint_plan`` (:mod:`.hint_tracking`) each frame
    gets its tracked hints, spread over its smoothed ab before the merge. At most
    ``3 * batch_size + 2 * temporal_radius + 2`` frames are held. Errors of the ``frames`` iterator,
    the backend or the frame format are re-raised here; :class:`Cancelled` on cancel.
    """
    cancel = cancel or CancelToken()
    frame_format = frame_format or RgbFrames()
    colorizer: _FrameColorizer[P] = _FrameColorizer(backend, settings, stats if stats is not None else StreamStats(),
                                                 frame_format)
    ready: queue.Queue = queue.Queue(maxsize=max(2, 2 * settings.batch_size))
    done: queue.Queue = queue.Queue(maxsize=max(2, settings.batch_size))
    stop = threading.Event()
    # each in a copy of this thread's context: what they log is about the film this thread works on
    workers = [threading.Thread(target=contextvars.copy_context().run, name="video-decode", daemon=True,
                                args=(_produce, frames, ready, stop, cancel, frame_format,
                                      settings.render_size or backend.contract.render_size,
                                      backend.contract.size_multiple, hint_plan)),
               threading.Thread(target=contextvars.copy_context().run, name="video-color", daemon=True,
                                args=(_color_loop, colorizer, ready, done, stop, cancel))]
    for worker in workers:
        worker.start()
    try:
        while True:
            item = _get(done, cancel)
            if isinstance(item, _Failure):
                raise item.exc
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        for worker in workers:
            while worker.is_alive():
                for q in (ready, done):
                    with contextlib.suppress(queue.Empty):
                        q.get(timeout=0.02)
            worker.join()


# --------------------------------------------------------------------------- public entry point
def colorize_video(src: os.PathLike | str, dst: os.PathLike | str, backend: Backend,
                   settings: VideoSettings | None = None, progress: FrameProgressCallback | None = None,
                   cancel: CancelToken | None = None, journal: RunJournal | None = None,
                   hints: os.PathLike | str | None = None) -> FileResult:
    """Colorize the video ``src`` into ``dst`` (.mp4, .mkv or .mov) with the key-frame hints of the
    sidecar ``hints`` (None, or no file there: none; :mod:`.hint_tracking`); one result, never an exception
    for a bad file: ``done`` (timings: frames, frames_per_second, scene_cuts, flicker_raw,
    flicker_smoothed), ``skipped`` (output exists), ``failed`` (reason names the file and the
    cause) or ``cancelled``. No partial output is ever left behind: the written file is demuxed to
    its end before it is renamed into place (and then listed in the ``journal``)."""
    src, dst = Path(src), Path(dst)
    task = Task(src, dst, TaskKind.VIDEO)
    settings = settings or VideoSettings()
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    digest = hints_digest(hints)
    if not settings.overwrite and output_done(dst, TaskKind.VIDEO, journal, digest):
        return FileResult.skipped(task, SKIP_REASON)
    try:
        muxer = muxer_for(dst)
    except ValueError as exc:
        return FileResult.failed(task, str(exc), backend.name)
    if dst.resolve() == src.resolve():
        return FileResult.failed(task, f"output {dst} would overwrite the input", backend.name)
    try:
        film_hints = read_film_hints(hints)
        with VideoSource(src) as source, atomic_path(dst) as partial:
            plan = _video_hint_plan(source, film_hints, backend, settings, cancel) if film_hints else None
            stats, tracker = _transcode(source, VideoWriter(partial, muxer, settings.encoding, source, name=dst),
                                        backend, settings, progress, cancel, plan)
            check_written_video(partial, dst)
        if journal is not None:
            journal.record(dst, plan.digest if plan else None)
        log.info("%s: %d frames, %d scene cuts at %s, %.1f frames/s", src, stats.frames, len(stats.scene_cuts),
                 stats.scene_cuts[:20], tracker.fps)
        return FileResult.ok(task, backend.name, time.perf_counter() - started, stats.timings(tracker.fps),
                             plan.report() if plan else None)
    except Exception as exc:  # one mapping for every stage (FileResult.of_error): Cancelled too
        return FileResult.of_error(task, exc, backend.name, subject=src, writing=dst)


def check_written_video(partial: Path, final: Path) -> None:
    """Raise VideoWriteError unless the file just written demuxes to its end (before its rename)."""
    reason = verify_video(partial)
    if reason:
        raise VideoWriteError(final, f"the written video is incomplete ({reason})")


def _luma_route(source: VideoSource, settings: VideoSettings) -> bool:
    return settings.luma_passthrough and source.luma_passes_through and not settings.lossless


def _video_hint_plan(source: VideoSource, hints: FilmHints, backend: Backend, settings: VideoSettings,
                     cancel: CancelToken) -> HintPlan:
    """The first pass of a film with hints: its frames decoded again (a second reader; up to the end
    of the last hinted shot) and the key frames' points tracked through their shots."""
    luma = _luma_route(source, settings)
    with VideoSource(source.path) as again, contextlib.closing(again.frames(lambda packet: None, luma)) as frames:
        return plan_film_hints((picture_l(picture) for _, picture in frames), hints,
                               settings.render_size or backend.contract.render_size, backend.contract.size_multiple,
                               settings.scene_cut_threshold, check=cancel.raise_if_cancelled)


def _transcode(source: VideoSource, writer: VideoWriter, backend: Backend, settings: VideoSettings,
               progress: FrameProgressCallback | None, cancel: CancelToken, hint_plan: HintPlan | None = None
               ) -> tuple[StreamStats, ProgressTracker]:
    """Decode, colorize and encode every frame; ``writer`` is closed whatever happens."""
    colorized = None
    try:
        luma = _luma_route(source, settings)
        frames = source.frames(writer.copy_packet, luma)
        first = next(frames, None)
        if first is None:
            raise VideoReadError(source.path, "no video frame could be decoded")
        writer.open(geometry_of(source))
        stats = StreamStats()
        tracker = ProgressTracker(source.path, source.frames_total, source.total_is_estimate, progress)
        frame_format = LumaFrames(writer.luma_frame) if luma else RgbFrames(8, writer.to_frame)
        colorized = colorize_frames(chain([first], frames), backend, settings, cancel, stats, frame_format, hint_plan)
        for meta, picture in colorized:
            writer.write(picture, meta.pts, meta.duration)
            tracker.frame_written()
        cancel.raise_if_cancelled()
        writer.finish()
        return stats, tracker
    finally:
        if colorized is not None:
            colorized.close()  # stops and joins the decode thread before its container is closed
        with contextlib.suppress(Exception):  # already failing: the temporary file goes anyway
            writer.close()

