"""The photo stages, shared by the local batch runner and the Ray runner so their outputs are identical.

    skip_existing -> decode + prepare -> predict, grouped by render shape -> finish + atomic write

Each stage turns a failure into the file's own result (one broken file never stops the others):
:func:`read_failure` and :func:`finish_and_write` say why in one line, :func:`predict_chunks`
reports a failed inference call for the images of that call only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorizer.colorize import Prepared, finish
from colorizer.desktop.core import CancelToken
from colorizer.desktop.media.errors import ImageReadError
from colorizer.desktop.media.image_metadata import ImageMetadata
from colorizer.desktop.media.image_write import write_image
from colorizer.desktop.pipeline.report import FileResult
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.desktop.pipeline.tasks import Task

log = logging.getLogger(__name__)

SKIP_REASON = "output exists (use --overwrite to redo)"


def skip_existing(tasks: Sequence[Task], overwrite: bool) -> tuple[list[Task], list[FileResult]]:
    """The tasks to run, and a ``skipped`` result for each whose output exists (unless ``overwrite``)."""
    todo, skipped = [], []
    for task in tasks:
        if task.output.exists() and not overwrite:
            skipped.append(FileResult.skipped(task, SKIP_REASON))
        else:
            todo.append(task)
    return todo, skipped


def read_failure(source: Path, exc: Exception) -> str:
    """The reason a photo could not be decoded or prepared (call from its ``except`` block)."""
    if isinstance(exc, ImageReadError):
        return str(exc)
    log.exception("reading %s failed", source)  # an unexpected decoder failure is this file's problem only
    return f"{source}: could not be read ({exc})"


@dataclass(frozen=True)
class OutputInfo:
    """What the writer keeps of the source photo besides its pixels."""

    format: str
    bit_depth: int
    metadata: ImageMetadata
    alpha: np.ndarray | None = None


@dataclass
class Chunk:
    """One inference call: the indices it covered and what came of it."""

    indices: list[int]
    ab: np.ndarray | None = None  # (len(indices), 2, h, w) when it ran
    seconds_each: float = 0.0
    error: str | None = None  # why the call failed
    cancelled: bool = False


def predict_chunks(backend, model_inputs: Sequence[np.ndarray | None], batch_size: int,
                   cancel: CancelToken | None = None) -> Iterator[Chunk]:
    """Predict ``model_inputs`` (None: left out) in calls of at most ``batch_size`` images of one render shape."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(model_inputs):
        if x is not None:
            groups.setdefault(x.shape[-2:], []).append(i)
    for group in groups.values():
        for start in range(0, len(group), max(1, batch_size)):
            chunk = Chunk(group[start : start + max(1, batch_size)])
            if cancel is not None and cancel.cancelled:
                chunk.cancelled = True
                yield chunk
                continue
            try:
                t = time.perf_counter()
                chunk.ab = backend.predict(np.stack([model_inputs[i] for i in chunk.indices]))
                chunk.seconds_each = (time.perf_counter() - t) / len(chunk.indices)
            except Exception as exc:
                log.exception("inference failed")
                chunk.error = f"inference failed on {backend.name}: {exc}"
            yield chunk


@dataclass
class Finished:
    """A predicted photo on its way to the writer."""

    task: Task
    prepared: Prepared
    ab: np.ndarray
    info: OutputInfo
    started: float  # time.time() when its decoding began
    timings: dict = field(default_factory=dict)


def finish_and_write(item: Finished, settings: ImageSettings, backend_name: str) -> FileResult:
    """ab to full resolution, merged with the photo's L, written atomically; the photo's result."""
    task = item.task
    try:
        t = time.time()
        rgb = finish(item.prepared, item.ab, settings.saturation, settings.upsampling)
        write_image(task.output, rgb, alpha=item.info.alpha, format=settings.output_format or item.info.format,
                    quality=settings.quality, metadata=item.info.metadata, bit_depth=item.info.bit_depth,
                    source=task.source)
        timings = item.timings | {"encode_s": time.time() - t}
        return FileResult.ok(task, backend_name, time.time() - item.started, timings)
    except Exception as exc:
        log.exception("writing %s failed", task.output)
        return FileResult.failed(task, f"{task.output}: could not be written ({exc})", backend_name)
