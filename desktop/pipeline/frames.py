"""Folders of numbered frames (``frame_0001.png``, ``frame_0002.png``, ...) colorized as one video.

A *frame sequence* is a set of at least two image files in one folder with the same prefix, the
same extension and a number, the numbers forming an unbroken run (``scan_0098.tif`` ...
``scan_0130.tif``); unpadded numbers (``f1.png`` ... ``f10.png``) are ordered numerically. Camera
photos with gaps in their numbering are therefore not taken for frames, but a folder of
consecutively numbered photos is: callers should treat a folder as frames only when the user
asks for it.

The frames go through the same pipeline as a video (batched inference, temporal smoothing reset
at scene cuts, full-resolution merge) and each output keeps its name, format, bit depth, alpha
and metadata, written atomically by ``media.image_write.write_image``. Optionally the colorized
frames are also encoded to a video (H.264, or FFV1 when lossless) at ``settings.frame_rate``.

A sequence is all or nothing: if it fails or is cancelled, the frames this run wrote are removed
again (and the video's temporary file), so a half-colorized sequence never looks finished.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from colorizer.desktop.backends import Backend
from colorizer.desktop.core import CancelToken, TaskKind
from colorizer.desktop.media.errors import ImageReadError, MediaFileError
from colorizer.desktop.media.image_metadata import ImageMetadata
from colorizer.desktop.media.image_read import read_image
from colorizer.desktop.media.image_write import write_image
from colorizer.desktop.media.video_writer import OutputGeometry, VideoWriter, muxer_for
from colorizer.desktop.pipeline.frame_formats import picture_l
from colorizer.desktop.pipeline.hint_tracking import HintPlan, plan_film_hints, read_film_hints
from colorizer.desktop.pipeline.journal import RunJournal, output_done
from colorizer.desktop.pipeline.report import FileResult
from colorizer.desktop.pipeline.settings import VideoSettings
from colorizer.desktop.pipeline.tasks import Task
from colorizer.desktop.pipeline.video import (
    FrameProgressCallback,
    ProgressTracker,
    StreamStats,
    check_written_video,
    colorize_frames,
)
from colorizer.fileio import IMAGE_SUFFIXES, atomic_path, is_partial_file, remove_quietly
from colorizer.hints import FilmHints, hints_digest

log = logging.getLogger(__name__)

_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)(?P<suffix>\.[A-Za-z0-9]+)$")
_NTSC_RATES = (24, 30, 48, 60, 120)
# BT.709 matrix, sRGB transfer and primaries, limited range: how sRGB frames are tagged in H.264
_SRGB_TAGS = {"colorspace": 1, "color_primaries": 1, "color_trc": 13, "color_range": 1}


@dataclass(frozen=True)
class FrameSequence:
    """Numbered frames of one folder, in order."""

    folder: Path
    prefix: str
    suffix: str  # as spelled by the first frame, e.g. ".png"
    frames: tuple[Path, ...]
    numbers: tuple[int, ...]

    @property
    def pattern(self) -> str:
        """A readable name such as ``frame_####.png`` (``#`` per digit of the first frame)."""
        digits = len(_NUMBERED.match(self.frames[0].name)["number"])
        return f"{self.prefix}{'#' * digits}{self.suffix}"

    def __len__(self) -> int:
        return len(self.frames)


def _numbered_frames(folder: Path) -> dict[tuple[str, str], list[tuple[int, Path]]]:
    """The numbered image files directly in ``folder``, (number, path) by (prefix, lower-case suffix)."""
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for path in folder.iterdir():
        if not path.is_file() or path.name.startswith(".") or is_partial_file(path):
            continue
        match = _NUMBERED.match(path.name)
        if match is None or match["suffix"].lower() not in IMAGE_SUFFIXES:
            continue
        groups.setdefault((match["prefix"], match["suffix"].lower()), []).append((int(match["number"]), path))
    return groups


def find_frame_sequences(folder: os.PathLike | str, min_frames: int = 2) -> list[FrameSequence]:
    """The frame sequences directly in ``folder`` (see the module docstring), largest first."""
    folder = Path(folder)
    sequences = []
    for (prefix, _), members in _numbered_frames(folder).items():
        members.sort()
        numbers = [n for n, _ in members]
        if len(members) < min_frames or any(b - a != 1 for a, b in zip(numbers, numbers[1:], strict=False)):
            continue
        paths = tuple(p for _, p in members)
        sequences.append(FrameSequence(folder, prefix, paths[0].suffix, paths, tuple(numbers)))
    sequences.sort(key=lambda s: (-len(s), s.prefix))
    return sequences


def no_sequence_reason(folder: Path) -> str:
    """Why ``folder`` holds no frame sequence: no numbered frames, or numbered frames whose run is broken
    (a frame missing, or saved in another format)."""
    groups = {key: dict(members) for key, members in _numbered_frames(folder).items()}
    broken = [(key, members) for key, members in groups.items() if len(members) >= 2]
    if not broken:
        return "no numbered frames (name_0001.png, name_0002.png, ...)"
    (prefix, suffix), members = max(broken, key=lambda item: len(item[1]))
    first, last = members[min(members)], members[max(members)]
    digits = len(_NUMBERED.match(first.name)["number"])
    count = max(members) - min(members) + 1 - len(members)
    missing = first_missing(sorted(members), 5)
    elsewhere = {n: p.name for (pre, suf), group in groups.items() if pre == prefix and suf != suffix
                 for n, p in group.items() if n in missing}
    names = [f"{elsewhere[n]} is in another format" if n in elsewhere else f"{prefix}{n:0{digits}d}{first.suffix}"
             for n in missing]
    more = f" and {count - len(missing)} more" if count > len(missing) else ""
    return (f"the numbered frames {first.name} to {last.name} are not an unbroken sequence: {count} "
            f"missing ({', '.join(names)}{more})")


def first_missing(numbers: list[int], limit: int) -> list[int]:
    """The first ``limit`` numbers missing between the sorted, distinct ``numbers``, found in the gaps
    between them: time and memory grow with the files, never with how far apart their numbers lie
    (date-stamped names such as ``IMG20230101120000.png`` are billions apart; the whole range of them
    as a set exhausted the memory)."""
    missing: list[int] = []
    for a, b in zip(numbers, numbers[1:], strict=False):
        missing.extend(range(a + 1, min(b, a + 1 + limit - len(missing))))
        if len(missing) >= limit:
            break
    return missing


def the_sequence(folder: Path) -> tuple[FrameSequence | None, str]:
    """A frame folder's one frame sequence, or None and why it has not exactly one (for messages)."""
    if not folder.is_dir():
        return None, "not a folder"
    sequences = find_frame_sequences(folder)
    if len(sequences) == 1:
        return sequences[0], ""
    if not sequences:
        return None, no_sequence_reason(folder)
    names = ", ".join(f"{s.pattern} ({len(s)} frames)" for s in sequences)
    return None, f"holds several frame sequences ({names}); colorize them one at a time"


def _frame_rate_fraction(rate: float) -> Fraction:
    """24 -> 24/1, 29.97 -> 30000/1001, 23.976 -> 24000/1001, 12.5 -> 25/2."""
    for nominal in _NTSC_RATES:
        if abs(rate - nominal * 1000 / 1001) < 0.005:
            return Fraction(nominal * 1000, 1001)
    return Fraction(rate).limit_denominator(1000)


@dataclass
class _FrameOut:
    index: int
    source: Path
    output: Path
    format: str
    bit_depth: int
    metadata: ImageMetadata
    alpha: np.ndarray | None


def _read_frames(sequence: FrameSequence, dst_dir: Path) -> Iterator[tuple[_FrameOut, np.ndarray]]:
    for index, path in enumerate(sequence.frames):
        image = read_image(path)  # ImageReadError names the frame
        yield (_FrameOut(index, path, dst_dir / path.name, image.format, image.bit_depth, image.metadata, image.alpha),
               image.pixels)  # a gray frame stays one plane


def colorize_frame_folder(src_dir: os.PathLike | str, dst_dir: os.PathLike | str, backend: Backend,
                          settings: VideoSettings | None = None, progress: FrameProgressCallback | None = None,
                          cancel: CancelToken | None = None, to_video: os.PathLike | str | None = None,
                          journal: RunJournal | None = None, hints: os.PathLike | str | None = None) -> FileResult:
    """Colorize the one frame sequence in ``src_dir`` into ``dst_dir`` (names kept); optionally also
    encode it to the video ``to_video`` (.mp4/.mkv/.mov) at ``settings.frame_rate``; with the key-frame
    hints of the sidecar ``hints`` (``<folder>.hints.json``; frames numbered from 0 in sequence order).
    A folder with no sequence or with several fails with a message saying so."""
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    task = Task(src_dir, dst_dir, TaskKind.FRAMES)
    settings = settings or VideoSettings()
    sequence, why_not = the_sequence(src_dir)
    if sequence is None:
        return FileResult.failed(task, f"{src_dir}: {why_not}", backend.name)
    return colorize_frame_sequence(sequence, dst_dir, backend, settings, progress, cancel, to_video, journal, hints)


def colorize_frame_sequence(sequence: FrameSequence, dst_dir: os.PathLike | str, backend: Backend,
                            settings: VideoSettings | None = None, progress: FrameProgressCallback | None = None,
                            cancel: CancelToken | None = None, to_video: os.PathLike | str | None = None,
                            journal: RunJournal | None = None, hints: os.PathLike | str | None = None
                            ) -> FileResult:
    """Colorize ``sequence`` into ``dst_dir`` (see :func:`colorize_frame_folder`); each output, once
    written, is listed in the ``journal``; a run skips the sequence only when all are finished."""
    dst_dir = Path(dst_dir)
    video_path = Path(to_video) if to_video is not None else None
    task = Task(sequence.folder, dst_dir, TaskKind.FRAMES)
    settings = settings or VideoSettings()
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    if dst_dir.resolve() == sequence.folder.resolve():
        return FileResult.failed(task, f"output folder {dst_dir} is the input folder; the frames would be "
                                 "overwritten", backend.name)
    outputs = [dst_dir / p.name for p in sequence.frames]
    finished = [(p, TaskKind.IMAGE) for p in outputs] + ([(video_path, TaskKind.VIDEO)] if video_path else [])
    digest = hints_digest(hints)
    if not settings.overwrite and outputs_finished(finished, journal, digest):
        return FileResult.skipped(task, "outputs exist")
    written: list[Path] = []
    plan = None
    try:
        film_hints = read_film_hints(hints)
        if film_hints is not None:
            plan = _sequence_hint_plan(sequence, film_hints, backend, settings, cancel)
        with contextlib.ExitStack() as stack:
            writer = None
            if video_path is not None:
                muxer = muxer_for(video_path)
                partial = stack.enter_context(atomic_path(video_path))
                writer = VideoWriter(partial, muxer, settings.encoding, None, name=video_path)
                stack.callback(_close_quietly, writer)  # before the temporary file is committed or removed
            stats, tracker = _colorize(sequence, dst_dir, writer, backend, settings, progress, cancel, written, plan)
            if writer is not None:
                check_written_video(partial, video_path)
        if journal is not None:
            journal.record_all([*written, *([video_path] if video_path else [])], plan.digest if plan else None)
        written = []  # complete: keep them
        return FileResult.ok(task, backend.name, time.perf_counter() - started, stats.timings(tracker.fps),
                             plan.report() if plan else None)
    except Exception as exc:  # one mapping for every stage (FileResult.of_error): Cancelled too
        context = f"frame sequence {sequence.folder / sequence.pattern}: " if isinstance(exc, MediaFileError) else ""
        return FileResult.of_error(task, exc, backend.name, subject=sequence.folder, writing=dst_dir,
                                   context=context)
    finally:
        for path in written:  # all or nothing
            remove_quietly(path)


def outputs_finished(outputs: list[tuple[Path, TaskKind]], journal: RunJournal | None, hints: str | None) -> bool:
    """Whether every one of a sequence's ``outputs`` (path, kind) counts as finished (:func:`output_done`,
    made with the hints of digest ``hints``). None is checked unless all are there: a sequence that a
    killed run left half written is redone at once, not decoded (and journaled) frame by frame first
    only to be redone (30,000 frames left by a kill took 25 s of it, frames of 16x12 pixels)."""
    return all(path.exists() for path, _ in outputs) and all(output_done(path, kind, journal, hints)
                                                             for path, kind in outputs)


def _sequence_hint_plan(sequence: FrameSequence, hints: FilmHints, backend: Backend, settings: VideoSettings,
                        cancel: CancelToken) -> HintPlan:
    """The first pass of a frame sequence with hints: its frames read (up to the end of the last hinted
    shot) and the key frames' points tracked through their shots."""
    planes = (picture_l(read_image(path).pixels) for path in sequence.frames)
    return plan_film_hints(planes, hints, settings.render_size or backend.contract.render_size,
                           backend.contract.size_multiple, settings.scene_cut_threshold,
                           check=cancel.raise_if_cancelled)


def _colorize(sequence: FrameSequence, dst_dir: Path, writer: VideoWriter | None, backend: Backend,
              settings: VideoSettings, progress: FrameProgressCallback | None, cancel: CancelToken,
              written: list[Path], hint_plan: HintPlan | None = None) -> tuple[StreamStats, ProgressTracker]:
    """Colorize every frame into ``dst_dir`` (appending each output to ``written``) and to ``writer``."""
    stats = StreamStats()
    tracker = ProgressTracker(sequence.folder, len(sequence), False, progress)
    colorized = colorize_frames(_read_frames(sequence, dst_dir), backend, settings, cancel, stats,
                                hint_plan=hint_plan)
    try:
        for out, rgb in colorized:
            write_image(out.output, rgb, alpha=out.alpha, format=out.format, bit_depth=out.bit_depth,
                        metadata=out.metadata, source=out.source)
            written.append(out.output)
            if writer is not None:
                if writer.stream is None:  # the first frame gives the video its size
                    rate = _frame_rate_fraction(settings.frame_rate)
                    writer.open(OutputGeometry(rgb.shape[1], rgb.shape[0], rate, 1 / rate, **_SRGB_TAGS))
                elif rgb.shape[:2] != (writer.geometry.height, writer.geometry.width):
                    raise ImageReadError(out.source, f"is {rgb.shape[1]}x{rgb.shape[0]}, the first frame "
                                         f"{writer.geometry.width}x{writer.geometry.height}: the frames of one video "
                                         "must have one size (without --frames-to-video each keeps its own)")
                writer.write(rgb, out.index, 1)
            tracker.frame_written()
        cancel.raise_if_cancelled()
        if writer is not None:
            writer.finish()
    finally:
        colorized.close()  # stops and joins the reading thread
    return stats, tracker


def _close_quietly(writer: VideoWriter) -> None:
    try:
        writer.close()
    except Exception:  # already failing: the temporary file goes anyway
        log.debug("closing %s failed", writer.path, exc_info=True)
