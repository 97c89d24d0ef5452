"""Runs broken the way users and machines break them: an input named twice, two folders of one name,
the output folder that is the input folder, a report path onto an input, a closed or broken stderr,
a run lock or journal this process cannot write, a sidecar link to nowhere, odd but valid sidecars.
Each checks the exit code, the report, the outputs on disk and that the inputs are unchanged."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from faults import CLI, check_outputs, digests, make_photos, read_report

from colorizer.desktop import cli
from colorizer.desktop.cli import EXIT_OK, EXIT_SETUP, EXIT_SOME_FAILED
from colorizer.desktop.cli import main as batch_main
from colorizer.desktop.pipeline import journal as journal_module
from colorizer.desktop.pipeline.journal import JOURNAL_NAME, LOCK_NAME, OutputFolderBusy, RunJournal
from colorizer.desktop.pipeline.tasks import plan
from colorizer.hints import hints_digest, read_photo_hints

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX flock, links and pipes")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs") / "photos"
    make_photos(folder, 3, 40, 56)
    return folder


def _run(model: Path, *args) -> int:
    return batch_main([*map(str, args), "--model", str(model), "--backend", "cpu", "-q"])


def _statuses(report: Path) -> dict[str, str]:
    return {Path(f["input"]).name: f["status"] for f in read_report(report)["files"]}


# --------------------------------------------------------------------------- inputs named twice
@pytest.mark.parametrize("twice", [("{p}", "{p}"), ("{p}", "{p}/p01.jpg"), ("{p}/p01.jpg", "{p}"), ("{p}", "{p}/./")])
def test_an_input_named_twice_is_colorized_once(model, photos, tmp_path, twice):
    before = digests(photos)
    out = tmp_path / "out"
    code = _run(model, *(t.format(p=photos) for t in twice), "-o", out)
    report = check_outputs(out, out / "colorize-report.json")
    assert code == EXIT_OK, report["files"]
    assert report["summary"] == {"done": 3, "skipped": 0, "failed": 0, "cancelled": 0, "total": 3}
    assert sorted(p.name for p in out.glob("*.jpg")) == ["p00.jpg", "p01.jpg", "p02.jpg"]  # one folder: no subfolder
    assert digests(photos) == before


def test_two_input_folders_of_one_name_each_get_their_own_place(tmp_path):
    for side in "xy":
        make_photos(tmp_path / side / "photos", 2, 24, 32)
        (tmp_path / "hints" / side / "photos").mkdir(parents=True)
    tasks, rejected = plan([tmp_path / "x" / "photos", tmp_path / "y" / "photos"], tmp_path / "out",
                           hints_dir=tmp_path / "hints")
    assert not rejected
    assert sorted(str(t.output.relative_to(tmp_path / "out")) for t in tasks) == [
        "x/photos/p00.jpg", "x/photos/p01.jpg", "y/photos/p00.jpg", "y/photos/p01.jpg"]
    for t in tasks:  # the hints tree mirrors the inputs as the output tree does
        assert t.hints == tmp_path / "hints" / t.output.relative_to(tmp_path / "out").with_suffix(".jpg.hints.json")
    frames, rejected = plan([tmp_path / "x" / "photos", tmp_path / "y" / "photos"], tmp_path / "out", frames=True,
                            hints_dir=tmp_path / "hints")
    assert not rejected
    assert [t.output for t in frames] == [tmp_path / "out" / "x" / "photos", tmp_path / "out" / "y" / "photos"]
    assert [t.hints for t in frames] == [tmp_path / "hints" / "x" / "photos.hints.json",
                                         tmp_path / "hints" / "y" / "photos.hints.json"]


def test_two_files_of_one_name_named_as_inputs_each_get_their_own_place(tmp_path):
    """``a/film.mp4 b/film.mp4``: the second was refused as "already the output of" the first."""
    for side in "ab":
        make_photos(tmp_path / "tapes" / side, 1, 24, 32)
    make_photos(tmp_path / "solo", 1, 24, 32)
    (tmp_path / "solo" / "p00.jpg").rename(tmp_path / "solo" / "other.jpg")
    tapes = tmp_path / "tapes"
    named = [tapes / "a" / "p00.jpg", tapes / "b" / "p00.jpg", tmp_path / "solo" / "other.jpg"]
    tasks, rejected = plan(named, tmp_path / "out", hints_dir=tmp_path / "hints")
    assert not rejected
    assert [str(t.output.relative_to(tmp_path / "out")) for t in tasks] == ["a/p00.jpg", "b/p00.jpg", "other.jpg"]
    assert [t.hints for t in tasks] == [tmp_path / "hints" / "a" / "p00.jpg.hints.json",
                                        tmp_path / "hints" / "b" / "p00.jpg.hints.json",
                                        tmp_path / "hints" / "other.jpg.hints.json"]


# --------------------------------------------------------------------------- output and report paths
@pytest.mark.parametrize("through_a_link", [False, True])
def test_an_output_folder_that_is_the_input_folder_stops_before_anything(model, tmp_path, capsys, through_a_link):
    folder = tmp_path / "scans"
    make_photos(folder, 2, 24, 32)
    before = digests(folder)
    out = folder
    if through_a_link:
        out = tmp_path / "link"
        out.symlink_to(folder)
    code = _run(model, folder, "-o", out, "--format", "png")  # PNGs beside the JPEGs: the next run's inputs
    err = capsys.readouterr().err
    assert code == EXIT_SETUP and "is the output folder" in err and "Traceback" not in err
    assert digests(folder) == before  # nothing written: no output, no report, no journal


@pytest.mark.parametrize("where", ["input", "output", "journal", "output folder"])
def test_a_report_path_onto_an_input_or_an_output_stops_before_anything(model, tmp_path, capsys, where):
    """``--report photos/p01.jpg`` replaced that input with the report, after colorizing it."""
    photos = tmp_path / "photos"  # its own: a report written over one must not spoil the other tests' inputs
    make_photos(photos, 3, 24, 32)
    out = tmp_path / "out"
    assert _run(model, photos, "-o", out) == EXIT_OK
    before, outputs = digests(photos), digests(out)
    report = {"input": photos / "p01.jpg", "output": out / "p01.jpg", "journal": out / JOURNAL_NAME,
              "output folder": Path(f"{out}/")}[where]
    code = _run(model, photos, "-o", out, "--overwrite", "--report", report)
    err = capsys.readouterr().err
    said = "a folder of that name exists" if where == "output folder" else "would replace"
    assert code == EXIT_SETUP and f"the report {report}" in err and said in err
    assert digests(photos) == before and digests(out) == outputs


# --------------------------------------------------------------------------- stderr
def _child(args: list[str], **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.DEVNULL, env=env, **popen)


@pytest.mark.parametrize("stderr", ["closed", "reader gone"])
def test_a_closed_or_broken_stderr_does_not_stop_the_run(model, photos, tmp_path, stderr):
    """``colorize-batch ... 2>&-`` and ``colorize-batch ... 2>&1 | head -1``: the first progress bar raised
    (AttributeError, BrokenPipeError) before any file was done, exit 1 and no report."""
    out = tmp_path / "out"
    args = [photos, "-o", out, "--model", model, "--backend", "cpu"]  # progress bars on: they write the most
    if stderr == "closed":
        proc = _child(args, stderr=subprocess.PIPE, preexec_fn=lambda: os.close(2))
    else:
        proc = _child(args, stderr=subprocess.PIPE)
    proc.stderr.close()  # nobody reads it any more: every write gets EPIPE
    assert proc.wait(timeout=120) == EXIT_OK
    report = check_outputs(out, out / "colorize-report.json")
    assert report["summary"]["done"] == 3


def test_a_failure_line_is_one_write(monkeypatch):
    """Two writer threads' failure lines (with -q, no progress bar) used to run into one another: the
    line and its newline were two writes."""
    writes: list[str] = []

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    monkeypatch.delitem(sys.modules, "tqdm", raising=False)
    monkeypatch.setattr(sys, "stderr", Stream())
    cli.say("failed: a.jpg: truncated")
    assert writes == ["failed: a.jpg: truncated\n"]


# --------------------------------------------------------------------------- run lock and journal
@pytest.mark.parametrize("lock", ["a folder", "a link to nowhere"])
def test_an_unusable_run_lock_still_checks_the_outputs(model, photos, tmp_path, lock):
    """Where the run lock could not be opened, every existing output was taken as finished: one cut
    short was reported skipped (exit 0) and left as it was."""
    out = tmp_path / "out"
    assert _run(model, photos, "-o", out) == EXIT_OK
    (out / LOCK_NAME).unlink()
    if lock == "a folder":
        (out / LOCK_NAME).mkdir()
    else:
        (out / LOCK_NAME).symlink_to(tmp_path / "missing" / "lock")
    os.truncate(out / "p01.jpg", 200)
    assert _run(model, photos, "-o", out) == EXIT_OK
    report = check_outputs(out, out / "colorize-report.json")
    assert _statuses(out / "colorize-report.json") == {"p00.jpg": "skipped", "p01.jpg": "done", "p02.jpg": "skipped"}
    assert report["summary"]["done"] == 1


def _refuse_writing(monkeypatch, path: Path) -> None:
    """``os.open`` (everywhere) as for another user's file: ``path``, as it is now, cannot be opened to write."""
    real_open, inode = os.open, os.stat(path).st_ino

    def fake_open(file, flags, *args, **kwargs):
        writing = flags & (os.O_WRONLY | os.O_RDWR)
        if writing and Path(file) == path and os.path.exists(file) and os.stat(file).st_ino == inode:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(journal_module.os, "open", fake_open)


def test_a_run_lock_this_process_may_not_write_still_keeps_a_second_run_out(tmp_path, monkeypatch):
    """Another user's lock file (0644 in a shared folder) cannot be opened to write: it is locked read-only,
    and the folder stays one run's at a time."""
    RunJournal.open(tmp_path).close()
    _refuse_writing(monkeypatch, tmp_path / LOCK_NAME)
    first = RunJournal.open(tmp_path)
    try:
        with pytest.raises(OutputFolderBusy):
            RunJournal.open(tmp_path)
    finally:
        first.close()


def test_a_journal_this_process_may_not_write_is_replaced_and_written(model, photos, tmp_path, monkeypatch):
    """Another user's journal cannot be appended to: the run used to go on without any journal (every
    existing output then taken as finished); now it is replaced by this run's copy (the folder is
    writable) and what this run finishes is listed."""
    out = tmp_path / "out"
    assert _run(model, photos, "-o", out) == EXIT_OK
    _refuse_writing(monkeypatch, out / JOURNAL_NAME)
    assert _run(model, photos, "-o", out, "--overwrite") == EXIT_OK
    monkeypatch.undo()
    listed = {}
    for line in (out / JOURNAL_NAME).read_text().splitlines():
        entry = json.loads(line)
        listed[entry["output"]] = (entry["size"], entry["mtime_ns"])
    on_disk = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in out.glob("*.jpg")}
    assert listed == on_disk  # the outputs this run wrote, as they are


# --------------------------------------------------------------------------- sidecars
def test_a_sidecar_link_to_nowhere_fails_its_photo_as_the_dry_run_says(model, photos, tmp_path, capsys):
    """A photo colorized without hints, then given a sidecar that links to a file that is not there: the
    dry run said "fails", the run skipped it (exit 0)."""
    folder = tmp_path / "in"
    make_photos(folder, 2, 24, 32)
    out = tmp_path / "out"
    assert _run(model, folder, "-o", out) == EXIT_OK
    (folder / "p01.jpg.hints.json").symlink_to("p01-hints-moved.json")
    capsys.readouterr()
    assert batch_main([str(folder), "-o", str(out), "--model", str(model), "--dry-run"]) == EXIT_OK
    assert "p01.jpg (image, fails:" in capsys.readouterr().out
    assert _run(model, folder, "-o", out) == EXIT_SOME_FAILED
    err = capsys.readouterr().err
    assert "p01.jpg.hints.json: a link to p01-hints-moved.json, which does not exist" in err
    assert _statuses(out / "colorize-report.json") == {"p00.jpg": "skipped", "p01.jpg": "failed"}
    assert hints_digest(tmp_path / "no-such.hints.json") is None  # no sidecar at all: no hints


def test_odd_but_valid_sidecars_are_read(model, tmp_path):
    """A byte-order mark, 500 points, points on the last row and column, the same point three times,
    upper-case and 3-digit colors, a sidecar that is a link to another photo's: all colorized."""
    folder = tmp_path / "in"
    make_photos(folder, 4, 40, 56)

    def sidecar(name: str, points: list, bom: bool = False) -> None:
        text = json.dumps({"format": "colorizer-hints", "version": 1, "points": points})
        (folder / f"{name}.hints.json").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())

    sidecar("p00.jpg", [{"x": 3, "y": 4, "color": "#B03A2E"}], bom=True)
    sidecar("p01.jpg", [{"x": i % 56, "y": i % 40, "color": "#3a6ea5"} for i in range(500)])
    sidecar("p02.jpg", [{"x": 55, "y": 39, "color": "#F0A"}, {"x": 55.9, "y": 39.9, "color": "#0f0", "size": 1}]
            + [{"x": 10, "y": 10, "color": "#abc"}] * 3)
    (folder / "p03.jpg.hints.json").symlink_to("p00.jpg.hints.json")
    assert read_photo_hints(folder / "p00.jpg.hints.json").points[0].color == "#b03a2e"
    out = tmp_path / "out"
    assert _run(model, folder, "-o", out) == EXIT_OK
    report = check_outputs(out, out / "colorize-report.json")
    counts = {Path(f["input"]).name: f["hints"]["count"] for f in report["files"]}
    assert counts == {"p00.jpg": 1, "p01.jpg": 500, "p02.jpg": 5, "p03.jpg": 1}
    sidecar("p00.jpg", [{"x": 3, "y": 4, "color": "#2eb03a"}])  # the link's target edited: both redone
    assert _run(model, folder, "-o", out) == EXIT_OK
    assert _statuses(out / "colorize-report.json") == {"p00.jpg": "done", "p01.jpg": "skipped",
                                                        "p02.jpg": "skipped", "p03.jpg": "done"}


def test_a_warning_about_a_file_names_it_and_goes_into_its_report_entry(model, tmp_path, capsys):
    """"dropping a damaged EXIF block" named no file (the media code knows no path), in a run of many;
    now the log line names it and the report lists it with that file, and only that file."""
    from PIL import Image

    make_photos(tmp_path / "in", 2, 24, 32)
    damaged = tmp_path / "in" / "damaged exif.jpg"
    Image.open(tmp_path / "in" / "p00.jpg").save(damaged, exif=b"Exif\x00\x00not a TIFF header at all")
    assert _run(model, tmp_path / "in", "-o", tmp_path / "out") == EXIT_OK
    err = capsys.readouterr().err
    assert f"{damaged}: dropping a damaged EXIF block" in err
    entries = {Path(f["input"]).name: f for f in read_report(tmp_path / "out" / "colorize-report.json")["files"]}
    assert entries["damaged exif.jpg"]["warnings"] == [f"{damaged}: dropping a damaged EXIF block (no valid TIFF "
                                                       "header or first IFD)"]
    assert "warnings" not in entries["p00.jpg"] and "warnings" not in entries["p01.jpg"]
