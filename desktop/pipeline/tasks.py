"""From the user's inputs (files and folders) to a list of tasks: which file goes where.

The input tree is mirrored under the output folder. With one input folder its contents land
directly in the output folder; with several, each gets a subfolder named after it (two of one name,
``x/photos y/photos``, get ``x/photos`` and ``y/photos``). An input named twice is planned once. An output
never replaces an input, and two inputs never share one output. Images are recognized by content;
videos by what FFmpeg can open; with ``frames=True`` each input folder is one sequence of
numbered frames. Each task also says where its color hints would be (``NAME.hints.json`` beside
the input, or in a mirrored ``hints_dir`` tree; :mod:`colorizer.hints`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from colorizer.desktop.core import TaskKind
from colorizer.desktop.media.errors import ImageReadError
from colorizer.desktop.media.formats import detect_format, suffix_for_format
from colorizer.desktop.media.video_source import is_video, not_a_video_reason
from colorizer.desktop.media.video_writer import VideoEncoding
from colorizer.fileio import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_partial_file, os_error_reason
from colorizer.hints import is_sidecar, sidecar_path


@dataclass(frozen=True)
class Task:
    """One input and where its output goes."""

    source: Path
    output: Path  # final path (for images: suffix of the chosen output format; for frames: a folder)
    kind: TaskKind
    hints: Path | None = None  # where this input's hints sidecar would be (None: hints not used)

    @property
    def name(self) -> str:
        return self.source.name


@dataclass(frozen=True)
class Rejected:
    """An input that cannot become a task (reported as failed)."""

    source: Path
    reason: str


def _walk(folder: Path, recursive: bool, exclude: Path | None = None,
          unlisted: list[Rejected] | None = None) -> list[Path]:
    """The files in ``folder`` (and below, if ``recursive``), never those in ``exclude`` or below it
    (the output folder, when it lies inside an input folder). A folder that cannot be listed and a file
    that cannot be looked at (a path longer than the system takes, no permission) go to ``unlisted``
    with the reason: left out in silence, their photos would be missing from the run and its report."""
    found, unlisted = [], unlisted if unlisted is not None else []

    def cannot_list(exc: OSError) -> None:
        unlisted.append(Rejected(Path(exc.filename or folder), f"cannot list this folder ({_unlisted_reason(exc)}): "
                                 "its photos and videos are not colorized"))

    for top, dirs, files in os.walk(folder, onerror=cannot_list):
        dirs[:] = [] if not recursive else sorted(d for d in dirs if not _same(Path(top) / d, exclude))
        found += [Path(top) / f for f in files if not f.startswith(".")]
    return sorted(p for p in found if _regular_file(p, unlisted) and not is_partial_file(p))


def _regular_file(path: Path, unlisted: list[Rejected]) -> bool:
    """Whether ``path`` is a regular file (following a link); one that cannot be looked at goes to
    ``unlisted`` (a file that went away meanwhile, a link to nowhere or in a loop, is not a file: left
    out, as :meth:`Path.is_file` leaves it; which raised on the others and stopped the run)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            unlisted.append(Rejected(path, f"cannot look at this file ({_unlisted_reason(exc)})"))
        return False


def _unlisted_reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "its path is longer than the system takes (PATH_MAX): shorten the names of the folders above it"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return os_error_reason(exc, reading=True)


def unsearched_subfolders(inputs: Sequence[Path], exclude: Path | None = None, limit: int = 20_000) -> list[Path]:
    """The subfolders of the input folders that a run without --recursive does not look in, and that
    hold a photo or video by its name (any depth; at most ``limit`` entries are looked at in all, so
    a home folder given by mistake costs a moment, not minutes)."""
    media = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    found, seen = [], 0
    for folder in (Path(p) for p in inputs):
        try:
            subfolders = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        except OSError:
            continue
        for sub in subfolders:
            if _same(sub, exclude) or seen > limit:
                continue
            for _top, dirs, files in os.walk(sub):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                seen += len(files) + len(dirs)
                if any(Path(f).suffix.lower() in media and not f.startswith(".") for f in files):
                    found.append(sub)
                    break
                if seen > limit:
                    break
    return found


def _same(path: Path, other: Path | None) -> bool:
    try:
        return other is not None and path.resolve() == other
    except OSError:
        return False


class _Planner:
    """Collects tasks, refusing outputs that would overwrite an input or be claimed twice."""

    def __init__(self, output_dir: Path, output_format: str | None, video: VideoEncoding, hints: bool = True,
                 hints_dir: Path | None = None) -> None:
        self.output_dir, self.output_format, self.video = output_dir, output_format, video
        self.hints, self.hints_dir = hints, hints_dir
        self.tasks: list[Task] = []
        self.rejected: list[Rejected] = []
        self.claimed: dict[Path, Path] = {}
        self.planned: set[Path] = set()  # the inputs planned, each once (see _place)
        self.resolve = PathResolver()

    def sidecar(self, source: Path, input_root: Path | None = None, prefix: Path = Path()) -> Path | None:
        """Where ``source``'s hints would be: beside it, or at its place in the mirrored hints tree."""
        if not self.hints:
            return None
        return sidecar_path(source, None if self.hints_dir is None else self.hints_dir / prefix, input_root)

    def add_file(self, source: Path, rel: Path, named: bool, hints: Path | None = None) -> None:
        if is_sidecar(source):  # a hints file is not an input
            return
        try:
            fmt = detect_format(source)
        except ImageReadError as exc:
            self.rejected.append(Rejected(source, str(exc)))
            return
        if fmt is not None:
            out = (self.output_dir / rel).with_suffix(suffix_for_format(self.output_format or fmt, source=source))
            self.add(Task(source, out, TaskKind.IMAGE, hints))
        elif is_video(source):
            self.add(Task(source, (self.output_dir / rel).with_suffix(self.video.output_suffix(source)),
                          TaskKind.VIDEO, hints))
        elif named or source.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            # other files found in folders are not ours: ignored
            self.rejected.append(Rejected(source, not_a_video_reason(source)))

    def add(self, task: Task) -> None:
        out, source = self.resolve(task.output), task.source
        what = "the frames" if task.kind == TaskKind.FRAMES else "the input"
        key = self.resolve.place(source)
        if key in self.planned:  # named twice (the same input, or a folder and a file in it): done once
            return
        self.planned.add(key)
        if out == self.resolve(source):
            self.rejected.append(Rejected(source, f"output {task.output} would overwrite {what}; choose another "
                                          "-o folder"))
        elif out in self.claimed:
            self.rejected.append(Rejected(source, f"output {task.output} is already the output of "
                                          f"{self.claimed[out]}"))
        else:
            self.claimed[out] = source
            self.tasks.append(task)


def plan(inputs: Sequence[Path], output_dir: Path, *, recursive: bool = False, output_format: str | None = None,
         frames: bool = False, video: VideoEncoding | None = None, hints: bool = True,
         hints_dir: Path | None = None) -> tuple[list[Task], list[Rejected]]:
    """Tasks for every image and video under ``inputs`` (``output_format`` None keeps each image's
    format; ``video`` decides the videos' container); with ``frames``, input folders are frame
    sequences instead. Each task's ``hints`` is its sidecar's path (``hints`` False: None), beside
    the input or, with ``hints_dir``, in a tree there that mirrors the inputs as the output folder does."""
    output_dir = Path(output_dir)
    planner = _Planner(output_dir, output_format, video or VideoEncoding(), hints,
                       None if hints_dir is None else Path(hints_dir))
    inputs = _once(map(Path, inputs))
    folders = [p for p in inputs if p.is_dir()]
    prefixes = folder_prefixes(folders)
    named = _file_places([p for p in inputs if p.is_file()])
    exclude = output_dir.resolve()
    for item in inputs:
        if item.is_dir() and frames:
            own = len(folders) > 1  # its own subfolder, and its sidecar at the same place in a --hints-dir tree
            planner.add(Task(item, output_dir / prefixes[item] if own else output_dir, TaskKind.FRAMES,
                             planner.sidecar(item.resolve(), prefix=prefixes[item].parent if own else Path())))
        elif item.is_dir():
            prefix = prefixes[item] if len(folders) > 1 else Path()
            for path in _walk(item, recursive, exclude, planner.rejected):
                planner.add_file(path, prefix / path.relative_to(item), named=False,
                                 hints=planner.sidecar(path, item, prefix))
        elif item.is_file():
            planner.add_file(item, named[item], named=True, hints=planner.sidecar(item, prefix=named[item].parent))
        elif item.exists():
            planner.rejected.append(Rejected(item, "not a regular file (a pipe, socket or device)"))
        else:
            planner.rejected.append(Rejected(item, "no such file or folder"))
    return planner.tasks, planner.rejected


def output_folder_problem(inputs: Iterable[Path], output_dir: Path) -> str | None:
    """Why the output folder cannot take these inputs' outputs, or None: it is one of the input folders
    (named so, or through a link), where outputs beside their inputs (``--format png``) would be taken
    for inputs, and refused, by the next run (:func:`plan` alone refuses only outputs that would replace
    an input)."""
    exclude = _resolved(output_dir)
    for item in map(Path, inputs):
        if item.is_dir() and _same(item, exclude):
            return (f"the input folder {item} is the output folder {output_dir}: outputs written beside the "
                    "inputs would be taken for inputs by the next run; choose another -o folder")
    return None


class PathResolver:
    """:meth:`Path.resolve` for the many files of a few folders: each folder is resolved once, then the
    file's name joined. Resolved one by one, the 20,000 files of an archive 30 folders deep took 3 s of
    ``lstat`` calls (one a folder level, five times a file) before the first photo was read. A file that
    is itself a link, or a path through ``..``, is resolved in full."""

    def __init__(self) -> None:
        self._folders: dict[Path, Path] = {}

    def __call__(self, path: Path) -> Path:
        """``path`` resolved (as :func:`_resolved`: where it cannot be, made absolute)."""
        if ".." in Path(path).parts or os.path.islink(path):
            return _resolved(path)
        return self.place(path)

    def place(self, path: Path) -> Path:
        """:func:`_place`, the folder resolved once for all its files."""
        path = Path(os.path.abspath(path))
        folder = self._folders.get(path.parent)
        if folder is None:
            folder = self._folders[path.parent] = _resolved(path.parent)
        return folder / path.name


def _place(path: Path) -> Path:
    """Where ``path`` is, whatever way it was named: its folder resolved (``./x``, ``x/``, a link to the
    folder), its own name kept (a link to a photo is an input of its own)."""
    path = Path(os.path.abspath(path))
    try:
        return path.parent.resolve() / path.name
    except (OSError, RuntimeError):
        return path


def _once(inputs: Iterable[Path]) -> list[Path]:
    """The inputs, each once (the first time it is named): ``x x/`` is one folder, not two."""
    seen, kept = set(), []
    for item in inputs:
        key = _resolved(item) if item.is_dir() else _place(item)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def _resolved(path: Path) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def _file_places(files: Sequence[Path]) -> dict[Path, Path]:
    """Where each file named as an input goes in the output folder: its name, or where two have the same
    name (``a/film.mp4 b/film.mp4``) under as many of its folders' names as tell them apart
    (``a/film.mp4``, ``b/film.mp4``), as two folders of one name are (:func:`folder_prefixes`)."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(f.name, []).append(f)
    places = {}
    for name, group in groups.items():
        parents = folder_prefixes([f.parent for f in group]) if len(group) > 1 else {}
        places |= {f: parents[f.parent] / name if parents else Path(name) for f in group}
    return places


def folder_prefixes(folders: Sequence[Path]) -> dict[Path, Path]:
    """The subfolder of the output folder each input folder gets when there are several: its name, or
    where two have the same name (``x/photos y/photos``), as many of its parent folders' names as tell
    them apart (``x/photos``, ``y/photos``), so that neither one's outputs are refused as the other's."""
    parts = {f: _resolved(f).parts[1:] or (str(f),) for f in folders}
    depth = dict.fromkeys(folders, 1)
    while True:
        names: dict[tuple, list[Path]] = {}
        for f in folders:
            names.setdefault(parts[f][-depth[f]:], []).append(f)
        clashes = [group for group in names.values() if len(group) > 1]
        grown = False
        for group in clashes:
            for f in group:
                if depth[f] < len(parts[f]):
                    depth[f] += 1
                    grown = True
        if not grown:
            return {f: Path(*parts[f][-depth[f]:]) for f in folders}
