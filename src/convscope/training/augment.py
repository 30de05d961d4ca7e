"""Augmentation: for drawn digits, random affine warps and occasional stroke thickening (``augment_batch``); for
photos, random crops, mirroring and colour jitter (``augment_photos``).

Both run on whole batches on the training device (one ``affine_grid`` + ``grid_sample``), so they cost little.
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


CROP_AREA = (0.5, 1.0)  # share of the image a random crop keeps
CROP_ASPECT = (3 / 4, 4 / 3)
JITTER = 0.2  # brightness and contrast change by up to this factor


def augment_photos(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> the same shape: for each image a random crop (half the area or more, aspect 3:4 to
    4:3) scaled back to full size, a mirror image half the time, and brightness and contrast jitter. The usual
    augmentation for fine-tuning on photos, on whole batches (one ``affine_grid`` + ``grid_sample``)."""
    b = x.shape[0]

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return torch.rand(*(shape or (b,)), generator=generator) * (high - low) + low

    area = uniform(*CROP_AREA)
    aspect = torch.exp(uniform(math.log(CROP_ASPECT[0]), math.log(CROP_ASPECT[1])))
    width, height = torch.sqrt(area * aspect).clamp(max=1), torch.sqrt(area / aspect).clamp(max=1)
    centre_x, centre_y = uniform(-1, 1) * (1 - width), uniform(-1, 1) * (1 - height)
    mirror = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    zero = torch.zeros(b)
    theta = torch.stack([torch.stack([width * mirror, zero, centre_x], 1), torch.stack([zero, height, centre_y], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    cropped = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    brightness = uniform(1 - JITTER, 1 + JITTER).view(b, 1, 1, 1).to(x.device, x.dtype)
    contrast = uniform(1 - JITTER, 1 + JITTER).view(b, 1, 1, 1).to(x.device, x.dtype)
    mean = cropped.mean(dim=(1, 2, 3), keepdim=True)
    return ((cropped - mean) * contrast + mean * brightness).clamp(0, 1)
