"""What a classifier's predictions on a labelled set score: top-1 and top-5 accuracy, cross-entropy, per-class
precision/recall/F1, the confusion matrix, calibration (expected calibration error and the reliability diagram's
bins), and two regression-style scores of the probabilities against one-hot targets, MSE and R².

MSE is the mean over examples and classes of (onehot - p)²: the Brier score divided by the number of classes; 0 is
perfect. R² is 1 - sum (onehot - p)² / sum (onehot - class frequency)²: 1 is perfect, 0 is no better than always
answering each class's frequency, below 0 is worse than that; undefined (None) when all examples share one class.
An earlier project printed both, hard-coded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .models.net import LayeredNet
from .predict import predict_logits

CALIBRATION_BINS = 15  # equal-width confidence bins, as in Guo et al. 2017 ("On Calibration of Modern Neural Networks")
# Above this many classes, the per-class lists and the confusion matrix keep only the classes that occur (as a
# label or a prediction): 1,000 ImageNet classes would make a million-cell matrix of mostly zeros.
ALL_CLASSES_UP_TO = 100


@dataclass
class Metrics:
    """Classification metrics over ``count`` examples; per-class lists and the confusion matrix are indexed by
    ``classes``."""

    count: int
    accuracy: float  # top-1
    top5_accuracy: float  # the true class among the five most probable (every one, with five classes or fewer)
    loss: float  # mean cross-entropy: the negative log-probability of the true class
    # The class indices the per-class lists and the confusion matrix's rows and columns are for, in order.
    classes: list[int]
    precision: list[float]  # correct predictions of c / all predictions of c (0 when c was never predicted)
    recall: list[float]  # correct predictions of c / examples of c (0 when c has none)
    f1: list[float]  # harmonic mean of precision and recall (0 when both are)
    support: list[int]  # examples of c
    confusion: list[list[int]]  # confusion[i][j]: examples of classes[i] predicted as classes[j]
    mse: float
    r2: float | None  # None when every example has the same class: no variance to explain
    ece: float  # expected calibration error: sum over bins of (bin count / N) * |accuracy - mean confidence|
    # The reliability diagram: per confidence bin, {"low", "high", "count", "confidence", "accuracy"} (the last two
    # None for an empty bin).
    reliability: list[dict]

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the classes that have examples."""
        present = [f for f, n in zip(self.f1, self.support, strict=True) if n]
        return sum(present) / len(present) if present else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "macro_f1": self.macro_f1}

    def __repr__(self) -> str:
        return (f"Metrics({self.count:,} examples: accuracy {self.accuracy:.4f}, top-5 {self.top5_accuracy:.4f}, "
                f"loss {self.loss:.4f}, macro F1 {self.macro_f1:.4f}, ECE {self.ece:.4f}; {len(self.classes)} "
                "classes)")

    def _repr_html_(self) -> str:
        from .display import metrics_html
        return metrics_html(self)


def _reliability(confidence: torch.Tensor, correct: torch.Tensor, bins: int) -> tuple[float, list[dict]]:
    """(ECE, bins) for (N,) top-1 confidences and (N,) booleans."""
    n = len(confidence)
    # Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 goes in the first.
    index = (torch.ceil(confidence.double() * bins).long() - 1).clamp(0, bins - 1)
    count = torch.bincount(index, minlength=bins)
    confidence_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, confidence.double())
    correct_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, correct.double())
    ece, table = 0.0, []
    for b in range(bins):
        k = int(count[b])
        mean_confidence = float(confidence_sum[b]) / k if k else None
        accuracy = float(correct_sum[b]) / k if k else None
        if k:
            ece += k / n * abs(accuracy - mean_confidence)
        table.append({"low": b / bins, "high": (b + 1) / bins, "count": k, "confidence": mean_confidence,
                      "accuracy": accuracy})
    return ece, table


def metrics_from_logits(logits: torch.Tensor, labels: torch.Tensor, bins: int = CALIBRATION_BINS) -> Metrics:
    """(N, K) logits and (N,) integer labels -> :class:`Metrics`."""
    n, k = logits.shape
    logits, labels = logits.float(), labels.long()
    probabilities = torch.softmax(logits, dim=1)
    confidence, predicted = probabilities.max(dim=1)
    top5 = probabilities.topk(min(5, k), dim=1).indices
    full = torch.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    correct = full.diagonal().double()
    predicted_count, support = full.sum(0).double(), full.sum(1).double()
    precision = torch.where(predicted_count > 0, correct / predicted_count.clamp(min=1), 0.0)
    recall = torch.where(support > 0, correct / support.clamp(min=1), 0.0)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-300), 0.0)
    shown = torch.arange(k) if k <= ALL_CLASSES_UP_TO else torch.nonzero((support + predicted_count) > 0).flatten()
    onehot = F.one_hot(labels, k).double()
    residual = ((onehot - probabilities.double()) ** 2).sum()
    total = ((onehot - onehot.mean(dim=0)) ** 2).sum()
    ece, reliability = _reliability(confidence, predicted == labels, bins) if n else (0.0, [])
    return Metrics(
        count=n,
        accuracy=float(correct.sum() / max(n, 1)),
        top5_accuracy=float((top5 == labels[:, None]).any(dim=1).double().sum() / max(n, 1)),
        loss=float(F.cross_entropy(logits, labels)) if n else 0.0,
        classes=shown.tolist(),
        precision=precision[shown].tolist(),
        recall=recall[shown].tolist(),
        f1=f1[shown].tolist(),
        support=support[shown].long().tolist(),
        confusion=full[shown][:, shown].tolist(),
        mse=float(residual / max(n * k, 1)),
        r2=float(1 - residual / total) if total > 0 else None,
        ece=ece,
        reliability=reliability,
    )


def evaluate(model: LayeredNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> Metrics:
    """Evaluate ``model`` on images (uint8 0-255 or float in [0, 1]) with their integer labels."""
    was_training = model.training
    model.eval()
    try:
        return metrics_from_logits(predict_logits(model, images, batch_size), labels)
    finally:
        model.train(was_training)
