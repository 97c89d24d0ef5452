"""`colorize-batch`: colorize folders of black-and-white photos, videos and frame folders. Parses
arguments and prints progress; the work is done by the runtime library
(:class:`colorizer.desktop.pipeline.run.ReportedRun`, driven directly so that a second signal can
abandon it)."""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import signal
import sys
import threading
import warnings
from contextlib import nullcontext
from pathlib import Path

from colorizer import __version__
from colorizer.allocator import keep_freed_memory
from colorizer.desktop.backends import BACKEND_CHOICES
from colorizer.desktop.core import Status, TaskKind
from colorizer.desktop.lazy import LazyModule
from colorizer.desktop.media.formats import OUTPUT_FORMAT_CHOICES

tqdm = LazyModule("tqdm")  # imported for the first progress bar: never with -q

EXIT_OK, EXIT_SOME_FAILED, EXIT_SETUP, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
KIND_NAMES = {TaskKind.IMAGE: ("photo", "photos"), TaskKind.VIDEO: ("video", "videos"),
              TaskKind.FRAMES: ("frame folder", "frame folders")}

EPILOG = f"""
Outputs mirror the input tree under OUTPUT and keep each photo's EXIF (dates, captions), ICC
profile and DPI. A gray photo written as JPEG, and an ordinary film, keep their luma as it is:
only the color is new. Videos keep their frame count, timing, interlacing (field order), audio and
subtitle streams (copied bit-exact); a film's luma is kept to 8 bits when it has more (10-bit
ProRes, FFV1); chroma is smoothed across frames (reset at scene cuts) so colors do not flicker.
With --frames, each input folder is one film as numbered frames (names are kept).
Existing outputs are skipped, so running the same command again resumes an
interrupted batch (--overwrite redoes them); an output the last run did not finish (see
OUTPUT/.colorize-journal.jsonl) is redone. Inputs are never modified. Each output is written to a
temporary file, checked and renamed when complete, so no half-written file is ever left behind.
The output folder is never searched for inputs.

exit codes:
  {EXIT_OK}    every file was colorized (or skipped because its output exists)
  {EXIT_SOME_FAILED}    some files failed (one line each; see the report; the others were written)
  {EXIT_SETUP}    nothing was done (bad arguments, missing model, unusable backend, output folder
       not writable), or the report could not be written
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): files in progress finished, the report written; run again
       to resume. A second Ctrl-C abandons the files in progress (no partial file is left)
  {EXIT_TERMINATED}  terminated (SIGTERM), as for Ctrl-C

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
    p.add_argument("--version", action="version", version=f"colorize-batch {__version__}")
    p.add_argument("inputs", nargs="+", type=Path, help="photo and video files and/or folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (created if needed)")
    p.add_argument("-r", "--recursive", action="store_true", help="also colorize photos in subfolders")
    g = p.add_argument_group("model and hardware")
    g.add_argument("--model", type=Path, help="ONNX model or TensorRT engine (default: the shipped model)")
    g.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                   help="auto tries TensorRT, then CUDA, then the CPU, and prints the one in use")
    g.add_argument("--device", type=int, default=0, help="GPU index")
    g.add_argument("--threads", type=int, default=0,
                   help="CPU inference threads (0: cores - 1, all cores on 2 or fewer)")
    g.add_argument("--cpu-int8", action="store_true",
                   help="on the CPU, run the model's INT8 twin (NAME.int8.onnx, from colorizer-export "
                   "--int8-calibration) where there is one: inference about 1.6x faster, colors within about "
                   "1 Lab unit of the FP32 model's on average (see the model card for where they differ)")
    g.add_argument("--batch-size", type=int, default=4, help="images per inference call")
    g.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="colorize photos with Ray: no ADDRESS starts Ray on this machine, 'auto' joins this "
                   "machine's cluster, 'ray://HOST:10001' a remote one (videos and frame folders run locally)")
    g.add_argument("--ray-actors", type=int, metavar="N",
                   help="inference actors with --ray (default: one per GPU of the cluster, else 1)")
    q = p.add_argument_group("color")
    q.add_argument("--render-size", type=int, help="long side (pixels) the model sees; color is upsampled "
                   "to full resolution (default: the render size recorded in the model)")
    q.add_argument("--saturation", type=float, default=1.0,
                   help="scale the added color (1 = the model's own default colorfulness; 0 = gray)")
    q.add_argument("--upsampling", choices=("guided", "bilinear"), default="guided",
                   help="guided follows the photo's edges at full resolution (default)")
    q.add_argument("--no-hints", action="store_true",
                   help="ignore color hints (a photo's or film's NAME.hints.json sidecar, a frame folder's "
                   "FOLDER.hints.json; see README 'Color hints')")
    q.add_argument("--hints-dir", type=Path, metavar="DIR",
                   help="read the hints sidecars from DIR, a tree that mirrors the inputs as the output folder "
                   "does, instead of beside the inputs")
    o = p.add_argument_group("output")
    o.add_argument("--format", choices=OUTPUT_FORMAT_CHOICES, default="same",
                   help="output format (default: the input's)")
    o.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100")
    o.add_argument("--overwrite", action="store_true", help="redo files whose output already exists")
    o.add_argument("--max-memory", type=float, metavar="GB",
                   help="the most memory one photo may take, judged from its header before decoding "
                   "(default: half of this machine's memory)")
    v = p.add_argument_group("video and frame folders")
    v.add_argument("--crf", type=int, default=18, help="H.264 quality, 0-51, lower is better (default 18)")
    v.add_argument("--preset", default="medium", help="x264 speed/size preset (ultrafast ... veryslow)")
    v.add_argument("--lossless", action="store_true", help="FFV1 in MKV: exactly the colorized pixels")
    v.add_argument("--container", choices=("auto", "mp4", "mkv", "mov"), default="auto",
                   help="video container (auto: MP4 unless a copied stream needs MKV, or MOV: old QuickTime audio)")
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
    o.add_argument("--dry-run", action="store_true",
                   help="list what a run would do with each input (colorize; skip: finished; redo or fails, "
                   "and why), as the run would decide it; write nothing")
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
                           overwrite=args.overwrite, batch_size=args.batch_size,
                           max_memory_mb=args.max_memory * 1000 if args.max_memory else None,
                           hints=not args.no_hints, hints_dir=None if args.no_hints else args.hints_dir)
    return RunSettings(images, video, args.frames_to_video)


def _dry_run(tasks, rejected, settings, output_dir: Path) -> int:
    """Print what a run would do with each input, as it would decide it; nothing is written."""
    from colorizer.desktop.pipeline.journal import RunJournal
    from colorizer.desktop.pipeline.run import planned_action

    if output_dir.exists() and not output_dir.is_dir():
        return _error(f"the output folder {output_dir} is a file")
    journal = RunJournal.read_only(output_dir)
    try:
        for t in tasks:
            print(shown(f"{t.source} -> {t.output} ({t.kind}, {planned_action(t, settings, journal)})"), flush=True)
        for r in rejected:
            print(shown(f"{r.source}: cannot be colorized: {r.reason}"), flush=True)
    except BrokenPipeError:  # read by `head` or the like, which has seen enough: no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit must not fail
    return EXIT_OK


def _open_backend(args: argparse.Namespace, tasks):
    """The local backend (None when --ray runs everything; the caller closes it: ``with backend:``), the
    model's contract and what does the work."""
    from colorizer.desktop.backends import open_backend
    from colorizer.desktop.pipeline.ray_runner import model_contract

    if args.ray and all(t.kind == TaskKind.IMAGE for t in tasks):  # no local inference: check the model only
        return None, model_contract(args.model), f"Ray ({args.ray})"
    backend = open_backend(args.model, args.backend, args.device, args.threads, render_size=args.render_size,
                           cpu_int8=args.cpu_int8)
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
        return connect(args.ray, quiet=not args.verbose), None
    except Exception as exc:  # Ray raises its own types (ConnectionError, RuntimeError...)
        return False, f"cannot start or join Ray at {args.ray}: {exc}"


class _ProgressBars:
    """One bar for the files, one for the frames of the video or frame folder in progress. The files
    bar counts the files processed (done, skipped, failed); files a stop cancelled are counted beside
    it, so after Ctrl-C or SIGTERM it shows how far the run got, not a full bar."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.quiet = quiet
        self.files = None if quiet else tqdm.tqdm(total=total, unit="file", dynamic_ncols=True, position=0)
        self.frames = None
        self.frames_of: Path | None = None
        self.failed = 0
        self.cancelled = 0

    def file_done(self, result, done: int, total: int) -> None:
        if result.status == Status.FAILED:
            self.failed += 1
            say(failure_line(result))
        self.cancelled += result.status == Status.CANCELLED
        if self.frames_of == result.input:
            self._close_frames()
        if self.files is not None:
            if result.status != Status.CANCELLED:
                self.files.update(1)
            counts = {"failed": self.failed} | ({"not finished": self.cancelled} if self.cancelled else {})
            self.files.set_postfix(counts, refresh=result.status == Status.CANCELLED)

    def frame_done(self, p) -> None:
        if self.quiet:
            return
        if self.frames_of != p.path:
            self._close_frames()
            self.frames_of = p.path
            self.frames = tqdm.tqdm(total=p.frames_total, unit="frame", position=1, leave=False, desc=p.path.name,
                               dynamic_ncols=True)
        self.frames.update(p.frames_done - self.frames.n)

    def _close_frames(self) -> None:
        if self.frames is not None:
            self.frames.close()
            self.frames = None

    def close(self) -> None:
        if self.files is not None:
            self.files.close()
        self._close_frames()


def say(line: str) -> None:
    """One line on stderr, above the progress bars where there are any."""
    if "tqdm" in sys.modules:
        tqdm.tqdm.write(line, file=sys.stderr)
    else:  # one write: two writer threads' lines never run into one another
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def failure_line(result) -> str:
    """One line for a failed file (a FileResult or a Rejected input): the file, then the reason; the
    file's name as :func:`shown`, the rest of the reason's white space run into single spaces."""
    source = str(getattr(result, "input", None) or result.source)
    reason = str(result.reason)
    if source not in reason:
        reason = f"{source}: {reason}"
    return "failed: " + shown(source).join(shown(re.sub(r"\s+", " ", part)) for part in reason.split(source))


def shown(text: object) -> str:
    """``text`` (a path, or a line naming one) as one printable line for the terminal: a file name's
    control characters (a newline, a tab, an escape sequence that would drive the terminal) written as
    ``\\n``, ``\\t``, ``\\x1b``, and its bytes that are not UTF-8 as ``\\xe9`` (printed as they are,
    they raise UnicodeEncodeError where stdout is strict UTF-8, as under en_US.UTF-8)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    if "\udc80" <= char <= "\udcff":  # a byte that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")


class _Signals:
    """SIGINT and SIGTERM: the first finishes the files in progress and writes the report; the
    second abandons them at once (no partial file, the report still written) and exits."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.run = None  # the ReportedRun once started
        self.planned = None  # makes the ReportedRun, once the tasks are known
        self.bars: _ProgressBars | None = None
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.received == signal.SIGTERM else EXIT_INTERRUPTED

    def _handle(self, signum: int, _frame) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if self.run is None:  # nothing written yet: stop here
            raise SystemExit(self.exit_code)
        if first:
            self.run.cancel.cancel()
            say("interrupted: finishing the files in progress (Ctrl-C again to abandon them)")
            return
        self._abandon()

    def _abandon(self) -> None:
        threading.excepthook = lambda _args: None  # threads cut short now must not print tracebacks
        outcome = self.run.abandon()
        if self.bars is not None:
            self.bars.close()
        _print_summary(outcome, quiet=False, note="stopped at once: files in progress abandoned")
        sys.stderr.flush()
        os._exit(EXIT_SETUP if outcome.report is None else self.exit_code)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _run_in_thread(run) -> object:
    """``run.execute()`` on a thread; the main thread waits where signal handlers can run. An error
    that stopped the run before it began (the output folder taken) is raised here."""
    outcome: dict = {}

    def execute() -> None:
        try:
            outcome["value"] = run.execute()
        except Exception as exc:  # noqa: BLE001 - carried to the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=execute, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _print_summary(outcome, quiet: bool, note: str = "") -> None:
    from colorizer.desktop.pipeline.report import summarize

    counts = summarize(outcome.results)
    if quiet and not counts["failed"] and outcome.report is not None:
        return
    where = shown(outcome.report or f"NOT WRITTEN ({outcome.report_error})")
    skipped = f"{counts['skipped']} skipped"
    if counts["skipped"]:
        skipped += " (outputs exist; --overwrite redoes them)"
    print(f"{counts['done']} colorized, {skipped}, {counts['failed']} failed, "
          f"{counts['cancelled']} not finished; report: {where}" + (f" ({note})" if note else ""), file=sys.stderr)


class _Formatter(logging.Formatter):
    """Log lines without tracebacks (they are shown with -v only)."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None})
        return super().format(record)


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    fmt = "%(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt) if verbose else _Formatter(fmt))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)
    if not verbose:  # Pillow's notices on a damaged EXIF or TIFF tag name no file, and the file reads (or fails
        # with its reason in the report) either way: shown with -v only
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def _hints_note(tasks) -> str:
    """How many photos, videos and frame folders have color hints (sidecars), or ''."""
    with_hints = [t for t in tasks if t.hints is not None and os.path.lexists(t.hints)]
    counts = {k: sum(t.kind == k for t in with_hints) for k in TaskKind}
    parts = [f"{n} {KIND_NAMES[k][n != 1]}" for k, n in counts.items() if n]
    return f"{', '.join(parts)} with color hints" if parts else ""


def _model_takes_hints(model: Path | None) -> bool:
    """Whether the model file (the shipped one when None) has hint inputs."""
    from colorizer.desktop.pipeline.ray_runner import model_contract

    try:
        return model_contract(model).takes_hints
    except (OSError, ValueError):
        return False


def _report_problem(report: Path, tasks, rejected, output_dir: Path) -> str | None:
    """Why the report cannot go to ``report`` (a folder there; the place of an input, an output or the output
    folder's journal or lock), or None. Said before anything is done: the report is written last, over
    whatever is there."""
    from colorizer.desktop.pipeline.journal import JOURNAL_NAME, LOCK_NAME
    from colorizer.desktop.pipeline.tasks import PathResolver

    if report.is_dir():
        return f"could not write the report {report}: a folder of that name exists (--report FOLDER/run.json)"
    where, resolve = report.resolve(), PathResolver()
    taken = {resolve(t.source): f"the input {t.source}" for t in [*tasks, *rejected]}
    taken |= {resolve(t.output): f"the output of {t.source}" for t in tasks}
    taken |= {(output_dir / n).resolve(): f"the output folder's {n}" for n in (JOURNAL_NAME, LOCK_NAME)}
    taken[output_dir.resolve()] = "the output folder"
    if where in taken:
        return f"the report {report} would replace {taken[where]}; choose another --report path"
    return None


def _kinds(tasks) -> str:
    counts = {k: sum(t.kind == k for t in tasks) for k in TaskKind}
    return ", ".join(f"{n} {KIND_NAMES[k][n != 1]}" for k, n in counts.items() if n)


class _Stderr(io.TextIOBase):
    """``sys.stderr`` during a run: once it cannot be written (closed: ``2>&-``; a pipe whose reader left:
    ``2>&1 | head -1``) what is said goes nowhere, and the run goes on to its outputs, report and exit
    code. Without it the first progress bar raised BrokenPipeError before any file was done."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream
        self.gone = stream is None

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except (OSError, ValueError):  # EPIPE, EBADF, EIO; ValueError: closed
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self.gone = True

    def isatty(self) -> bool:
        try:
            return not self.gone and self.stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self.gone:
            raise OSError("stderr cannot be written")
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"


def main(argv: list[str] | None = None) -> int:
    stderr = sys.stderr
    sys.stderr = _Stderr(stderr)
    try:
        args = build_parser().parse_args(argv)
        _setup_logging(args.verbose)
        keep_freed_memory()
        signals = _Signals()
        try:
            return _main(args, signals)
        except SystemExit as exc:  # a signal before the first file was started: every file is reported cancelled
            if signals.planned is not None:
                _print_summary(signals.planned().abandon(), quiet=False, note="stopped before the first file")
            return int(exc.code or 0)
        finally:
            signals.restore()
    finally:
        sys.stderr.flush()
        sys.stderr = stderr


def _main(args: argparse.Namespace, signals: _Signals) -> int:
    from colorizer.contract import ContractError
    from colorizer.desktop.backends import BackendError
    from colorizer.desktop.pipeline.journal import OutputFolderBusy, check_writable, other_run
    from colorizer.desktop.pipeline.ray_runner import RayOptions
    from colorizer.desktop.pipeline.report import REPORT_NAME
    from colorizer.desktop.pipeline.run import ReportedRun
    from colorizer.desktop.pipeline.tasks import output_folder_problem, plan, unsearched_subfolders

    try:
        settings = _settings(args)
    except ValueError as exc:
        return _error(str(exc))
    if problem := output_folder_problem(args.inputs, args.output):  # a bad -o: nothing is done
        return _error(problem)
    tasks, rejected = plan(args.inputs, args.output, recursive=args.recursive,
                           output_format=settings.images.output_format, frames=args.frames,
                           video=settings.video.encoding, hints=settings.images.hints,
                           hints_dir=settings.images.hints_dir)
    if not tasks and not rejected:
        return _error("no photos or videos found in " + ", ".join(map(str, args.inputs)) +
                      ("" if args.recursive else " (add --recursive to look in subfolders)"))
    if not args.recursive and not args.frames and (unsearched := unsearched_subfolders(
            [p for p in args.inputs if p.is_dir()], args.output.resolve())):
        names = ", ".join(shown(p.name) for p in unsearched[:3]) + (", …" if len(unsearched) > 3 else "")
        print(f"{len(unsearched)} subfolder{'s' * (len(unsearched) > 1)} with photos or videos not searched "
              f"({names}): add --recursive to colorize them too", file=sys.stderr)
    if args.dry_run:
        return _dry_run(tasks, rejected, settings, args.output)
    report_path = args.report or args.output / REPORT_NAME
    if problem := _report_problem(report_path, tasks, rejected, args.output):
        return _error(problem)
    for folder in dict.fromkeys([args.output, report_path.parent]):  # once, before anything is decoded
        if problem := check_writable(folder):
            return _error(problem)
    if holder := other_run(args.output):  # said before the model loads; the run's own claim is what counts
        return _error(str(OutputFolderBusy(args.output, holder)))

    def reported_run(backend=None, **callbacks) -> ReportedRun:
        return ReportedRun(tasks, backend, settings, report_path=report_path, model=args.model, rejected=rejected,
                           ray=ray, output_dir=args.output, **callbacks)

    ray = RayOptions(args.ray, args.ray_actors, args.backend, args.cpu_int8) if args.ray else None
    signals.planned = reported_run
    try:
        backend, contract, doer = _open_backend(args, tasks)
    except (BackendError, ContractError) as exc:
        return _error(str(exc))
    with backend if backend is not None else nullcontext():  # closed however the run ends
        ray_started, problem = _start_ray(args) if args.ray else (False, None)
        if problem:
            return _error(problem)
        if not args.quiet:
            print(f"model {contract.model_name} {contract.model_version} on {doer}; {_kinds(tasks)} -> {args.output}",
                  file=sys.stderr)
        for r in rejected:  # one line each, as for the files that fail during the run
            print(failure_line(r), file=sys.stderr)
        if not args.quiet and (note := _hints_note(tasks)):
            if backend is not None and not contract.takes_hints and _model_takes_hints(args.model):
                note += (" (the INT8 twin has no hint inputs: they are spread over its colors; without "
                         "--cpu-int8 the model itself follows them)")
            print(note, file=sys.stderr)
        bars = _ProgressBars(len(tasks), args.quiet)
        run = reported_run(backend, progress=bars.file_done, frame_progress=bars.frame_done)
        signals.run, signals.bars = run, bars
        try:
            outcome = _run_in_thread(run)
        except OutputFolderBusy as exc:  # another run took the folder since the check above: nothing was done
            _stop_ray_and_bars(ray_started, bars)
            return _error(str(exc))
        _stop_ray_and_bars(ray_started, bars)
    _print_summary(outcome, args.quiet)
    if outcome.report is None:
        return EXIT_SETUP
    if signals.received is not None:
        return signals.exit_code
    return EXIT_SOME_FAILED if any(r.status == Status.FAILED for r in outcome.results) else EXIT_OK


def _stop_ray_and_bars(ray_started: bool, bars: _ProgressBars) -> None:
    if ray_started:
        import ray

        ray.shutdown()
    bars.close()


if __name__ == "__main__":
    sys.exit(main())
