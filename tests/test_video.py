"""Video and frame-sequence colorization on small synthetic clips made with PyAV in the tests."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from synthetic_media import (  # noqa: F401
    CUT,
    FakeBackend,
    ShotBackend,
    gray_frame,
    iter_lab_frames,
    make_clip,
    measure_flicker,
)

from colorizer.contract import rgb_to_l
from colorizer.desktop.core import CancelToken
from colorizer.desktop.media.image_read import read_image
from colorizer.desktop.media.video_source import is_video, probe_video
from colorizer.desktop.pipeline.frames import _frame_rate_fraction, colorize_frame_folder, find_frame_sequences
from colorizer.desktop.pipeline.settings import VideoSettings
from colorizer.desktop.pipeline.temporal import FlickerMeter, SceneCutDetector, TemporalSmoother
from colorizer.desktop.pipeline.video import colorize_video, output_suffix


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def packets(path: Path, kind: str) -> list[tuple[bytes, float | None]]:
    with av.open(str(path)) as c:
        stream = getattr(c.streams, kind)[0]
        return [(bytes(p), None if p.pts is None else float(p.pts * p.time_base)) for p in c.demux(stream) if p.size]


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- video
def test_frames_timing_audio_and_metadata_are_kept(clip, tmp_path):
    progress = []
    dst = tmp_path / "out" / "clip.mp4"
    result = colorize_video(clip, dst, FakeBackend(), VideoSettings(batch_size=4), progress=progress.append)
    assert result.status == "done", result.reason
    assert leftovers(dst.parent) == ["clip.mp4"]
    src_info, out_info = probe_video(clip), probe_video(dst)
    assert out_info.frames == src_info.frames == 36
    assert out_info.frame_rate == src_info.frame_rate == 24
    assert out_info.duration_s == pytest.approx(src_info.duration_s, abs=1e-3)
    assert frame_times(dst) == pytest.approx(frame_times(clip), abs=1e-6)
    assert packets(dst, "audio") == packets(clip, "audio")  # bit-exact, same timestamps
    with av.open(str(dst)) as c:
        assert c.metadata["title"] == "Test clip" and c.metadata["comment"] == "made in the tests"
        assert c.streams.audio[0].metadata["language"] == "fra"
        assert c.streams.video[0].codec_context.name == "h264"
    assert result.timings["frames"] == 36 and result.timings["scene_cuts"] == 1
    # progress: every frame, known total, a speed
    assert [p.frames_done for p in progress] == list(range(1, 37))
    assert progress[-1].frames_total == 36 and not progress[-1].total_is_estimate and progress[-1].fps > 0
    # luminance is the source's; color was added
    src_frames, out_frames = list(iter_lab_frames(clip, size=None)), list(iter_lab_frames(dst, size=None))
    assert np.mean([np.abs(a[0] - b[0]).mean() for a, b in zip(src_frames, out_frames, strict=True)]) < 2.0
    assert np.mean([np.abs(b[1]).mean() for b in out_frames]) > 3.0


def test_existing_output_is_skipped_unless_overwrite(clip, tmp_path):
    dst = tmp_path / "clip.mp4"
    dst.write_bytes(b"old")
    assert colorize_video(clip, dst, FakeBackend()).status == "skipped"
    assert colorize_video(clip, dst, FakeBackend(), VideoSettings(overwrite=True)).status == "done"


@pytest.mark.parametrize(("settings", "size"), [
    (VideoSettings(), (66, 50)),  # upright 65 x 49 padded to even
    (VideoSettings(odd_size="crop"), (64, 48)),
    (VideoSettings(lossless=True), (65, 49)),  # FFV1 RGB: exact size
])
def test_odd_size_rotation_vfr_and_subtitles(tmp_path, settings, size):
    src = make_clip(tmp_path / "odd.mkv", w=65, h=49, n=20, codec="ffv1", audio="libopus", subtitles=True,
                    rotation=90, vfr=True)
    assert output_suffix(src, settings) == ".mkv"  # MP4 cannot hold SubRip
    dst = tmp_path / "out.mkv"
    result = colorize_video(src, dst, FakeBackend(), settings)
    assert result.status == "done", result.reason
    with av.open(str(dst)) as c:
        frame = next(c.decode(video=0))
        assert (frame.height, frame.width) == size
        assert frame.rotation == 0  # rotation applied to the pixels, no metadata left
    assert frame_times(dst) == pytest.approx(frame_times(src), abs=1e-6)  # variable frame rate kept
    assert packets(dst, "audio") == packets(src, "audio")
    assert packets(dst, "subtitles") == packets(src, "subtitles")
    with av.open(str(dst)) as c:
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Opening"]
        assert c.streams.subtitles[0].metadata["language"] == "eng" and c.metadata["title"] == "Test clip"
    # upright: the stored frame turned 90 degrees counter-clockwise, as the display matrix says
    upright = rgb_to_l(np.ascontiguousarray(np.rot90(gray_frame(0, 49, 65))))
    assert upright.shape == (65, 49)
    out_first = next(iter_lab_frames(dst, size=None))[0][:65, :49]
    upright = upright[: out_first.shape[0], : out_first.shape[1]]  # "crop" drops the last row and column
    assert np.abs(out_first - upright).mean() < 3.0
    assert np.abs(out_first - upright[::-1, ::-1]).mean() > 10  # not the other way round


def test_mp4_output_refuses_streams_it_cannot_hold(tmp_path):
    src = make_clip(tmp_path / "subs.mkv", n=8, audio=None, subtitles=True)
    result = colorize_video(src, tmp_path / "out" / "subs.mp4", FakeBackend())
    assert result.status == "failed" and "subs.mp4" in result.reason and "cannot hold subtitle" in result.reason
    assert leftovers(tmp_path / "out") == []


def test_hard_cut_is_detected(clip):
    l_planes = [lab[0] for lab in iter_lab_frames(clip, size=None)]
    detector = SceneCutDetector()
    assert [i for i, p in enumerate(l_planes) if detector.update(p)] == [CUT]


def test_smoothing_lowers_flicker(clip, tmp_path):
    flicker = {}
    for strength in (0.0, 0.8):
        dst = tmp_path / f"s{strength}.mkv"
        result = colorize_video(clip, dst, FakeBackend(noise=0.05, seed=1),
                                VideoSettings(temporal_strength=strength, lossless=True))
        assert result.status == "done", result.reason
        flicker[strength] = measure_flicker(dst, size=None)
        if strength:
            assert result.timings["flicker_smoothed"] < 0.5 * result.timings["flicker_raw"]
    print(f"flicker on the output: off {flicker[0.0]:.2f}, strength 0.8 {flicker[0.8]:.2f} (ab units)")
    assert flicker[0.8] < 0.5 * flicker[0.0]


def test_shots_are_not_blended_across_the_cut(clip, tmp_path):
    dst = tmp_path / "shots.mkv"
    settings = VideoSettings(temporal_strength=1.0, temporal_radius=5, lossless=True)
    assert colorize_video(clip, dst, ShotBackend(), settings).status == "done"
    mean_a = [float(ab[..., 0].mean()) for _, ab in iter_lab_frames(dst, size=None)]
    assert all(a > 20 for a in mean_a[:CUT]) and all(a < -20 for a in mean_a[CUT:])
    assert mean_a[CUT - 1] == pytest.approx(mean_a[0], abs=2) and mean_a[CUT] == pytest.approx(mean_a[-1], abs=2)


def test_smoother_resets_at_cuts_keeps_order_and_bounds_memory():
    rng = np.random.default_rng(0)
    plane = np.full((16, 16), 50.0, np.float32)
    smoother: TemporalSmoother[int] = TemporalSmoother(strength=1.0, radius=3)
    out = {}
    for i in range(20):
        ab = np.full((2, 16, 16), 1.0 if i < 10 else -1.0, np.float32) + 0.2 * rng.standard_normal((2, 16, 16))
        moving = plane.copy()
        moving[:4, :4] = 100.0 if i % 2 else 0.0  # a corner that changes every frame
        ab[:, :4, :4] = i  # ... and whose color must not be averaged
        out.update(smoother.push(i, moving, ab.astype(np.float32), cut=i == 10))
        assert len(smoother._entries) <= 2 * 3 + 1
    out.update(smoother.flush())
    assert sorted(out) == list(range(20))
    assert all(out[i][:, 8:, 8:].mean() > 0.8 for i in range(10)) and all(out[i][:, 8:, 8:].mean() < -0.8
                                                                         for i in range(10, 20))
    assert out[5][:, 8:, 8:].std() < 0.12  # noise 0.2 averaged over 7 frames
    assert out[5][:, :4, :4].mean() == pytest.approx(5, abs=0.1)  # moving pixels keep their own color
    passthrough: TemporalSmoother[int] = TemporalSmoother(strength=0.0)
    assert passthrough.push(0, plane, np.zeros((2, 16, 16), np.float32))[0][0] == 0


def test_flicker_meter_counts_static_pixels_only():
    plane = np.full((8, 8), 50.0, np.float32)
    ab0, ab1 = np.zeros((8, 8, 2), np.float32), np.zeros((8, 8, 2), np.float32)
    ab1[..., 0] = 3.0
    meter = FlickerMeter()
    meter.update(plane, ab0)
    meter.update(plane, ab1)
    assert meter.value == pytest.approx(3.0)
    moved = plane + 20  # nothing static: the pair is not counted
    meter.update(moved, ab0)
    assert meter.pairs == 1
    meter.update(moved, ab1, cut=True)
    assert meter.pairs == 1


def test_truncated_video_is_reported_and_leaves_nothing(clip, tmp_path):
    data = clip.read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    out = tmp_path / "out"
    result = colorize_video(broken, out / "broken.mp4", FakeBackend())
    assert result.status == "failed" and "broken.mp4" in result.reason and "truncated" in result.reason
    assert leftovers(out) == []
    # an index-first MP4 (our own output) cut short: fewer frames than announced
    complete = tmp_path / "complete.mp4"
    assert colorize_video(clip, complete, FakeBackend()).status == "done"
    data = complete.read_bytes()
    cut_short = tmp_path / "cut_short.mp4"
    cut_short.write_bytes(data[: len(data) * 2 // 3])
    result = colorize_video(cut_short, out / "cut_short.mp4", FakeBackend())
    assert result.status == "failed" and "cut_short.mp4" in result.reason and "truncated" in result.reason
    assert leftovers(out) == []
    (tmp_path / "text.mp4").write_text("not a video")
    result = colorize_video(tmp_path / "text.mp4", out / "text.mp4", FakeBackend())
    assert result.status == "failed" and "text.mp4" in result.reason and leftovers(out) == []


def test_cancel_leaves_no_output(clip, tmp_path):
    token = CancelToken()

    def progress(p):
        if p.frames_done == 5:
            token.cancel()

    out = tmp_path / "out"
    result = colorize_video(clip, out / "clip.mp4", FakeBackend(), VideoSettings(batch_size=2), progress, token)
    assert result.status == "cancelled"
    assert leftovers(out) == []


def test_is_video_by_content(clip, tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "photo.png")
    (tmp_path / "notes.txt").write_text("hello\n" * 50)
    renamed = tmp_path / "movie.dat"
    renamed.write_bytes(clip.read_bytes())
    assert is_video(clip) and is_video(renamed)
    assert not is_video(tmp_path / "photo.png") and not is_video(tmp_path / "notes.txt")
    assert not is_video(tmp_path / "missing.mp4") and not is_video(tmp_path)


def test_with_the_tiny_exported_model(clip, tmp_path):
    from tiny_model import tiny_onnx

    from colorizer.desktop.backends import open_backend

    backend = open_backend(tiny_onnx(tmp_path), "cpu")
    result = colorize_video(clip, tmp_path / "tiny.mp4", backend, VideoSettings(batch_size=8))
    assert result.status == "done" and result.backend == "onnxruntime-cpu", result.reason
    assert probe_video(tmp_path / "tiny.mp4").frames == 36


# --------------------------------------------------------------------------- frame folders
def test_frame_folder_round_trip(tmp_path):
    src = tmp_path / "scans"
    src.mkdir()
    for i in range(1, 25):
        info = PngImagePlugin.PngInfo()
        info.add_text("Title", f"reel 3, frame {i}")
        Image.fromarray(gray_frame(i - 1, 30, 40, cut=12)[..., 0]).save(src / f"frame_{i:04d}.png", pnginfo=info)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(src / "IMG_0007.png")  # not part of the run
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(src / "IMG_0012.png")
    (src / "notes.txt").write_text("not a frame")
    sequences = find_frame_sequences(src)
    assert [(s.pattern, len(s)) for s in sequences] == [("frame_####.png", 24)]
    out = tmp_path / "colorized"
    video = out / "reel.mp4"
    result = colorize_frame_folder(src, out, FakeBackend(noise=0.02),
                                   VideoSettings(frame_rate=29.97), to_video=video)
    assert result.status == "done", result.reason
    assert result.timings["scene_cuts"] == 1
    assert leftovers(out) == sorted([f"frame_{i:04d}.png" for i in range(1, 25)] + ["reel.mp4"])
    for i in (1, 13, 24):
        before = read_image(src / f"frame_{i:04d}.png")
        after = read_image(out / f"frame_{i:04d}.png")
        assert after.rgb.shape == before.rgb.shape
        assert np.abs(rgb_to_l(after.rgb) - rgb_to_l(before.rgb)).mean() < 1.0
        assert after.metadata.text_value("Title") == f"reel 3, frame {i}"
    info = probe_video(video)
    assert info.frames == 24 and info.frame_rate == _frame_rate_fraction(29.97) == Fraction(30000, 1001)
    # a second run skips; a folder with no sequence is reported
    assert colorize_frame_folder(src, out, FakeBackend(), to_video=video).status == "skipped"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no numbered frames" in colorize_frame_folder(empty, out, FakeBackend()).reason


def test_frame_folder_with_a_broken_frame_writes_nothing(tmp_path):
    src = tmp_path / "scans"
    src.mkdir()
    for i in range(10):
        Image.fromarray(gray_frame(i, 24, 32)[..., 0]).save(src / f"f{i}.png")
    (src / "f7.png").write_bytes((src / "f7.png").read_bytes()[:60])
    out = tmp_path / "out"
    result = colorize_frame_folder(src, out, FakeBackend(), VideoSettings(batch_size=2), to_video=out / "f.mkv")
    assert result.status == "failed" and "f7.png" in result.reason
    assert leftovers(out) == []


def test_colorize_batch_cli_on_a_video_and_a_frame_folder(clip, tmp_path):
    from tiny_model import tiny_generator_file

    from colorizer.desktop.cli import main as batch_main
    from colorizer.exporter.export import export_model

    model = export_model(tiny_generator_file(tmp_path / "g.safetensors"), tmp_path / "m", name="t", fp16=False).onnx
    films = tmp_path / "films"
    films.mkdir()
    (films / "film.mp4").write_bytes(clip.read_bytes())
    (films / "notes.txt").write_text("ignored")
    assert batch_main([str(films), "-o", str(tmp_path / "out"), "--model", str(model), "-q"]) == 0
    out = tmp_path / "out" / "film.mp4"
    assert len(frame_times(out)) == len(frame_times(clip))
    assert [p for p, _ in packets(out, "audio")] == [p for p, _ in packets(clip, "audio")]
    report = json.loads((tmp_path / "out" / "colorize-report.json").read_text())
    assert report["summary"]["done"] == 1 and report["files"][0]["output"].endswith("film.mp4")

    frames = tmp_path / "reel"
    frames.mkdir()
    for i in range(6):
        Image.fromarray(gray_frame(i, 40, 48)).save(frames / f"reel_{i:04d}.png")
    args = [str(frames), "-o", str(tmp_path / "fout"), "--frames", "--frames-to-video", "--model", str(model), "-q"]
    assert batch_main(args) == 0
    assert sorted(p.name for p in (tmp_path / "fout").glob("*.png")) == sorted(p.name for p in frames.iterdir())
    assert len(frame_times(tmp_path / "fout" / "reel.mp4")) == 6
