"""Nothing lost under faults: a full disk, signals, kill -9 and resume, an unwritable output folder,
a run beside another. Each test checks that every output is complete or absent, that the report
exists and matches the disk, that no temporary file is left and that the inputs are unchanged."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults import (
    CLI,
    check_outputs,
    digests,
    is_valid_image,
    make_photos,
    partial_files,
    read_report,
    start,
    wait_for_outputs,
)

from colorizer import fileio
from colorizer.desktop.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_SETUP, EXIT_SOME_FAILED, EXIT_TERMINATED
from colorizer.desktop.cli import main as batch_main
from colorizer.desktop.pipeline.journal import LOCK_NAME, OutputFolderBusy, RunJournal

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals, flock and mounts")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs") / "in"
    make_photos(folder, 24, 360, 480)
    return folder


def _tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


class _SmallDisk:
    """Stands in for ``os`` in colorizer.fileio: writes beyond ``capacity`` bytes fail with ENOSPC
    (the last one is cut short first, as a real disk does)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.used = capacity, 0
        self.reserved: dict[int, int] = {}  # fd -> bytes set aside by posix_fallocate, not yet written

    def __getattr__(self, name):
        return getattr(os, name)

    def posix_fallocate(self, fd, offset, length) -> None:
        if self.used + length > self.capacity:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.used += length
        self.reserved[fd] = length

    def write(self, fd, data) -> int:
        own = self.reserved.get(fd, 0)
        room = self.capacity - self.used + own
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, bytes(data[:room]))
        self.reserved[fd] = own - min(n, own)
        self.used += n - min(n, own)
        return n


# --------------------------------------------------------------------------- disk full
def test_disk_full_damages_nothing_and_a_rerun_finishes(model, photos, tmp_path, monkeypatch, capsys):
    before = digests(photos)
    out = tmp_path / "small" / "out"
    mounted = _tmpfs(tmp_path / "small", "1m")
    try:
        args = [str(photos), "-o", str(out), "--model", str(model), "-q"]
        if mounted:
            done = subprocess.run([*CLI, *args], capture_output=True, text=True)
            code, err = done.returncode, done.stderr
        else:  # no tmpfs here: a disk of 1 MB simulated under the atomic writes
            monkeypatch.setattr(fileio, "os", _SmallDisk(1 << 20))
            code, err = batch_main(args), capsys.readouterr().err
        assert code == EXIT_SOME_FAILED, err
        report = check_outputs(out, out / "colorize-report.json")
        failed = [f for f in report["files"] if f["status"] == "failed"]
        assert failed and report["summary"]["done"] > 0
        assert all("disk full" in f["reason"] for f in failed), failed
        assert "Traceback" not in err and err.count("disk full") == len(failed)
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(tmp_path / "small")], check=True)
        else:
            monkeypatch.setattr(fileio, "os", os)
        assert batch_main(args) == EXIT_OK  # space freed: the re-run redoes what failed
        report = check_outputs(out, out / "colorize-report.json")
        assert report["summary"]["done"] == len(failed) and report["summary"]["skipped"] == 24 - len(failed)
    finally:
        if mounted:
            _umount(tmp_path / "small")
    assert digests(photos) == before


def test_an_output_truncated_under_its_final_name_is_redone(model, photos, tmp_path):
    out = tmp_path / "out"
    args = [str(photos), "-o", str(out), "--model", str(model), "-q"]
    assert batch_main(args) == EXIT_OK
    damaged = out / "p03.jpg"
    damaged.write_bytes(damaged.read_bytes()[:5000])  # as an older version left it when the disk filled
    (out / ".p07.partial-0badf00d.jpg").write_bytes(b"half")  # as a killed run left it
    (out / ".colorize-journal.jsonl").unlink()  # an older version kept no journal
    assert batch_main(args) == EXIT_OK
    report = check_outputs(out, out / "colorize-report.json")
    status = {Path(f["input"]).name: f["status"] for f in report["files"]}
    assert status["p03.jpg"] == "done" and list(status.values()).count("skipped") == 23


def test_a_garbled_journal_and_lock_file_do_not_stop_the_next_run(model, photos, tmp_path):
    """Lines the next run cannot use (cut short, or JSON nested too deep for Python's parser) are
    skipped: those outputs are checked again, and the rest are skipped as done."""
    out = tmp_path / "out"
    args = [str(photos), "-o", str(out), "--model", str(model), "-q"]
    assert batch_main(args) == EXIT_OK
    with open(out / ".colorize-journal.jsonl", "ab") as f:
        f.write(b"[" * 100_000 + b"\n" + b'{"output": "p0')
    (out / LOCK_NAME).write_bytes(b"{" * 100_000)
    assert batch_main(args) == EXIT_OK
    report = check_outputs(out, out / "colorize-report.json")
    assert report["summary"]["skipped"] == 24 and report["summary"]["failed"] == 0


# --------------------------------------------------------------------------- signals
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_files_in_flight_and_writes_a_true_report(model, photos, tmp_path, signum):
    before = digests(photos)
    out = tmp_path / "out"
    proc = start([photos, "-o", out, "--model", model, "--batch-size", "1", "-q"])
    wait_for_outputs(out, random.randint(1, 6), proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    expected = EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_TERMINATED
    report = check_outputs(out, out / "colorize-report.json")
    if proc.returncode == EXIT_OK:  # it finished before the signal came
        assert report["summary"]["done"] == 24
    else:
        assert proc.returncode == expected, err
        assert report["interrupted"] and report["summary"]["total"] == 24
        on_disk = {p.name for p in out.glob("p*.jpg")}
        done = {Path(f["output"]).name for f in report["files"] if f["status"] == "done"}
        assert done == on_disk and report["summary"]["cancelled"] == 24 - len(done)
    assert "Traceback" not in err
    assert digests(photos) == before


def test_a_second_signal_stops_at_once_without_damage(model, photos, tmp_path):
    out = tmp_path / "out"
    proc = start([photos, "-o", out, "--model", model, "--batch-size", "1", "-q"])
    wait_for_outputs(out, random.randint(1, 4), proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (EXIT_INTERRUPTED, EXIT_OK), err
    assert "Traceback" not in err
    report = check_outputs(out, out / "colorize-report.json")
    assert report["summary"]["total"] == 24
    assert batch_main([str(photos), "-o", str(out), "--model", str(model), "-q"]) == EXIT_OK
    assert check_outputs(out, out / "colorize-report.json")["summary"]["done"] == 24 - report["summary"]["done"]


def test_kill_9_then_resume(model, photos, tmp_path):
    out = tmp_path / "out"
    proc = start([photos, "-o", out, "--model", model, "--batch-size", "1", "-q"])
    wait_for_outputs(out, random.randint(2, 8), proc)
    proc.kill()
    proc.communicate(timeout=30)
    check_outputs(out, leftovers_allowed=True)  # partial files may remain; final names are complete
    partial = out / ".p20.partial-deadbeef.jpg"
    partial.write_bytes(b"cut short by the kill")
    assert batch_main([str(photos), "-o", str(out), "--model", str(model), "-q"]) == EXIT_OK
    report = check_outputs(out, out / "colorize-report.json")  # and no temporary file left
    assert report["summary"]["done"] + report["summary"]["skipped"] == 24


# --------------------------------------------------------------------------- unwritable output
def test_an_unwritable_output_folder_stops_before_decoding(model, photos, tmp_path, monkeypatch, capsys):
    from colorizer.desktop.pipeline import batch

    monkeypatch.setattr(batch, "read_image", lambda *a, **k: pytest.fail("decoded before checking the output"))
    out = tmp_path / "ro"
    mounted = _tmpfs(out, "1m") and subprocess.run(["mount", "-o", "remount,ro", str(out)]).returncode == 0
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("cannot make a read-only folder as root here")
        out.chmod(0o555)
    try:
        code = batch_main([str(photos), "-o", str(out / "sub"), "--model", str(model), "-q"])
        err = capsys.readouterr().err
    finally:
        _umount(out) if mounted else out.chmod(0o755)
    assert code == EXIT_SETUP
    assert "read-only file system" in err or "permission denied" in err, err
    assert "Traceback" not in err


def test_a_report_that_cannot_be_written_is_said_and_exits_2(model, photos, tmp_path, capsys):
    out = tmp_path / "out"
    report = tmp_path / "report-dir"
    report.mkdir()
    (report / "run.json").mkdir()  # a folder where the report should go
    code = batch_main([str(photos), "-o", str(out), "--model", str(model), "-q", "--report",
                       str(report / "run.json")])
    err = capsys.readouterr().err
    assert code == EXIT_SETUP and "could not write the report" in err and "Traceback" not in err
    assert not partial_files(report) and not partial_files(out)


# --------------------------------------------------------------------------- runs side by side
def test_two_runs_at_once_on_the_same_folders(model, photos, tmp_path):
    """One colorizes, the other stops at once naming it: nothing done twice, the first report kept."""
    out = tmp_path / "out"
    procs = [start([photos, "-o", out, "--model", model, "-q"]) for _ in range(2)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([EXIT_OK, EXIT_SETUP], [EXIT_OK, EXIT_OK]), errs  # both OK: the first ended before the second
    report = check_outputs(out, out / "colorize-report.json")
    assert report["summary"]["done"] + report["summary"]["skipped"] == 24
    if codes == [EXIT_OK, EXIT_SETUP]:
        busy = errs[[p.returncode for p in procs].index(EXIT_SETUP)]
        assert "another run is writing to" in busy and "process " in busy
        assert report["summary"]["done"] == 24  # the report is the run's that did the work


def test_a_second_run_into_a_busy_folder_stops_before_anything_and_names_the_first(model, photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    marker = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(marker, fcntl.LOCK_EX)  # a run holds the folder and says who it is
    holder = {"pid": 4242, "started": time.time(), "command": "colorize-batch scans -o out"}
    os.write(marker, json.dumps(holder).encode())
    try:
        proc = start([photos, "-o", out, "--model", model])
        err = proc.communicate(timeout=120)[1]
        assert proc.returncode == EXIT_SETUP
        assert "another run is writing to" in err and "process 4242" in err and "colorize-batch scans -o out" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # no output, no report, no journal
    finally:
        os.close(marker)


def test_the_journal_gives_the_folder_to_one_run_at_a_time(tmp_path):
    first = RunJournal.open(tmp_path)
    try:
        with pytest.raises(OutputFolderBusy, match=f"process {os.getpid()}"):
            RunJournal.open(tmp_path)
    finally:
        first.close()
    RunJournal.open(tmp_path).close()  # free again once the first run closed


def test_a_run_leaves_the_temporary_files_of_a_live_run_alone(model, photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / ".p05.partial-12345678.jpg"
    theirs.write_bytes(b"another run is writing this")
    marker = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(marker, fcntl.LOCK_EX)  # another run holds the folder
    try:
        assert batch_main([str(photos), "-o", str(out), "--model", str(model), "-q"]) == EXIT_SETUP
        assert theirs.exists()
    finally:
        os.close(marker)
    assert batch_main([str(photos), "-o", str(out), "--model", str(model), "-q"]) == EXIT_OK
    assert not theirs.exists()  # alone now: leftovers go


def test_the_output_folder_inside_the_input_is_not_walked(model, tmp_path):
    src = tmp_path / "in"
    make_photos(src, 3, 48, 64)
    for _ in range(2):
        assert batch_main([str(src), "-o", str(src / "out"), "--recursive", "--model", str(model), "-q"]) == EXIT_OK
    assert not (src / "out" / "out").exists()
    assert sorted(p.name for p in (src / "out").glob("*.jpg")) == ["p00.jpg", "p01.jpg", "p02.jpg"]
    assert read_report(src / "out" / "colorize-report.json")["summary"]["total"] == 3
    assert all(is_valid_image(p) for p in (src / "out").glob("*.jpg"))


def test_a_full_disk_during_a_video_leaves_no_output(model, tmp_path):
    pytest.importorskip("av")
    import numpy as np
    from synthetic_media import write_clip

    rng = np.random.default_rng(0)
    clip = write_clip(tmp_path / "clip.mp4", (rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(24)))
    small = tmp_path / "small"
    if not _tmpfs(small, "256k"):
        pytest.skip("needs a small tmpfs (root)")
    try:
        out = small / "out"
        done = subprocess.run([*CLI, clip, "-o", out, "--model", model, "-q", "--crf", "0", "--preset", "ultrafast"],
                              capture_output=True, text=True)
        assert done.returncode == EXIT_SOME_FAILED, done.stderr
        assert "disk full" in done.stderr and "Traceback" not in done.stderr
        assert not (out / "clip.mp4").exists() and not partial_files(out)
        report = read_report(out / "colorize-report.json")
        assert report["summary"]["failed"] == 1 and "disk full" in report["files"][0]["reason"]
    finally:
        _umount(small)


def test_the_progress_bar_counts_what_was_processed_not_what_a_stop_cancelled(capsys):
    from types import SimpleNamespace

    from colorizer.desktop.cli import _ProgressBars
    from colorizer.desktop.core import Status

    bars = _ProgressBars(4, quiet=False)
    for i, status in enumerate((Status.DONE, Status.SKIPPED, Status.CANCELLED, Status.CANCELLED)):
        bars.file_done(SimpleNamespace(status=status, input=Path(f"p{i}.jpg")), i + 1, 4)
    assert bars.files.n == 2 and bars.cancelled == 2
    bars.close()
    drawn = capsys.readouterr().err.splitlines()[-1]
    assert "2/4" in drawn and "not finished=2" in drawn and "4/4" not in drawn


_CRASH_ON = r"""
import ctypes, sys
from colorizer.desktop.pipeline import stages
write_image = stages.write_image
def crashing(path, *args, **kwargs):
    if "p05" in str(path):
        ctypes.string_at(0)  # a native crash while writing p05's output, as simplejpeg's was
    return write_image(path, *args, **kwargs)
stages.write_image = crashing
from colorizer.desktop.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_after_a_native_crash_the_next_run_resumes_and_names_the_file_being_written(model, photos, tmp_path):
    out = tmp_path / "out"
    crashed = subprocess.run([sys.executable, "-c", _CRASH_ON, str(photos), "-o", str(out), "--model", str(model),
                              "-q"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    assert crashed.returncode == -signal.SIGSEGV, crashed.stderr[-2000:]
    assert not (out / "colorize-report.json").exists()  # a crash writes no report; the next run does
    check_outputs(out, leftovers_allowed=True)  # what is under a final name is complete

    again = start([photos, "-o", out, "--model", model])
    err = again.communicate(timeout=120)[1]
    assert again.returncode == EXIT_OK, err
    assert "stopped while working on" in err and "p05.jpg" in err  # the file the crash was writing
    report = check_outputs(out, out / "colorize-report.json")
    assert report["summary"]["done"] + report["summary"]["skipped"] == 24 and report["summary"]["done"] >= 1
    died = report["previous_run_died"]
    assert any(p.endswith("p05.jpg") for p in died["in_flight"]) and "process" in died["run"]
    assert {f["status"] for f in report["files"] if f["input"].endswith("p05.jpg")} == {"done"}

    third = start([photos, "-o", out, "--model", model])  # a clean run leaves nothing in flight: no more notes
    err = third.communicate(timeout=120)[1]
    assert third.returncode == EXIT_OK and "stopped while working on" not in err
    assert "previous_run_died" not in read_report(out / "colorize-report.json")
