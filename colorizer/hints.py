"""Color hints: the sidecar file in which a user says "this point is this color" (one format, every part).

A photo ``scan_001.jpg`` has its hints in ``scan_001.jpg.hints.json`` beside it (a frame folder's in
``<folder>.hints.json`` beside the folder), or in a mirrored tree elsewhere (``--hints-dir``)::

    {"format": "colorizer-hints", "version": 1,
     "points": [{"x": 812, "y": 440, "color": "#b03a2e"}, {"x": 90, "y": 61, "color": "#3a6ea5", "size": 9}]}

* ``x``, ``y``: pixels of the upright photo (after its EXIF orientation), origin top left; numbers
  (fractions allowed) with 0 <= x < width and 0 <= y < height.
* ``color``: sRGB hex (``#rrggbb`` or ``#rgb``). Only its chroma is used: the ab of its CIE Lab
  (:func:`colorizer.contract.rgb_to_lab`); the photo keeps its own lightness.
* ``size``: optional side of the square the hint covers, in pixels of the photo (default
  :data:`DEFAULT_SIZE`).

A film (or frame folder) holds key frames instead of points::

    {"format": "colorizer-hints", "version": 1, "frames": [{"frame": 120, "points": [...]}]}

Reading a malformed sidecar raises :class:`HintsError` with one line naming the file and the cause.
Points outside the photo are found once its size is known (:meth:`PhotoHints.check_inside`). No Qt,
no torch: the trainer, the runtime and the app all read and write hints through this module.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from colorizer.contract import lab_to_rgb, rgb_to_lab
from colorizer.errors import ColorizerError
from colorizer.fileio import atomic_write

FORMAT = "colorizer-hints"
VERSION = 1
SUFFIX = ".hints.json"
DEFAULT_SIZE = 3
"""Side (pixels of the photo) of the square a point covers when its sidecar gives no ``size``."""
MAX_BYTES = 16 << 20
"""A sidecar larger than this is refused (a hint file is a few kilobytes)."""
MAX_POINTS = 500
"""The most points a photo or a film's key frame may hold (and a frame of a film, its key frames'
points together): the spread's memory and time grow with the number of points (at 5,000 points one
photo took 3 GB and 27 s), and a user clicks tens."""
MAX_FILM_POINTS = 20_000
"""The most points a film's key frames may hold together: each is tracked through its shot (15,000
points on a 300-frame shot took 85 s and 0.7 GB); a key frame's points carry through its shot, so a
film needs hints on a few frames, not on every one."""

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


class HintsError(ColorizerError, ValueError):
    """A hints sidecar that cannot be used; the message names the file and the cause (one line)."""


@dataclass(frozen=True)
class HintPoint:
    """One hint: the photo at (x, y) has this color's chroma, over a ``size`` x ``size`` square."""

    x: float
    y: float
    color: str  # "#rrggbb", lower case
    size: float | None = None  # pixels of the photo; None: DEFAULT_SIZE

    @property
    def rgb(self) -> tuple[int, int, int]:
        return int(self.color[1:3], 16), int(self.color[3:5], 16), int(self.color[5:7], 16)

    @property
    def side(self) -> float:
        return float(self.size) if self.size is not None else float(DEFAULT_SIZE)

    def ab(self) -> tuple[float, float]:
        """The color's chroma: a and b of its Lab, as the contract converts colors."""
        lab = rgb_to_lab(np.array([[self.rgb]], np.uint8))[0, 0]
        return float(lab[1]), float(lab[2])

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"x": _number(self.x), "y": _number(self.y), "color": self.color}
        if self.size is not None:
            d["size"] = _number(self.size)
        return d


@dataclass(frozen=True)
class PhotoHints:
    """The hints of one photo."""

    points: tuple[HintPoint, ...] = ()
    source: str = ""  # where they were read from (for messages); not part of the hints

    def __len__(self) -> int:
        return len(self.points)

    def check_inside(self, width: int, height: int, what: str = "photo") -> PhotoHints:
        """Raise :class:`HintsError` if a point lies outside a ``width`` x ``height`` photo (or ``what``:
        a film's "frame"); returns self."""
        for i, p in enumerate(self.points):
            if not (0 <= p.x < width and 0 <= p.y < height):
                raise HintsError(f"{self.source or 'hints'}: point {i + 1} ({_number(p.x)}, {_number(p.y)}) lies "
                                 f"outside the {width}x{height} {what} (x must be in 0..{width - 1}, "
                                 f"y in 0..{height - 1}, upright)")
        return self

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "points": [p.to_dict() for p in self.points]}

    def digest(self) -> str:
        """A short hash of the points (not of the file's spelling): what makes an output stale."""
        return _digest(self.to_dict())


@dataclass(frozen=True)
class FrameHints:
    """The hints of one key frame of a film (frame numbers count from 0)."""

    frame: int
    points: tuple[HintPoint, ...] = ()

    def to_dict(self) -> dict:
        return {"frame": self.frame, "points": [p.to_dict() for p in self.points]}


@dataclass(frozen=True)
class FilmHints:
    """The hints of a film or frame folder: key frames in frame order."""

    frames: tuple[FrameHints, ...] = ()
    source: str = ""

    def __len__(self) -> int:
        return sum(len(f.points) for f in self.frames)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "frames": [f.to_dict() for f in self.frames]}

    def digest(self) -> str:
        return _digest(self.to_dict())


Hints = Union[PhotoHints, FilmHints]  # noqa: UP007 - a runtime alias on Python 3.10


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


# ---------------------------------------------------------------------------- parsing
def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_color(value: object, where: str) -> str:
    """``#rrggbb`` (lower case) of a hex color string; HintsError otherwise."""
    if not isinstance(value, str) or not _HEX.fullmatch(value.strip()):
        raise HintsError(f"{where}: color {value!r} is not an sRGB hex color like \"#b03a2e\"")
    digits = value.strip()[1:].lower()
    return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits)


def _parse_points(items: object, where: str) -> tuple[HintPoint, ...]:
    if not isinstance(items, list):
        raise HintsError(f"{where}: \"points\" must be a list of {{\"x\", \"y\", \"color\"}} objects")
    if len(items) > MAX_POINTS:
        raise HintsError(f"{where}: {len(items)} points; at most {MAX_POINTS} are read (a photo or a key frame)")
    points = []
    for i, item in enumerate(items):
        at = f"{where}: point {i + 1}"
        if not isinstance(item, Mapping):
            raise HintsError(f"{at} is not an object with x, y and color")
        for key in ("x", "y", "color"):
            if key not in item:
                raise HintsError(f"{at} has no {key!r}")
        x, y, size = item["x"], item["y"], item.get("size")
        if not _is_number(x) or not _is_number(y):
            raise HintsError(f"{at}: x and y must be numbers (pixels), got {x!r}, {y!r}")
        if size is not None and (not _is_number(size) or size <= 0 or size > 1e6):
            raise HintsError(f"{at}: size must be a number of pixels above 0 and at most 1,000,000, got {size!r}")
        points.append(HintPoint(float(x), float(y), parse_color(item["color"], at), None if size is None
                                else float(size)))
    return tuple(points)


def _parse_hints(data: object, source: str = "hints") -> Hints:
    """Hints from a decoded sidecar (a dict), JSON text or bytes; ``source`` names it in messages."""
    if isinstance(data, (bytes, bytearray, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HintsError(f"{source}: not valid JSON ({exc})") from None
        except RecursionError:  # arrays or objects nested thousands deep: no hints file looks like that
            raise HintsError(f"{source}: not a hints file (JSON nested too deep)") from None
    if not isinstance(data, Mapping):
        raise HintsError(f"{source}: not a hints file (a JSON object with \"format\": \"{FORMAT}\" expected)")
    if data.get("format") != FORMAT:
        raise HintsError(f"{source}: format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    if not _is_number(version) or version != VERSION:
        raise HintsError(f"{source}: hints version {version!r} is not one this Colorizer reads (version "
                         f"{VERSION}); use the Colorizer release that wrote it")
    if ("points" in data) == ("frames" in data):
        raise HintsError(f"{source}: a hints file holds either \"points\" (a photo) or \"frames\" (a film)")
    if "points" in data:
        return PhotoHints(_parse_points(data["points"], source), source)
    frames = data["frames"]
    if not isinstance(frames, list):
        raise HintsError(f"{source}: \"frames\" must be a list of {{\"frame\", \"points\"}} objects")
    parsed, seen = [], set()
    for i, item in enumerate(frames):
        if not isinstance(item, Mapping) or "frame" not in item:
            raise HintsError(f"{source}: frame entry {i + 1} has no \"frame\" number")
        number = item["frame"]
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise HintsError(f"{source}: frame entry {i + 1}: frame must be a whole number >= 0, got {number!r}")
        if number in seen:
            raise HintsError(f"{source}: frame {number} is listed twice")
        seen.add(number)
        parsed.append(FrameHints(number, _parse_points(item.get("points", []), f"{source}: frame {number}")))
    total = sum(len(f.points) for f in parsed)
    if total > MAX_FILM_POINTS:
        raise HintsError(f"{source}: {total} points on {len(parsed)} key frames; at most {MAX_FILM_POINTS} in all "
                         f"(a key frame's points carry through its shot: hint a few frames of each shot)")
    return FilmHints(tuple(sorted(parsed, key=lambda f: f.frame)), source)


def _sidecar_bytes(path: Path) -> bytes:
    """The bytes of the sidecar at ``path``: OSError when it cannot be read; HintsError when it is not
    a regular file (opened without blocking and checked before a byte is read: a named pipe or a
    device would hang the run) or holds more than :data:`MAX_BYTES`."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a named pipe" if stat.S_ISFIFO(info.st_mode) \
                else "a device or socket"
            raise HintsError(f"{path}: not a hints file ({kind}, not a regular file)")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise HintsError(f"{path}: more than {MAX_BYTES} bytes is too large for a hints file")
    return data


def read_hints(path: Path | str) -> Hints:
    """Read and check a sidecar; HintsError (one line, naming the file) when it cannot be used."""
    path = Path(path)
    try:
        data = _sidecar_bytes(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise HintsError(f"{path}: a link to {os.readlink(path)}, which does not exist") from None
        raise HintsError(f"{path}: cannot read the hints file (no such file)") from None
    except OSError as exc:
        raise HintsError(f"{path}: cannot read the hints file ({exc.strerror or exc})") from None
    return _parse_hints(data, str(path))


def read_photo_hints(path: Path | str) -> PhotoHints:
    """:func:`read_hints` of a photo's sidecar: film hints there are an error."""
    hints = read_hints(path)
    if not isinstance(hints, PhotoHints):
        raise HintsError(f"{path}: holds film hints (\"frames\"); a photo's hints are \"points\"")
    return hints


def write_hints(path: Path | str, hints: Hints) -> Path:
    """Write ``hints`` as a sidecar, atomically."""
    return atomic_write(path, (json.dumps(hints.to_dict(), indent=2) + "\n").encode())


def sidecar_path(source: Path | str, hints_dir: Path | str | None = None, input_root: Path | str | None = None
                 ) -> Path:
    """Where the hints of ``source`` (a photo, a film or a frame folder) are: ``NAME.hints.json``
    beside it, or with ``hints_dir`` at the same place in a mirrored tree: ``source``'s path
    relative to ``input_root`` under ``hints_dir`` (just its name under it when ``input_root`` is None)."""
    source = Path(source)
    if hints_dir is None:
        return source.with_name(source.name + SUFFIX)
    rel = Path(source.name) if input_root is None else source.relative_to(input_root)
    return Path(hints_dir) / rel.parent / (rel.name + SUFFIX)


def is_sidecar(path: Path | str) -> bool:
    return str(path).endswith(SUFFIX)


_NO_FILE_CAN_BE_THERE = frozenset({errno.ENAMETOOLONG, errno.ENOTDIR})
"""Why opening a sidecar's path fails when no file can be there: a photo's name of 245 bytes or more
(``.hints.json`` makes it longer than a name may be), a path longer than PATH_MAX, a file where a
folder of the path would be. Such a photo has no sidecar."""


def hints_digest(path: Path | str | None) -> str | None:
    """The digest of the hints in the sidecar at ``path``; None when there are none (no path, no file,
    no points); a digest of the raw bytes for a sidecar that cannot be parsed (it never matches a
    recorded one, so its photo is redone and fails with the reason)."""
    if path is None:
        return None
    try:
        data = _sidecar_bytes(Path(path))
    except FileNotFoundError:  # no sidecar; but a link to one that is not there is one that cannot be used
        return "invalid-dangling-link" if os.path.islink(path) else None
    except OSError as exc:
        if exc.errno in _NO_FILE_CAN_BE_THERE:  # as os.path.lexists, which says whether a run reads one
            return None
        return "unreadable"
    except HintsError as exc:  # not a regular file, too large
        return "invalid-" + hashlib.sha256(str(exc).encode()).hexdigest()[:16]
    try:
        hints = _parse_hints(data, str(path))
        return hints.digest() if len(hints) else None  # no points: as if there were no sidecar
    except HintsError:
        return "invalid-" + hashlib.sha256(data).hexdigest()[:16]


# ---------------------------------------------------------------------------- simulated hints (evaluation)
def hex_color(rgb: Sequence[float]) -> str:
    """``#rrggbb`` of an RGB triple in [0, 1]."""
    r, g, b = (int(np.clip(round(float(c) * 255), 0, 255)) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def simulated_hints(rgb: np.ndarray, count: int, rng: np.random.Generator, size: int = 3) -> PhotoHints:
    """``count`` ground-truth hints of a color photo (uint8/uint16/float RGB, upright), as an evaluation
    uses them: ``size`` x ``size`` patches at random positions (the first n of the same ``rng`` draws
    are the same, so 1, 3 and 10 hints are nested), each colored with its patch's mean Lab (written as
    the sRGB hex a user would pick; only its chroma is used)."""
    h, w = rgb.shape[:2]
    if count <= 0:
        return PhotoHints(())
    half = size // 2
    lab = rgb_to_lab(rgb)
    points = []
    for _ in range(count):  # one point after the other: the first n are the same whatever the count
        x = int(rng.integers(half, max(half + 1, w - (size - half) + 1)))
        y = int(rng.integers(half, max(half + 1, h - (size - half) + 1)))
        patch = lab[max(0, y - half) : y - half + size, max(0, x - half) : x - half + size].reshape(-1, 3)
        mean = patch.mean(axis=0).astype(np.float32)
        color = hex_color(lab_to_rgb(mean[None, None])[0, 0])
        points.append(HintPoint(float(x), float(y), color, float(size)))
    return PhotoHints(tuple(points))


def patch_pixels(image: np.ndarray, hints: PhotoHints) -> np.ndarray:
    """The pixels of ``image`` (H, W, C) under every hint's square, as one (1, N, C) row (to measure
    how close an output comes to the hints there)."""
    rows = []
    h, w = image.shape[:2]
    for p in hints.points:
        side = max(1, int(round(p.side)))
        x0, y0 = int(np.floor(p.x + 0.5 - side / 2)), int(np.floor(p.y + 0.5 - side / 2))
        patch = image[max(0, y0) : min(h, y0 + side), max(0, x0) : min(w, x0 + side)]
        rows.append(patch.reshape(-1, *image.shape[2:]))
    return np.concatenate(rows)[None] if rows else image[:0, :0]
