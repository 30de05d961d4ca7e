"""``convscope explain``: write every view of one inspection as PNG files, plus a JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .. import render
from ..errors import InputError
from ..inspect import ATTRIBUTIONS, Attribution, Inspection, filter_images
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


FORMATS = ("png", "npy", "json")


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    wrong = [f for f in formats if f not in FORMATS]
    if wrong or not formats:
        raise InputError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; got {text!r}")
    return formats


def write_attributions(out: Path, result: Inspection, attributions: dict[str, Attribution]) -> dict:
    """Each attribution as a PNG (over the input, or on its own diverging scale when signed): {name: file}."""
    out.mkdir(parents=True, exist_ok=True)
    factor = render.enlargement(result.input.shape[-1])
    return {f"attribution_{name}": render.save_png(
        render.attribution_image(result.input, a.values, a.signed, factor), out / f"attribution_{name}.png").name
        for name, a in attributions.items()}


def explanation_tensors(result: Inspection, attributions: dict[str, Attribution]) -> dict[str, torch.Tensor]:
    """Every tensor behind the pictures, by the name its files get."""
    tensors = {"input": result.input, "probabilities": result.probabilities, "logits": result.logits}
    if result.cam is not None:
        tensors["cam"] = result.cam
    if result.saliency is not None:
        tensors["saliency"] = result.saliency
    tensors.update({f"activation_{name}": value for name, value in result.activations.items()})
    tensors.update({f"attribution_{name}": a.values for name, a in attributions.items()})
    return {name.replace(":", "-"): value for name, value in tensors.items()}


def write_tensors(out: Path, tensors: dict[str, torch.Tensor], formats: list[str]) -> dict:
    """``npy``: one NumPy file per tensor (float32, its shape); ``json``: all of them in ``tensors.json``, each
    {"shape", "values"} (nested lists). Returns {name: file}."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    if "npy" in formats:
        for name, value in tensors.items():
            np.save(out / f"{name}.npy", value.detach().float().cpu().numpy())
            files[f"{name}.npy"] = f"{name}.npy"
    if "json" in formats:
        body = {name: {"shape": list(value.shape), "values": value.detach().float().cpu().tolist()}
                for name, value in tensors.items()}
        (out / "tensors.json").write_text(json.dumps(body))
        files["tensors"] = "tensors.json"
    return files


def attribution_summary(attributions: dict[str, Attribution]) -> dict:
    return {name: {"title": ATTRIBUTIONS[name].title, "cost": ATTRIBUTIONS[name].cost, "signed": a.signed,
                   "layer": a.layer, "seconds": round(a.seconds, 4), "forward_passes": a.forward_passes,
                   "min": float(a.values.min()), "max": float(a.values.max())} for name, a in attributions.items()}


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
