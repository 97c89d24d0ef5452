"""Hostile and odd files: lying and truncated headers, memory judged from the header, photos
finished in bounded memory, and what the user reads (one line per failed file, tracebacks with -v only)."""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from faults import check_outputs, make_photos, read_report
from PIL import Image

from colorizer.desktop.cli import EXIT_OK, EXIT_SOME_FAILED
from colorizer.desktop.cli import main as batch_main
from colorizer.desktop.media.errors import ImageReadError
from colorizer.desktop.media.image_read import read_image


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def lying_png(path: Path, width: int = 17000, height: int = 17000) -> Path:
    """A PNG of a few hundred bytes whose header declares ``width`` x ``height`` RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    text = _chunk(b"tEXt", b"Comment\x00" + b"x" * 40)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + text + _chunk(b"IDAT", zlib.compress(b"\0" * 150000, 9))
    path.write_bytes(data + _chunk(b"IEND", b""))
    return path


def lying_jpeg(path: Path, width: int = 17000, height: int = 17000) -> Path:
    """A small real JPEG whose frame header (SOF0) is rewritten to declare ``width`` x ``height``."""
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(path, quality=90)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("make", [lying_png, lying_jpeg])
def test_a_lying_header_fails_that_file_before_any_memory_is_set_aside(make, tmp_path):
    path = make(tmp_path / ("lie.png" if make is lying_png else "lie.jpg"))
    assert path.stat().st_size < 2000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageReadError, match="declares 17000x17000"):
            read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6 and time.perf_counter() - started < 5


def test_lying_and_truncated_headers_fail_one_file_never_the_batch(model, tmp_path, capsys):
    src = tmp_path / "in"
    make_photos(src, 3, 60, 80)
    lying_png(src / "lie.png")
    lying_jpeg(src / "lie.jpg")
    good = (src / "p00.jpg").read_bytes()
    (src / "cut.jpg").write_bytes(good[:300])  # header intact, data cut
    out = tmp_path / "out"
    assert batch_main([str(src), "-o", str(out), "--model", str(model), "-q"]) == EXIT_SOME_FAILED
    err = capsys.readouterr().err
    report = check_outputs(out, out / "colorize-report.json")
    status = {Path(f["input"]).name: f["status"] for f in report["files"]}
    assert status == {"p00.jpg": "done", "p01.jpg": "done", "p02.jpg": "done", "lie.png": "failed",
                      "lie.jpg": "failed", "cut.jpg": "failed"}
    assert len([line for line in err.splitlines() if line.startswith("failed: ")]) == 3
    assert "Traceback" not in err


def test_memory_is_judged_from_the_header_before_decoding(model, tmp_path, capsys, monkeypatch):
    from colorizer.desktop.media import image_read

    src = tmp_path / "in"
    make_photos(src, 2, 60, 80)
    Image.fromarray(np.zeros((2000, 2500), np.uint8)).save(src / "big.png")  # 5 MP: about 80 MB to colorize
    decoded = []
    real = image_read._pillow_pixels
    monkeypatch.setattr(image_read, "_pillow_pixels", lambda im: decoded.append(im.size) or real(im))
    out = tmp_path / "out"
    code = batch_main([str(src), "-o", str(out), "--model", str(model), "-q", "--max-memory", "0.05"])
    assert code == EXIT_SOME_FAILED
    report = read_report(out / "colorize-report.json")
    big = next(f for f in report["files"] if f["input"].endswith("big.png"))
    assert big["status"] == "failed" and "2500x2000" in big["reason"] and "--max-memory" in big["reason"]
    assert (2500, 2000) not in decoded and len(decoded) == 2
    assert not (out / "big.png").exists()


def test_a_large_photo_is_colorized_in_bounded_memory(model, tmp_path):
    """Decoded RGB, L and the output are all that is held at full resolution: well under 16 bytes a
    pixel for an 8-bit scan (numpy's allocations, traced; the whole-image float planes took ~60)."""
    from colorizer.desktop.backends import open_backend
    from colorizer.desktop.pipeline.batch import BatchRunner
    from colorizer.desktop.pipeline.settings import ImageSettings
    from colorizer.desktop.pipeline.tasks import plan

    height, width = 2400, 3200
    gray = np.add.outer(np.arange(height) % 251, np.arange(width) % 241).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "scan.png", compress_level=1)
    tasks, _ = plan([tmp_path / "scan.png"], tmp_path / "out")
    backend = open_backend(model, "cpu")
    try:
        tracemalloc.start()
        results = BatchRunner(backend, ImageSettings(render_size=64)).run(tasks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        backend.close()
    assert [r.status for r in results] == ["done"]
    assert peak / (height * width) < 12, f"{peak / (height * width):.1f} bytes per pixel"


# --------------------------------------------------------------------------- what the user reads
def test_messages_for_odd_inputs(model, tmp_path, capsys):
    av = pytest.importorskip("av")
    src = tmp_path / "in"
    make_photos(src, 1, 40, 60)
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    audio = tmp_path / "song.mp4"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    frames = tmp_path / "reel"
    make_photos(frames, 2, 32, 48, fmt="png")
    out = tmp_path / "out"
    code = batch_main([str(src / "p00.jpg"), str(fifo), str(audio), "-o", str(out), "--model", str(model)])
    err = capsys.readouterr().err
    assert code == EXIT_SOME_FAILED
    reasons = {Path(f["input"]).name: f["reason"] for f in read_report(out / "colorize-report.json")["files"]}
    assert "not a regular file" in reasons["x.jpg"] and "no such file" not in reasons["x.jpg"]
    assert "no video stream" in reasons["song.mp4"] and "audio" in reasons["song.mp4"]
    assert f"failed: {fifo}: not a regular file" in err
    assert batch_main([str(frames), "-o", str(tmp_path / "films"), "--frames", "--model", str(model)]) == EXIT_OK
    err = capsys.readouterr().err
    assert "1 frame folder" in err and "framess" not in err


def test_one_line_per_failed_file_and_tracebacks_only_with_verbose(model, tmp_path, capsys, monkeypatch):
    from colorizer.desktop.pipeline import stages

    src = tmp_path / "in"
    make_photos(src, 3, 40, 60)
    real = stages.write_image

    def write_image(path, *args, **kwargs):
        if write_image.calls == 0:
            write_image.calls += 1
            raise RuntimeError("simulated bug")
        return real(path, *args, **kwargs)

    for verbose in (False, True):
        write_image.calls = 0
        monkeypatch.setattr(stages, "write_image", write_image)
        args = [str(src), "-o", str(tmp_path / f"out{verbose}"), "--model", str(model), "-q"]
        assert batch_main(args + (["-v"] if verbose else [])) == EXIT_SOME_FAILED
        err = capsys.readouterr().err
        failed = [line for line in err.splitlines() if line.startswith("failed: ")]
        assert len(failed) == 1 and "simulated bug" in failed[0]
        assert ("Traceback" in err) == verbose
