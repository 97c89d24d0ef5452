import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import synthetic_photo, write_rgb

from colorizer.trainer.checkpoint import load_generator, load_training
from colorizer.trainer.cli import main as train_main
from colorizer.trainer.config import TrainConfig
from colorizer.trainer.data import ColorPhotoDataset, scan_images
from colorizer.trainer.degrade import FILTERS, OldPhotoFilter
from colorizer.trainer.networks import DiscriminatorConfig, GeneratorConfig
from colorizer.trainer.train import build_trainer


def tiny_config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=(str(data),), out=str(out), val_fraction=0.0, size=32, batch_size=4,
                pretrain_steps=2, gan_steps=2, generator=GeneratorConfig(width=4, depth=4),
                discriminator=DiscriminatorConfig(width=4, n_layers=2), val_every=1000,
                checkpoint_every=1000, log_every=1, workers=0, val_images=4, samples=2)
    base.update(kw)
    return TrainConfig(**base)


def test_scan_skips_unreadable_and_grayscale(photo_folder, caplog):
    (photo_folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (photo_folder / "empty.png").write_bytes(b"")
    gray = np.repeat(synthetic_photo(99)[..., :1], 3, axis=2)
    write_rgb(photo_folder / "gray.png", gray)
    (photo_folder / "notes.txt").write_text("ignored: not an image extension")
    with caplog.at_level("INFO"):
        scan = scan_images([photo_folder], progress=False)
    assert len(scan.files) == 16
    assert sorted(p.name for p in scan.unreadable) == ["broken.jpg", "empty.png"]
    assert [p.name for p in scan.grayscale] == ["gray.png"]
    assert "16 usable, 1 skipped as grayscale, 2 skipped as unreadable" in caplog.text


def test_dataset_pairs_are_normalized_and_deterministic(photo_folder):
    files = scan_images([photo_folder], progress=False).files
    ds = ColorPhotoDataset(files, 32, train=True, seed=3, old_photo=OldPhotoFilter(tuple(FILTERS), p=1.0))
    l1, ab1 = ds[5]
    l2, ab2 = ds[5]
    assert l1.shape == (1, 32, 32) and ab1.shape == (2, 32, 32)
    assert l1.abs().max() <= 1 and ab1.abs().max() <= 1
    assert torch.equal(l1, l2) and torch.equal(ab1, ab2)
    ds.set_epoch(1)
    assert not torch.equal(ds[5][1], ab1)  # a new epoch draws new crops


def test_training_writes_checkpoint_metrics_and_generator(photo_folder, tmp_path):
    cfg = tiny_config(photo_folder, tmp_path / "run", val_data=(str(photo_folder),), val_every=2,
                      checkpoint_every=2, keep_checkpoints=True)
    trainer = build_trainer(cfg, progress=False)
    gen_path = trainer.fit()
    state = load_training(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert state.step == 4
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*.safetensors"))
    assert kept == ["step_0000002.safetensors", "step_0000004.safetensors"]
    assert load_training(tmp_path / "run" / "checkpoints" / kept[0]).step == 2
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {r["phase"] for r in rows if r["kind"] == "train"} == {"pretrain", "gan"}
    val = [r for r in rows if r["kind"] == "val"]
    assert len(val) == 2 and all(np.isfinite(r["delta_e"]) for r in val)
    assert (tmp_path / "run" / "samples" / "step_0000004.png").is_file()
    gen = load_generator(gen_path)
    assert gen.step == 4 and gen.generator_config["depth"] == 4 and gen.render_size == 32


def test_resume_continues_exactly(photo_folder, tmp_path):
    straight = build_trainer(tiny_config(photo_folder, tmp_path / "a"), progress=False)
    straight.fit()

    first = build_trainer(tiny_config(photo_folder, tmp_path / "b"), progress=False)
    first.fit(stop_after=3)
    assert first.step == 3
    resumed = build_trainer(tiny_config(photo_folder, tmp_path / "b"), progress=False)
    assert resumed.step == 3
    saved = load_training(tmp_path / "b" / "checkpoints" / "last.safetensors")
    for k, v in resumed.G.state_dict().items():
        assert torch.equal(v, saved.generator[k])
    resumed_opt, first_opt = resumed.opt_g.state_dict()["state"], first.opt_g.state_dict()["state"]
    assert resumed_opt.keys() == first_opt.keys()
    for idx, values in first_opt.items():
        assert all(torch.equal(values[k], resumed_opt[idx][k]) for k in values)
    resumed.fit()
    assert resumed.step == 4
    for k, v in straight.G.state_dict().items():
        assert torch.equal(v, resumed.G.state_dict()[k]), k
    for k, v in straight.D.state_dict().items():
        assert torch.equal(v, resumed.D.state_dict()[k]), k


def test_resume_with_other_settings_is_refused(photo_folder, tmp_path):
    build_trainer(tiny_config(photo_folder, tmp_path / "r"), progress=False).fit(stop_after=1)
    with pytest.raises(ValueError, match="lr"):
        build_trainer(tiny_config(photo_folder, tmp_path / "r", lr=1e-3), progress=False)
    # step counts may change: training longer is how a run is extended
    assert build_trainer(tiny_config(photo_folder, tmp_path / "r", gan_steps=5), progress=False).step == 1


def test_ema_generator_is_saved_and_preferred(photo_folder, tmp_path):
    cfg = tiny_config(photo_folder, tmp_path / "e", ema_decay=0.5)
    trainer = build_trainer(cfg, progress=False)
    trainer.fit()
    state = load_training(tmp_path / "e" / "checkpoints" / "last.safetensors")
    assert state.ema is not None
    gen = load_generator(tmp_path / "e" / "checkpoints" / "last.safetensors")
    key = next(k for k in state.ema if k.endswith("weight"))
    assert torch.equal(gen.state[key], state.ema[key])


def test_cli_help_explains(capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--pretrain-steps", "--gan-mode", "--old-photo", "--small", "resume"):
        assert option in out


def test_cli_reports_missing_folder(tmp_path, capsys):
    code = train_main([str(tmp_path / "nowhere"), "-o", str(tmp_path / "run"), "--quiet"])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_average_of_checkpoints(photo_folder, tmp_path):
    from colorizer.trainer.average import main as average_main

    cfg = tiny_config(photo_folder, tmp_path / "avg", checkpoint_every=2, keep_checkpoints=True)
    build_trainer(cfg, progress=False).fit()
    kept = sorted((tmp_path / "avg" / "checkpoints").glob("step_*.safetensors"))
    assert average_main([str(tmp_path / "mean.safetensors"), *map(str, kept)]) == 0
    mean = load_generator(tmp_path / "mean.safetensors")
    a, b = (load_generator(k).state for k in kept)
    key = next(k for k in a if k.endswith("weight"))
    assert torch.allclose(mean.state[key], (a[key] + b[key]) / 2)
    assert mean.step == 4 and "averaged over steps 2, 4" in mean.training_data


def test_metrics_go_to_tensorboard_when_installed(tmp_path, monkeypatch):
    import sys
    import types

    from colorizer.trainer.metrics_log import MetricsLog

    calls = []

    class FakeWriter:
        def __init__(self, logdir):
            calls.append(("dir", logdir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def close(self):
            calls.append(("closed",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    log = MetricsLog(tmp_path)
    log.write(7, {"kind": "val", "phase": "gan", "delta_e": 3.5})
    log.close()
    assert ("val/delta_e", 3.5, 7) in calls and ("closed",) in calls
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["delta_e"] == 3.5


def test_a_stop_sent_to_the_whole_process_group_saves_a_checkpoint(photo_folder, tmp_path):
    """Ctrl-C in a terminal or `pkill -f colorizer-train` reaches the data-loading workers too; the
    training process must still save a checkpoint to resume from (its workers ignore the signal)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    command = [sys.executable, "-m", "colorizer.trainer.cli", str(photo_folder), "-o", str(run), "--size", "32",
               "--batch-size", "4", "--pretrain-steps", "100000", "--gan-steps", "0", "--generator-width", "4",
               "--generator-depth", "4", "--workers", "1", "--val-fraction", "0", "--log-every", "1",
               "--checkpoint-every", "100000", "--quiet"]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        metrics = run / "metrics.jsonl"
        while time.monotonic() < deadline and proc.poll() is None and not (
                metrics.is_file() and metrics.read_text().count('"train"') >= 2):
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        os.killpg(proc.pid, signal.SIGTERM)  # the training process and its loader worker alike
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert load_training(run / "checkpoints" / "last.safetensors").step >= 2


def test_stopping_the_workers_leaves_no_process_for_exit_to_wait_on():
    """Workers that ignore stop signals must be stopped by the run itself: multiprocessing's exit
    handler would SIGTERM them and wait for them forever (seen once in CI)."""
    import multiprocessing

    from torch.utils.data import DataLoader

    from colorizer.trainer.train import _ignore_stop_signals, _stop_workers

    batches = iter(DataLoader(list(range(64)), batch_size=4, num_workers=1, worker_init_fn=_ignore_stop_signals))
    next(batches)
    assert multiprocessing.active_children()
    _stop_workers(batches)
    assert not multiprocessing.active_children()
    _stop_workers(None)  # no loader yet: nothing to do


def test_the_chroma_hinge_penalizes_a_grayer_color_only():
    """Two predictions at the same L1 distance from the truth: the grayer one costs more with the
    under-saturation hinge, the more colorful one costs no more than its L1."""
    from colorizer.trainer.config import TrainConfig
    from colorizer.trainer.train import pixel_loss

    truth = torch.zeros(1, 2, 4, 4)
    truth[:, 0] = 0.3
    grayer, stronger = truth.clone(), truth.clone()
    grayer[:, 0], stronger[:, 0] = 0.1, 0.5
    plain = TrainConfig(data=("x",), out="y")
    hinged = TrainConfig(data=("x",), out="y", chroma_weight=2.0)
    assert pixel_loss(grayer, truth, plain).item() == pytest.approx(pixel_loss(stronger, truth, plain).item())
    assert pixel_loss(stronger, truth, hinged).item() == pytest.approx(pixel_loss(stronger, truth, plain).item())
    assert pixel_loss(grayer, truth, hinged).item() == pytest.approx(pixel_loss(grayer, truth, plain).item() + 2 * 0.2)


def test_saved_generators_and_atomic_files_get_the_users_permissions(tmp_path):
    """safetensors writes its file 0600; atomic_path gives the file back the mode it created it with
    (0666 less the umask), so a generator the trainer saves is readable as any file the user writes."""
    import os
    import stat

    from colorizer.fileio import atomic_path
    from colorizer.trainer.checkpoint import save_generator
    from colorizer.trainer.networks import GeneratorConfig, define_generator

    umask = os.umask(0o022)
    os.umask(umask)
    expected = 0o666 & ~umask
    config = GeneratorConfig(name="effunet", width=4, depth=5)
    path = tmp_path / "g.safetensors"
    save_generator(path, define_generator(config).state_dict(), generator_config=config.to_dict(), render_size=64,
                   step=1, training_data="synthetic")
    assert stat.S_IMODE(os.stat(path).st_mode) == expected
    with atomic_path(tmp_path / "replaced.bin") as partial:  # a writer that replaces the file with its own
        os.unlink(partial)
        fd = os.open(partial, os.O_CREAT | os.O_WRONLY, 0o600)
        os.write(fd, b"x")
        os.close(fd)
    assert stat.S_IMODE(os.stat(tmp_path / "replaced.bin").st_mode) == expected
