from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import CAM


class HiResCAM(CAM):
    """HiResCAM (Draelos & Carin, 2020, https://arxiv.org/abs/2011.08891): gradients multiply activations
    position by position instead of being averaged first, so the map reflects where the score really came from:
    map = ReLU(sum_k G_k * A_k)."""

    name, title = "hirescam", "HiResCAM"
    paper = "https://arxiv.org/abs/2011.08891"

    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return F.relu((gradients * activations).sum(dim=1))
