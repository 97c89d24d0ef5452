"""What the user dropped or picked, turned into queue items, and queue items into runtime tasks.

Which files are photos or videos, and where each output goes, is decided by the runtime's
:func:`colorizer.desktop.pipeline.tasks.plan` (content sniffing, tree mirroring, never overwriting an
input), exactly as for ``colorize-batch``. A folder of numbered frames is a film only when the
user says so ("Add frame folder", or the question the window asks when a folder added with "Add
folder" holds one, :func:`film_in_folder`): a folder of consecutively numbered photos looks the
same. Each frame folder gets its own subfolder of the output folder.

A folder of an archive (thousands of scans) is listed and planned off the GUI thread
(:mod:`.adding`), one folder of it at a time (:func:`collect_in_chunks`, the same items in the
same order as :func:`collect`), each new row's hints counted there too (:func:`hint_count`); small
drops, up to :data:`SYNC_ADD_LIMIT` files (:func:`count_files`), are planned at once.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from colorizer.desktop.app.queue_model import QueueItem
from colorizer.desktop.app.settings import AppSettings
from colorizer.desktop.core import TaskKind
from colorizer.desktop.media.video_writer import VideoEncoding
from colorizer.desktop.pipeline import stages
from colorizer.desktop.pipeline.frames import FrameSequence, find_frame_sequences, the_sequence
from colorizer.desktop.pipeline.hint_tracking import read_film_hints
from colorizer.desktop.pipeline.run import frames_video_path
from colorizer.desktop.pipeline.tasks import Task, folder_prefixes, plan
from colorizer.hints import HintsError, sidecar_path

log = logging.getLogger(__name__)

# plan() needs an output folder to say where outputs go; while only classifying inputs, any folder
# that is not an input will do (nothing is written).
_PROBE_OUTPUT = Path(tempfile.gettempdir()) / "colorizer-app-plan-probe"
MIN_FILM_FRAMES = 8  # fewer numbered images in a folder are taken for photos without asking
SYNC_ADD_LIMIT = 256  # files: a drop of more is listed and planned off the GUI thread
Refused = list[tuple[Path, str]]


def collect(paths: Iterable[Path]) -> tuple[list[QueueItem], list[tuple[Path, str]]]:
    """Queue items for dropped/picked files and folders (folders are searched with their
    subfolders), and the inputs refused with the reason why."""
    items: list[QueueItem] = []
    refused: list[tuple[Path, str]] = []
    for path in map(Path, paths):
        if path.is_dir():
            tasks, rejected = plan([path], _PROBE_OUTPUT, recursive=True)
            items += [QueueItem(t.source, t.kind, root=path) for t in tasks]
            refused += [(r.source, r.reason) for r in rejected]
            if not tasks and not rejected:
                refused.append((path, "no photos or videos found in this folder"))
        elif path.is_file():
            tasks, rejected = plan([path], _PROBE_OUTPUT)
            items += [QueueItem(t.source, t.kind) for t in tasks]
            refused += [(r.source, r.reason) for r in rejected]
        else:
            refused.append((path, "no such file or folder"))
    return items, refused


def count_files(paths: Iterable[Path], limit: int) -> int:
    """How many files ``paths`` name or hold (subfolders included), counting stops past ``limit``: a
    look at names only (no file is opened), cheap even when the folder is a whole archive."""
    count = 0
    pending = [Path(p) for p in paths]
    while pending and count <= limit:
        path = pending.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if count > limit:  # an archive's folder of 20,000 scans: not all of its names looked at
                        break
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    else:
                        count += 1
        except NotADirectoryError:
            count += 1
        except OSError:
            count += 1  # not there, or not readable: collect() says why
    return count


def _subfolders(folder: Path) -> list[Path]:
    """The subfolders :func:`plan` walks into (as ``os.walk`` does: linked folders are not), by name."""
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir() and not e.is_symlink())
    except OSError:
        return []


def _folder_in_order(folder: Path, root: Path, cancelled: Callable[[], bool]) -> Iterator[tuple[list, Refused]]:
    """The items of ``folder``'s tree in :func:`plan`'s order (paths sorted part by part: a file named
    before a subfolder comes before that subfolder's files), one folder's run of files at a time."""
    tasks, rejected = plan([folder], _PROBE_OUTPUT)  # this folder's own files
    yield [], [(r.source, r.reason) for r in rejected]
    items = [QueueItem(t.source, t.kind, root=root) for t in tasks]  # sorted by name, as the subfolders
    start = 0
    for sub in _subfolders(folder):
        if cancelled():
            return
        end = start
        while end < len(items) and items[end].source.name < sub.name:
            end += 1
        yield items[start:end], []
        start = end
        yield from _folder_in_order(sub, root, cancelled)
    yield items[start:], []


def collect_in_chunks(paths: Iterable[Path], cancelled: Callable[[], bool] = lambda: False,
                      ) -> Iterator[tuple[list[QueueItem], Refused]]:
    """:func:`collect`, piece by piece (a folder's run of files at a time), for a pool thread: the same
    items in the same order, the same reasons; stops early once ``cancelled()``."""
    for path in map(Path, paths):
        if cancelled():
            return
        if path.is_dir():
            found = False
            for items, refused in _folder_in_order(path, path, cancelled):
                found = found or bool(items or refused)
                if items or refused:
                    yield items, refused
            if not found and not cancelled():
                yield [], [(path, "no photos or videos found in this folder")]
        else:
            yield collect([path])


def with_hint_counts(items: list[QueueItem]) -> list[QueueItem]:
    """``items`` (not queued yet) with what their sidecars hold (:func:`hint_count`): a large drop's are
    read where they are found, off the GUI thread."""
    for item in items:
        item.hints, item.hints_note = hint_count(item)
    return items


def hint_count(item: QueueItem) -> tuple[int, str]:
    """What the row of a new item says of its sidecar: (points of a photo, or key frames of a film; a note:
    "unreadable" when the sidecar cannot be used)."""
    try:
        if item.kind == TaskKind.IMAGE:
            hints = stages.photo_hints(sidecar_path(item.source))
            return (len(hints) if hints is not None else 0), ""
        film = read_film_hints(sidecar_path(item.source))
        return (sum(1 for f in film.frames if f.points) if film is not None else 0), ""
    except HintsError:
        return 0, "unreadable"


def film_in_folder(folder: Path, min_frames: int = MIN_FILM_FRAMES) -> FrameSequence | None:
    """The one sequence of at least ``min_frames`` numbered frames directly in ``folder``, if it holds one."""
    try:
        sequences = find_frame_sequences(folder, min_frames) if Path(folder).is_dir() else []
    except OSError:
        return None
    return sequences[0] if len(sequences) == 1 else None


def collect_frames(folder: Path) -> tuple[list[QueueItem], list[tuple[Path, str]]]:
    """One "frames" item for a folder of numbered frames, or the reason it is not one."""
    folder = Path(folder)
    sequence, why_not = the_sequence(folder)
    if sequence is None:
        return [], [(folder, f"{folder}: {why_not}")]
    return [QueueItem(folder, TaskKind.FRAMES)], []


def plan_run(items: Sequence[QueueItem], output_dir: Path, output_format: str | None,
             video: VideoEncoding | None = None) -> tuple[dict[int, Task], dict[int, str]]:
    """Tasks for queue items (by item id) and the reasons items cannot run.

    The items' original inputs (the dropped folders, the single files) are planned together, so the
    output tree is the one ``colorize-batch`` would make for the same inputs.
    """
    inputs: list[Path] = []
    for item in items:
        top = item.root or item.source
        if item.kind != TaskKind.FRAMES and top not in inputs:
            inputs.append(top)
    tasks, rejected = plan(inputs, output_dir, recursive=True, output_format=output_format, video=video)
    by_source = {t.source.resolve(): t for t in tasks}
    reasons = {r.source.resolve(): r.reason for r in rejected}
    planned: dict[int, Task] = {}
    refused: dict[int, str] = {}
    frame_outputs: dict[Path, Path] = {}
    # each frame folder in a subfolder of its name (two of one name: as many parent names as tell them apart)
    prefixes = folder_prefixes([i.source for i in items if i.kind == TaskKind.FRAMES and i.source.is_dir()])
    for item in items:
        task = by_source.get(item.key)
        if item.kind == TaskKind.FRAMES and item.source.is_dir():
            task = Task(item.source, output_dir / prefixes[item.source], TaskKind.FRAMES,
                        sidecar_path(item.source))  # its hints: <folder>.hints.json beside it, as plan() says
            out = task.output.resolve()
            if out == item.key:
                reasons[item.key] = f"output {task.output} would overwrite the frames; choose another output folder"
                task = None
            elif out in frame_outputs:
                reasons[item.key] = f"output {task.output} is already the output of {frame_outputs[out]}"
                task = None
            else:
                frame_outputs[out] = item.source
        if task is not None:
            planned[item.id] = task
        else:
            refused[item.id] = reasons.get(item.key) or f"{item.source}: no longer found"
    return planned, refused


def film_outputs(items: Sequence[QueueItem], settings: AppSettings) -> dict[int, Path]:
    """What the rows of the films among ``items`` name as their outputs (item id -> :func:`film_output`),
    planned as a run with ``settings`` plans them; photos get theirs at the start. Planning walks the
    trees the films were found in (every file sniffed): seconds for an archive's."""
    films = [i for i in items if i.kind != TaskKind.IMAGE]
    if not films:
        return {}
    try:
        planned, _ = plan_run(films, settings.output_folder, None, settings.video_settings().encoding)
    except OSError:
        return {}
    return {item_id: film_output(task, settings) for item_id, task in planned.items()}


def film_output(task: Task, settings: AppSettings) -> Path:
    """What a row names as its output: a frame folder's video (or its folder of frames), else the task's output."""
    if task.kind == TaskKind.FRAMES and settings.frames_output == "video":
        return frames_video_path(task, settings.video_settings())
    return task.output
