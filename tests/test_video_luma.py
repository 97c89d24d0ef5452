"""The luma pass-through path of 8-bit 4:2:0 videos: luma kept bit for bit, chroma computed at its
own resolution, the same colors as the full-resolution Lab path; other sources take the Lab path."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from synthetic_media import FakeBackend, gray_frame, make_clip, write_clip

from colorizer.desktop.media.video_source import VideoSource, sws_colorspace
from colorizer.desktop.media.yuv import LumaPicture
from colorizer.desktop.pipeline.settings import VideoSettings
from colorizer.desktop.pipeline.video import colorize_video

LOSSLESS_H264 = VideoSettings(crf=0, temporal_strength=0.0)  # libx264 CRF 0 on yuv420p is lossless


def planes(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every frame's (Y, Cb, Cr) planes as stored (not rotated)."""
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            assert frame.format.name in ("yuv420p", "yuvj420p")
            h, w = frame.height, frame.width
            out.append(tuple(np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: (h if i == 0 else h // 2),
                                                                                 : (w if i == 0 else w // 2)].copy()
                             for i, p in enumerate(frame.planes)))
    return out


@pytest.mark.parametrize("rotation", [0, 90])
def test_luma_passes_through_bit_for_bit(tmp_path, rotation):
    src = make_clip(tmp_path / "clip.mp4", w=64, h=48, n=12, rotation=rotation)
    with VideoSource(src) as source:
        assert source.luma_passes_through
    dst = tmp_path / "out.mp4"
    result = colorize_video(src, dst, FakeBackend(), LOSSLESS_H264)
    assert result.status == "done", result.reason
    source_planes, output_planes = planes(src), planes(dst)
    assert len(output_planes) == len(source_planes) == 12
    for (y_src, *_), (y_out, cb, cr) in zip(source_planes, output_planes, strict=True):
        upright = np.rot90(y_src, rotation // 90)
        assert y_out.shape == upright.shape
        assert np.array_equal(y_out, upright)
        assert np.abs(cb.astype(int) - 128).max() > 3 or np.abs(cr.astype(int) - 128).max() > 3  # colored


@pytest.mark.parametrize("source", ["8-bit", "10-bit"])
def test_luma_path_gives_the_colors_of_the_lab_path(tmp_path, source):
    if source == "8-bit":
        src = make_clip(tmp_path / "clip.mp4", w=96, h=64, n=8, audio=None)
    else:
        src = clip_in(tmp_path / "clip.mkv", "ffv1", "yuv420p10le", (96, 64), n=4)
    luma, lab = tmp_path / "luma.mp4", tmp_path / "lab.mp4"
    for dst, settings in ((luma, LOSSLESS_H264), (lab, dataclasses.replace(LOSSLESS_H264, luma_passthrough=False))):
        assert colorize_video(src, dst, FakeBackend(), settings).status == "done"
    for (y1, cb1, cr1), (y2, cb2, cr2) in zip(planes(luma), planes(lab), strict=True):
        for a, b in ((cb1, cb2), (cr1, cr2)):
            diff = np.abs(a.astype(int) - b.astype(int))
            assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3
        # the Lab path keeps L, so its luma moves by a little where the color is strong; the luma path keeps Y'
        assert np.abs(y1.astype(int) - y2.astype(int)).mean() < 3


def test_full_range_source_stays_full_range(tmp_path):
    src = tmp_path / "full.mp4"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.color_range = 2
        stream.options = {"crf": "0"}
        for i in range(6):
            ramp = np.broadcast_to(np.linspace(0, 255, 64).astype(np.uint8)[None, :, None] + 0 * i, (48, 64, 3))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(ramp), format="rgb24").reformat(
                format="yuv420p", dst_colorspace=sws_colorspace(6), dst_color_range=2)
            frame.color_range, frame.pts, frame.time_base = 2, i, Fraction(1, 24)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    dst = tmp_path / "out.mp4"
    assert colorize_video(src, dst, FakeBackend(), LOSSLESS_H264).status == "done"
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.color_range == 2
    for (y_src, *_), (y_out, *_) in zip(planes(src), planes(dst), strict=True):
        assert np.array_equal(y_src, y_out)
        assert y_src.min() < 16 or y_src.max() > 235  # really full range


def clip_in(path: Path, codec: str, pix_fmt: str, size: tuple[int, int], n: int = 3, color_range: int = 1) -> Path:
    """A gray clip (``gray_frame``s) encoded as ``pix_fmt`` by ``codec``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        stream.codec_context.color_range = color_range
        if codec == "libx264":
            stream.options = {"crf": "0"}
        for i in range(n):
            gray = gray_frame(i, size[1], size[0])
            if pix_fmt.endswith("le"):  # 16-bit gray with levels between the 8-bit ones
                fine = gray.astype(np.int32) * 257 + (np.arange(size[0]) * 37 % 251)[None, :, None]
                frame = av.VideoFrame.from_ndarray(np.clip(fine, 0, 65535).astype(np.uint16), format="rgb48le")
            else:
                frame = av.VideoFrame.from_ndarray(gray, format="rgb24")
            frame = frame.reformat(format=pix_fmt, dst_color_range=color_range)
            frame.pts, frame.time_base, frame.color_range = i, Fraction(1, 24), color_range
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def luma_planes(path: Path) -> list[np.ndarray]:
    """Every frame's luma plane as stored: uint8, or uint16 for more than 8 bits."""
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            bits = frame.format.components[0].bits
            dtype = np.dtype(np.uint8 if bits == 8 else "<u2")
            plane = frame.planes[0]
            out.append(np.frombuffer(plane, dtype).reshape(-1, plane.line_size // dtype.itemsize)
                       [: frame.height, : frame.width].copy())
    return out


@pytest.mark.parametrize(("codec", "pix_fmt", "size", "passes"), [
    ("libx264", "yuv420p", (64, 48), True),
    ("ffv1", "yuv420p", (65, 49), True),  # odd: the luma padded or cropped
    ("libx264", "yuv444p", (64, 48), True),  # any chroma subsampling: only Y' is read
    ("mjpeg", "yuvj422p", (64, 48), True),  # the old digitizations' Motion JPEG
    ("ffv1", "yuv420p10le", (64, 48), True),  # more bits: L from all of them, Y' to the nearest 8-bit code
    ("ffv1", "yuv422p10le", (64, 48), True),  # ProRes-like 10-bit 4:2:2
    ("ffv1", "gray", (64, 48), True),  # a film scanner's gray: its luma, full range unless tagged
    ("ffv1", "gray16le", (64, 48), True),
    ("ffv1", "bgr0", (64, 48), False),
])
def test_which_sources_pass_their_luma_through(tmp_path, codec, pix_fmt, size, passes):
    path = clip_in(tmp_path / "clip.mkv", codec, pix_fmt, size, color_range=2 if pix_fmt.startswith("yuvj") else 1)
    with VideoSource(path) as source:
        assert source.luma_passes_through is passes
    result = colorize_video(path, tmp_path / "out.mkv", FakeBackend(), VideoSettings())
    assert result.status == "done", result.reason


@pytest.mark.parametrize(("pix_fmt", "color_range"), [("yuv422p", 1), ("yuv444p", 2)])
def test_luma_of_other_8_bit_subsamplings_passes_through_bit_for_bit(tmp_path, pix_fmt, color_range):
    src = clip_in(tmp_path / "clip.mkv", "ffv1", pix_fmt, (64, 48), n=4, color_range=color_range)
    dst = tmp_path / "out.mp4"
    assert colorize_video(src, dst, FakeBackend(), LOSSLESS_H264).status == "done"
    for y_src, (y_out, cb, cr) in zip(luma_planes(src), planes(dst), strict=True):
        assert np.array_equal(y_out, y_src)
        assert np.abs(cb.astype(int) - 128).max() > 3 or np.abs(cr.astype(int) - 128).max() > 3


@pytest.mark.parametrize(("pix_fmt", "color_range"), [("yuv420p10le", 1), ("yuv422p10le", 1), ("yuv420p10le", 2)])
def test_ten_bit_luma_is_kept_to_the_nearest_8_bit_code(tmp_path, pix_fmt, color_range):
    src = clip_in(tmp_path / "clip.mkv", "ffv1", pix_fmt, (64, 48), n=4, color_range=color_range)
    dst = tmp_path / "out.mp4"
    assert colorize_video(src, dst, FakeBackend(), LOSSLESS_H264).status == "done"
    for y10, (y_out, *_) in zip(luma_planes(src), planes(dst), strict=True):
        assert y10.dtype == np.uint16 and (y10 % 4).any()  # really 10 bits, not 8 bits shifted
        want = np.round(y10 * (255 / 1023)) if color_range == 2 else np.floor(y10 / 4 + 0.5)
        assert np.array_equal(y_out, want.astype(np.uint8))


def test_l_of_wide_luma_codes_matches_the_8_bit_codes_they_scale():
    from colorizer.desktop.media.yuv import luma_l_table, luma_to_8_bits

    for full_range in (False, True):
        eight = luma_l_table(full_range)
        ten = luma_l_table(full_range, 10)
        assert ten.shape == (1024,) and np.all(np.diff(ten) >= 0)
        if full_range:
            assert np.allclose(ten[[0, 1023]], eight[[0, 255]], atol=1e-4)
        else:
            assert np.allclose(ten[::4], eight, atol=1e-4)  # limited range: code 4k is 8-bit code k
    codes = np.arange(1024, dtype=np.uint16)
    assert np.array_equal(luma_to_8_bits(codes, 10, False), np.minimum((codes.astype(int) + 2) >> 2, 255))
    full = np.round(codes.astype(np.int64) * 255 / 1023).astype(np.uint8)
    assert np.array_equal(luma_to_8_bits(codes, 10, True), full)


@pytest.mark.parametrize(("colorspace", "color_range"), [(1, 1), (5, 1), (6, 2), (9, 1)])
def test_chroma_matches_ffmpegs_conversion(colorspace, color_range):
    rng = np.random.default_rng(colorspace)
    for _ in range(10):
        color = rng.random(3).astype(np.float32)
        cb, cr = LumaPicture(np.zeros((16, 16), np.uint8), colorspace, color_range).chroma(
            np.broadcast_to(color, (8, 8, 3)).copy())
        rgb8 = np.broadcast_to(np.round(color * 255).astype(np.uint8), (16, 16, 3)).copy()
        reference = av.VideoFrame.from_ndarray(rgb8, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=sws_colorspace(colorspace), dst_color_range=color_range).to_ndarray()
        assert abs(int(cb[0, 0]) - int(reference[16, 0])) <= 1
        assert abs(int(cr[0, 0]) - int(reference[20, 0])) <= 1


def test_l_of_luma_codes_follows_the_range():
    codes = np.array([[0, 16, 128, 235], [255, 0, 0, 0]], np.uint8)
    limited = LumaPicture(codes, 1, 1).l_plane()
    full = LumaPicture(codes, 1, 2).l_plane()
    assert limited[0, 0] == limited[0, 1] == 0 and limited[0, 3] == pytest.approx(100, abs=0.01)
    assert full[0, 0] == 0 and full[1, 0] == pytest.approx(100, abs=0.01) and full[0, 1] > 0
    assert 0 < full[0, 2] < limited[0, 2] < 100  # code 128 is darker in full range than in limited


def test_an_odd_sized_picture_has_rounded_up_chroma_and_l_averaged_over_its_samples():
    """As JPEG's 4:2:0: an odd last row or column gets chroma samples of its own."""
    y = np.arange(35, dtype=np.uint8).reshape(5, 7) * 7
    picture = LumaPicture.jfif(y)
    assert picture.chroma_shape == (3, 4)
    l_plane = picture.l_plane()
    l_chroma = picture.l_chroma(l_plane)
    assert l_chroma.shape == (3, 4)
    np.testing.assert_allclose(l_chroma[0, 0], l_plane[:2, :2].mean(), rtol=1e-5)
    np.testing.assert_allclose(l_chroma[2, 3], l_plane[4, 6], rtol=1e-5)  # the corner pixel alone
    np.testing.assert_allclose(l_chroma[2, 1], l_plane[4, 2:4].mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        LumaPicture(np.zeros((4, 6), np.uint16), 1, 1)


def test_the_engine_stops_when_its_consumer_stops_early():
    """A consumer that gives up (a write error, a full disk) while decoding is slow must not leave
    the color thread waiting for frames forever."""
    import threading
    import time

    from colorizer.desktop.pipeline.video import colorize_frames

    def frames():
        yield 0, gray_frame(0, 48, 64)
        time.sleep(1.0)  # a slow decoder: the consumer stops meanwhile
        yield 1, gray_frame(1, 48, 64)

    settings = VideoSettings(batch_size=1, temporal_strength=0.0, temporal_radius=0)
    colorized = colorize_frames(frames(), FakeBackend(), settings)
    assert next(colorized)[0] == 0
    closer = threading.Thread(target=colorized.close, daemon=True)
    closer.start()
    closer.join(timeout=20)
    assert not closer.is_alive(), "the engine's threads did not stop"


def interlaced_clip(path: Path, params: str, n: int = 6) -> Path:
    """An interlaced H.264 clip (x264 ``tff=1`` or ``bff=1``) whose two fields differ."""
    return write_clip(path, (gray_frame(i, 48, 64) for i in range(n)), fps=25,
                      options={"crf": "0", "x264-params": params})


def field_order_of(path: Path) -> tuple[int, bool]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frame = next(c.decode(stream))
        return int(stream.codec_context.field_order), bool(frame.interlaced_frame)


@pytest.mark.parametrize(("params", "order"), [("tff=1", 2), ("bff=1", 3)])
def test_interlaced_films_stay_interlaced_in_their_field_order(tmp_path, params, order):
    src = interlaced_clip(tmp_path / "interlaced.mp4", params)
    assert field_order_of(src) == (order, True)
    with VideoSource(src) as source:
        assert source.field_order == order and source.luma_passes_through
    for luma in (True, False):
        dst = tmp_path / f"out_{luma}.mp4"
        settings = dataclasses.replace(LOSSLESS_H264, luma_passthrough=luma)
        assert colorize_video(src, dst, FakeBackend(), settings).status == "done"
        assert field_order_of(dst) == (order, True)
    for (y_src, *_), (y_out, *_) in zip(planes(src), planes(tmp_path / "out_True.mp4"), strict=True):
        assert np.array_equal(y_out, y_src)


def test_progressive_films_stay_progressive(tmp_path):
    src = make_clip(tmp_path / "clip.mp4", w=64, h=48, n=4, audio=None)
    with VideoSource(src) as source:
        assert source.field_order == 0
    dst = tmp_path / "out.mp4"
    assert colorize_video(src, dst, FakeBackend(), LOSSLESS_H264).status == "done"
    assert field_order_of(dst)[1] is False


def test_interlaced_chroma_samples_l_within_each_field():
    """Interlaced 4:2:0: chroma row 2j + f averages rows 4j + f and 4j + 2 + f (field f); progressive
    averages rows 2i and 2i + 1, which belong to different fields."""
    l_plane = np.zeros((8, 4), np.float32)
    l_plane[0::2] = 80.0  # top field bright, bottom field dark: a moving object between two fields
    l_plane[4::4] += 10.0  # and within the top field a difference between its rows
    y = np.zeros((8, 4), np.uint8)
    progressive = LumaPicture(y, 1, 1).l_chroma(l_plane)
    interlaced = LumaPicture(y, 1, 1, interlaced=True).l_chroma(l_plane)
    assert progressive.shape == interlaced.shape == (4, 2)
    assert np.allclose(progressive[:, 0], [40, 40, 45, 40])
    assert np.allclose(interlaced[:, 0], [80, 0, 85, 0])


@pytest.mark.parametrize("pix_fmt", ["gray", "gray10le"])
def test_gray_scans_keep_their_levels_in_a_full_range_output(tmp_path, pix_fmt):
    """An untagged gray source is full range (as FFmpeg reads it): its levels are the output's Y'
    (to the nearest 8-bit level from 10 bits), tagged full range."""
    src = clip_in(tmp_path / "scan.mkv", "ffv1", pix_fmt, (64, 48), n=3, color_range=0)
    dst = tmp_path / "out.mp4"
    assert colorize_video(src, dst, FakeBackend(), LOSSLESS_H264).status == "done"
    with av.open(str(dst)) as c:
        assert int(c.streams.video[0].codec_context.color_range) == 2
    for y_src, (y_out, cb, cr) in zip(luma_planes(src), planes(dst), strict=True):
        want = y_src if pix_fmt == "gray" else np.round(y_src.astype(np.int64) * 255 / 1023).astype(np.uint8)
        assert np.array_equal(y_out, want)
        assert np.abs(cb.astype(int) - 128).max() > 3 or np.abs(cr.astype(int) - 128).max() > 3


@pytest.mark.parametrize("odd_size", ["pad", "crop"])
def test_an_odd_sized_film_keeps_its_luma_padded_or_cropped(tmp_path, odd_size):
    src = clip_in(tmp_path / "odd.mkv", "ffv1", "yuv420p", (65, 49), n=3)
    dst = tmp_path / "out.mp4"
    settings = dataclasses.replace(LOSSLESS_H264, odd_size=odd_size)
    assert colorize_video(src, dst, FakeBackend(), settings).status == "done"
    for y_src, (y_out, cb, cr) in zip(luma_planes(src), planes(dst), strict=True):
        if odd_size == "pad":  # one more row and column, repeating the last
            assert y_out.shape == (50, 66) and cb.shape == (25, 33)
            assert np.array_equal(y_out, np.pad(y_src, ((0, 1), (0, 1)), mode="edge"))
        else:
            assert y_out.shape == (48, 64) and cb.shape == (24, 32)
            assert np.array_equal(y_out, y_src[:48, :64])
        assert np.abs(cb.astype(int) - 128).max() > 3 or np.abs(cr.astype(int) - 128).max() > 3
