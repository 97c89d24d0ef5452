"""What a film's hint tracking costs (issue #22): a frame's points chosen at the cap without testing each
point against every chosen one, and the pyramid tried only on the small window's doubtful steps -- with the
same choices and the points still followed."""

from __future__ import annotations

import cv2
import numpy as np
from test_film_hints import RED, H, W, key, plan, texture

from colorizer.desktop.pipeline import hint_tracking
from colorizer.desktop.pipeline.hint_tracking import DEFAULT_TRACKING, HintPlan, KeyFrame, Track, TrackedPoint
from colorizer.hints import FilmHints, FrameHints, HintPoint


def random_plan(seed: int, keys: tuple[int, ...] = (0, 6, 10, 10, 20), points: int = 150, frames: int = 21
                ) -> HintPlan:
    """Key frames (two on frame 10) of ``points`` random-walking points each over one shot, some tracked
    over part of it only; their points meet (the conflict radius is 6.4 px of a 128-px frame)."""
    rng = np.random.default_rng(seed)
    plan_keys = []
    for n, k in enumerate(keys):
        tracked = []
        for i in range(points):
            first, last = min(k, int(rng.integers(0, frames))), max(k, int(rng.integers(0, frames)))
            start, velocity = rng.uniform((0, 0), (W, H)), rng.normal(0, 0.5, 2)
            walk = {f: tuple(float(v) for v in start + (f - k) * velocity) for f in range(first, last + 1)}
            tracked.append(TrackedPoint(k, i + n * points if keys.count(k) > 1 else i, HintPoint(1, 1, RED),
                                        Track.of(k, walk)))
        plan_keys.append(KeyFrame(k, 0, frames - 1, tracked))
    hints = FilmHints(tuple(FrameHints(k.frame, tuple(t.point for t in k.points)) for k in plan_keys), "test")
    return HintPlan(hints, plan_keys, frames, (H, W))


def one_by_one(plan: HintPlan, frame: int, cap: int) -> list[tuple[int, int]]:
    """The rule: the points in order of their key frame's distance, each kept unless closer than the radius
    to one kept before of another key frame, at most ``cap``."""
    candidates = sorted((t for k in plan.keys if k.shot_start <= frame <= k.shot_end for t in k.points
                         if t.first <= frame <= t.last), key=lambda t: (abs(frame - t.key), t.key, t.index))
    radius2 = (plan.params.conflict_radius * max(plan.frame_hw)) ** 2
    chosen = []
    for t in candidates:
        x, y = t.positions[frame]
        if not any(o.key != t.key and (x - o.positions[frame][0]) ** 2 + (y - o.positions[frame][1]) ** 2 < radius2
                   for o in chosen):
            chosen.append(t)
            if len(chosen) == cap:
                break
    return [(t.key, t.index) for t in chosen]


def test_a_frames_points_at_the_cap_are_chosen_as_one_by_one_reading_each_position_once(monkeypatch):
    """Each point was tested against every chosen point, reading both positions each time: 0.19 s a frame
    at MAX_POINTS. The choice (which points, in which order, the cap) is the same; each candidate's
    position is read once."""
    reads = []
    getitem = Track.__getitem__

    def counted(self, frame):
        reads.append(frame)
        return getitem(self, frame)

    for seed, cap in ((0, 500), (1, 200), (2, 60)):
        p = random_plan(seed)
        monkeypatch.setattr(hint_tracking, "MAX_POINTS", cap)
        for frame in range(p.frames_seen):
            expected = one_by_one(p, frame, cap)
            reads.clear()
            monkeypatch.setattr(Track, "__getitem__", counted)
            got = [(t.key, t.index) for t in p.tracked_at(frame)]
            monkeypatch.setattr(Track, "__getitem__", getitem)
            assert got == expected, (seed, frame)
            candidates = sum(t.first <= frame <= t.last for k in p.keys for t in k.points)
            assert len(reads) <= candidates, (seed, frame, len(reads), candidates)
        assert any(len(one_by_one(p, f, 10**6)) < sum(t.first <= f <= t.last for k in p.keys for t in k.points)
                   for f in range(p.frames_seen))  # points did meet


def test_the_pyramid_tries_only_the_small_windows_doubtful_steps(monkeypatch):
    """The pyramid tracked every point both ways on every step (2-2.6x the tracking time); the whole pyramid
    now runs on the steps the small window failed, a point's first step, and one that turns from the
    point's previous step (elsewhere only its last level refines the small window's step) -- a pan that
    speeds up from 2 to 9 px a frame is still followed, and a slow pan's points mostly skip it."""
    counts = {"small": 0, "pyramid": 0}
    lk = cv2.calcOpticalFlowPyrLK

    def counted(src, dst, pts, nxt, **kwargs):
        if kwargs["winSize"][0] == DEFAULT_TRACKING.local_window and kwargs["maxLevel"] == 0:
            counts["small"] += len(pts)
        elif kwargs["maxLevel"] == DEFAULT_TRACKING.levels and kwargs["winSize"][0] == DEFAULT_TRACKING.window:
            counts["pyramid"] += len(pts)
        return lk(src, dst, pts, nxt, **kwargs)

    monkeypatch.setattr(cv2, "calcOpticalFlowPyrLK", counted)
    big = texture(1)
    offsets = np.cumsum([0] + [2] * 6 + [9] * 12)  # the camera: 2 px a frame, then 9
    frames = [np.ascontiguousarray(big[100 : 100 + H, 10 + o : 10 + o + W]) for o in offsets]
    p = plan(frames, key(4, (118, 30), (118, 60)))
    for tracked in p.keys[0].points:
        for f in range(1, 18):  # from where it came in at the right border until it nears the left one
            assert f in tracked.positions, (tracked.point, f)
            x, y = tracked.positions[f]
            assert abs(x - (118 - (offsets[f] - offsets[4]))) < 1 and abs(y - tracked.point.y) < 1, (f, x, y)

    counts.update(small=0, pyramid=0)
    grid = [(x, y) for x in range(20, W - 20, 12) for y in range(20, H - 20, 12)]
    frames = [np.ascontiguousarray(big[100 + i : 100 + i + H, 10 + 2 * i : 10 + 2 * i + W]) for i in range(20)]
    p = plan(frames, key(5, *grid))
    assert all(abs(x - (gx - 2 * (f - 5))) < 1 and abs(y - (gy - (f - 5))) < 1
               for t, (gx, gy) in zip(p.keys[0].points, grid, strict=True) for f, (x, y) in t.positions.items())
    assert sum(len(t.positions) for t in p.keys[0].points) > 0.9 * 20 * len(grid)
    assert counts["small"] > 0 and counts["pyramid"] < 0.25 * counts["small"], counts
