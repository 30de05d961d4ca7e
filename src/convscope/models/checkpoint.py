"""Checkpoints: the weights as safetensors, with convscope's metadata as JSON inside the same file's header.

One file, no pickle: loading never executes code from the file. Saving goes through a temporary file and a
rename, so a crash mid-save never leaves a broken checkpoint.

Metadata keys (``convscope`` header entry, JSON): ``format`` (1), ``model`` (registry name), ``architecture``
(input shape, class names, preprocessing, every layer's kind, shape, parents, parameters and MACs), ``created`` (ISO
time), ``convscope_version``, ``parameters``, and whatever the trainer adds: ``training`` (config and the command
that reproduces it), ``history`` (per-epoch metrics), ``test_metrics``, ``data`` (SHA-256 of the training data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import safetensors
import safetensors.torch
import torch
from torch import nn

from ..data.download import ProgressFn, atomic_write_bytes
from ..errors import ModelError
from .adapter import ModelAdapter
from .registry import ModelSpec, get_spec
from .user import load_user_model

FORMAT_VERSION = 1
METADATA_KEY = "convscope"


@dataclass
class Checkpoint:
    """A loaded model: ``adapter`` (the module wrapped with its preprocessing, class names and graph), its
    registry ``spec``, the file's ``metadata`` (config, history, test metrics) and ``path``. In a notebook it shows
    its layer table."""

    adapter: ModelAdapter  # the model with its preprocessing, classes and graph
    spec: ModelSpec
    metadata: dict
    path: Path | None = None

    @property
    def model(self) -> nn.Module:
        return self.adapter.module

    @property
    def test_accuracy(self) -> float | None:
        return (self.metadata.get("test_metrics") or {}).get("accuracy")

    def title(self) -> str:
        source = self.path or self.metadata.get("source", "packaged weights")
        accuracy = "" if self.test_accuracy is None else f", test accuracy {self.test_accuracy:.2%}"
        return f"{self.spec.name} from {source}{accuracy}"

    def __repr__(self) -> str:
        return f"Checkpoint({self.title()}: {self.adapter!r})"

    def _repr_html_(self) -> str:
        from ..display import model_html
        return model_html(self.adapter, self.title())


def save_checkpoint(path: Path, model: nn.Module, model_name: str, metadata: dict | None = None) -> Path:
    """``model``'s weights to a safetensors file at ``path``, with ``model_name`` and ``metadata`` (JSON-ready)
    stored beside them; returns ``path``."""
    from .. import __version__

    adapter = get_spec(model_name).adapter(model)
    header = {
        "format": FORMAT_VERSION,
        "model": model_name,
        "architecture": {"input_shape": list(adapter.input_shape), "class_names": list(adapter.class_names),
                         "preprocessing": adapter.preprocessing.describe(),
                         "layers": [tap.as_dict() for tap in adapter.graph.taps]},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "convscope_version": __version__,
        "parameters": sum(p.numel() for p in model.parameters()),
        **(metadata or {}),
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    data = safetensors.torch.save(tensors, metadata={METADATA_KEY: json.dumps(header)})
    atomic_write_bytes(Path(path), data)
    return Path(path)


def _parse_metadata(raw: str | None, where: str) -> dict:
    if raw is None:
        raise ModelError(f"{where} has no convscope metadata: not a convscope checkpoint")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ModelError(f"{where}: corrupt convscope metadata ({e})") from None
    if metadata.get("format") != FORMAT_VERSION:
        raise ModelError(f"{where}: unsupported checkpoint format {metadata.get('format')!r}")
    return metadata


def read_metadata(path: Path) -> dict:
    """The convscope metadata of a checkpoint, without loading its tensors."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except FileNotFoundError:
        raise ModelError(f"checkpoint {path} does not exist") from None
    except Exception as e:  # safetensors raises its own error types for malformed headers
        raise ModelError(f"{path} is not a readable safetensors checkpoint: {e}") from None
    return _parse_metadata(raw, str(path))


def _metadata_from_bytes(data: bytes) -> dict:
    """The safetensors layout: an 8-byte little-endian header length, then the JSON header."""
    try:
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + length]) if 0 < length <= len(data) - 8 else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict):
        raise ModelError("not a readable safetensors checkpoint")
    return _parse_metadata((header.get("__metadata__") or {}).get(METADATA_KEY), "checkpoint")


def _build(metadata: dict, state_loader, where: str, device) -> tuple[ModelAdapter, ModelSpec]:
    if "finetuned" in metadata:  # a model of the user's classes: its architecture is its base's with a new head
        from .finetuned import FineTuned, register_finetuned
        spec = register_finetuned(FineTuned.from_metadata(str(metadata.get("model")), metadata["finetuned"]))
    else:
        spec = get_spec(metadata.get("model", "?"))
    model = spec.build()
    try:
        model.load_state_dict(state_loader(), strict=True)
    except (RuntimeError, ValueError, safetensors.SafetensorError) as e:
        raise ModelError(f"{where} does not match the {spec.name} architecture: {e}") from None
    # channels_last: oneDNN's CPU convolutions run about twice as fast on it (bench/batch_predict.py).
    model.to(device, memory_format=torch.channels_last).eval()
    return spec.adapter(model), spec


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> Checkpoint:
    """A checkpoint file, its model rebuilt from the name (and fine-tuning record) in its metadata."""
    path = Path(path)
    metadata = read_metadata(path)
    adapter, spec = _build(metadata, lambda: safetensors.torch.load_file(str(path), device=str(device)), str(path),
                         device)
    return Checkpoint(adapter, spec, metadata, path)


def checkpoint_from_bytes(data: bytes, device: str | torch.device = "cpu") -> Checkpoint:
    """A checkpoint held in memory (for example read from a database), checked like a file."""
    metadata = _metadata_from_bytes(data)
    adapter, spec = _build(metadata, lambda: safetensors.torch.load(data), "checkpoint", device)
    return Checkpoint(adapter, spec, metadata)


def load_model(name: str | None = None, checkpoint: Path | str | None = None, device: str | torch.device = "cpu",
               weights: str | Path | None = None, progress: ProgressFn | None = None) -> Checkpoint:
    """The named model with its default weights, or the given checkpoint file (whose model it names itself:
    ``load_model(checkpoint="run.safetensors")``). No name and no checkpoint: ``mnist_cnn``.

    For the ImageNet models ``weights`` picks other official weights (``IMAGENET1K_V1``) or a local copy of an
    official file; missing weights are downloaded (``progress`` sees the bytes, e.g.
    ``convscope.progress.DownloadBar()``) and verified first.
    """
    if checkpoint is not None and weights is not None:
        raise ModelError("give a checkpoint or pretrained weights, not both: a checkpoint holds its own weights")
    if name is None and checkpoint is not None:
        return load_checkpoint(Path(checkpoint), device)
    name = name or "mnist_cnn"
    spec = get_spec(name)
    if spec.weights:
        if checkpoint is not None:
            raise ModelError(f"{name} takes pretrained weights (--weights), not a convscope checkpoint")
        from .imagenet.loading import load_pretrained
        adapter, record = load_pretrained(name, spec.build, spec.class_names, weights, progress=progress,
                                          device=device)
        return Checkpoint(adapter, spec, {"model": name, "source": "pretrained", "weights": record.as_dict(),
                                          "parameters": record.parameters})
    if weights is not None:
        raise ModelError(f"{name} has no pretrained weights to choose from")
    if checkpoint is not None:
        loaded = load_checkpoint(Path(checkpoint), device)
        if loaded.spec.name != name:
            raise ModelError(f"{checkpoint} holds a {loaded.spec.name} model, not {name}")
        return loaded
    if spec.user is not None:
        loaded = spec.loaded is not None and str(device) == "cpu"  # registering loaded it once already
        adapter = spec.loaded if loaded else load_user_model(spec.user, device)
        return Checkpoint(adapter, spec, {"model": name, "source": "user", **adapter.metadata["source"]})
    path = spec.default_weights_path()
    if path is None:
        raise ModelError(f"{name} has no packaged weights: train it with `convscope train --model {name}`")
    return load_checkpoint(path, device)
