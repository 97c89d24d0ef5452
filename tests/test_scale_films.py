"""Films at an archive's scale, broken on purpose with small data: what grows with the frames, the key frames
or the numbers of a film must not grow faster (or without bound). Each test checks the mechanism (calls
counted, a lowered limit), not an hour-long film; the figures are in the report of the session that added them
(a 40-minute film, a 60,000-frame folder, sidecars at the size limits)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
from PIL import Image
from synthetic_media import FakeBackend, gray_frame
from test_film_hints import RED, gray_to_l, key, plan, texture

from colorizer.desktop.core import TaskKind
from colorizer.desktop.pipeline import hint_tracking, journal
from colorizer.desktop.pipeline.frames import colorize_frame_sequence, the_sequence
from colorizer.desktop.pipeline.hint_tracking import HintPlan, KeyFrame, Track, TrackedPoint, TrackParams
from colorizer.desktop.pipeline.journal import RunJournal
from colorizer.desktop.pipeline.run import planned_action
from colorizer.desktop.pipeline.settings import RunSettings, VideoSettings
from colorizer.desktop.pipeline.tasks import Task
from colorizer.hints import FilmHints, FrameHints, HintPoint


# --------------------------------------------------------------------------- frame folders
def test_date_stamped_names_billions_apart_say_why_they_are_no_sequence(tmp_path):
    """Three photos named by their date (numbers 10**10 apart): the reason counts what is missing without
    listing it (a set of the whole range ran out of memory); in a child process with 1 GiB of address space."""
    folder = tmp_path / "camera"
    folder.mkdir()
    for name in ("IMG20230101120000.png", "IMG20230615093000.png", "IMG20231224180000.png"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / name)
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from pathlib import Path
        from colorizer.desktop.pipeline.frames import the_sequence
        sequence, why = the_sequence(Path({str(folder)!r}))
        print(why)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert "1123059998 missing (IMG20230101120001.png, IMG20230101120002.png" in proc.stdout
    assert "and 1123059993 more" in proc.stdout
    reel = tmp_path / "reel"  # holes of a few frames: still named, the first five
    reel.mkdir()
    for i in (*range(1, 4), *range(5, 7), *range(12, 14)):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(reel / f"f_{i:03d}.png")
    assert the_sequence(reel)[1].endswith("6 missing (f_004.png, f_007.png, f_008.png, f_009.png, f_010.png "
                                          "and 1 more)")


def test_a_sequence_a_killed_run_left_half_written_is_redone_without_decoding_its_frames(tmp_path, monkeypatch):
    """A kill leaves the first frames written but not journaled: the next run redoes the sequence at once,
    instead of decoding (and journaling) every frame there first only to find one missing."""
    src, out = tmp_path / "reel", tmp_path / "out"
    src.mkdir()
    for i in range(8):
        Image.fromarray(gray_frame(i, 12, 16)[..., 0]).save(src / f"frame_{i:04d}.png")
    out.mkdir()
    for i in range(5):  # what the killed run wrote
        shutil.copy(src / f"frame_{i:04d}.png", out / f"frame_{i:04d}.png")
    decoded = []
    monkeypatch.setitem(journal.VALIDATORS, TaskKind.IMAGE, lambda path: decoded.append(path) or True)
    sequence, _ = the_sequence(src)
    task = Task(src, out, TaskKind.FRAMES)
    assert planned_action(task, RunSettings(), RunJournal.read_only(out)) == "redo: 5 of 8 outputs there, not all " \
        "finished"  # --dry-run says so without decoding them either
    assert decoded == []
    journal_writes = []
    write_all = journal.write_all
    monkeypatch.setattr(journal, "write_all", lambda fd, data: journal_writes.append(data) or write_all(fd, data))
    run_journal = RunJournal.open(out)
    try:
        result = colorize_frame_sequence(sequence, out, FakeBackend(), VideoSettings(), journal=run_journal)
    finally:
        run_journal.close()
    assert result.status == "done", result.reason
    assert decoded == []
    assert all(run_journal.lists(out / p.name) for p in sequence.frames)
    # the sequence's frames journaled in one write (and one fsync): one each took 29 s of 60,000 frames
    assert [data.count(b"\n") for data in journal_writes if b"frame_" in data] == [8]


# --------------------------------------------------------------------------- many key frames
def _counting_steps(monkeypatch) -> list[int]:
    """The frames each backward step of the tracker goes to (one entry per step, however many points)."""
    steps: list[int] = []
    step = hint_tracking._Tracker._step

    def counted(self, going, src, dst, frame, backward):
        if backward and len(going):
            steps.append(frame)
        return step(self, going, src, dst, frame, backward)

    monkeypatch.setattr(hint_tracking._Tracker, "_step", counted)
    return steps


def _panning(frames: int, seed: int = 3) -> list[np.ndarray]:
    big = texture(seed)
    return [np.ascontiguousarray(big[40 : 40 + 96, 20 + 2 * i : 20 + 2 * i + 128]) for i in range(frames)]


def test_the_key_frames_of_a_shot_are_tracked_back_in_one_sweep(monkeypatch):
    """A key frame on every frame of a 30-frame shot: the frames are stepped back through once for all of
    them (each key frame on its own took 29 + 28 + ... = 435 steps; a 10-second shot, 28,680)."""
    steps = _counting_steps(monkeypatch)
    frames = _panning(30)
    keys = [key(k, (20.0, 50.0)) for k in range(30)]  # going back, each moves right by 2 px a frame
    together = plan(frames, *keys)
    assert len(steps) <= 29
    assert all(t.first == 0 for k in together.keys for t in k.points)  # each went back to the shot's start
    # and each point lands where its key frame alone puts it (LK and the tests take each point alone)
    keys = [key(3, (30.0, 30.0)), key(9, (60.0, 40.0), (90.0, 70.0)), key(10, (50.0, 20.0)), key(20, (70.0, 50.0))]
    together = {(t.key, t.index): dict(t.positions) for k in plan(frames, *keys).keys for t in k.points}
    for one in keys:
        alone = {(t.key, t.index): dict(t.positions) for k in plan(frames, one).keys for t in k.points}
        for name, positions in alone.items():
            assert together[name] == positions


def test_the_points_positions_stop_at_their_memory_limit_and_the_report_says_so():
    """A still shot and 20 points: their tracks stop once they hold ``track_bytes`` (here 20 points over
    about 10 frames), not at the end of the shot -- an hour of it at the sidecar's 20,000 points took 13 GiB."""
    still = [texture(5)[100 : 100 + 96, 100 : 100 + 128]] * 60
    points = [(10.0 + 5 * i, 20.0 + 3 * i) for i in range(20)]
    hints = FilmHints((key(30, *points),), "test")

    limited = hint_tracking.plan_film_hints((gray_to_l(f) for f in still), hints, 32, 8,
                                            params=TrackParams(track_bytes=20 * 8 * 10))
    spans = [(t.first, t.last) for t in limited.keys[0].points]
    assert all(last - first <= 12 for first, last in spans), spans
    entry = limited.report()["key_frames"][0]
    assert entry.get("forward_cut_short") or entry.get("backward_cut_short")
    whole = hint_tracking.plan_film_hints((gray_to_l(f) for f in still), hints, 32, 8)
    assert [(t.first, t.last) for t in whole.keys[0].points] == [(0, 59)] * 20
    assert "forward_cut_short" not in whole.report()["key_frames"][0]


def test_a_frame_looks_at_the_key_frames_of_its_own_shot_not_the_films(monkeypatch):
    """2,000 shots of 5 frames, a key frame in each: a frame's hints come from its shot's key frame, found
    without looking at every key frame of the film (20,000, the most a sidecar holds, cost 12 ms a frame)."""
    keys = []
    for shot in range(2000):
        start, frame = 5 * shot, 5 * shot + 2
        point = HintPoint(10.0, 10.0, RED)
        tracked = TrackedPoint(frame, 0, point, Track.of(frame, {f: (10.0, 10.0) for f in range(start, start + 5)}))
        keys.append(KeyFrame(frame, start, start + 4, [tracked]))
    hints = FilmHints(tuple(FrameHints(k.frame, (k.points[0].point,)) for k in keys), "test")
    hint_plan = HintPlan(hints, keys, 10_000, (96, 128))
    looked_at = []
    in_shot = hint_tracking._in_shot
    monkeypatch.setattr(hint_tracking, "_in_shot", lambda k, f: looked_at.append(k) or in_shot(k, f))
    for frame in (0, 4, 5, 4_999, 9_999):
        hints_there = hint_plan.hints_at(frame)
        assert hints_there is not None and len(hints_there.points) == 1
    assert len(looked_at) <= 5


def test_a_frame_past_the_last_hinted_shot_looks_at_no_key_frame_one_by_one(monkeypatch):
    """A shot holding a key frame on each of its 300 frames, then frames of no hinted shot (the rest of the
    film, after the first pass stopped): each of those found the last shot by bisection and then walked
    all 300 of its key frames to find none of them holds it (20,000 key frames: every later frame of the
    film paid for them on the decode thread)."""
    keys = [KeyFrame(k, 0, 299, [TrackedPoint(k, 0, HintPoint(10.0, 10.0, RED), Track.of(k, {k: (10.0, 10.0)}))])
            for k in range(300)]
    hints = FilmHints(tuple(FrameHints(k.frame, (k.points[0].point,)) for k in keys), "test")
    hint_plan = HintPlan(hints, keys, 300, (96, 128))
    looked_at = []
    in_shot = hint_tracking._in_shot
    monkeypatch.setattr(hint_tracking, "_in_shot", lambda k, f: looked_at.append(k) or in_shot(k, f))
    for frame in range(300, 400):
        assert hint_plan.hints_at(frame) is None
    assert len(looked_at) <= 100
    assert hint_plan.hints_at(150) is not None


def test_a_key_frame_on_its_shots_first_frame_is_not_cut_short_going_back():
    """The positions reach their limit while a later key frame's points are tracked back: the key frame on
    the shot's first frame, which had no frame to go back to, was reported ``backward_cut_short`` with it."""
    frames = _panning(30)
    hints = FilmHints((key(0, (40.0, 50.0)), key(25, (60.0, 40.0))), "test")
    limited = hint_tracking.plan_film_hints((gray_to_l(f) for f in frames), hints, 32, 8,
                                            params=TrackParams(track_bytes=8 * 20))
    first, last = limited.report()["key_frames"]
    assert first["frame"] == 0 and last["frame"] == 25
    assert last.get("backward_cut_short")  # its points did not go back to frame 0
    assert "backward_cut_short" not in first
