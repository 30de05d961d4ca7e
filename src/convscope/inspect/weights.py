"""Per-layer weights and biases: the tensors, summary statistics, histograms, and conv filters as images."""

from __future__ import annotations

import torch

from ..models.adapter import ModelAdapter


def tensor_summary(t: torch.Tensor) -> dict:
    """Count, mean, standard deviation, min, max, mean absolute value and L2 norm of a tensor."""
    t = t.detach().double().flatten()
    return {
        "count": t.numel(),
        "mean": float(t.mean()),
        "std": float(t.std(unbiased=False)),
        "min": float(t.min()),
        "max": float(t.max()),
        "abs_mean": float(t.abs().mean()),
        "l2_norm": float(t.norm()),
    }


def histogram(t: torch.Tensor, bins: int = 30) -> dict:
    """Equal-width bins over [min, max]: ``counts`` (bins,) and ``edges`` (bins + 1,)."""
    t = t.detach().double().flatten()
    low, high = float(t.min()), float(t.max())
    if low == high:  # a constant tensor: one bin around the value
        low, high = low - 0.5, high + 0.5
    counts = torch.histc(t, bins=bins, min=low, max=high)
    edges = torch.linspace(low, high, bins + 1, dtype=torch.float64)
    return {"counts": [int(c) for c in counts], "edges": [float(e) for e in edges]}


def layer_weights(model: ModelAdapter, bins: int = 30, layers: list[str] | None = None) -> list[dict]:
    """For every layer with parameters (or those of ``layers``), in graph order (a module called twice is listed
    at its first call): name, kind, and for its weight and bias the shape, the tensor, summary statistics and a
    histogram."""
    report = []
    wanted = None if layers is None else {model.graph[name].name for name in layers}
    for tap in model.graph.taps:
        if tap.module is None or tap.call != 1 or (wanted is not None and tap.name not in wanted):
            continue
        params = dict(model.module.get_submodule(tap.module).named_parameters(recurse=False))
        if not params:
            continue
        entry = {"layer": tap.name, "kind": tap.kind.value}
        for role in ("weight", "bias"):
            if role in params:
                tensor = params[role].detach().float().cpu()
                entry[role] = {"shape": list(tensor.shape), "tensor": tensor,
                               "stats": tensor_summary(tensor), "histogram": histogram(tensor, bins)}
        report.append(entry)
    return report


def filter_images(weight: torch.Tensor) -> torch.Tensor:
    """(out, in, kH, kW) conv weights -> the same shape in [0, 1], 0.5 = zero weight.

    One symmetric scale for the whole layer (w / (2 max|w|) + 0.5) so filters can be compared with each other
    and the sign of every weight stays readable.
    """
    weight = weight.detach().float().cpu()
    return (weight / (2 * weight.abs().max().clamp(min=1e-12)) + 0.5).clamp(0, 1)
