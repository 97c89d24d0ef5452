"""The batch runner: decode, inference and encode overlap on threads joined by bounded queues.

    readers (thread pool) --prepared--> inference (one thread, batches by render shape)
                          --predicted--> writers (thread pool, atomic writes)

Memory stays bounded whatever the inputs: at most ``max_inflight_megapixels`` of decoded images
are in flight (one image is always admitted, however large). Existing outputs are skipped unless
``overwrite``; outputs are written to a temporary file and renamed, so an interruption never
leaves a file that a re-run would take as finished. One broken file is reported and the rest go on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from colorizer.colorize import RenderJob, finish, prepare
from colorizer.desktop.backends import Backend
from colorizer.desktop.imagefile import DecodedImage, ImageReadError, read_image, write_image
from colorizer.desktop.report import FileResult
from colorizer.desktop.tasks import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageSettings:
    render_size: int | None = None  # None: the model's own render size
    saturation: float = 1.0
    upsampling: str = "guided"
    output_format: str | None = None  # None: keep each input's format
    quality: int = 95
    overwrite: bool = False
    batch_size: int = 4
    readers: int = 2
    writers: int = 2
    max_inflight_megapixels: float = 100.0


class CancelToken:
    """Set from any thread to stop a run after the files in progress (no partial outputs)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


ProgressCallback = Callable[[FileResult, int, int], None]  # (result, finished count, total)


class _PixelBudget:
    """Admits decoded images while their pixels in flight stay under a budget (one always fits)."""

    def __init__(self, megapixels: float) -> None:
        self.limit = megapixels * 1e6
        self.used = 0.0
        self.cond = threading.Condition()

    def acquire(self, pixels: float, cancel: CancelToken) -> bool:
        with self.cond:
            while self.used > 0 and self.used + pixels > self.limit:
                if cancel.cancelled:
                    return False
                self.cond.wait(0.2)
            self.used += pixels
            return True

    def release(self, pixels: float) -> None:
        with self.cond:
            self.used -= pixels
            self.cond.notify_all()


@dataclass
class _Item:
    task: Task
    started: float
    image: DecodedImage | None = None
    job: RenderJob | None = None
    ab: np.ndarray | None = None
    pixels: float = 0.0
    timings: dict = field(default_factory=dict)


_DONE = object()


def colorize_array(rgb: np.ndarray, backend: Backend, settings: ImageSettings) -> np.ndarray:
    """Colorize one RGB array (uint8/uint16/float) in memory; float32 RGB in [0, 1] back."""
    job = prepare(rgb, settings.render_size or backend.contract.render_size, backend.contract.size_multiple)
    ab = backend.predict(job.model_input[None])[0]
    return finish(job, ab, settings.saturation, settings.upsampling)


def write_colorized(task: Task, job: RenderJob, ab: np.ndarray, settings: ImageSettings, *, alpha: np.ndarray | None,
                    source_format: str, metadata, bit_depth: int) -> None:
    """Finish one image (ab to full resolution, merged with its L) and write it atomically.

    The one write path of the local runner and the Ray runner, so their outputs are identical."""
    rgb = finish(job, ab, settings.saturation, settings.upsampling)
    write_image(task.output, rgb, alpha=alpha, format=settings.output_format or source_format,
                quality=settings.quality, metadata=metadata, bit_depth=bit_depth, source=task.source)


class BatchRunner:
    """Runs image tasks through one backend; thread-safe progress callbacks; cancel with a token."""

    def __init__(self, backend: Backend, settings: ImageSettings = ImageSettings(),
                 progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> None:
        self.backend = backend
        self.settings = settings
        self.progress = progress
        self.cancel = cancel or CancelToken()
        self.render_size = settings.render_size or backend.contract.render_size

    # ------------------------------------------------------------------ public
    def run(self, tasks: Sequence[Task]) -> list[FileResult]:
        results: list[FileResult] = []
        lock = threading.Lock()
        total = len(tasks)

        def report(result: FileResult) -> None:
            with lock:
                results.append(result)
                n = len(results)
            if self.progress:
                self.progress(result, n, total)

        todo = []
        for task in tasks:
            if task.output.exists() and not self.settings.overwrite:
                report(FileResult.skipped(task, "output exists (use --overwrite to redo)"))
            else:
                todo.append(task)
        if todo:
            self._pipeline(todo, report)
        return results

    # ------------------------------------------------------------------ stages
    def _pipeline(self, tasks: Sequence[Task], report: Callable[[FileResult], None]) -> None:
        s = self.settings
        budget = _PixelBudget(s.max_inflight_megapixels)
        prepared: queue.Queue = queue.Queue(maxsize=max(2, s.batch_size * 2))
        reported = set()
        reported_lock = threading.Lock()

        def done(result: FileResult) -> None:
            with reported_lock:
                reported.add(result.input)
            report(result)

        def read(task: Task) -> None:
            item = _Item(task, time.perf_counter())
            if self.cancel.cancelled:
                return
            try:
                t = time.perf_counter()
                item.image = read_image(task.source)
                h, w = item.image.rgb.shape[:2]
                item.pixels = float(h * w)
                if not budget.acquire(item.pixels, self.cancel):
                    return
                item.job = prepare(item.image.rgb, self.render_size, self.backend.contract.size_multiple)
                item.timings["decode_s"] = time.perf_counter() - t
            except ImageReadError as exc:
                done(FileResult.failed(task, str(exc), self.backend.name))
                return
            except Exception as exc:  # an unexpected decoder failure is this file's problem only
                log.exception("reading %s failed", task.source)
                done(FileResult.failed(task, f"{task.source}: could not be read ({exc})", self.backend.name))
                return
            prepared.put(item)

        writers = ThreadPoolExecutor(max_workers=s.writers, thread_name_prefix="colorize-write")

        def write(item: _Item) -> None:
            try:
                t = time.perf_counter()
                img = item.image
                write_colorized(item.task, item.job, item.ab, s, alpha=img.alpha, source_format=img.format,
                                metadata=img.metadata, bit_depth=img.bit_depth)
                item.timings["encode_s"] = time.perf_counter() - t
                done(FileResult.ok(item.task, self.backend.name, time.perf_counter() - item.started, item.timings))
            except Exception as exc:
                log.exception("writing %s failed", item.task.output)
                done(FileResult.failed(item.task, f"{item.task.output}: could not be written ({exc})",
                                       self.backend.name))
            finally:
                budget.release(item.pixels)
                item.image = item.job = item.ab = None

        def infer_loop() -> None:
            finished_reading = False
            while not finished_reading:
                first = prepared.get()
                if first is _DONE:
                    break
                batch = [first]
                while len(batch) < s.batch_size * 4:  # drain what is ready, without waiting
                    try:
                        nxt = prepared.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _DONE:
                        finished_reading = True
                        break
                    batch.append(nxt)
                try:
                    self._infer(batch, writers, write, done, budget)
                except Exception as exc:  # keep consuming, or the readers would block forever
                    log.exception("inference stage failed")
                    for item in batch:
                        if item.ab is None:
                            budget.release(item.pixels)
                            done(FileResult.failed(item.task, f"inference stage failed: {exc}", self.backend.name))

        inference = threading.Thread(target=infer_loop, name="colorize-infer", daemon=True)
        inference.start()
        with ThreadPoolExecutor(max_workers=s.readers, thread_name_prefix="colorize-read") as readers:
            for future in [readers.submit(read, t) for t in tasks]:
                future.result()
        prepared.put(_DONE)
        inference.join()
        writers.shutdown(wait=True)
        for task in tasks:
            if task.source not in reported:
                report(FileResult.cancelled(task))

    def _infer(self, items: list[_Item], writers: ThreadPoolExecutor, write: Callable, done: Callable,
               budget: _PixelBudget) -> None:
        groups: dict[tuple[int, int], list[_Item]] = {}
        for item in items:
            groups.setdefault(item.job.render_shape, []).append(item)
        for group in groups.values():
            for start in range(0, len(group), self.settings.batch_size):
                chunk = group[start : start + self.settings.batch_size]
                if self.cancel.cancelled:
                    for item in chunk:
                        budget.release(item.pixels)
                    continue
                try:
                    t = time.perf_counter()
                    ab = self.backend.predict(np.stack([it.job.model_input for it in chunk]))
                    per_image = (time.perf_counter() - t) / len(chunk)
                except Exception as exc:
                    log.exception("inference failed")
                    for item in chunk:
                        budget.release(item.pixels)
                        done(FileResult.failed(item.task, f"inference failed on {self.backend.name}: {exc}",
                                               self.backend.name))
                    continue
                for item, one in zip(chunk, ab, strict=True):
                    item.ab = one
                    item.timings["inference_s"] = per_image
                    writers.submit(write, item)
