"""Synthetic films for the tests: clips encoded with PyAV, and fake backends (tests never read ../shared).

:func:`write_clip` is the one "encode these frames" loop; :func:`make_clip` builds the rich test film
(two shots, audio, subtitles, rotation, variable frame rate) on the same pieces.
:func:`iter_lab_frames` and :func:`measure_flicker` read a film back to check what a run wrote.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from colorizer.contract import ModelContract, rgb_to_lab
from colorizer.desktop.media.video_source import VideoSource
from colorizer.desktop.pipeline.temporal import FlickerMeter, SceneCutDetector


def write_clip(path: Path, frames: Iterable[np.ndarray | av.VideoFrame], *, fps: int = 24, codec: str = "libx264",
               pix_fmt: str = "yuv420p", options: dict[str, str] | None = None, color_range: int | None = None,
               colorspace: int | None = None) -> Path:
    """Encode ``frames`` — gray (H, W) or RGB (H, W, 3) uint8 arrays, or ready ``av.VideoFrame``s —
    as a video of one stream at ``fps``; the size is the first frame's. (The bench scripts use it too.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = None
        for i, picture in enumerate(frames):
            if isinstance(picture, np.ndarray):
                rgb = np.repeat(picture[..., None], 3, 2) if picture.ndim == 2 else picture
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if stream is None:
                stream = out.add_stream(codec, rate=fps)
                stream.width, stream.height, stream.pix_fmt = picture.width, picture.height, pix_fmt
                if color_range is not None:
                    stream.codec_context.color_range = color_range
                if colorspace is not None:
                    stream.codec_context.colorspace = colorspace
                if options:
                    stream.options = dict(options)
            picture.pts, picture.time_base = i, Fraction(1, fps)
            for packet in stream.encode(picture):
                out.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return path


CUT = 18


# --------------------------------------------------------------------------- synthetic material
class FakeBackend:
    """ab from L (a smooth function), plus controlled random jitter per frame."""

    name = "fake"
    contract = ModelContract(size_multiple=8, render_size=32)

    def __init__(self, noise: float = 0.0, seed: int = 0) -> None:
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.calls: list[int] = []

    def predict(self, l_norm: np.ndarray) -> np.ndarray:
        self.calls.append(len(l_norm))
        ab = np.concatenate([0.25 * l_norm + 0.1, -0.15 * l_norm], axis=1)
        if self.noise:
            ab = ab + self.noise * (self.rng.standard_normal(ab.shape) + self.rng.standard_normal((len(ab), 2, 1, 1)))
        return ab.astype(np.float32)


class ShotBackend(FakeBackend):
    """Reddish for bright frames (shot A), greenish for dark frames (shot B): a constant per frame."""

    def predict(self, l_norm: np.ndarray) -> np.ndarray:
        sign = np.where(l_norm.mean(axis=(1, 2, 3)) > 0, 1.0, -1.0)[:, None, None, None]
        return np.broadcast_to(sign * np.array([0.3, 0.0])[None, :, None, None],
                               (len(l_norm), 2, *l_norm.shape[2:])).astype(np.float32)


def gray_frame(i: int, h: int, w: int, cut: int = CUT) -> np.ndarray:
    """Shot A: bright static gradient with a dark square moving right; shot B: dark gradient, bright disc."""
    yy, xx = np.mgrid[0:h, 0:w]
    if i < cut:
        img = 100 + xx * (130 / w)
        x0 = 4 + i
        img[10:22, x0 : x0 + 12] = 20
    else:
        img = 20 + yy * (70 / h)
        img[(yy - h // 2) ** 2 + (xx - 6 - i) ** 2 < 36] = 240
    return np.repeat(img.astype(np.uint8)[..., None], 3, axis=2)


def make_clip(path: Path, w: int = 66, h: int = 50, n: int = 36, fps: int = 24, codec: str = "libx264",
              audio: str | None = "aac", subtitles: bool = False, rotation: int = 0, vfr: bool = False,
              cut: int = CUT) -> Path:
    out = av.open(str(path), "w")
    out.metadata["title"] = "Test clip"
    out.metadata["comment"] = "made in the tests"
    video = out.add_stream(codec, rate=fps)
    video.width, video.height, video.pix_fmt = w, h, "yuv420p"
    time_base = Fraction(1, 1000) if vfr else Fraction(1, fps)
    video.codec_context.time_base = time_base
    if rotation:
        video.set_display_rotation(rotation)
    sound = None
    if audio:
        sound = out.add_stream(audio, rate=48000)
        sound.layout = "mono"
        sound.metadata["language"] = "fra"
    subs = None
    if subtitles:
        subs = out.add_mux_stream("subrip")
        subs.time_base = Fraction(1, 1000)
        subs.metadata["language"] = "eng"
    pts = 0
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(gray_frame(i, h, w, cut), format="rgb24")
        frame.pts, frame.time_base = (pts, time_base) if vfr else (i, time_base)
        for packet in video.encode(frame):
            out.mux(packet)
        if subs is not None and i % 6 == 0:
            packet = av.Packet(f"line {i}".encode())
            packet.stream, packet.time_base = subs, Fraction(1, 1000)
            packet.pts = packet.dts = int(i * 1000 / fps)
            packet.duration = 200
            out.mux(packet)
        pts += 30 if i % 3 else 60  # variable frame rate
    for packet in video.encode():
        out.mux(packet)
    if subtitles:
        out.set_chapters([{"id": 1, "start": 0, "end": 500, "time_base": Fraction(1, 1000),
                           "metadata": {"title": "Opening"}}])
    if sound is not None:
        rate, total, pos = 48000, int(48000 * n / fps), 0
        while pos < total:
            k = min(960, total - pos)
            t = np.arange(pos, pos + k) / rate
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, pos, Fraction(1, rate)
            for packet in sound.encode(frame):
                out.mux(packet)
            pos += k
        for packet in sound.encode():
            out.mux(packet)
    out.close()
    return path


def iter_lab_frames(path: os.PathLike | str, max_frames: int | None = None,
                    size: int | None = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode a video to ``(L (H, W), ab (H, W, 2))`` float32 Lab frames, upright, downscaled to a
    long side of ``size`` (None: full size)."""
    with VideoSource(Path(path)) as source:
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


def measure_flicker(path: os.PathLike | str, static_threshold: float = 1.0, max_frames: int | None = None,
                    size: int | None = 256, scene_cut_threshold: float = 10.0) -> float | None:
    """The flicker metric (``temporal.FlickerMeter``) of a video file, scene cuts left out."""
    meter = FlickerMeter(static_threshold)
    detector = SceneCutDetector(scene_cut_threshold)
    for l_plane, ab in iter_lab_frames(path, max_frames, size):
        meter.update(l_plane, ab, detector.update(l_plane))
    return meter.value
