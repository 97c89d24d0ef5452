"""Reading videos with PyAV: probing, recognizing videos by content, decoding upright RGB frames.

:class:`VideoSource` demuxes a file: its main video stream is decoded to upright RGB frames
(8 or 16 bits per channel) with their timestamps; the packets of every other stream worth
keeping (audio, subtitles, other video angles) are handed on untouched for the writer to copy.
Rotation (the display matrix, or the old ``rotate`` tag) is applied to the pixels; the source's
YUV matrix and range are used to decode (an untagged matrix is taken as players take it: BT.709
from 1280x720 up, BT.601 below). A stream that ends early is an error naming the file, never a
short video.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from colorizer.desktop.lazy import LazyModule
from colorizer.desktop.media.errors import VideoReadError
from colorizer.desktop.media.formats import detect_format
from colorizer.desktop.media.yuv import (
    AVCOL_RANGE_JPEG,
    BOTTOM_FIELD_FIRST,
    TOP_FIELD_FIRST,
    LumaPicture,
    luma_bits,
)

av = LazyModule("av")  # PyAV is imported on first use: photo runs never load it
log = logging.getLogger(__name__)

_STILL_DEMUXERS = {"image2", "image2pipe", "tty", "gif", "apng", "webp"}
_SWS_COLORSPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}  # AVColorSpace -> swscale SWS_CS_*
AVCOL_RGB, AVCOL_UNSPECIFIED = 0, 2


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` finds out from the header (and, for the rotation, the first frame)."""

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


@dataclass(frozen=True)
class FrameMeta:
    """Where a decoded frame goes in the output."""

    index: int
    pts: int
    duration: int | None


# --------------------------------------------------------------------------- probing
def _open_input(path: Path):
    if not path.exists():
        raise VideoReadError(path, "no such file")
    if path.is_dir():
        raise VideoReadError(path, "is a folder")
    if not path.is_file():
        raise VideoReadError(path, "not a regular file (a pipe, socket or device)")
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


def main_video_stream(container):
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
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
        container = av.open(str(path), metadata_errors="replace")
    except Exception:
        return False
    try:
        return not _is_still_image(container) and main_video_stream(container) is not None
    finally:
        container.close()


def _stream_rotation(stream) -> int:
    value = 0
    for key, tag in stream.metadata.items():  # FFmpeg before 7 exposed the display matrix as a tag
        if key.lower() == "rotate":
            with contextlib.suppress(ValueError):
                value = -int(float(tag))  # the tag is clockwise; VideoFrame.rotation counter-clockwise
    return value


def _first_frame_rotation(container, stream) -> float:
    """The display rotation FFmpeg 7 and later keep in each frame, not in the stream's tags (PyAV reads
    no stream display matrix): the first frame's, as :class:`VideoSource` applies it; 0 if none decodes."""
    try:
        for frame in container.decode(stream):
            return frame.rotation or 0
    except (av.FFmpegError, ValueError):
        pass
    return 0


def display_turns(frame, stream) -> int:
    """Quarter turns counter-clockwise that show a decoded ``frame`` of ``stream`` upright: its own
    display matrix (FFmpeg 7 and later keep it there), else the stream's rotate tag (before 7)."""
    return _quarter_turns(frame.rotation or _stream_rotation(stream))


def _quarter_turns(degrees: float) -> int:
    turns = round(degrees / 90.0)
    if abs(degrees - 90 * turns) > 1:
        log.warning("rotation of %.1f degrees is not a multiple of 90; using %d", degrees, 90 * turns)
    return turns % 4


def stream_duration_s(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    for key, value in stream.metadata.items():  # Matroska: DURATION tag "00:01:02.500000000"
        if key.lower().startswith("duration"):
            match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", value.strip())
            if match:
                h, m, s = match.groups()
                return int(h) * 3600 + int(m) * 60 + float(s)
    return None


def stream_rate(stream) -> Fraction | None:
    """A video stream's frame rate (average, else guessed, else base), or None."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return None


def _frame_total(stream, container) -> tuple[int | None, bool]:
    if stream.frames:
        return int(stream.frames), False
    duration = stream_duration_s(stream)
    if duration is None and container.duration:
        duration = container.duration / 1_000_000
    rate = stream_rate(stream)
    if duration and rate:
        return max(1, round(duration * rate)), True
    return None, True


def probe_video(path: os.PathLike | str) -> VideoInfo:
    """Read a video's header (no decoding); raises VideoReadError for anything that is not a video."""
    path = Path(path)
    container = _open_input(path)
    try:
        stream = main_video_stream(container)
        if stream is None or _is_still_image(container):
            raise VideoReadError(path, "no video stream (a still image or an audio file)")
        frames, estimated = _frame_total(stream, container)
        duration = stream_duration_s(stream)
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
        ctx = stream.codec_context
        rotation = _stream_rotation(stream) or _first_frame_rotation(container, stream)
        return VideoInfo(path, container.format.name, ctx.width, ctx.height,
                         (_quarter_turns(rotation) * 90), stream_rate(stream),
                         stream.time_base, frames, estimated, duration,
                         tuple(f"{s.type}:{codec_name(s)}" for s in container.streams))
    finally:
        container.close()


def not_a_video_reason(path: os.PathLike | str) -> str:
    """What a file FFmpeg may open, but that is no video, is (for messages)."""
    try:
        container = av.open(str(path), metadata_errors="replace")
    except Exception:
        return _unreadable_reason(Path(path))
    try:
        if main_video_stream(container) is None and container.streams.audio:
            return "an audio file: it has no video stream"
        if main_video_stream(container) is None:
            return f"a {container.format.name} file with no video stream"
        return "a still image in a format this program does not read"
    finally:
        container.close()


_CONTAINER_MAGIC = ((4, b"ftyp", "an MP4/MOV file"), (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM file"),
                    (8, b"AVI ", "an AVI file"), (0, b"\x00\x00\x01\xba", "an MPEG program stream"))


def _unreadable_reason(path: Path) -> str:
    """Why a file FFmpeg cannot open is unreadable, by its first bytes: a video container's signature
    means a damaged or truncated video (an MP4 whose recording never finished has no index)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "an empty file (0 bytes): nothing to colorize (an interrupted copy or download?)"
    for offset, magic, what in _CONTAINER_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            index = " (it has no index, no moov box: cut short, or a recording that never finished)" \
                if magic == b"ftyp" and not _has_top_level_box(path, b"moov") else ""
            return f"{what} that cannot be read: truncated or damaged{index}"
    return "not an image or video this program can read (unknown or damaged file)"


def _has_top_level_box(path: Path, kind: bytes) -> bool:
    """Whether the ISO media file ``path`` has a top-level box ``kind`` (box headers read, nothing else)."""
    try:
        with path.open("rb") as fh:
            size_left = os.fstat(fh.fileno()).st_size
            position = 0
            while position + 8 <= size_left:
                fh.seek(position)
                header = fh.read(16)
                size, box = int.from_bytes(header[:4], "big"), header[4:8]
                if box == kind:
                    return True
                if size == 1 and len(header) == 16:
                    size = int.from_bytes(header[8:16], "big")
                if size < 8:  # 0: to the end of the file; smaller: damaged
                    return False
                position += size
    except OSError:
        return False
    return False


def verify_video(path: os.PathLike | str) -> str | None:
    """Why ``path`` is not a complete video (None if it is): it must open, have a video stream and
    demux to its end without error (its packets are read, not decoded)."""
    try:
        container = av.open(str(path), metadata_errors="replace")
    except Exception as exc:
        return _ffmpeg_reason(exc)
    try:
        stream = main_video_stream(container)
        if stream is None:
            return "no video stream"
        declared, packets = stream.frames, 0
        for packet in container.demux(stream):
            packets += packet.size > 0
        if packets == 0 or (declared and packets < declared):
            return f"{packets} of {declared or 'some'} video packets"
        return None
    except Exception as exc:
        return _ffmpeg_reason(exc)
    finally:
        container.close()


def codec_name(stream) -> str:
    ctx = getattr(stream, "codec_context", None)
    return (ctx.name if ctx is not None else None) or "unknown"


def copyable_streams(container, main) -> list:
    """The streams copied into the output: audio, subtitles, other video (not cover art)."""
    chosen = []
    for stream in container.streams:
        if stream is main or stream.type not in ("audio", "subtitle", "video"):
            continue
        if stream.type == "video" and stream.disposition & av.stream.Disposition.attached_pic:
            continue
        chosen.append(stream)
    return chosen


# --------------------------------------------------------------------------- decoding
_FRAME_TIMES: OrderedDict[tuple[str, int, int], tuple[int, ...] | None] = OrderedDict()
_FRAME_TIMES_KEPT = 8
_FRAME_TIMES_LOCK = threading.Lock()  # the app's previews run on pool threads


def _frame_times(path: Path, container, stream) -> tuple[int, ...] | None:
    """The presentation times (in ``stream``'s time base) of its frames in the order they are shown,
    from its packets (demuxed, not decoded; remembered for the last few files by path, size and
    modification time); None when a packet has no time or two share one. Leaves ``container`` at its end."""
    try:
        st = os.stat(path)
        key = (str(path), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    with _FRAME_TIMES_LOCK:
        if key is not None and key in _FRAME_TIMES:
            _FRAME_TIMES.move_to_end(key)
            return _FRAME_TIMES[key]
    times: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:  # (an edit list's cut: the decoder drops its frame)
                continue
            if packet.pts is None:
                times = []
                break
            times.append(int(packet.pts))
    except av.FFmpegError:
        times = []
    ordered = tuple(sorted(times))
    result = ordered if ordered and len(set(ordered)) == len(ordered) else None
    if key is not None:
        with _FRAME_TIMES_LOCK:
            _FRAME_TIMES[key] = result
            while len(_FRAME_TIMES) > _FRAME_TIMES_KEPT:
                _FRAME_TIMES.popitem(last=False)
    return result


class VideoSource:
    """Demuxes a file: decodes its main video stream to upright RGB frames, hands other packets on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container = _open_input(path)
        try:
            self.stream = main_video_stream(self.container)
            if self.stream is None or _is_still_image(self.container):
                raise VideoReadError(path, "no video stream (a still image or an audio file)")
            self.stream.codec_context.thread_type = "AUTO"  # frame + slice threads
            self.copied = copyable_streams(self.container, self.stream)
            self.rate = stream_rate(self.stream)
            self.time_base = self.stream.time_base or (1 / self.rate if self.rate else Fraction(1, 25))
            self.frames_total, self.total_is_estimate = _frame_total(self.stream, self.container)
            self.duration_s = stream_duration_s(self.stream)
        except BaseException:
            self.container.close()
            raise
        self.turns = 0
        self.size: tuple[int, int] | None = None  # upright (height, width) of the first frame
        self.colorspace = AVCOL_UNSPECIFIED
        self.color_range = 0
        self.decoded = 0
        self._last_pts: int | None = None
        self._last_end: int | None = None
        self._copied_packets: dict[int, int] = {}
        self._copied_end: dict[int, int] = {}

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def luma_passes_through(self) -> bool:
        """Whether the stream decodes to planar Y'CbCr (any chroma subsampling) or gray, 8 to 16 bits,
        so that its frames can be read as :class:`LumaPicture` (``frames(luma=True)``) and their luma
        kept (to the nearest 8-bit code when it has more bits; an odd size padded or cropped by the
        writer as any frame's)."""
        ctx = self.stream.codec_context
        return bool(ctx.pix_fmt) and luma_bits(ctx.pix_fmt) is not None

    @property
    def field_order(self) -> int:
        """The stream's AVFieldOrder (see ``media.yuv``): interlaced top or bottom field first, or 0/1
        (unknown, progressive). Upright only: a quarter turn makes fields columns, kept as progressive."""
        order = int(self.stream.codec_context.field_order or 0)
        interlaced = order in TOP_FIELD_FIRST | BOTTOM_FIELD_FIRST
        return order if interlaced and self.turns % 2 == 0 else 0

    def frames(self, on_packet: Callable[[Any], None], luma: bool = False
               ) -> Iterator[tuple[FrameMeta, np.ndarray | LumaPicture]]:
        """Decoded frames as ``(FrameMeta, upright RGB uint8/uint16)``, or with ``luma`` (for a source
        whose :attr:`luma_passes_through`) as ``(FrameMeta, upright LumaPicture)``; other packets go to
        ``on_packet``."""
        video_index = self.stream.index
        copied = {s.index for s in self.copied}
        damaged: list[float | None] = []  # times of video packets the demuxer flags as corrupt
        try:
            for packet in self.container.demux([self.stream, *self.copied]):
                if packet.stream.index != video_index:
                    if packet.stream.index in copied and not (packet.size == 0 and packet.dts is None):
                        self._count_copied(packet)
                        on_packet(packet)
                    continue
                if packet.is_corrupt:
                    damaged.append(float(packet.pts * packet.time_base) if packet.pts is not None else None)
                try:
                    decoded = packet.decode()
                except av.FFmpegError as exc:
                    where = f" at {float(packet.pts * packet.time_base):.3f} s" if packet.pts is not None else ""
                    raise VideoReadError(self.path, f"damaged video data{where} ({exc})") from exc
                for frame in decoded:
                    yield self._convert(frame, luma)
        except av.FFmpegError as exc:
            raise VideoReadError(self.path, f"reading stopped after {self.decoded} frames ({exc})") from exc
        self._check_complete()
        if damaged:  # a glitch of a capture (a transport stream's lost packets): said, not fatal
            at = ", ".join("?" if t is None else f"{t:.2f} s" for t in damaged[:5]) + (", ..." if damaged[5:] else "")
            log.warning("%s: %d damaged video packet(s) (at %s): frames the decoder could not rebuild there are "
                        "left out of the output; the others keep their timing", self.path, len(damaged), at)

    def picture_at(self, index: int, luma: bool = False) -> np.ndarray | LumaPicture | None:
        """Frame ``index`` (from 0, in the order :meth:`frames` gives them) converted as :meth:`frames`
        converts it, found without decoding the film up to it: a seek to the key frame before its
        presentation time (the video packets' times, read once per file: :func:`_frame_times`), then
        decoding to it. None where the times cannot say which frame it is (a packet without a time,
        two frames at one time, a frame that is not where its time says): read :meth:`frames` then,
        from a fresh source (this one has moved)."""
        times = _frame_times(self.path, self.container, self.stream)
        if times is None or not 0 <= index < len(times):
            return None
        target = times[index]
        self.container.seek(target, stream=self.stream, backward=True)
        try:
            for packet in self.container.demux(self.stream):
                for frame in packet.decode():
                    if frame.pts is None or frame.pts > target:
                        return None
                    if frame.pts == target:
                        return self._convert(frame, luma)[1]
        except av.FFmpegError:
            return None
        return None

    def _convert(self, frame, luma: bool = False) -> tuple[FrameMeta, np.ndarray | LumaPicture]:
        colorspace = effective_colorspace(frame.colorspace, frame.width, frame.height)
        if self.decoded == 0:
            self.turns = display_turns(frame, self.stream)
            self.colorspace = colorspace
            # untagged: yuvj* formats are full range, and FFmpeg reads gray ones as full range too
            full = frame.format.name.startswith(("yuvj", "gray"))
            self.color_range = int(frame.color_range) or (AVCOL_RANGE_JPEG if full else 0)
        step = int(frame.duration) if frame.duration else self._default_step()
        pts = frame.pts if frame.pts is not None else (0 if self._last_pts is None else self._last_pts + step)
        if self._last_pts is not None and pts <= self._last_pts:
            log.warning("%s: frame %d has a timestamp out of order; shifted by one tick", self.path, self.decoded)
            pts = self._last_pts + 1
        self._last_pts, self._last_end = pts, pts + step
        picture = self._luma(frame) if luma else self._rgb(frame, colorspace)
        size = picture.y.shape if luma else picture.shape[:2]
        if self.size is None:
            self.size = size
        elif size != self.size:
            raise VideoReadError(self.path, f"frame size changes mid-stream ({self.size} -> {size}), "
                                 "which this program does not support")
        meta = FrameMeta(self.decoded, pts, int(frame.duration) if frame.duration else None)
        self.decoded += 1
        return meta, picture

    def _rgb(self, frame, colorspace: int) -> np.ndarray:
        depth = max(c.bits for c in frame.format.components) if frame.format.components else 8
        rgb = frame.to_ndarray(format="rgb48le" if depth > 8 else "rgb24",
                               src_colorspace=sws_colorspace(colorspace),
                               src_color_range=int(frame.color_range))
        return np.ascontiguousarray(np.rot90(rgb, self.turns)) if self.turns else rgb

    def _luma(self, frame) -> LumaPicture:
        """The frame's luma plane, upright, read in the first frame's matrix and range (as the output is tagged)."""
        stream_format = self.stream.codec_context.pix_fmt  # the format luma_passes_through accepted
        if frame.format.name != stream_format:  # a format change mid-stream: rare, converted
            frame = frame.reformat(format=stream_format)
        bits = luma_bits(stream_format)
        native = np.dtype(np.uint8 if bits == 8 else np.uint16)
        stored = native.newbyteorder("<")  # luma_bits accepts little-endian formats only
        plane = frame.planes[0]
        y = np.frombuffer(plane, stored).reshape(-1, plane.line_size // stored.itemsize)[: frame.height, : frame.width]
        y = np.rot90(y, self.turns) if self.turns else y
        return LumaPicture(np.ascontiguousarray(y, dtype=native), self.colorspace, self.color_range, bits,
                           interlaced=bool(frame.interlaced_frame) and self.turns % 2 == 0)

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
            duration = _audio_duration_s(stream)
            end = self._copied_end.get(stream.index)
            if duration is None:  # no length in time: the packets the header counts (not samples)
                if stream.frames and got < stream.frames:
                    raise VideoReadError(self.path, f"truncated or damaged: only {got} of {stream.frames} packets of "
                                         f"audio stream #{stream.index} could be read")
                continue
            end_s = float((end - (stream.start_time or 0)) * stream.time_base) if end is not None else 0.0
            if stream.time_base and end_s < duration - 0.25:
                raise VideoReadError(self.path, f"truncated or damaged: audio stream #{stream.index} stops at "
                                     f"{end_s:.2f} s of {duration:.2f} s")


def _audio_duration_s(stream) -> float | None:
    """An audio stream's declared length in seconds, or None. Its time is what says whether it is complete,
    not its frame count: MOV and AVI count PCM audio in samples (one packet holds thousands), and AVI's
    count of compressed audio frames need not be the packets it demuxes to (MP3)."""
    duration = stream_duration_s(stream)
    if duration is None and stream.frames and stream.sample_rate and codec_name(stream).startswith("pcm_"):
        duration = stream.frames / stream.sample_rate
    return duration


def effective_colorspace(av_colorspace: int, width: int, height: int) -> int:
    """The YUV matrix of a frame: its tag, or where untagged what players assume (BT.709 for HD,
    BT.601 otherwise); the output is encoded with the same matrix and tagged with it."""
    if int(av_colorspace) in _SWS_COLORSPACE:
        return int(av_colorspace)
    return 1 if width >= 1280 or height >= 720 else 6


def sws_colorspace(av_colorspace: int):
    from av.video.reformatter import Colorspace

    return Colorspace(_SWS_COLORSPACE.get(int(av_colorspace), 5))

