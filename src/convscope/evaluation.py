"""Evaluating any model on a labelled set: MNIST, an image folder or a CSV of file,label.

``evaluate_model`` runs the model over the set in batches and returns an :class:`Evaluation`: the metrics (see
``metrics.py``), the misclassified examples (most confident mistakes first, each with where it came from, so an
interface can open its explanation), and the files it could not read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch

from .data.labelled import LabelledFiles, image_folder, labelled_csv, map_onto, read_image
from .data.mnist import MnistSplit, load_mnist
from .errors import DataError
from .metrics import Metrics, metrics_from_logits
from .models.adapter import ModelAdapter
from .predict import as_model_input
from .settings import Settings

ProgressFn = Callable[[int, int], None]  # (examples done, examples in all)


class LabelledSet(Protocol):
    """What ``evaluate_model`` reads: model inputs in batches, with labels and where each example came from."""

    def __len__(self) -> int: ...

    def describe(self) -> dict: ...

    def batches(self, adapter: ModelAdapter, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
        """(B, C, H, W) inputs in [0, 1], (B,) labels, B sources; unreadable examples are left out and counted in
        ``skipped``."""
        ...

    skipped: list[dict]


class MnistSet:
    """An MNIST split as it is stored: 28x28 digits that need no preprocessing."""

    def __init__(self, data: MnistSplit, split: str):
        self.data, self.split, self.skipped = data, split, []

    def __len__(self) -> int:
        return len(self.data.labels)

    def describe(self) -> dict:
        return {"kind": "mnist", "source": f"MNIST {self.split}", "count": len(self), "skipped": 0}

    def batches(self, adapter, size):
        for start in range(0, len(self), size):
            end = min(start + size, len(self))
            yield (as_model_input(self.data.images[start:end]), self.data.labels[start:end].long(),
                   [f"mnist:{self.split}:{i}" for i in range(start, end)])


class FileSet:
    """Image files, each decoded and preprocessed the way the model's own preprocessing says."""

    def __init__(self, files: LabelledFiles):
        self.files, self.skipped = files, list(files.skipped)

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> dict:
        return {**self.files.describe(), "skipped": len(self.skipped)}

    def batches(self, adapter, size):
        inputs, labels, sources = [], [], []
        prepare = adapter.preprocessing.prepare
        for position, file in enumerate(self.files.files):
            prepared, problem = read_image(file, lambda image: prepare(image)[0])
            if prepared is None:
                self.skipped.append({"file": str(file), "reason": problem})
            else:
                inputs.append(prepared)
                labels.append(self.files.labels[position])
                sources.append(str(file))
            if len(inputs) == size or (position == len(self.files) - 1 and inputs):
                yield torch.stack(inputs), torch.tensor(labels), sources
                inputs, labels, sources = [], [], []


def labelled_set_for(adapter: ModelAdapter, folder: str | Path | None = None, csv: str | Path | None = None,
                     root: str | Path | None = None, split: str | None = None,
                     settings: Settings | None = None) -> LabelledSet:
    """A folder or CSV of images with their labels mapped onto ``adapter``'s classes (an ImageNet model also
    takes WordNet ids and synonyms as class names), or an MNIST ``split`` ("test", "train") for a digit model."""
    if split is not None and folder is None and csv is None:
        if tuple(adapter.input_shape) != (1, 28, 28):
            raise DataError(f"MNIST digits are (1, 28, 28); {adapter.name} takes {tuple(adapter.input_shape)}: give "
                            "it a folder or a CSV of images")
        return MnistSet(load_mnist(split, settings), split)
    if (folder is None) == (csv is None) or split is not None:
        raise DataError("give one of a folder, a CSV file or an MNIST split")
    return files_for(adapter, image_folder(folder, min_classes=1) if folder is not None else labelled_csv(csv, root))


def files_for(adapter: ModelAdapter, files: LabelledFiles) -> FileSet:
    """``files`` with their labels mapped onto ``adapter``'s classes."""
    aliases = None
    if adapter.metadata.get("dataset") == "imagenet":
        from .models.imagenet import imagenet_aliases
        aliases = imagenet_aliases()
    return FileSet(map_onto(files, adapter.class_names, aliases))


@dataclass
class Evaluation:
    """A model scored on a labelled set: ``metrics``, the most confident mistakes and the examples skipped. In
    a notebook it shows its metrics, per-class table and confusion matrix."""

    model: str
    dataset: dict  # {"kind": "mnist" | "folder" | "csv", "source", "count", "skipped", ...}
    class_names: list[str]  # the model's, all of them: metrics.classes index into this
    metrics: Metrics
    # The wrong predictions, most confident first: {"source", "label", "predicted", "confidence",
    # "label_probability", "top": [[class, probability] x 3]}
    misclassified: list[dict]
    skipped: list[dict]  # {"file", "reason"}: examples that could not be read
    wall_s: float

    def as_dict(self) -> dict:
        return {**asdict(self), "metrics": self.metrics.as_dict()}

    def __repr__(self) -> str:
        return (f"Evaluation({self.model!r} on {self.dataset.get('source', self.dataset.get('kind'))}: "
                f"{self.metrics!r}, {len(self.misclassified)} mistakes listed, {len(self.skipped)} skipped, "
                f"{self.wall_s:.1f} s)")

    def _repr_html_(self) -> str:
        from .display import evaluation_html
        return evaluation_html(self)


@torch.inference_mode()
def evaluate_model(adapter: ModelAdapter, data: LabelledSet, batch_size: int = 64,
                   progress: ProgressFn | None = None, misclassified_limit: int = 200,
                   forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Evaluation:
    """``forward`` (default ``adapter.logits``) runs each batch: a server passes one that queues it on its model
    thread, so predictions keep being answered between batches."""
    started = time.perf_counter()
    forward = forward or adapter.logits
    all_logits, all_labels, all_sources = [], [], []
    done, skipped_before = 0, len(data.skipped)
    for x, labels, sources in data.batches(adapter, batch_size):
        x = x.to(adapter.device, adapter.dtype).contiguous(memory_format=torch.channels_last)
        all_logits.append(forward(x).float().cpu())
        all_labels.append(labels)
        all_sources += sources
        done += len(labels)
        if progress:
            progress(done + len(data.skipped) - skipped_before, len(data))
    if not all_logits:
        raise DataError(f"none of the {len(data)} images could be read (first: {data.skipped[0]['reason']})"
                        if data.skipped else "no examples to evaluate")
    logits, labels = torch.cat(all_logits), torch.cat(all_labels)
    metrics = metrics_from_logits(logits, labels)
    return Evaluation(adapter.name, data.describe(), list(adapter.class_names), metrics,
                      _misclassified(logits, labels, all_sources, adapter.class_names, misclassified_limit),
                      list(data.skipped), time.perf_counter() - started)


def _misclassified(logits, labels, sources, class_names, limit: int) -> list[dict]:
    probabilities = torch.softmax(logits, dim=1)
    confidence, predicted = probabilities.max(dim=1)
    wrong = torch.nonzero(predicted != labels).flatten()
    wrong = wrong[confidence[wrong].argsort(descending=True)][:limit]
    top = probabilities[wrong].topk(min(3, probabilities.shape[1]), dim=1)
    return [{"source": sources[i], "label": class_names[int(labels[i])], "predicted": class_names[int(predicted[i])],
             "confidence": round(float(confidence[i]), 6),
             "label_probability": round(float(probabilities[i, labels[i]]), 6),
             "top": [[class_names[int(c)], round(float(p), 6)] for p, c in zip(values, indices, strict=True)]}
            for i, values, indices in zip(wrong.tolist(), top.values, top.indices, strict=True)]
