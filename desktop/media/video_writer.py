"""Writing videos with PyAV: colorized frames encoded, every other stream copied, one muxing pass.

:class:`VideoWriter` encodes H.264 (libx264, CRF; yuv420p, so odd sizes are padded or cropped by
one pixel, never stretched) or, lossless, FFV1 (8-bit RGB, exactly the colorized pixels) in
Matroska, and muxes the source's other packets (audio, subtitles, extra video angles) unchanged,
so they stay bit-exact. Container metadata, stream metadata (language, title), dispositions and
chapters are copied; Matroska attachments (fonts) when the output is Matroska. Data streams
(QuickTime timecode tracks) and cover-art pictures are not copied. The source's color tags
(primaries, transfer, matrix, range) are copied, so luminance goes through unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from colorizer.desktop.lazy import LazyModule
from colorizer.desktop.media.errors import VideoReadError, VideoWriteError
from colorizer.desktop.media.video_source import (
    AVCOL_RGB,
    AVCOL_UNSPECIFIED,
    VideoSource,
    codec_name,
    copyable_streams,
    main_video_stream,
    sws_colorspace,
)
from colorizer.desktop.media.yuv import BOTTOM_FIELD_FIRST, TOP_FIELD_FIRST, LumaPicture
from colorizer.fileio import os_error_reason, to_uint8

av = LazyModule("av")  # PyAV is imported on first use: photo runs never load it
log = logging.getLogger(__name__)

MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
"""Output suffix -> FFmpeg muxer."""
CONTAINERS = ("auto", "mp4", "mkv", "mov")
ODD_SIZE_MODES = ("pad", "crop")
_DROPPED_CONTAINER_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands"}
_DROPPED_STREAM_TAGS = {"encoder", "rotate", "duration", "bps", "number_of_frames", "number_of_bytes",
                        "_statistics_tags", "_statistics_writing_app", "_statistics_writing_date_utc"}
_MAX_PACKETS_BEFORE_VIDEO = 20000


@dataclass(frozen=True)
class VideoEncoding:
    """How colorized frames are encoded, and into which container."""

    container: str = "auto"  # auto | mp4 | mkv | mov: see output_suffix()
    lossless: bool = False  # FFV1 (8-bit RGB, exactly the colorized pixels) in Matroska
    crf: int = 18  # libx264 quality: 0 (lossless YUV) .. 51; 18 is visually transparent
    preset: str = "medium"  # libx264 speed/size trade-off
    odd_size: str = "pad"  # pad | crop: how odd sizes become even for yuv420p

    def __post_init__(self) -> None:
        if self.container not in CONTAINERS:
            raise ValueError(f"unknown container {self.container!r}; choose from {', '.join(CONTAINERS)}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be between 0 and 51, got {self.crf}")
        if self.odd_size not in ODD_SIZE_MODES:
            raise ValueError(f"odd_size must be one of {', '.join(ODD_SIZE_MODES)}, got {self.odd_size!r}")

    def output_suffix(self, source: os.PathLike | str) -> str:
        """The output suffix for ``source``: the chosen container, or for ``auto`` .mp4 when every
        stream to copy fits in MP4, else .mkv (e.g. SubRip/ASS subtitles, Matroska attachments), else
        .mov when only QuickTime holds them (old QuickTime audio: u-law, A-law, IMA ADPCM).
        Lossless output is always .mkv."""
        if self.lossless:
            return ".mkv"
        if self.container != "auto":
            return "." + self.container
        try:
            container = av.open(str(source), metadata_errors="replace")
        except Exception:
            return ".mp4"  # unreadable: the run reports it
        try:
            names = {codec_name(s) for s in copyable_streams(container, main_video_stream(container))}
            if any(s.type == "attachment" for s in container.streams):
                return ".mkv"
            for suffix in (".mp4", ".mkv", ".mov"):
                if names <= muxer_codecs(MUXERS[suffix]):
                    return suffix
            return ".mkv"  # no container holds them all: the writer says which stream and why
        finally:
            container.close()


@functools.cache
def muxer_codecs(muxer: str) -> frozenset[str]:
    """Codec names the FFmpeg muxer ``muxer`` can store."""
    with av.open(os.devnull, "w", format=muxer) as probe:
        return frozenset(probe.supported_codecs)


def muxer_for(path: os.PathLike | str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in MUXERS:
        raise ValueError(f"{path}: unsupported output container {suffix!r}; use .mp4, .mkv or .mov")
    return MUXERS[suffix]


@dataclass(frozen=True)
class OutputGeometry:
    """The encoded video's shape, timing and color tags."""

    width: int  # of the colorized frames (upright); odd sizes are made even here for yuv420p
    height: int
    rate: Fraction
    time_base: Fraction
    sample_aspect_ratio: Fraction | None = None
    colorspace: int = AVCOL_UNSPECIFIED
    color_range: int = 0
    color_primaries: int = 2
    color_trc: int = 2
    field_order: int = 0  # AVFieldOrder: interlaced sources stay interlaced (x264 tff/bff), 0 progressive


def _interlacing(field_order: int) -> dict[str, str]:
    """libx264's options for a source's field order: interlaced coding with its field first (players
    then deinterlace it as they did the source); none for progressive video."""
    if field_order in TOP_FIELD_FIRST:
        return {"x264-params": "tff=1"}
    if field_order in BOTTOM_FIELD_FIRST:
        return {"x264-params": "bff=1"}
    return {}


def geometry_of(source: VideoSource) -> OutputGeometry:
    height, width = source.size
    ctx = source.stream.codec_context
    sar = source.stream.sample_aspect_ratio
    if sar and source.turns % 2:
        sar = 1 / Fraction(sar)
    rate = source.rate or (1 / source.time_base)
    return OutputGeometry(width, height, Fraction(rate), Fraction(source.time_base),
                          Fraction(sar) if sar and sar != 1 else None, int(source.colorspace),
                          int(source.color_range), int(ctx.color_primaries or 2), int(ctx.color_trc or 2),
                          source.field_order)


class VideoWriter:
    """Encodes colorized frames (H.264 or FFV1) and muxes copied packets into one output file.

    Thread-safe for :meth:`copy_packet` (decode thread) against :meth:`write` (encode thread).
    Packets that arrive before :meth:`open` are held until the streams exist.
    """

    def __init__(self, path: Path, muxer: str, encoding: VideoEncoding, source: VideoSource | None = None,
                 name: Path | None = None) -> None:
        self.path = path
        self.name = name or path  # the final output, for messages (path may be a temporary file)
        self.encoding = encoding
        self.source = source
        self._lock = threading.Lock()
        self._pending: list = []
        self._map: dict[int, Any] = {}
        self.stream = None
        options = {"movflags": "+faststart"} if muxer in ("mp4", "mov") else {}
        try:
            self.container = av.open(str(path), "w", format=muxer, options=options)
        except (av.FFmpegError, OSError) as exc:
            raise VideoWriteError(self.name, _write_reason(exc)) from exc

    def open(self, geometry: OutputGeometry) -> None:
        """Create the streams (the video encoder, the copies) and copy metadata and chapters."""
        s = self.encoding
        self.geometry = geometry
        codec, pix_fmt = ("ffv1", "bgr0") if s.lossless else ("libx264", "yuv420p")
        if codec not in self.container.supported_codecs:
            raise VideoWriteError(self.name, f"the {self.container.format.name} container cannot hold "
                                  f"{codec.upper()}; write .mkv")
        width, height = geometry.width, geometry.height
        if pix_fmt == "yuv420p" and (width % 2 or height % 2):
            # crop drops the odd last row or column; a side of one pixel has none to spare: padded
            even = (lambda n: n + n % 2) if s.odd_size == "pad" else (lambda n: n - n % 2 if n > 1 else 2)
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
            ctx.colorspace = AVCOL_RGB
            ctx.color_range = 2
        else:
            stream.options = {"crf": str(s.crf), "preset": s.preset} | _interlacing(geometry.field_order)
            ctx.thread_type = "AUTO"  # x264's frame threads, as ffmpeg runs it (PyAV's default is slices)
            ctx.colorspace = geometry.colorspace
            ctx.color_range = geometry.color_range or 1
        ctx.color_primaries = geometry.color_primaries
        ctx.color_trc = geometry.color_trc
        self.stream = stream
        if self.source is not None:
            self._copy_from(self.source)
        try:  # header now, on this thread: opens every encoder before any other thread muxes
            self.container.start_encoding()
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise VideoWriteError(self.name, f"cannot start the output ({exc})") from exc
        with self._lock:
            pending, self._pending = self._pending, []
            for packet in pending:
                self._mux_copy(packet)

    def _copy_from(self, source: VideoSource) -> None:
        src, out = source.container, self.container
        for key, value in src.metadata.items():
            if key.lower() not in _DROPPED_CONTAINER_TAGS:
                out.metadata[key] = value
        _copy_stream_tags(source.stream, self.stream)
        supported = out.supported_codecs
        for stream in source.copied:
            name = codec_name(stream)
            if name not in supported:
                raise VideoWriteError(self.name, f"the {out.format.name} container cannot hold {stream.type} stream "
                                      f"#{stream.index} ({name}) of the source; {self._holding(name)}")
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

    def _holding(self, codec: str) -> str:
        """Advice for a stream of ``codec`` this container cannot hold: the outputs that can."""
        if self.encoding.lossless:  # lossless output is Matroska, always
            return "lossless output (Matroska) cannot keep it: colorize without --lossless to keep every stream"
        suffixes = [f for f, m in MUXERS.items() if m != self.container.format.name and f != ".m4v"
                    and {codec, "libx264"} <= muxer_codecs(m)]
        return f"write {' or '.join(suffixes)} to keep every stream" if suffixes else "no output container can hold it"

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
        try:
            self.container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise VideoWriteError(self.name, _write_reason(exc)) from exc

    def to_frame(self, rgb: np.ndarray):
        """A colorized frame (float RGB in [0, 1], or uint8) as the encoder's picture (yuv420p or bgr0),
        without a timestamp; any thread may call this once :meth:`open` has run."""
        pixels = to_uint8(rgb)
        height, width = self.geometry.height, self.geometry.width
        if pixels.shape[:2] != (height, width):  # only an odd size is made even here, never another size
            raise ValueError(f"a frame of {pixels.shape[1]}x{pixels.shape[0]} in a video of {width}x{height}")
        pixels = _even_size(pixels, self.encoded_size, self.encoding.odd_size)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        if self.encoding.lossless:
            return frame.reformat(format="bgr0")
        return frame.reformat(format="yuv420p", dst_colorspace=sws_colorspace(self.geometry.colorspace),
                              dst_color_range=self.geometry.color_range or 1)

    def luma_frame(self, picture: LumaPicture, cb: np.ndarray, cr: np.ndarray):
        """The encoder's yuv420p picture of a source ``picture``'s own luma plane (to the nearest 8-bit
        code when it has more bits) and new chroma planes (H.264 only; the picture's matrix and range
        are the geometry's)."""
        height, width = self.encoded_size
        if self.encoding.lossless or abs(picture.y.shape[0] - height) > 1 or abs(picture.y.shape[1] - width) > 1:
            raise ValueError(f"a luma picture of {picture.y.shape} cannot be encoded as {self.encoded_size} "
                             f"{'FFV1 RGB' if self.encoding.lossless else 'yuv420p'}")
        # an odd size: the luma padded (its last row or column repeated) or cropped as any frame's; the
        # chroma, computed for the picture's rounded-up 4:2:0 planes, is the padded one's or loses its last
        y = _even_size(picture.y8, self.encoded_size, self.encoding.odd_size)
        cb, cr = (np.ascontiguousarray(c[: height // 2, : width // 2]) for c in (cb, cr))
        frame = av.VideoFrame.from_ndarray(np.concatenate([y.reshape(-1), cb.reshape(-1), cr.reshape(-1)])
                                           .reshape(-1, width), format="yuv420p")
        frame.colorspace = self.geometry.colorspace
        frame.color_range = self.geometry.color_range or 1
        return frame

    def write(self, rgb: Any, pts: int, duration: int | None = None) -> None:
        """Encode one colorized frame (float RGB in [0, 1], uint8, or :meth:`to_frame`'s picture) at
        ``pts`` in the geometry's time base."""
        frame = rgb if isinstance(rgb, av.VideoFrame) else self.to_frame(rgb)
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
        try:
            packets = self.stream.encode(frame)
        except av.FFmpegError as exc:
            raise VideoWriteError(self.name, f"encoding failed ({exc})") from exc
        with self._lock:
            for packet in packets:
                self._mux(packet)

    def close(self) -> None:
        container, self.container = getattr(self, "container", None), None
        if container is None:
            return
        try:
            container.close()
        except (av.FFmpegError, OSError) as exc:
            raise VideoWriteError(self.name, _write_reason(exc)) from exc


def _write_reason(exc: Exception) -> str:
    """Disk full, read-only... in words; FFmpeg's own message otherwise."""
    return os_error_reason(exc) if isinstance(exc, OSError) and exc.errno else str(exc)


def _copy_stream_tags(src, dst) -> None:
    for key, value in src.metadata.items():
        if key.lower().split("-")[0] not in _DROPPED_STREAM_TAGS:
            dst.metadata[key] = value
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        dst.disposition = src.disposition


def _even_size(pixels: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """``pixels`` (H, W[, C]) cropped or edge-padded to ``size`` (the encoded size)."""
    h, w = pixels.shape[:2]
    th, tw = size
    if (h, w) == (th, tw):
        return pixels
    if mode == "crop" or th < h or tw < w:
        pixels = pixels[: min(h, th), : min(w, tw)]
    h, w = pixels.shape[:2]
    if (h, w) != (th, tw):
        pixels = np.pad(pixels, ((0, th - h), (0, tw - w)) + ((0, 0),) * (pixels.ndim - 2), mode="edge")
    return np.ascontiguousarray(pixels)
