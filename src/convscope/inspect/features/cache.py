"""Feature visualizations and top-activating examples kept on disk: one costs seconds to minutes, and the same
model version, target and settings always give the same answer.

Entries live under ``<directory>/<model key>/``. A model key names the model and its version: a version given by
the caller, or else a fingerprint of the weights (what the server and ``convscope features-overview`` use, so they
share entries), so a model trained further (or fine-tuned, or loaded from another checkpoint) gets a new key and
never sees the old version's results. A cache made with ``keep`` holds only each key's newest entries. Each entry
is a ``.npz`` of its arrays, a ``.json`` of what it was computed from (model, target, settings, dataset), and for a
visualization a ``.png`` of its images; the JSON is written last, so an entry without it is unfinished and
ignored, and every file is written to a temporary name first, so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...models.adapter import ModelAdapter
from .datasets import Dataset, dataset_key
from .top_activating import TopActivating, top_activating
from .objective import Target
from .visualize import Visualization, VisualizationSettings, visualize


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A short hash of every parameter's and buffer's name, shape, dtype and values."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        values = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{tuple(values.shape)}\0{values.dtype}\n".encode())
        if values.numel():
            digest.update(values.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def model_key(model: ModelAdapter, version: str | int | None = None) -> str:
    """``name@version``, or ``name@<weights fingerprint>`` when no version is given."""
    return f"{model.name}@{version if version is not None else weights_fingerprint(model.module)}"


def _hash(body: object) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


class FeatureCache:
    """Results on disk under ``directory`` (see the module docstring); safe to share between threads and
    processes."""

    def __init__(self, directory: str | Path, keep: int | None = None):
        """``keep``: at most this many entries per model key, the newest (each write prunes the older ones), so
        that a server asked for ever new settings cannot fill its disk; None keeps everything."""
        self.directory = Path(directory)
        self.keep = keep

    def folder(self, model_key: str) -> Path:
        """Where ``model_key``'s entries go: its readable part plus a hash, so different keys never share one."""
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model_key)[:60]
        return self.directory / f"{readable}-{_hash(model_key)[:8]}"

    def invalidate(self, model_key: str) -> bool:
        """Forget every entry of ``model_key`` (a version that is gone); True when there were some."""
        folder = self.folder(model_key)
        if not folder.is_dir():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def _prune(self, folder: Path, keep: int) -> None:
        """Keep the ``keep`` most recently written entries of a model's folder, each entry's files together."""
        entries: dict[str, list[Path]] = {}
        for path in folder.iterdir():
            if not path.name.startswith("."):  # a file another writer has not renamed into place yet
                entries.setdefault(path.name.split(".", 1)[0], []).append(path)

        def written(files: list[Path]) -> int:
            return max((f.stat().st_mtime_ns for f in files if f.exists()), default=0)  # gone: another pruner's

        for files in sorted(entries.values(), key=written, reverse=True)[keep:]:
            for path in files:
                path.unlink(missing_ok=True)

    # Feature visualizations

    def _visualization_about(self, model_key: str, target: Target, settings: VisualizationSettings) -> dict:
        return {"model": model_key, "target": target.as_dict(), "settings": settings.as_dict()}

    def visualization(self, model_key: str, target: Target,
                      settings: VisualizationSettings) -> Visualization | None:
        """The stored result for resolved ``settings`` (``settings.resolved(model)``), or None."""
        about = self._visualization_about(model_key, target, settings)
        found = self._read(self.folder(model_key) / f"visualization-{_hash(about)}", about)
        if found is None:
            return None
        record, arrays = found
        return Visualization(target, settings, torch.from_numpy(arrays["images"]), arrays["history"].tolist(),
                             record["values"], record["seconds"])

    def save_visualization(self, model_key: str, result: Visualization) -> Path:
        """Store ``result``; returns the path of its PNG."""
        about = self._visualization_about(model_key, result.target, result.settings)
        stem = self.folder(model_key) / f"visualization-{_hash(about)}"
        arrays = {"images": result.images.numpy(), "history": np.asarray(result.history, dtype=np.float64)}
        png = stem.with_suffix(".png")
        self._write(stem, arrays, {**about, "values": result.values, "seconds": result.seconds,
                                   "image": png.name}, png_of=result.images)
        return png

    # Top-activating examples

    def top_activating(self, model_key: str, dataset: str, layer: str, k: int) -> TopActivating | None:
        """The stored result for ``layer`` over the dataset whose key is ``dataset``, or None."""
        about = {"model": model_key, "dataset": dataset, "layer": layer, "k": k}
        found = self._read(self.folder(model_key) / f"top-{_hash(about)}", about)
        if found is None:
            return None
        record, arrays = found
        tensor = {name: torch.from_numpy(values) for name, values in arrays.items()}
        return TopActivating(layer, tensor["values"], tensor["indices"], tensor.get("positions"),
                             tensor.get("boxes"), record["images"], record["seconds"])

    def save_top_activating(self, model_key: str, dataset: str, result: TopActivating) -> Path:
        about = {"model": model_key, "dataset": dataset, "layer": result.layer, "k": result.k}
        stem = self.folder(model_key) / f"top-{_hash(about)}"
        arrays = {name: values.numpy() for name, values in result.as_arrays().items()}
        self._write(stem, arrays, {**about, "images": result.images, "seconds": result.seconds})
        return stem.with_suffix(".npz")

    # Files

    def _read(self, stem: Path, about: dict) -> tuple[dict, dict[str, np.ndarray]] | None:
        try:
            record = json.loads(stem.with_suffix(".json").read_text())
            with np.load(stem.with_suffix(".npz"), allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError):  # missing, unfinished or damaged: computed again
            return None
        if any(record.get(key) != value for key, value in about.items()):
            return None  # a hash collision, however unlikely, must not hand back another result
        return record, arrays

    def _write(self, stem: Path, arrays: dict[str, np.ndarray], record: dict, png_of: torch.Tensor | None = None):
        stem.parent.mkdir(parents=True, exist_ok=True)
        record = {**record, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        _replace(stem.with_suffix(".npz"), lambda f: np.savez(f, **arrays))
        if png_of is not None:
            _replace(stem.with_suffix(".png"), lambda f: _picture(png_of).save(f, format="PNG"))
        _replace(stem.with_suffix(".json"), lambda f: f.write(json.dumps(record, indent=1).encode()))
        if self.keep is not None:
            self._prune(stem.parent, self.keep)


def _replace(path: Path, write) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it into place (atomic)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "wb") as file:
            write(file)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _picture(images: torch.Tensor):
    """(B, C, H, W) in [0, 1] -> one PIL image of them side by side."""
    from PIL import Image
    row = torch.cat(list(images), dim=2)  # (C, H, B * W)
    pixels = (row.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def cached_visualize(cache: FeatureCache, model: ModelAdapter, target: Target,
                     settings: VisualizationSettings | None = None, *, version: str | int | None = None,
                     **options) -> tuple[Visualization, bool]:
    """The stored visualization when there is one, else :func:`visualize` (``options`` go to it) and store it.
    Returns (result, whether it came from the cache)."""
    key = model_key(model, version)
    settings = (settings or VisualizationSettings()).resolved(model)
    found = cache.visualization(key, target, settings)
    if found is not None:
        return found, True
    result = visualize(model, target, settings, **options)
    cache.save_visualization(key, result)
    return result, False


def cached_top_activating(cache: FeatureCache, model: ModelAdapter, data: Dataset, layers: str | Sequence[str],
                          k: int = 9, *, version: str | int | None = None, dataset: str | None = None,
                          **options) -> dict[str, TopActivating]:
    """:func:`top_activating`, with each layer's result read from the cache when it is there; the layers that
    are not share one pass. ``dataset`` names the data for the key (default :func:`dataset_key` of a tensor or
    :class:`ImageFiles`; required for a plain iterable of batches)."""
    names = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
    key = model_key(model, version)
    if dataset is None:
        if not isinstance(data, torch.Tensor) and not hasattr(data, "identity"):
            raise ValueError("name the dataset (dataset=...) to cache results over an iterable of batches")
        dataset = dataset_key(data)
    results = {name: cache.top_activating(key, dataset, name, k) for name in names}
    missing = [name for name, found in results.items() if found is None]
    if missing:
        for name, result in top_activating(model, data, missing, k, **options).items():
            cache.save_top_activating(key, dataset, result)
            results[name] = result
    return results
