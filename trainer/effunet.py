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
    """×2 bilinear upsampling, concatenation with the skip features, ``convs`` 3×3 conv-BN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, convs: int = 2) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        layers = conv_bn_relu(in_channels + skip_channels, out_channels)
        for _ in range(convs - 1):
            layers += conv_bn_relu(out_channels, out_channels)
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], 1))


class EffUNetGenerator(nn.Module):
    """L (N, 1, H, W) → ab (N, 2, H, W); ``cfg.width`` is the width of the full-resolution head."""

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
        self.up16 = UpBlock(c32, c16, widths[4])
        self.up8 = UpBlock(widths[4], c8, widths[3])
        self.up4 = UpBlock(widths[3], c4, widths[2])
        # One convolution at the two largest scales: they cost most, and chroma is smooth there.
        self.up2 = UpBlock(widths[2], c2, widths[1], convs=1)
        self.up1 = UpBlock(widths[1], 1, widths[0], convs=1)  # full resolution: sees L again
        self.head = nn.Sequential(nn.Conv2d(widths[0], 2, 3, padding=1), nn.Tanh())

    def decoder_modules(self) -> list[nn.Module]:
        return [self.up16, self.up8, self.up4, self.up2, self.up1, self.head]

    def load_pretrained_encoder(self) -> None:
        load_imagenet_weights(self.encoder)

    def train(self, mode: bool = True) -> EffUNetGenerator:
        super().train(mode)
        for m in self.encoder.modules():  # ImageNet BatchNorm statistics are kept, not re-estimated
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        gray = l_norm_to_gray_srgb(l_norm)
        f2, f4, f8, f16, f32 = self.encoder.features((gray.expand(-1, 3, -1, -1) - self.mean) / self.std)
        x = self.up16(f32, f16)
        x = self.up8(x, f8)
        x = self.up4(x, f4)
        x = self.up2(x, f2)
        x = self.up1(x, l_norm)
        return self.head(x)
