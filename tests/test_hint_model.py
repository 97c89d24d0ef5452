"""Hint-conditioned models (#21): the trainer's hint inputs, the ONNX export with the hint guidance
input and its contract, FP16/INT8, and the runtime feeding guidance to such a model (and the spread
to every other)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from tiny_model import tiny_onnx

from colorizer.colorize import model_guidance, predict_prepared, prepare
from colorizer.contract import (
    FORMAT_VERSION,
    HINT_INPUT_NAME,
    HINTS_FORMAT_VERSION,
    INPUT_NAME,
    ContractError,
    HintInputs,
    ModelContract,
)
from colorizer.desktop.backends import ClosesOnExit
from colorizer.hint_guidance import guidance_map
from colorizer.hint_spread import place_hints
from colorizer.hints import HintPoint, PhotoHints, simulated_hints
from colorizer.trainer.checkpoint import save_generator
from colorizer.trainer.networks import GeneratorConfig, define_generator

HINTED = GeneratorConfig(name="effunet", width=4, depth=5, hint_channels=3)
PLAIN = GeneratorConfig(name="effunet", width=4, depth=5)


def hint_generator_file(path: Path, seed: int = 0) -> Path:
    """A tiny effunet with hint inputs whose guidance weights are not zero (as after training)."""
    torch.manual_seed(seed)
    net = define_generator(HINTED)
    with torch.no_grad():
        for block in net._up_blocks():
            block.conv[0].weight[:, -3:].normal_(0, 0.5)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    save_generator(path, net.state_dict(), generator_config=HINTED.to_dict(), render_size=64, step=3,
                   training_data="synthetic")
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    import cv2

    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(4):
        y, x = np.mgrid[0:72, 0:96]
        rgb = np.stack([x * 2 + 40 * i, y * 3, 255 - x * 2], -1).clip(0, 255).astype(np.uint8)
        rgb = (rgb + rng.integers(0, 20, rgb.shape)).clip(0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"p{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory, photos):
    from colorizer.exporter.export import export_model

    tmp = tmp_path_factory.mktemp("hinted")
    gen = hint_generator_file(tmp / "hinted.safetensors")
    return export_model(gen, tmp / "model", name="hinted", version="t4", chroma_gain=1.3,
                        int8_photos=[photos])


def test_warm_start_adds_zero_guidance_weights_so_step_0_is_the_old_model(tmp_path):
    from colorizer.trainer.train import _warm_start_state

    torch.manual_seed(1)
    plain = define_generator(PLAIN).eval()
    path = tmp_path / "plain.safetensors"
    save_generator(path, plain.state_dict(), generator_config=PLAIN.to_dict(), render_size=64, step=1,
                   training_data="x")
    hinted = define_generator(HINTED)
    hinted.load_state_dict(_warm_start_state(path, HINTED))
    hinted.eval()
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(hinted(x, torch.rand(2, 3, 64, 96)), plain(x))
        torch.testing.assert_close(hinted(x), plain(x))
    with pytest.raises(ValueError, match="generator settings"):
        _warm_start_state(path, GeneratorConfig(name="effunet", width=8, depth=5, hint_channels=3))
    with pytest.raises(ValueError, match="effunet"):
        define_generator(GeneratorConfig(hint_channels=3))


def test_warm_start_drops_the_guidance_weights_of_a_hint_model_for_a_plain_run(tmp_path):
    """--init-from a generator with hint inputs (the shipped one) into a run without: the plain
    generator computes what the hint model does without hints."""
    from colorizer.trainer.checkpoint import load_generator
    from colorizer.trainer.train import _warm_start_state

    path = hint_generator_file(tmp_path / "hinted.safetensors")  # guidance weights not zero
    hinted = define_generator(HINTED)
    hinted.load_state_dict(load_generator(path).state)
    plain = define_generator(PLAIN)
    plain.load_state_dict(_warm_start_state(path, PLAIN))
    hinted.eval(), plain.eval()
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(plain(x), hinted(x, torch.zeros(2, 3, 64, 96)))
        assert not torch.allclose(plain(x), hinted(x, torch.full((2, 3, 64, 96), 0.5)))
    again = _warm_start_state(path, HINTED)  # a hint run from a hint generator: its weights as they are
    assert all(torch.equal(again[k], v) for k, v in load_generator(path).state.items())


def test_hint_encoder_starts_as_the_hint_model_without_it_and_exports_with_parity(tmp_path):
    """--hint-encoder: the guidance also enters the encoder through new weights, zero when warm-started
    from a hint generator without them (step 0 computes what that one did); once they are not zero the
    guidance changes the encoder's features, a photo without hints is unchanged, and the ONNX export
    (and the INT8 twin's L-only weights) carry them."""
    from colorizer.exporter.export import export_model
    from colorizer.trainer.checkpoint import load_generator
    from colorizer.trainer.train import _warm_start_state, without_guidance_inputs

    enc = GeneratorConfig(name="effunet", width=4, depth=5, hint_channels=3, hint_encoder=True)
    path = hint_generator_file(tmp_path / "hinted.safetensors")
    base = define_generator(HINTED)
    base.load_state_dict(load_generator(path).state)
    net = define_generator(enc)
    net.load_state_dict(_warm_start_state(path, enc))
    base.eval(), net.eval()
    x, guide = torch.rand(2, 1, 64, 96) * 2 - 1, torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(net(x, guide), base(x, guide))
        for conv in net.encoder_guides:
            conv.weight.normal_(0, 0.5)
        assert not torch.allclose(net(x, guide), base(x, guide), atol=1e-4)
        torch.testing.assert_close(net(x), base(x))  # no hint: zero guidance adds nothing
        plain = define_generator(PLAIN).eval()
        plain.load_state_dict(without_guidance_inputs(net.state_dict(), enc))
        torch.testing.assert_close(plain(x), net(x))
    trained = tmp_path / "enc.safetensors"
    save_generator(trained, net.state_dict(), generator_config=enc.to_dict(), render_size=64, step=5,
                   training_data="synthetic")
    result = export_model(trained, tmp_path / "model", name="enc", version="t", fp16=False)
    assert result.parity.passed
    with pytest.raises(ValueError, match="generator settings"):  # dropping the encoder's hint weights
        _warm_start_state(trained, HINTED)


def test_guidance_is_zero_without_hints_and_the_hint_color_at_a_hint():
    lum = np.tile(np.linspace(20, 80, 64, dtype=np.float32), (48, 1))
    assert not guidance_map(lum, None).any()
    hints = place_hints(PhotoHints((HintPoint(10, 20, "#c03020", 3),)), (48, 64), (48, 64))
    g = guidance_map(lum, hints)
    assert g.shape == (3, 48, 64) and g.dtype == np.float32
    np.testing.assert_allclose(g[:2, 20, 10] * 110, hints.ab[0], atol=1e-3)
    assert g[2, 20, 10] == 1.0 and g[2].min() >= 0 and g[2, 20, 60] < g[2, 20, 14]


def test_training_samples_carry_the_runtime_guidance(tmp_path, photos):
    from colorizer.trainer.data import ColorPhotoDataset, HintSampling

    files = sorted(photos.glob("*.png"))
    data = ColorPhotoDataset(files, 64, train=True, hints=HintSampling(p_none=0.0))
    l_t, ab_t, g_t = data[0]
    assert l_t.shape == (1, 64, 64) and ab_t.shape == (2, 64, 64) and g_t.shape == (3, 64, 64)
    assert float(g_t[2].max()) == 1.0  # at least one hint
    hinted = g_t[2] == 1.0
    # hints carry the true colors (sRGB hex of the patch mean: within a quantization step)
    assert float((g_t[:2][:, hinted] - ab_t[:, hinted]).abs().mean()) < 0.05
    assert len(ColorPhotoDataset(files, 64, train=True)[0]) == 2  # no hint inputs: (L, ab) as before
    none = ColorPhotoDataset(files, 64, train=True, hints=HintSampling(p_none=1.0))[0][2]
    assert not none.any()


def test_a_training_step_with_hints(tmp_path, photos):
    from colorizer.trainer.config import TrainConfig
    from colorizer.trainer.train import Trainer

    cfg = TrainConfig(data=(str(photos),), out=str(tmp_path / "run"), size=64, batch_size=2, pretrain_steps=2,
                      gan_steps=0, generator=HINTED, encoder_lr_scale=0, workers=0, val_images=1, samples=1,
                      val_every=2, checkpoint_every=2, log_every=1, hint_p_none=0.0, pixel_loss="huber")
    trainer = Trainer(cfg, progress=False)
    generator = trainer.fit()
    assert trainer.step == 2 and generator.is_file()
    weights = trainer.G.up16.conv[0].weight[:, -3:]
    assert weights.abs().sum() > 0  # the guidance weights learn (from zero)


def warm_started_trainer(tmp_path: Path, photos: Path, steps: int, **options):
    """(the start: a tiny generator without hint inputs, a Trainer of the same with them warm-started
    from it for ``steps`` steps of 2 crops of 64 px, with ``options``)."""
    from colorizer.trainer.config import TrainConfig
    from colorizer.trainer.train import Trainer

    start = tmp_path / "start.safetensors"
    save_generator(start, define_generator(PLAIN).state_dict(), generator_config=PLAIN.to_dict(), render_size=64,
                   step=0, training_data="synthetic")
    cfg = TrainConfig(data=(str(photos),), out=str(tmp_path / "run"), size=64, batch_size=2, pretrain_steps=steps,
                      gan_steps=0, generator=HINTED, init_from=str(start), workers=0, val_images=1, samples=1,
                      val_every=steps, checkpoint_every=steps, log_every=1, pixel_loss="huber", **options)
    return start, Trainer(cfg, progress=False)


def test_hint_weights_only_leaves_the_model_without_hints_exactly_as_it_started(tmp_path, photos):
    """--hint-weights-only: only the guidance channels of each decoder stage's first convolution learn;
    every other weight and every BatchNorm statistic stays, so with zero guidance the trained model
    computes what the generator it started from did (to the bit), and with hints it does not."""
    from colorizer.trainer.checkpoint import load_generator

    start, trainer = warm_started_trainer(tmp_path, photos, steps=3, hint_weights_only=True, hint_p_none=0.0,
                                          ema_decay=0.9)
    generator = trainer.fit()
    before, after = define_generator(PLAIN), define_generator(HINTED)
    before.load_state_dict(load_generator(start).state)
    after.load_state_dict(load_generator(generator).state)
    before.eval(), after.eval()
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    guidance = torch.zeros(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(after(x, guidance), before(x))
        guidance[:, 0], guidance[:, 2] = 0.5, 1.0
        assert not torch.allclose(after(x, guidance), before(x))
    state = load_generator(generator).state
    start_state = load_generator(start).state
    grown = [k for k in start_state if state[k].shape != start_state[k].shape]  # the stages' first convolutions
    assert len(grown) == 5 and all(torch.equal(state[k][:, :-3], start_state[k]) for k in grown)
    assert all(state[k][:, -3:].abs().sum() > 0 for k in grown)  # the guidance weights learned (from zero)
    changed = [k for k in start_state if k not in grown and not torch.equal(state[k], start_state[k])]
    assert changed == [], changed  # every other weight and statistic the start had is unchanged


def test_no_hint_teacher_gives_samples_without_hints_the_start_s_colors(tmp_path, photos):
    """--no-hint-teacher: a sample given no hint learns what the generator it started from predicts
    (a frozen copy), a hinted one the truth; the whole decoder trains (not only the guidance weights)."""
    from colorizer.trainer.checkpoint import load_generator

    start, trainer = warm_started_trainer(tmp_path, photos, steps=2, no_hint_teacher=True, hint_p_none=0.5,
                                          ema_decay=0)
    plain = define_generator(PLAIN)
    plain.load_state_dict(load_generator(start).state)
    plain.eval()
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    truth = torch.rand(3, 2, 64, 64) * 2 - 1
    guidance = torch.zeros(3, 3, 64, 64)
    guidance[1, 0], guidance[1, 2] = 0.3, 1.0  # only the middle sample has a hint
    taught = trainer.taught_targets(x, truth, guidance)
    with torch.no_grad():
        expected = plain(x)
    assert torch.allclose(taught[[0, 2]], expected[[0, 2]], atol=1e-5)
    assert torch.equal(taught[1], truth[1])
    assert torch.equal(trainer.taught_targets(x[1:2], truth[1:2], guidance[1:2]), truth[1:2])
    first = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    trainer.fit()
    key = "up16.conv.0.weight"  # a decoder stage's first convolution: its L-feature weights learn too
    assert not torch.equal(trainer.G.state_dict()[key][:, :-3], first[key][:, :-3])
    with torch.no_grad():  # the teacher stays what the start was
        assert torch.allclose(trainer.teacher(x, torch.zeros(3, 3, 64, 64)), expected, atol=1e-5)
    assert all(torch.equal(v, first[k]) for k, v in trainer.teacher.state_dict().items())


def test_no_hint_copies_train_each_hinted_sample_also_without_its_hints_on_the_teacher(tmp_path, photos,
                                                                                       monkeypatch):
    """--no-hint-copies: a step's batch gets, for each sample with hints, the same L with zero guidance,
    whose target is the teacher's colors; samples without hints are not copied."""
    _, trainer = warm_started_trainer(tmp_path, photos, steps=1, no_hint_teacher=True, no_hint_copies=True,
                                      ema_decay=0)
    seen = {}

    def spy(fake, ab):
        seen["fake"], seen["ab"] = fake.detach(), ab.detach()
        return torch.nn.functional.l1_loss(fake, ab)

    monkeypatch.setattr(trainer, "pixel_loss", spy)
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    truth = torch.rand(3, 2, 64, 64) * 2 - 1
    guidance = torch.zeros(3, 3, 64, 64)
    guidance[[0, 2], 0], guidance[[0, 2], 2] = 0.3, 1.0  # samples 0 and 2 have hints, 1 has none
    with torch.no_grad():
        taught = trainer.teacher(x, torch.zeros_like(guidance))
    trainer.train_step(x, truth, guidance)
    assert seen["ab"].shape[0] == 5  # 3 samples + copies of the 2 hinted ones
    assert torch.equal(seen["ab"][[0, 2]], truth[[0, 2]])
    assert torch.allclose(seen["ab"][[1, 3, 4]], taught[[1, 0, 2]], atol=1e-5)
    with pytest.raises(ValueError, match="no-hint-copies needs"):
        warm_started_trainer(tmp_path / "b", photos, steps=1, no_hint_copies=True)


def test_keep_batchnorm_keeps_every_statistic_while_the_decoder_learns(tmp_path, photos):
    """--keep-batchnorm: the decoder's weights learn, but no BatchNorm statistic moves (by default
    only the encoder's are kept)."""
    from colorizer.trainer.checkpoint import load_generator

    start, trainer = warm_started_trainer(tmp_path, photos, steps=2, keep_batchnorm=True, hint_p_none=0.0,
                                          ema_decay=0)
    generator = trainer.fit()
    state, start_state = load_generator(generator).state, load_generator(start).state
    statistics = [k for k in start_state if k.endswith(("running_mean", "running_var"))]
    assert any(k.startswith("up") for k in statistics)
    assert all(torch.equal(state[k], start_state[k]) for k in statistics)
    assert not torch.equal(state["head.0.weight"], start_state["head.0.weight"])  # the decoder learned

    _, plain_run = warm_started_trainer(tmp_path / "b", photos, steps=2, hint_p_none=0.0, ema_decay=0)
    state = load_generator(plain_run.fit()).state  # without it the decoder's statistics follow the batches
    assert not all(torch.equal(state[k], start_state[k]) for k in statistics if k.startswith("up"))


def test_no_hint_teacher_needs_hint_inputs_and_a_start(tmp_path, photos):
    from colorizer.trainer.config import TrainConfig
    from colorizer.trainer.train import Trainer

    cfg = TrainConfig(data=(str(photos),), out=str(tmp_path / "run"), size=64, generator=HINTED, no_hint_teacher=True)
    with pytest.raises(ValueError, match="--no-hint-teacher needs"):
        Trainer(cfg, progress=False)


def test_export_writes_the_hint_input_and_its_contract(exported):
    model = onnx.load(str(exported.onnx))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert inputs == {INPUT_NAME: ["batch", 1, "height", "width"], HINT_INPUT_NAME: ["batch", 3, "height", "width"]}
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["colorizer.format_version"] == str(HINTS_FORMAT_VERSION)
    spec = json.loads(meta["colorizer.hint_inputs"])
    assert spec["name"] == HINT_INPUT_NAME and spec["channels"] == ["a/110", "b/110", "confidence"]
    assert spec["shape"] == ["batch", 3, "height", "width"] and spec["guidance_version"] == 1
    assert spec["spread"]["method"] == "geodesic"
    contract = ModelContract.from_metadata(meta)
    assert contract.takes_hints and contract.hint_inputs.name == HINT_INPUT_NAME
    assert exported.parity.passed and exported.fp16_parity.passed  # both checked with guidance
    fp16 = onnx.load(str(exported.fp16_onnx))
    assert {i.name for i in fp16.graph.input} == {INPUT_NAME, HINT_INPUT_NAME}
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in fp16.graph.input)


def test_the_contract_records_the_spread_the_model_was_trained_with(tmp_path, photos):
    """The trainer records the spread settings its guidance was made with beside the weights (final
    generator and training checkpoint); the exporter copies them into the contract, so the runtime
    makes the same guidance even if the defaults change later. Files from before: the defaults."""
    import dataclasses

    from colorizer.exporter.onnx_export import build_contract, load_eval_generator
    from colorizer.hint_spread import DEFAULT_PARAMS
    from colorizer.trainer.checkpoint import load_generator

    _, trainer = warm_started_trainer(tmp_path, photos, steps=1, ema_decay=0)
    generator = trainer.fit()
    defaults = dataclasses.asdict(DEFAULT_PARAMS)
    assert load_generator(generator).hint_spread == defaults
    assert load_generator(trainer.checkpoint_path).hint_spread == defaults
    from colorizer.trainer.average import main as average_main

    averaged = tmp_path / "averaged.safetensors"
    assert average_main([str(averaged), str(generator), str(trainer.checkpoint_path)]) == 0
    assert load_generator(averaged).hint_spread == defaults  # kept by every file written from a loaded one

    other = {**defaults, "sigma_distance": 0.5, "grid": 64}
    path = tmp_path / "other.safetensors"
    state = load_generator(generator).state
    save_generator(path, state, generator_config=HINTED.to_dict(), render_size=64, step=1, training_data="x",
                   hint_spread=other)
    assert build_contract(load_eval_generator(path), "m", "1").hint_inputs.spread == other
    old = tmp_path / "old.safetensors"  # written before the spread was recorded
    save_generator(old, state, generator_config=HINTED.to_dict(), render_size=64, step=1, training_data="x")
    assert load_generator(old).hint_spread is None
    assert build_contract(load_eval_generator(old), "m", "1").hint_inputs.spread == defaults


def test_onnx_matches_pytorch_with_guidance(exported, tmp_path):
    import onnxruntime as ort

    from colorizer.exporter.onnx_export import load_eval_generator

    loaded = load_eval_generator(exported.onnx.parent.parent / "hinted.safetensors", chroma_gain=1.3)
    session = ort.InferenceSession(str(exported.onnx), providers=["CPUExecutionProvider"])
    lum = np.tile(np.linspace(10, 90, 96, dtype=np.float32), (64, 1))
    prepared = prepare(np.repeat((lum[..., None] * 2.55).astype(np.uint8), 3, -1), 96, 32)
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[..., 0] = 200
    hinted = prepared.with_hints(simulated_hints(rgb, 3, np.random.default_rng(0)), (64, 96))
    guidance = model_guidance(hinted, ModelContract(32, 96, hint_inputs=HintInputs()))[None]
    x = hinted.model_input[None]
    (got,) = session.run(None, {INPUT_NAME: x, HINT_INPUT_NAME: guidance})
    with torch.inference_mode():
        expected = loaded.net(torch.from_numpy(x), torch.from_numpy(guidance)).numpy()
        no_hint = loaded.net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.abs(expected - no_hint).max() > 1e-3  # the guidance changes the colors
    # the chroma gain fades where the hints are confident: at a hint the model's own ab, elsewhere x1.3
    with torch.inference_mode():
        raw = loaded.net.net(torch.from_numpy(x), torch.from_numpy(guidance)).numpy()
    from colorizer.exporter.onnx_export import HINT_GAIN_FADE

    conf = guidance[:, 2:3]
    np.testing.assert_allclose(expected, raw * (1 + 0.3 * (1 - conf) ** HINT_GAIN_FADE), atol=1e-5)


def test_a_model_without_hint_inputs_keeps_working_unchanged(tmp_path):
    from colorizer.desktop.backends import open_backend
    from colorizer.desktop.backends.base import BackendError

    path = tiny_onnx(tmp_path)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["colorizer.format_version"] == str(FORMAT_VERSION) and "colorizer.hint_inputs" not in meta
    assert [i.name for i in onnx.load(str(path)).graph.input] == [INPUT_NAME]
    backend = open_backend(path, "cpu")
    assert not backend.contract.takes_hints
    x = np.zeros((1, 1, 32, 32), np.float32)
    assert backend.predict(x).shape == (1, 2, 32, 32)
    with pytest.raises(BackendError, match="no hint inputs"):
        backend.predict(x, hints=np.zeros((1, 3, 32, 32), np.float32))


def test_contract_refuses_unknown_hint_guidance():
    meta = ModelContract(32, 64, hint_inputs=HintInputs()).to_metadata()
    assert ModelContract.from_metadata(meta).takes_hints
    bad = dict(meta)
    spec = meta["colorizer.hint_inputs"]
    bad["colorizer.hint_inputs"] = spec.replace('"guidance_version": 1', '"guidance_version": 7')
    with pytest.raises(ContractError, match="guidance"):
        ModelContract.from_metadata(bad)
    missing = {k: v for k, v in meta.items() if k != "colorizer.hint_inputs"}
    with pytest.raises(ContractError, match="hint_inputs"):
        ModelContract.from_metadata(missing)


class Spy(ClosesOnExit):
    """A backend that records what the runtime gives it."""

    def __init__(self, backend) -> None:
        self.backend, self.contract, self.name, self.calls = backend, backend.contract, backend.name, []

    def predict(self, l_norm, hints=None):
        self.calls.append(hints)
        return self.backend.predict(l_norm, hints) if hints is not None else self.backend.predict(l_norm)

    def close(self) -> None:
        self.backend.close()


def gray_photo_with_hints(folder: Path) -> tuple[Path, PhotoHints]:
    import cv2

    from colorizer.hints import sidecar_path, write_hints

    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:80, 0:120]
    gray = (60 + x + (y > 40) * 50).clip(0, 255).astype(np.uint8)
    path = folder / "scan.png"
    cv2.imwrite(str(path), gray)
    hints = PhotoHints((HintPoint(20, 20, "#2060c0", 3), HintPoint(100, 60, "#c04020", 5)))
    write_hints(sidecar_path(path), hints)
    return path, hints


def test_the_runtime_feeds_guidance_to_a_hint_model_and_the_spread_to_a_plain_one(exported, tmp_path, monkeypatch):
    import colorizer.desktop.backends as backends
    from colorizer.desktop.cli import main as batch_main

    source, _ = gray_photo_with_hints(tmp_path / "in")
    opened: list[Spy] = []
    real_open = backends.open_backend

    def spy_open(*args, **kwargs):
        opened.append(Spy(real_open(*args, **kwargs)))
        return opened[-1]

    monkeypatch.setattr(backends, "open_backend", spy_open)
    outputs = {}
    for model, takes in ((exported.onnx, True), (tiny_onnx(tmp_path / "plain"), False)):
        out = tmp_path / f"out-{model.stem}"
        assert batch_main([str(source.parent), "-o", str(out), "--model", str(model), "--backend", "cpu", "-q"]) == 0
        report = json.loads((out / "colorize-report.json").read_text())["files"]
        assert report[0]["status"] == "done" and report[0]["hints"]["count"] == 2
        spy = opened[-1]
        assert len(spy.calls) == 1
        if takes:
            g = spy.calls[0]
            assert g.shape[:2] == (1, 3) and g[:, 2].max() == 1.0 and g[:, :2].any()  # the hints' guidance
        else:
            assert spy.calls[0] is None  # L only: the finish spreads the hints
        outputs[takes] = out
    # with either model the hinted colors come out at the hint (the finish touches up what is left)
    import cv2

    from colorizer.contract import rgb_to_lab
    for out in outputs.values():
        rgb = cv2.cvtColor(cv2.imread(str(next(out.glob("scan.*")))), cv2.COLOR_BGR2RGB)
        lab = rgb_to_lab(rgb)
        assert lab[20, 20, 2] < -15 and lab[60, 100, 1] > 15  # blue hint: b < 0; red hint: a > 0


def test_predict_prepared_gives_zero_guidance_without_hints(exported):
    from colorizer.desktop.backends import open_backend

    spy = Spy(open_backend(exported.onnx, "cpu"))
    prepared = prepare(np.full((40, 50, 3), 120, np.uint8), 64, 32)
    ab = predict_prepared(spy, [prepared, prepared])
    assert ab.shape == (2, 2, 64, 64)
    assert spy.calls[0].shape == (2, 3, 64, 64) and not spy.calls[0].any()


def test_a_guided_share_mixes_the_predictions_with_and_without_the_hints(exported):
    """A contract's guided_share below 1: where the hints reach, a photo with hints gets share x the
    guided prediction + the rest of the prediction without hints (a second call, zero guidance),
    fading to the latter as the spread's weights fade (their sum against the spread's floor); a batch
    without any hint is predicted once; the share survives the metadata and an old contract without
    it means 1."""
    from dataclasses import replace

    from colorizer.desktop.backends import open_backend

    backend = open_backend(exported.onnx, "cpu")
    contract = backend.contract
    mixed = Spy(backend)
    mixed.contract = replace(contract, hint_inputs=replace(contract.hint_inputs, guided_share=0.25))
    rgb = np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    plain = prepare(rgb, 64, 32)
    hinted = plain.with_hints(PhotoHints((HintPoint(10, 10, "#c02020"), HintPoint(30, 25, "#2040c0"))), (40, 50))
    ab = predict_prepared(mixed, [hinted, plain])
    guided, unguided = mixed.calls
    assert guided.any() and not unguided.any()  # the second call: zero guidance,
    assert len(guided) == 2 and len(unguided) == 1  # for the photo with hints only
    x = np.stack([hinted.model_input, plain.model_input])
    with_hints, without = backend.predict(x, hints=guided), backend.predict(x, hints=np.zeros_like(guided))
    floor = contract.hint_inputs.spread["floor"]
    summed = -np.log1p(-np.clip(guided[:, 2], 0, 1 - 1e-7))  # the spread weights' sum: 1 - exp(-sum)
    reach = np.minimum(1.0, summed / floor)[:, None]
    assert reach[0].max() == 1.0 and reach[0].min() < 0.5  # full at the hints, fading away from them
    assert np.allclose(ab, without + reach * 0.25 * (with_hints - without), atol=1e-5)
    assert not np.allclose(ab[0], with_hints[0], atol=1e-4)  # the guided prediction alone would differ
    assert np.allclose(ab[1], without[1], atol=1e-6)  # no hints: the model's own colors
    mixed.calls.clear()
    predict_prepared(mixed, [plain])
    assert len(mixed.calls) == 1  # nothing to mix
    mixed.calls.clear()  # the prediction without hints given (the app's preview has it): one call, same result
    assert np.array_equal(predict_prepared(mixed, [hinted, plain], unguided=without), ab)
    assert len(mixed.calls) == 1
    meta = mixed.contract.to_metadata()
    assert ModelContract.from_metadata(meta).hint_inputs.guided_share == 0.25
    old = dict(meta, **{"colorizer.hint_inputs": meta["colorizer.hint_inputs"].replace(', "guided_share": 0.25', "")})
    assert "guided_share" not in old["colorizer.hint_inputs"]
    assert ModelContract.from_metadata(old).hint_inputs.guided_share == 1.0
    with pytest.raises(ContractError, match="guided_share"):
        HintInputs(guided_share=0.0)


def test_the_int8_twin_of_a_hint_model_takes_l_only_and_the_runtime_says_so(exported, caplog):
    from colorizer.desktop.backends import open_backend

    int8 = onnx.load(str(exported.int8_onnx))
    assert [i.name for i in int8.graph.input] == [INPUT_NAME]
    meta = {p.key: p.value for p in int8.metadata_props}
    assert meta["colorizer.precision"] == "int8" and "colorizer.hint_inputs" not in meta
    assert exported.int8_parity.passed
    with caplog.at_level(logging.INFO):
        backend = open_backend(exported.onnx, "cpu", cpu_int8=True)
    assert backend.name.endswith("-int8") and not backend.contract.takes_hints
    assert "INT8 twin of this model has no hint inputs" in caplog.text
    # the runtime then takes the plain route: L only, the hints spread in the finish
    spy = Spy(backend)
    predict_prepared(spy, [prepare(np.full((40, 50, 3), 120, np.uint8), 64, 32)])
    assert spy.calls == [None]


def test_colorize_batch_says_where_the_int8_twin_spreads_hints_and_only_then(exported, tmp_path, capsys):
    """With --cpu-int8 a hint model runs as its L-only twin: colorize-batch says so on its line about
    hints, and says nothing (no warning) in a run without hints, the usual run of the shipped model."""
    from colorizer.desktop.cli import main as batch_main

    source, _ = gray_photo_with_hints(tmp_path / "in")
    args = ["--model", str(exported.onnx), "--backend", "cpu", "--cpu-int8"]
    assert batch_main([str(source.parent), "-o", str(tmp_path / "out"), *args]) == 0
    err = capsys.readouterr().err
    assert "1 photo with color hints (the INT8 twin has no hint inputs" in err
    assert batch_main([str(source.parent), "-o", str(tmp_path / "plain"), "--no-hints", *args]) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "hint inputs" in line or "color hints" in line]
    assert not [line for line in said if not line.startswith("INFO")], err  # at most the backend's info


def test_colorizer_eval_with_hints_on_a_hint_model(exported, photos, capsys):
    from colorizer.exporter.evaluate_cli import main

    assert main([str(exported.onnx), str(photos), "--hints", "3", "--quiet"]) == 0
    assert "dE at the hint pixels" in capsys.readouterr().out
    gen = exported.onnx.parent.parent / "hinted.safetensors"
    assert main([str(gen), str(photos), "--hints", "3", "--quiet"]) == 0


def test_a_film_s_tracked_hints_reach_a_hint_model_as_guidance(exported, tmp_path):
    """Films (and frame folders) call the model through predict_prepared too: a hint model gets each
    frame's guidance (zeros where the frame has no hint), not L alone."""
    from synthetic_media import write_clip

    from colorizer.desktop.backends import open_backend
    from colorizer.desktop.pipeline.settings import VideoSettings
    from colorizer.desktop.pipeline.video import colorize_video
    from colorizer.hints import FilmHints, FrameHints, sidecar_path, write_hints

    rng = np.random.default_rng(1)
    texture = (60 + 120 * rng.random((64, 120))).astype(np.uint8)
    clip = write_clip(tmp_path / "reel.mp4", [texture[:, i : i + 96] for i in range(8)], options={"crf": "4"})
    write_hints(sidecar_path(clip), FilmHints((FrameHints(3, (HintPoint(40, 30, "#2060c0", 5),)),)))
    with Spy(open_backend(exported.onnx, "cpu")) as spy:
        result = colorize_video(clip, tmp_path / "out.mp4", spy, VideoSettings(batch_size=1), hints=sidecar_path(clip))
    assert result.status == "done", result.reason
    assert len(spy.calls) == 8 and all(g is not None and g.shape[1] == 3 for g in spy.calls)
    hinted = [bool(g[:, 2].max() == 1.0) for g in spy.calls]  # confidence 1 at the hint's own pixels
    assert hinted[3] and sum(hinted) >= 2  # the key frame, and frames it was tracked to


def test_the_app_s_pausable_backend_and_preview_give_a_hint_model_its_guidance(exported, tmp_path):
    from dataclasses import replace

    from colorizer.colorize import merge_color
    from colorizer.desktop.app.worker import PausableBackend, RunControl
    from colorizer.desktop.backends import open_backend
    from colorizer.desktop.pipeline.hint_preview import HintPreview

    source, hints = gray_photo_with_hints(tmp_path / "in")
    with Spy(open_backend(exported.onnx, "cpu")) as spy:
        pausable = PausableBackend(spy, RunControl())
        prepared = prepare(np.full((40, 50, 3), 120, np.uint8), 64, 32).with_hints(hints, (80, 120))
        predict_prepared(pausable, [prepared])
        assert spy.calls[-1] is not None and spy.calls[-1][:, 2].max() == 1.0
        preview = HintPreview.open(source, spy)
        assert preview.predictor is spy and spy.calls[-1] is not None and not spy.calls[-1].any()  # no hint yet
        calls = len(spy.calls)
        with_hints, without = preview.render(hints), preview.render(None)
        assert len(spy.calls) == calls + 1 and spy.calls[-1][:, 2].max() == 1.0  # an edit: predicted again
        assert not np.array_equal(with_hints, without)
        # a guided share below 1: the run mixes in the prediction without hints; the preview reuses the
        # one it made at open (one call an edit) and shows the same colors as the run's two calls
        spy.contract = replace(spy.contract, hint_inputs=replace(spy.contract.hint_inputs, guided_share=0.5))
        preview = HintPreview.open(source, spy)
        calls = len(spy.calls)
        shown = preview.render(hints)
        assert len(spy.calls) == calls + 1
        prepared = preview.prepared.with_hints(hints, preview.full_hw)
        run = merge_color(prepared, predict_prepared(spy, [prepared])[0], preview.saturation, preview.upsampling,
                          np.uint8)
        assert len(spy.calls) == calls + 3 and np.array_equal(shown, run)
    # a model without hint inputs is predicted once; each edit only spreads
    with Spy(open_backend(tiny_onnx(tmp_path / "plain"), "cpu")) as plain:
        preview = HintPreview.open(source, plain)
        preview.render(hints)
        assert preview.predictor is None and plain.calls == [None]


def test_ray_s_inference_actor_gives_a_hint_model_its_guidance(exported, tmp_path):
    """--ray's predict stage (run here without Ray: the actor's call on a batch of read rows) hands a
    hint model the hints its rows were read with, as the local run does."""
    from colorizer.desktop.backends import open_backend
    from colorizer.desktop.pipeline import ray_runner
    from colorizer.desktop.pipeline.settings import ImageSettings
    from colorizer.hints import sidecar_path

    source, _ = gray_photo_with_hints(tmp_path / "in")
    rows = [ray_runner._read_row({"source": str(source), "output": str(tmp_path / "out.png"), "hints": hints},
                                 ImageSettings(), 64, 32) for hints in (str(sidecar_path(source)), "")]
    assert not rows[0]["error"]
    batch = {key: np.array([r[key] for r in rows], dtype=object) for key in rows[0]}
    actor = object.__new__(ray_runner._Predictor)
    with Spy(open_backend(exported.onnx, "cpu")) as spy:
        actor.backend, actor.batch_size = spy, 4
        actor(batch)
    assert len(spy.calls) == 1 and spy.calls[0].shape[:2] == (2, 3)
    assert spy.calls[0][0, 2].max() == 1.0 and not spy.calls[0][1].any()  # hints on the first row only


def test_a_film_frame_s_guidance_reuses_the_weights_computed_on_the_decode_thread(monkeypatch):
    """A film frame's hints come with their spread weights (FilmSpread, a coarser distance grid than the
    model's recorded spread): the guidance uses them instead of computing the distances again on the
    color thread; any other difference in the settings, or a photo's hints (no weights), computes them."""
    import dataclasses

    import colorizer.hint_guidance as guidance_module
    from colorizer.desktop.pipeline.hint_tracking import FILM_SPREAD, FilmSpread
    from colorizer.hint_spread import DEFAULT_PARAMS

    lum = np.tile(np.linspace(10, 90, 96, dtype=np.float32), (64, 1))
    prepared = prepare(np.repeat((lum[..., None] * 2.55).astype(np.uint8), 3, -1), 96, 32)
    hints = PhotoHints((HintPoint(10, 20, "#b03a2e"), HintPoint(70, 40, "#3a6ea5")))
    frame = FilmSpread().prepare(prepared, hints, (64, 96))
    assert frame.hints.weights is not None and frame.hints.params == FILM_SPREAD != DEFAULT_PARAMS
    contract = ModelContract(32, 96, hint_inputs=HintInputs(spread=dataclasses.asdict(DEFAULT_PARAMS)))
    expected = guidance_map(frame.l_render(frame.render_hw), frame.hints, FILM_SPREAD)

    computed = []
    real = guidance_module.hint_weights
    monkeypatch.setattr(guidance_module, "hint_weights", lambda *a, **k: computed.append(1) or real(*a, **k))
    np.testing.assert_array_equal(model_guidance(frame, contract), expected)
    assert computed == []  # the decode thread's weights were used
    other = ModelContract(32, 96, hint_inputs=HintInputs(spread=dataclasses.asdict(
        dataclasses.replace(DEFAULT_PARAMS, sigma_lightness=12.0))))
    model_guidance(frame, other)  # the model was trained with another spread: its own weights
    model_guidance(prepared.with_hints(hints, (64, 96)), contract)  # a photo: computed here
    assert len(computed) == 2
