"""Evaluation of a classifier on a labelled set: accuracy, loss, per-class precision and recall, the confusion
matrix, and the regression-style scores (MSE and R² between one-hot labels and probabilities) that an earlier
project promised but hard-coded."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .models.net import LayeredNet
from .predict import predict_logits


@dataclass
class Metrics:
    count: int
    accuracy: float
    loss: float  # mean cross-entropy (negative log-likelihood of the true class)
    precision: list[float]  # per class: correct predictions of c / all predictions of c (0 when never predicted)
    recall: list[float]  # per class: correct predictions of c / all examples of c (0 when absent)
    confusion: list[list[int]]  # confusion[true][predicted]
    mse: float  # mean over examples and classes of (onehot - p)^2
    r2: float  # 1 - sum (onehot - p)^2 / sum (onehot - mean onehot per class)^2

    def as_dict(self) -> dict:
        return asdict(self)


def metrics_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> Metrics:
    """(N, K) logits and (N,) integer labels -> :class:`Metrics`."""
    n, k = logits.shape
    logits, labels = logits.float(), labels.long()
    probabilities = torch.softmax(logits, dim=1)
    predicted = probabilities.argmax(dim=1)
    confusion = torch.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    correct = confusion.diagonal().double()
    precision = torch.where(confusion.sum(0) > 0, correct / confusion.sum(0).clamp(min=1), 0.0)
    recall = torch.where(confusion.sum(1) > 0, correct / confusion.sum(1).clamp(min=1), 0.0)
    onehot = F.one_hot(labels, k).double()
    residual = ((onehot - probabilities.double()) ** 2).sum()
    total = ((onehot - onehot.mean(dim=0)) ** 2).sum()
    return Metrics(
        count=n,
        accuracy=float(correct.sum() / max(n, 1)),
        loss=float(F.cross_entropy(logits, labels)) if n else 0.0,
        precision=[float(v) for v in precision],
        recall=[float(v) for v in recall],
        confusion=confusion.tolist(),
        mse=float(residual / max(n * k, 1)),
        r2=float(1 - residual / total) if total > 0 else 0.0,
    )


def evaluate(model: LayeredNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> Metrics:
    """Evaluate ``model`` on images (uint8 0-255 or float in [0, 1]) with their integer labels."""
    was_training = model.training
    model.eval()
    try:
        return metrics_from_logits(predict_logits(model, images, batch_size), labels)
    finally:
        model.train(was_training)
