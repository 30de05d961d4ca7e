"""Transformation robustness for feature visualization: before every step each image is shifted, scaled and
rotated by a small random amount, so the optimisation can only raise the objective with patterns that survive
those changes, not with adversarial pixel noise (Mordvintsev et al. 2015, "Inceptionism"; Olah et al. 2017,
"Feature Visualization", Distill).

The three are one affine map per image, applied with ``affine_grid`` / ``grid_sample`` (bilinear, edges
reflected so no blank border appears), so they cost one resampling whatever is switched on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class RandomAffine:
    """Random shift of up to ``jitter`` pixels each way, scale in [1 - ``scale``, 1 + ``scale``], rotation in
    [-``degrees``, ``degrees``]; all zero: the identity."""

    jitter: float
    scale: float
    degrees: float

    @property
    def identity(self) -> bool:
        return self.jitter == 0 and self.scale == 0 and self.degrees == 0

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W), each image with its own random draw."""
        if self.identity:
            return images
        batch, _, height, width = images.shape
        draws = torch.rand(batch, 4, generator=generator) * 2 - 1  # uniform in [-1, 1]
        shift_x, shift_y = draws[:, 0] * self.jitter, draws[:, 1] * self.jitter  # in pixels
        zoom = 1 + draws[:, 2] * self.scale
        angle = draws[:, 3] * math.radians(self.degrees)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        aspect = height / width
        # Output pixel -> input pixel: rotate and scale about the centre, then shift. In affine_grid's coordinates
        # (-1 to 1 across each axis) a rotation of a non-square image needs the aspect ratio on its off-diagonal.
        theta = torch.stack([
            torch.stack([cos, -sin * aspect, 2 * shift_x / width], dim=1),
            torch.stack([sin / aspect, cos, 2 * shift_y / height], dim=1),
        ], dim=1).to(images)  # (B, 2, 3)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
