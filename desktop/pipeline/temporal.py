"""Temporal consistency for video: scene-cut detection, chroma smoothing across frames, flicker metric.

A still-image model predicts each frame's chroma on its own, so the colors of a static wall
jitter from frame to frame. The pieces here work on the model's ab at render size (small planes,
before upsampling) and need no PyAV:

* :class:`SceneCutDetector` -- a frame starts a new shot when the mean absolute difference of
  64-pixel luminance thumbnails to the previous frame is above ``threshold`` (L units, 0-100) and
  at least ``ratio`` times the recent in-shot average (so sustained fast motion is not a cut).
* :class:`TemporalSmoother` -- a centered window of ``2 * radius + 1`` frames: neighbor ``d``
  frames away weighs ``strength ** d`` times ``exp(-(dL / luma_sigma) ** 2)`` per pixel, where
  ``dL`` is the difference of the (slightly blurred) luminance to the center frame. Static pixels
  are averaged over the window; pixels that move (their luminance changed) keep their own color,
  so moving objects leave no color trails. The window never reaches across a scene cut. It needs
  ``radius`` frames of lookahead: :meth:`TemporalSmoother.push` returns frames as soon as their
  window is complete, and holds at most ``2 * radius + 1`` frames.
* :class:`FlickerMeter` -- mean frame-to-frame change of chroma
  (Euclidean distance in the ab plane, CIELAB units) over *static* pixels, whose luminance
  changed by less than ``static_threshold`` L units; pairs of frames across a cut are left out.
  Lower is steadier; 0 means the color of static content never changes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import cv2
import numpy as np

T = TypeVar("T")

THUMBNAIL_SIZE = 64


def luminance_thumbnail(l_plane: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """L (H, W) in [0, 100] -> a small float32 thumbnail (long side ``size``), area-averaged."""
    h, w = l_plane.shape
    scale = min(1.0, size / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    plane = np.ascontiguousarray(l_plane, dtype=np.float32)
    return plane if (th, tw) == (h, w) else cv2.resize(plane, (tw, th), interpolation=cv2.INTER_AREA)


class SceneCutDetector:
    """Says, frame by frame, whether a frame starts a new shot (hard cut), from luminance only.

    ``score`` = mean |thumbnail_t - thumbnail_t-1| in L units (0-100). A cut needs
    ``score >= threshold`` and ``score >= ratio * mean of the last `history` in-shot scores``.
    A change of frame size is always a cut. The first frame is not a cut.
    """

    def __init__(self, threshold: float = 10.0, ratio: float = 2.0, history: int = 8) -> None:
        if threshold <= 0:
            raise ValueError(f"scene-cut threshold must be > 0, got {threshold}")
        self.threshold = threshold
        self.ratio = ratio
        self._recent: deque[float] = deque(maxlen=history)
        self._previous: np.ndarray | None = None

    def update(self, l_plane: np.ndarray) -> bool:
        thumb = luminance_thumbnail(l_plane)
        previous, self._previous = self._previous, thumb
        if previous is None:
            return False
        if previous.shape != thumb.shape:
            self._recent.clear()
            return True
        score = float(np.mean(np.abs(thumb - previous)))
        typical = (sum(self._recent) / len(self._recent)) if self._recent else 0.0
        if score >= self.threshold and score >= self.ratio * typical:
            self._recent.clear()
            return True
        self._recent.append(score)
        return False


@dataclass
class _Entry(Generic[T]):
    index: int
    shot: int
    item: T
    guide: np.ndarray  # (h, w) blurred L
    ab: np.ndarray  # (2, h, w)


class TemporalSmoother(Generic[T]):
    """Centered, luminance-gated temporal average of ab, reset at scene cuts (see the module doc).

    ``strength`` in [0, 1]: 0 turns smoothing off (frames pass straight through); the weight of a
    neighbor ``d`` frames away is ``strength ** d``. ``radius``: frames each side (= lookahead).
    ``luma_sigma``: luminance difference (L units) at which a neighbor's weight falls to 1/e.

    ``push(item, l, ab, cut)`` takes frames in order -- ``l`` (h, w) in L units and ``ab``
    (2, h, w), both at render size, ``cut`` whether this frame starts a new shot -- and returns
    the ``(item, smoothed ab)`` pairs that are complete, in order; ``flush()`` returns the rest.
    """

    def __init__(self, strength: float, radius: int = 3, luma_sigma: float = 4.0) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"temporal strength must be between 0 and 1, got {strength}")
        if radius < 0:
            raise ValueError(f"temporal radius must be >= 0, got {radius}")
        self.strength = strength
        self.radius = radius if strength > 0 else 0
        self.luma_sigma = luma_sigma
        self._entries: deque[_Entry[T]] = deque()
        self._next_index = 0
        self._next_emit = 0
        self._shot = 0

    def push(self, item: T, l_plane: np.ndarray, ab: np.ndarray, cut: bool = False) -> list[tuple[T, np.ndarray]]:
        if self.radius == 0:
            return [(item, ab)]
        if cut:
            self._shot += 1
        guide = cv2.GaussianBlur(np.ascontiguousarray(l_plane, dtype=np.float32), (0, 0), 1.0)
        self._entries.append(_Entry(self._next_index, self._shot, item, guide, np.asarray(ab, dtype=np.float32)))
        self._next_index += 1
        return self._emit(final=False)

    def flush(self) -> list[tuple[T, np.ndarray]]:
        return self._emit(final=True) if self.radius else []

    def _emit(self, final: bool) -> list[tuple[T, np.ndarray]]:
        out = []
        newest = self._entries[-1] if self._entries else None
        while newest is not None and self._next_emit <= newest.index:
            center = self._entry(self._next_emit)
            ready = final or newest.index - center.index >= self.radius or newest.shot != center.shot
            if not ready:
                break
            out.append((center.item, self._smooth(center)))
            center.item = None  # the caller owns it now
            self._next_emit += 1
            while self._entries and self._entries[0].index < self._next_emit - self.radius:
                self._entries.popleft()
        return out

    def _entry(self, index: int) -> _Entry[T]:
        return self._entries[index - self._entries[0].index]

    def _smooth(self, center: _Entry[T]) -> np.ndarray:
        acc = center.ab.copy()
        total = np.ones(center.guide.shape, np.float32)
        inv_sigma2 = np.float32(1.0 / (self.luma_sigma * self.luma_sigma))
        for other in self._entries:
            distance = abs(other.index - center.index)
            if other is center or other.shot != center.shot or distance > self.radius:
                continue
            if other.ab.shape != center.ab.shape:
                continue
            diff = other.guide - center.guide
            weight = np.exp(-(diff * diff) * inv_sigma2) * np.float32(self.strength**distance)
            acc += weight[None] * other.ab
            total += weight
        return acc / total[None]


class FlickerMeter:
    """Flicker of a sequence of ``(L (H, W), ab (H, W, 2))`` frames, CIELAB units: for each pair of
    consecutive frames within a shot, the mean Euclidean ab change over the pixels whose L changed
    by less than ``static_threshold``; :attr:`value` is the mean over pairs."""

    def __init__(self, static_threshold: float = 1.0, min_static_fraction: float = 0.01) -> None:
        self.static_threshold = static_threshold
        self.min_static_fraction = min_static_fraction
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._sum = 0.0
        self.pairs = 0

    def update(self, l_plane: np.ndarray, ab: np.ndarray, cut: bool = False) -> None:
        """``l_plane`` (H, W) in L units; ``ab`` (H, W, 2); ``cut``: this frame starts a new shot."""
        l_plane = np.asarray(l_plane, dtype=np.float32)
        ab = np.asarray(ab, dtype=np.float32)
        previous, self._previous = self._previous, (l_plane, ab)
        if previous is None or cut or previous[0].shape != l_plane.shape:
            return
        static = np.abs(l_plane - previous[0]) < self.static_threshold
        if static.mean() < self.min_static_fraction:
            return
        change = np.sqrt(np.sum((ab - previous[1]) ** 2, axis=-1))
        self._sum += float(change[static].mean())
        self.pairs += 1

    @property
    def value(self) -> float | None:
        """Mean chroma change per frame on static pixels (ab units), or None without a usable pair."""
        return self._sum / self.pairs if self.pairs else None
