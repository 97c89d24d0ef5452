"""The photo stages, shared by the local batch runner and the Ray runner so their outputs are identical.

    skip_existing -> decode + prepare -> predict, grouped by render shape -> merge color + atomic write

Two routes from the decoded pixels to the file (:func:`prepare_photo` picks one):

* an 8-bit gray photo written as JPEG keeps its luma: its gray levels are the output's Y' plane,
  the color is merged with L at the chroma planes' resolution and encoded as Cb/Cr there
  (:class:`~colorizer.desktop.pipeline.frame_formats.LumaFrames`, as a film's frames are), and
  libjpeg-turbo takes the 4:2:0 planes as they are (``media.image_write.JpegPlanes``);
* every other photo: L at full resolution, merged with the upsampled color and converted to RGB a
  strip of rows at a time (:func:`colorizer.colorize.merge_color`), then encoded.

A photo's color hints (its sidecar, :mod:`colorizer.hints`; the path is the task's) are read with
it and placed on its render grid (:func:`prepare_photo`); a hint model gets them as guidance
(:func:`colorizer.colorize.predict_prepared`), and the merge spreads them over the predicted color
before it is upsampled, so both routes take them. An output made with other hints than the
sidecar's now (or without) is not skipped.

Each stage turns a failure into the file's own result (one broken file never stops the others):
:func:`read_failure` and :func:`finish_and_write` say why in one line, :func:`predict_chunks`
reports a failed inference call for the images of that call only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorizer.colorize import Prepared, merge_color, predict_prepared, prepare
from colorizer.contract import gray_plane
from colorizer.desktop.core import CancelToken, TaskKind
from colorizer.desktop.media.errors import ImageReadError
from colorizer.desktop.media.formats import SIXTEEN_BIT_FORMATS, canonical_format
from colorizer.desktop.media.image_metadata import ImageMetadata
from colorizer.desktop.media.image_read import DECODER_MAX_PIXELS, Admit, DecodedImage, ImageHeader
from colorizer.desktop.media.image_write import JpegPlanes, write_image
from colorizer.desktop.media.yuv import LumaPicture
from colorizer.desktop.pipeline.frame_formats import LumaFrames
from colorizer.desktop.pipeline.journal import RunJournal, output_done
from colorizer.desktop.pipeline.report import FileResult
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.desktop.pipeline.tasks import Task
from colorizer.hints import HintsError, PhotoHints, hints_digest, read_photo_hints

log = logging.getLogger(__name__)

SKIP_REASON = "output exists"  # how to redo it is each face's to say (--overwrite, the app's Redo option)


def skip_existing(tasks: Sequence[Task], overwrite: bool, journal: RunJournal | None = None
                  ) -> tuple[list[Task], list[FileResult]]:
    """The tasks to run, and a ``skipped`` result for each whose output is finished (unless
    ``overwrite``): with a ``journal``, an output it lists or that decodes completely; without
    one, any existing output."""
    todo, skipped = [], []
    for task in tasks:
        hints = hints_digest(task.hints) if task.kind == TaskKind.IMAGE else None
        if not overwrite and output_done(task.output, task.kind, journal, hints):
            skipped.append(FileResult.skipped(task, SKIP_REASON))
        else:
            todo.append(task)
    return todo, skipped


def read_failure(source: Path, exc: Exception) -> str:
    """The reason a photo could not be decoded or prepared (call from its ``except`` block)."""
    if isinstance(exc, (ImageReadError, HintsError)):
        return str(exc)
    log.info("reading %s failed", source, exc_info=True)  # an unexpected failure is this file's problem only
    if isinstance(exc, MemoryError):
        return f"{source}: not enough memory to decode it"
    return f"{source}: could not be read ({type(exc).__name__}: {exc})"


BYTES_PER_PIXEL = 16
"""What colorizing a photo of 8-bit samples costs at most, per declared pixel, in this pipeline; deeper
samples cost as many times more as they take bytes (measured above the process, docs/benchmarks.md
"Archives at scale": 6.5-11 for 8 bits, 11-16.5 for 16, 27 for float32 RGB, 48 for float64 RGB)."""


def memory_needed(header: ImageHeader) -> int:
    """Bytes colorizing a photo with this header may take at its peak (an upper estimate)."""
    return header.pixels * BYTES_PER_PIXEL * max(1, -(-header.bits // 8))


def memory_limit(settings: ImageSettings) -> int:
    """The most memory one photo may take: ``settings.max_memory_mb``, or half of this machine's RAM."""
    if settings.max_memory_mb is not None:
        return int(settings.max_memory_mb * 1e6)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def check_memory(source: Path, header: ImageHeader, settings: ImageSettings) -> None:
    """Refuse (ImageReadError) a photo whose declared size needs more memory than a photo may take."""
    needed, limit = memory_needed(header), memory_limit(settings)
    if needed > limit:
        raise ImageReadError(source, f"{header.width}x{header.height} ({header.pixels / 1e6:.0f} megapixels) needs "
                             f"about {needed / 1e9:.1f} GB to colorize, more than the {limit / 1e9:.1f} GB a photo "
                             "may take (--max-memory)")


def photo_limits(source: Path, settings: ImageSettings, admit: Admit | None = None) -> dict:
    """How a run lets a photo be decoded, as keyword arguments of ``read_image`` (or
    ``read_image_for_display``): up to the decoders' limit (``DECODER_MAX_PIXELS``), and before any
    pixel is decoded refused when it needs more memory than a photo may take (:func:`check_memory`),
    then given to ``admit`` (a run's memory budget). The local runner, ``--ray``'s workers, the hint
    preview and the app's viewer all read a photo with these."""

    def check(header: ImageHeader) -> None:
        check_memory(source, header, settings)
        if admit is not None:
            admit(header)

    return {"max_pixels": DECODER_MAX_PIXELS, "admit": check}


@dataclass(frozen=True)
class OutputInfo:
    """What the writer keeps of the source photo besides its pixels."""

    format: str
    bit_depth: int
    metadata: ImageMetadata
    alpha: np.ndarray | None = None


def output_format(settings: ImageSettings, source_format: str) -> str:
    return canonical_format(settings.output_format or source_format)


_JPEG_LUMA = LumaFrames(lambda picture, cb, cr: JpegPlanes(picture.y, cb, cr))


def photo_hints(sidecar: Path | None) -> PhotoHints | None:
    """The hints in a photo's sidecar (None: no path, or no file there); HintsError when it cannot be used."""
    if sidecar is None or not os.path.lexists(sidecar):
        return None
    return read_photo_hints(sidecar)


def prepare_photo(image: DecodedImage, settings: ImageSettings, render_size: int, size_multiple: int,
                  hints: PhotoHints | None = None) -> tuple[Prepared, LumaPicture | None]:
    """The photo made ready for the model, and its luma picture when its output keeps it: an 8-bit
    gray photo (one channel, or three equal ones) written as JPEG, unless ``settings.luma_passthrough``
    is off. Then the luma goes to the writer as it is and L is kept at the chroma resolution only.
    ``hints`` (in the upright photo's pixels) are placed on the render grid (HintsError: a point outside)."""
    fmt = output_format(settings, image.format)
    full_hw = (image.height, image.width)
    if settings.luma_passthrough and fmt == "JPEG" and image.pixels.dtype == np.uint8:
        gray = image.pixels if image.pixels.ndim == 2 else gray_plane(image.pixels)
        if gray is not None:
            luma = LumaPicture.jfif(np.ascontiguousarray(gray))
            return _JPEG_LUMA.prepare(luma, render_size, size_multiple).with_hints(hints, full_hw), luma
    return prepare(image.pixels, render_size, size_multiple).with_hints(hints, full_hw), None


def hints_report(prepared: Prepared | None) -> dict | None:
    """What the report says of the hints a photo was colorized with (None: none)."""
    placed = prepared.hints if prepared is not None else None
    if placed is None:
        return None
    return {"sidecar": placed.hints.source, "count": len(placed), "digest": placed.digest,
            "points": [p.to_dict() for p in placed.hints.points]}


def merge_photo_color(prepared: Prepared, ab: np.ndarray, luma: LumaPicture | None, settings: ImageSettings,
                      bit_depth: int) -> np.ndarray | JpegPlanes:
    """The predicted color merged with the photo's L, as its encoder takes it: JPEG planes on the luma
    route, else RGB of ``bit_depth`` (8: uint8, 16: uint16)."""
    if luma is not None:
        return _JPEG_LUMA.finish(luma, prepared, ab, settings.saturation, settings.upsampling)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return merge_color(prepared, ab, settings.saturation, settings.upsampling, dtype)


@dataclass
class Chunk:
    """One inference call: the indices it covered and what came of it."""

    indices: list[int]
    ab: np.ndarray | None = None  # (len(indices), 2, h, w) when it ran
    seconds_each: float = 0.0
    error: str | None = None  # why the call failed
    cancelled: bool = False


def predict_chunks(backend, model_inputs: Sequence[np.ndarray | None], batch_size: int,
                   cancel: CancelToken | None = None, prepared: Sequence[Prepared | None] | None = None
                   ) -> Iterator[Chunk]:
    """Predict ``model_inputs`` (None: left out) in calls of at most ``batch_size`` images of one render shape.
    With ``prepared`` (the photos the inputs are of), a model with hint inputs also gets their hints
    (:func:`colorizer.colorize.predict_prepared`)."""
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
                if prepared is not None:
                    chunk.ab = predict_prepared(backend, [prepared[i] for i in chunk.indices])
                else:
                    chunk.ab = backend.predict(np.stack([model_inputs[i] for i in chunk.indices]))
                chunk.seconds_each = (time.perf_counter() - t) / len(chunk.indices)
            except Exception as exc:
                log.info("inference failed", exc_info=True)
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
    luma: LumaPicture | None = None  # the route that keeps the photo's luma (see prepare_photo)


def output_bit_depth(fmt: str, source_bits: int) -> int:
    """16 for a 16-bit source written as PNG or TIFF, else 8."""
    return 16 if source_bits == 16 and canonical_format(fmt) in SIXTEEN_BIT_FORMATS else 8


def finish_and_write(item: Finished, settings: ImageSettings, backend_name: str,
                     journal: RunJournal | None = None) -> FileResult:
    """ab to full resolution, merged with the photo's L, written atomically (and listed in the
    ``journal``); the photo's result. The photo's L is dropped before it is encoded."""
    task = item.task
    try:
        t = time.time()
        fmt = output_format(settings, item.info.format)
        hints = hints_report(item.prepared)
        rgb = merge_photo_color(item.prepared, item.ab, item.luma, settings,
                                output_bit_depth(fmt, item.info.bit_depth))
        item.prepared = item.ab = item.luma = None  # type: ignore[assignment]
        write_image(task.output, rgb, alpha=item.info.alpha, format=fmt, quality=settings.quality,
                    metadata=item.info.metadata, bit_depth=item.info.bit_depth, source=task.source)
        if journal is not None:
            journal.record(task.output, hints["digest"] if hints else None)
        timings = item.timings | {"encode_s": time.time() - t}
        return FileResult.ok(task, backend_name, time.time() - item.started, timings, hints)
    except Exception as exc:
        return FileResult.of_error(task, exc, backend_name, subject=task.output, writing=task.output)
