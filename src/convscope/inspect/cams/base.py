"""The class-activation-map pipeline. Subclasses change one step: how channel weights are formed (``weights``) or,
for methods that weight each position, how activations and gradients combine (``combine``).

Shapes: activations ``A`` and gradients ``G = d y^c / d A`` are (B, K, h, w) for the chosen conv layer and target
class score ``y^c`` (pre-softmax). The map is (B, h, w), then upsampled to the input size and scaled to [0, 1].
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F


class CAM:
    """A class activation map method: ``combine`` turns a layer's activations and the target's gradients there
    (B, K, h, w) into a map (B, h, w)."""

    name: ClassVar[str]
    title: ClassVar[str]
    paper: ClassVar[str]

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w), (B, K, h, w) -> (B, K) channel weights."""
        raise NotImplementedError

    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w), (B, K, h, w) -> (B, h, w) map at the layer's resolution: ReLU(sum_k w_k A_k)."""
        weights = self.weights(activations, gradients)
        return F.relu((weights[:, :, None, None] * activations).sum(dim=1))


def upsample_and_scale(layer_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) -> (B, H, W): bilinear upsampling to the input size, then each map divided by its maximum
    (all-zero maps stay zero: the class has no positive evidence at this layer)."""
    up = F.interpolate(layer_map[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    peak = up.flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None]
    return (up / peak).clamp(0, 1)
