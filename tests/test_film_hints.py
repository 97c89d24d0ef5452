"""A film's key-frame hints carried through their shot (issue #22): tracking, lost points, scene cuts,
several key frames, the report, frame folders, --no-hints, malformed sidecars, the journal."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from synthetic_media import FakeBackend, write_clip

from colorizer.contract import gray_to_l
from colorizer.desktop.cli import EXIT_OK, EXIT_SOME_FAILED
from colorizer.desktop.cli import main as batch_main
from colorizer.desktop.pipeline.frame_formats import RgbFrames
from colorizer.desktop.pipeline.hint_tracking import plan_film_hints
from colorizer.desktop.pipeline.settings import VideoSettings
from colorizer.desktop.pipeline.video import colorize_frames, colorize_video
from colorizer.hints import FilmHints, FrameHints, HintPoint, write_hints

RED, BLUE = "#b03a2e", "#3a6ea5"
H, W = 96, 128


def texture(seed: int, low: int = 90, high: int = 235, h: int = 400, w: int = 600) -> np.ndarray:
    """A smooth random gray texture (uint8), trackable everywhere; the second shot's of a test is darker."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.5)
    return cv2.normalize(img, None, low, high, cv2.NORM_MINMAX).astype(np.uint8)


def panned(big: np.ndarray, i: int, dx: int = 2, dy: int = 1, x0: int = 100, y0: int = 100) -> np.ndarray:
    """Frame ``i`` of a camera moving by (dx, dy) per frame: content moves by (-dx, -dy)."""
    x, y = x0 + dx * i, y0 + dy * i
    return np.ascontiguousarray(big[y : y + H, x : x + W])


def plan(frames: list[np.ndarray], *keys: FrameHints):
    return plan_film_hints((gray_to_l(f) for f in frames), FilmHints(tuple(keys), "test"), 32, 8)


def key(frame: int, *points: tuple[float, float], color: str = RED) -> FrameHints:
    return FrameHints(frame, tuple(HintPoint(x, y, color) for x, y in points))


# ---------------------------------------------------------------------------- tracking
def test_a_point_follows_a_known_translation_both_ways():
    big = texture(1)
    frames = [panned(big, i) for i in range(30)]
    p = plan(frames, key(10, (60, 50)))
    tracked = p.keys[0].points[0]
    assert sorted(tracked.positions) == list(range(30))  # the whole shot, before and after the key frame
    for f in (0, 5, 10, 20, 29):
        x, y = tracked.positions[f]
        assert abs(x - (60 - 2 * (f - 10))) < 0.3 and abs(y - (50 - (f - 10))) < 0.3, (f, x, y)
    hints = p.hints_at(25)
    assert len(hints.points) == 1 and abs(hints.points[0].x - 30) < 0.3 and hints.points[0].color == RED


def test_a_point_on_a_flat_region_of_a_still_shot_holds_through_it():
    """Lucas-Kanade cannot track a point without texture (a wall, the sky, a plain dress): it stays
    where it was while what is under it does not change (it was lost at the next frame before)."""
    frame = texture(4)[:H, :W].copy()
    frame[20:80, 30:100] = 140  # a plain area, 60 x 70 px
    frames = [frame.copy() for _ in range(20)]
    p = plan(frames, key(5, (64, 50)))
    tracked = p.keys[0].points[0]
    assert sorted(tracked.positions) == list(range(20)) and tracked.lost_forward is None
    assert all(abs(x - 64) < 0.5 and abs(y - 50) < 0.5 for x, y in tracked.positions.values())


def test_a_point_on_a_plain_object_follows_it_by_its_edges():
    big = texture(5)
    frames = []
    for i in range(24):  # a plain 36 x 36 square moving right 1 px a frame over a still texture
        f = panned(big, 0).copy()
        f[30:66, 20 + i : 56 + i] = 60
        frames.append(f)
    p = plan(frames, key(4, (38, 48)))
    tracked = p.keys[0].points[0]
    assert sorted(tracked.positions) == list(range(24))
    for f, (x, y) in tracked.positions.items():  # on the square (18 px from the center to its edges)
        assert abs(x - (38 + f - 4)) < 3 and abs(y - 48) < 3, (f, x, y)


def test_a_point_that_leaves_the_frame_stops():
    big = texture(2)
    frames = [panned(big, i, dx=3, dy=0) for i in range(40)]  # content moves left 3 px a frame
    p = plan(frames, key(5, (20, 40), (100, 40)))
    leaving, staying = p.keys[0].points
    assert leaving.lost_forward is not None and leaving.last < leaving.lost_forward <= 5 + 20 // 3 + 1
    assert max(leaving.positions) == leaving.lost_forward - 1  # nothing after it was lost
    assert all(p.hints_at(f) is None or all(abs(pt.x - 100 + 3 * (f - 5)) < 1 for pt in p.hints_at(f).points)
               for f in range(leaving.lost_forward, 40))
    assert leaving.applied == 0 or leaving.applied == len(leaving.positions)


def occluded(n: int = 40) -> list[np.ndarray]:
    """A static textured background; a dark box moves right over (60, 48) during frames ~15-30."""
    big = texture(3)
    frames = []
    for i in range(n):
        f = panned(big, 0).copy()
        bx = -30 + 4 * i  # box columns [bx, bx + 24)
        if bx + 24 > 0:
            f[30:70, max(0, bx) : max(0, bx + 24)] = 25
        frames.append(f)
    return frames


def test_a_point_behind_an_occluder_stops_and_does_not_flicker_back():
    frames = occluded()
    p = plan(frames, key(2, (60, 48)))
    tracked = p.keys[0].points[0]
    covered = next(i for i in range(40) if frames[i][48, 60] == 25)  # the box reaches the point
    assert tracked.lost_forward is not None and tracked.lost_forward <= covered
    assert max(tracked.positions) < tracked.lost_forward  # never again, even once the box has passed
    uncovered = next(i for i in range(covered, 40) if frames[i][48, 60] != 25)
    assert uncovered < 39

    # through the colorizing engine: from the frame it was lost on, the chroma is the no-hint chroma
    def run(hint_plan):
        out = colorize_frames(((i, np.repeat(f[..., None], 3, 2)) for i, f in enumerate(frames)), FakeBackend(),
                              VideoSettings(), frame_format=RgbFrames(8), hint_plan=hint_plan)
        return [rgb for _, rgb in out]

    plain, hinted = run(None), run(plan(frames, key(2, (60, 48))))
    assert not np.array_equal(plain[2], hinted[2])  # applied on the key frame
    for i in range(tracked.lost_forward, 40):
        assert np.array_equal(plain[i], hinted[i]), i


def test_hints_do_not_cross_a_scene_cut():
    a, b = texture(4), texture(5, 10, 120)
    frames = [panned(a, i) for i in range(20)] + [panned(b, i) for i in range(20, 40)]
    p = plan(frames, key(10, (60, 50)), key(30, (60, 50), color=BLUE))
    first, second = p.keys
    assert (first.shot_start, first.shot_end) == (0, 19) and (second.shot_start, second.shot_end) == (20, 39)
    assert set(first.points[0].positions) <= set(range(20))
    assert set(second.points[0].positions) <= set(range(20, 40))
    for f in range(40):
        hints = p.hints_at(f)
        colors = {pt.color for pt in hints.points} if hints else set()
        assert colors <= ({RED} if f < 20 else {BLUE}), f


def test_several_key_frames_the_nearest_wins():
    big = texture(6)
    frames = [panned(big, i) for i in range(30)]
    # the same place (it moves 2, 1 px a frame) marked red on frame 5 and blue on frame 25
    p = plan(frames, key(5, (60, 50)), key(25, (60 - 40, 50 - 20), color=BLUE),
             key(28, (40, 70), color="#00ff00"))
    for frame, color in ((0, RED), (10, RED), (15, RED), (16, BLUE), (24, BLUE), (29, BLUE)):
        hints = p.hints_at(frame)
        near = [pt.color for pt in hints.points if pt.color != "#00ff00"]
        assert near == [color], (frame, near)
    assert "#00ff00" in {pt.color for pt in p.hints_at(10).points}  # elsewhere in the frame: both apply


def test_a_track_is_a_mapping_of_its_frames_without_gaps():
    from colorizer.desktop.pipeline.hint_tracking import Track

    track = Track(5, 1.0, 2.0)
    for f in (6, 4, 7, 3):
        track.extend(f, float(f), -float(f))
    assert (track.first, track.last, len(track), list(track)) == (3, 7, 5, [3, 4, 5, 6, 7])
    assert track[5] == (1.0, 2.0) and track[3] == (3.0, -3.0) and 8 not in track and 2 not in track
    assert dict(track.items()) == {3: (3.0, -3.0), 4: (4.0, -4.0), 5: (1.0, 2.0), 6: (6.0, -6.0), 7: (7.0, -7.0)}
    assert Track.of(5, dict(track.items())) == track
    with pytest.raises(ValueError, match="does not extend"):
        track.extend(10, 0.0, 0.0)


def test_a_frame_holds_at_most_max_points_the_nearer_key_frames_first(monkeypatch):
    """Many key frames in one shot: a frame gets at most MAX_POINTS points (the spread's memory grows
    with them), those of the nearer key frames."""
    from colorizer.desktop.pipeline import hint_tracking
    from colorizer.desktop.pipeline.hint_tracking import HintPlan, KeyFrame, Track, TrackedPoint

    monkeypatch.setattr(hint_tracking, "MAX_POINTS", 3)
    keys = [KeyFrame(k, 0, 20, [TrackedPoint(k, i, HintPoint(10 + 30 * i, 10 + k, RED),
                                             Track.of(k, {f: (10.0 + 30 * i, 10.0 + k) for f in range(21)}))
                                for i in range(3)])
            for k in (0, 10)]
    p = HintPlan(FilmHints(tuple(FrameHints(k.frame, tuple(t.point for t in k.points)) for k in keys), "test"),
                 keys, 21, (H, W))
    assert [(t.key, t.index) for t in p.tracked_at(8)] == [(10, 0), (10, 1), (10, 2)]
    assert [(t.key, t.index) for t in p.tracked_at(2)] == [(0, 0), (0, 1), (0, 2)]
    monkeypatch.setattr(hint_tracking, "MAX_POINTS", 500)
    assert len(p.tracked_at(8)) == 6  # both key frames' points, where nothing caps them


# ---------------------------------------------------------------------------- through the pipeline
def cut_film(path: Path) -> Path:
    a, b = texture(7), texture(8, 10, 120)
    return write_clip(path, [panned(a, i) for i in range(16)] + [panned(b, i) for i in range(16, 28)],
                      options={"crf": "4"})


def test_colorize_video_reports_key_frames_and_applied_counts(tmp_path):
    film = cut_film(tmp_path / "reel.mp4")
    write_hints(tmp_path / "reel.mp4.hints.json", FilmHints((key(4, (60, 50), (126, 50)), key(20, (64, 40)))))
    settings = VideoSettings(crf=0, overwrite=True)
    plain = colorize_video(film, tmp_path / "plain.mp4", FakeBackend(), settings)
    result = colorize_video(film, tmp_path / "out.mp4", FakeBackend(), settings, hints=tmp_path / "reel.mp4.hints.json")
    assert plain.status == result.status == "done", result.reason
    assert plain.hints is None
    report = result.hints
    assert report["count"] == 3 and report["sidecar"].endswith("reel.mp4.hints.json")
    frames = [k["frame"] for k in report["key_frames"]]
    assert frames == [4, 20]
    assert [k["shot"] for k in report["key_frames"]] == [[0, 15], [16, 27]]
    tracked, edge = report["key_frames"][0]["points"]
    assert tracked["applied_frames"] == 16 and tracked["tracked"] == [0, 15]
    assert 1 <= edge["applied_frames"] < 16  # at the border, moving out: lost going forward
    assert report["key_frames"][1]["points"][0]["applied_frames"] == 12
    # the second shot's hints change the second shot only where they spread, the first shot's the first
    with av.open(str(tmp_path / "plain.mp4")) as a, av.open(str(tmp_path / "out.mp4")) as b:
        pa = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        pb = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    assert len(pa) == len(pb) == 28
    assert all(not np.array_equal(x, y) for x, y in zip(pa, pb, strict=True))


def colorize(inputs, out: Path, model: Path, *extra: str) -> int:
    return batch_main([*map(str, inputs), "-o", str(out), "--model", str(model), "--backend", "cpu", "-q", *extra])


def report(out: Path) -> dict:
    return {Path(f["input"]).name: f for f in json.loads((out / "colorize-report.json").read_text())["files"]}


def frame_folder(folder: Path, n: int = 12) -> Path:
    folder.mkdir()
    big = texture(9)
    for i in range(n):
        Image.fromarray(panned(big, i)).save(folder / f"f{i:03d}.png")
    return folder


def test_a_frame_folders_sidecar_works_and_no_hints_ignores_it(model, tmp_path):
    reel = frame_folder(tmp_path / "reel")
    write_hints(tmp_path / "reel.hints.json", FilmHints((key(6, (60, 50)),)))
    assert colorize([reel], tmp_path / "out", model, "--frames") == EXIT_OK
    entry = report(tmp_path / "out")["reel"]
    assert entry["status"] == "done" and entry["hints"]["key_frames"][0]["frame"] == 6
    assert entry["hints"]["key_frames"][0]["points"][0]["applied_frames"] == 12
    assert colorize([reel], tmp_path / "plain", model, "--frames", "--no-hints") == EXIT_OK
    assert report(tmp_path / "plain")["reel"]["hints"] is None
    for i in (0, 6, 11):
        hinted = np.asarray(Image.open(tmp_path / "out" / f"f{i:03d}.png"))
        plain = np.asarray(Image.open(tmp_path / "plain" / f"f{i:03d}.png"))
        assert not np.array_equal(hinted, plain), i
    # --no-hints is the same as no sidecar at all
    (tmp_path / "reel.hints.json").unlink()
    assert colorize([reel], tmp_path / "none", model, "--frames") == EXIT_OK
    for i in range(12):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "none" / f"f{i:03d}.png")),
                              np.asarray(Image.open(tmp_path / "plain" / f"f{i:03d}.png")))


def test_a_malformed_film_sidecar_fails_that_film_only(model, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("good", "bad", "photo_form", "past_end"):
        cut_film(src / f"{name}.mp4")
    write_hints(src / "good.mp4.hints.json", FilmHints((key(2, (60, 50)),)))
    (src / "bad.mp4.hints.json").write_text('{"format": "colorizer-hints", "version": 1, "frames": [{"frame": -1}]}')
    (src / "photo_form.mp4.hints.json").write_text(
        json.dumps({"format": "colorizer-hints", "version": 1, "points": [{"x": 1, "y": 1, "color": RED}]}))
    write_hints(src / "past_end.mp4.hints.json", FilmHints((key(500, (60, 50)),)))
    assert colorize([src], tmp_path / "out", model) == EXIT_SOME_FAILED
    err = capsys.readouterr().err
    files = report(tmp_path / "out")
    assert files["good.mp4"]["status"] == "done" and files["good.mp4"]["hints"]["count"] == 1
    for name, cause in (("bad", "frame must be a whole number"), ("photo_form", "a photo's hints"),
                        ("past_end", "key frame 500 is past the end")):
        reason = files[f"{name}.mp4"]["reason"]
        assert files[f"{name}.mp4"]["status"] == "failed" and "\n" not in reason
        assert f"{name}.mp4.hints.json" in reason and cause in reason, reason
        assert cause in err
    assert not (tmp_path / "out" / "bad.mp4").exists()


def test_changed_film_hints_make_the_output_stale(model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    cut_film(src / "reel.mp4")
    sidecar = src / "reel.mp4.hints.json"

    def status(*extra) -> str:
        assert colorize([src], tmp_path / "out", model, *extra) in (EXIT_OK, EXIT_SOME_FAILED)
        return report(tmp_path / "out")["reel.mp4"]["status"]

    assert status() == "done"
    assert status() == "skipped"
    write_hints(sidecar, FilmHints((key(2, (60, 50)),)))
    assert status() == "done"  # a sidecar added
    assert status() == "skipped"
    write_hints(sidecar, FilmHints((key(3, (60, 50)),)))
    assert status() == "done"  # edited
    assert status("--no-hints") == "done"  # made without them now
    assert status("--no-hints") == "skipped"


def _frames_in_order(path: Path, luma: bool) -> list[np.ndarray]:
    from colorizer.desktop.media.video_source import VideoSource

    with VideoSource(path) as film:
        return [p.y.copy() if luma else p for _, p in film.frames(lambda packet: None, luma)]


def test_a_film_frame_found_by_a_seek_is_the_frame_decoded_in_order(tmp_path):
    """The hint preview seeks to a frame deep in a film (VideoSource.picture_at) instead of decoding
    every frame before it: on a clip with B-frames and short GOPs, every frame it finds is the one
    the colorizing pass decodes at that index, for RGB and luma routes; a frame past the end is None."""
    from colorizer.desktop.media.video_source import VideoSource

    rng = np.random.default_rng(5)
    frames = [(rng.random((48, 64)) * 200 + 20).astype(np.uint8) for _ in range(40)]
    clip = write_clip(tmp_path / "gop.mp4", frames, options={"crf": "12", "x264-params": "keyint=7:bframes=3"})
    for luma in (False, True):
        ordered = _frames_in_order(clip, luma)
        assert len(ordered) == 40
        for index in (1, 6, 7, 8, 13, 20, 33, 39):
            with VideoSource(clip) as film:
                picture = film.picture_at(index, luma)
            assert picture is not None, index
            np.testing.assert_array_equal(picture.y if luma else picture, ordered[index], err_msg=str(index))
    with VideoSource(clip) as film:
        assert film.picture_at(40) is None


def test_the_preview_of_a_deep_frame_is_the_run_s_frame(tmp_path, monkeypatch):
    from colorizer.desktop.core import TaskKind
    from colorizer.desktop.media.video_source import VideoSource
    from colorizer.desktop.pipeline.hint_preview import _film_picture

    rng = np.random.default_rng(6)
    frames = [(rng.random((48, 64)) * 200 + 20).astype(np.uint8) for _ in range(30)]
    clip = write_clip(tmp_path / "reel.mp4", frames, options={"crf": "12", "x264-params": "keyint=5:bframes=2"})
    ordered = _frames_in_order(clip, True)

    def in_order(*args, **kwargs):
        raise AssertionError("decoded from the start")

    monkeypatch.setattr(VideoSource, "frames", in_order)
    picture, _ = _film_picture(clip, TaskKind.VIDEO, 23, VideoSettings())
    np.testing.assert_array_equal(picture.y, ordered[23])
