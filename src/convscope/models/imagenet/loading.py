"""An ImageNet model with pretrained weights: which weights (a record, or a local file matched to one), where the
file is (found, or downloaded and verified), read without unpickling anything, loaded strictly."""

from __future__ import annotations

from pathlib import Path

import torch

from ...data.download import ProgressFn
from ...errors import ModelError
from ...settings import Settings
from ..adapter import ModelAdapter
from ..user import load_weights, read_state_dict
from .store import fetch_weights, file_sha256, verify_file
from .weights import WEIGHTS, WeightsRecord


def choose_weights(model: str, weights: str | Path | None) -> tuple[WeightsRecord, Path | None]:
    """The record to use and, for a local file, its path. ``weights``: None (the default), a record's name
    (``IMAGENET1K_V1``) or key (``resnet50.IMAGENET1K_V1``), or a file that must be one of the model's official
    files (recognised by size and SHA-256, so the right preprocessing comes with it)."""
    records = [record for record in WEIGHTS if record.model == model]
    if weights is None:
        return records[0], None
    text = str(weights)
    for record in records:
        if text in (record.name, record.key):
            return record, None
    path = Path(weights)
    if not path.is_file():
        names = ", ".join(record.name for record in records)
        raise ModelError(f"{text} is neither a weights file nor weights of {model} ({names})")
    size = path.stat().st_size
    candidates = [record for record in records if record.size == size]
    digest = file_sha256(path) if candidates else None
    for record in candidates:
        if record.sha256 == digest:
            return record, path
    raise ModelError(f"{path} is not one of the official weights files of {model}; weights of your own go with "
                     f"--model-file (see `convscope predict --help`)")


def load_pretrained(model: str, build, class_names, weights: str | Path | None = None,
                    settings: Settings | None = None, progress: ProgressFn | None = None,
                    device: str | torch.device = "cpu") -> tuple[ModelAdapter, WeightsRecord]:
    """``build()`` with the chosen weights loaded, wrapped with the preprocessing those weights need."""
    record, path = choose_weights(model, weights)
    if path is None:
        path = fetch_weights(record, settings or Settings.from_env(), progress=progress)
        if path == record.packaged_path():
            verify_file(record, path)  # a file inside an installed package: checked at each load (18 MB: ~40 ms)
    module = build()
    load_weights(module, read_state_dict(path), str(path))
    # channels_last: oneDNN's CPU convolutions run faster on it (docs/benchmarks.md).
    module.to(device, memory_format=torch.channels_last).eval()
    adapter = ModelAdapter(module, class_names, record.preprocessing, name=model,
                           metadata={"dataset": "imagenet", "weights": record.as_dict()})
    return adapter, record
