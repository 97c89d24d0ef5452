"""Training data: any folder tree of color photos, turned into (L, ab) pairs by the color contract.

Files are found by extension and listed; none is opened before training starts (an archive of
100,000 photos took its whole decode time, on every run and resume, before the first step).
Unreadable and grayscale images (their ab is ~0 and would teach the model to output gray) are
found as training meets them: each is replaced by the next usable photo, marked so that it is
never decoded again, and counted in the log. A photo is decoded only as large as its crop needs
(JPEG's reduced decoding: a 70 MP photo is not decoded whole for a 128 px crop). Each sample's
random augmentation draws from a generator seeded by (seed, epoch, index), so a resumed run sees
exactly the data the interrupted run would have seen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from colorizer.contract import lab_to_rgb, normalize_ab, normalize_l, rgb_to_lab
from colorizer.hint_guidance import guidance_map
from colorizer.hint_spread import place_hints
from colorizer.hints import HintPoint, PhotoHints, hex_color
from colorizer.trainer.degrade import OldPhotoFilter

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}
GRAY_CHROMA_THRESHOLD = 2.0  # mean |ab| (Lab units) below which a photo counts as grayscale (~3% of Imagenette)


@dataclass(frozen=True)
class ScanResult:
    files: list[Path]
    unreadable: list[Path]
    grayscale: list[Path]


def jpeg_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None when ``data`` is no JPEG (or none found)."""
    raw = data[:1 << 20].tobytes()  # the frame header comes before the image data; EXIF is at most 64 KB
    if raw[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(raw):
        if raw[i] != 0xFF:
            return None
        marker = raw[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = int.from_bytes(raw[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn: P, height, width
            height, width = int.from_bytes(raw[i + 5 : i + 7], "big"), int.from_bytes(raw[i + 7 : i + 9], "big")
            return (width, height) if width and height else None
        if marker == 0xDA or length < 2:  # scan data before any frame header: not a JPEG we can size
            return None
        i += 2 + length
    return None


REDUCED_FLAGS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def decode_flag(data: np.ndarray, min_side: int | None) -> int:
    """OpenCV's flag to decode ``data`` with: a JPEG whose short side stays at least ``min_side`` at
    1/2, 1/4 or 1/8 of its size is decoded at that scale by libjpeg itself (the DCT scaled, the full
    image never made); anything else whole."""
    if min_side:
        size = jpeg_size(data)
        if size is not None:
            for factor, flag in REDUCED_FLAGS:
                if min(size) // factor >= min_side:
                    return flag
    return cv2.IMREAD_COLOR


def read_rgb(path: Path, min_side: int | None = None) -> np.ndarray | None:
    """Decode an image file to uint8 RGB (H, W, 3), or None when it cannot be read: missing (a stale
    line of a file list), a folder, no permission, not an image, damaged, or declaring more pixels
    than OpenCV decodes (its ``CV_IO_MAX_IMAGE_PIXELS``: a corrupt or hostile header). With
    ``min_side``, a large JPEG may come back reduced (1/2, 1/4 or 1/8), its short side still at
    least ``min_side`` px: what a training crop or a gray check needs, at a fraction of the memory
    and time."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    try:
        bgr = cv2.imdecode(data, decode_flag(data, min_side))
    except cv2.error:  # OpenCV refuses the header (too many pixels) with an exception, not None
        return None
    if bgr is None:
        return None
    del data
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)  # in place: no second full-size copy


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean |ab| of a (downscaled) image: ~0 for grayscale and near-gray photos."""
    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA) if max(rgb.shape[:2]) > 64 else rgb
    lab = rgb_to_lab(small)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def read_file_list(path: Path) -> list[Path]:
    """A ``.txt`` list of image paths, one per line (relative to the list's folder; ``#`` comments;
    a byte-order mark, as Windows editors write, and CRLF line ends are fine)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text list of image paths ({exc.reason} at byte {exc.start})") from None
    lines = (line.strip() for line in text.splitlines())
    return [path.parent / line for line in lines if line and not line.startswith("#")]


def list_images(roots: Sequence[Path]) -> list[Path]:
    """Image files under folders (recursively), image files themselves, and ``.txt`` file lists."""
    files: list[Path] = []
    for root in roots:
        root = Path(root)
        if root.is_file() and root.suffix.lower() == ".txt":
            files.extend(read_file_list(root))
        elif root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        else:
            raise FileNotFoundError(f"training data folder not found: {root}")
    return sorted(files)


def spread(files: list[Path], count: int) -> list[Path]:
    """``count`` files evenly spaced through the sorted list, so every subfolder (class) is represented."""
    if len(files) <= count:
        return files
    return [files[int(i * len(files) / count)] for i in range(count)]


GRAY_CHECK_SIDE = 64  # the gray check looks at a 64 px thumbnail (mean_chroma): a reduced decode is enough

UNKNOWN, USABLE, GRAY, UNREADABLE = 0, 1, 2, 3  # what is known of a photo (ColorPhotoDataset.marks)


def check_photo(path: Path) -> int:
    """USABLE, GRAY or UNREADABLE: decoded reduced, as the gray check needs no more."""
    rgb = read_rgb(path, min_side=GRAY_CHECK_SIDE)
    if rgb is None:
        return UNREADABLE
    return GRAY if mean_chroma(rgb) < GRAY_CHROMA_THRESHOLD else USABLE


def scan_images(roots: Sequence[Path], limit: int | None = None, progress: bool = True) -> ScanResult:
    """Find the usable color photos under ``roots``, decoding each one (reduced); skip and count
    unreadable and gray ones. Training does not call this (it checks photos as it meets them)."""
    candidates = list_images(roots)
    if limit:
        candidates = candidates[:limit]
    found: dict[int, list[Path]] = {USABLE: [], GRAY: [], UNREADABLE: []}
    for path in tqdm(candidates, desc="scanning images", disable=not progress, unit="img"):
        found[check_photo(path)].append(path)
    files, gray, unreadable = found[USABLE], found[GRAY], found[UNREADABLE]
    log.info("images: %d usable, %d skipped as grayscale, %d skipped as unreadable",
             len(files), len(gray), len(unreadable))
    for path in unreadable[:10]:
        log.warning("unreadable image skipped: %s", path)
    return ScanResult(files, unreadable, gray)


def usable_spread(files: list[Path], count: int) -> ScanResult:
    """Up to ``count`` usable color photos evenly spaced through ``files`` (as :func:`spread`), each
    gray or unreadable one replaced by the next usable photo after it: only about ``count`` photos
    are opened, however many ``files`` there are."""
    if not files or count <= 0:
        return ScanResult([], [], [])
    chosen: list[Path] = []
    found: dict[int, list[Path]] = {GRAY: [], UNREADABLE: []}
    taken: set[int] = set()
    starts = [int(i * len(files) / count) for i in range(min(count, len(files)))]
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(files)  # each pick stays within its own stretch
        for i in range(start, end):
            if i in taken:
                continue
            taken.add(i)
            state = check_photo(files[i])
            if state == USABLE:
                chosen.append(files[i])
                break
            found[state].append(files[i])
    return ScanResult(chosen, found[UNREADABLE], found[GRAY])


def random_resized_crop(rgb: np.ndarray, size: int, rng: np.random.Generator,
                        scale: tuple[float, float] = (0.4, 1.0)) -> np.ndarray:
    h, w = rgb.shape[:2]
    area = h * w * rng.uniform(*scale)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    ch = int(round(min(h, np.sqrt(area / aspect))))
    cw = int(round(min(w, np.sqrt(area * aspect))))
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return cv2.resize(rgb[y : y + ch, x : x + cw], (size, size), interpolation=cv2.INTER_AREA)


def center_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to ``size`` and take the central square."""
    h, w = rgb.shape[:2]
    s = size / min(h, w)
    resized = cv2.resize(rgb, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_AREA)
    rh, rw = resized.shape[:2]
    y, x = (rh - size) // 2, (rw - size) // 2
    return resized[y : y + size, x : x + size]


def lab_pair(rgb: np.ndarray, old_photo: OldPhotoFilter | None,
             rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGB -> (normalized L (1, H, W), normalized ab (2, H, W)); filters touch L only."""
    lab = rgb_to_lab(rgb)
    l_channel = lab[..., 0]
    if old_photo is not None:
        l_channel = old_photo(l_channel, rng)
    l_t = torch.from_numpy(np.ascontiguousarray(normalize_l(l_channel)))[None]
    ab_t = torch.from_numpy(np.ascontiguousarray(normalize_ab(lab[..., 1:]).transpose(2, 0, 1)))
    return l_t, ab_t


@dataclass(frozen=True)
class HintSampling:
    """Simulated hints drawn from the ground truth (after Zhang et al. 2017): with probability
    ``p_none`` none, else a count geometric with ``p`` (at most ``max_points``), each a square of
    ``min_size``..``max_size`` px at a uniform position, filled with the patch's mean color."""

    p_none: float = 0.1
    p: float = 1 / 8
    max_points: int = 40
    min_size: int = 1
    max_size: int = 9

    def draw(self, lab: np.ndarray, rng: np.random.Generator) -> PhotoHints:
        if rng.random() < self.p_none:
            return PhotoHints(())
        h, w = lab.shape[:2]
        count = min(int(rng.geometric(self.p)), self.max_points)
        points = []
        for _ in range(count):
            side = int(rng.integers(self.min_size, self.max_size + 1))
            x0, y0 = int(rng.integers(0, max(1, w - side + 1))), int(rng.integers(0, max(1, h - side + 1)))
            mean = lab[y0 : y0 + side, x0 : x0 + side].reshape(-1, 3).mean(axis=0).astype(np.float32)
            # the square [x0, x0 + side) is the one place_hints puts around (x0 + (side - 1) / 2)
            points.append(HintPoint(x0 + (side - 1) / 2, y0 + (side - 1) / 2,
                                    hex_color(lab_to_rgb(mean[None, None])[0, 0]), float(side)))
        return PhotoHints(tuple(points))


def guidance_for(l_channel: np.ndarray, hints: PhotoHints) -> torch.Tensor:
    """The runtime's guidance planes (:func:`colorizer.hint_guidance.guidance_map`) for a training crop."""
    placed = place_hints(hints, l_channel.shape, l_channel.shape) if len(hints) else None
    return torch.from_numpy(guidance_map(np.ascontiguousarray(l_channel, np.float32), placed))


class ColorPhotoDataset(Dataset):
    """(L, ab) pairs from color photos: random crops and flips for training, a center crop otherwise."""

    def __init__(self, files: Sequence[Path], size: int, train: bool, seed: int = 0,
                 old_photo: OldPhotoFilter | None = None, hints: HintSampling | None = None) -> None:
        if not files:
            raise ValueError("no usable color photos were found")
        self.files = list(files)
        self.size = size
        self.train = train
        self.seed = seed
        self.old_photo = old_photo
        self.hints = hints  # None: (L, ab) samples; else (L, ab, guidance) with simulated hints
        self.epoch = 0
        # What is known of each photo (UNKNOWN, USABLE, GRAY, UNREADABLE), in shared memory: what one
        # data-loading process learns, the others and later epochs' processes know (a gray photo is
        # decoded once per run, not once per epoch and worker), and the training process counts.
        self.marks = torch.zeros(len(self.files), dtype=torch.uint8).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files)

    def skipped(self) -> tuple[int, int]:
        """(grayscale, unreadable) photos met so far."""
        counts = torch.bincount(self.marks.long(), minlength=4)
        return int(counts[GRAY]), int(counts[UNREADABLE])

    def read(self, index: int) -> np.ndarray:
        """The usable color photo at ``index``, or the next one after it: one met gray or unreadable is
        marked and never decoded again (the same photos follow whether or not it is known yet, so a
        resumed run sees what the interrupted one would have)."""
        min_side = 2 * self.size  # a random crop keeps >= 0.55 of the short side: still >= the crop size
        for tried in range(len(self)):
            i = (index + tried) % len(self)
            mark = int(self.marks[i])
            if mark in (GRAY, UNREADABLE):
                continue
            path = self.files[i]
            rgb = read_rgb(path, min_side=min_side)
            if rgb is None:  # damaged, or vanished since it was listed
                self.marks[i] = UNREADABLE
                log.warning("could not read %s during training; using another image", path)
                continue
            if mark == UNKNOWN:
                if mean_chroma(rgb) < GRAY_CHROMA_THRESHOLD:
                    self.marks[i] = GRAY
                    log.info("grayscale photo skipped: %s", path)
                    continue
                self.marks[i] = USABLE
            return rgb
        # (a recursion through every neighbour ended in RecursionError past ~1000 photos)
        gray, unreadable = self.skipped()
        raise OSError(f"none of the {len(self)} training photos can be read as a color photo ({gray} grayscale, "
                      f"{unreadable} unreadable; the first: {self.files[0]}); were they moved, or their disk "
                      "unmounted?")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch if self.train else 0, index])
        rgb = self.read(index)
        if self.train:
            rgb = random_resized_crop(rgb, self.size, rng)
            if rng.random() < 0.5:
                rgb = rgb[:, ::-1]
        else:
            rgb = center_resize(rgb, self.size)
        l_t, ab_t = lab_pair(rgb, self.old_photo if self.train else None, rng)
        if self.hints is None:
            return l_t, ab_t
        lab = rgb_to_lab(np.ascontiguousarray(rgb))
        # hints from the true colors, spread over the L the model sees (old-photo filters included)
        return l_t, ab_t, guidance_for((l_t[0].numpy() + 1) * 50, self.hints.draw(lab, rng))
