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
  settles on a wrong place that passes the forward-backward check). The whole pyramid runs only where
  the small window's step is in doubt (it failed, it is the point's first, it turns from the point's
  previous step, or it matches poorly: :attr:`TrackParams.doubt_motion`, :attr:`TrackParams.doubt_error`);
  elsewhere the pyramid's last level alone, started from the small window's step, refines it (the
  pyramid on every step cost 2-2.6x the tracking time). Then, for a point on too little texture to
  track (a wall, the sky, a plain dress), a wide window with the pyramid (:attr:`TrackParams.wide_window`:
  it moves with the area's edges); a point whose motion none of them could measure stays where it was
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
says how far each point was applied), and the key frames of a shot are tracked back together, in one
sweep down the buffer when the shot ends (or the buffer is full), not each on its own
(:meth:`_Tracker._sweep_backward`: a key frame on every frame of a shot of L frames took L**2 / 2 steps;
a 10-second shot with a key frame, 1 point, on each frame: 121 s, 12.5 s in one sweep). Where the
points are (:class:`Track`) grows with the frames they are tracked over, at most
:attr:`TrackParams.track_bytes` in all: past it, tracking stops (the report says which key frames'
points were cut short, and where each point was applied) -- 20,000 points held still over a one-hour
shot would have needed 13 GiB. The result, a
:class:`HintPlan`, gives the colorizing pass each frame's hints (:meth:`HintPlan.hints_at`) as a
photo's (a hint model gets them as guidance, :func:`colorizer.colorize.predict_prepared`), spread the
same way after the temporal smoothing, and the report's entry (:meth:`HintPlan.report`).
"""

from __future__ import annotations

import logging
import os
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import groupby

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
    doubt_motion: float = 1.0  # the whole pyramid runs only where the small window failed, or its step differs
    # from the point's previous step by at least this (tracking px; a point's first step has none), or
    doubt_error: float = 5.0  # its LK error is at least this (mean |difference| of the window, 0-255); elsewhere
    # the pyramid's last level refines the small window's step. 0 and 0: the whole pyramid on every step. Real
    # footage: 15% of the steps are in doubt; of the pyramid's steps that replaced a passing small window's,
    # 0.6% lay over 0.5 px from it, and all those over 2 px were in doubt
    lightness_change: float = 12.0  # |L of the patch - L at the key frame| (L units)
    conflict_radius: float = 0.05  # of the long side: points of two key frames this close disagree
    buffer_bytes: int = 256 << 20  # the small frames kept for backward tracking, at most
    track_bytes: int = 512 << 20  # the points' positions (:class:`Track`, 8 bytes a point a frame), at most: past
    # it no point is tracked further (500 points over 93 minutes at 24 fps; 20,000 over 2.3 minutes)


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
    forward_cut_short: bool = False  # points were still tracked when the positions reached TrackParams.track_bytes


def _in_shot(key: KeyFrame, frame: int) -> bool:
    return key.shot_start <= frame and (key.shot_end is None or frame <= key.shot_end)


def _near_any(xy: np.ndarray, others: np.ndarray, radius2: float) -> np.ndarray:
    """Which of the (N, 2) points ``xy`` lie closer than sqrt(``radius2``) to one of the (M, 2) ``others``."""
    if not len(others) or not len(xy):
        return np.zeros(len(xy), bool)
    d2 = (xy[:, None, 0] - others[None, :, 0]) ** 2 + (xy[:, None, 1] - others[None, :, 1]) ** 2
    return (d2 < radius2).any(axis=1)


def _means(patches: np.ndarray) -> np.ndarray:
    """The mean of each of the (N, side, side) float32 ``patches``: (N,) float32, each the same number as
    that patch's own ``mean()`` (summed in the same order)."""
    return patches.reshape(len(patches), -1).mean(axis=1)


class HintPlan:
    """Which hints apply on which frame of a film, tracked (see the module doc)."""

    def __init__(self, hints: FilmHints, keys: list[KeyFrame], frames_seen: int, frame_hw: tuple[int, int],
                 params: TrackParams = DEFAULT_TRACKING, seconds: float = 0.0) -> None:
        self.hints, self.keys, self.frames_seen, self.frame_hw = hints, keys, frames_seen, frame_hw
        self.params, self.seconds = params, seconds
        self._shots: tuple[list[int], list[list[KeyFrame]], list[list[int]]] | None = None

    @property
    def digest(self) -> str:
        return self.hints.digest()

    def tracked_at(self, frame: int) -> list[TrackedPoint]:
        """The points that apply on ``frame`` (where points of two key frames meet, the nearer key
        frame's; at most :data:`~colorizer.hints.MAX_POINTS`, the nearer key frames' first), in the
        order :meth:`hints_at` gives them; nothing is counted. A key frame's points never conflict
        with each other, so each key frame's are tested at once against those chosen before, as arrays
        (one point at a time against every chosen point took 87 ms a frame with four key frames of 500
        points in one shot; 2.8 ms now), and a farther key frame's are not looked at once the frame is full."""
        height, width = self.frame_hw
        radius2 = (self.params.conflict_radius * max(height, width)) ** 2
        chosen: list[TrackedPoint] = []
        chosen_xy = np.empty((0, 2))
        for points in self._candidates_by_key(frame):
            xy = np.array([t.positions[frame] for t in points], np.float64)
            free = ~_near_any(xy, chosen_xy, radius2)  # else a nearer key frame says otherwise here
            take = np.flatnonzero(free)[: MAX_POINTS - len(chosen)]  # many key frames in one shot: the
            chosen.extend(points[i] for i in take)  # farther ones' points wait
            chosen_xy = np.concatenate([chosen_xy, xy[take]])
            if len(chosen) == MAX_POINTS:
                break
        return chosen

    def _candidates_by_key(self, frame: int) -> Iterator[list[TrackedPoint]]:
        """The points tracked to ``frame``, one list per key frame (by their number), the nearer key
        frame first (of two as near, the earlier); a key frame's points are looked at only when the
        one before it did not fill the frame."""
        for _, same in groupby(self._keys_nearest(frame), key=lambda k: k.frame):
            points = sorted((t for k in same for t in k.points if t.first <= frame <= t.last), key=lambda t: t.index)
            if points:
                yield points

    def _keys_nearest(self, frame: int) -> Iterator[KeyFrame]:
        """The key frames whose shot holds ``frame``, the nearer first (of two as near, the earlier): its
        shot found by bisection, its key frames walked outward from ``frame`` as the caller asks for them.
        A frame costs what its own shot's nearest key frames cost, not a look at every key frame of the
        film (20,000 key frames, the most a sidecar holds, cost every frame 12 ms on the decode thread);
        a frame of no hinted shot costs a bisection. Shots do not overlap, and the key frames of one shot
        share its end (as :func:`plan_film_hints` finds them)."""
        starts, shots, numbers = self._shot_index()
        at = bisect_right(starts, frame) - 1
        if at < 0 or not _in_shot(shots[at][0], frame):  # before the first hinted shot, or past the end
            return  # of the one before it (its key frames share its end): none of them is looked at
        keys, frames = shots[at], numbers[at]
        right = bisect_left(frames, frame)
        left = right - 1
        while left >= 0 or right < len(keys):
            if right >= len(keys) or (left >= 0 and frame - frames[left] <= frames[right] - frame):
                key, left = keys[left], left - 1
            else:
                key, right = keys[right], right + 1
            yield key

    def _shot_index(self) -> tuple[list[int], list[list[KeyFrame]], list[list[int]]]:
        """The key frames by shot: the shots' first frames in order, and each shot's key frames and their
        numbers in frame order (made once)."""
        if self._shots is None:
            by_shot: dict[int, list[KeyFrame]] = {}
            for key in self.keys:
                by_shot.setdefault(key.shot_start, []).append(key)
            starts = sorted(by_shot)
            shots = [sorted(by_shot[start], key=lambda k: k.frame) for start in starts]
            self._shots = starts, shots, [[k.frame for k in keys] for keys in shots]
        return self._shots

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
                    **({"forward_cut_short": True} if key.forward_cut_short else {}),
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


@dataclass(frozen=True)
class _Going:
    """Points tracked in one direction, one row each: what :meth:`_Tracker._step` needs of them as
    arrays (a step tests all of them at once; one at a time, the tests cost as much as LK at 500 points)."""

    points: list[TrackedPoint]
    xy: np.ndarray  # (N, 2) float32: where each is on the last frame (tracking px)
    patches: np.ndarray  # (N, patch, patch) float32: what is under it there (L units)
    template: np.ndarray  # (N,) float64: its patch's mean L at its key frame
    bounds: np.ndarray  # (N, 4) float64: x_lo, x_hi, y_lo, y_hi -- where it stays inside the frame
    steps: np.ndarray  # (N, 2) float32: how far it moved in its last step (tracking px; NaN: none yet)

    @classmethod
    def empty(cls, side: int) -> _Going:
        return cls([], np.empty((0, 2), np.float32), np.empty((0, side, side), np.float32), np.empty(0),
                   np.empty((0, 4)), np.empty((0, 2), np.float32))

    def __len__(self) -> int:
        return len(self.points)

    def __add__(self, other: _Going) -> _Going:
        return _Going(self.points + other.points, *(np.concatenate([a, b]) for a, b in (
            (self.xy, other.xy), (self.patches, other.patches), (self.template, other.template),
            (self.bounds, other.bounds), (self.steps, other.steps))))

    def moved(self, keep: np.ndarray, xy: np.ndarray, patches: np.ndarray) -> _Going:
        """The points ``keep`` (a mask) now at ``xy`` over ``patches`` (one row each of those kept)."""
        return _Going([t for t, k in zip(self.points, keep, strict=True) if k], xy, patches, self.template[keep],
                      self.bounds[keep], xy - self.xy[keep])


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
        self.open_keys: dict[int, KeyFrame] = {}  # this shot's, by frame (its end not reached yet)
        self.active = _Going.empty(params.patch)  # the points tracked forward
        self.waiting: list[tuple[KeyFrame, _Going, np.ndarray]] = []  # key frames of this shot not yet tracked back
        self.positions_bytes = 0  # held by the points' tracks (TrackParams.track_bytes)
        self.buffer: deque[np.ndarray] = deque()
        self.buffer_start = 0  # frame index of buffer[0]
        self.shot_start = 0
        self.previous: np.ndarray | None = None
        self.frame_hw: tuple[int, int] | None = None
        self.scale = (1.0, 1.0)  # tracking px per frame px (y, x)
        self.frames = 0

    @property
    def done(self) -> bool:
        """Nothing more to learn: past the last key frame, and no point is tracked forward any more."""
        return self.frames > self.last_key and not len(self.active)

    def push(self, index: int, l_full: np.ndarray) -> None:
        hw = l_full.shape
        if self.frame_hw is None:
            self.frame_hw = hw
        prepared = prepare_l(l_full, self.render_size, self.size_multiple)
        cut = self.detector.update(prepared.padding.crop(denormalize_l(prepared.model_input[0])))  # as video.py
        small = tracking_image(l_full, self.params.size)
        self.scale = (small.shape[0] / hw[0], small.shape[1] / hw[1])
        if cut:
            self._sweep_backward()
            self._end_shot(index - 1)
            self.shot_start = index
            self.buffer.clear()
            self.buffer_start = index
        elif self.previous is not None and self.active:
            self._forward(index, self.previous, small)
        if index in self.key_hints:
            self._start_key(index, small)
        if self.last_key > index:  # backward tracking from a key frame ahead needs it
            if not self.buffer:
                self.buffer_start = index
            self.buffer.append(small)
            while len(self.buffer) > 1 and len(self.buffer) * small.nbytes > self.params.buffer_bytes:
                self._sweep_backward()  # the key frames waiting reach back as far as the buffer did
                self.buffer.popleft()
                self.buffer_start += 1
        else:
            self._sweep_backward()
            self.buffer.clear()
        self.previous = small
        self.frames = index + 1

    def finish(self) -> None:
        self._sweep_backward()
        self._end_shot(self.frames - 1)
        missing = [k for k in self.key_hints if k >= self.frames]
        if missing:
            raise HintsError(f"{self.hints.source}: key frame {missing[0]} is past the end of the film "
                             f"({self.frames} frames, numbered from 0)")

    # ------------------------------------------------------------------ steps
    def _to_small(self, x: float, y: float) -> tuple[float, float]:
        sy, sx = self.scale
        return (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5

    def _to_frame(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sy, sx = self.scale
        return (x + 0.5) / sx - 0.5, (y + 0.5) / sy - 0.5

    def _patches(self, image: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """The patches (N, side, side) of ``image`` around the (N, 2) points ``xy`` (L units)."""
        side = self.params.patch
        if not len(xy):
            return np.empty((0, side, side), np.float32)
        return np.stack([cv2.getRectSubPix(image, (side, side), (x, y)) for x, y in xy.tolist()]
                        ).astype(np.float32) / np.float32(2.55)

    def _start_key(self, index: int, small: np.ndarray) -> None:
        frame_hints = self.key_hints[index]
        height, width = self.frame_hw
        PhotoHints(frame_hints.points, f"{self.hints.source}: frame {index}").check_inside(width, height, "frame")
        key = KeyFrame(index, self.shot_start)
        self.keys.append(key)
        key.points.extend(TrackedPoint(index, i, p, Track(index, p.x, p.y)) for i, p in enumerate(frame_hints.points))
        xy = np.array([self._to_small(p.x, p.y) for p in frame_hints.points], np.float32).reshape(-1, 2)
        patches = self._patches(small, xy)
        started = _Going(list(key.points), xy, patches, _means(patches).astype(np.float64),
                         np.array([self._bounds(small.shape, x, y) for x, y in xy.tolist()]).reshape(-1, 4),
                         np.full_like(xy, np.nan))
        if key.frame > self.shot_start and (not self.buffer or self.buffer_start > self.shot_start):
            key.backward_cut_short = True
        self.waiting.append((key, started, small))  # tracked back with the shot's other key frames
        self.active = self.active + started
        self.open_keys[index] = key

    def _bounds(self, hw: tuple[int, int], x: float, y: float) -> tuple[float, float, float, float]:
        """Where a point put at (x, y) of the tracking image stays inside the frame: :attr:`TrackParams.margin`
        from the border, or, put closer than that, no more than :attr:`TrackParams.edge_slack` further out
        (a point put on the border pixels of a still shot holds)."""
        p = self.params
        h, w = hw
        return (min(p.margin, x) - p.edge_slack, max(w - 1 - p.margin, x) + p.edge_slack,
                min(p.margin, y) - p.edge_slack, max(h - 1 - p.margin, y) + p.edge_slack)

    def _sweep_backward(self) -> None:
        """Track the points of the key frames waiting (this shot's, since the last sweep) backward through
        the buffered frames, all in one sweep from the last of them down to the shot's start (or the
        buffer's): a key frame's points join the sweep at their key frame. Each point takes the steps it
        took when every key frame went back on its own (LK and the tests take each point alone), and the
        buffer reaches as far back (a sweep runs before the buffer drops a frame), but a frame is looked
        at once for all of them, not once per key frame."""
        if not self.waiting:
            return
        waiting = sorted(self.waiting, key=lambda w: w[0].frame, reverse=True)
        self.waiting = []
        bottom = max(waiting[0][0].shot_start, self.buffer_start)
        going = _Going.empty(self.params.patch)
        newer = waiting[0][2]
        joined = 0
        frame = waiting[0][0].frame - 1
        while frame >= bottom:
            while joined < len(waiting) and waiting[joined][0].frame == frame + 1:  # its points start here
                going, newer = going + waiting[joined][1], waiting[joined][2]
                joined += 1
            if not len(going) and joined == len(waiting):
                break
            if self.positions_bytes >= self.params.track_bytes:  # these, and those not started back yet (one
                self._cut_short(sum((w[1] for w in waiting[joined:] if w[0].frame > bottom), going),  # on the
                                backward=True)  # bottom frame had nowhere to go back to)
                break
            older = self.buffer[frame - self.buffer_start]
            going = self._step(going, newer, older, frame, backward=True)
            newer = older
            frame -= 1

    def _cut_short(self, going: _Going, backward: bool) -> None:
        """The points ``going`` (of this shot's key frames) are tracked no further: the positions reached
        :attr:`TrackParams.track_bytes`."""
        for frame in {t.key for t in going.points}:  # not a look at every key frame for each
            key = self.open_keys[frame]
            if backward:
                key.backward_cut_short = True
            else:
                key.forward_cut_short = True
        if len(going):
            log.warning("%s: the hints' tracks reached %d MiB: %d points are tracked no further %s",
                        self.hints.source, self.params.track_bytes >> 20, len(going),
                        "back" if backward else "forward")

    def _forward(self, index: int, previous: np.ndarray, small: np.ndarray) -> None:
        if self.positions_bytes >= self.params.track_bytes:
            self._cut_short(self.active, backward=False)
            self.active = _Going.empty(self.params.patch)
            return
        self.active = self._step(self.active, previous, small, index, backward=False)

    def _lk_options(self, window: int, levels: int) -> dict:
        return {"winSize": (window, window), "maxLevel": levels, "minEigThreshold": self.params.min_eigen,
                "criteria": (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)}

    def _one_way(self, src: np.ndarray, dst: np.ndarray, pts: np.ndarray, window: int, levels: int,
                 guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 1, 2) points ``pts`` of ``src`` found in ``dst`` (starting from ``guess``, if given),
        whether LK found each (converged, finite), and LK's error (mean |difference| of the window; inf
        where not found: LK leaves whatever was there, which warned as an invalid value when compared)."""
        options = self._lk_options(window, levels)
        if guess is None:
            moved, status, error = cv2.calcOpticalFlowPyrLK(src, dst, pts, None, **options)
        else:
            moved, status, error = cv2.calcOpticalFlowPyrLK(src, dst, pts, guess.copy(),
                                                            flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **options)
        found = (status[:, 0] == 1) & np.isfinite(moved).all(axis=(1, 2))
        return moved, found, np.where(found, error.reshape(-1), np.float32(np.inf))

    def _comes_back(self, src: np.ndarray, dst: np.ndarray, pts: np.ndarray, moved: np.ndarray,
                    which: np.ndarray, window: int, levels: int) -> np.ndarray:
        """Whether the points ``which`` (a mask) of ``moved``, found in ``dst``, tracked back to ``src``
        pass LK's test and land within :attr:`TrackParams.fb_error` of where they started (``pts``): the
        forward-backward check, run only where its answer is needed (LK tracks each point alone)."""
        ok = np.zeros(len(pts), bool)
        if which.any():
            back, status, _ = cv2.calcOpticalFlowPyrLK(dst, src, moved[which], None, **self._lk_options(window, levels))
            ok[which] = (status[:, 0] == 1) & (np.hypot(*(back - pts[which]).reshape(-1, 2).T) <= self.params.fb_error)
        return ok

    def _lucas_kanade(self, src: np.ndarray, dst: np.ndarray, pts: np.ndarray, window: int, levels: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 1, 2) points ``pts`` of ``src`` found in ``dst``, whether each passed LK's own tests
        both ways and the forward-backward check, and LK's error (mean |difference| of the window)."""
        moved, found, error = self._one_way(src, dst, pts, window, levels)
        return moved, self._comes_back(src, dst, pts, moved, found, window, levels), error

    def _doubtful(self, pts: np.ndarray, moved: np.ndarray, ok: np.ndarray, error: np.ndarray, steps: np.ndarray
                  ) -> np.ndarray:
        """Which of the small window's steps (``pts`` to ``moved``) the pyramid should try to better: those
        that failed, are a point's first (no previous ``steps``), turn from its previous step by
        :attr:`TrackParams.doubt_motion` or more (a wrong place the small window settled on, past about
        half its size, is not where the point was heading), or match worse than :attr:`TrackParams.doubt_error`."""
        p = self.params
        turn = np.hypot(*((moved - pts).reshape(-1, 2) - steps).T)
        return ~ok | ~(turn < p.doubt_motion) | ~(error < p.doubt_error)  # NaN: doubtful

    def _small_or_pyramid(self, src: np.ndarray, dst: np.ndarray, pts: np.ndarray, steps: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 1, 2) points ``pts`` of ``src`` found in ``dst`` by the small window without a pyramid, or
        by the pyramid where its step passes and matches better (LK's error) or the small window's
        failed; and whether each passed the tests. The whole pyramid runs only where the small
        window's step is doubtful (:meth:`_doubtful`); elsewhere its last level alone (its window on
        the full-size image) starts from the small window's step, where its coarser levels would have
        brought it (:meth:`_refine`)."""
        p = self.params
        moved, ok, error = self._lucas_kanade(src, dst, pts, p.local_window, 0)
        doubtful = self._doubtful(pts, moved, ok, error, steps)
        which = np.flatnonzero(doubtful)
        if len(which):
            start = pts[which]
            moved_far, found_far, error_far = self._one_way(src, dst, start, p.window, p.levels)
            wanted = found_far & (~ok[which] | (error_far < p.better_match * error[which]))
            use = self._comes_back(src, dst, start, moved_far, wanted, p.window, p.levels)  # only where taken
            moved[which[use]], ok[which[use]] = moved_far[use], True
        self._refine(src, dst, pts, moved, error, np.flatnonzero(~doubtful))
        return moved, ok

    def _refine(self, src: np.ndarray, dst: np.ndarray, pts: np.ndarray, moved: np.ndarray, error: np.ndarray,
                which: np.ndarray) -> None:
        """The small window's steps ``which`` (passed, not doubtful) moved where the pyramid's window on the
        full-size image, started there, matches better (LK's error) and stays within
        :attr:`TrackParams.fb_error` of them (so they still pass the forward-backward check): the
        pyramid's step without its coarser levels, at a quarter of its cost a point (real footage: the
        tracks lie 0.01-0.06 px from the pyramid-on-every-step ones on average; synthetic camera moves,
        truth known: slow ones off by 0.428 px against 0.423, by 0.444 with the small window's step
        alone)."""
        p = self.params
        if not len(which):
            return
        found, found_ok, found_error = self._one_way(src, dst, pts[which], p.window, 0, moved[which])
        better = found_ok & (found_error < p.better_match * error[which]) \
            & (np.hypot(*(found - moved[which]).reshape(-1, 2).T) <= p.fb_error)
        moved[which[better]] = found[better]

    def _measure(self, src: np.ndarray, dst: np.ndarray, pts: np.ndarray, steps: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 1, 2) points ``pts`` of ``src`` (their previous ``steps``) found in ``dst`` (see the module
        doc: the small window, the pyramid, the wide window, held still), whether each passed LK's
        tests, and which are held still."""
        p = self.params
        if p.local_window > 0:  # a small window first; the pyramid where it failed or is doubtful
            moved, ok = self._small_or_pyramid(src, dst, pts, steps)
        else:
            moved, ok, _ = self._lucas_kanade(src, dst, pts, p.window, p.levels)
        retry = np.flatnonzero(~ok)
        if p.wide_window > 0 and len(retry):  # too little texture under them: the motion of a wider area
            moved_wide, ok_wide, _ = self._lucas_kanade(src, dst, pts[retry], p.wide_window, p.levels)
            moved[retry], ok[retry] = moved_wide, ok_wide
        held = np.zeros(len(pts), bool)
        if p.hold_still:  # no motion could be measured: where it was, if what is under it did not change
            held = ~ok
            moved[held] = pts[held]
            ok[:] = True
        return moved, ok, held

    def _step(self, going: _Going, src: np.ndarray, dst: np.ndarray, frame: int, backward: bool) -> _Going:
        """Track ``going`` from ``src`` to ``dst`` (the image of ``frame``); the ones kept, moved."""
        p = self.params
        if not len(going):
            return going
        moved, ok, held = self._measure(src, dst, going.xy.reshape(-1, 1, 2), going.steps)
        xy = moved.reshape(-1, 2)
        x, y = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
        x_lo, x_hi, y_lo, y_hi = going.bounds.T
        keep = ok & (x_lo <= x) & (x <= x_hi) & (y_lo <= y) & (y <= y_hi)
        patches = np.zeros_like(going.patches)
        patches[keep] = self._patches(dst, xy[keep])
        change = _means(np.abs(patches - going.patches))
        keep &= (change <= np.where(held, p.hold_change, p.patch_change)) \
            & (np.abs(_means(patches) - going.template) <= p.lightness_change)
        for i in np.flatnonzero(~keep):
            if backward:
                going.points[i].lost_backward = frame
            else:
                going.points[i].lost_forward = frame
        fx, fy = self._to_frame(x[keep], y[keep])
        self.positions_bytes += 8 * len(fx)  # two float32 a point (Track)
        for tracked, xf, yf in zip([t for t, k in zip(going.points, keep, strict=True) if k], fx.tolist(), fy.tolist(),
                                   strict=True):
            tracked.positions.extend(frame, xf, yf)
        return going.moved(keep, xy[keep], patches[keep])

    def _end_shot(self, last: int) -> None:
        for key in self.open_keys.values():  # not every key frame of the film: a sidecar may hold 20,000
            key.shot_end = last
        self.open_keys = {}
        self.active = _Going.empty(self.params.patch)


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
