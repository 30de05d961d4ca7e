"""``convscope explain``: write every view of one inspection as PNG files, plus a JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .. import render
from ..inspect import Inspection, filter_images
from ..models.adapter import ModelAdapter
from ..models.kinds import LayerKind


CHANNELS_PER_PAGE = 64


def write_explanation(out: Path, original: np.ndarray | None, result: Inspection, model: ModelAdapter,
                      page: int = 0) -> dict:
    """Write PNGs into ``out`` and return {view name: file name}: the input, the model input, the CAM and the
    saliency over it, each captured layer's feature maps (``CHANNELS_PER_PAGE`` channels, page ``page``) or units,
    and the filters of the first conv layer and of each captured conv layer that is not huge."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}

    def save(name: str, array: np.ndarray) -> None:
        name = name.replace(":", "-")  # layer1.0.relu:3 -> layer1.0.relu-3: a file name every system takes
        files[name] = render.save_png(array, out / f"{name}.png").name

    if original is not None:
        save("input", original)
    factor = render.enlargement(result.input.shape[-1])  # MNIST's 28 px enlarged 10x; a 224 px photo as it is
    save("preprocessed", render.input_image(result.input, factor))
    if result.cam is not None and result.cam_layer is not None:
        save(f"cam_{result.cam_method.replace('+', 'p')}_{result.cam_layer}",
             render.cam_image(result.input, result.cam, factor))
    save("saliency", render.cam_image(result.input, result.saliency, factor))
    first = page * CHANNELS_PER_PAGE
    for name, activation in result.activations.items():
        if activation.dim() == 3 and first < activation.shape[0]:
            save(f"features_{name}", render.feature_map_grid(activation[first:first + CHANNELS_PER_PAGE]))
        elif activation.dim() == 1 and model.graph[name].kind is not LayerKind.FLATTEN:
            columns = 16 if activation.numel() > 16 else activation.numel()
            save(f"units_{name}", render.vector_grid(activation, columns))
    convs = [tap for tap in model.graph.taps if tap.kind is LayerKind.CONV and tap.module is not None and tap.call == 1]
    for i, tap in enumerate(convs):
        weight = model.module.get_submodule(tap.module).weight
        if (i == 0 or tap.name in result.activations) and weight.shape[0] * weight.shape[1] <= render.MAX_FILTER_TILES:
            save(f"filters_{tap.name}", render.filters_grid(filter_images(weight)))
    return files


def explanation_summary(result: Inspection, class_names: tuple[str, ...], files: dict) -> dict:
    return {
        "predicted": class_names[result.predicted],
        "confidence": round(result.confidence, 6),
        "probabilities": {name: round(float(p), 6) for name, p in zip(class_names, result.probabilities, strict=True)},
        "target": class_names[result.target],
        "cam_method": result.cam_method,
        "cam_layer": result.cam_layer,
        "files": files,
    }


def save_summary(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def sample_rgb(image: torch.Tensor) -> np.ndarray:
    """An MNIST uint8 (28, 28) sample as an enlarged greyscale RGB picture."""
    return np.repeat(render.upscale(image.numpy(), 10)[..., None], 3, axis=2)
