"""The one error shape for media files: names the file and the cause, and says what failed."""

from __future__ import annotations

import os
from pathlib import Path


class MediaFileError(Exception):
    """A file could not be used; ``str()`` reads "cannot <action> <kind> '<path>': <reason>"."""

    kind = "file"
    action = "use"

    def __init__(self, path: os.PathLike | str, reason: str) -> None:
        super().__init__(os.fspath(path), reason)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot {self.action} {self.kind} '{self.path}': {self.reason}"
