"""A film's key-frame hints broken on purpose: fast motion, a subject that leaves the frame, points on the
border pixels, a scene cut on every frame -- tracked (plan_film_hints) and through the real ``colorize-batch``
in a child process (a native crash fails the test, not the run)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
from faults import CLI
from synthetic_media import iter_lab_frames, write_clip
from test_film_hints import BLUE, RED, H, W, key, panned, plan, texture

from colorizer.fileio import is_partial_file
from colorizer.hints import FilmHints, HintPoint, write_hints


def pan(dx: int, n: int = 20, seed: int = 1) -> list[np.ndarray]:
    """A camera panning ``dx`` px a frame: the content moves left by ``dx``."""
    big = texture(seed)
    return [panned(big, i, dx=dx, dy=0, x0=10) for i in range(n)]


def test_a_fast_pan_is_followed_where_the_small_window_settles_wrong():
    """8 px a frame: the 15-px window without a pyramid converged on a wrong place that passed the
    forward-backward check (61.3, 46.4 instead of 52, 50) and the point followed the wrong thing after."""
    p = plan(pan(8), key(5, (60, 50)))
    tracked = p.keys[0].points[0]
    for f in range(0, 12):  # until it nears the left border (x = 60 - 8 (f - 5))
        assert f in tracked.positions, f
        x, y = tracked.positions[f]
        assert abs(x - (60 - 8 * (f - 5))) < 1 and abs(y - 50) < 1, (f, x, y)


def test_a_point_whose_thing_moved_on_is_not_held_on_what_came_in():
    """15 px a frame, a smooth low-contrast texture: where no step passed, the point was held still and
    its patch test (6 L units) passed on whatever had moved in -- it stayed put on frames where its
    thing had gone, even out of the frame (x = 135 and 120 backward, 0 forward)."""
    p = plan(pan(15), key(5, (60, 50)))
    tracked = p.keys[0].points[0]
    for f, (x, y) in tracked.positions.items():
        assert abs(x - (60 - 15 * (f - 5))) < 1.5 and abs(y - 50) < 1.5, (f, x, y)
    assert tracked.lost_forward is not None and tracked.lost_forward <= 9  # at x = 0 on frame 9
    assert tracked.lost_backward is not None and tracked.lost_backward >= 1  # x = 135 on frame 0: outside


def test_points_on_the_border_pixels_of_a_still_shot_hold():
    """A point within the 2-px margin of the border was taken for one leaving the frame at the next
    frame: on a still shot, a point on the border pixels applied to its key frame only."""
    still = [texture(2)[:H, :W]] * 12
    corners = ((W - 1, 50), (0, 0), (W - 1, H - 1), (1, 1), (64, H - 1), (W - 2, 30))
    p = plan(still, key(5, *corners))
    for tracked in p.keys[0].points:
        assert sorted(tracked.positions) == list(range(12)), tracked.point
        assert all(abs(x - tracked.point.x) < 0.5 and abs(y - tracked.point.y) < 0.5
                   for x, y in tracked.positions.values()), tracked.point
    # a point on the border whose content leaves the frame still stops
    p = plan(pan(3), key(5, (0, 40), (W - 1, 60)))
    leaving, entering = p.keys[0].points
    assert leaving.lost_forward is not None and leaving.lost_forward <= 7 and leaving.last < leaving.lost_forward
    assert entering.lost_forward is None and entering.last == 19  # its content moves into the frame
    assert abs(entering.positions[15][0] - (W - 1 - 30)) < 1


def _run(inputs: list[Path], out: Path, model: Path, *extra: str) -> dict:
    report = out.parent / f"{out.name}-report.json"
    proc = subprocess.run([*CLI, *map(str, inputs), "-o", str(out), "--model", str(model), "-q", "--report",
                           str(report), *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), f"crashed ({proc.returncode}): {proc.stderr[-2000:]}"
    assert not [p for p in out.rglob("*") if is_partial_file(p)], "temporary files left behind"
    return {Path(e["input"]).name: e for e in json.loads(report.read_text())["files"]}


def test_border_points_and_a_cut_on_every_frame_through_the_cli(model, tmp_path):
    """Through colorize-batch (lossless, so pixels can be read back): a still film with points on its
    border pixels gets their color on every frame; a film whose every frame is a new shot gets a key
    frame's color on that frame only (never across the cut); no pixel is anything but finite."""
    films = tmp_path / "films"
    still = texture(2)[:H, :W]
    write_clip(films / "still.mp4", [still] * 10, options={"crf": "4"})
    write_hints(films / "still.mp4.hints.json", FilmHints((key(4, (W - 1, 40), (0, H - 1)),)))
    shots = [texture(10 + i, 130, 235)[:H, :W] if i % 2 else texture(10 + i, 5, 60)[:H, :W] for i in range(8)]
    write_clip(films / "cuts.mp4", shots, options={"crf": "4"})
    write_hints(films / "cuts.mp4.hints.json", FilmHints((key(3, (60, 50), color=BLUE), key(6, (60, 50)))))
    hinted = _run([films], tmp_path / "out", model, "--lossless")
    (films / "still.mp4.hints.json").unlink()
    (films / "cuts.mp4.hints.json").unlink()
    plain = _run([films], tmp_path / "plain", model, "--lossless")
    assert {e["status"] for e in [*hinted.values(), *plain.values()]} == {"done"}, hinted

    points = hinted["still.mp4"]["hints"]["key_frames"][0]["points"]
    assert [pt["applied_frames"] for pt in points] == [10, 10]
    red = np.array(HintPoint(0, 0, RED).ab())
    a = list(iter_lab_frames(hinted["still.mp4"]["output"], size=None))
    b = list(iter_lab_frames(plain["still.mp4"]["output"], size=None))
    assert len(a) == len(b) == 10
    for (_, ab), (_, ab_plain) in zip(a, b, strict=True):
        assert np.isfinite(ab).all()
        for x, y in ((W - 1, 40), (0, H - 1)):
            hinted_to_red = np.linalg.norm(ab[y, x] - red) < np.linalg.norm(ab_plain[y, x] - red) - 5
            assert hinted_to_red, (x, y, ab[y, x], ab_plain[y, x])

    entry = hinted["cuts.mp4"]["hints"]["key_frames"]
    assert [k["shot"] for k in entry] == [[3, 3], [6, 6]]
    a = list(iter_lab_frames(hinted["cuts.mp4"]["output"], size=None))
    b = list(iter_lab_frames(plain["cuts.mp4"]["output"], size=None))
    assert len(a) == len(b) == 8
    for i, ((_, ab), (_, ab_plain)) in enumerate(zip(a, b, strict=True)):
        assert np.isfinite(ab).all()
        if i in (3, 6):
            assert not np.array_equal(ab, ab_plain), i
        else:
            np.testing.assert_array_equal(ab, ab_plain, err_msg=f"frame {i}: a hint crossed a cut")
