"""The one error shape for media files: names the file and the cause, and says what failed."""

from __future__ import annotations

import os
from pathlib import Path

from colorizer.errors import ColorizerError


class MediaFileError(ColorizerError):
    """A file could not be used; ``str()`` reads "cannot <action> <kind> '<path>': <reason>"."""

    kind = "file"
    action = "use"

    def __init__(self, path: os.PathLike | str, reason: str) -> None:
        super().__init__(os.fspath(path), reason)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot {self.action} {self.kind} '{self.path}': {self.reason}"


class ImageFileError(MediaFileError):
    """An image file could not be read or written; the message names the file and the cause."""

    kind = "image"


class ImageReadError(ImageFileError):
    """An image file could not be read: missing, unreadable, empty, truncated, corrupt, too large or in a
    format this program does not read (GIF, HEIC, PSD...)."""

    action = "read"


class ImageWriteError(ImageFileError):
    """An image file could not be written: the folder is not writable, the disk is full, or the output
    would overwrite the input. No partial file is left behind."""

    action = "write"


class VideoError(MediaFileError):
    """A video could not be read or written; the message names the file and the cause."""

    kind = "video"


class VideoReadError(VideoError):
    """The source is missing, not a video, truncated or damaged."""

    action = "read"


class VideoWriteError(VideoError):
    """The output cannot be written (container cannot hold a stream, disk full, ...)."""

    action = "write"
