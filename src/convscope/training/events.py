"""What the trainer reports. Progress leaves the training loop only through these events, so the CLI, a server
and a notebook can each show it their own way. Every event turns into JSON-ready data with ``as_dict``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch


@dataclass
class TrainEvent:
    type: str = field(init=False, default="event")

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in asdict(self).items()}


@dataclass
class TrainingStarted(TrainEvent):
    config: dict
    total_steps: int
    steps_per_epoch: int
    train_size: int
    validation_size: int
    device: str
    precision: str
    type: str = field(init=False, default="started")


@dataclass
class Preparing(TrainEvent):
    """Work before the first step: reading the images, computing the frozen backbone's features."""

    stage: str  # "images" or "features"
    done: int
    total: int
    elapsed_s: float
    type: str = field(init=False, default="preparing")


@dataclass
class BatchProgress(TrainEvent):
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


@dataclass
class EpochEnd(TrainEvent):
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


@dataclass
class TrainingFinished(TrainEvent):
    status: str  # "completed", "target_reached" or "cancelled"
    steps: int
    wall_s: float
    test_metrics: dict | None
    checkpoint: str | None
    type: str = field(init=False, default="finished")


@dataclass
class TrainingFailed(TrainEvent):
    error: str
    type: str = field(init=False, default="failed")


EventCallback = Callable[[TrainEvent], None]
