"""`colorize-batch`: colorize folders of black-and-white photos, videos and frame folders. Parses
arguments and prints progress; the work is done by the runtime library
(:func:`colorizer.desktop.pipeline.run.run_and_report`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from tqdm import tqdm

from colorizer.desktop.backends import BACKEND_CHOICES
from colorizer.desktop.core import Status, TaskKind
from colorizer.desktop.media.formats import OUTPUT_FORMAT_CHOICES

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
    g.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
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
    o.add_argument("--format", choices=OUTPUT_FORMAT_CHOICES, default="same",
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


def _settings(args: argparse.Namespace):
    """The run's settings from the arguments (ValueError names a bad value)."""
    from colorizer.desktop.media.formats import parse_format_option
    from colorizer.desktop.pipeline.settings import ImageSettings, RunSettings, VideoSettings

    video = VideoSettings(container=args.container, lossless=args.lossless, crf=args.crf, preset=args.preset,
                          temporal_strength=args.temporal_strength, temporal_radius=args.temporal_radius,
                          scene_cut_threshold=args.scene_cut_threshold, batch_size=args.batch_size,
                          render_size=args.render_size, saturation=args.saturation, upsampling=args.upsampling,
                          odd_size=args.odd_size, overwrite=args.overwrite, frame_rate=args.frame_rate)
    images = ImageSettings(render_size=args.render_size, saturation=args.saturation, upsampling=args.upsampling,
                           output_format=parse_format_option(args.format), quality=args.quality,
                           overwrite=args.overwrite, batch_size=args.batch_size)
    return RunSettings(images, video, args.frames_to_video)


def _dry_run(tasks, rejected, overwrite: bool) -> int:
    for t in tasks:
        state = "exists, skip" if t.output.exists() and not overwrite else "colorize"
        print(f"{t.source} -> {t.output} ({t.kind}, {state})")
    for r in rejected:
        print(f"{r.source}: cannot be colorized: {r.reason}")
    return EXIT_OK


def _open_backend(args: argparse.Namespace, tasks):
    """The local backend (None when --ray runs everything), the model's contract and what does the work."""
    from colorizer.desktop.backends import open_backend
    from colorizer.desktop.pipeline.ray_runner import model_contract

    if args.ray and all(t.kind == TaskKind.IMAGE for t in tasks):  # no local inference: check the model only
        return None, model_contract(args.model), f"Ray ({args.ray})"
    backend = open_backend(args.model, args.backend, args.device, args.threads, render_size=args.render_size)
    return backend, backend.contract, backend.name


def _start_ray(args: argparse.Namespace) -> tuple[bool, str | None]:
    """Start or join Ray for --ray: (whether this process started it, an error message)."""
    try:
        from colorizer.desktop.pipeline.ray_runner import connect
    except ImportError:
        return False, "--ray needs Ray: pip install 'colorizer[cluster]'"
    try:
        if not args.verbose:  # Ray Data's plans and notices would break the progress bar
            os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
        return connect(args.ray), None
    except Exception as exc:  # Ray raises its own types (ConnectionError, RuntimeError...)
        return False, f"cannot start or join Ray at {args.ray}: {exc}"


class _ProgressBars:
    """One bar for the files, one for the frames of the video or frame folder in progress."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.quiet = quiet
        self.files = tqdm(total=total, unit="file", disable=quiet, dynamic_ncols=True, position=0)
        self.frames: tqdm | None = None
        self.frames_of: Path | None = None
        self.failed = 0

    def file_done(self, result, done: int, total: int) -> None:
        if result.status == Status.FAILED:
            self.failed += 1
            tqdm.write(f"failed: {result.reason}", file=sys.stderr)
        if self.frames_of == result.input:
            self._close_frames()
        self.files.update(1)
        self.files.set_postfix(failed=self.failed, refresh=False)

    def frame_done(self, p) -> None:
        if self.quiet:
            return
        if self.frames_of != p.path:
            self._close_frames()
            self.frames_of = p.path
            self.frames = tqdm(total=p.frames_total, unit="frame", position=1, leave=False, desc=p.path.name,
                               dynamic_ncols=True)
        self.frames.update(p.frames_done - self.frames.n)

    def _close_frames(self) -> None:
        if self.frames is not None:
            self.frames.close()
            self.frames = None

    def close(self) -> None:
        self.files.close()
        self._close_frames()


def _run_interruptibly(work) -> tuple[object, bool]:
    """Run ``work(cancel)`` on a thread; Ctrl-C cancels it and waits for the files in progress."""
    from colorizer.desktop.core import CancelToken

    cancel, outcome = CancelToken(), {}
    worker = threading.Thread(target=lambda: outcome.update(value=work(cancel)), daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        tqdm.write("interrupted: finishing the files in progress (Ctrl-C again to abandon them)", file=sys.stderr)
        cancel.cancel()
        worker.join()
    return outcome.get("value"), cancel.cancelled


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from colorizer.contract import ContractError
    from colorizer.desktop.backends import BackendError
    from colorizer.desktop.pipeline.ray_runner import RayOptions
    from colorizer.desktop.pipeline.report import REPORT_NAME, summarize
    from colorizer.desktop.pipeline.run import run_and_report
    from colorizer.desktop.pipeline.tasks import plan

    try:
        settings = _settings(args)
    except ValueError as exc:
        return _error(str(exc))
    tasks, rejected = plan(args.inputs, args.output, recursive=args.recursive,
                           output_format=settings.images.output_format, frames=args.frames,
                           video=settings.video.encoding)
    if not tasks and not rejected:
        return _error("no photos or videos found in " + ", ".join(map(str, args.inputs)) +
                      ("" if args.recursive else " (add --recursive to look in subfolders)"))
    if args.dry_run:
        return _dry_run(tasks, rejected, args.overwrite)
    try:
        backend, contract, doer = _open_backend(args, tasks)
    except (BackendError, ContractError) as exc:
        return _error(str(exc))
    ray_started, problem = _start_ray(args) if args.ray else (False, None)
    if problem:
        return _error(problem)
    if not args.quiet:
        counts = {k: sum(t.kind == k for t in tasks) for k in TaskKind}
        kinds = ", ".join(f"{n} {k}s" for k, n in counts.items() if n)
        print(f"model {contract.model_name} {contract.model_version} on {doer}; {kinds} -> {args.output}",
              file=sys.stderr)
    bars = _ProgressBars(len(tasks), args.quiet)
    ray = RayOptions(args.ray, args.ray_actors, args.backend) if args.ray else None
    outcome, interrupted = _run_interruptibly(lambda cancel: run_and_report(
        tasks, backend, settings, report_path=args.report or args.output / REPORT_NAME, model=args.model,
        rejected=rejected, progress=bars.file_done, frame_progress=bars.frame_done, cancel=cancel, ray=ray))
    _finish(backend, ray_started, bars)
    counts = summarize(outcome.results)
    if not args.quiet or counts["failed"]:
        print(f"{counts['done']} colorized, {counts['skipped']} skipped, {counts['failed']} failed, "
              f"{counts['cancelled']} not started; report: {outcome.report or 'not written (see the log)'}",
              file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if counts["failed"] else EXIT_OK


def _finish(backend, ray_started: bool, bars: _ProgressBars) -> None:
    if backend is not None:
        backend.close()
    if ray_started:
        import ray

        ray.shutdown()
    bars.close()


if __name__ == "__main__":
    sys.exit(main())
