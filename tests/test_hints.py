"""Color hints (#21): the sidecar format, the training-free spread, and hints through colorize-batch
(both photo routes, EXIF rotation, resume, --no-hints, --hints-dir, the report, --ray)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import piexif
import pytest
from PIL import Image

from colorizer.colorize import prepare
from colorizer.contract import rgb_to_lab
from colorizer.desktop.cli import EXIT_OK, EXIT_SOME_FAILED
from colorizer.desktop.cli import main as batch_main
from colorizer.desktop.media.image_read import read_image
from colorizer.hint_spread import SPREAD_METHODS, SpreadParams, place_hints, spread_hints
from colorizer.hints import (
    FilmHints,
    FrameHints,
    HintPoint,
    HintsError,
    PhotoHints,
    _parse_hints,
    hints_digest,
    read_hints,
    read_photo_hints,
    sidecar_path,
    simulated_hints,
    write_hints,
)

RED = "#b03a2e"  # L 44, a 47, b 34: in gamut at the test photos' L 50
RED_AB = np.array(HintPoint(0, 0, RED).ab())


def doc(**fields) -> dict:
    return {"format": "colorizer-hints", "version": 1} | fields


# ---------------------------------------------------------------------------- the sidecar format
def test_a_sidecar_round_trips_and_names_its_place(tmp_path):
    hints = PhotoHints((HintPoint(812, 440, "#b03a2e"), HintPoint(3.5, 2, "#3a6ea5", 9)))
    path = write_hints(sidecar_path(tmp_path / "scan_001.jpg"), hints)
    assert path == tmp_path / "scan_001.jpg.hints.json"
    data = json.loads(path.read_text())
    assert data == {"format": "colorizer-hints", "version": 1, "points": [
        {"x": 812, "y": 440, "color": "#b03a2e"}, {"x": 3.5, "y": 2, "color": "#3a6ea5", "size": 9}]}
    again = read_hints(path)
    assert again.points == hints.points and again.source == str(path)
    assert hints_digest(path) == hints.digest()
    assert _parse_hints(json.dumps(doc(points=[{"x": 1, "y": 2, "color": "#ABC"}]))).points[0].color == "#aabbcc"
    # a mirrored tree elsewhere
    assert sidecar_path(tmp_path / "in" / "a" / "b.png", tmp_path / "h", tmp_path / "in") == \
        tmp_path / "h" / "a" / "b.png.hints.json"
    assert sidecar_path(tmp_path / "x" / "b.png", tmp_path / "h") == tmp_path / "h" / "b.png.hints.json"
    assert sidecar_path(tmp_path / "reel_frames") == tmp_path / "reel_frames.hints.json"


def test_film_hints_parse_and_are_refused_for_a_photo(tmp_path):
    path = tmp_path / "reel.mp4.hints.json"
    path.write_text(json.dumps(doc(frames=[{"frame": 120, "points": [{"x": 1, "y": 1, "color": RED}]},
                                           {"frame": 4, "points": []}])))
    hints = read_hints(path)
    assert isinstance(hints, FilmHints) and [f.frame for f in hints.frames] == [4, 120] and len(hints) == 1
    assert write_hints(tmp_path / "copy.json", hints) and read_hints(tmp_path / "copy.json").frames == hints.frames
    assert isinstance(hints.frames[0], FrameHints)
    with pytest.raises(HintsError, match="film hints"):
        read_photo_hints(path)


@pytest.mark.parametrize(("content", "cause"), [
    (b"{not json", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),  # Python's JSON parser recurses
    (b"[1, 2]", "not a hints file"),
    (json.dumps({"format": "other", "version": 1, "points": []}), "format is 'other'"),
    (json.dumps({"format": "colorizer-hints", "version": 2, "points": []}), "version 2"),
    (json.dumps({"format": "colorizer-hints", "points": []}), "version None"),
    (json.dumps(doc()), "either \"points\""),
    (json.dumps(doc(points=[], frames=[])), "either \"points\""),
    (json.dumps(doc(points={"x": 1})), "must be a list"),
    (json.dumps(doc(points=[5])), "point 1 is not an object"),
    (json.dumps(doc(points=[{"x": 1, "color": RED}])), "point 1 has no 'y'"),
    (json.dumps(doc(points=[{"x": "1", "y": 1, "color": RED}])), "must be numbers"),
    (json.dumps(doc(points=[{"x": True, "y": 1, "color": RED}])), "must be numbers"),
    (json.dumps(doc(points=[{"x": 1, "y": 1, "color": "red"}])), "not an sRGB hex color"),
    (json.dumps(doc(points=[{"x": 1, "y": 1, "color": "#12345"}])), "not an sRGB hex color"),
    (json.dumps(doc(points=[{"x": 1, "y": 1, "color": 0xB03A2E}])), "not an sRGB hex color"),
    (json.dumps(doc(points=[{"x": 1, "y": 1, "color": RED, "size": 0}])), "size must be a number of pixels above 0"),
    (json.dumps(doc(points=[{"x": 1, "y": 1, "color": RED}] * 501)), "501 points; at most 500"),
    (json.dumps(doc(frames=[{"frame": 3, "points": [{"x": 1, "y": 1, "color": RED}] * 501}])),
     "frame 3: 501 points; at most 500"),
    (json.dumps(doc(frames=[{"frame": k, "points": [{"x": 1, "y": 1, "color": RED}] * 500} for k in range(41)])),
     "20500 points on 41 key frames; at most 20000 in all"),
    (json.dumps(doc(frames={"frame": 1})), "\"frames\" must be a list"),
    (json.dumps(doc(frames=[{"points": []}])), "has no \"frame\""),
    (json.dumps(doc(frames=[{"frame": -1}])), "whole number"),
    (json.dumps(doc(frames=[{"frame": 1}, {"frame": 1}])), "listed twice"),
    (json.dumps(doc(frames=[{"frame": 1, "points": [{"x": 1, "y": 1, "color": "#zzzzzz"}]}])), "frame 1: point 1"),
])
def test_every_malformed_sidecar_is_one_line_naming_the_file_and_the_cause(tmp_path, content, cause):
    path = tmp_path / "p.jpg.hints.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(HintsError) as info:
        read_hints(path)
    message = str(info.value)
    assert message.startswith(str(path)) and cause in message and "\n" not in message
    assert hints_digest(path).startswith("invalid-")  # never matches a recorded digest


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_named_pipe_or_a_folder_where_the_sidecar_goes_is_an_error_not_a_hang(tmp_path):
    """Reading a named pipe blocks until something writes to it: a run would hang there for good (and a
    TERM could not stop it). The sidecar is opened without blocking and refused before a byte is read.
    In a child process, so that a hang fails this test instead of stopping the suite."""
    os.mkfifo(tmp_path / "scan.jpg.hints.json")
    (tmp_path / "film.mp4.hints.json").mkdir()
    code = ("import sys; from colorizer.hints import HintsError, hints_digest, read_hints\n"
            "for name in ('scan.jpg.hints.json', 'film.mp4.hints.json'):\n"
            "    path = sys.argv[1] + '/' + name\n"
            "    assert hints_digest(path).startswith('invalid-')\n"
            "    try:\n"
            "        read_hints(path)\n"
            "    except HintsError as exc:\n"
            "        print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{tmp_path}/scan.jpg.hints.json: not a hints file (a named pipe, not a regular file)",
        f"{tmp_path}/film.mp4.hints.json: not a hints file (a folder, not a regular file)"]


def test_points_are_checked_against_the_upright_photo(tmp_path):
    hints = PhotoHints((HintPoint(59.5, 10, RED), HintPoint(10, 30, RED)), "s.json")
    assert hints.check_inside(60, 31) is hints
    with pytest.raises(HintsError, match=r"s.json: point 2 \(10, 30\) lies outside the 60x30 photo"):
        hints.check_inside(60, 30)
    with pytest.raises(HintsError, match="cannot read"):
        read_hints(tmp_path / "missing.json")
    assert hints_digest(tmp_path / "missing.json") is None and hints_digest(None) is None
    (tmp_path / "empty.json").write_text(json.dumps(doc(points=[])))
    assert hints_digest(tmp_path / "empty.json") is None  # no points: as if there were no sidecar


def test_simulated_hints_are_seeded_nested_ground_truth_patches():
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[:, :25] = (176, 58, 46)
    rgb[:, 25:] = (46, 90, 176)
    ten = simulated_hints(rgb, 10, np.random.default_rng([3, 1]))
    three = simulated_hints(rgb, 3, np.random.default_rng([3, 1]))
    assert len(ten) == 10 and ten.points[:3] == three.points
    for p in ten.points:
        assert 1 <= p.x <= 48 and 1 <= p.y <= 38 and p.size == 3
        if p.x <= 22:
            assert p.color == "#b03a2e"
        elif p.x >= 27:
            assert p.color == "#2e5ab0"


# ---------------------------------------------------------------------------- the spread
def two_regions(h: int = 60, w: int = 80) -> np.ndarray:
    """L: a mid-gray left part (L 50) and a bright right part (L 90), a strong edge between."""
    lum = np.full((h, w), 50.0, np.float32)
    lum[:, w // 2 :] = 90.0
    return lum


@pytest.mark.parametrize("method", SPREAD_METHODS)
def test_the_spread_takes_the_hint_and_stops_at_a_strong_edge(method):
    lum = two_regions()
    ab = np.zeros((2, 60, 80), np.float32)
    ab[0] = 5.0  # the model's guess
    hints = place_hints(PhotoHints((HintPoint(120, 60, RED),)), (120, 160), (60, 80), SpreadParams(method=method))
    assert (hints.y0[0], hints.y1[0], hints.x0[0], hints.x1[0]) == (29, 31, 59, 61)  # [119, 122) -> [59.5, 61)
    hints = place_hints(PhotoHints((HintPoint(30, 60, RED),)), (120, 160), (60, 80), SpreadParams(method=method))
    out = spread_hints(ab, lum, hints)
    assert np.allclose(out[:, 30, 15], RED_AB, atol=1e-4)  # the hint's pixel
    assert np.abs(out[:, 32, 17] - RED_AB).max() < 3  # its neighbourhood (same lightness)
    assert np.abs(out[:, :, 45:] - ab[:, :, 45:]).max() < 0.5  # across the edge: the prediction stays
    assert np.array_equal(spread_hints(ab, lum, place_hints(PhotoHints(), (120, 160), (60, 80))), ab)
    half = spread_hints(ab, lum, hints, scale=2.0)  # saturation 2 afterwards: the hint comes out as given
    assert np.allclose(half[:, 30, 15] * 2, RED_AB, atol=1e-4)


@pytest.mark.parametrize("method", SPREAD_METHODS)
def test_the_residual_fades_with_distance(method):
    lum = np.full((40, 400), 50.0, np.float32)
    ab = np.full((2, 40, 400), 3.0, np.float32)
    hints = place_hints(PhotoHints((HintPoint(5, 20, RED),)), (40, 400), (40, 400), SpreadParams(method=method))
    change = np.abs(spread_hints(ab, lum, hints) - ab)[0, 20]
    assert abs(change[5] - abs(RED_AB[0] - 3)) < 1e-4
    assert np.all(np.diff(change[6:]) <= 1e-4)  # fading away from the hint
    assert change[-1] < 0.2 * change[5]  # a long side away: little is left


def test_the_spread_stays_on_what_the_model_took_for_the_same_thing():
    """Two regions of the same lightness the model colored differently (grass green, sky blue): a
    hint on one moves it and leaves the other as predicted (the gate by the model's colors); with
    the gate off the hint reaches both. A model that predicted gray everywhere leaves the gate open."""
    lum = np.full((60, 80), 70.0, np.float32)
    ab = np.zeros((2, 60, 80), np.float32)
    ab[:, :, :40] = np.array([-30.0, 30.0], np.float32)[:, None, None]  # green on the left
    ab[:, :, 40:] = np.array([0.0, -30.0], np.float32)[:, None, None]  # blue on the right
    hints = place_hints(PhotoHints((HintPoint(40, 60, RED),)), (120, 160), (60, 80))
    gated = spread_hints(ab, lum, hints)
    assert np.abs(gated[:, 30, 25] - RED_AB).max() < 3  # the hinted region takes the hint
    assert np.abs(gated[:, :, 45:] - ab[:, :, 45:]).max() < 0.5  # the other keeps the model's color
    open_gate = spread_hints(ab, lum, hints, SpreadParams(sigma_chroma=0))
    assert np.abs(open_gate[:, 30, 60] - ab[:, 30, 60]).max() > 10  # without the gate it leaks over
    gray = np.zeros_like(ab)
    assert np.allclose(spread_hints(gray, lum, hints), spread_hints(gray, lum, hints, SpreadParams(sigma_chroma=0)))


def test_weights_computed_ahead_are_not_changed_by_the_gate():
    from dataclasses import replace

    from colorizer.hint_spread import hint_weights

    lum = np.full((30, 40), 60.0, np.float32)
    ab = np.random.default_rng(0).normal(0, 20, (2, 30, 40)).astype(np.float32)
    hints = place_hints(PhotoHints((HintPoint(10, 10, RED), HintPoint(60, 40, RED))), (60, 80), (30, 40))
    weights = hint_weights(lum, hints)
    ahead = replace(hints, weights=weights.copy())
    assert np.array_equal(spread_hints(ab, lum, ahead), spread_hints(ab, lum, hints))
    assert np.array_equal(ahead.weights, weights)  # a film reuses them for the next frame


# ---------------------------------------------------------------------------- through colorize-batch
def gray_scene(h: int = 96, w: int = 128) -> np.ndarray:
    """A gray photo: L 50 on the left, L 90 on the right (a strong edge at w / 2)."""
    gray = np.full((h, w), 119, np.uint8)
    gray[:, w // 2 :] = 226
    return gray


def ab_at(path: Path) -> np.ndarray:
    return rgb_to_lab(read_image(path).rgb)[..., 1:]


def colorize(inputs, out: Path, model: Path, *extra: str) -> int:
    return batch_main([*map(str, inputs), "-o", str(out), "--model", str(model), "--backend", "cpu", "-q", *extra])


def report(out: Path) -> dict:
    return {Path(f["input"]).name: f for f in json.loads((out / "colorize-report.json").read_text())["files"]}


def test_hints_on_both_routes_take_the_color_and_stay_on_their_side_of_an_edge(model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(gray_scene()).save(src / "luma.jpg", quality=95)  # the JPEG luma route
    Image.fromarray(gray_scene()).save(src / "rgb.png")  # the RGB strips route
    plain = tmp_path / "plain"
    assert colorize([src], plain, model) == EXIT_OK  # a model without hint inputs, no hints: as ever
    for name in ("luma.jpg", "rgb.png"):
        write_hints(src / f"{name}.hints.json", PhotoHints((HintPoint(30, 48, RED, 5),)))
    out = tmp_path / "out"
    assert colorize([src], out, model) == EXIT_OK
    for name in ("luma.jpg", "rgb.png"):
        hinted, before = ab_at(out / name), ab_at(plain / name)
        assert np.abs(hinted[48, 30] - RED_AB).max() < 6, name  # the point clicked has the hint's chroma
        assert np.abs(hinted[40:56, 20:40] - RED_AB).max() < 10, name  # and its flat surroundings
        assert np.abs(hinted[:, 72:] - before[:, 72:]).max() < 3, name  # not across the edge
        assert np.abs(before[48, 30] - RED_AB).max() > 20, name  # (the model alone does not say red)
        assert np.abs(rgb_to_lab(read_image(out / name).rgb)[..., 0]
                      - rgb_to_lab(read_image(plain / name).rgb)[..., 0]).mean() < 1.0  # lightness kept
    files = report(out)
    assert files["luma.jpg"]["hints"] == {"sidecar": str(src / "luma.jpg.hints.json"), "count": 1,
                                          "digest": read_hints(src / "luma.jpg.hints.json").digest(),
                                          "points": [{"x": 30, "y": 48, "color": RED, "size": 5}]}
    assert report(plain)["rgb.png"]["hints"] is None
    assert not any(p.name.endswith(".hints.json") for p in out.rglob("*"))  # sidecars are not inputs


def test_a_point_lands_where_it_was_clicked_on_the_upright_photo(model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    upright = np.full((96, 64), 226, np.uint8)  # portrait, bright; its bottom-left quarter mid-gray
    upright[48:, :32] = 119
    stored = np.rot90(upright, 1)  # stored landscape; EXIF orientation 6: turn it clockwise to show it
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}})
    Image.fromarray(np.ascontiguousarray(stored)).save(src / "rot.jpg", quality=95, exif=exif)
    write_hints(src / "rot.jpg.hints.json", PhotoHints((HintPoint(12, 76, RED, 5),)))  # bottom left, upright
    assert colorize([src], tmp_path / "out", model) == EXIT_OK
    ab = ab_at(tmp_path / "out" / "rot.jpg")
    assert ab.shape[:2] == (96, 64)
    assert np.abs(ab[76, 12] - RED_AB).max() < 8
    assert np.abs(ab[60:90, 4:26] - RED_AB).max() < 12  # its quarter took the color
    others = {"top left": ab[12, 12], "top right": ab[12, 52], "bottom right": ab[76, 52]}
    assert all(np.abs(v - RED_AB).max() > 20 for v in others.values()), others
    # a point outside the upright photo (inside the stored one) is refused
    write_hints(src / "rot.jpg.hints.json", PhotoHints((HintPoint(80, 8, RED),)))
    assert colorize([src], tmp_path / "out2", model) == EXIT_SOME_FAILED
    assert "lies outside the 64x96 photo" in report(tmp_path / "out2")["rot.jpg"]["reason"]


def test_changed_hints_make_an_output_stale_and_unchanged_ones_do_not(model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(gray_scene(48, 64)).save(src / name)
    sidecar = write_hints(src / "a.png.hints.json", PhotoHints((HintPoint(10, 10, RED),)))
    out = tmp_path / "out"

    def statuses(*extra) -> dict:
        assert colorize([src], out, model, *extra) == EXIT_OK
        return {k: v["status"] for k, v in report(out).items()}

    assert statuses() == {"a.png": "done", "b.png": "done", "c.png": "done"}
    assert statuses() == {"a.png": "skipped", "b.png": "skipped", "c.png": "skipped"}
    sidecar.write_text(json.dumps(json.loads(sidecar.read_text()), indent=8))  # same hints, other spelling
    assert statuses()["a.png"] == "skipped"
    write_hints(sidecar, PhotoHints((HintPoint(10, 10, "#2e5ab0"),)))  # edited
    assert statuses() == {"a.png": "done", "b.png": "skipped", "c.png": "skipped"}
    write_hints(src / "b.png.hints.json", PhotoHints((HintPoint(5, 5, RED),)))  # added
    assert statuses() == {"a.png": "skipped", "b.png": "done", "c.png": "skipped"}
    (src / "b.png.hints.json").unlink()  # removed
    assert statuses() == {"a.png": "skipped", "b.png": "done", "c.png": "skipped"}
    assert statuses("--no-hints") == {"a.png": "done", "b.png": "skipped", "c.png": "skipped"}
    assert statuses("--no-hints") == {"a.png": "skipped", "b.png": "skipped", "c.png": "skipped"}
    # an output no journal lists (an older version's) stays done without hints, and is redone with them
    (out / ".colorize-journal.jsonl").unlink()
    assert statuses() == {"a.png": "done", "b.png": "skipped", "c.png": "skipped"}
    journal = [json.loads(line) for line in (out / ".colorize-journal.jsonl").read_text().splitlines()]
    assert {e["output"]: e.get("hints") for e in journal}["a.png"] == read_hints(sidecar).digest()


def test_no_hints_and_a_mirrored_hints_dir(model, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(gray_scene(48, 64)).save(src / "sub" / "a.png")
    Image.fromarray(gray_scene(48, 64)).save(src / "b.png")
    write_hints(src / "sub" / "a.png.hints.json", PhotoHints((HintPoint(10, 10, RED),)))
    assert colorize([src], tmp_path / "off", model, "-r", "--no-hints") == EXIT_OK
    assert all(f["hints"] is None for f in report(tmp_path / "off").values())
    assert json.loads((tmp_path / "off" / "colorize-report.json").read_text())["settings"]["images"]["hints"] is False
    # --hints-dir: the tree there mirrors the inputs; the sidecars beside the photos are not read
    hints_dir = tmp_path / "hints"
    write_hints(hints_dir / "sub" / "a.png.hints.json", PhotoHints((HintPoint(1, 2, RED), HintPoint(3, 4, RED))))
    write_hints(hints_dir / "b.png.hints.json", PhotoHints((HintPoint(5, 6, RED),)))
    assert colorize([src], tmp_path / "out", model, "-r", "--hints-dir", str(hints_dir)) == EXIT_OK
    files = report(tmp_path / "out")
    assert files["a.png"]["hints"]["sidecar"] == str(hints_dir / "sub" / "a.png.hints.json")
    assert files["a.png"]["hints"]["count"] == 2 and files["b.png"]["hints"]["count"] == 1
    # two input folders: each has its subfolder in the hints tree, as in the output folder
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(gray_scene(48, 64)).save(other / "c.png")
    write_hints(hints_dir / "other" / "c.png.hints.json", PhotoHints((HintPoint(7, 8, RED),)))
    write_hints(hints_dir / "in" / "b.png.hints.json", PhotoHints((HintPoint(9, 9, RED),)))
    assert colorize([src, other], tmp_path / "two", model, "--hints-dir", str(hints_dir)) == EXIT_OK
    files = report(tmp_path / "two")
    assert files["c.png"]["hints"]["points"] == [{"x": 7, "y": 8, "color": RED}]
    assert files["b.png"]["hints"]["points"] == [{"x": 9, "y": 9, "color": RED}]


def test_a_malformed_sidecar_fails_its_photo_only(model, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("good.png", "bad.png", "film.png"):
        Image.fromarray(gray_scene(48, 64)).save(src / name)
    (src / "bad.png.hints.json").write_text("{oops")
    (src / "film.png.hints.json").write_text(json.dumps(doc(frames=[])))
    assert colorize([src], tmp_path / "out", model) == EXIT_SOME_FAILED
    files = report(tmp_path / "out")
    assert files["good.png"]["status"] == "done"
    assert files["bad.png"]["status"] == "failed" and "bad.png.hints.json: not valid JSON" in files["bad.png"]["reason"]
    assert files["film.png"]["status"] == "failed" and "film hints" in files["film.png"]["reason"]
    assert not (tmp_path / "out" / "bad.png").exists()
    err = capsys.readouterr().err
    assert "failed: " in err and "bad.png.hints.json: not valid JSON" in err
    (src / "bad.png.hints.json").unlink()  # fixed: the re-run does it
    (src / "film.png.hints.json").unlink()
    assert colorize([src], tmp_path / "out", model) == EXIT_OK


def test_the_run_says_how_many_photos_have_hints(model, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(gray_scene(48, 64)).save(src / name)
    write_hints(src / "a.png.hints.json", PhotoHints((HintPoint(1, 1, RED),)))
    assert batch_main([str(src), "-o", str(tmp_path / "out"), "--model", str(model), "--backend", "cpu"]) == EXIT_OK
    assert "1 photo with color hints" in capsys.readouterr().err


def test_hints_are_applied_the_same_on_ray(model, tmp_path):
    ray = pytest.importorskip("ray")
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(gray_scene()).save(src / "luma.jpg", quality=95)
    Image.fromarray(gray_scene()).save(src / "rgb.png")
    for name in ("luma.jpg", "rgb.png"):
        write_hints(src / f"{name}.hints.json", PhotoHints((HintPoint(30, 48, RED, 5),)))
    assert colorize([src], tmp_path / "local", model) == EXIT_OK
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert colorize([src], tmp_path / "ray", model, "--ray") == EXIT_OK
        for name in ("luma.jpg", "rgb.png"):
            assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
        assert report(tmp_path / "ray")["rgb.png"]["hints"]["count"] == 1
        write_hints(src / "rgb.png.hints.json", PhotoHints((HintPoint(31, 48, RED, 5),)))
        assert colorize([src], tmp_path / "ray", model, "--ray") == EXIT_OK
        assert {k: v["status"] for k, v in report(tmp_path / "ray").items()} == {"luma.jpg": "skipped",
                                                                                 "rgb.png": "done"}
    finally:
        if started:
            ray.shutdown()


def test_colorize_in_memory_takes_hints_too(model):
    from colorizer.colorize import colorize as colorize_array
    from colorizer.desktop.backends import open_backend

    backend = open_backend(model, "cpu")
    rgb = np.repeat(gray_scene()[..., None], 3, axis=2)
    out = colorize_array(rgb, backend.predict, 32, backend.contract.size_multiple,
                         hints=PhotoHints((HintPoint(30, 48, RED, 5),)))
    ab = cv2.cvtColor(out, cv2.COLOR_RGB2Lab)[..., 1:]
    assert np.abs(ab[48, 30] - RED_AB).max() < 3
    assert prepare(rgb, 32, 8).with_hints(None, (96, 128)).hints is None


def test_colorizer_eval_simulates_the_same_hints_for_the_same_seed(tmp_path):
    from synthetic import synthetic_photo, write_rgb

    from colorizer.trainer.evaluate import evaluate_predictor

    files = [write_rgb(tmp_path / f"p{i}.png", synthetic_photo(i, 60, 80)) for i in range(3)]

    def gray_model(l_norm):  # a model that adds no color: what the hints bring is all there is
        return np.zeros((l_norm.shape[0], 2, *l_norm.shape[2:]), np.float32)

    def run(hints, seed):
        return evaluate_predictor(gray_model, files, 32, 8, progress=False, hints=hints, hints_seed=seed)

    none, three, again, other = run(0, 0), run(3, 0), run(3, 0), run(3, 1)
    assert "hints" not in none and three["hints"]["per_photo"] == 3
    assert three["model"] == again["model"] and three["hints"] == again["hints"]  # reproducible
    assert other["model"]["delta_e"] != three["model"]["delta_e"]
    assert three["model"]["delta_e"] < none["model"]["delta_e"]  # the hints' colors help
    assert three["hints"]["hint_delta_e"] < 6


def test_a_films_sidecar_is_applied_and_said_so(model, tmp_path, capsys):
    reel = tmp_path / "reel"
    reel.mkdir()
    for i in range(3):
        Image.fromarray(gray_scene(48, 64)).save(reel / f"f{i:03d}.png")
    write_hints(tmp_path / "reel.hints.json", FilmHints((FrameHints(1, (HintPoint(3, 3, RED),)),)))
    assert batch_main([str(reel), "-o", str(tmp_path / "out"), "--model", str(model), "--backend", "cpu",
                       "--frames"]) == EXIT_OK
    assert "1 frame folder with color hints" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["f000.png", "f001.png", "f002.png"]
    assert report(tmp_path / "out")["reel"]["hints"]["key_frames"][0]["frame"] == 1  # tests/test_film_hints.py
