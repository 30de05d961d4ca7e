"""What the trainer reports. Progress leaves the training loop only through these events, so the CLI, a server
and a notebook can each show it their own way. Every event turns into JSON-ready data with ``as_dict``; its repr
is one short line (``train(config, on_event=print)`` shows the numbers, not a thousand weights)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import torch


DICT_ITEMS_SHOWN = 5  # a dict in a repr (the config, the test metrics) shows its first few plain values


def _short(name: str, value) -> str:
    """``value`` for a one-line repr: floats to 4 significant digits, tensors and lists by their size, dicts by
    their first plain values."""
    if isinstance(value, torch.Tensor):
        return f"<tensor {tuple(value.shape)}>"
    if isinstance(value, float):
        # repr of the rounded float: 1.0 stays 1.0; images/s as 12346, not 1.235e+04
        return f"{value:.0f}" if abs(value) >= 1e4 else repr(float(f"{value:.4g}"))
    if isinstance(value, list | tuple):
        return f"<{len(value)} {name}>"
    if isinstance(value, dict):
        plain = [(k, v) for k, v in value.items() if not isinstance(v, list | tuple | dict | torch.Tensor)]
        items = [f"{k!r}: {_short(k, v)}" for k, v in plain[:DICT_ITEMS_SHOWN]]
        return "{" + ", ".join(items + (["..."] if len(items) < len(value) else [])) + "}"
    return repr(value)


@dataclass(repr=False)  # every event: repr=False, so that they all keep this one-line __repr__
class TrainEvent:
    """The base of every training event: ``type`` names it in JSON (``as_dict``)."""

    type: str = field(init=False, default="event")

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in asdict(self).items()}

    def __repr__(self) -> str:
        # The optional extras (probes, weights) are left out when absent; ``type`` is the class name already.
        shown = [f"{f.name}={_short(f.name, getattr(self, f.name))}" for f in fields(self)
                 if f.init and not (f.default is None and getattr(self, f.name) is None)]
        return f"{type(self).__name__}({', '.join(shown)})"


@dataclass(repr=False)
class TrainingStarted(TrainEvent):
    """The run began: its config, step counts, data sizes, device and precision."""

    config: dict
    total_steps: int
    steps_per_epoch: int
    train_size: int
    validation_size: int
    device: str
    precision: str
    type: str = field(init=False, default="started")


@dataclass(repr=False)
class Preparing(TrainEvent):
    """Work before the first step: reading the images, computing the frozen backbone's features."""

    stage: str  # "images" or "features"
    done: int
    total: int
    elapsed_s: float
    type: str = field(init=False, default="preparing")


@dataclass(repr=False)
class BatchProgress(TrainEvent):
    """Training progress, at most every ``progress_interval_s``: the step, loss and accuracy since the last one."""

    step: int  # 1-based count of optimizer steps done
    total_steps: int
    epoch: float  # fractional epochs done
    loss: float  # mean training loss since the previous progress event
    accuracy: float  # training accuracy since the previous progress event
    lr: float
    images_per_s: float
    elapsed_s: float
    eta_s: float
    # The probe digits' current predictions: [{"index", "label", "predicted", "confidence"}] (see TrainConfig.probes)
    probes: list | None = None
    # With probes: the first conv layer's weights now, (out, in, kH, kW), to watch the filters change live
    first_conv_weight: torch.Tensor | None = None
    type: str = field(init=False, default="progress")


@dataclass(repr=False)
class EpochEnd(TrainEvent):
    """An epoch ended: its training and validation loss and accuracy."""

    epoch: int  # 1-based
    step: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    elapsed_s: float
    # Weights of the first conv layer, (out, in, kH, kW), for watching filters learn; None for models without one.
    first_conv_weight: torch.Tensor | None = None
    probes: list | None = None
    type: str = field(init=False, default="epoch")


@dataclass(repr=False)
class TrainingFinished(TrainEvent):
    """The run ended: how, after how many steps, its test metrics and where it was saved."""

    status: str  # "completed", "target_reached" or "cancelled"
    steps: int
    wall_s: float
    test_metrics: dict | None
    checkpoint: str | None
    type: str = field(init=False, default="finished")


@dataclass(repr=False)
class TrainingFailed(TrainEvent):
    """The run raised: the error, in words."""

    error: str
    type: str = field(init=False, default="failed")


EventCallback = Callable[[TrainEvent], None]
