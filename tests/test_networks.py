import pytest
import torch

from colorizer.trainer.networks import (
    DiscriminatorConfig,
    GANLoss,
    GeneratorConfig,
    define_discriminator,
    define_generator,
)


@pytest.mark.parametrize("depth,shape", [(4, (16, 16)), (5, (32, 64)), (6, (64, 128)), (6, (128, 64))])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_generator_shapes_and_range(depth, shape, norm):
    g = define_generator(GeneratorConfig(width=8, depth=depth, norm=norm)).eval()
    x = torch.rand(2, 1, *shape) * 2 - 1
    with torch.no_grad():
        y = g(x)
    assert y.shape == (2, 2, *shape)
    assert y.abs().max() <= 1


def test_generator_dropout_is_off_in_eval():
    g = define_generator(GeneratorConfig(width=8, depth=4)).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(g(x), g(x))


def test_weight_init_is_pix2pix_normal():
    g = define_generator(GeneratorConfig(width=16, depth=5))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.mean().item()) < 2e-3 and 0.015 < w.std().item() < 0.025


@pytest.mark.parametrize("name,expected", [("patchgan", (2, 1, 6, 6)), ("global", (2, 1))])
def test_discriminators(name, expected):
    d = define_discriminator(DiscriminatorConfig(name=name, width=8))
    assert d(torch.randn(2, 3, 64, 64)).shape == expected


def test_patchgan_default_is_70px_receptive_field():
    # conv k4: s2, s2, s2, s1, s1 -> receptive field 70
    rf, jump = 1, 1
    for m in define_discriminator(DiscriminatorConfig()).modules():
        if isinstance(m, torch.nn.Conv2d):
            rf += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    assert rf == 70


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown generator"):
        define_generator(GeneratorConfig(name="resnet"))
    with pytest.raises(ValueError, match="unknown discriminator"):
        define_discriminator(DiscriminatorConfig(name="pixel"))
    with pytest.raises(ValueError, match="unknown GAN loss"):
        GANLoss("wgan")


@pytest.mark.parametrize("mode", ["vanilla", "lsgan"])
def test_gan_loss_prefers_correct_labels(mode):
    loss = GANLoss(mode)
    confident_real = torch.full((4, 1), 5.0) if mode == "vanilla" else torch.ones(4, 1)
    assert loss(confident_real, True) < loss(confident_real, False)
