"""The training tools (colorizer-train, -average, -export, -eval) given what users' folders and hands give them:
damaged and odd files, wrong files, odd numbers, full disks, stops in the middle of a step."""

import json
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import synthetic_photo, write_rgb
from test_training import tiny_config
from tiny_model import tiny_generator_file

from colorizer.trainer import checkpoint as ckpt
from colorizer.trainer.cli import main as train_main
from colorizer.trainer.data import ColorPhotoDataset, list_images, read_rgb, scan_images
from colorizer.trainer.train import build_trainer


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels (its data is a few rows)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * (width * 3 + 1)))
            + chunk(b"IEND", b""))


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [str(data), "-o", str(out), "--size", "32", "--batch-size", "4", "--pretrain-steps", "1", "--gan-steps",
            "1", "--generator-width", "4", "--generator-depth", "3", "--discriminator-width", "4",
            "--discriminator-layers", "2", "--workers", "0", "--val-fraction", "0", "--quiet", *extra]


# ---------------------------------------------------------------------------------------------- photos


def test_a_huge_header_a_missing_listed_file_and_a_folder_are_unreadable_not_fatal(photo_folder, tmp_path):
    """A header declaring 60000x60000 pixels made OpenCV raise (a traceback at the scan), and a list line
    naming a file that is gone stopped the whole run with FileNotFoundError; both are skipped and counted."""
    (photo_folder / "huge.png").write_bytes(_png_declaring(60000, 60000))
    (photo_folder / "folder.png").mkdir()
    listed = tmp_path / "list.txt"
    listed.write_text("photos/set0/img_00.png\r\n\r\ngone.png\r\n# a comment\r\n")
    assert read_rgb(photo_folder / "huge.png") is None
    assert read_rgb(photo_folder / "folder.png") is None
    assert read_rgb(tmp_path / "gone.png") is None
    scan = scan_images([photo_folder, listed], progress=False)
    assert len(scan.files) == 17  # 16 + the listed one again
    assert sorted(p.name for p in scan.unreadable) == ["gone.png", "huge.png"]


def test_a_list_written_with_a_byte_order_mark_reads_its_first_line(photo_folder, tmp_path):
    """Windows editors start a UTF-8 file with a BOM, which became part of the first path."""
    listed = tmp_path / "list.txt"
    listed.write_bytes("\ufeffphotos/set0/img_00.png\nphotos/set1/img_01.png\n".encode())
    assert list_images([listed]) == [photo_folder / "set0" / "img_00.png", photo_folder / "set1" / "img_01.png"]


def test_a_list_that_is_not_text_is_refused_naming_it(tmp_path, capsys):
    listed = tmp_path / "photos.txt"
    listed.write_bytes(b"\xff\xfe\x00\x81binary")
    assert train_main(_train_args(listed, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "photos.txt" in err and "UTF-8" in err and "Traceback" not in err


def test_photos_gone_during_training_is_an_error_not_a_recursion(photo_folder):
    """Every photo vanishing after the scan (a disk unmounted) recursed from neighbour to neighbour
    until RecursionError; the dataset says what happened instead."""
    files = sorted(photo_folder.rglob("*.png"))[:3]
    dataset = ColorPhotoDataset(files, 32, train=True)
    for f in files:
        f.unlink()
    with pytest.raises(OSError, match="none of the 3 training photos can be read"):
        dataset[0]


def test_photos_smaller_than_the_ssim_window_are_evaluated(tmp_path):
    """Validation and colorizer-eval photos under 7 px on a side (an icon, a 1-pixel strip) failed in
    SSIM mid-run (scikit-image's 7x7 window), losing the steps since the last checkpoint."""
    from colorizer.trainer.evaluate import evaluate_predictor
    from colorizer.trainer.metrics import mean_scores, score

    rgb = synthetic_photo(1, 5, 9)
    assert 0 < score(rgb, rgb[::-1].copy()).ssim < 1
    strip = np.tile(np.array([[[200, 10, 30]]], np.uint8), (1, 40, 1))
    assert np.isnan(score(strip, strip).ssim)
    assert mean_scores([score(strip, strip)])["ssim"] != np.inf
    files = [write_rgb(tmp_path / "small.png", rgb), write_rgb(tmp_path / "strip.png", strip),
             write_rgb(tmp_path / "normal.png", synthetic_photo(2))]
    result = evaluate_predictor(lambda x: np.zeros((x.shape[0], 2, *x.shape[2:]), np.float32), files, 32, 8,
                                progress=False)
    assert result["model"]["images"] == 3 and np.isfinite(result["model"]["ssim"])


# ----------------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(("extra", "option"), [
    (["--batch-size", "0"], "--batch-size"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
    (["--log-every", "0"], "--log-every"),
    (["--val-every", "0"], "--val-every"),
    (["--size", "7"], "--size"),
    (["--size", "0"], "--size"),
    (["--pretrain-steps", "-3"], "--pretrain-steps"),
    (["--ema-decay", "1.5"], "--ema-decay"),
    (["--lr", "-1"], "--lr"),
    (["--generator-width", "0"], "--generator-width"),
])
def test_numbers_no_run_can_use_are_refused_naming_the_option(photo_folder, tmp_path, capsys, extra, option):
    """They divided by zero, failed inside a convolution or OpenCV (tracebacks), or wrote an untrained
    generator as if trained (negative steps); nothing is written to the run folder."""
    assert train_main(_train_args(photo_folder, tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err
    assert not (tmp_path / "run" / "generator.safetensors").exists()


def test_generator_depth_zero_is_not_taken_for_the_default(photo_folder, tmp_path, capsys):
    """``--generator-depth 0`` silently became depth 6 (``or``), then failed in a convolution."""
    assert train_main(_train_args(photo_folder, tmp_path / "run", "--generator-depth", "0")) == 2
    assert "depth" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused(photo_folder, tmp_path, capsys):
    out = tmp_path / "notes"
    out.write_text("mine")
    assert train_main(_train_args(photo_folder, out)) == 2
    assert "is a file" in capsys.readouterr().err
    assert out.read_text() == "mine"


# --------------------------------------------------------------------------------------- checkpoints


def _onnx_file(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])),
              str(path))
    return path


def test_init_from_an_onnx_or_a_damaged_file_names_it(photo_folder, tmp_path, capsys):
    """A SafetensorError traceback ("header too large") was all the user got."""
    model = _onnx_file(tmp_path / "model.onnx")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(tiny_generator_file(tmp_path / "g.safetensors").read_bytes()[:500])
    for path, cause in ((model, "ONNX"), (cut, "cut short")):
        with pytest.raises(ckpt.CheckpointError, match=cause):
            ckpt.load_generator(path)
        assert train_main(_train_args(photo_folder, tmp_path / f"run_{path.stem}", "--init-from", str(path))) == 2
        err = capsys.readouterr().err
        assert path.name in err and "Traceback" not in err


@pytest.mark.parametrize("damage", ["cut", "generator"])
def test_a_run_folder_with_a_damaged_or_wrong_checkpoint_says_how_to_go_on(photo_folder, tmp_path, damage):
    """Resuming raised SafetensorError (a damaged file) or KeyError: 'config' (a generator file copied
    in as last.safetensors)."""
    last = tmp_path / "run" / "checkpoints" / "last.safetensors"
    last.parent.mkdir(parents=True)
    if damage == "cut":
        last.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    else:
        tiny_generator_file(last)
    with pytest.raises(ckpt.CheckpointError, match="--no-resume") as exc:
        build_trainer(tiny_config(photo_folder, tmp_path / "run"), progress=False)
    assert "last.safetensors" in str(exc.value)


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(photo_folder, tmp_path, monkeypatch):
    """safetensors reports a full disk as SafetensorError (a traceback); it is the OSError it is, naming
    the file, and the checkpoint before it stays whole with no partial file beside it."""
    from safetensors import SafetensorError

    trainer = build_trainer(tiny_config(photo_folder, tmp_path / "run"), progress=False)
    trainer.fit(stop_after=1)
    before = trainer.checkpoint_path.read_bytes()

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"x" * 100)
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(ckpt, "save_file", disk_full)
    with pytest.raises(OSError, match="last.safetensors") as exc:
        trainer.save()
    assert exc.value.errno == 28
    assert trainer.checkpoint_path.read_bytes() == before
    assert sorted(p.name for p in trainer.checkpoint_path.parent.iterdir()) == ["last.safetensors"]


def test_a_kept_checkpoint_is_whole_or_absent(photo_folder, tmp_path, monkeypatch):
    """--keep-checkpoints copied last.safetensors to step_N.safetensors in place: a full disk or a kill
    mid-copy left a cut-short step file that colorizer-average and --init-from then choked on."""
    import colorizer.trainer.train as train

    def copy_half_then_fail(src, dst, **kw):
        data = Path(src).read_bytes()
        Path(dst).write_bytes(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    trainer = build_trainer(tiny_config(photo_folder, tmp_path / "run", keep_checkpoints=True), progress=False)
    trainer.fit(stop_after=1)
    monkeypatch.setattr(train.shutil, "copyfile", copy_half_then_fail)
    trainer.step = 2
    with pytest.raises(OSError):
        trainer.save()
    assert not list(trainer.checkpoint_path.parent.glob("step_0000002*"))
    assert not list(trainer.checkpoint_path.parent.glob(".*"))


def test_partial_files_of_a_killed_checkpoint_write_are_removed(photo_folder, tmp_path):
    """kill -9 during a save leaves a hidden temporary file a checkpoint's size; every later kill added one."""
    from colorizer.fileio import PARTIAL_MARKER

    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    stale = folder / f".last{PARTIAL_MARKER}0badc0de.safetensors"
    stale.write_bytes(b"half a checkpoint")
    mine = folder / "notes.safetensors"
    mine.write_bytes(b"kept")
    build_trainer(tiny_config(photo_folder, tmp_path / "run"), progress=False)
    assert not stale.exists() and mine.exists()


def test_a_stop_in_the_middle_of_a_step_resumes_exactly(photo_folder, tmp_path):
    """Ctrl-C landing between the discriminator's update and the generator's saved D updated with the
    step uncounted: the resumed run updated D twice and ended elsewhere than an uninterrupted one."""
    straight = build_trainer(tiny_config(photo_folder, tmp_path / "a"), progress=False)
    straight.fit()

    stopped = build_trainer(tiny_config(photo_folder, tmp_path / "b"), progress=False)
    real_step = stopped.opt_d.step

    def step_then_ctrl_c(*args, **kwargs):
        out = real_step(*args, **kwargs)
        if stopped.step == 2:  # the first GAN step, with D updated and G not yet
            signal.raise_signal(signal.SIGINT)
        return out

    stopped.opt_d.step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        stopped.fit()
    resumed = build_trainer(tiny_config(photo_folder, tmp_path / "b"), progress=False)
    assert resumed.step == 3
    resumed.fit()
    for k, v in straight.D.state_dict().items():
        assert torch.equal(v, resumed.D.state_dict()[k]), k
    for k, v in straight.G.state_dict().items():
        assert torch.equal(v, resumed.G.state_dict()[k]), k


# ------------------------------------------------------------------------------------ average, eval


def test_average_refuses_to_overwrite_an_input_or_a_folder_and_names_a_misfit(tmp_path, capsys):
    from colorizer.trainer.average import main as average_main
    from colorizer.trainer.networks import GeneratorConfig, define_generator

    a = tiny_generator_file(tmp_path / "a.safetensors", seed=1)
    b = tiny_generator_file(tmp_path / "b.safetensors", seed=2)
    original = a.read_bytes()
    assert average_main([str(a), str(a), str(b)]) == 2
    assert "one of the checkpoints" in capsys.readouterr().err and a.read_bytes() == original
    assert average_main([str(tmp_path), str(a), str(b)]) == 2
    assert "folder" in capsys.readouterr().err
    other = GeneratorConfig(width=8, depth=3)
    ckpt.save_generator(tmp_path / "wide.safetensors", define_generator(other).state_dict(),
                        generator_config=other.to_dict(), render_size=32, step=1, training_data="x")
    assert average_main([str(tmp_path / "m.safetensors"), str(a), str(tmp_path / "wide.safetensors")]) == 2
    assert "wide.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def test_eval_refuses_gray_photos_and_a_folder_as_json(tmp_path, capsys):
    """Gray photos gave a table of figures against no color at all (colorfulness_gt 0); --json naming a
    folder failed with IsADirectoryError after the whole evaluation."""
    import cv2

    from colorizer.exporter.evaluate_cli import main as eval_main

    gen = tiny_generator_file(tmp_path / "g.safetensors")
    gray = tmp_path / "gray"
    gray.mkdir()
    for i in range(2):
        cv2.imwrite(str(gray / f"g{i}.png"), cv2.cvtColor(synthetic_photo(i), cv2.COLOR_RGB2GRAY))
    assert eval_main([str(gen), str(gray), "--quiet"]) == 2
    assert "has color" in capsys.readouterr().err
    color = tmp_path / "color"
    write_rgb(color / "c.png", synthetic_photo(3))
    assert eval_main([str(gen), str(color), "--quiet", "--json", str(color)]) == 2
    assert "folder" in capsys.readouterr().err
    assert eval_main([str(gen), str(color), "--quiet", "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["model"]["images"] == 1


# -------------------------------------------------------------------------------------------- export


def test_export_into_a_file_or_at_render_size_zero_is_refused(tmp_path, capsys):
    from colorizer.exporter.cli import main as export_main

    gen = tiny_generator_file(tmp_path / "g.safetensors")
    (tmp_path / "out").write_text("mine")
    assert export_main([str(gen), "-o", str(tmp_path / "out"), "--no-fp16"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert export_main([str(gen), "-o", str(tmp_path / "m"), "--no-fp16", "--render-size", "0"]) == 2
    assert "--render-size" in capsys.readouterr().err and not (tmp_path / "m").exists()
    assert export_main([str(_onnx_file(tmp_path / "x.onnx")), "-o", str(tmp_path / "m"), "--no-fp16"]) == 2
    assert "ONNX" in capsys.readouterr().err


def test_a_new_export_leaves_no_twin_of_the_old_model(tmp_path):
    """Exporting another checkpoint with --no-fp16 into the folder of an earlier export left its
    NAME.fp16.onnx beside the new NAME.onnx, and the runtime ran that old model on every GPU."""
    from colorizer.desktop.backends.base import ModelFiles
    from colorizer.exporter.export import export_model

    first = tiny_generator_file(tmp_path / "first.safetensors", seed=1)
    second = tiny_generator_file(tmp_path / "second.safetensors", seed=2)
    export_model(first, tmp_path / "m", name="t", fp16=True)
    assert (tmp_path / "m" / "t.fp16.onnx").is_file()
    export_model(second, tmp_path / "m", name="t", fp16=False)
    assert ModelFiles.from_path(tmp_path / "m" / "t.onnx").fp16_onnx is None


def test_int8_calibration_photos_are_read_before_anything_is_written(tmp_path):
    """Unreadable calibration photos failed after NAME.onnx was written (over an earlier export's)."""
    from colorizer.exporter.export import export_model

    gen = tiny_generator_file(tmp_path / "g.safetensors")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"")
    (bad / "b.jpg").write_bytes(b"not a photo")
    with pytest.raises(ValueError, match="INT8 calibration"):
        export_model(gen, tmp_path / "m", name="t", fp16=False, int8_photos=[bad])
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").iterdir())


def test_an_output_under_a_file_is_an_error_not_a_traceback(tmp_path, capsys):
    """An output path whose folder is a file raised NotADirectoryError, which no command caught."""
    from colorizer.exporter.cli import main as export_main
    from colorizer.exporter.evaluate_cli import main as eval_main
    from colorizer.trainer.average import main as average_main

    gen = tiny_generator_file(tmp_path / "g.safetensors")
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    write_rgb(tmp_path / "photos" / "c.png", synthetic_photo(3))
    assert export_main([str(gen), "-o", str(blocker / "m"), "--no-fp16"]) == 2
    assert average_main([str(blocker / "avg.safetensors"), str(gen)]) == 2
    assert eval_main([str(gen), str(tmp_path / "photos"), "--quiet", "--json", str(blocker / "e.json")]) == 2
    assert train_main(_train_args(tmp_path / "photos", blocker / "run")) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 4 and "Traceback" not in err and blocker.read_text() == "mine"
