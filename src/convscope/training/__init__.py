from .config import TrainConfig
from .events import (BatchProgress, EpochEnd, EventCallback, TrainEvent, TrainingFailed, TrainingFinished,
                     TrainingStarted)
from .trainer import CancelFlag, TrainResult, train

__all__ = [
    "BatchProgress", "CancelFlag", "EpochEnd", "EventCallback", "TrainConfig", "TrainEvent", "TrainResult",
    "TrainingFailed", "TrainingFinished", "TrainingStarted", "train",
]
