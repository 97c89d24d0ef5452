"""The photo pipeline end to end on synthetic files, through a tiny exported model on the CPU."""

import json
import re
import threading
import time
from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image
from synthetic import gray, make_inputs

from colorizer.contract import rgb_to_l
from colorizer.desktop.backends import BackendError, onnxruntime, open_backend
from colorizer.desktop.cli import EXIT_OK, EXIT_SETUP, EXIT_SOME_FAILED
from colorizer.desktop.cli import main as batch_main
from colorizer.desktop.core import CancelToken
from colorizer.desktop.media import image_write
from colorizer.desktop.media.image_read import read_image
from colorizer.desktop.pipeline.batch import BatchRunner, colorize_array
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.desktop.pipeline.tasks import plan


@pytest.fixture(scope="module")
def backend(model):
    return open_backend(model, "cpu")


def run(tasks, backend, **kw):
    return BatchRunner(backend, ImageSettings(**kw)).run(tasks)


def test_colorize_array_keeps_luminance(backend):
    rgb = np.repeat(gray(7, 90, 130)[..., None], 3, 2)
    out = colorize_array(rgb, backend, ImageSettings())
    assert out.shape == (90, 130, 3) and out.dtype == np.float32
    diff = np.abs(rgb_to_l(out) - rgb_to_l(rgb))
    assert diff.mean() < 0.5 and diff.max() < 3


def test_pipeline_on_many_kinds_of_input(backend, tmp_path):
    files = make_inputs(tmp_path / "in")
    before = {p: p.read_bytes() for p in files.values()}
    tasks, rejected = plan([tmp_path / "in"], tmp_path / "out", recursive=True)
    assert not rejected and len(tasks) == 5
    results = run(tasks, backend, render_size=32)
    assert {r.status for r in results} == {"done"}
    assert all(p.read_bytes() == data for p, data in before.items())  # inputs untouched
    out = tmp_path / "out"
    # tree mirrored, format kept
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == \
        ["color.png", "gray.jpg", "rotated.jpg", "scan16.tif", "sub/alpha.png"]
    # full-resolution luminance kept (JPEG re-encoding costs a little)
    for name in ("gray", "rgb", "16bit"):
        src = read_image(files[name]).rgb
        dst = read_image(out / files[name].relative_to(tmp_path / "in")).rgb
        assert dst.shape == src.shape
        assert np.abs(rgb_to_l(dst) - rgb_to_l(src)).mean() < 1.5, name
    assert read_image(out / "scan16.tif").bit_depth == 16
    rgba_out = read_image(out / "sub" / "alpha.png")
    assert rgba_out.alpha is not None and np.array_equal(rgba_out.alpha, read_image(files["rgba"]).alpha)
    assert read_image(out / "rotated.jpg").rgb.shape[:2] == (60, 30)  # EXIF rotation applied
    # metadata carried
    with Image.open(out / "gray.jpg") as im:
        exif = piexif.load(im.info["exif"])
        assert exif["0th"][piexif.ImageIFD.ImageDescription] == b"Grandma, 1931"
        assert exif["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"1931:05:04 10:00:00"
        assert tuple(round(v) for v in im.info["dpi"]) == (600, 600)
    with Image.open(out / "rotated.jpg") as im:
        assert piexif.load(im.info["exif"])["0th"][piexif.ImageIFD.Orientation] == 1
    # outputs really have color
    assert read_image(out / "gray.jpg").rgb.std(axis=2).mean() > 0


def test_second_run_skips_finished_files(backend, tmp_path):
    make_inputs(tmp_path / "in")
    tasks, _ = plan([tmp_path / "in"], tmp_path / "out", recursive=True)
    run(tasks[:2], backend)
    results = run(tasks, backend)
    assert sorted(r.status for r in results) == ["done"] * 3 + ["skipped"] * 2
    again = run(tasks, backend, overwrite=True)
    assert {r.status for r in again} == {"done"}


def test_corrupt_inputs_are_reported_and_the_rest_finish(backend, tmp_path):
    files = make_inputs(tmp_path / "in")
    (tmp_path / "in" / "empty.jpg").write_bytes(b"")
    data = files["gray"].read_bytes()
    (tmp_path / "in" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "in" / "fake.png").write_bytes(b"this is not a png")
    (tmp_path / "in" / "notes.txt").write_text("not a photo; ignored")
    tasks, rejected = plan([tmp_path / "in"], tmp_path / "out")
    results = run(tasks, backend)
    failed = {Path(r.input).name: r.reason for r in results if r.status == "failed"}
    failed |= {r.source.name: r.reason for r in rejected}
    assert set(failed) == {"empty.jpg", "truncated.jpg", "fake.png"}
    assert "truncated.jpg" in failed["truncated.jpg"]
    assert failed["empty.jpg"].startswith("an empty file (0 bytes)")
    assert sum(r.status == "done" for r in results) == 4  # gray, color, scan16, rotated (alpha is in sub/)
    assert not (tmp_path / "out" / "truncated.jpg").exists()


def test_failure_while_writing_leaves_no_file(backend, tmp_path, monkeypatch):
    make_inputs(tmp_path / "in")
    real = image_write._encode_png

    def crash(fh, *args, **kwargs):
        fh.write(b"\x89PNG half")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(image_write, "_encode_png", crash)
    tasks, _ = plan([tmp_path / "in"], tmp_path / "out")
    results = {Path(r.input).name: r for r in run(tasks, backend)}
    assert results["color.png"].status == "failed" and "disk full" in results["color.png"].reason
    assert results["gray.jpg"].status == "done"
    leftovers = [p.name for p in (tmp_path / "out").iterdir()]
    assert "color.png" not in leftovers and not [n for n in leftovers if "partial" in n]
    monkeypatch.setattr(image_write, "_encode_png", real)
    assert {Path(r.input).name for r in run(tasks, backend) if r.status == "done"} == {"color.png"}


def test_outputs_never_overwrite_inputs(tmp_path):
    make_inputs(tmp_path / "in")
    tasks, rejected = plan([tmp_path / "in"], tmp_path / "in")
    assert not tasks and len(rejected) == 4
    assert all("overwrite the input" in r.reason for r in rejected)


def test_cancel_stops_without_partial_files(backend, tmp_path):
    for i in range(30):
        Image.fromarray(gray(i, 40, 56)).save(tmp_path / f"p{i:02d}.png")
    tasks, _ = plan([tmp_path], tmp_path / "out")
    token = CancelToken()
    seen = []

    def progress(result, done, total):
        seen.append(result.status)
        token.cancel()

    class Paced:  # inference slower than a write, so the cancel lands while photos are still waiting
        name, contract = backend.name, backend.contract

        def predict(self, x):
            time.sleep(0.05)
            return backend.predict(x)

    results = BatchRunner(Paced(), ImageSettings(readers=1, batch_size=1), progress, token).run(tasks)
    assert len(results) == len(tasks)
    assert "cancelled" in {r.status for r in results}
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert not [p for p in written if "partial" in p.name]
    assert len(written) == sum(r.status == "done" for r in results)


def test_memory_budget_admits_a_huge_image_alone(backend, tmp_path):
    make_inputs(tmp_path / "in")
    tasks, _ = plan([tmp_path / "in"], tmp_path / "out")
    results = run(tasks, backend, max_inflight_megapixels=0.001)  # every image is over budget
    assert {r.status for r in results} == {"done"}


def test_a_photo_that_fails_after_decoding_gives_its_pixels_back(backend, tmp_path, monkeypatch):
    """The budget reserved for a decoded photo is released when preparing it fails; otherwise the
    photos after it, which only fit an empty budget, would wait forever."""
    from colorizer.desktop.pipeline import stages

    for i in range(4):
        Image.fromarray(gray(i, 40, 56 + i)).save(tmp_path / f"p{i}.png")
    tasks, _ = plan([tmp_path], tmp_path / "out")
    real_prepare = stages.prepare_photo

    def prepare(image, *args, **kwargs):
        if image.width == 56:  # p0
            raise MemoryError("simulated")
        return real_prepare(image, *args, **kwargs)

    monkeypatch.setattr(stages, "prepare_photo", prepare)
    token, outcome = CancelToken(), {}
    runner = BatchRunner(backend, ImageSettings(readers=1, max_inflight_megapixels=0.001), cancel=token)
    worker = threading.Thread(target=lambda: outcome.update(results=runner.run(tasks)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    hung = worker.is_alive()
    token.cancel()  # lets a hung run end, so the test itself never hangs
    worker.join(timeout=30)
    assert not hung, "the photos after the failed one never got into the memory budget"
    statuses = {Path(r.input).name: r.status for r in outcome["results"]}
    assert statuses == {"p0.png": "failed", "p1.png": "done", "p2.png": "done", "p3.png": "done"}


def test_cli_exit_codes_and_report(model, tmp_path, capsys):
    make_inputs(tmp_path / "in")
    args = [str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model), "-q", "--recursive"]
    assert batch_main(args) == EXIT_OK
    report = json.loads((tmp_path / "out" / "colorize-report.json").read_text())
    assert report["summary"] == {"done": 5, "skipped": 0, "failed": 0, "cancelled": 0, "total": 5}
    assert report["backend"] == "onnxruntime-cpu"
    assert {"input", "output", "status", "backend", "seconds", "reason"} <= set(report["files"][0])
    assert batch_main(args) == EXIT_OK  # resume: everything skipped
    assert json.loads((tmp_path / "out" / "colorize-report.json").read_text())["summary"]["skipped"] == 5
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    assert batch_main(args + ["--report", str(tmp_path / "r.json")]) == EXIT_SOME_FAILED
    row = next(f for f in json.loads((tmp_path / "r.json").read_text())["files"] if f["input"].endswith("broken.jpg"))
    assert row["status"] == "failed" and "broken.jpg" in row["reason"]
    assert batch_main([str(tmp_path / "nothing"), "-o", str(tmp_path / "o2"), "-q"]) in (EXIT_SETUP, EXIT_SOME_FAILED)
    assert batch_main([str(tmp_path / "in"), "-o", str(tmp_path / "o3"), "--model", str(tmp_path / "none.onnx")]) \
        == EXIT_SETUP
    assert "model file not found" in capsys.readouterr().err


def test_subfolders_left_out_without_recursive_are_said(model, tmp_path, capsys):
    make_inputs(tmp_path / "in")  # a photo in in/sub/
    (tmp_path / "in" / "notes").mkdir()
    (tmp_path / "in" / "notes" / "readme.txt").write_text("no photos here")
    args = [str(tmp_path / "in"), "-o", str(tmp_path / "in" / "out"), "--model", str(model), "-q", "--dry-run"]
    assert batch_main(args) == EXIT_OK
    assert "1 subfolder with photos or videos not searched (sub): add --recursive" in capsys.readouterr().err
    assert batch_main(args + ["--recursive"]) == EXIT_OK
    assert "not searched" not in capsys.readouterr().err


def test_dry_run_changes_nothing(model, tmp_path, capsys):
    make_inputs(tmp_path / "in")
    assert batch_main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--dry-run", "--model", str(model)]) == 0
    assert not (tmp_path / "out").exists()
    assert "gray.jpg" in capsys.readouterr().out
    (tmp_path / "a_file").write_text("x")
    assert batch_main([str(tmp_path / "in"), "-o", str(tmp_path / "a_file"), "--dry-run", "--model", str(model)]) \
        == EXIT_SETUP
    assert "the output folder" in capsys.readouterr().err


def dry_run_actions(printed: str) -> dict[str, str]:
    """--dry-run's lines ("SOURCE -> OUTPUT (KIND, ACTION)") as {source name: action}."""
    return {Path(line.split(" -> ")[0]).name: re.search(r" \((?:image|video|frames), (.*)\)$", line)[1]
            for line in printed.splitlines()}


def test_dry_run_says_what_a_run_would_do(model, tmp_path, capsys):
    """--dry-run decides as the run does: finished outputs are skipped, a changed sidecar or an
    output cut short is redone, --overwrite redoes."""
    files = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    base = [str(tmp_path / "in"), "-o", str(out), "--model", str(model), "-q"]

    def planned() -> dict[str, str]:
        assert batch_main(base + ["--dry-run"]) == EXIT_OK
        return dry_run_actions(capsys.readouterr().out)

    assert set(planned().values()) == {"colorize"}
    assert batch_main(base) == EXIT_OK
    capsys.readouterr()
    assert set(planned().values()) == {"skip: finished"}
    sidecar = Path(str(files["gray"]) + ".hints.json")
    sidecar.write_text(json.dumps({"format": "colorizer-hints", "version": 1,
                                   "points": [{"x": 3, "y": 4, "color": "#b03a2e"}]}))
    cut = out / "color.png"
    cut.write_bytes(cut.read_bytes()[:200])
    plan_now = planned()
    assert plan_now["gray.jpg"] == "redo: its hints changed since it was made"  # made without hints
    assert plan_now["color.png"] == "redo: not a finished output"
    assert plan_now["scan16.tif"] == "skip: finished"
    assert batch_main(base) == EXIT_OK  # the run does what the dry run said
    capsys.readouterr()
    assert set(planned().values()) == {"skip: finished"}
    sidecar.write_text(json.dumps({"format": "colorizer-hints", "version": 1,
                                   "points": [{"x": 5, "y": 4, "color": "#2f5d8a"}]}))
    assert planned()["gray.jpg"] == "redo: its hints changed since it was made"
    (out / ".colorize-journal.jsonl").unlink()  # an output no journal lists: its hints cannot be known
    assert planned()["gray.jpg"] == "redo: not known to be made with these hints"
    assert batch_main(base + ["--dry-run", "--overwrite"]) == EXIT_OK
    assert all(line.endswith("redo: --overwrite)") for line in capsys.readouterr().out.splitlines())
    sidecar.write_text('{"format": "colorizer-hints", "version": 1, "frames": []}')  # a film's, beside a photo
    assert planned()["gray.jpg"].startswith("fails: ") and "holds film hints" in planned()["gray.jpg"]
    assert not list(out.glob(".*.tmp*"))


def test_dry_run_of_a_frame_folder_checks_every_frame_s_output(model, tmp_path, capsys):
    folder = tmp_path / "reel"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(gray(i, 24, 32)).save(folder / f"f_{i:04d}.png")
    out = tmp_path / "out"
    base = [str(folder), "-o", str(out), "--frames", "--model", str(model), "-q"]

    def planned(*extra: str) -> str:
        assert batch_main(base + ["--dry-run", *extra]) == EXIT_OK
        return dry_run_actions(capsys.readouterr().out)["reel"]

    assert planned() == "colorize"
    assert batch_main(base) == EXIT_OK
    capsys.readouterr()
    assert planned() == "skip: finished"
    assert planned("--frames-to-video") == "redo: 3 of 4 outputs there, not all finished"  # no video yet
    (out / "f_0001.png").unlink()
    assert planned() == "redo: 2 of 3 outputs there, not all finished"
    (folder / "f_0001.png").unlink()  # a hole: the dry run names the missing frame, as the run does
    assert planned() == "fails: the numbered frames f_0000.png to f_0002.png are not an unbroken sequence: " \
        "1 missing (f_0001.png)"


def test_auto_backend_reports_cpu_when_gpu_providers_cannot_start(model, monkeypatch):
    monkeypatch.setattr(onnxruntime, "_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    b = open_backend(model, "auto")
    assert b.name == "onnxruntime-cpu"  # read back from the session, not assumed
    with pytest.raises(BackendError, match="CUDA is not usable"):
        open_backend(model, "cuda")
    with pytest.raises(BackendError, match="TensorRT is not usable"):
        open_backend(model, "tensorrt")


def test_cuda_request_without_gpu_build_says_what_to_install(model):
    with pytest.raises(BackendError, match="onnxruntime-gpu"):
        open_backend(model, "cuda")


def test_runner_is_thread_safe_for_progress(backend, tmp_path):
    make_inputs(tmp_path / "in")
    tasks, _ = plan([tmp_path / "in"], tmp_path / "out", recursive=True)
    counts, lock = [], threading.Lock()

    def progress(result, done, total):
        with lock:
            counts.append(done)

    BatchRunner(backend, ImageSettings(readers=3, writers=3), progress).run(tasks)
    assert sorted(counts) == list(range(1, len(tasks) + 1))


def test_the_first_photo_goes_through_alone(backend, tmp_path, monkeypatch):
    """The first output comes as early as it can: the second photo is read once the first reaches
    inference, the others once the first is written."""
    from colorizer.desktop.pipeline import batch, stages

    (tmp_path / "in").mkdir()
    for i in range(6):
        Image.fromarray(gray(20 + i, 120, 160)).save(tmp_path / "in" / f"p{i}.png")
    tasks, _ = plan([tmp_path / "in"], tmp_path / "out", recursive=True)
    events, lock = [], threading.Lock()

    def logged(kind, fn, name_of):
        def wrapper(*args, **kwargs):
            if kind == "read":
                with lock:
                    events.append((kind, name_of(args)))
            out = fn(*args, **kwargs)
            if kind == "written":
                with lock:
                    events.append((kind, name_of(args)))
            return out
        return wrapper

    monkeypatch.setattr(batch, "read_image", logged("read", batch.read_image, lambda a: Path(a[0]).name))
    monkeypatch.setattr(stages, "finish_and_write",
                        logged("written", stages.finish_and_write, lambda a: Path(a[0].task.source).name))
    results = BatchRunner(backend, ImageSettings(readers=2, writers=2)).run(tasks)
    assert sorted(r.status for r in results) == ["done"] * 6
    first, second = Path(tasks[0].source).name, Path(tasks[1].source).name
    assert events[0] == ("read", first)
    first_written = events.index(("written", first))
    assert all(events.index(("read", Path(t.source).name)) > first_written for t in tasks[2:])
    assert events.index(("read", second)) > 0


def test_slow_writers_hold_inference_so_photos_do_not_pile_up(backend, tmp_path, monkeypatch):
    """When writing is the slower stage, inference waits for the writers: the photos in memory stay a
    few (readers, the ready queue, one inference call, writers x 2), not all that the pixel budget admits."""
    from colorizer.desktop.pipeline import stages

    for i in range(60):
        Image.fromarray(gray(i, 24, 32)).save(tmp_path / f"p{i:02d}.png")
    tasks, _ = plan([tmp_path], tmp_path / "out")
    write, in_memory, most = stages.finish_and_write, [0], [0]
    lock = threading.Lock()
    read = stages.prepare_photo

    def prepare(*args, **kwargs):
        with lock:
            in_memory[0] += 1
            most[0] = max(most[0], in_memory[0])
        return read(*args, **kwargs)

    def slow_write(*args, **kwargs):
        time.sleep(0.02)
        try:
            return write(*args, **kwargs)
        finally:
            with lock:
                in_memory[0] -= 1

    monkeypatch.setattr(stages, "prepare_photo", prepare)
    monkeypatch.setattr(stages, "finish_and_write", slow_write)
    settings = dict(readers=2, writers=2, batch_size=4)  # the 100 MP budget would admit all 60
    results = run(tasks, backend, **settings)
    assert {r.status for r in results} == {"done"} and len(results) == 60
    bound = settings["readers"] + 2 * settings["batch_size"] + 4 * settings["batch_size"] + 2 * settings["writers"]
    assert most[0] <= bound, f"{most[0]} photos in memory at once (bound {bound})"


def test_a_backend_closes_at_the_end_of_its_with_block(model):
    with open_backend(model, "cpu") as backend:
        ab = backend.predict(np.zeros((1, 1, 32, 32), np.float32))
        assert ab.shape == (1, 2, 32, 32) and backend.session is not None
    assert backend.session is None  # closed, however the block ended
    with pytest.raises(RuntimeError), open_backend(model, "cpu") as backend:
        raise RuntimeError("a failing run")
    assert backend.session is None
