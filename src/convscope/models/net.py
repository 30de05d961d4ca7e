"""The MNIST networks' container: an ordered list of named layers ending in a softmax.

The network takes images in [0, 1] and normalises them itself, so attributions are taken with respect to pixels.
Inspection does not rely on this class: it sees any module through its graph (:mod:`convscope.models.graph`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Layer:
    name: str
    module: nn.Module


class LayeredNet(nn.Sequential):
    """``nn.Sequential`` of named layers ending in a softmax; ``forward`` returns probabilities.

    ``logits`` runs every layer but the final softmax (what training and CAM targets use).
    """

    def __init__(self, layers: list[Layer], mean: float = 0.0, std: float = 1.0):
        if not layers or not isinstance(layers[-1].module, nn.Softmax):
            raise ValueError("a LayeredNet ends with a softmax layer")
        super().__init__(OrderedDict((layer.name, layer.module) for layer in layers))
        # Buffers, so they travel with the weights in a checkpoint.
        self.register_buffer("input_mean", torch.tensor(float(mean)))
        self.register_buffer("input_std", torch.tensor(float(std)))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] -> (B, num_classes) pre-softmax scores."""
        x = self.normalize(x)
        for module in list(self)[:-1]:
            x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] -> (B, num_classes) probabilities."""
        return super().forward(self.normalize(x))
