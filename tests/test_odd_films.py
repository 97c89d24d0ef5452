"""Films as archives hold them, broken on purpose, through the real ``colorize-batch`` in a child process
(a native crash would fail the test, not the run): odd sizes, rotation, odd pixel formats and codecs,
audio that is not AAC, truncated and damaged files, frame folders with holes; each file gets its own
result (the batch goes on), inputs are never changed, no partial output is left, films keep their luma."""

from __future__ import annotations

import hashlib
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from faults import CLI
from PIL import Image
from synthetic_media import gray_frame, make_clip, write_clip

from colorizer.fileio import is_partial_file


# --------------------------------------------------------------------------- helpers
def run_cli(inputs: list[Path], out: Path, model: Path, *extra: str) -> tuple[int, dict, str]:
    """``colorize-batch`` in a child process; its exit code, its report and its output."""
    report = out.parent / f"{out.name}-report.json"
    proc = subprocess.run([*CLI, *map(str, inputs), "-o", str(out), "--model", str(model), "-q", "--report",
                           str(report), *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), f"crashed ({proc.returncode}): {proc.stderr[-2000:]}"
    assert not [p for p in out.rglob("*") if is_partial_file(p)], "temporary files left behind"
    return proc.returncode, json.loads(report.read_text()), proc.stdout + proc.stderr


def by_name(report: dict) -> dict[str, dict]:
    return {Path(entry["input"]).name: entry for entry in report["files"]}


def digests(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def packet_bytes(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(getattr(c.streams, kind)[0]) if p.size]


def y_planes(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        out = []
        for frame in c.decode(video=0):
            plane = frame.planes[0]
            out.append(np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width])
        return out


def film_with_audio(path: Path, codec: str, sample_format: str, rate: int = 48000, n: int = 8,
                    options: dict[str, str] | None = None) -> Path:
    """A 64x48 gray H.264 film of ``n`` frames at 24 fps with a mono sine in ``codec``."""
    with av.open(str(path), "w", options=options or {}) as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream(codec, rate=rate)
        sound.layout = "mono"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(gray_frame(i, 48, 64), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        resampler = av.AudioResampler(format=sample_format, layout="mono", rate=rate)
        total, step = rate * n // 24, 1152
        for pos in range(0, total, step):
            t = np.arange(pos, min(pos + step, total)) / rate
            frame = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, pos
            for resampled in resampler.resample(frame):
                for packet in sound.encode(resampled):
                    out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    return path


def y4m(path: Path, width: int, height: int, frames: int = 3) -> Path:
    """A gray (mono) YUV4MPEG2 film of any size: FFmpeg's encoders refuse some odd sizes, this never does."""
    body = bytearray(f"YUV4MPEG2 W{width} H{height} F24:1 Ip A1:1 Cmono\n".encode())
    for i in range(frames):
        body += b"FRAME\n" + bytes((37 * k + 50 * i + 20) % 256 for k in range(width * height))
    path.write_bytes(bytes(body))
    return path


# --------------------------------------------------------------------------- audio the archives use
def test_pcm_and_avi_audio_are_not_taken_for_truncated(model, tmp_path):
    """MOV and AVI count PCM audio in samples, and AVI's MP3 frame count is not its packets: complete
    films were refused as "truncated or damaged: only 16 of 16000 packets of audio"."""
    films = tmp_path / "films"
    films.mkdir()
    inputs = [film_with_audio(films / "master.mov", "pcm_s16le", "s16"),
              film_with_audio(films / "capture.avi", "pcm_s16le", "s16"),
              film_with_audio(films / "xvid.avi", "libmp3lame", "fltp", rate=44100)]
    cut = film_with_audio(tmp_path / "cut.mov", "pcm_s16le", "s16", n=48, options={"movflags": "+faststart"})
    (films / "cut.mov").write_bytes(cut.read_bytes()[: cut.stat().st_size * 2 // 3])  # index first: still refused
    before = digests(sorted(films.iterdir()))
    code, report, _ = run_cli([films], tmp_path / "out", model)
    results = by_name(report)
    assert code == 1 and results["cut.mov"]["status"] == "failed"
    assert "cut.mov" in results["cut.mov"]["reason"] and "truncated" in results["cut.mov"]["reason"]
    for src in inputs:
        entry = results[src.name]
        assert entry["status"] == "done", entry["reason"]
        # copied bit-exact (PCM's packets are the muxer's chunks of samples: their bytes in order)
        assert b"".join(packet_bytes(Path(entry["output"]), "audio")) == b"".join(packet_bytes(src, "audio"))
        assert len(y_planes(Path(entry["output"]))) == 8
    assert not (tmp_path / "out" / "cut.mp4").exists()
    assert digests(sorted(films.iterdir())) == before


def test_audio_only_quicktime_holds_goes_to_mov(model, tmp_path):
    """u-law audio (old QuickTime films) fits neither MP4 nor Matroska: the output was .mkv, which then
    failed with "the matroska container cannot hold ... write .mkv"; it is .mov, the audio copied."""
    src = film_with_audio(tmp_path / "old.mov", "pcm_mulaw", "s16", rate=8000)
    code, report, _ = run_cli([src], tmp_path / "out", model)
    entry = report["files"][0]
    assert code == 0 and entry["status"] == "done", entry["reason"]
    assert entry["output"].endswith("old.mov")
    assert b"".join(packet_bytes(Path(entry["output"]), "audio")) == b"".join(packet_bytes(src, "audio"))


def test_lossless_names_what_keeps_a_stream_matroska_cannot(model, tmp_path):
    """Lossless output is Matroska, which cannot hold MP4 subtitles: the advice was "write .mkv"."""
    src = make_clip(tmp_path / "film.mp4", n=6, audio=None)
    with_subs = tmp_path / "subs.mp4"
    with av.open(str(src)) as inp, av.open(str(with_subs), "w") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        subs = out.add_mux_stream("mov_text")
        subs.time_base = Fraction(1, 1000)
        for packet in inp.demux(inp.streams.video[0]):
            if packet.size:
                packet.stream = video
                out.mux(packet)
        packet = av.Packet(b"\x00\x05hello")
        packet.stream, packet.time_base, packet.pts, packet.dts, packet.duration = subs, subs.time_base, 0, 0, 100
        out.mux(packet)
    code, report, _ = run_cli([with_subs], tmp_path / "out", model, "--lossless")
    reason = report["files"][0]["reason"]
    assert code == 1 and "subs.mkv" in reason and "mov_text" in reason
    assert "write .mkv" not in reason and "without --lossless" in reason
    assert not list((tmp_path / "out").glob("subs.*"))
    code, report, _ = run_cli([with_subs], tmp_path / "out2", model)  # as the message says
    assert code == 0 and report["files"][0]["output"].endswith("subs.mp4")


# --------------------------------------------------------------------------- odd sizes
def test_crop_of_a_one_pixel_side_pads_it(model, tmp_path):
    """--odd-size crop made a 1-pixel side 0 pixels: libx264 refused with "avcodec_open2 ... returned 22".
    A side of one pixel has none to spare: it is padded, the other side cropped; the luma stays."""
    films = tmp_path / "films"
    films.mkdir()
    for w, h in ((1, 33), (33, 1), (1, 1), (3, 5)):
        y4m(films / f"f{w}x{h}.y4m", w, h)
    code, report, _ = run_cli([films], tmp_path / "out", model, "--odd-size", "crop", "--crf", "0")
    expected = {"f1x33.y4m": (32, 2), "f33x1.y4m": (2, 32), "f1x1.y4m": (2, 2), "f3x5.y4m": (4, 2)}
    for name, entry in by_name(report).items():
        assert entry["status"] == "done", entry["reason"]
        planes = y_planes(Path(entry["output"]))
        assert len(planes) == 3 and planes[0].shape == expected[name]
        with av.open(str(films / name)) as c:
            for source, kept in zip((f.to_ndarray() for f in c.decode(video=0)), planes, strict=True):
                h, w = min(source.shape[0], kept.shape[0]), min(source.shape[1], kept.shape[1])
                assert np.array_equal(kept[:h, :w], source[:h, :w])  # the luma of every pixel kept
    assert code == 0


def test_odd_sizes_formats_and_rotations_keep_their_luma(model, tmp_path):
    """A zoo of films that archives hold, in one batch: every one colorized, its luma kept bit for bit."""
    films = tmp_path / "films"
    films.mkdir()
    noise = [np.random.default_rng(i).integers(0, 256, (9, 17), dtype=np.uint8) for i in range(3)]
    write_clip(films / "odd_444.mkv", noise, codec="ffv1", pix_fmt="yuv444p")
    write_clip(films / "odd_10bit.mkv", noise, codec="ffv1", pix_fmt="yuv420p10le")
    write_clip(films / "odd_gray16.mkv", noise, codec="ffv1", pix_fmt="gray16le")
    write_clip(films / "full_range.avi", [gray_frame(i, 49, 67)[..., 0] for i in range(4)], codec="mjpeg",
               pix_fmt="yuvj420p")
    y4m(films / "tall.y4m", 2, 4097, frames=2)
    make_clip(films / "rot270.mp4", w=66, h=50, n=6, rotation=270, audio="aac")
    make_clip(films / "bframes.mkv", n=10, audio=None)
    code, report, _ = run_cli([films], tmp_path / "out", model, "--crf", "0", "--temporal-strength", "0")
    assert code == 0, report
    from colorizer.desktop.media.video_source import VideoSource

    for name, entry in by_name(report).items():
        assert entry["status"] == "done", entry["reason"]
        with VideoSource(films / name) as source:
            lumas = [picture.y8 for _, picture in source.frames(lambda packet: None, luma=True)]
        kept = y_planes(Path(entry["output"]))
        assert len(kept) == len(lumas), name
        for y, out in zip(lumas, kept, strict=True):
            assert out.shape == (y.shape[0] + y.shape[0] % 2, y.shape[1] + y.shape[1] % 2), name
            assert np.array_equal(out[: y.shape[0], : y.shape[1]], y), name


# --------------------------------------------------------------------------- broken files
def test_broken_and_lying_files_fail_one_by_one(model, tmp_path):
    """Truncated, empty, audio-only and mislabelled files: each its own result naming it and the cause."""
    films = tmp_path / "films"
    films.mkdir()
    whole = make_clip(tmp_path / "whole.mp4", n=24)
    (films / "unfinished.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # no moov box
    (films / "notes.mp4").write_text("not a film\n" * 20)
    (films / "actually_a_film.jpg").write_bytes(whole.read_bytes())
    with av.open(str(films / "sound.mp4"), "w") as out:
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for packet in [*sound.encode(frame), *sound.encode()]:
            out.mux(packet)
    before = digests(sorted(films.iterdir()))
    code, report, output = run_cli([films], tmp_path / "out", model)
    results = by_name(report)
    assert code == 1
    assert results["actually_a_film.jpg"]["status"] == "done"
    assert results["actually_a_film.jpg"]["output"].endswith("actually_a_film.mp4")
    lines = {name: line for line in output.splitlines() for name in results if f"{name}:" in line}
    assert "truncated" in lines["unfinished.mp4"] and "moov" in lines["unfinished.mp4"]
    assert "not an image or video" in lines["notes.mp4"] and "audio" in lines["sound.mp4"]
    assert all(results[name]["status"] == "failed" for name in lines)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == \
        ["actually_a_film.mp4"]
    assert digests(sorted(films.iterdir())) == before


# --------------------------------------------------------------------------- frame folders
def frames_folder(folder: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    folder.mkdir(parents=True)
    for i, (name, (h, w)) in enumerate(sizes.items()):
        Image.fromarray(gray_frame(i, h, w)[..., 0]).save(folder / name)
    return folder


def test_frames_to_video_refuses_a_frame_of_another_size(model, tmp_path):
    """A frame of another size was cropped or padded into the video without a word; it fails the folder,
    naming the frame, and nothing is left. Without --frames-to-video each frame keeps its own size."""
    reel = frames_folder(tmp_path / "reel", {**{f"r_{i:04d}.png": (40, 48) for i in range(4)},
                                             "r_0004.png": (44, 48)})
    code, report, _ = run_cli([reel], tmp_path / "out", model, "--frames", "--frames-to-video")
    reason = report["files"][0]["reason"]
    assert code == 1 and "r_0004.png" in reason and "48x44" in reason and "48x40" in reason
    assert [p.name for p in (tmp_path / "out").rglob("*") if not p.name.startswith(".")] == []
    code, report, _ = run_cli([reel], tmp_path / "out2", model, "--frames")
    assert code == 0 and Image.open(tmp_path / "out2" / "r_0004.png").size == (48, 44)


def test_a_frame_folder_with_a_hole_says_which_frame_is_missing(model, tmp_path):
    """A missing frame, or one saved in another format, gave "no numbered frames" for a folder full of them."""
    gap = frames_folder(tmp_path / "gap", {f"g_{i:04d}.png": (24, 32) for i in (1, 2, 3, 5, 6)})
    mixed = frames_folder(tmp_path / "mixed", {"m_0000.png": (24, 32), "m_0001.jpg": (24, 32), "m_0002.png": (24, 32)})
    code, report, _ = run_cli([gap, mixed], tmp_path / "out", model, "--frames")
    results = by_name(report)
    assert code == 1
    assert "g_0004.png" in results["gap"]["reason"] and "missing" in results["gap"]["reason"]
    assert "m_0001.jpg" in results["mixed"]["reason"] and "another format" in results["mixed"]["reason"]


def test_the_writer_refuses_a_frame_of_another_size(tmp_path):
    """``VideoWriter.to_frame`` made any size the video's by cropping or padding it; only an odd size is."""
    import pytest

    from colorizer.desktop.media.video_writer import OutputGeometry, VideoEncoding, VideoWriter

    writer = VideoWriter(tmp_path / "v.mp4", "mp4", VideoEncoding())
    try:
        writer.open(OutputGeometry(17, 9, Fraction(24), Fraction(1, 24)))
        assert (writer.to_frame(np.zeros((9, 17, 3), np.uint8)).height, writer.encoded_size) == (10, (10, 18))
        with pytest.raises(ValueError, match="12x9 in a video of 17x9"):
            writer.to_frame(np.zeros((9, 12, 3), np.uint8))
    finally:
        writer.close()


def test_probe_reads_the_rotation_ffmpeg_keeps_in_the_frames(tmp_path):
    """FFmpeg 7 and later keep a film's display rotation in each frame, not in the stream's tags: the probe
    said 0 for a film every frame of which is turned 90 degrees (the app showed it sideways)."""
    from colorizer.desktop.media.video_source import probe_video

    for turn in (90, 180, 270):
        clip = make_clip(tmp_path / f"r{turn}.mp4", rotation=turn, audio=None)
        assert probe_video(clip).rotation == turn
    assert probe_video(make_clip(tmp_path / "upright.mp4", audio=None)).rotation == 0


def test_a_transport_stream_with_lost_packets_is_colorized_and_says_so(model, tmp_path):
    """Three TS packets lost mid-film (a capture's glitch): the decoder drops the frames it cannot rebuild
    and the output was two frames short without a word. It is still colorized (refusing the whole film for
    a glitch would leave the user nothing), and the run says where."""
    clip = write_clip(tmp_path / "whole.ts", [gray_frame(i, 48, 64) for i in range(50)], options={"g": "12"})
    data = clip.read_bytes()
    middle = len(data) // 188 // 2 * 188
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "glitch.ts").write_bytes(data[:middle] + data[middle + 3 * 188:])
    code, report, err = run_cli([tmp_path / "in" / "glitch.ts"], tmp_path / "out", model)
    assert code == 0 and report["files"][0]["status"] == "done", err
    assert "glitch.ts: 1 damaged video packet(s) (at " in err
    assert report["files"][0]["warnings"][0].endswith("the others keep their timing")
