"""Training: ``train`` (MNIST from scratch), ``finetune`` (any model on a folder of images), their configs and
events, and ``ProgressBar`` to watch a run in a notebook (``train(TrainConfig(), on_event=ProgressBar())``).
Only the configs are imported eagerly: the server's request schemas take their defaults from it in a process that
has not imported torch yet (the rest is loaded on first use, PEP 562)."""

from importlib import import_module

from .config import FineTuneConfig, TrainConfig

_LAZY = {
    **dict.fromkeys(("BatchProgress", "EpochEnd", "EventCallback", "Preparing", "TrainEvent", "TrainingFailed",
                     "TrainingFinished", "TrainingStarted"), ".events"),
    **dict.fromkeys(("CancelFlag", "TrainingDiverged", "TrainResult", "train"), ".trainer"),
    **dict.fromkeys(("FineTuneResult", "finetune"), ".finetuning"),
    "ProgressBar": ".progress",
}

__all__ = ["FineTuneConfig", "TrainConfig", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name], __name__), name)
