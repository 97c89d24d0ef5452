"""`colorize-batch`: colorize folders of black-and-white photos, videos and frame folders. Parses
arguments and prints; the work is done by the runtime library (colorizer.desktop.jobs)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

EXIT_OK, EXIT_SOME_FAILED, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = f"""
Outputs mirror the input tree under OUTPUT and keep each photo's EXIF (dates, captions), ICC
profile and DPI. Videos keep their frame count, timing, audio and subtitle streams (copied
bit-exact); chroma is smoothed across frames (reset at scene cuts) so colors do not flicker.
With --frames, each input folder is one film as numbered frames (names are kept).
Existing outputs are skipped, so running the same command again resumes an
interrupted batch (--overwrite redoes them). Inputs are never modified. Each output is written to
a temporary file and renamed when complete, so no half-written file is ever left behind.

exit codes:
  {EXIT_OK}    every file was colorized (or skipped because its output exists)
  {EXIT_SOME_FAILED}    some files failed (see the report; the others were written)
  {EXIT_SETUP}    nothing was done: bad arguments, missing model, unusable backend
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): the report is written; run again to resume

examples:
  colorize-batch scans/ -o colorized/ --recursive
  colorize-batch old1.tif old2.jpg -o out/ --format png --saturation 1.2
  colorize-batch scans/ -o out/ --backend cpu --report run.json
  colorize-batch film.mp4 -o out/ --crf 16
  colorize-batch reel1_frames/ -o out/ --frames --frames-to-video --frame-rate 18
  colorize-batch /shared/scans/ -o /shared/out/ --ray auto --ray-actors 4

With --ray, photos are decoded, colorized and written by Ray Data tasks and actors (one backend per
actor, one GPU per actor where the cluster has GPUs); inputs, outputs and the model must be at the
same paths on every node. Videos and frame folders still run on this machine (temporal smoothing
needs every frame of a film in one place). See docs/cluster.md.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="colorize-batch", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Colorize black-and-white photos (JPEG, PNG, TIFF incl. 16-bit, WebP, BMP), videos "
        "(whatever FFmpeg reads) and folders of film frames with a pix2pix model, on an NVIDIA GPU (TensorRT, "
        "CUDA) or the CPU.")
    p.add_argument("inputs", nargs="+", type=Path, help="photo and video files and/or folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (created if needed)")
    p.add_argument("-r", "--recursive", action="store_true", help="also colorize photos in subfolders")
    g = p.add_argument_group("model and hardware")
    g.add_argument("--model", type=Path, help="ONNX model or TensorRT engine (default: the shipped model)")
    g.add_argument("--backend", choices=("auto", "tensorrt", "cuda", "cpu"), default="auto",
                   help="auto tries TensorRT, then CUDA, then the CPU, and prints the one in use")
    g.add_argument("--device", type=int, default=0, help="GPU index")
    g.add_argument("--threads", type=int, default=0, help="CPU inference threads (0: cores - 1)")
    g.add_argument("--batch-size", type=int, default=4, help="images per inference call")
    g.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="colorize photos with Ray: no ADDRESS starts Ray on this machine, 'auto' joins this "
                   "machine's cluster, 'ray://HOST:10001' a remote one (videos and frame folders run locally)")
    g.add_argument("--ray-actors", type=int, metavar="N",
                   help="inference actors with --ray (default: one per GPU of the cluster, else 1)")
    q = p.add_argument_group("color")
    q.add_argument("--render-size", type=int, help="long side (pixels) the model sees; color is upsampled "
                   "to full resolution (default: the model's training size)")
    q.add_argument("--saturation", type=float, default=1.0, help="scale the added color (1 = as predicted)")
    q.add_argument("--upsampling", choices=("guided", "bilinear"), default="guided",
                   help="guided follows the photo's edges at full resolution (default)")
    o = p.add_argument_group("output")
    o.add_argument("--format", choices=("same", "jpeg", "png", "tiff", "webp", "bmp"), default="same",
                   help="output format (default: the input's)")
    o.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100")
    o.add_argument("--overwrite", action="store_true", help="redo files whose output already exists")
    v = p.add_argument_group("video and frame folders")
    v.add_argument("--crf", type=int, default=18, help="H.264 quality, 0-51, lower is better (default 18)")
    v.add_argument("--preset", default="medium", help="x264 speed/size preset (ultrafast ... veryslow)")
    v.add_argument("--lossless", action="store_true", help="FFV1 in MKV: exactly the colorized pixels")
    v.add_argument("--container", choices=("auto", "mp4", "mkv", "mov"), default="auto",
                   help="video container (auto: MP4 unless a copied stream needs MKV)")
    v.add_argument("--temporal-strength", type=float, default=0.6,
                   help="chroma smoothing across frames, 0 (off) to 1 (default 0.6)")
    v.add_argument("--temporal-radius", type=int, default=3, help="frames on each side in the smoothing window")
    v.add_argument("--scene-cut-threshold", type=float, default=10.0,
                   help="luminance change (0-100) that starts a new shot; smoothing never crosses a cut")
    v.add_argument("--odd-size", choices=("pad", "crop"), default="pad",
                   help="H.264 needs even sizes: pad one edge pixel (default) or crop it")
    v.add_argument("--frames", action="store_true", help="each input folder is one film as numbered frames")
    v.add_argument("--frames-to-video", action="store_true", help="also encode colorized frames to a video")
    v.add_argument("--frame-rate", type=float, default=24.0, help="frame rate for --frames-to-video")
    o.add_argument("--report", type=Path, help="JSON report path (default: OUTPUT/colorize-report.json)")
    o.add_argument("--dry-run", action="store_true", help="list what would be done, change nothing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    return p


def _error(message: str) -> int:
    print(f"colorize-batch: error: {message}", file=sys.stderr)
    return EXIT_SETUP


class _RayBackend:
    """Stands for the backends of the Ray actors when nothing runs locally: the model's contract, a name."""

    def __init__(self, model: Path | None, address: str) -> None:
        from colorizer.desktop.ray_runner import model_contract

        self.contract = model_contract(model)
        self.name = f"Ray ({address})"


def _stop_ray(started: bool) -> None:
    if started:
        import ray

        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from colorizer.contract import ContractError
    from colorizer.desktop.backends import BackendError, open_backend
    from colorizer.desktop.batch import CancelToken, ImageSettings
    from colorizer.desktop.imagefile import parse_format_option
    from colorizer.desktop.jobs import JobSettings, run_job
    from colorizer.desktop.report import FileResult, summarize, write_report
    from colorizer.desktop.tasks import plan
    from colorizer.desktop.video import VideoProgress, VideoSettings

    try:
        output_format = parse_format_option(args.format)
        video = VideoSettings(container=args.container, lossless=args.lossless, crf=args.crf, preset=args.preset,
                              temporal_strength=args.temporal_strength, temporal_radius=args.temporal_radius,
                              scene_cut_threshold=args.scene_cut_threshold, batch_size=args.batch_size,
                              render_size=args.render_size, saturation=args.saturation, upsampling=args.upsampling,
                              odd_size=args.odd_size, overwrite=args.overwrite, frame_rate=args.frame_rate)
    except ValueError as exc:
        return _error(str(exc))
    tasks, rejected = plan(args.inputs, args.output, recursive=args.recursive, output_format=output_format,
                           frames=args.frames, video_settings=video)
    if not tasks and not rejected:
        return _error("no photos or videos found in " + ", ".join(map(str, args.inputs)) +
                      ("" if args.recursive else " (add --recursive to look in subfolders)"))
    if args.dry_run:
        for t in tasks:
            state = "exists, skip" if t.output.exists() and not args.overwrite else "colorize"
            print(f"{t.source} -> {t.output} ({t.kind}, {state})")
        for r in rejected:
            print(f"{r.source}: cannot be colorized: {r.reason}")
        return EXIT_OK
    ray_started = False
    try:
        if args.ray and all(t.kind == "image" for t in tasks):  # no local inference: check the model only
            backend = _RayBackend(args.model, args.ray)
        else:
            backend = open_backend(args.model, args.backend, args.device, args.threads, render_size=args.render_size)
    except (BackendError, ContractError) as exc:
        return _error(str(exc))
    if args.ray:
        try:
            from colorizer.desktop.ray_runner import connect
        except ImportError:
            return _error("--ray needs Ray: pip install 'colorizer[cluster]'")
        try:
            if not args.verbose:  # Ray Data's plans and notices would break the progress bar
                os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
            ray_started = connect(args.ray)
        except Exception as exc:  # Ray raises its own types (ConnectionError, RuntimeError...)
            return _error(f"cannot start or join Ray at {args.ray}: {exc}")
    images = ImageSettings(render_size=args.render_size, saturation=args.saturation, upsampling=args.upsampling,
                           output_format=output_format, quality=args.quality, overwrite=args.overwrite,
                           batch_size=args.batch_size)
    settings = JobSettings(images, video, args.frames_to_video)
    c = backend.contract
    if not args.quiet:
        kinds = ", ".join(f"{sum(t.kind == k for t in tasks)} {k}s" for k in ("image", "video", "frames")
                          if any(t.kind == k for t in tasks))
        print(f"model {c.model_name} {c.model_version} on {backend.name}; {kinds} -> {args.output}",
              file=sys.stderr)

    bar = tqdm(total=len(tasks), unit="file", disable=args.quiet, dynamic_ncols=True, position=0)
    frames_bar: dict = {}
    failed = 0

    def progress(result: FileResult, done: int, total: int) -> None:
        nonlocal failed
        if result.status == "failed":
            failed += 1
            tqdm.write(f"failed: {result.reason}", file=sys.stderr)
        if frames_bar.get("path") == result.input and "bar" in frames_bar:
            frames_bar.pop("bar").close()
        bar.update(1)
        bar.set_postfix(failed=failed, refresh=False)

    def frame_progress(p: VideoProgress) -> None:
        if args.quiet:
            return
        if frames_bar.get("path") != p.path:
            if "bar" in frames_bar:
                frames_bar.pop("bar").close()
            frames_bar.update(path=p.path, bar=tqdm(total=p.frames_total, unit="frame", position=1, leave=False,
                                                     desc=p.path.name, dynamic_ncols=True))
        frames_bar["bar"].update(p.frames_done - frames_bar["bar"].n)

    cancel = CancelToken()
    started = time.time()
    outcome: dict = {}

    def work() -> None:
        if args.ray:
            from colorizer.desktop.ray_runner import run_tasks_on_ray

            outcome["results"] = run_tasks_on_ray(
                tasks, args.model, settings, address=args.ray, backend_choice=args.backend, actors=args.ray_actors,
                local_backend=None if isinstance(backend, _RayBackend) else backend, progress=progress,
                frame_progress=frame_progress, cancel=cancel)
        else:
            outcome["results"] = run_job(tasks, backend, settings, progress=progress, frame_progress=frame_progress,
                                         cancel=cancel)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    interrupted = False
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        interrupted = True
        tqdm.write("interrupted: finishing the files in progress (Ctrl-C again to abandon them)", file=sys.stderr)
        cancel.cancel()
        worker.join()
    _stop_ray(ray_started)
    bar.close()
    if "bar" in frames_bar:
        frames_bar["bar"].close()
    results = outcome.get("results", []) + [FileResult(r.source, "failed", reason=r.reason) for r in rejected]
    backend_name = backend.name
    if args.ray:  # the backends the actors really used
        on_ray = {t.source for t in tasks if t.kind == "image"}
        backend_name = ", ".join(sorted({("ray/" if r.input in on_ray else "") + r.backend for r in results
                                         if r.backend})) or backend.name
    report_path = write_report(args.report or args.output / "colorize-report.json", results, backend=backend_name,
                               settings={"images": asdict(images), "video": asdict(video),
                                         "frames_to_video": args.frames_to_video,
                                         "model": str(args.model or "default"),
                                         **({"ray": args.ray, "ray_actors": args.ray_actors} if args.ray else {})},
                               started=started, interrupted=interrupted)
    counts = summarize(results)
    if not args.quiet or counts["failed"]:
        print(f"{counts['done']} colorized, {counts['skipped']} skipped, {counts['failed']} failed, "
              f"{counts['cancelled']} not started; report: {report_path}", file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if counts["failed"] else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
