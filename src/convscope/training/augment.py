"""Light augmentation for robustness to drawn digits: random affine warps and occasional stroke thickening.

Runs on whole batches on the training device (one ``affine_grid`` + ``grid_sample``), so it costs little.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION_DEG = 12.0
SCALE_RANGE = (0.9, 1.1)
MAX_SHIFT_PX = 2.0
THICKEN_PROBABILITY = 0.2


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1] -> the same shape, each image warped by its own random affine map."""
    b, _, h, _ = x.shape

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, generator=generator) * (high - low) + low

    angle = uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG) * (math.pi / 180)
    scale = uniform(*SCALE_RANGE)
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * (2 * MAX_SHIFT_PX / h)  # in [-1, 1] grid units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    thicken = (torch.rand(b, generator=generator) < THICKEN_PROBABILITY).to(x.device).view(b, 1, 1, 1)
    thick = F.max_pool2d(warped, 3, stride=1, padding=1)
    # Blend rather than replace: a full 3x3 dilation is far thicker than any MNIST stroke.
    return torch.where(thicken, 0.5 * warped + 0.5 * thick, warped)
