"""The local photo runner: decode, inference and encode overlap on threads joined by bounded queues.

    readers (thread pool) --prepared--> inference (one thread, batches by render shape)
                          --predicted--> writers (thread pool, atomic writes)

The stages themselves are :mod:`.stages` (the Ray runner runs the same ones). Memory stays bounded
whatever the inputs: at most ``max_inflight_megapixels`` of decoded images are in flight (one
image is always admitted, however large), and every admitted image gives its pixels back however
it ends. Existing outputs are skipped unless ``overwrite``. One broken file is reported and the
rest go on.
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

from colorizer.allocator import FreedMemoryReleaser
from colorizer.colorize import Prepared, merge_color, prepare
from colorizer.desktop.backends import Backend
from colorizer.desktop.core import Cancelled, CancelToken
from colorizer.desktop.media.image_read import ImageHeader, read_image
from colorizer.desktop.media.yuv import LumaPicture
from colorizer.desktop.pipeline import stages
from colorizer.desktop.pipeline.file_warnings import FileWarnings
from colorizer.desktop.pipeline.journal import RunJournal
from colorizer.desktop.pipeline.report import FileResult
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.desktop.pipeline.tasks import Task

log = logging.getLogger(__name__)

ProgressCallback = Callable[[FileResult, int, int], None]
"""Called after each input: (its result, inputs finished so far, inputs in the run)."""


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
class _Photo:
    task: Task
    started: float
    info: stages.OutputInfo | None = None
    prepared: Prepared | None = None
    luma: LumaPicture | None = None  # kept for the writer (stages.prepare_photo)
    pixels: float = 0.0  # declared by its header, held in the budget from before decoding
    timings: dict = field(default_factory=dict)
    handed_on: bool = False  # to a writer, or reported and its pixels released
    first: bool = False  # the run's first photo: the others wait for it (see _HeadStart)


class _HeadStart:
    """The first photo goes through alone, so the first output comes as soon as it can: the second
    photo is read once the first reaches inference, the rest once the first is written (or has
    failed). Its merge and encode then share the two cores with one reader at most, and the second
    core works on the second photo meanwhile, so the steady rate is kept. A cap on the wait keeps a
    huge first photo from stalling the others for long."""

    MAX_WAIT_S = 10.0

    def __init__(self) -> None:
        self.inferring = threading.Event()
        self.written = threading.Event()

    def wait(self, index: int, cancel: CancelToken) -> None:
        gate = self.inferring if index == 1 else self.written
        deadline = time.monotonic() + self.MAX_WAIT_S
        while index and not gate.is_set() and not cancel.cancelled and time.monotonic() < deadline:
            gate.wait(0.05)

    def passed(self, photo: _Photo, written: bool = False) -> None:
        if photo.first:
            self.inferring.set()
            if written:
                self.written.set()


_DONE = object()


def colorize_array(rgb: np.ndarray, backend: Backend, settings: ImageSettings) -> np.ndarray:
    """Colorize one RGB array (uint8/uint16/float) in memory; float32 RGB in [0, 1] back."""
    prepared = prepare(rgb, settings.render_size or backend.contract.render_size, backend.contract.size_multiple)
    ab = backend.predict(prepared.model_input[None])[0]
    return merge_color(prepared, ab, settings.saturation, settings.upsampling)


class BatchRunner:
    """Runs image tasks through one backend; thread-safe progress callbacks; cancel with a token."""

    def __init__(self, backend: Backend, settings: ImageSettings | None = None,
                 progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                 journal: RunJournal | None = None) -> None:
        self.backend = backend
        self.journal = journal
        self.settings = settings = settings or ImageSettings()
        self.progress = progress
        self.cancel = cancel or CancelToken()
        self.render_size = settings.render_size or backend.contract.render_size
        self._lock = threading.Lock()
        self._results: list[FileResult] = []
        self._total = 0
        self.warnings = FileWarnings()  # what is logged while a photo is read or written goes into its result

    def run(self, tasks: Sequence[Task]) -> list[FileResult]:
        self._results, self._total = [], len(tasks)
        todo, skipped = stages.skip_existing(tasks, self.settings.overwrite, self.journal)
        for result in skipped:
            self._report(result)
        if todo:
            self._pipeline(todo)
        return self._results

    def _report(self, result: FileResult) -> None:
        result = self.warnings.attach(result)
        if self.journal is not None:
            self.journal.finished_with(result.input)
        with self._lock:
            self._results.append(result)
            n = len(self._results)
        if self.progress:
            self.progress(result, n, self._total)

    # ------------------------------------------------------------------ stages
    def _pipeline(self, tasks: Sequence[Task]) -> None:
        s = self.settings
        self._budget = _PixelBudget(s.max_inflight_megapixels)
        self._freed = FreedMemoryReleaser()  # photos of many sizes: freed memory does not pile up
        self._write_slots = threading.Semaphore(s.writers * 2)  # photos waiting for (or at) a writer
        self._prepared: queue.Queue = queue.Queue(maxsize=max(2, s.batch_size * 2))
        self._writers = ThreadPoolExecutor(max_workers=s.writers, thread_name_prefix="colorize-write")
        self._head = _HeadStart()
        inference = threading.Thread(target=self._infer_loop, name="colorize-infer", daemon=True)
        inference.start()
        with ThreadPoolExecutor(max_workers=s.readers, thread_name_prefix="colorize-read") as readers:
            for future in [readers.submit(self._read, t, i) for i, t in enumerate(tasks)]:
                future.result()
        self._prepared.put(_DONE)
        inference.join()
        self._writers.shutdown(wait=True)
        reported = {r.input for r in self._results}
        for task in tasks:
            if task.source not in reported:
                self._report(FileResult.cancelled(task))

    def _read(self, task: Task, index: int) -> None:
        with self.warnings.working_on(task.source):
            self._read_photo(task, index)

    def _read_photo(self, task: Task, index: int) -> None:
        self._head.wait(index, self.cancel)
        if self.cancel.cancelled:
            self._head.written.set()
            return
        if self.journal is not None:
            self.journal.working_on(task.source)
        photo = _Photo(task, time.time(), first=index == 0)

        def admit(header: ImageHeader) -> None:  # before decoding, its memory checked: its place in the budget
            if not self._budget.acquire(float(header.pixels), self.cancel):
                raise Cancelled()
            photo.pixels = float(header.pixels)

        try:
            hints = stages.photo_hints(task.hints)  # a sidecar it cannot use fails the photo before it is decoded
            image = read_image(task.source, **stages.photo_limits(task.source, self.settings, admit))
            photo.info = stages.OutputInfo(image.format, image.bit_depth, image.metadata, image.alpha)
            photo.prepared, photo.luma = stages.prepare_photo(image, self.settings, self.render_size,
                                                               self.backend.contract.size_multiple, hints)
            del image  # only L (or the luma plane) goes on
        except Cancelled:
            self._budget.release(photo.pixels)
            self._head.passed(photo, written=True)
            return
        except Exception as exc:  # the pixels go back to the budget, or later images would wait forever
            self._budget.release(photo.pixels)
            self._head.passed(photo, written=True)
            self._report(FileResult.failed(task, stages.read_failure(task.source, exc), self.backend.name))
            return
        photo.timings["decode_s"] = time.time() - photo.started
        self._prepared.put(photo)

    def _infer_loop(self) -> None:
        finished_reading = False
        while not finished_reading:
            first = self._prepared.get()
            if first is _DONE:
                break
            batch = [first]
            while len(batch) < self.settings.batch_size * 4:  # drain what is ready, without waiting
                try:
                    nxt = self._prepared.get_nowait()
                except queue.Empty:
                    break
                if nxt is _DONE:
                    finished_reading = True
                    break
                batch.append(nxt)
            try:
                self._infer(batch)
            except Exception as exc:  # keep consuming, or the readers would block forever
                log.info("inference stage failed", exc_info=True)
                for photo in batch:
                    self._head.passed(photo, written=True)
                    if not photo.handed_on:
                        self._budget.release(photo.pixels)
                        self._report(FileResult.failed(photo.task, f"inference stage failed: {exc}",
                                                       self.backend.name))

    def _infer(self, photos: list[_Photo]) -> None:
        chunks = stages.predict_chunks(self.backend, [p.prepared.model_input for p in photos], self.settings.batch_size,
                                self.cancel, prepared=[p.prepared for p in photos])
        for chunk in chunks:
            for i, ab in zip(chunk.indices, chunk.ab if chunk.ab is not None else [None] * len(chunk.indices),
                             strict=True):
                photo = photos[i]
                photo.handed_on = True
                self._head.passed(photo, written=ab is None)
                if ab is None:  # cancelled (reported at the end) or failed: its pixels go back now
                    self._budget.release(photo.pixels)
                    if chunk.error:
                        self._report(FileResult.failed(photo.task, chunk.error, self.backend.name))
                    continue
                photo.timings["inference_s"] = chunk.seconds_each
                slot = self._wait_for_a_writer()
                self._writers.submit(self._write, photo, ab, slot)

    def _wait_for_a_writer(self) -> bool:
        """Hold inference while the writers have ``writers * 2`` photos waiting (True once a place is
        taken). Without it, when writing is the slower stage (PNG, TIFF), colorized photos pile up
        before the writers until the pixel budget stops the readers: ~100 MP of small photos' L and
        color, close to 1 GB (``bench/bench_memory.py``: 8k small photos peaked at 2.1x 1k's). With
        it, what waits is a few photos, and the budget bounds only the large ones. A stop lets go."""
        while not self._write_slots.acquire(timeout=0.2):
            if self.cancel.cancelled:
                return False
        return True

    def _write(self, photo: _Photo, ab: np.ndarray, slot: bool = False) -> None:
        item = stages.Finished(photo.task, photo.prepared, ab, photo.info, photo.started, photo.timings, photo.luma)
        photo.prepared = photo.luma = None  # the writer owns them now, and lets L go before encoding
        try:
            if self.cancel.cancelled:  # queued for a writer, not started: cancelled (reported at the end)
                return
            with self.warnings.working_on(photo.task.source):
                result = stages.finish_and_write(item, self.settings, self.backend.name, self.journal)
            self._report(result)
        finally:
            del item
            self._budget.release(photo.pixels)
            self._freed.finished(photo.pixels)
            self._head.passed(photo, written=True)
            if slot:
                self._write_slots.release()
