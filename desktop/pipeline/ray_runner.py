"""Photo tasks on a Ray cluster, through Ray Data: the same stages as the local batch runner.

    decode + prepare (Ray tasks)  -->  predict (actor pool, one backend per actor, batches by render shape)
                                  -->  finish + atomic write (Ray tasks)  -->  streamed results

Every stage is one of :mod:`.stages` (the local :class:`~.batch.BatchRunner` runs the same ones)
with the same settings, so the outputs are byte-identical to a local run. Paths must be readable
(inputs) and writable (outputs) under the same names on every node (a shared file system); the
model too. Existing outputs are skipped before anything is submitted (``overwrite`` redoes them).
A file that fails becomes a ``failed`` result and the rest go on. Videos and frame folders are
not handled here: their temporal smoothing needs every frame in order on one machine, so
:func:`~.run.run_tasks` runs them locally.

Ray is an extra (``pip install colorizer[cluster]``); this module imports it only when called.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from colorizer.allocator import keep_freed_memory
from colorizer.colorize import Prepared
from colorizer.desktop.backends import ModelFiles, default_model_path, open_backend, read_contract
from colorizer.desktop.core import CancelToken, Status, TaskKind
from colorizer.desktop.media.image_read import read_image
from colorizer.desktop.media.yuv import LumaPicture
from colorizer.desktop.pipeline import stages
from colorizer.desktop.pipeline.batch import ProgressCallback
from colorizer.desktop.pipeline.file_warnings import FileWarnings
from colorizer.desktop.pipeline.journal import RunJournal, file_state
from colorizer.desktop.pipeline.report import FileResult
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.desktop.pipeline.tasks import Task

log = logging.getLogger(__name__)

LOCAL = "local"  # address meaning "start a Ray on this machine" (as None does)
_EMPTY_2D = np.zeros((1, 1), np.float32)
_EMPTY_3D = np.zeros((1, 1, 1), np.float32)
_EMPTY_LUMA = np.zeros((1, 1), np.uint8)
_PASSED_ON = ("l_merge", "l_small", "luma")  # per-row arrays the predictor hands on to the writer


@dataclass(frozen=True)
class RayOptions:
    """Where photos are colorized with Ray, and by how many inference actors."""

    address: str | None = None  # None or "local": a Ray on this machine; "auto"; "ray://host:10001"
    actors: int | None = None  # default: one per GPU of the cluster, else 1
    backend: str = "auto"  # what each actor opens
    cpu_int8: bool = False  # on a CPU, the model's INT8 twin when it has one


def _column(values: list) -> np.ndarray:
    """A batch column from per-row arrays: stacked when their shapes agree, else a ragged object array."""
    if len({v.shape for v in values}) == 1:
        return np.stack(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


# ---------------------------------------------------------------------------- stages (run on workers)
def _read_row(row: dict, settings: ImageSettings, render_size: int, size_multiple: int) -> dict:
    """Decode and prepare one image; the image's arrays travel on, its metadata (and the warnings
    logged meanwhile: :mod:`.file_warnings`) pickled beside."""
    keep_freed_memory()  # once per worker process (colorizer.allocator)
    source = Path(row["source"])
    notes = FileWarnings()
    with notes.working_on(source):
        out = _read(row, source, settings, render_size, size_multiple)
    out["warnings"] = pickle.dumps(notes.take(source))
    return out


def _read(row: dict, source: Path, settings: ImageSettings, render_size: int, size_multiple: int) -> dict:
    started = time.time()
    out = {"source": row["source"], "output": row["output"], "started": started, "error": "",
           "l_merge": _EMPTY_2D, "l_small": _EMPTY_2D, "luma": _EMPTY_LUMA, "model_input": _EMPTY_3D, "extra": b""}
    try:  # as the local runner reads: a sidecar it cannot use fails the photo first, then its memory decides
        hints = stages.photo_hints(Path(row["hints"]) if row["hints"] else None)
        image = read_image(source, **stages.photo_limits(source, settings))
        prepared, luma = stages.prepare_photo(image, settings, render_size, size_multiple, hints)
    except Exception as exc:
        out["error"] = stages.read_failure(source, exc)
        return out
    out["l_merge"], out["l_small"], out["model_input"] = prepared.l_merge, prepared.l_small, prepared.model_input
    if luma is not None:
        out["luma"] = luma.y
    out["extra"] = pickle.dumps({"info": stages.OutputInfo(image.format, image.bit_depth, image.metadata, image.alpha),
                                 "padding": prepared.padding, "luma": luma is not None, "hints": prepared.hints,
                                 "timings": {"decode_s": time.time() - started}})
    return out


class _Predictor:
    """A Ray Data actor: opens the backend once, then predicts batches grouped by render shape."""

    def __init__(self, model_path: str | None, backend: str, threads: int, render_size: int | None,
                 batch_size: int, cpu_int8: bool = False) -> None:
        self.backend = open_backend(Path(model_path) if model_path else None, backend, 0, threads,
                                    render_size=render_size, cpu_int8=cpu_int8)
        self.batch_size = max(1, batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["source"])
        errors = [str(e) for e in batch["error"]]
        extras = [pickle.loads(e) if e else None for e in batch["extra"]]
        inputs = [None if errors[i] else np.asarray(batch["model_input"][i]) for i in range(n)]
        prepared = [None if x is None else _row_prepared({k: batch[k][i] for k in batch}, extras[i])
                    for i, x in enumerate(inputs)]  # a model with hint inputs needs each row's hints
        ab: list[np.ndarray] = [_EMPTY_3D] * n
        for chunk in stages.predict_chunks(self.backend, inputs, self.batch_size, prepared=prepared):
            for j, i in enumerate(chunk.indices):
                if chunk.error:
                    errors[i] = chunk.error
                else:
                    ab[i] = chunk.ab[j]
                    extras[i]["timings"]["inference_s"] = chunk.seconds_each
        return {
            **{key: batch[key] for key in ("source", "output", "started", "warnings")},
            "error": np.array(errors, dtype=object), "backend": np.array([self.backend.name] * n, dtype=object),
            **{key: _column([np.asarray(batch[key][i]) for i in range(n)]) for key in _PASSED_ON},
            "model_input": _column([_EMPTY_3D if x is None else x for x in inputs]), "ab": _column(ab),
            "extra": np.array([pickle.dumps(e) if e else b"" for e in extras], dtype=object),
        }


def _row_prepared(row, extra: dict) -> Prepared:
    """A row (or a batch's row: anything indexed by column name) as the Prepared it was made from."""
    return Prepared(l_merge=np.asarray(row["l_merge"]), model_input=np.asarray(row["model_input"]),
                    padding=extra["padding"], l_small=np.asarray(row["l_small"]), hints=extra["hints"])


def _write_row(row: dict, settings: ImageSettings) -> dict:
    """Finish and write one image atomically, as the local writer does; returns the pickled result,
    with the warnings logged for its file here and where it was read."""
    keep_freed_memory()
    task = Task(Path(row["source"]), Path(row["output"]), TaskKind.IMAGE)
    notes = FileWarnings()
    with notes.working_on(task.source):
        result = _finish(row, task, settings)
    found = (*pickle.loads(row["warnings"]), *notes.take(task.source))
    return {"result": pickle.dumps(replace(result, warnings=(*result.warnings, *found)) if found else result)}


def _finish(row: dict, task: Task, settings: ImageSettings) -> FileResult:
    backend = str(row["backend"])
    if row["error"]:
        return FileResult.failed(task, str(row["error"]), backend)
    extra = pickle.loads(row["extra"])
    prepared = _row_prepared(row, extra)
    luma = LumaPicture.jfif(np.ascontiguousarray(row["luma"])) if extra["luma"] else None
    item = stages.Finished(task, prepared, np.asarray(row["ab"]), extra["info"], float(row["started"]),
                           extra["timings"], luma)
    return stages.finish_and_write(item, settings, backend)


# ---------------------------------------------------------------------------- driver
def connect(address: str | None = None, num_cpus: int | None = None, quiet: bool = True) -> bool:
    """Start or join Ray unless it is running in this process; True if this call started it.
    ``quiet``: Ray's own notices below errors (a local instance started, ...) are not shown.

    ``None``/``"local"``: a Ray on this machine (``num_cpus`` cores, default all); ``"auto"``: the
    cluster this machine belongs to; ``"ray://host:10001"``: a remote cluster through Ray Client."""
    import ray

    if ray.is_initialized():
        return False
    level = logging.ERROR if quiet else logging.INFO
    with _own_signal_handlers_kept():
        if address in (None, LOCAL):
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     logging_level=level)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=level)
    return True


@contextmanager
def _own_signal_handlers_kept() -> Iterator[None]:
    """The caller's Python handlers of SIGINT and SIGTERM as they were, whatever ``ray.init`` sets.

    ``ray.init`` replaces the SIGTERM handler with one that raises SystemExit wherever the main thread
    is (and its core installs a C++ handler that aborts): a SIGTERM of ``colorize-batch --ray`` then
    skipped the CLI's "finish the files in progress, write the report" and exited 134 with every file
    reported cancelled. Handlers the caller did not set (the defaults) are left to Ray."""
    if threading.current_thread() is not threading.main_thread():  # signals are only set from there
        yield
        return
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in kept.items():
            if callable(handler) and handler is not signal.default_int_handler and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)


def _read_remote_args() -> dict:
    return {"num_cpus": 1}


def model_contract(model_path: Path | None):
    return read_contract(ModelFiles.from_path(model_path or default_model_path()).onnx)


def _actor_plan(ray, actors: int | None) -> tuple[int, dict, int]:
    """How many inference actors, the resources of each, and their CPU threads (0: the backend's default)."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    n_actors = max(1, actors or gpus or 1)
    if gpus:
        return n_actors, {"num_gpus": 1}, 0
    per_actor = max(1, cpus // (2 * n_actors))  # leave about half the cores to decoding and encoding
    return n_actors, {"num_cpus": per_actor}, per_actor


def _dataset(ray, todo: Sequence[Task], model: Path | None, settings: ImageSettings, options: RayOptions):
    """The Ray Data pipeline: read + prepare -> predict (actor pool) -> finish + write."""
    contract = model_contract(model)
    n_actors, actor_resources, threads = _actor_plan(ray, options.actors)
    ds = ray.data.from_items([{"source": str(t.source), "output": str(t.output), "hints": str(t.hints or "")}
                              for t in todo])
    # a ray_remote_args_fn keeps decoding in its own tasks (spread over the cluster's CPUs) instead of
    # being fused into the inference actors
    read_kwargs = {"settings": settings, "render_size": settings.render_size or contract.render_size,
                   "size_multiple": contract.size_multiple}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated from Ray 2.5x; fusion is only a loss of parallelism
            ds = ds.map(_read_row, fn_kwargs=read_kwargs, ray_remote_args_fn=_read_remote_args)
    except TypeError:  # a Ray without the argument
        ds = ds.map(_read_row, fn_kwargs=read_kwargs)
    ds = ds.map_batches(_Predictor, batch_size=max(1, settings.batch_size) * 4, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=n_actors), zero_copy_batch=True,
                        fn_constructor_kwargs={"model_path": str(model) if model else None,
                                               "backend": options.backend, "threads": threads,
                                               "render_size": settings.render_size,
                                               "batch_size": settings.batch_size, "cpu_int8": options.cpu_int8},
                        **actor_resources)
    return ds.map(_write_row, fn_kwargs={"settings": settings})


def run_on_ray(tasks: Sequence[Task], model_path: Path | str | None, settings: ImageSettings,
               options: RayOptions = RayOptions(), *, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None, num_cpus: int | None = None,
               journal: RunJournal | None = None) -> list[FileResult]:
    """Colorize image ``tasks`` with Ray Data; ``progress(result, finished, total)`` after each file.

    Each of ``options.actors`` inference actors opens ``options.backend`` on ``model_path`` once
    (one GPU per actor where the cluster has GPUs). ``cancel`` stops taking results; files not yet
    reported are ``cancelled`` (outputs already written are complete files). Ray is started (or
    joined) as :func:`connect` says, and shut down at the end only if this call started it."""
    import ray

    tasks = list(tasks)
    if any(t.kind != TaskKind.IMAGE for t in tasks):
        raise ValueError("run_on_ray runs image tasks only; run videos and frame folders with run_tasks")
    cancel = cancel or CancelToken()
    results: list[FileResult] = []

    def report(result: FileResult, hints: str | None = None) -> None:
        for note in result.warnings:  # logged in a worker's process: said here, as a local run says them
            log.warning("%s", note)
        results.append(result)
        if journal is not None and result.status == Status.DONE and result.output is not None:
            journal.record(result.output, result.hints["digest"] if result.hints else hints)
        if progress:
            progress(result, len(results), len(tasks))

    todo, skipped = stages.skip_existing(tasks, settings.overwrite, journal)
    for result in skipped:
        report(result)
    if not todo:
        return results
    before = {t.output: file_state(t.output) for t in todo}  # an output changed since: this run wrote it
    started_ray = connect(options.address, num_cpus)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        rows = iter(_dataset(ray, todo, Path(model_path) if model_path else None, settings, options).iter_rows())
        try:
            for row in rows:
                report(pickle.loads(row["result"]))
                if cancel.cancelled:
                    break
        finally:
            getattr(rows, "close", lambda: None)()  # stops the execution: no task is started after it
        reported = {r.input for r in results}
        for task in todo:
            if task.source not in reported:
                report(_unreported(task, before[task.output]), stages.hints_digest(task.hints))
    finally:
        if started_ray:
            ray.shutdown()
    return results


def _unreported(task: Task, before: tuple[int, int] | None) -> FileResult:
    """A file whose result never came back (the run was stopped): done if its output was renamed into
    place since the run began (nothing is renamed unfinished), else cancelled. Ray's tasks still
    writing when the driver stops taking results finish their files: without this the report called
    them cancelled (and the journal did not list them) while their outputs were there."""
    now = file_state(task.output)
    if now is not None and now != before:
        return FileResult(task.source, Status.DONE, task.output, reason="finished as the run was stopped")
    return FileResult.cancelled(task)
