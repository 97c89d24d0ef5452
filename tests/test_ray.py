"""Photos through Ray Data on a local two-core Ray: the same bytes, the same skips, failures and report
as the local batch runner."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from synthetic import make_inputs, synthetic_photo, write_rgb  # noqa: E402

from colorizer.desktop.backends import open_backend  # noqa: E402
from colorizer.desktop.cli import EXIT_OK, EXIT_SOME_FAILED  # noqa: E402
from colorizer.desktop.cli import main as batch_main  # noqa: E402
from colorizer.desktop.pipeline.batch import BatchRunner  # noqa: E402
from colorizer.desktop.pipeline.ray_runner import RayOptions, run_on_ray  # noqa: E402
from colorizer.desktop.pipeline.settings import ImageSettings  # noqa: E402
from colorizer.desktop.pipeline.tasks import plan  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def inputs(root: Path) -> Path:
    make_inputs(root)  # JPEG with EXIF, RGB PNG, RGBA PNG, 16-bit TIFF, rotated JPEG
    for i in range(6):  # a few shapes, so batches are split by render shape
        write_rgb(root / "more" / f"p{i}.png", synthetic_photo(10 + i, 40 + 8 * (i % 3), 64))
    return root


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.suffix != ".json" and not p.name.startswith(".colorize-")}  # not the report, journal, marker


def test_ray_outputs_are_byte_identical_and_resume(model, tmp_path):
    src = inputs(tmp_path / "in")
    settings = ImageSettings(render_size=32, saturation=1.3)
    local_tasks, _ = plan([src], tmp_path / "local", recursive=True)
    BatchRunner(open_backend(model, "cpu"), settings).run(local_tasks)
    tasks, rejected = plan([src], tmp_path / "ray", recursive=True)
    assert not rejected and len(tasks) == 11
    seen = []
    results = run_on_ray(tasks, model, replace(settings, batch_size=2), RayOptions(backend="cpu"),
                         progress=lambda r, done, total: seen.append((r.status, done, total)))
    assert sorted(r.status for r in results) == ["done"] * 11
    assert [s[1:] for s in seen] == [(i, 11) for i in range(1, 12)]
    assert {r.backend for r in results} == {"onnxruntime-cpu"}
    assert all(r.output.is_file() and r.seconds is not None for r in results)
    assert files(tmp_path / "ray") == files(tmp_path / "local")  # same bytes, names and tree
    again = run_on_ray(tasks, model, settings, RayOptions(backend="cpu"))
    assert {r.status for r in again} == {"skipped"}
    assert files(tmp_path / "ray") == files(tmp_path / "local")


def test_corrupt_file_is_reported_and_the_rest_finish(model, tmp_path):
    src = tmp_path / "in"
    for i in range(4):
        write_rgb(src / f"p{i}.png", synthetic_photo(i, 48, 64))
    (src / "broken.png").write_bytes((src / "p0.png").read_bytes()[:150])  # truncated
    tasks, _ = plan([src], tmp_path / "out")
    results = run_on_ray(tasks, model, ImageSettings(render_size=32), RayOptions(backend="cpu"))
    by_name = {r.input.name: r for r in results}
    assert by_name["broken.png"].status == "failed" and "broken.png" in by_name["broken.png"].reason
    assert sorted(r.status for r in results) == ["done"] * 4 + ["failed"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"p{i}.png" for i in range(4)]  # no partials


def test_cli_report_with_ray_has_the_local_schema(model, tmp_path):
    src = inputs(tmp_path / "in")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    common = [str(src), "--model", str(model), "-q", "--recursive", "--render-size", "32"]
    assert batch_main(common + ["-o", str(tmp_path / "local")]) == EXIT_SOME_FAILED
    assert batch_main(common + ["-o", str(tmp_path / "ray"), "--ray", "--ray-actors", "1"]) == EXIT_SOME_FAILED
    local = json.loads((tmp_path / "local" / "colorize-report.json").read_text())
    remote = json.loads((tmp_path / "ray" / "colorize-report.json").read_text())

    def shape(report):
        return {k: sorted(v) if isinstance(v, dict) else type(v).__name__ for k, v in report.items()
                if k not in ("files", "settings")} | {"file_keys": sorted({k for f in report["files"] for k in f})}

    assert shape(remote) == shape(local)
    assert remote["summary"] == local["summary"] == {"done": 11, "skipped": 0, "failed": 1, "cancelled": 0,
                                                     "total": 12}
    assert [(f["input"], f["status"]) for f in remote["files"]] == [(f["input"], f["status"]) for f in local["files"]]
    assert remote["backend"] == "ray/onnxruntime-cpu" and remote["settings"]["ray"] == "local"
    assert files(tmp_path / "ray") == files(tmp_path / "local")
    # resume: everything already written is skipped
    (src / "broken.jpg").unlink()
    assert batch_main(common + ["-o", str(tmp_path / "ray"), "--ray"]) == EXIT_OK
    assert json.loads((tmp_path / "ray" / "colorize-report.json").read_text())["summary"]["skipped"] == 11


def test_frame_folders_run_locally_beside_photos_on_ray(model, tmp_path):
    from colorizer.desktop.pipeline.run import run_tasks
    from colorizer.desktop.pipeline.settings import RunSettings
    from colorizer.desktop.pipeline.tasks import Task

    photos, reel = tmp_path / "photos", tmp_path / "reel"
    for i in range(3):
        write_rgb(photos / f"p{i}.png", synthetic_photo(i, 40, 56))
        write_rgb(reel / f"reel_{i:04d}.png", synthetic_photo(20 + i, 40, 48))
    settings = RunSettings(ImageSettings(render_size=32))
    backend = open_backend(model, "cpu")

    def tasks(out: Path) -> list:
        return plan([photos], out / "photos")[0] + [Task(reel, out / "reel", "frames")]

    local = run_tasks(tasks(tmp_path / "local"), backend, settings)
    done = []
    remote = run_tasks(tasks(tmp_path / "ray"), backend, settings, ray=RayOptions(backend="cpu"), model=model,
                       progress=lambda r, n, total: done.append((n, total)))
    assert sorted(r.status for r in remote) == sorted(r.status for r in local) == ["done"] * 4
    assert done == [(i, 4) for i in range(1, 5)]
    assert files(tmp_path / "ray") == files(tmp_path / "local")
    assert sorted(p.name for p in (tmp_path / "ray" / "reel").glob("*.png")) == [f"reel_{i:04d}.png" for i in range(3)]


def test_cli_on_ray_shows_no_ray_notices(model, tmp_path):
    """Ray's own notices ("Started a local Ray instance", ...) would break the progress bar: a child
    process, since this module's Ray is already running."""
    import subprocess
    import sys

    write_rgb(tmp_path / "in" / "a.png", synthetic_photo(1, 48, 64))
    run = subprocess.run([sys.executable, "-m", "colorizer.desktop.cli", str(tmp_path / "in"), "-o",
                          str(tmp_path / "out"), "--model", str(model), "--ray", "--render-size", "32"],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == EXIT_OK, run.stderr
    assert (tmp_path / "out" / "a.png").is_file()
    assert "Started a local Ray instance" not in run.stderr and " INFO " not in run.stderr, run.stderr


def test_a_warning_logged_in_a_worker_names_its_file_and_goes_into_its_report_entry(model, tmp_path, capsys):
    """A warning logged in a Ray worker's process (a damaged EXIF block dropped while the photo is read)
    stayed in that worker's log: the report and the terminal now have it, as a local run has it."""
    from PIL import Image

    src = tmp_path / "in"
    for i in range(2):
        write_rgb(src / f"p{i}.jpg", synthetic_photo(i, 40, 56))
    damaged = src / "damaged exif.jpg"
    Image.open(src / "p0.jpg").save(damaged, exif=b"Exif\x00\x00not a TIFF header at all")
    common = [str(src), "--model", str(model), "--render-size", "32"]
    assert batch_main(common + ["-o", str(tmp_path / "local")]) == EXIT_OK
    capsys.readouterr()
    assert batch_main(common + ["-o", str(tmp_path / "ray"), "--ray", "--ray-actors", "1"]) == EXIT_OK
    err = capsys.readouterr().err

    def warnings(out: Path) -> dict:
        report = json.loads((out / "colorize-report.json").read_text())
        return {Path(f["input"]).name: f["warnings"] for f in report["files"] if "warnings" in f}

    expected = {"damaged exif.jpg": [f"{damaged}: dropping a damaged EXIF block (no valid TIFF header or first IFD)"]}
    assert warnings(tmp_path / "ray") == warnings(tmp_path / "local") == expected
    assert f"{damaged}: dropping a damaged EXIF block" in err


def test_a_photo_too_large_for_its_memory_fails_on_ray_as_in_a_local_run(model, tmp_path, monkeypatch):
    """Ray's workers read photos without the local runner's memory check (and under the 300 MP cap
    whatever --max-memory allowed): the same photo failed locally and ran out of memory on a worker."""
    from colorizer.desktop.pipeline import stages

    src = tmp_path / "in"
    write_rgb(src / "small.png", synthetic_photo(1, 24, 32))
    write_rgb(src / "large.png", synthetic_photo(2, 96, 128))
    limit_mb = 1.5 * 24 * 32 * stages.BYTES_PER_PIXEL / 1e6  # the small one fits, the large one not
    settings = ImageSettings(render_size=32, max_memory_mb=limit_mb)
    local = BatchRunner(open_backend(model, "cpu"), settings).run(plan([src], tmp_path / "local")[0])
    remote = run_on_ray(plan([src], tmp_path / "ray")[0], model, settings, RayOptions(backend="cpu"))
    assert {r.input.name: r.status for r in remote} == {r.input.name: r.status for r in local} \
        == {"small.png": "done", "large.png": "failed"}
    failed = next(r for r in remote if r.status == "failed")
    assert "more than the" in failed.reason and "--max-memory" in failed.reason


def test_a_stopped_run_reports_done_every_output_its_tasks_wrote(model, tmp_path):
    """Ray's write tasks take whole blocks: when the driver stopped taking results (Ctrl-C, SIGTERM) the
    rest of a block was still written, and reported cancelled (and not journaled) though on disk."""
    from colorizer.desktop.core import CancelToken
    from colorizer.desktop.pipeline.journal import RunJournal

    src = tmp_path / "in"
    for i in range(40):
        write_rgb(src / f"d{i % 2}" / f"p{i:02d}.png", synthetic_photo(i, 16, 16))
    tasks, _ = plan([src], tmp_path / "out", recursive=True)
    cancel = CancelToken()
    journal = RunJournal.open(tmp_path / "out", {t.output.parent for t in tasks})
    try:
        results = run_on_ray(tasks, model, ImageSettings(render_size=32), RayOptions(backend="cpu"),
                             progress=lambda *_: cancel.cancel(), cancel=cancel, journal=journal)
    finally:
        journal.close()
    assert len(results) == 40 and {r.status for r in results} <= {"done", "cancelled"}
    done = {r.output for r in results if r.status == "done"}
    assert done == set((tmp_path / "out").rglob("p*.png")) and done
    again = RunJournal.read_only(tmp_path / "out")
    assert all(again.lists(p) for p in done)


def test_starting_ray_keeps_the_callers_signal_handlers(tmp_path):
    """ray.init set its own SIGTERM handler (SystemExit in the main thread, a C++ abort after it): a
    SIGTERM of `colorize-batch --ray` skipped "finish the files in progress, write the report", exited
    134 and reported every file cancelled. A child process: this module's Ray is already running."""
    import subprocess
    import sys

    code = """if True:
        import os, signal, time
        from colorizer.desktop.pipeline.ray_runner import connect
        got = []
        signal.signal(signal.SIGTERM, lambda *_: got.append("term"))
        assert connect(None, 1)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
        print(got)
        import ray; ray.shutdown()
    """
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0 and "['term']" in run.stdout, run.stderr[-2000:]
