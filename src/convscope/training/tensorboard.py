"""Optional TensorBoard logging through torch.utils.tensorboard: per-epoch scalars, weight histograms and the
first conv layer's filters as images."""

from __future__ import annotations

import torch

from ..errors import ConvscopeError
from ..models.net import LayeredNet, LayerKind
from .events import EpochEnd


class TensorBoardLogger:
    def __init__(self, log_dir: str):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConvscopeError("TensorBoard logging needs the tensorboard package: pip install tensorboard") from None
        self.writer = SummaryWriter(log_dir=log_dir)

    def log_epoch(self, event: EpochEnd, model: LayeredNet) -> None:
        w, step = self.writer, event.epoch
        w.add_scalar("loss/train", event.train_loss, step)
        w.add_scalar("accuracy/train", event.train_accuracy, step)
        if event.val_loss is not None:
            w.add_scalar("loss/validation", event.val_loss, step)
            w.add_scalar("accuracy/validation", event.val_accuracy, step)
        for name, param in model.named_parameters():
            w.add_histogram(f"weights/{name}", param.detach().float().cpu(), step)
        convs = [name for name, kind in model.kinds.items() if kind is LayerKind.CONV]
        if convs:
            filters = model.get_submodule(convs[0]).weight.detach().float().cpu()  # (out, in, kH, kW)
            filters = filters[:, :1]  # first input channel: one grey tile per filter
            low, high = filters.amin(dim=(1, 2, 3), keepdim=True), filters.amax(dim=(1, 2, 3), keepdim=True)
            w.add_images(f"filters/{convs[0]}", (filters - low) / (high - low).clamp(min=1e-12), step)
        w.flush()

    def close(self) -> None:
        self.writer.close()


def first_conv_weight(model: LayeredNet) -> torch.Tensor | None:
    for name, kind in model.kinds.items():
        if kind is LayerKind.CONV:
            return model.get_submodule(name).weight.detach().float().cpu().clone()
    return None
