"""From the user's inputs (files and folders) to a list of tasks: which file goes where.

The input tree is mirrored under the output folder. With one input folder its contents land
directly in the output folder; with several, each gets a subfolder named after it. An output
never replaces an input, and two inputs never share one output. Images are recognized by content;
videos by what FFmpeg can open; with ``frames=True`` each input folder is one sequence of
numbered frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from colorizer.desktop.imagefile import ImageReadError, detect_format, is_partial_file, suffix_for_format

if TYPE_CHECKING:
    from colorizer.desktop.video import VideoSettings


@dataclass(frozen=True)
class Task:
    source: Path
    output: Path  # final path (for images: suffix of the chosen output format)
    kind: str  # "image", "video" or "frames" (a folder of numbered frames)

    @property
    def name(self) -> str:
        return self.source.name


@dataclass(frozen=True)
class Rejected:
    """An input that cannot become a task (reported as failed)."""

    source: Path
    reason: str


def _walk(folder: Path, recursive: bool) -> Iterable[Path]:
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in entries if p.is_file() and not p.name.startswith(".") and not is_partial_file(p))


def plan(inputs: Sequence[Path], output_dir: Path, *, recursive: bool = False, output_format: str | None = None,
         frames: bool = False, video_settings: VideoSettings | None = None) -> tuple[list[Task], list[Rejected]]:
    """Tasks for every image and video under ``inputs`` (``output_format`` None keeps each image's
    format); with ``frames``, input folders are frame sequences instead."""
    from colorizer.desktop.video import VideoSettings, is_video, output_suffix  # video.py imports Task from here

    video_settings = video_settings or VideoSettings()
    output_dir = Path(output_dir)
    folders = [Path(p) for p in inputs if Path(p).is_dir()]
    tasks: list[Task] = []
    rejected: list[Rejected] = []
    claimed: dict[Path, Path] = {}

    def add(source: Path, rel: Path, named: bool) -> None:
        try:
            fmt = detect_format(source)
        except ImageReadError as exc:
            rejected.append(Rejected(source, str(exc)))
            return
        kind = "image"
        if fmt is None:
            if is_video(source):
                kind = "video"
            else:
                if named or _looks_like_media(source):  # other files found in folders are not ours: ignored
                    reason = "not an image or video this program can read (unknown or damaged file)"
                    rejected.append(Rejected(source, reason))
                return
        if kind == "video":
            out = (output_dir / rel).with_suffix(output_suffix(source, video_settings))
        else:
            out = (output_dir / rel).with_suffix(suffix_for_format(output_format or fmt, source=source))
        if out.resolve() == source.resolve():
            rejected.append(Rejected(source, f"output {out} would overwrite the input; choose another -o folder"))
            return
        if out.resolve() in claimed:
            rejected.append(Rejected(source, f"output {out} is already the output of {claimed[out.resolve()]}"))
            return
        claimed[out.resolve()] = source
        tasks.append(Task(source, out, kind))

    for item in inputs:
        item = Path(item)
        if item.is_dir() and frames:
            out = output_dir / item.resolve().name if len(folders) > 1 else output_dir
            if out.resolve() == item.resolve():
                rejected.append(Rejected(item, f"output {out} would overwrite the frames; choose another -o folder"))
            else:
                tasks.append(Task(item, out, "frames"))
        elif item.is_dir():
            prefix = Path(item.resolve().name) if len(folders) > 1 else Path()
            for path in _walk(item, recursive):
                add(path, prefix / path.relative_to(item), named=False)
        elif item.is_file():
            add(item, Path(item.name), named=True)
        else:
            rejected.append(Rejected(item, "no such file or folder"))
    return tasks, rejected


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}


def _looks_like_media(path: Path) -> bool:
    from colorizer.desktop.video import VIDEO_SUFFIXES

    return path.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
