"""``effunet``: a U-Net whose encoder is an ImageNet-pretrained EfficientNet-Lite0.

Semantics decide color: a network that knows what a thing is knows its likely color. The
generator keeps the color contract exactly — input ``L`` = L/50 − 1 (N, 1, H, W), output ``ab`` =
ab/110 through tanh — by turning L into the gray sRGB image the encoder expects *inside* the
network (Lab L → relative luminance → sRGB gamma, replicated to three channels, ImageNet
normalization). H and W must be multiples of 32 (five stride-2 stages).

The decoder upsamples (bilinear) through the encoder's five scales, each step concatenating the
encoder's features at that scale, and ends in a full-resolution head that sees L again. The
encoder's BatchNorm statistics stay the ImageNet ones (its BatchNorm layers are kept in eval mode
while training, batches being small), so only its weights are fine-tuned.
"""

from __future__ import annotations

import torch
from torch import nn

from colorizer.trainer.efficientnet_lite import (
    FEATURE_CHANNELS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    STEM_CHANNELS,
    EfficientNetLite0,
    load_imagenet_weights,
)

_EPSILON = 216 / 24389  # CIE constants of the L* <-> Y conversion
_KAPPA = 24389 / 27


def l_norm_to_gray_srgb(l_norm: torch.Tensor) -> torch.Tensor:
    """Normalized L (L/50 − 1) → the sRGB value in [0, 1] of the gray pixel with that lightness."""
    lightness = (l_norm.clamp(-1, 1) + 1) * 50
    fy = (lightness + 16) / 116
    y = torch.where(lightness > _KAPPA * _EPSILON, fy * fy * fy, lightness / _KAPPA)
    return torch.where(y <= 0.0031308, 12.92 * y, 1.055 * y.clamp_min(1e-8) ** (1 / 2.4) - 0.055)


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)]


class UpBlock(nn.Module):
    """×2 bilinear upsampling, concatenation with the skip features (and the hint guidance at this
    scale, ``guide_channels``), ``convs`` 3×3 conv-BN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, convs: int = 2,
                 guide_channels: int = 0) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.guide_channels = guide_channels
        layers = conv_bn_relu(in_channels + skip_channels + guide_channels, out_channels)
        for _ in range(convs - 1):
            layers += conv_bn_relu(out_channels, out_channels)
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        parts = [self.up(x), skip] if guide is None else [self.up(x), skip, guide]
        return self.conv(torch.cat(parts, 1))


class EffUNetGenerator(nn.Module):
    """L (N, 1, H, W) → ab (N, 2, H, W); ``cfg.width`` is the width of the full-resolution head.

    With ``cfg.hint_channels`` (3: :mod:`colorizer.hint_guidance`) it also takes the dense hint
    guidance (N, 3, H, W): area-averaged to each decoder scale and concatenated into the input of
    every decoder stage. Those weights start at zero (:meth:`zero_guidance_weights`), so a generator
    warm-started from one without hints computes exactly what that one did until it learns.
    """

    def __init__(self, cfg) -> None:
        super().__init__()
        if cfg.depth != 5:
            raise ValueError("the effunet generator has exactly five stride-2 stages: use depth 5")
        self.config = cfg
        w = cfg.width
        widths = (w, 2 * w, 4 * w, 6 * w, 12 * w)  # decoder output at strides 1, 2, 4, 8, 16
        self.encoder = EfficientNetLite0(with_classifier=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        c2, c4, c8, c16, c32 = FEATURE_CHANNELS
        g = self.hint_channels = getattr(cfg, "hint_channels", 0)
        self.up16 = UpBlock(c32, c16, widths[4], guide_channels=g)
        self.up8 = UpBlock(widths[4], c8, widths[3], guide_channels=g)
        self.up4 = UpBlock(widths[3], c4, widths[2], guide_channels=g)
        # One convolution at the two largest scales: they cost most, and chroma is smooth there.
        self.up2 = UpBlock(widths[2], c2, widths[1], convs=1, guide_channels=g)
        self.up1 = UpBlock(widths[1], 1, widths[0], convs=1, guide_channels=g)  # full resolution: sees L again
        self.head = nn.Sequential(nn.Conv2d(widths[0], 2, 3, padding=1), nn.Tanh())
        # cfg.hint_encoder: the guidance, area-averaged, also added into the encoder after the stem and
        # the stride-2/4/8/16 stages (a 1x1 convolution each, zero at first): its deeper blocks then see hints
        self.hint_encoder = bool(g and getattr(cfg, "hint_encoder", False))
        if self.hint_encoder:
            self.encoder_guides = nn.ModuleList(nn.Conv2d(g, c, 1, bias=False)
                                                for c in (STEM_CHANNELS, c2, c4, c8, c16))

    def _up_blocks(self) -> list[UpBlock]:
        return [self.up16, self.up8, self.up4, self.up2, self.up1]

    def zero_guidance_weights(self) -> None:
        """The first convolution's weights on the guidance channels (the last ones of its input) := 0."""
        with torch.no_grad():
            for block in self._up_blocks():
                if block.guide_channels:
                    block.conv[0].weight[:, -block.guide_channels :].zero_()
            for conv in getattr(self, "encoder_guides", ()):
                conv.weight.zero_()

    def train_guidance_only(self) -> None:
        """Freeze everything but the guidance weights (the guidance channels of each decoder stage's
        first convolution) and keep every BatchNorm's statistics: with no hint (zero guidance) the
        network then computes exactly what it did before training, whatever training does."""
        self.requires_grad_(False)
        self.keep_batchnorm_statistics()
        for block in self._up_blocks():
            if not block.guide_channels:
                continue
            weight = block.conv[0].weight
            weight.requires_grad_(True)
            mask = torch.zeros_like(weight)
            mask[:, -block.guide_channels :] = 1.0
            weight.register_hook(lambda grad, mask=mask: grad * mask)

    def keep_batchnorm_statistics(self) -> None:
        """Every BatchNorm layer keeps its statistics in training (not only the encoder's): the decoder's
        stay those of the generator it started from, whatever batches with hints it sees."""
        self._keep_batchnorm = True

    def load_pretrained_encoder(self) -> None:
        load_imagenet_weights(self.encoder)

    def train(self, mode: bool = True) -> EffUNetGenerator:
        super().train(mode)
        kept = self if getattr(self, "_keep_batchnorm", False) else self.encoder
        for m in kept.modules():  # ImageNet BatchNorm statistics are kept, not re-estimated
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        gray = l_norm_to_gray_srgb(l_norm)
        if self.hint_channels:
            if hints is None:  # no hints: zero guidance (the model colors on its own)
                hints = l_norm.new_zeros(l_norm.shape[0], self.hint_channels, *l_norm.shape[-2:])
            g = [nn.functional.avg_pool2d(hints, k) for k in (16, 8, 4, 2)] + [hints]
        else:
            g = [None] * 5
        added = None
        if self.hint_encoder:  # after the stem (stride 2), blocks 0 (2), 2 (4), 4 (8) and 10 (16)
            guides = [g[3], g[3], g[2], g[1], g[0]]
            added = {k: conv(guide) for k, conv, guide in zip((-1, 0, 2, 4, 10), self.encoder_guides, guides,
                                                              strict=True)}
        f2, f4, f8, f16, f32 = self.encoder.features((gray.expand(-1, 3, -1, -1) - self.mean) / self.std, added)
        x = self.up16(f32, f16, g[0])
        x = self.up8(x, f8, g[1])
        x = self.up4(x, f4, g[2])
        x = self.up2(x, f2, g[3])
        x = self.up1(x, l_norm, g[4])
        return self.head(x)
