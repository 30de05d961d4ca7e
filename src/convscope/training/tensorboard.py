"""Optional TensorBoard logging through torch.utils.tensorboard: per-epoch scalars, weight histograms and the
first conv layer's filters as images."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConvscopeError
from .events import EpochEnd


class TensorBoardLogger:
    def __init__(self, log_dir: str):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConvscopeError("TensorBoard logging needs the tensorboard package: pip install tensorboard") from None
        self.writer = SummaryWriter(log_dir=log_dir)

    def log_epoch(self, event: EpochEnd, model: nn.Module) -> None:
        w, step = self.writer, event.epoch
        w.add_scalar("loss/train", event.train_loss, step)
        w.add_scalar("accuracy/train", event.train_accuracy, step)
        if event.val_loss is not None:
            w.add_scalar("loss/validation", event.val_loss, step)
            w.add_scalar("accuracy/validation", event.val_accuracy, step)
        for name, param in model.named_parameters():
            w.add_histogram(f"weights/{name}", param.detach().float().cpu(), step)
        first = first_conv(model)
        if first is not None:
            filters = first[1].weight.detach().float().cpu()[:, :1]  # (out, 1, kH, kW): one grey tile per filter
            low, high = filters.amin(dim=(1, 2, 3), keepdim=True), filters.amax(dim=(1, 2, 3), keepdim=True)
            w.add_images(f"filters/{first[0]}", (filters - low) / (high - low).clamp(min=1e-12), step)
        w.flush()

    def close(self) -> None:
        self.writer.close()


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The first 2D conv layer in definition order, with its module path."""
    return next(((name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def first_conv_weight(model: nn.Module) -> torch.Tensor | None:
    first = first_conv(model)
    return None if first is None else first[1].weight.detach().float().cpu().clone()
