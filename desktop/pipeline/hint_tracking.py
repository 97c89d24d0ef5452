"""A film's color hints carried from their key frames through their shots (issue #22).

A film's sidecar (:class:`colorizer.hints.FilmHints`) holds hints on key frames, in pixels of the
upright frame. A key frame's hints hold for its shot -- from the scene cut before it to the scene
cut after it, the cuts :class:`.temporal.SceneCutDetector` finds on the same L at render size as the
colorizing pass -- forward and backward from the key frame, and each point follows what it was put
on:

* **Tracking**: OpenCV's pyramidal Lucas-Kanade (``cv2.calcOpticalFlowPyrLK``) frame to frame on L
  at a moderate size (:attr:`TrackParams.size`, long side; never upscaled), forward from the key
  frame to the shot's end and backward to its start. Each step first tries a small window without
  a pyramid (:attr:`TrackParams.local_window`: slow motion, and something moving close by -- a leg
  passing behind a post -- does not pull the point away), and the pyramid (fast motion), which wins
  where the small window failed or matched worse (LK's error: past about half its size the small window
  settles on a wrong place that passes the forward-backward check), then, for a point on too little
  texture to track (a wall, the sky, a plain
  dress), a wide window with the pyramid (:attr:`TrackParams.wide_window`: it moves with the area's
  edges); a point whose motion none of them could measure stays where it was
  (:attr:`TrackParams.hold_still`) if what is under it there is nearly unchanged
  (:attr:`TrackParams.hold_change`, stricter than a tracked step's: a smooth texture that moved in passes
  the looser test) -- the tests below then decide whether it is still on its thing.
* **Lost points stop**: a step is accepted only when LK converged with one of the windows and the
  point tracked back lands within :attr:`TrackParams.fb_error` pixels of where it started
  (forward-backward check) -- or the point is held still --, the point stays inside the frame (with a margin;
  a point put within it, on the border pixels, may not move further out), and
  what is under it still looks like it: the patch around it changed little since the previous frame
  (:attr:`TrackParams.patch_change`) and its lightness little since the key frame
  (:attr:`TrackParams.lightness_change`) -- an occluder passing over it fails these. From the first
  failed step on (in that direction) the point is not applied again, so a point that was lost never
  flickers back in.
* **Several key frames in one shot**: each point follows its own key frame over the whole shot;
  where points of two key frames meet (closer than :attr:`TrackParams.conflict_radius` of the long
  side) the one of the nearer key frame wins on that frame.

The tracking runs in a first pass (:func:`plan_film_hints`) over the L planes of the film (decoded
for it; it stops after the last hinted shot). Memory is bounded: forward tracking keeps one frame;
backward tracking keeps the small frames since the last cut only while a key frame lies ahead, at
most :attr:`TrackParams.buffer_bytes` of them (a longer run back is cut short there; the report
says how far each point was applied). The result, a :class:`HintPlan`, gives the colorizing pass
each frame's hints (:meth:`HintPlan.hints_at`) as a photo's (a hint model gets them as guidance,
:func:`colorizer.colorize.predict_prepared`), spread the same way after the temporal smoothing, and
the report's entry (:meth:`HintPlan.report`).
"""

from __future__ import annotations

import logging
import os
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from colorizer.colorize import Prepared, prepare_l
from colorizer.contract import denormalize_l
from colorizer.desktop.pipeline.temporal import SceneCutDetector
from colorizer.hint_spread import DEFAULT_PARAMS, RenderHints, SpreadParams, geodesic_grid, hint_distances, hint_weights
from colorizer.hints import MAX_POINTS, FilmHints, HintPoint, HintsError, PhotoHints, read_hints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackParams:
    """How points are tracked; sizes in pixels of the tracking image (long side :attr:`size`)."""

    size: int = 320  # long side of the L the points are tracked on (never upscaled)
    window: int = 21  # LK window (pixels of the tracking image)
    levels: int = 3  # LK pyramid levels above the image
    local_window: int = 15  # first try: this window without a pyramid (0: go straight to the pyramid)
    wide_window: int = 61  # last try, for points on too little texture (a wall, the sky): the motion of this
    # wider window, with the pyramid (0: none)
    hold_still: bool = True  # a point no window could track stays where it was if what is under it did not change
    min_eigen: float = 1e-4  # LK's minimum eigenvalue test (OpenCV's default): below it, too little texture
    fb_error: float = 0.7  # forward-backward check: pixels of the tracking image
    margin: float = 2.0  # a point closer than this to the border has left the frame (one put closer: once it
    # moves more than :attr:`edge_slack` further out)
    edge_slack: float = 0.5  # how far a point put within :attr:`margin` of the border may move toward it
    patch: int = 7  # side of the patch compared from frame to frame
    patch_change: float = 6.0  # mean |L difference| of the patch to the previous frame's (L units)
    hold_change: float = 4.0  # a point held still (:attr:`hold_still`): at most this patch change (L units;
    # 2.0 lost plain-area points of real footage to compression noise: bikes.mp4 4.82 -> 4.94 mean ΔE2000)
    better_match: float = 1.0  # the pyramid's step replaces the small window's where its LK error is below this
    # fraction of the small window's (the small window alone settles on a wrong place past half its size)
    lightness_change: float = 12.0  # |L of the patch - L at the key frame| (L units)
    conflict_radius: float = 0.05  # of the long side: points of two key frames this close disagree
    buffer_bytes: int = 256 << 20  # the small frames kept for backward tracking, at most


DEFAULT_TRACKING = TrackParams()

FILM_SPREAD = replace(DEFAULT_PARAMS, grid=64)
"""How a film frame's hints spread: a photo's spread with the geodesic distances on a 64-pixel grid
(long side) instead of 96 -- 2.5x cheaper a frame (5 hints at 192x108: 4 ms instead of 10); films
are run at a small render size and their hints move every frame anyway."""
REUSE_L_CHANGE = 0.5
"""A frame reuses the previous frame's geodesic distances when its hints sit on the same cells of the
distance grid and the grid's L changed by at most this (mean absolute, L units): a still shot."""


class FilmSpread:
    """The spread weights of a film's frames, one frame after the other (the decode thread's; the app's
    preview of one frame too): :data:`FILM_SPREAD`, and the geodesic distances of the previous frame
    reused while nothing moves (:data:`REUSE_L_CHANGE`); the lightness term is always this frame's."""

    def __init__(self, params: SpreadParams = FILM_SPREAD) -> None:
        self.params = params
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # grid L, ys, xs, distances

    def prepare(self, prepared: Prepared, hints: PhotoHints | None, full_hw: tuple[int, int]) -> Prepared:
        """``prepared`` (a frame of ``full_hw``, upright) with ``hints`` placed on its render grid with
        the film's spread and their weights computed now."""
        prepared = prepared.with_hints(hints, full_hw)
        if prepared.hints is None:
            return prepared
        placed = replace(prepared.hints, params=self.params)
        return replace(prepared, hints=replace(placed, weights=self.weights(prepared.l_small, placed)))

    def weights(self, lum: np.ndarray, hints: RenderHints) -> np.ndarray:
        lum = np.asarray(lum, np.float32)
        if self.params.method != "geodesic":
            return hint_weights(lum, hints, self.params)
        grid = geodesic_grid(lum, hints, self.params)
        last = self._last
        if (last is not None and last[0].shape == grid[0].shape and np.array_equal(last[1], grid[1])
                and np.array_equal(last[2], grid[2])
                and float(np.mean(np.abs(last[0] - grid[0]))) <= REUSE_L_CHANGE):
            distances = last[3]
        else:
            distances = hint_distances(lum, hints, self.params, grid)
            self._last = (*grid, distances)
        return hint_weights(lum, hints, self.params, distances=distances)


class Track(Mapping):
    """Where a point is on each frame it was tracked to: frame -> (x, y) upright pixels, a read-only
    mapping over one run of frames, grown one frame at a time away from its key frame (:meth:`extend`).
    Two float32 a frame: 20,000 points over 300 frames hold 58 MiB, against 799 MiB as a dict of tuples
    (and 1.1 GB at the peak of a whole plan; the 20,000-point cap did not bound a long shot's memory)."""

    def __init__(self, key: int, x: float, y: float) -> None:
        self.key = key
        self._after = (array("f", [x]), array("f", [y]))  # the key frame and the frames after it
        self._before = (array("f"), array("f"))  # the frames before it, nearest first

    @classmethod
    def of(cls, key: int, positions: Mapping[int, tuple[float, float]]) -> Track:
        """A track holding ``positions`` (frames without gaps, the key frame among them)."""
        track = cls(key, *positions[key])
        for frame in sorted((f for f in positions if f != key), key=lambda f: abs(f - key)):
            track.extend(frame, *positions[frame])
        return track

    @property
    def first(self) -> int:
        return self.key - len(self._before[0])

    @property
    def last(self) -> int:
        return self.key + len(self._after[0]) - 1

    def extend(self, frame: int, x: float, y: float) -> None:
        """Add ``frame``: the one after :attr:`last` or before :attr:`first` (a track has no gaps)."""
        if frame == self.last + 1:
            xs, ys = self._after
        elif frame == self.first - 1:
            xs, ys = self._before
        else:
            raise ValueError(f"frame {frame} does not extend the track {self.first}..{self.last}")
        xs.append(x)
        ys.append(y)

    def __getitem__(self, frame: int) -> tuple[float, float]:
        offset = frame - self.key
        xs, ys = self._after if offset >= 0 else self._before
        i = offset if offset >= 0 else -offset - 1
        if not 0 <= i < len(xs):
            raise KeyError(frame)
        return xs[i], ys[i]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.last + 1))

    def __len__(self) -> int:
        return len(self._before[0]) + len(self._after[0])

    def __repr__(self) -> str:
        return f"Track({self.first}..{self.last})"


@dataclass
class TrackedPoint:
    """One key-frame point and where it is on each frame of its shot it was tracked to."""

    key: int  # the key frame
    index: int  # the point's number within its key frame (0-based)
    point: HintPoint
    positions: Track  # frame -> (x, y) upright pixels
    applied: int = 0  # frames it was applied to in the colorizing pass
    lost_forward: int | None = None  # the first frame it was lost on, going forward (None: not lost)
    lost_backward: int | None = None  # going backward

    @property
    def first(self) -> int:
        return self.positions.first

    @property
    def last(self) -> int:
        return self.positions.last


@dataclass
class KeyFrame:
    frame: int
    shot_start: int = 0
    shot_end: int | None = None  # last frame of the shot (None: not reached)
    points: list[TrackedPoint] = field(default_factory=list)
    backward_cut_short: bool = False  # the buffer did not reach back to the shot's start


def _in_shot(key: KeyFrame, frame: int) -> bool:
    return key.shot_start <= frame and (key.shot_end is None or frame <= key.shot_end)


class HintPlan:
    """Which hints apply on which frame of a film, tracked (see the module doc)."""

    def __init__(self, hints: FilmHints, keys: list[KeyFrame], frames_seen: int, frame_hw: tuple[int, int],
                 params: TrackParams = DEFAULT_TRACKING, seconds: float = 0.0) -> None:
        self.hints, self.keys, self.frames_seen, self.frame_hw = hints, keys, frames_seen, frame_hw
        self.params, self.seconds = params, seconds

    @property
    def digest(self) -> str:
        return self.hints.digest()

    def tracked_at(self, frame: int) -> list[TrackedPoint]:
        """The points that apply on ``frame`` (where points of two key frames meet, the nearer key
        frame's; at most :data:`~colorizer.hints.MAX_POINTS`, the nearer key frames' first), in the
        order :meth:`hints_at` gives them; nothing is counted."""
        candidates = [t for key in self.keys if _in_shot(key, frame) for t in key.points if t.first <= frame <= t.last]
        if not candidates:
            return []
        height, width = self.frame_hw
        radius2 = (self.params.conflict_radius * max(height, width)) ** 2
        chosen: list[TrackedPoint] = []
        for tracked in sorted(candidates, key=lambda t: (abs(frame - t.key), t.key, t.index)):
            x, y = tracked.positions[frame]
            if any(other.key != tracked.key and (x - other.positions[frame][0]) ** 2
                   + (y - other.positions[frame][1]) ** 2 < radius2 for other in chosen):
                continue  # a nearer key frame says otherwise here
            chosen.append(tracked)
            if len(chosen) == MAX_POINTS:  # many key frames in one shot: the farther ones' points wait
                break
        return chosen

    def point_at(self, tracked: TrackedPoint, frame: int) -> HintPoint:
        """``tracked``'s hint on ``frame`` (its position there, kept inside the frame)."""
        height, width = self.frame_hw
        x, y = tracked.positions[frame]
        p = tracked.point
        return HintPoint(min(max(x, 0.0), width - 1e-3), min(max(y, 0.0), height - 1e-3), p.color, p.size)

    def hints_at(self, frame: int) -> PhotoHints | None:
        """The hints of ``frame`` as a photo's (positions tracked; None: none); counts them as applied."""
        chosen = self.tracked_at(frame)
        if not chosen:
            return None
        for tracked in chosen:
            tracked.applied += 1
        return PhotoHints(tuple(self.point_at(t, frame) for t in chosen), self.hints.source)

    def report(self) -> dict:
        """The report's ``hints`` entry of the film: its key frames, their shots and each point's
        applied-frame count."""
        return {"sidecar": self.hints.source, "count": len(self.hints), "digest": self.digest,
                "tracking_s": round(self.seconds, 4),
                "key_frames": [{
                    "frame": key.frame, "shot": [key.shot_start, key.shot_end],
                    **({"backward_cut_short": True} if key.backward_cut_short else {}),
                    "points": [{**t.point.to_dict(), "applied_frames": t.applied,
                                "tracked": [t.first, t.last],
                                **({"lost_forward_at": t.lost_forward} if t.lost_forward is not None else {}),
                                **({"lost_backward_at": t.lost_backward} if t.lost_backward is not None else {})}
                               for t in key.points]} for key in self.keys]}


def read_film_hints(sidecar: os.PathLike | str | None) -> FilmHints | None:
    """The hints in a film's (or frame folder's) sidecar; None: no path, no file there, or no point
    in it. HintsError (one line naming the file) when it cannot be used, or holds a photo's points."""
    if sidecar is None or not os.path.lexists(sidecar):
        return None
    hints = read_hints(sidecar)
    if not isinstance(hints, FilmHints):
        raise HintsError(f"{sidecar}: holds a photo's hints (\"points\"); a film's hints are key frames "
                         "(\"frames\": [{\"frame\": N, \"points\": [...]}])")
    return hints if len(hints) else None


def tracking_image(l_full: np.ndarray, size: int) -> np.ndarray:
    """L (H, W) in [0, 100] -> uint8 (0-255) with long side ``size`` (never upscaled), area-averaged."""
    h, w = l_full.shape
    scale = min(1.0, size / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    small = l_full if (th, tw) == (h, w) else cv2.resize(l_full, (tw, th), interpolation=cv2.INTER_AREA)
    return cv2.convertScaleAbs(small, alpha=2.55)


class _Tracker:
    """The first pass, frame by frame: scene cuts, forward tracking, backward tracking at key frames."""

    def __init__(self, hints: FilmHints, render_size: int, size_multiple: int, cut_threshold: float,
                 params: TrackParams) -> None:
        self.hints, self.params = hints, params
        self.render_size, self.size_multiple = render_size, size_multiple
        self.detector = SceneCutDetector(cut_threshold)
        self.key_hints = {k.frame: k for k in hints.frames if k.points}
        self.last_key = max(self.key_hints, default=-1)
        self.keys: list[KeyFrame] = []
        self.active: list[tuple[TrackedPoint, np.ndarray, np.ndarray]] = []  # point, (x, y) tracking px, prev patch
        self.buffer: deque[np.ndarray] = deque()
        self.buffer_start = 0  # frame index of buffer[0]
        self.shot_start = 0
        self.previous: np.ndarray | None = None
        self.frame_hw: tuple[int, int] | None = None
        self.scale = (1.0, 1.0)  # tracking px per frame px (y, x)
        self.frames = 0
        self.template: dict[int, float] = {}  # id(TrackedPoint) -> L at its key frame
        self.bounds: dict[int, tuple[float, float, float, float]] = {}  # id(TrackedPoint) -> x, y range it stays in

    @property
    def done(self) -> bool:
        """Nothing more to learn: past the last key frame, and no point is tracked forward any more."""
        return self.frames > self.last_key and not self.active

    def push(self, index: int, l_full: np.ndarray) -> None:
        hw = l_full.shape
        if self.frame_hw is None:
            self.frame_hw = hw
        prepared = prepare_l(l_full, self.render_size, self.size_multiple)
        cut = self.detector.update(prepared.padding.crop(denormalize_l(prepared.model_input[0])))  # as video.py
        small = tracking_image(l_full, self.params.size)
        self.scale = (small.shape[0] / hw[0], small.shape[1] / hw[1])
        if cut:
            self._end_shot(index - 1)
            self.shot_start = index
            self.buffer.clear()
            self.buffer_start = index
        elif self.previous is not None and self.active:
            self._forward(index, self.previous, small)
        if index in self.key_hints:
            self._start_key(index, small)
        if any(k > index for k in self.key_hints):  # backward tracking from a key frame ahead needs it
            if not self.buffer:
                self.buffer_start = index
            self.buffer.append(small)
            while len(self.buffer) > 1 and len(self.buffer) * small.nbytes > self.params.buffer_bytes:
                self.buffer.popleft()
                self.buffer_start += 1
        elif self.buffer:
            self.buffer.clear()
        self.previous = small
        self.frames = index + 1

    def finish(self) -> None:
        self._end_shot(self.frames - 1)
        missing = [k for k in self.key_hints if k >= self.frames]
        if missing:
            raise HintsError(f"{self.hints.source}: key frame {missing[0]} is past the end of the film "
                             f"({self.frames} frames, numbered from 0)")

    # ------------------------------------------------------------------ steps
    def _to_small(self, x: float, y: float) -> tuple[float, float]:
        sy, sx = self.scale
        return (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5

    def _to_frame(self, x: float, y: float) -> tuple[float, float]:
        sy, sx = self.scale
        return (x + 0.5) / sx - 0.5, (y + 0.5) / sy - 0.5

    def _patch(self, image: np.ndarray, x: float, y: float) -> np.ndarray:
        side = self.params.patch
        return cv2.getRectSubPix(image, (side, side), (float(x), float(y))).astype(np.float32) / np.float32(2.55)

    def _start_key(self, index: int, small: np.ndarray) -> None:
        frame_hints = self.key_hints[index]
        height, width = self.frame_hw
        PhotoHints(frame_hints.points, f"{self.hints.source}: frame {index}").check_inside(width, height, "frame")
        key = KeyFrame(index, self.shot_start)
        self.keys.append(key)
        started = []
        for i, p in enumerate(frame_hints.points):
            tracked = TrackedPoint(index, i, p, Track(index, p.x, p.y))
            key.points.append(tracked)
            xy = np.array(self._to_small(p.x, p.y), np.float32)
            patch = self._patch(small, *xy)
            self.template[id(tracked)] = float(patch.mean())
            self.bounds[id(tracked)] = self._bounds(small.shape, float(xy[0]), float(xy[1]))
            started.append((tracked, xy, patch))
        self._backward(key, started, small)
        self.active.extend(started)

    def _bounds(self, hw: tuple[int, int], x: float, y: float) -> tuple[float, float, float, float]:
        """Where a point put at (x, y) of the tracking image stays inside the frame: :attr:`TrackParams.margin`
        from the border, or, put closer than that, no more than :attr:`TrackParams.edge_slack` further out
        (a point put on the border pixels of a still shot holds)."""
        p = self.params
        h, w = hw
        return (min(p.margin, x) - p.edge_slack, max(w - 1 - p.margin, x) + p.edge_slack,
                min(p.margin, y) - p.edge_slack, max(h - 1 - p.margin, y) + p.edge_slack)

    def _backward(self, key: KeyFrame, started: list, small: np.ndarray) -> None:
        if key.frame > self.shot_start and (not self.buffer or self.buffer_start > self.shot_start):
            key.backward_cut_short = True
        going = [(t, xy.copy(), patch) for t, xy, patch in started]
        newer = small
        for j in range(len(self.buffer) - 1, -1, -1):  # frames key - 1, key - 2, ... back to the shot's start
            frame = self.buffer_start + j
            if frame < self.shot_start or frame >= key.frame or not going:
                break
            older = self.buffer[j]
            going = self._step(going, newer, older, frame, backward=True)
            newer = older

    def _forward(self, index: int, previous: np.ndarray, small: np.ndarray) -> None:
        self.active = self._step(self.active, previous, small, index, backward=False)

    def _lucas_kanade(self, src: np.ndarray, dst: np.ndarray, pts: np.ndarray, window: int, levels: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 1, 2) points ``pts`` of ``src`` found in ``dst``, whether each passed LK's own tests
        both ways and the forward-backward check, and LK's error (mean |difference| of the window)."""
        p = self.params
        lk = {"winSize": (window, window), "maxLevel": levels, "minEigThreshold": p.min_eigen,
              "criteria": (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)}
        moved, status, error = cv2.calcOpticalFlowPyrLK(src, dst, pts, None, **lk)
        back, status_back, _ = cv2.calcOpticalFlowPyrLK(dst, src, moved, None, **lk)
        ok = (status[:, 0] == 1) & (status_back[:, 0] == 1) & np.isfinite(moved).all(axis=(1, 2))
        ok &= np.hypot(*(back - pts).reshape(-1, 2).T) <= p.fb_error
        return moved, ok, error.reshape(-1)

    def _step(self, items: list, src: np.ndarray, dst: np.ndarray, frame: int, backward: bool) -> list:
        """Track ``items`` from ``src`` to ``dst`` (the image of ``frame``); the ones kept, moved."""
        p = self.params
        if not items:
            return items
        pts = np.array([xy for _, xy, _ in items], np.float32).reshape(-1, 1, 2)
        if p.local_window > 0:  # a small window first; the pyramid for the points it loses
            moved, ok, error = self._lucas_kanade(src, dst, pts, p.local_window, 0)
            # and where the pyramid matches clearly better: past about half its size, the small window
            # alone settles on a wrong place that passes the forward-backward check
            moved_far, ok_far, error_far = self._lucas_kanade(src, dst, pts, p.window, p.levels)
            use = ok_far & (~ok | (error_far < p.better_match * error))
            moved[use], ok[use] = moved_far[use], True
        else:
            moved, ok, _ = self._lucas_kanade(src, dst, pts, p.window, p.levels)
        retry = np.flatnonzero(~ok)
        if p.wide_window > 0 and len(retry):  # too little texture under them: the motion of a wider area
            moved_wide, ok_wide, _ = self._lucas_kanade(src, dst, pts[retry], p.wide_window, p.levels)
            moved[retry], ok[retry] = moved_wide, ok_wide
        held = np.zeros(len(items), bool)
        if p.hold_still:  # no motion could be measured: where it was, if what is under it did not change
            held = ~ok
            moved[held] = pts[held]
            ok[:] = True
        kept = []
        for i, (tracked, _, patch) in enumerate(items):
            x, y = (float(v) for v in moved[i, 0])
            x_lo, x_hi, y_lo, y_hi = self.bounds[id(tracked)]
            keep = bool(ok[i]) and x_lo <= x <= x_hi and y_lo <= y <= y_hi
            if keep:
                new_patch = self._patch(dst, x, y)
                keep = float(np.mean(np.abs(new_patch - patch))) <= (p.hold_change if held[i] else p.patch_change) \
                    and abs(float(new_patch.mean()) - self.template[id(tracked)]) <= p.lightness_change
            if not keep:
                if backward:
                    tracked.lost_backward = frame
                else:
                    tracked.lost_forward = frame
                continue
            tracked.positions.extend(frame, *self._to_frame(x, y))
            kept.append((tracked, np.array([x, y], np.float32), new_patch))
        return kept

    def _end_shot(self, last: int) -> None:
        for key in self.keys:
            if key.shot_end is None and key.frame <= last:
                key.shot_end = last
        self.active = []


def plan_film_hints(l_planes: Iterable[np.ndarray], hints: FilmHints, render_size: int, size_multiple: int,
                    scene_cut_threshold: float = 10.0, params: TrackParams = DEFAULT_TRACKING,
                    check: Callable[[], None] | None = None) -> HintPlan:
    """Track ``hints`` through the film whose upright L planes (H, W, [0, 100]) ``l_planes`` yields in
    order (the first pass; iteration stops once nothing more is to be learned: after the last key
    frame's points are all lost or its shot has ended); ``render_size`` and ``size_multiple`` as the
    colorizing pass's, so the scene cuts are the same. ``check`` is called once per frame (e.g. to
    raise Cancelled). HintsError for a key frame past the end or a point outside the frame."""
    import time

    started = time.perf_counter()
    tracker = _Tracker(hints, render_size, size_multiple, scene_cut_threshold, params)
    for index, l_full in enumerate(l_planes):
        if check is not None:
            check()
        if tracker.frame_hw is not None and l_full.shape != tracker.frame_hw:
            raise HintsError(f"{hints.source}: the frames change size at frame {index}")
        tracker.push(index, l_full)
        if tracker.done:
            break
    tracker.finish()
    return HintPlan(hints, tracker.keys, tracker.frames, tracker.frame_hw or (1, 1), params,
                    time.perf_counter() - started)
