"""Generator and discriminators of the pix2pix colorizer, built by name through factories.

* ``unet``: U-Net generator, L (N, 1, H, W) in, ab (N, 2, H, W) out through tanh. ``depth``
  stride-2 stages, so H and W must be multiples of ``2 ** depth``. Dropout in the innermost
  stages plays the role of pix2pix's noise z.
* ``effunet``: the same contract, with an ImageNet-pretrained EfficientNet-Lite0 encoder
  (:mod:`colorizer.trainer.effunet`); depth 5, so H and W are multiples of 32.
* ``patchgan``: PatchGAN discriminator on concat(L, ab); ``n_layers=3`` gives the 70x70
  receptive field of pix2pix.
* ``global``: the global discriminator of the early seeds: a convolutional encoder and fully
  connected layers, one logit per image.

Weights are initialised N(0, 0.02) in one place, :func:`init_weights`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from colorizer.trainer.effunet import EffUNetGenerator


@dataclass(frozen=True)
class GeneratorConfig:
    name: str = "unet"  # unet | effunet
    width: int = 32  # channels of the first stage (pix2pix's ngf); effunet: of the full-resolution head
    depth: int = 6  # number of stride-2 stages; size multiple = 2 ** depth
    max_width_factor: int = 8  # channels stop growing at width * this
    norm: str = "batch"  # batch | instance
    dropout: float = 0.5  # in the innermost three decoder stages; 0 disables
    hint_channels: int = 0  # effunet: channels of the hint guidance input (0: none; 3: colorizer.hint_guidance)
    hint_encoder: bool = False  # effunet with hint inputs: the guidance also enters the encoder (strides 2 to 16)

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DiscriminatorConfig:
    name: str = "patchgan"  # patchgan | global
    width: int = 64  # pix2pix's ndf
    n_layers: int = 3
    norm: str = "batch"

    def to_dict(self) -> dict:
        return asdict(self)


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalization {kind!r}; use batch, instance or none")


class UNetStage(nn.Module):
    """One stage of the recursive U-Net: down, the inner stages, up, and the skip connection."""

    def __init__(
        self, outer: int, inner: int, submodule: nn.Module | None, *, norm: str, dropout: float,
        outermost: bool = False, in_channels: int | None = None, out_channels: int | None = None,
    ) -> None:
        super().__init__()
        bias = norm != "batch"
        in_channels = in_channels or outer
        self.outermost = outermost
        down = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)
        innermost = submodule is None
        up_in = inner if innermost else inner * 2
        if outermost:
            layers = [down, submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, out_channels or outer, 4, stride=2, padding=1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias), norm_layer(norm, outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, norm_layer(norm, inner), submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias), norm_layer(norm, outer)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.block(x)
        return torch.cat([x, self.block(x)], 1)


class UNetGenerator(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        if cfg.depth < 2:
            raise ValueError("U-Net depth must be at least 2")
        self.config = cfg
        widths = [min(cfg.width * 2**i, cfg.width * cfg.max_width_factor) for i in range(cfg.depth)]
        # Innermost first; dropout in the three innermost non-outermost stages, as in pix2pix.
        stage: nn.Module | None = None
        for i in range(cfg.depth - 1, 0, -1):
            use_dropout = cfg.dropout if (cfg.depth - 1 - i) in (1, 2, 3) else 0.0
            stage = UNetStage(widths[i - 1], widths[i], stage, norm=cfg.norm, dropout=use_dropout)
        self.model = UNetStage(widths[0], widths[0], stage, norm=cfg.norm, dropout=0.0, outermost=True,
                               in_channels=1, out_channels=2)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.model(l_norm)


class PatchGANDiscriminator(nn.Module):
    """Classifies overlapping patches of concat(L, ab) as real or fake (one logit per patch)."""

    def __init__(self, cfg: DiscriminatorConfig, in_channels: int = 3) -> None:
        super().__init__()
        bias = cfg.norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, cfg.width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, cfg.n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < cfg.n_layers else 1
            layers += [nn.Conv2d(cfg.width * prev, cfg.width * mult, 4, stride, 1, bias=bias),
                       norm_layer(cfg.norm, cfg.width * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(cfg.width * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class GlobalDiscriminator(nn.Module):
    """Convolutional encoder + fully connected layers, one logit per image (any input size)."""

    def __init__(self, cfg: DiscriminatorConfig, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for n in range(cfg.n_layers + 1):
            out = cfg.width * min(2**n, 8)
            layers += [nn.Conv2d(channels, out, 4, 2, 1), norm_layer(cfg.norm if n else "none", out),
                       nn.LeakyReLU(0.2, True)]
            channels = out
        self.encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * 16, 256), nn.LeakyReLU(0.2, True),
                                  nn.Linear(256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix initialisation: conv/linear weights N(0, gain), norm weights N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


_GENERATORS = {"unet": UNetGenerator, "effunet": EffUNetGenerator}
GENERATOR_NAMES = tuple(_GENERATORS)
PRETRAINED_GENERATORS = frozenset({"effunet"})
_DISCRIMINATORS = {"patchgan": PatchGANDiscriminator, "global": GlobalDiscriminator}


def define_generator(cfg: GeneratorConfig, pretrained: bool = False) -> nn.Module:
    """The generator named by ``cfg``, initialised; ``pretrained`` loads ImageNet weights into its encoder
    (generators that have one; weights that are loaded afterwards make it unnecessary)."""
    if cfg.name not in _GENERATORS:
        raise ValueError(f"unknown generator {cfg.name!r}; choose from {sorted(_GENERATORS)}")
    if cfg.hint_channels and cfg.name != "effunet":
        raise ValueError(f"hint inputs (hint_channels={cfg.hint_channels}) exist for the effunet generator only")
    net = _GENERATORS[cfg.name](cfg)
    init_weights(net)
    if cfg.hint_channels:
        net.zero_guidance_weights()
    if pretrained and cfg.name in PRETRAINED_GENERATORS:
        net.load_pretrained_encoder()
    return net


def hint_channels_of(net: nn.Module) -> int:
    """Channels of ``net``'s hint guidance input (0: it takes L only); a wrapper that hides the hint input
    (the exporter's ``WithoutHints``) says 0 itself."""
    return int(getattr(net, "hint_channels", 0))


def define_discriminator(cfg: DiscriminatorConfig) -> nn.Module:
    if cfg.name not in _DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {cfg.name!r}; choose from {sorted(_DISCRIMINATORS)}")
    net = _DISCRIMINATORS[cfg.name](cfg)
    init_weights(net)
    return net


class GANLoss(nn.Module):
    """Adversarial loss against a real/fake target: ``vanilla`` (BCE on logits) or ``lsgan`` (MSE)."""

    def __init__(self, mode: str = "vanilla") -> None:
        super().__init__()
        if mode == "vanilla":
            self.loss = nn.BCEWithLogitsLoss()
        elif mode == "lsgan":
            self.loss = nn.MSELoss()
        else:
            raise ValueError(f"unknown GAN loss {mode!r}; use vanilla or lsgan")
        self.mode = mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return self.loss(prediction, target)
