"""Video colorization with PyAV: decode, colorize frame by frame with temporal smoothing, encode.

One pass over the source (video2x's encoder is the model): the demuxer's video packets are
decoded and colorized; every other stream's packets (audio, subtitles, extra video angles) are
muxed into the output unchanged, so they stay bit-exact. Decoding and preparing frames run on a
thread; inference, smoothing, merging and encoding on the caller's thread; queues are bounded, so
memory stays at a few dozen frames whatever the length of the film.

Frames are colorized like photos (``colorizer.colorize``: L at render size -> batched
``backend.predict`` -> guided upsampling and merge with the full-resolution L), plus temporal
smoothing of the predicted ab at render size, reset at scene cuts (``colorizer.desktop.temporal``).

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
* **Colors**: the source's YUV matrix and range are used to decode and again to encode, and its
  color tags (primaries, transfer, matrix, range) are copied, so luminance goes through
  unchanged; an untagged matrix is taken as players take it (BT.709 from 1280x720 up, BT.601
  below) and tagged on the output. Output is 8-bit (yuv420p H.264, or RGB FFV1 when lossless);
  sources with more bits are decoded at 16 bits per channel for the L channel.
* **Output**: H.264 (libx264, CRF) in MP4/MOV/MKV chosen by the output suffix; ``lossless``:
  FFV1 in Matroska. ``output_suffix`` picks MKV when the source has streams MP4 cannot hold.
  Container metadata, stream metadata (language, title), dispositions and chapters are copied;
  Matroska attachments (fonts) when the output is Matroska. Data streams (QuickTime timecode
  tracks) and cover-art pictures are not copied.
* **Safety**: the output is written to ``.<name>.partial-XXXXXXXX<suffix>`` in the output folder,
  fsynced and renamed when complete; on error or cancel it is removed. A truncated or damaged
  source (missing index, fewer frames than announced, undecodable data) is an error naming the
  file and the cause, never a short video.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from colorizer.colorize import UPSAMPLING_MODES, finish, prepare_l
from colorizer.contract import denormalize_ab, denormalize_l, rgb_to_l, rgb_to_lab
from colorizer.desktop.backends import Backend
from colorizer.desktop.batch import CancelToken
from colorizer.desktop.errors import MediaFileError
from colorizer.desktop.imagefile import PARTIAL_MARKER, detect_format
from colorizer.desktop.report import FileResult
from colorizer.desktop.tasks import Task
from colorizer.desktop.temporal import FlickerMeter, SceneCutDetector, TemporalSmoother

log = logging.getLogger(__name__)

P = TypeVar("P")

MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
"""Output suffix -> FFmpeg muxer."""
CONTAINERS = ("auto", "mp4", "mkv", "mov")
ODD_SIZE_MODES = ("pad", "crop")
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                  ".wmv", ".flv", ".3gp", ".ogv", ".dv", ".vob", ".mxf"}
_STILL_DEMUXERS = {"image2", "image2pipe", "tty", "gif", "apng", "webp"}
_DROPPED_CONTAINER_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands"}
_DROPPED_STREAM_TAGS = {"encoder", "rotate", "duration", "bps", "number_of_frames", "number_of_bytes",
                        "_statistics_tags", "_statistics_writing_app", "_statistics_writing_date_utc"}
_MAX_PACKETS_BEFORE_VIDEO = 20000
_SWS_COLORSPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}  # AVColorSpace -> swscale SWS_CS_*
_AVCOL_RGB, _AVCOL_UNSPECIFIED = 0, 2


# --------------------------------------------------------------------------- errors and settings
class VideoError(MediaFileError):
    """A video could not be read or written; the message names the file and the cause."""

    kind = "video"


class VideoReadError(VideoError):
    """The source is missing, not a video, truncated or damaged."""

    action = "read"


class VideoWriteError(VideoError):
    """The output cannot be written (container cannot hold a stream, disk full, ...)."""

    action = "write"


class ColorizeCancelled(Exception):
    """Raised inside the pipeline when its CancelToken is set."""


@dataclass(frozen=True)
class VideoSettings:
    """How videos (and frame sequences) are colorized and encoded."""

    container: str = "auto"  # auto | mp4 | mkv | mov: the output suffix output_suffix() picks
    lossless: bool = False  # FFV1 (8-bit RGB, exactly the colorized pixels) in Matroska
    crf: int = 18  # libx264 quality: 0 (lossless YUV) .. 51; 18 is visually transparent
    preset: str = "medium"  # libx264 speed/size trade-off
    temporal_strength: float = 0.6  # 0 = off; weight of a neighbor d frames away: strength ** d
    temporal_radius: int = 3  # frames each side in the smoothing window (= lookahead)
    scene_cut_threshold: float = 10.0  # mean abs L difference of thumbnails (0-100) that starts a shot
    batch_size: int = 4  # frames per inference call
    render_size: int | None = None  # None: the model's own render size
    saturation: float = 1.0
    upsampling: str = "guided"
    odd_size: str = "pad"  # pad | crop: how odd sizes become even for yuv420p
    overwrite: bool = False
    frame_rate: float = 24.0  # frame folders encoded to a video

    def __post_init__(self) -> None:
        if self.container not in CONTAINERS:
            raise ValueError(f"unknown container {self.container!r}; choose from {', '.join(CONTAINERS)}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be between 0 and 51, got {self.crf}")
        if not 0.0 <= self.temporal_strength <= 1.0:
            raise ValueError(f"temporal strength must be between 0 and 1, got {self.temporal_strength}")
        if self.temporal_radius < 0 or self.batch_size < 1:
            raise ValueError("temporal radius must be >= 0 and batch size >= 1")
        if self.scene_cut_threshold <= 0:
            raise ValueError(f"scene-cut threshold must be > 0, got {self.scene_cut_threshold}")
        if self.odd_size not in ODD_SIZE_MODES:
            raise ValueError(f"odd_size must be one of {', '.join(ODD_SIZE_MODES)}, got {self.odd_size!r}")
        if self.upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"unknown upsampling {self.upsampling!r}")
        if self.frame_rate <= 0:
            raise ValueError(f"frame rate must be > 0, got {self.frame_rate}")


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


VideoProgressCallback = Callable[[VideoProgress], None]


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` finds out without decoding."""

    path: Path
    format_name: str
    width: int  # coded size (before rotation)
    height: int
    rotation: int  # degrees counter-clockwise to display upright (0, 90, 180, 270)
    frame_rate: Fraction | None
    time_base: Fraction | None
    frames: int | None  # frame count, exact or estimated
    frames_estimated: bool
    duration_s: float | None
    streams: tuple[str, ...]  # "video:h264", "audio:aac", ...


# --------------------------------------------------------------------------- probing
def _av():
    import av  # PyAV: imported on use, so photo-only installs do not need it

    return av


def _open_input(path: Path):
    av = _av()
    if not path.exists():
        raise VideoReadError(path, "no such file")
    if path.is_dir():
        raise VideoReadError(path, "is a folder")
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as exc:
        raise VideoReadError(path, _ffmpeg_reason(exc)) from exc
    except OSError as exc:
        raise VideoReadError(path, exc.strerror or str(exc)) from exc


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    if isinstance(exc, EOFError) or text == "End of file":
        return f"the file ends unexpectedly: truncated or damaged ({text})"
    if "moov atom not found" in str(exc) or "Invalid data found" in text:
        return f"not a readable video, or truncated (the file ends before its index) ({text})"
    return text


def _main_video_stream(container):
    for stream in container.streams.video:
        if not stream.disposition & _av().stream.Disposition.attached_pic:
            return stream
    return None


def _is_still_image(container) -> bool:
    name = container.format.name
    return name.endswith("_pipe") or bool(set(name.split(",")) & _STILL_DEMUXERS)


def is_video(path: os.PathLike | str) -> bool:
    """Whether FFmpeg reads ``path`` as a moving picture (by content; cheap: opens the header only).

    Still images (JPEG, PNG, ...; also GIF and APNG), audio files (even with cover art) and
    files FFmpeg cannot read are not videos.
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        if detect_format(path) is not None:  # a photo by its magic bytes
            return False
    except Exception:
        return False
    try:
        container = _av().open(str(path), metadata_errors="replace")
    except Exception:
        return False
    try:
        return not _is_still_image(container) and _main_video_stream(container) is not None
    finally:
        container.close()


def _stream_rotation(stream) -> int:
    value = 0
    for key, tag in stream.metadata.items():  # FFmpeg before 7 exposed the display matrix as a tag
        if key.lower() == "rotate":
            with contextlib.suppress(ValueError):
                value = -int(float(tag))  # the tag is clockwise; VideoFrame.rotation counter-clockwise
    return value


def _quarter_turns(degrees: float) -> int:
    turns = round(degrees / 90.0)
    if abs(degrees - 90 * turns) > 1:
        log.warning("rotation of %.1f degrees is not a multiple of 90; using %d", degrees, 90 * turns)
    return turns % 4


def _stream_duration_s(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    for key, value in stream.metadata.items():  # Matroska: DURATION tag "00:01:02.500000000"
        if key.lower().startswith("duration"):
            match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", value.strip())
            if match:
                h, m, s = match.groups()
                return int(h) * 3600 + int(m) * 60 + float(s)
    return None


def _stream_rate(stream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return None


def _frame_total(stream, container) -> tuple[int | None, bool]:
    if stream.frames:
        return int(stream.frames), False
    duration = _stream_duration_s(stream)
    if duration is None and container.duration:
        duration = container.duration / 1_000_000
    rate = _stream_rate(stream)
    if duration and rate:
        return max(1, round(duration * rate)), True
    return None, True


def probe_video(path: os.PathLike | str) -> VideoInfo:
    """Read a video's header (no decoding); raises VideoReadError for anything that is not a video."""
    path = Path(path)
    container = _open_input(path)
    try:
        stream = _main_video_stream(container)
        if stream is None or _is_still_image(container):
            raise VideoReadError(path, "no video stream (a still image or an audio file)")
        frames, estimated = _frame_total(stream, container)
        duration = _stream_duration_s(stream)
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
        ctx = stream.codec_context
        return VideoInfo(path, container.format.name, ctx.width, ctx.height,
                         (_quarter_turns(_stream_rotation(stream)) * 90), _stream_rate(stream),
                         stream.time_base, frames, estimated, duration,
                         tuple(f"{s.type}:{_codec_name(s)}" for s in container.streams))
    finally:
        container.close()


def _codec_name(stream) -> str:
    ctx = getattr(stream, "codec_context", None)
    return (ctx.name if ctx is not None else None) or "unknown"


def _copyable_streams(container, main) -> list:
    """The streams copied into the output: audio, subtitles, other video (not cover art)."""
    chosen = []
    for stream in container.streams:
        if stream is main or stream.type not in ("audio", "subtitle", "video"):
            continue
        if stream.type == "video" and stream.disposition & _av().stream.Disposition.attached_pic:
            continue
        chosen.append(stream)
    return chosen


@functools.cache
def muxer_codecs(muxer: str) -> frozenset[str]:
    """Codec names the FFmpeg muxer ``muxer`` can store."""
    with _av().open(os.devnull, "w", format=muxer) as probe:
        return frozenset(probe.supported_codecs)


def output_suffix(source: os.PathLike | str, settings: VideoSettings) -> str:
    """The output suffix for ``source``: the chosen container, or for ``auto`` .mp4 when every
    stream to copy fits in MP4, else .mkv (e.g. SubRip/ASS subtitles, Matroska attachments).
    Lossless output is always .mkv."""
    if settings.lossless:
        return ".mkv"
    if settings.container != "auto":
        return "." + settings.container
    av = _av()
    try:
        container = av.open(str(source), metadata_errors="replace")
    except Exception:
        return ".mp4"  # unreadable: the run reports it
    try:
        mp4_codecs = muxer_codecs("mp4")
        main = _main_video_stream(container)
        fits = all(_codec_name(s) in mp4_codecs for s in _copyable_streams(container, main))
        has_attachments = any(s.type == "attachment" for s in container.streams)
        return ".mp4" if fits and not has_attachments else ".mkv"
    finally:
        container.close()


# --------------------------------------------------------------------------- the colorizing engine
@functools.cache
def _gray_l_table(dtype: str) -> np.ndarray:
    levels = np.arange(256 if dtype == "uint8" else 65536, dtype=dtype)
    return rgb_to_l(np.repeat(levels[None, :, None], 3, axis=2))[0]


def luminance(rgb: np.ndarray) -> np.ndarray:
    """``contract.rgb_to_l``, with a shortcut for gray frames (R = G = B, as black-and-white film
    decodes): L then depends on the gray level only, so it is looked up -- the same values, ~5x faster."""
    if rgb.dtype in (np.uint8, np.uint16) and np.array_equal(rgb[..., 0], rgb[..., 1]) \
            and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return _gray_l_table(rgb.dtype.name)[rgb[..., 0]]
    return rgb_to_l(rgb)


@dataclass
class StreamStats:
    """What the engine measured while colorizing a stream of frames."""

    frames: int = 0
    scene_cuts: list[int] = field(default_factory=list)  # indices of frames that start a new shot
    flicker_raw: FlickerMeter = field(default_factory=FlickerMeter)  # on the model's ab
    flicker_smoothed: FlickerMeter = field(default_factory=FlickerMeter)  # after smoothing
    inference_s: float = 0.0
    finish_s: float = 0.0


_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, cancel: CancelToken) -> Any:
    while True:
        if cancel.cancelled:
            raise ColorizeCancelled()
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


@dataclass
class _Pending(Generic[P]):
    payload: P
    job: Any
    cut: bool = False


def colorize_frames(frames: Iterable[tuple[P, np.ndarray]], backend: Backend, settings: VideoSettings,
                    cancel: CancelToken | None = None, stats: StreamStats | None = None,
                    ) -> Iterator[tuple[P, np.ndarray]]:
    """Colorize a stream of ``(payload, RGB frame)`` in order; yields ``(payload, float32 RGB)``.

    ``frames`` is consumed on a worker thread (decode + prepare overlap inference); frames are
    batched ``settings.batch_size`` at a time, smoothed over time (reset at scene cuts) and merged
    with their full-resolution L. At most ``2 * batch_size + 2 * temporal_radius + 1`` frames are
    held. Errors of the ``frames`` iterator are re-raised here; ``ColorizeCancelled`` on cancel.
    """
    cancel = cancel or CancelToken()
    stats = stats if stats is not None else StreamStats()
    render_size = settings.render_size or backend.contract.render_size
    multiple = backend.contract.size_multiple
    ready: queue.Queue = queue.Queue(maxsize=max(2, 2 * settings.batch_size))
    stop = threading.Event()

    def produce() -> None:
        try:
            for payload, rgb in frames:
                if stop.is_set() or cancel.cancelled:
                    return
                job = prepare_l(luminance(rgb), render_size, multiple)
                del rgb
                if not _put(ready, _Pending(payload, job), stop):
                    return
        except BaseException as exc:  # carried to the consumer, which re-raises it
            _put(ready, _Failure(exc), stop)
            return
        _put(ready, _END, stop)

    worker = threading.Thread(target=produce, name="video-decode", daemon=True)
    worker.start()
    detector = SceneCutDetector(settings.scene_cut_threshold)
    smoother: TemporalSmoother[_Pending[P]] = TemporalSmoother(settings.temporal_strength, settings.temporal_radius)
    batch: list[_Pending[P]] = []
    position = 0  # index in the stream of the next frame the detector sees

    def infer(items: list[_Pending[P]]) -> list[tuple[_Pending[P], np.ndarray]]:
        nonlocal position
        t = time.perf_counter()
        predicted = backend.predict(np.stack([p.job.model_input for p in items]))
        stats.inference_s += time.perf_counter() - t
        done = []
        for pending, ab in zip(items, predicted, strict=True):
            ab = np.array(ab, dtype=np.float32)  # own copy: a backend may reuse its output buffer
            l_small = denormalize_l(pending.job.model_input[0])
            l_visible = pending.job.padding.crop(l_small)
            pending.cut = detector.update(l_visible)
            if pending.cut:
                stats.scene_cuts.append(position)
            position += 1
            stats.flicker_raw.update(l_visible, denormalize_ab(pending.job.padding.crop(ab)).transpose(1, 2, 0),
                                     pending.cut)
            done.extend(smoother.push(pending, l_small, ab, pending.cut))
        return done

    def finished(pairs: list[tuple[_Pending[P], np.ndarray]]) -> Iterator[tuple[P, np.ndarray]]:
        for pending, ab in pairs:
            l_visible = denormalize_l(pending.job.padding.crop(pending.job.model_input[0]))
            stats.flicker_smoothed.update(l_visible,
                                          denormalize_ab(pending.job.padding.crop(ab)).transpose(1, 2, 0),
                                          pending.cut)
            t = time.perf_counter()
            rgb = finish(pending.job, ab, settings.saturation, settings.upsampling)
            stats.finish_s += time.perf_counter() - t
            stats.frames += 1
            yield pending.payload, rgb

    try:
        while True:
            item = _get(ready, cancel)
            if isinstance(item, _Failure):
                raise item.exc
            if item is not _END and batch and item.job.render_shape != batch[0].job.render_shape:
                yield from finished(infer(batch))
                batch = []
            if item is not _END:
                batch.append(item)
            if batch and (item is _END or len(batch) >= settings.batch_size):
                yield from finished(infer(batch))
                batch = []
            if cancel.cancelled:
                raise ColorizeCancelled()
            if item is _END:
                yield from finished(smoother.flush())
                return
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        worker.join()


# --------------------------------------------------------------------------- decoding
@dataclass(frozen=True)
class FrameMeta:
    """Where a decoded frame goes in the output."""

    index: int
    pts: int
    duration: int | None


class _VideoSource:
    """Demuxes a file: decodes its main video stream to upright RGB frames, hands other packets on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container = _open_input(path)
        try:
            self.stream = _main_video_stream(self.container)
            if self.stream is None or _is_still_image(self.container):
                raise VideoReadError(path, "no video stream (a still image or an audio file)")
            self.stream.codec_context.thread_type = "AUTO"  # frame + slice threads
            self.copied = _copyable_streams(self.container, self.stream)
            self.rate = _stream_rate(self.stream)
            self.time_base = self.stream.time_base or (1 / self.rate if self.rate else Fraction(1, 25))
            self.frames_total, self.total_is_estimate = _frame_total(self.stream, self.container)
            self.duration_s = _stream_duration_s(self.stream)
        except BaseException:
            self.container.close()
            raise
        self.turns = 0
        self.size: tuple[int, int] | None = None  # upright (height, width) of the first frame
        self.colorspace = _AVCOL_UNSPECIFIED
        self.color_range = 0
        self.decoded = 0
        self._last_pts: int | None = None
        self._last_end: int | None = None
        self._copied_packets: dict[int, int] = {}
        self._copied_end: dict[int, int] = {}

    def close(self) -> None:
        self.container.close()

    def frames(self, on_packet: Callable[[Any], None]) -> Iterator[tuple[FrameMeta, np.ndarray]]:
        """Decoded frames as ``(FrameMeta, upright RGB uint8/uint16)``; other packets go to ``on_packet``."""
        av = _av()
        video_index = self.stream.index
        copied = {s.index for s in self.copied}
        try:
            for packet in self.container.demux([self.stream, *self.copied]):
                if packet.stream.index != video_index:
                    if packet.stream.index in copied and not (packet.size == 0 and packet.dts is None):
                        self._count_copied(packet)
                        on_packet(packet)
                    continue
                try:
                    decoded = packet.decode()
                except av.FFmpegError as exc:
                    where = f" at {float(packet.pts * packet.time_base):.3f} s" if packet.pts is not None else ""
                    raise VideoReadError(self.path, f"damaged video data{where} ({exc})") from exc
                for frame in decoded:
                    yield self._convert(frame)
        except av.FFmpegError as exc:
            raise VideoReadError(self.path, f"reading stopped after {self.decoded} frames ({exc})") from exc
        self._check_complete()

    def _convert(self, frame) -> tuple[FrameMeta, np.ndarray]:
        colorspace = effective_colorspace(frame.colorspace, frame.width, frame.height)
        if self.decoded == 0:
            self.turns = _quarter_turns(frame.rotation or _stream_rotation(self.stream))
            self.colorspace = colorspace
            self.color_range = int(frame.color_range)
        step = int(frame.duration) if frame.duration else self._default_step()
        pts = frame.pts if frame.pts is not None else (0 if self._last_pts is None else self._last_pts + step)
        if self._last_pts is not None and pts <= self._last_pts:
            log.warning("%s: frame %d has a timestamp out of order; shifted by one tick", self.path, self.decoded)
            pts = self._last_pts + 1
        self._last_pts, self._last_end = pts, pts + step
        depth = max(c.bits for c in frame.format.components) if frame.format.components else 8
        rgb = frame.to_ndarray(format="rgb48le" if depth > 8 else "rgb24",
                               src_colorspace=_sws_colorspace(colorspace),
                               src_color_range=int(frame.color_range))
        if self.turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, self.turns))
        if self.size is None:
            self.size = rgb.shape[:2]
        elif rgb.shape[:2] != self.size:
            raise VideoReadError(self.path, f"frame size changes mid-stream ({self.size} -> {rgb.shape[:2]}), "
                                 "which this program does not support")
        meta = FrameMeta(self.decoded, pts, int(frame.duration) if frame.duration else None)
        self.decoded += 1
        return meta, rgb

    def _default_step(self) -> int:
        if self.rate and self.time_base:
            return max(1, round(1 / (self.rate * self.time_base)))
        return 1

    def _count_copied(self, packet) -> None:
        index = packet.stream.index
        self._copied_packets[index] = self._copied_packets.get(index, 0) + 1
        if packet.pts is not None:
            end = packet.pts + (packet.duration or 0)
            self._copied_end[index] = max(end, self._copied_end.get(index, end))

    def _check_complete(self) -> None:
        """A stream that ends early is truncated (or damaged): an error, not a short video."""
        if self.decoded == 0:
            raise VideoReadError(self.path, "no video frame could be decoded (damaged or empty stream)")
        step_s = float(self._default_step() * self.time_base)
        end_s = float((self._last_end - (self.stream.start_time or 0)) * self.time_base)
        short_in_time = self.duration_s is not None and end_s < self.duration_s - max(2.5 * step_s, 0.1)
        expected = None if self.total_is_estimate else self.frames_total
        if expected and self.decoded < expected and (short_in_time or self.duration_s is None):
            raise VideoReadError(self.path, f"truncated or damaged: only {self.decoded} of {expected} frames "
                                 "could be decoded")
        if expected is None and short_in_time:
            raise VideoReadError(self.path, f"truncated or damaged: the video stops at {end_s:.2f} s of "
                                 f"{self.duration_s:.2f} s")
        for stream in self.copied:
            if stream.type != "audio":  # subtitles are sparse: their end says nothing
                continue
            got = self._copied_packets.get(stream.index, 0)
            if stream.frames and got < stream.frames:
                raise VideoReadError(self.path, f"truncated or damaged: only {got} of {stream.frames} packets of "
                                     f"audio stream #{stream.index} could be read")
            duration = _stream_duration_s(stream)
            end = self._copied_end.get(stream.index)
            if not stream.frames and duration and end is not None and stream.time_base:
                end_s = float((end - (stream.start_time or 0)) * stream.time_base)
                if end_s < duration - 0.25:
                    raise VideoReadError(self.path, f"truncated or damaged: audio stream #{stream.index} stops at "
                                         f"{end_s:.2f} s of {duration:.2f} s")


def effective_colorspace(av_colorspace: int, width: int, height: int) -> int:
    """The YUV matrix of a frame: its tag, or where untagged what players assume (BT.709 for HD,
    BT.601 otherwise); the output is encoded with the same matrix and tagged with it."""
    if int(av_colorspace) in _SWS_COLORSPACE:
        return int(av_colorspace)
    return 1 if width >= 1280 or height >= 720 else 6


def _sws_colorspace(av_colorspace: int):
    from av.video.reformatter import Colorspace

    return Colorspace(_SWS_COLORSPACE.get(int(av_colorspace), 5))


# --------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class OutputGeometry:
    """The encoded video's shape, timing and color tags."""

    width: int  # of the colorized frames (upright); odd sizes are made even here for yuv420p
    height: int
    rate: Fraction
    time_base: Fraction
    sample_aspect_ratio: Fraction | None = None
    colorspace: int = _AVCOL_UNSPECIFIED
    color_range: int = 0
    color_primaries: int = 2
    color_trc: int = 2


class VideoWriter:
    """Encodes colorized frames (H.264 or FFV1) and muxes copied packets into one output file.

    Thread-safe for :meth:`copy_packet` (decode thread) against :meth:`write` (encode thread).
    Packets that arrive before :meth:`open` are held until the streams exist.
    """

    def __init__(self, path: Path, muxer: str, settings: VideoSettings, source: _VideoSource | None = None,
                 name: Path | None = None) -> None:
        av = _av()
        self.path = path
        self.name = name or path  # the final output, for messages (path may be a temporary file)
        self.settings = settings
        self.source = source
        self._lock = threading.Lock()
        self._pending: list = []
        self._map: dict[int, Any] = {}
        self.stream = None
        options = {"movflags": "+faststart"} if muxer in ("mp4", "mov") else {}
        try:
            self.container = av.open(str(path), "w", format=muxer, options=options)
        except (av.FFmpegError, OSError) as exc:
            raise VideoWriteError(self.name, str(exc)) from exc

    def open(self, geometry: OutputGeometry) -> None:
        """Create the streams (the video encoder, the copies) and copy metadata and chapters."""
        s = self.settings
        self.geometry = geometry
        codec, pix_fmt = ("ffv1", "bgr0") if s.lossless else ("libx264", "yuv420p")
        if codec not in self.container.supported_codecs:
            raise VideoWriteError(self.name, f"the {self.container.format.name} container cannot hold "
                                  f"{codec.upper()}; write .mkv")
        width, height = geometry.width, geometry.height
        if pix_fmt == "yuv420p" and (width % 2 or height % 2):
            even = (lambda n: n + n % 2) if s.odd_size == "pad" else (lambda n: n - n % 2)
            width, height = even(width), even(height)
        self.encoded_size = (height, width)
        stream = self.container.add_stream(codec, rate=geometry.rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = geometry.time_base
        ctx = stream.codec_context
        ctx.time_base = geometry.time_base
        if geometry.sample_aspect_ratio:
            ctx.sample_aspect_ratio = geometry.sample_aspect_ratio
        if s.lossless:
            stream.options = {"level": "3", "slicecrc": "1", "g": "1"}
            ctx.colorspace = _AVCOL_RGB
            ctx.color_range = 2
        else:
            stream.options = {"crf": str(s.crf), "preset": s.preset}
            ctx.colorspace = geometry.colorspace
            ctx.color_range = geometry.color_range or 1
        ctx.color_primaries = geometry.color_primaries
        ctx.color_trc = geometry.color_trc
        self.stream = stream
        if self.source is not None:
            self._copy_from(self.source)
        try:  # header now, on this thread: opens every encoder before any other thread muxes
            self.container.start_encoding()
        except (_av().FFmpegError, OSError, ValueError) as exc:
            raise VideoWriteError(self.name, f"cannot start the output ({exc})") from exc
        with self._lock:
            pending, self._pending = self._pending, []
            for packet in pending:
                self._mux_copy(packet)

    def _copy_from(self, source: _VideoSource) -> None:
        src, out = source.container, self.container
        for key, value in src.metadata.items():
            if key.lower() not in _DROPPED_CONTAINER_TAGS:
                out.metadata[key] = value
        _copy_stream_tags(source.stream, self.stream)
        supported = out.supported_codecs
        for stream in source.copied:
            name = _codec_name(stream)
            if name not in supported:
                raise VideoWriteError(self.name, f"the {out.format.name} container cannot hold {stream.type} stream "
                                      f"#{stream.index} ({name}) of the source; write .mkv to keep every stream")
            copy = out.add_stream_from_template(stream)
            _copy_stream_tags(stream, copy)
            self._map[stream.index] = copy
        attachments = [s for s in src.streams if s.type == "attachment"]
        if attachments and out.format.name == "matroska":
            for att in attachments:
                out.add_attachment(att.name, att.mimetype, bytes(att.data))
        elif attachments:
            log.warning("%s: %d attachments (fonts) not kept: %s cannot hold them", source.path, len(attachments),
                        out.format.name)
        chapters = src.chapters()
        if chapters:
            out.set_chapters(chapters)

    def copy_packet(self, packet) -> None:
        with self._lock:
            if self.stream is None:
                if len(self._pending) >= _MAX_PACKETS_BEFORE_VIDEO:
                    raise VideoReadError(self.source.path if self.source else self.name,
                                         f"no video frame within the first {_MAX_PACKETS_BEFORE_VIDEO} packets")
                self._pending.append(packet)
            else:
                self._mux_copy(packet)

    def _mux_copy(self, packet) -> None:
        target = self._map.get(packet.stream.index)
        if target is None:
            return
        packet.stream = target
        self._mux(packet)

    def _mux(self, packet) -> None:
        av = _av()
        try:
            self.container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise VideoWriteError(self.name, str(exc)) from exc

    def write(self, rgb: np.ndarray, pts: int, duration: int | None = None) -> None:
        """Encode one colorized frame (float RGB in [0, 1], or uint8) at ``pts`` in the geometry's time base."""
        av = _av()
        pixels = _to_uint8(rgb)
        pixels = _even_size(pixels, self.encoded_size, self.settings.odd_size)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        if self.settings.lossless:
            frame = frame.reformat(format="bgr0")
        else:
            frame = frame.reformat(format="yuv420p", dst_colorspace=_sws_colorspace(self.geometry.colorspace),
                                   dst_color_range=self.geometry.color_range or 1)
        frame.pts = pts
        frame.time_base = self.geometry.time_base
        if duration:
            frame.duration = duration
        self._encode(frame)

    def finish(self) -> None:
        """Flush the encoder and write the trailer."""
        self._encode(None)
        self.close()

    def _encode(self, frame) -> None:
        """Encode one frame (None flushes) and mux the packets."""
        av = _av()
        try:
            packets = self.stream.encode(frame)
        except av.FFmpegError as exc:
            raise VideoWriteError(self.name, f"encoding failed ({exc})") from exc
        with self._lock:
            for packet in packets:
                self._mux(packet)

    def close(self) -> None:
        av = _av()
        container, self.container = getattr(self, "container", None), None
        if container is None:
            return
        try:
            container.close()
        except (av.FFmpegError, OSError) as exc:
            raise VideoWriteError(self.name, str(exc)) from exc


def _copy_stream_tags(src, dst) -> None:
    for key, value in src.metadata.items():
        if key.lower().split("-")[0] not in _DROPPED_STREAM_TAGS:
            dst.metadata[key] = value
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        dst.disposition = src.disposition


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    if rgb.dtype == np.uint16:
        return ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _even_size(rgb: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    th, tw = size
    if (h, w) == (th, tw):
        return rgb
    if mode == "crop" or th < h or tw < w:
        rgb = rgb[: min(h, th), : min(w, tw)]
    h, w = rgb.shape[:2]
    if (h, w) != (th, tw):
        rgb = np.pad(rgb, ((0, th - h), (0, tw - w), (0, 0)), mode="edge")
    return np.ascontiguousarray(rgb)


# --------------------------------------------------------------------------- files
def muxer_for(path: os.PathLike | str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in MUXERS:
        raise ValueError(f"{path}: unsupported output container {suffix!r}; use .mp4, .mkv or .mov")
    return MUXERS[suffix]


def reserve_partial(path: Path) -> Path:
    """Create ``.<stem>.partial-XXXXXXXX<suffix>`` next to ``path`` (exclusively) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(8):
        partial = path.with_name(f".{path.stem[:100]}{PARTIAL_MARKER}{secrets.token_hex(4)}{path.suffix}")
        try:
            os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return partial
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {path}")


def commit_partial(partial: Path, path: Path) -> None:
    """fsync the finished temporary file, rename it to ``path``, fsync the folder."""
    with open(partial, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove the temporary file %s: %s", path, exc)


class ProgressTracker:
    """Turns frame counts into :class:`VideoProgress` reports."""

    def __init__(self, path: Path, total: int | None, estimated: bool,
                 callback: VideoProgressCallback | None) -> None:
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


def result_timings(stats: StreamStats, tracker: ProgressTracker) -> dict:
    timings = {"frames": stats.frames, "frames_per_second": tracker.fps, "scene_cuts": len(stats.scene_cuts),
               "inference_s": stats.inference_s, "finish_s": stats.finish_s}
    for name, meter in (("flicker_raw", stats.flicker_raw), ("flicker_smoothed", stats.flicker_smoothed)):
        if meter.value is not None:
            timings[name] = meter.value
    return timings


# --------------------------------------------------------------------------- public entry point
def colorize_video(src: os.PathLike | str, dst: os.PathLike | str, backend: Backend,
                   settings: VideoSettings = VideoSettings(), progress: VideoProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> FileResult:
    """Colorize the video ``src`` into ``dst`` (.mp4, .mkv or .mov); one result, never an exception
    for a bad file: ``done`` (timings: frames, frames_per_second, scene_cuts, flicker_raw,
    flicker_smoothed), ``skipped`` (output exists), ``failed`` (reason names the file and the
    cause) or ``cancelled``. No partial output is ever left behind."""
    src, dst = Path(src), Path(dst)
    task = Task(src, dst, "video")
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    if dst.exists() and not settings.overwrite:
        return FileResult.skipped(task, "output exists (use --overwrite to redo)")
    try:
        muxer = muxer_for(dst)
    except ValueError as exc:
        return FileResult.failed(task, str(exc), backend.name)
    if dst.resolve() == src.resolve():
        return FileResult.failed(task, f"output {dst} would overwrite the input", backend.name)
    source = partial = writer = colorized = None
    try:
        source = _VideoSource(src)
        partial = reserve_partial(dst)
        writer = VideoWriter(partial, muxer, settings, source, name=dst)
        frames = source.frames(writer.copy_packet)
        first = next(frames, None)
        if first is None:
            raise VideoReadError(src, "no video frame could be decoded")
        writer.open(_geometry(source))
        stats = StreamStats()
        tracker = ProgressTracker(src, source.frames_total, source.total_is_estimate, progress)
        colorized = colorize_frames(chain([first], frames), backend, settings, cancel, stats)
        for meta, rgb in colorized:
            writer.write(rgb, meta.pts, meta.duration)
            tracker.frame_written()
        if cancel.cancelled:
            raise ColorizeCancelled()
        writer.finish()
        commit_partial(partial, dst)
        partial = None
        log.info("%s: %d frames, %d scene cuts at %s, %.1f frames/s", src, stats.frames, len(stats.scene_cuts),
                 stats.scene_cuts[:20], tracker.fps)
        return FileResult.ok(task, backend.name, time.perf_counter() - started, result_timings(stats, tracker))
    except ColorizeCancelled:
        return FileResult.cancelled(task)
    except VideoError as exc:
        return FileResult.failed(task, str(exc), backend.name)
    except OSError as exc:
        return FileResult.failed(task, f"cannot write video '{dst}': {exc.strerror or exc}", backend.name)
    except Exception as exc:
        log.exception("colorizing %s failed", src)
        return FileResult.failed(task, f"{src}: colorization failed ({type(exc).__name__}: {exc})", backend.name)
    finally:
        if colorized is not None:
            colorized.close()  # stops and joins the decode thread before its container is closed
        if writer is not None:
            with contextlib.suppress(Exception):  # already failing: the temporary file goes anyway
                writer.close()
        if source is not None:
            source.close()
        if partial is not None:
            remove_quietly(partial)


def _geometry(source: _VideoSource) -> OutputGeometry:
    height, width = source.size
    ctx = source.stream.codec_context
    sar = source.stream.sample_aspect_ratio
    if sar and source.turns % 2:
        sar = 1 / Fraction(sar)
    rate = source.rate or (1 / source.time_base)
    return OutputGeometry(width, height, Fraction(rate), Fraction(source.time_base),
                          Fraction(sar) if sar and sar != 1 else None, int(source.colorspace),
                          int(source.color_range), int(ctx.color_primaries or 2), int(ctx.color_trc or 2))


def iter_lab_frames(path: os.PathLike | str, max_frames: int | None = None,
                    size: int | None = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode a video to ``(L (H, W), ab (H, W, 2))`` float32 Lab frames, upright, downscaled to a
    long side of ``size`` (None: full size). For measuring (flicker) and tests."""
    import cv2

    source = _VideoSource(Path(path))
    try:
        for meta, rgb in source.frames(lambda packet: None):
            if max_frames is not None and meta.index >= max_frames:
                break
            h, w = rgb.shape[:2]
            if size and max(h, w) > size:
                scale = size / max(h, w)
                rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                 interpolation=cv2.INTER_AREA)
            lab = rgb_to_lab(rgb)
            yield lab[..., 0], lab[..., 1:]
    finally:
        source.close()


def measure_flicker(path: os.PathLike | str, static_threshold: float = 1.0, max_frames: int | None = None,
                    size: int | None = 256, scene_cut_threshold: float = 10.0) -> float | None:
    """The flicker metric (``temporal.flicker_metric``) of a video file, scene cuts left out."""
    meter = FlickerMeter(static_threshold)
    detector = SceneCutDetector(scene_cut_threshold)
    for l_plane, ab in iter_lab_frames(path, max_frames, size):
        meter.update(l_plane, ab, detector.update(l_plane))
    return meter.value
