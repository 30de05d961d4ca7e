"""Batched prediction: many images through a model with no autograd bookkeeping.

Inputs go in channels_last order, which oneDNN's CPU convolutions run about twice as fast as NCHW (measured in
``bench/batch_predict.py``); ``bf16=True`` trades exactness for another ~2x where the CPU has bf16 units.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .models.net import LayeredNet


def as_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W) / (N, 1, H, W) in 0-255, or float in [0, 1] -> float32 (N, 1, H, W) in [0, 1]."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()


def predict_logits(model: LayeredNet, images: torch.Tensor, batch_size: int = 256, bf16: bool = False) -> torch.Tensor:
    """(N, ...) images -> (N, num_classes) float32 logits on the CPU, computed in chunks of ``batch_size``."""
    device = model.input_mean.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    chunks = []
    with torch.inference_mode(), autocast:
        for start in range(0, len(images), batch_size):
            batch = as_model_input(images[start:start + batch_size]).to(device)
            chunks.append(model.logits(batch.contiguous(memory_format=torch.channels_last)).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, 0)


def predict_proba(model: LayeredNet, images: torch.Tensor, batch_size: int = 256, bf16: bool = False) -> torch.Tensor:
    """(N, ...) images -> (N, num_classes) probabilities."""
    return torch.softmax(predict_logits(model, images, batch_size, bf16), dim=1)
