"""Deterministic weights and inputs for checking an architecture against torchvision's without torchvision: fill
any state_dict the same way, run a fixed input, and compare with the logits torchvision's own module gave for the
same weights (recorded in tests/data/torchvision_reference.json by a one-off script run where its sources were
available). Values are smooth functions of the position, so they do not depend on any random number generator."""

from __future__ import annotations

import math

import torch
from torch import nn

SIZES = {"vgg16": 64, "vgg19": 64, "resnet50": 64, "inception_v3": 75}  # small inputs each architecture takes


def fill(module: nn.Module) -> nn.Module:
    """Every parameter and buffer of ``module`` set to a fixed pattern with a sensible scale."""
    with torch.no_grad():
        for index, (name, tensor) in enumerate(module.state_dict().items()):
            if not tensor.is_floating_point():
                continue
            wave = torch.sin(torch.arange(tensor.numel(), dtype=torch.float64) * 0.37 + index).reshape(tensor.shape)
            if name.endswith("running_var"):
                value = 1.0 + 0.5 * wave.abs()
            elif tensor.dim() == 1:
                value = (1.0 if name.endswith("weight") else 0.0) + 0.1 * wave
            else:
                value = wave * math.sqrt(3.0 / (tensor.numel() / tensor.shape[0]))  # variance ~ 1 / fan-in
            tensor.copy_(value.to(tensor.dtype))
    return module


def fixed_input(size: int) -> torch.Tensor:
    """(1, 3, size, size): a smooth colour pattern in roughly the range of normalised images."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    return torch.stack([torch.sin(3 * x + y), torch.cos(2 * y - x), x * y])[None]
