"""Benchmark: frames per second of video colorization on this machine, at 480p and 720p.

For each size a synthetic clip is generated (a panned grayscale texture with a hard cut in the
middle, H.264 CRF 18 + an AAC sine track, 24 fps) into a temporary folder, then run five ways, each
once per round (``--rounds``, default 3: a shared machine's speed drifts, so every ratio compares
runs of one round, and the median of the rounds is reported). Colorized with ``colorize_video`` (the
same code the CLI and GUI run):

* model: the ONNX model on the chosen backend (the shipped model by default); this 8-bit 4:2:0
  clip takes the luma pass-through path (``media.yuv``: luma kept, chroma computed at its own
  resolution);
* model, Lab path: the same with ``luma_passthrough=False`` (full-resolution L, Lab -> RGB and
  the encoder's RGB -> yuv420p conversion), as every frame went before;
* no inference: the same pipeline with a backend that returns zero chroma at once -- decoding,
  L at render size, temporal smoothing, guided upsampling, merge, H.264 encoding and muxing;
* I/O bound (the issue's decode + encode bound): the clip decoded with PyAV (threads as the
  pipeline's decoder), each frame converted to float32 Lab and back (OpenCV) and quantized, and
  encoded with the pipeline's encoder settings (libx264 CRF 18, preset medium, yuv420p, x264's
  frame threads) -- no project code. The ratio model / bound is printed in the same run. The luma path does no
  full-resolution Lab round trip, so it can pass this bound; the stricter
* codec-only bound decodes and re-encodes the yuv420p frames with no conversion at all.
  (The bound, like the no-inference run, encodes gray frames: libx264 spends less on their flat
  chroma than on a colorized film's: 1.7-1.8 vs 2.0-2.3 s of CPU per 120 frames of 720p.)

Each run prints its CPU time per frame (all threads) and how many of the cores it kept busy.
Nothing is written into the project; the temporary folder is deleted afterwards.

    python bench/bench_video.py                     # shipped model, 192 frames, 480p and 720p
    python bench/bench_video.py --model m.onnx --frames 10 --sizes 480
    python bench/bench_video.py --sizes 720 --source prores   # a 10-bit 4:2:2 ProRes source
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from _common import NoInference  # bench/ is on sys.path when run as a script

from colorizer.allocator import keep_freed_memory
from colorizer.desktop.backends import default_model_path, open_backend
from colorizer.desktop.pipeline.settings import VideoSettings
from colorizer.desktop.pipeline.video import colorize_video

SIZES = {480: (854, 480), 720: (1280, 720), 1080: (1920, 1080)}


def texture(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for octave in (8, 32, 128):
        small = rng.random((max(2, h // octave), max(2, w // octave))).astype(np.float32)
        img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * (octave / 168)
    return cv2.normalize(img, None, 20, 235, cv2.NORM_MINMAX)


SOURCES = {  # --source: (suffix, codec, pixel format, codec options)
    "h264": (".mp4", "libx264", "yuv420p", {"crf": "18", "preset": "veryfast"}),
    "prores": (".mov", "prores_ks", "yuv422p10le", {"profile": "3"}),  # ProRes 422 HQ, 10-bit: archive scans
}


def make_clip(path: Path, width: int, height: int, frames: int, fps: int = 24, source: str = "h264") -> None:
    _, codec, pix_fmt, options = SOURCES[source]
    scenes = [texture(s, height, width + frames * 2) for s in (1, 2)]
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.options = options
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "mono"
        for i in range(frames):
            scene = scenes[0] if i < frames // 2 else scenes[1]
            gray = scene[:, 2 * i : 2 * i + width]  # panning 2 px per frame
            if pix_fmt == "yuv420p":
                frame = av.VideoFrame.from_ndarray(np.repeat(gray.astype(np.uint8)[..., None], 3, 2), format="rgb24")
            else:  # 16 bits of the texture, for a source with more than 8
                gray16 = np.clip(gray * 257.0, 0, 65535).astype(np.uint16)
                frame = av.VideoFrame.from_ndarray(np.repeat(gray16[..., None], 3, 2), format="rgb48le")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        total, pos = int(48000 * frames / fps), 0
        while pos < total:
            k = min(1024, total - pos)
            t = np.arange(pos, pos + k) / 48000
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            aframe = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            aframe.sample_rate, aframe.pts, aframe.time_base = 48000, pos, Fraction(1, 48000)
            for packet in audio.encode(aframe):
                out.mux(packet)
            pos += k
        for packet in audio.encode():
            out.mux(packet)


def machine_info(backend_name: str) -> dict:
    import onnxruntime

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "platform": platform.platform(),
            "python": platform.python_version(), "pyav": av.__version__,
            "ffmpeg": ".".join(map(str, av.library_versions["libavcodec"])) + " (libavcodec)",
            "onnxruntime": onnxruntime.__version__, "backend": backend_name}


def run(src: Path, dst: Path, backend, settings: VideoSettings) -> dict:
    t, cpu = time.perf_counter(), time.process_time()
    result = colorize_video(src, dst, backend, settings)
    seconds = time.perf_counter() - t
    cpu = time.process_time() - cpu
    if result.status != "done":
        raise SystemExit(f"benchmark run failed: {result.reason}")
    frames = result.timings["frames"]
    return {"seconds": round(seconds, 3), "fps": round(frames / seconds, 2), "frames": frames,
            "cpu_s": round(cpu, 3), "inference_s": result.timings.get("inference_s"),
            "finish_s": result.timings.get("finish_s"), "scene_cuts": result.timings.get("scene_cuts")}


def _transcode(src: Path, dst: Path, convert) -> dict:
    """Decode ``src``, ``convert`` each frame, encode H.264 as the pipeline's writer does: frames/s."""
    t, cpu = time.perf_counter(), time.process_time()
    frames = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "+faststart"}) as out:
        vin = inp.streams.video[0]
        vin.codec_context.thread_type = "AUTO"
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.options = {"crf": "18", "preset": "medium"}
        vout.codec_context.thread_type = "AUTO"
        for frame in inp.decode(vin):
            for packet in vout.encode(convert(frame)):
                out.mux(packet)
            frames += 1
        for packet in vout.encode():
            out.mux(packet)
    seconds = time.perf_counter() - t
    cpu = time.process_time() - cpu
    return {"seconds": round(seconds, 3), "fps": round(frames / seconds, 2), "frames": frames,
            "cpu_s": round(cpu, 3), "inference_s": None, "finish_s": None, "scene_cuts": None}


def _as_decoded(frame):
    frame.pict_type = av.video.frame.PictureType.NONE
    return frame


def _lab_round_trip(frame):
    rgb = frame.to_ndarray(format="rgb24").astype(np.float32) * np.float32(1 / 255)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    back = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    pixels = cv2.convertScaleAbs(back, alpha=255.0)  # saturating round to uint8
    encoded = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
    encoded.pts, encoded.time_base = frame.pts, frame.time_base
    return encoded


def codec_bound(src: Path, dst: Path) -> dict:
    """Decode and encode H.264 with no conversion at all (yuv420p in, yuv420p out): frames/s."""
    return _transcode(src, dst, _as_decoded)


def io_bound(src: Path, dst: Path) -> dict:
    """Decode, Lab round trip, quantize, encode H.264 as the pipeline's writer does: frames/s."""
    return _transcode(src, dst, _lab_round_trip)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped model)")
    p.add_argument("--backend", default="cpu", choices=("auto", "tensorrt", "cuda", "cpu"))
    p.add_argument("--frames", type=int, default=192, help="frames per clip (8 s: a steadier bound)")
    p.add_argument("--sizes", default="480,720", help="comma-separated: 480, 720, 1080")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--source", choices=sorted(SOURCES), default="h264",
                   help="the clip's codec: h264 (8-bit 4:2:0 MP4) or prores (10-bit 4:2:2 ProRes 422 HQ MOV)")
    p.add_argument("--cpu-int8", action="store_true",
                   help="on the CPU, the model's INT8 twin (as colorize-batch --cpu-int8)")
    p.add_argument("--temporal-strength", type=float, default=0.6)
    p.add_argument("--rounds", type=int, default=3,
                   help="every run once per round, the rounds one after the other; the median ratio is reported")
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args()
    keep_freed_memory()  # the allocator settings colorize-batch runs with, for every measurement here

    model = args.model or default_model_path()
    if not model.is_file():
        raise SystemExit(f"no model at {model}; pass --model PATH to an exported .onnx")
    with open_backend(model, args.backend, cpu_int8=args.cpu_int8) as backend:
        settings = VideoSettings(batch_size=args.batch_size, temporal_strength=args.temporal_strength, overwrite=True)
        lab_settings = dataclasses.replace(settings, luma_passthrough=False)
        sizes = [int(s) for s in args.sizes.split(",")]
        info = machine_info(backend.name)
        rounds: list[dict[str, dict]] = [{} for _ in range(args.rounds)]
        tmp = Path(tempfile.mkdtemp(prefix="colorizer-bench-video-"))
        try:
            for size in sizes:
                width, height = SIZES[size]
                clip = tmp / f"clip_{size}p{SOURCES[args.source][0]}"
                make_clip(clip, width, height, args.frames, source=args.source)
                no_inference = NoInference(backend.contract, "none")
                for rows in rounds:  # every run once per round: a machine whose speed drifts drifts for all
                    rows[f"{size}p model ({backend.name})"] = run(clip, tmp / f"out_{size}p.mp4", backend, settings)
                    rows[f"{size}p model, Lab path"] = run(clip, tmp / f"lab_{size}p.mp4", backend, lab_settings)
                    rows[f"{size}p no inference"] = run(clip, tmp / f"ni_{size}p.mp4", no_inference, settings)
                    rows[f"{size}p I/O bound"] = io_bound(clip, tmp / f"io_{size}p.mp4")
                    rows[f"{size}p codec-only bound"] = codec_bound(clip, tmp / f"codec_{size}p.mp4")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    c = backend.contract
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"model: {model} ({c.model_name} {c.model_version}), render size {c.render_size}; "
          f"{args.source} source ({SOURCES[args.source][2]}), {args.frames} frames per clip, "
          f"batch {args.batch_size}, temporal strength {args.temporal_strength}, "
          f"H.264 CRF 18 preset medium (frame threads), AAC copied; {args.rounds} rounds, each run once per round")
    for number, rows in enumerate(rounds, 1):
        print(f"\nround {number}")
        print(f"{'run':<44}{'seconds':>9}{'frames/s':>10}{'CPU ms/frame':>14}{'cores busy':>12}"
              f"{'inference s':>13}{'merge s':>9}")
        for name, row in rows.items():
            print(f"{name:<44}{row['seconds']:>9.2f}{row['fps']:>10.2f}{1000 * row['cpu_s'] / row['frames']:>14.1f}"
                  f"{row['cpu_s'] / row['seconds']:>12.2f}{row['inference_s'] or 0:>13.2f}{row['finish_s'] or 0:>9.2f}")
    print()
    summary = {}
    for size in sizes:
        def ratios(name: str, to: str = "I/O bound", size: int = size) -> list[float]:
            return [rows[f"{size}p {name}"]["fps"] / rows[f"{size}p {to}"]["fps"] for rows in rounds]

        model_ratios = ratios(f"model ({backend.name})")
        summary[size] = {"ratio": statistics.median(model_ratios), "ratios": model_ratios}
        print(f"{size}p ratio to the I/O bound, each round: {' '.join(f'{r:.2f}' for r in model_ratios)}; "
              f"median {statistics.median(model_ratios):.2f} (Lab path "
              f"{statistics.median(ratios('model, Lab path')):.2f}, no inference "
              f"{statistics.median(ratios('no inference')):.2f}); to the codec-only bound: "
              f"{statistics.median(ratios(f'model ({backend.name})', 'codec-only bound')):.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "model": str(model), "frames": args.frames,
                                         "rounds": rounds, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
