"""Runs at archive scale, broken on purpose with small data: names of 255 bytes in any characters, a name
that leaves no room for its sidecar's, a tree deeper than PATH_MAX, a folder or file that cannot be looked
at, names with newlines and bytes that are not UTF-8 on a strict terminal, planning a deep tree, a photo
above the decoders' default pixel cap that the memory allows, an odd-sized scan's L halved without a copy,
a sidecar with too many points. The figures at full scale (100-400 MP photos, 20,000 files) come from
``bench/bench_memory.py --large`` and the session's scripts, not from these tests."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from faults import make_photos, read_report
from PIL import Image

from colorizer.desktop import cli
from colorizer.desktop.cli import EXIT_OK, EXIT_SOME_FAILED
from colorizer.desktop.cli import main as batch_main
from colorizer.desktop.core import Status
from colorizer.desktop.media import image_read
from colorizer.desktop.pipeline import batch as batch_module
from colorizer.desktop.pipeline import journal as journal_module
from colorizer.desktop.pipeline.tasks import Rejected, plan
from colorizer.fileio import atomic_write
from colorizer.hints import MAX_POINTS

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX names, links and PATH_MAX")

NAME_MAX = 255


def _run(model: Path, *args) -> int:
    return batch_main([*map(str, args), "--model", str(model), "--backend", "cpu", "-q"])


def _statuses(report: Path) -> dict[str, str]:
    return {Path(f["input"]).name: f["status"] for f in read_report(report)["files"]}


def _gray_png(path: Path, height: int = 24, width: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width), dtype=np.uint8)).save(path)
    return path


def _long_names() -> list[str]:
    """Names of 252-255 bytes: ASCII, 2-byte and 4-byte characters."""
    return ["a" * 251 + ".png", "\u00e9" * 125 + ".png", "\U0001F600" * 62 + ".png"]


# --------------------------------------------------------------------------- names of 255 bytes
@pytest.mark.parametrize("name", ["\U0001F600" * 62 + ".png", "\u5b57" * 83 + ".png", "run." + "x" * 250],
                         ids=["emoji", "3-byte", "long suffix"])
def test_a_name_of_up_to_255_bytes_in_any_characters_can_be_written(tmp_path, name):
    """The temporary file beside an output kept 100 *characters* of its stem (and all of its suffix):
    up to 400 bytes of emoji, a name the file system refuses (ENAMETOOLONG), so such a photo always
    failed to write."""
    assert len(os.fsencode(name)) <= NAME_MAX
    path = atomic_write(tmp_path / name, b"colorized")
    assert path.read_bytes() == b"colorized"
    assert os.listdir(tmp_path) == [name]


def test_long_names_are_colorized_once_and_skipped_on_the_next_run_as_the_dry_run_says(model, tmp_path, capsys):
    """A photo of a name of 245 bytes or more has no room for ``NAME.hints.json`` beside it: opening that
    path failed with ENAMETOOLONG, which the run took for an unreadable sidecar, so its output never
    counted as finished: every run colorized it again, while --dry-run said it would skip it."""
    photos = tmp_path / "in"
    for name in _long_names():
        _gray_png(photos / name)
    out = tmp_path / "out"
    assert _run(model, photos, "-o", out) == EXIT_OK
    assert set(_statuses(out / "colorize-report.json").values()) == {"done"}
    capsys.readouterr()
    assert _run(model, photos, "-o", out, "--dry-run") == EXIT_OK
    assert capsys.readouterr().out.count("skip: finished") == 3
    assert _run(model, photos, "-o", out) == EXIT_OK
    assert set(_statuses(out / "colorize-report.json").values()) == {"skipped"}


# --------------------------------------------------------------------------- trees the listing cannot reach
def _tree_deeper_than_path_max(root: Path) -> tuple[Path, Path]:
    """A photo at the top of ``root`` and one in a folder whose path is longer than PATH_MAX (made with
    folder descriptors: no single path to it may be given). Returns (top photo, the first folder whose
    path is longer than PATH_MAX)."""
    top = _gray_png(root / "top.png")
    data = top.read_bytes()
    fd = os.open(root, os.O_RDONLY)
    length, beyond = len(os.fsencode(os.path.abspath(root))), None
    path = root
    try:
        while length < os.pathconf(root, "PC_PATH_MAX") + 300:
            name = "d" * 250
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, length, path = inner, length + 251, path / name
            if beyond is None and length >= os.pathconf(root, "PC_PATH_MAX"):
                beyond = path
        photo = os.open("deep.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(photo, data)
        os.close(photo)
    finally:
        os.close(fd)
    return top, beyond


def test_a_folder_deeper_than_path_max_is_reported_not_left_out(tmp_path):
    """os.walk stops in silence at a folder it cannot list: the photos below were missing from the run and
    its report, and the run said it had done everything (exit 0)."""
    top, beyond = _tree_deeper_than_path_max(tmp_path / "in")
    tasks, rejected = plan([tmp_path / "in"], tmp_path / "out", recursive=True)
    assert [t.source for t in tasks] == [top]
    assert len(rejected) == 1
    assert rejected[0].source.name == beyond.name and "PATH_MAX" in rejected[0].reason


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    """The same for a folder this user may not read (simulated: the tests may run as root)."""
    _gray_png(tmp_path / "in" / "a.png")
    _gray_png(tmp_path / "in" / "locked" / "b.png")
    scandir = os.scandir

    def refuse(path=".", *args):
        if Path(os.fsdecode(path)).name == "locked":
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return scandir(path, *args)

    monkeypatch.setattr(os, "scandir", refuse)
    tasks, rejected = plan([tmp_path / "in"], tmp_path / "out", recursive=True)
    assert [t.source.name for t in tasks] == ["a.png"]
    assert [(r.source.name, "permission denied" in r.reason) for r in rejected] == [("locked", True)]


def test_a_file_that_cannot_be_looked_at_is_reported_and_the_plan_goes_on(tmp_path, monkeypatch):
    """A folder that may be listed but not searched (mode r--) names its files, and looking at one fails
    (EACCES; simulated: the tests may run as root): Path.is_file raised, and the whole run stopped with
    a traceback before anything was done. A link in a loop is still no file, in silence."""
    _gray_png(tmp_path / "in" / "a.png")
    _gray_png(tmp_path / "in" / "secret.png")
    (tmp_path / "in" / "loop.png").symlink_to(tmp_path / "in" / "loop.png")
    real_stat = os.stat

    def refuse(path, *args, **kwargs):
        if Path(os.fsdecode(path)).name == "secret.png":
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", refuse)
    tasks, rejected = plan([tmp_path / "in"], tmp_path / "out", recursive=True)
    assert [t.source.name for t in tasks] == ["a.png"]
    assert [(r.source.name, "permission denied" in r.reason) for r in rejected] == [("secret.png", True)]


# --------------------------------------------------------------------------- odd names on the terminal
def _strict_stdout(monkeypatch) -> io.BytesIO:
    """stdout as under en_US.UTF-8: strict UTF-8 (Python's C.UTF-8 default escapes surrogates instead)."""
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True))
    return raw


def test_dry_run_prints_names_with_odd_bytes_and_newlines_one_line_each(model, tmp_path, monkeypatch):
    """--dry-run printed a name holding a byte that is not UTF-8 with print(): UnicodeEncodeError and a
    traceback on a strict UTF-8 terminal; a name with a newline took two lines."""
    folder = tmp_path / "in"
    names = [os.fsdecode(b"latin1_\xe9t\xe9.png"), "line\nbreak.png", "esc\x1b[2Jape.png", "plain.png"]
    for name in names:
        _gray_png(folder / name)
    raw = _strict_stdout(monkeypatch)
    assert batch_main([str(folder), "-o", str(tmp_path / "out"), "--dry-run", "-q"]) == EXIT_OK
    lines = raw.getvalue().decode("utf-8").splitlines()
    assert len(lines) == len(names)
    assert any("latin1_\\xe9t\\xe9.png -> " in line for line in lines)
    assert any("line\\nbreak.png -> " in line for line in lines)
    assert all("\x1b" not in line for line in lines)


def test_a_failure_line_naming_a_file_with_a_newline_is_one_line():
    source = Path("in/line\nbreak.png")
    line = cli.failure_line(Rejected(source, f"cannot read image {str(source)!r}: truncated\nat byte 12"))
    assert "\n" not in line and line.startswith("failed: in/line\\nbreak.png: ")
    line = cli.failure_line(Rejected(source, f"{source}: not an image"))
    assert line == "failed: in/line\\nbreak.png: not an image"


# --------------------------------------------------------------------------- large photos
def test_a_photo_above_the_default_pixel_cap_is_colorized_when_its_memory_is_allowed(model, tmp_path, monkeypatch):
    """The run refused any photo above read_image's default 300 MP, however much memory --max-memory
    allowed, with advice no user could follow ("raise max_pixels"); the memory a photo may take is what
    decides (measured: a 400 MP PNG colorized in 3.5 GB). The default cap is lowered here to a small
    photo's size; the journal's check of an unlisted output takes such an output too."""
    monkeypatch.setitem(image_read.read_image.__kwdefaults__, "max_pixels", 1000)
    photos = tmp_path / "in"
    make_photos(photos, 2, 40, 56)  # 2240 pixels each
    out = tmp_path / "out"
    assert _run(model, photos, "-o", out, "--max-memory", "1") == EXIT_OK
    assert set(_statuses(out / "colorize-report.json").values()) == {"done"}
    assert journal_module._image_is_complete(out / "p00.jpg")

    assert _run(model, photos, "-o", tmp_path / "small", "--max-memory", "0.00001") == EXIT_SOME_FAILED
    reasons = [f["reason"] for f in read_report(tmp_path / "small" / "colorize-report.json")["files"]]
    assert all("--max-memory" in r for r in reasons), reasons


@pytest.mark.parametrize("shape", [(1001, 1500), (1000, 1501), (1001, 1501), (1, 7), (7, 1)])
def test_an_odd_sized_gray_scan_is_halved_to_its_chroma_size_without_a_copy_of_its_l(shape):
    """The JPEG luma route averages L over each chroma sample's 2x2 pixels; for a scan of an odd size it
    padded a copy of the whole float32 L first: a 150 MP scan of 14141x10606 peaked at 1.86 GB, 0.59 GB
    above one of 15000x10000. Now the edge is averaged on its own: the same values, bit for bit."""
    import tracemalloc

    import cv2

    from colorizer.desktop.media.yuv import LumaPicture

    height, width = shape
    plane = (np.random.default_rng(0).random(shape, dtype=np.float32) * 100).astype(np.float32)
    padded = cv2.copyMakeBorder(plane, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
    expected = cv2.resize(padded, ((width + 1) // 2, (height + 1) // 2), interpolation=cv2.INTER_AREA)
    picture = LumaPicture.jfif(np.zeros(shape, np.uint8))
    tracemalloc.start()
    try:
        halved = picture.l_chroma(plane)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(halved, expected)
    if plane.nbytes > 1 << 20:
        assert peak < 0.75 * plane.nbytes, (peak, plane.nbytes)  # the halved L and one temporary of its size


def test_a_sidecar_with_one_point_too_many_fails_its_photo_before_it_is_decoded(model, tmp_path, monkeypatch):
    """A sidecar it cannot use was read after the photo was decoded: on a 150 MP scan 1.7 s and 0.6 GB
    spent on a photo that then failed. Exactly MAX_POINTS points still colorize it."""
    photos = tmp_path / "in"
    make_photos(photos, 2, 40, 56)
    rng = np.random.default_rng(0)
    for path, count in zip(sorted(photos.glob("*.jpg")), (MAX_POINTS, MAX_POINTS + 1), strict=True):
        points = [{"x": int(rng.integers(0, 56)), "y": int(rng.integers(0, 40)), "color": "#b03a2e"}
                  for _ in range(count)]
        (path.parent / (path.name + ".hints.json")).write_text(
            json.dumps({"format": "colorizer-hints", "version": 1, "points": points}))
    decoded: list[str] = []
    read_image = batch_module.read_image

    def counting(path, **kwargs):
        decoded.append(Path(path).name)
        return read_image(path, **kwargs)

    monkeypatch.setattr(batch_module, "read_image", counting)
    assert _run(model, photos, "-o", tmp_path / "out") == EXIT_SOME_FAILED
    report = read_report(tmp_path / "out" / "colorize-report.json")
    done, failed = (next(f for f in report["files"] if Path(f["input"]).name == n) for n in ("p00.jpg", "p01.jpg"))
    assert done["status"] == Status.DONE.value and done["hints"]["count"] == MAX_POINTS
    assert failed["status"] == Status.FAILED.value and f"at most {MAX_POINTS}" in failed["reason"]
    assert decoded == ["p00.jpg"]


# --------------------------------------------------------------------------- many files
def test_planning_a_deep_tree_resolves_each_folder_once_not_each_file(tmp_path, monkeypatch):
    """Planning resolved every input and output path (and the CLI's report check each again), one
    ``lstat`` per folder level each time: 20,000 files 30 folders deep took 3.8 s to plan and check, the
    time grew with files x depth. Each folder is resolved once now: a file more costs a few calls."""
    deep = tmp_path.joinpath("in", *[f"level{i}" for i in range(20)])
    data = _gray_png(deep / "p000.png").read_bytes()
    calls = {"lstat": 0}
    lstat = os.lstat

    def counting(path, *args, **kwargs):
        calls["lstat"] += 1
        return lstat(path, *args, **kwargs)

    def lstat_calls_to_plan(files: int) -> int:
        for i in range(files):
            (deep / f"p{i:03d}.png").write_bytes(data)
        out, calls["lstat"] = tmp_path / "out", 0
        with monkeypatch.context() as patched:
            patched.setattr(os, "lstat", counting)
            tasks, rejected = plan([tmp_path / "in"], out, recursive=True)
            assert cli._report_problem(out / "report.json", tasks, rejected, out) is None
        assert len(tasks) == files and not rejected
        return calls["lstat"]

    fewer, more = lstat_calls_to_plan(30), lstat_calls_to_plan(90)
    assert (more - fewer) / 60 <= 4, (fewer, more)


def test_a_float_tiff_is_made_16_bit_a_strip_at_a_time(tmp_path):
    """A float RGB TIFF (film scanners write them) was converted to 16 bits whole, through four
    temporaries of its size: a 60 MP scan peaked at 3.8 GB, twice what the run's memory check allows
    for it. Now a strip at a time: traced, 5.3x the float samples before, 4.1x now."""
    import tracemalloc

    import numpy as np
    import tifffile

    from colorizer.desktop.media.image_read import read_image

    rng = np.random.default_rng(3)
    samples = rng.random((600, 800, 3), dtype=np.float32)
    samples[0, 0] = [np.nan, -1.0, 2.0]  # taken as 0, clipped to 0 and to 1
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, samples, photometric="rgb")
    tracemalloc.start()
    try:
        image = read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = (np.clip(np.nan_to_num(samples), 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    assert image.bit_depth == 16 and np.array_equal(image.pixels, expected)
    assert peak < 4.7 * samples.nbytes, f"{peak / samples.nbytes:.1f}x the float samples"


def test_a_float64_scan_is_judged_by_the_memory_its_samples_take(tmp_path):
    """A float64 RGB TIFF takes 48 bytes a pixel to colorize (measured, 30 MP); the check counted 32
    (any sample deeper than 8 bits as 16-bit), so a photo that does not fit was let through to run
    the machine out of memory. The estimate now grows with the bytes a sample takes."""
    import numpy as np
    import tifffile

    from colorizer.desktop.media.image_read import ImageReadError, read_image
    from colorizer.desktop.pipeline import stages
    from colorizer.desktop.pipeline.settings import ImageSettings

    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, np.random.default_rng(4).random((60, 80, 3)), photometric="rgb")  # float64
    measured = 48 * 60 * 80
    settings = ImageSettings(max_memory_mb=1.2 * measured / 1e6)  # room for what it takes, not more

    def admit(header):
        stages.check_memory(path, header, settings)

    with pytest.raises(ImageReadError, match="more than the"):
        read_image(path, admit=admit)
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.random.default_rng(4).random((30, 40, 3)).astype(np.float32), photometric="rgb")
    assert read_image(small, admit=lambda header: stages.check_memory(small, header, settings)).bit_depth == 16
