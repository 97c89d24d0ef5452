"""Photo tasks on a Ray cluster, through Ray Data: the same three stages as the local batch runner.

    read + prepare (Ray tasks)  -->  predict (actor pool, one backend per actor, batches by render shape)
                                -->  finish + atomic write (Ray tasks)  -->  streamed results

Every stage calls the functions the local :class:`~colorizer.desktop.batch.BatchRunner` calls
(``read_image``, ``prepare``, ``Backend.predict``, ``finish``, ``write_image``), with the same
settings, so the outputs are byte-identical to a local run. Paths must be readable (inputs) and
writable (outputs) under the same names on every node (a shared file system); the model too.
Existing outputs are skipped before anything is submitted (``overwrite`` redoes them). A file
that fails becomes a ``failed`` result and the rest go on. Videos and frame folders are not
handled here: their temporal smoothing needs every frame in order on one machine, so callers run
them locally (see :func:`run_tasks_on_ray`).

Ray is optional (``pip install colorizer[cluster]``); this module imports it only when called.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from colorizer.colorize import RenderJob, prepare
from colorizer.desktop.batch import CancelToken, ImageSettings, ProgressCallback, write_colorized
from colorizer.desktop.imagefile import ImageReadError, read_image
from colorizer.desktop.report import FileResult
from colorizer.desktop.tasks import Task

log = logging.getLogger(__name__)

LOCAL = "local"  # address meaning "start a Ray on this machine" (as None does)
_EMPTY_2D = np.zeros((1, 1), np.float32)
_EMPTY_3D = np.zeros((1, 1, 1), np.float32)


def _column(values: list) -> np.ndarray:
    """A batch column from per-row arrays: stacked when their shapes agree, else a ragged object array."""
    if len({v.shape for v in values}) == 1:
        return np.stack(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


# ---------------------------------------------------------------------------- stages (run on workers)
def _read_row(row: dict, render_size: int | None, size_multiple: int) -> dict:
    """Decode and prepare one image; the image's arrays travel on, its metadata is pickled beside."""
    source = Path(row["source"])
    started = time.time()
    out = {"source": row["source"], "output": row["output"], "started": started, "error": "",
           "l_full": _EMPTY_2D, "model_input": _EMPTY_3D, "extra": b""}
    try:
        image = read_image(source)
        job = prepare(image.rgb, render_size, size_multiple)
    except ImageReadError as exc:
        out["error"] = str(exc)
        return out
    except Exception as exc:  # an unexpected decoder failure is this file's problem only
        log.exception("reading %s failed", source)
        out["error"] = f"{source}: could not be read ({exc})"
        return out
    out["l_full"] = job.l_full
    out["model_input"] = job.model_input
    out["extra"] = pickle.dumps({"alpha": image.alpha, "format": image.format, "bit_depth": image.bit_depth,
                                 "metadata": image.metadata, "padding": job.padding,
                                 "timings": {"decode_s": time.time() - started}})
    return out


class _Predictor:
    """A Ray Data actor: opens the backend once, then predicts batches grouped by render shape."""

    def __init__(self, model_path: str | None, backend: str, threads: int, render_size: int | None,
                 batch_size: int) -> None:
        from colorizer.desktop.backends import open_backend

        self.backend = open_backend(Path(model_path) if model_path else None, backend, 0, threads,
                                    render_size=render_size)
        self.batch_size = max(1, batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["source"])
        errors = [str(e) for e in batch["error"]]
        extras = [pickle.loads(e) if e else None for e in batch["extra"]]
        inputs = [np.asarray(batch["model_input"][i]) for i in range(n)]
        ab: list[np.ndarray] = [_EMPTY_3D] * n
        groups: dict[tuple[int, int], list[int]] = {}
        for i in range(n):
            if not errors[i]:
                groups.setdefault(inputs[i].shape[-2:], []).append(i)
        for group in groups.values():
            for start in range(0, len(group), self.batch_size):
                chunk = group[start:start + self.batch_size]
                try:
                    t = time.perf_counter()
                    pred = self.backend.predict(np.stack([inputs[i] for i in chunk]))
                    per_image = (time.perf_counter() - t) / len(chunk)
                except Exception as exc:
                    log.exception("inference failed")
                    for i in chunk:
                        errors[i] = f"inference failed on {self.backend.name}: {exc}"
                    continue
                for i, one in zip(chunk, pred, strict=True):
                    ab[i] = one
                    extras[i]["timings"]["inference_s"] = per_image
        return {
            "source": batch["source"], "output": batch["output"], "started": batch["started"],
            "error": np.array(errors, dtype=object), "backend": np.array([self.backend.name] * n, dtype=object),
            "l_full": _column([np.asarray(batch["l_full"][i]) for i in range(n)]),
            "model_input": _column(inputs), "ab": _column(ab),
            "extra": np.array([pickle.dumps(e) if e else b"" for e in extras], dtype=object),
        }


def _write_row(row: dict, settings: ImageSettings) -> dict:
    """Finish and write one image atomically, as the local writer does; returns the pickled result."""
    task = Task(Path(row["source"]), Path(row["output"]), "image")
    backend = str(row["backend"])
    if row["error"]:
        return {"result": pickle.dumps(FileResult.failed(task, str(row["error"]), backend))}
    extra = pickle.loads(row["extra"])
    try:
        t = time.time()
        job = RenderJob(l_full=np.asarray(row["l_full"]), model_input=np.asarray(row["model_input"]),
                        padding=extra["padding"])
        write_colorized(task, job, np.asarray(row["ab"]), settings, alpha=extra["alpha"],
                        source_format=extra["format"], metadata=extra["metadata"], bit_depth=extra["bit_depth"])
        timings = extra["timings"] | {"encode_s": time.time() - t}
        result = FileResult.ok(task, backend, time.time() - float(row["started"]), timings)
    except Exception as exc:
        log.exception("writing %s failed", task.output)
        result = FileResult.failed(task, f"{task.output}: could not be written ({exc})", backend)
    return {"result": pickle.dumps(result)}


# ---------------------------------------------------------------------------- driver
def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start or join Ray unless it is running in this process; True if this call started it.

    ``None``/``"local"``: a Ray on this machine (``num_cpus`` cores, default all); ``"auto"``: the
    cluster this machine belongs to; ``"ray://host:10001"``: a remote cluster through Ray Client."""
    import ray

    if ray.is_initialized():
        return False
    if address in (None, LOCAL):
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    return True


def _read_remote_args() -> dict:
    return {"num_cpus": 1}


def model_contract(model_path: Path | None):
    from colorizer.desktop.backends import ModelFiles, default_model_path, read_contract

    return read_contract(ModelFiles.from_path(model_path or default_model_path()).onnx)


def run_on_ray(tasks: Sequence[Task], model_path: Path | str | None, settings: ImageSettings, *,
               address: str | None = None, backend: str = "auto", actors: int | None = None, batch_size: int = 4,
               progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
               num_cpus: int | None = None) -> list[FileResult]:
    """Colorize image ``tasks`` with Ray Data; ``progress(result, finished, total)`` after each file.

    ``actors``: inference actors (default: one per GPU of the cluster, else one CPU actor); each
    opens ``backend`` on ``model_path`` once (one GPU per actor where the cluster has GPUs).
    ``cancel`` stops taking results; files not yet reported are ``cancelled`` (outputs already
    written are complete files). Ray is started (or joined) as :func:`connect` says, and shut
    down at the end only if this call started it."""
    import ray

    tasks = list(tasks)
    if any(t.kind != "image" for t in tasks):
        raise ValueError("run_on_ray runs image tasks only; run videos and frame folders with run_job")
    cancel = cancel or CancelToken()
    total = len(tasks)
    results: list[FileResult] = []

    def report(result: FileResult) -> None:
        results.append(result)
        if progress:
            progress(result, len(results), total)

    todo = []
    for task in tasks:
        if task.output.exists() and not settings.overwrite:
            report(FileResult.skipped(task, "output exists (use --overwrite to redo)"))
        else:
            todo.append(task)
    if not todo:
        return results

    model = Path(model_path) if model_path else None
    contract = model_contract(model)
    render_size = settings.render_size or contract.render_size
    started_ray = connect(address, num_cpus)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        n_actors = max(1, actors or gpus or 1)
        if gpus:
            actor_resources = {"num_gpus": 1}
            threads = 0
        else:  # leave about half the cores to decoding and encoding
            per_actor = max(1, cpus // (2 * n_actors))
            actor_resources = {"num_cpus": per_actor}
            threads = per_actor
        rows = [{"source": str(t.source), "output": str(t.output)} for t in todo]
        ds = ray.data.from_items(rows)
        # a ray_remote_args_fn keeps decoding in its own tasks (spread over the cluster's CPUs) instead of
        # being fused into the inference actors
        read_kwargs = {"render_size": render_size, "size_multiple": contract.size_multiple}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # deprecated from Ray 2.5x; fusion is only a loss of parallelism
                ds = ds.map(_read_row, fn_kwargs=read_kwargs, ray_remote_args_fn=_read_remote_args)
        except TypeError:  # a Ray without the argument
            ds = ds.map(_read_row, fn_kwargs=read_kwargs)
        ds = ds.map_batches(_Predictor, batch_size=max(1, batch_size) * 4, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=n_actors), zero_copy_batch=True,
                            fn_constructor_kwargs={"model_path": str(model) if model else None, "backend": backend,
                                                   "threads": threads, "render_size": settings.render_size,
                                                   "batch_size": batch_size},
                            **actor_resources)
        ds = ds.map(_write_row, fn_kwargs={"settings": settings})
        reported: set[Path] = set()
        for row in ds.iter_rows():
            result = pickle.loads(row["result"])
            reported.add(result.input)
            report(result)
            if cancel.cancelled:
                break
        for task in todo:
            if task.source not in reported:
                report(FileResult.cancelled(task))
    finally:
        if started_ray:
            ray.shutdown()
    return results


def run_tasks_on_ray(tasks: Sequence[Task], model_path: Path | None, settings, *, address: str | None = None,
                     backend_choice: str = "auto", actors: int | None = None, local_backend=None,
                     progress: ProgressCallback | None = None, frame_progress=None,
                     cancel: CancelToken | None = None) -> list[FileResult]:
    """A whole job (:class:`~colorizer.desktop.jobs.JobSettings`): photos on Ray, then videos and
    frame folders locally through :func:`~colorizer.desktop.jobs.run_job` with ``local_backend``
    (temporal smoothing needs all frames of a film on one machine)."""
    from colorizer.desktop.jobs import run_job

    cancel = cancel or CancelToken()
    total = len(tasks)
    images = [t for t in tasks if t.kind == "image"]
    others = [t for t in tasks if t.kind != "image"]
    results: list[FileResult] = []

    def forward(result: FileResult, _done: int, _total: int) -> None:
        results.append(result)
        if progress:
            progress(result, len(results), total)

    if images:
        run_on_ray(images, model_path, settings.images, address=address, backend=backend_choice, actors=actors,
                   batch_size=settings.images.batch_size, progress=forward, cancel=cancel)
    if others:
        if local_backend is None:
            raise ValueError("videos and frame folders need a local backend")
        run_job(others, local_backend, settings, progress=forward, frame_progress=frame_progress, cancel=cancel)
    return results
