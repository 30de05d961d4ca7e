"""Figures for notebooks, scripts and apps: ``show(result)`` for anything convscope returns, and one function per
view. Each returns a matplotlib ``Figure`` (``pip install 'convscope[plot]'``), made without pyplot so a notebook
shows it once and an app can make thousands; ``fig.savefig("x.png")`` writes it. Those who want pixels get PIL
images from the ``*_image`` functions, which need no matplotlib: they are the pictures the CLI saves, drawn by
``render`` like every map here, in the same colours.

    import convscope
    from convscope import plot
    result = convscope.explain("mnist_cnn", "digit.png")
    plot.show(result)                       # the input, the CAM over it, the top classes
    plot.feature_maps(result, "conv2", n=16, order="top")
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from . import render
from .errors import InputError, ModelError
from .inspect import Inspection, filter_images

TOP_K = 10


# -- pixels ------------------------------------------------------------------------------------------------------

def cam_image(inspection: Inspection, scale: int | None = None, alpha: float = 0.5) -> Image.Image:
    """The CAM (or saliency map) laid over the model input in grey, enlarged ``scale`` times (MNIST 10x)."""
    factor = scale or render.enlargement(inspection.input.shape[-1])
    return Image.fromarray(render.cam_image(inspection.input, _shown(inspection)[0], factor, alpha))


def input_image(inspection: Inspection, scale: int | None = None) -> Image.Image:
    """The model input, the picture the model saw after preprocessing."""
    factor = scale or render.enlargement(inspection.input.shape[-1])
    return Image.fromarray(render.input_image(inspection.input, factor))


def feature_map_image(source, layer: str | None = None, n: int | None = None, order: str = "index") -> Image.Image:
    """A layer's channels as one grid, each in its own range (viridis), as the CLI saves them."""
    maps, _ = _channels(source, layer, n, order)
    return Image.fromarray(render.feature_map_grid(maps))


def filter_image(model, layer: str | None = None) -> Image.Image:
    """A conv layer's filters (one row per output channel, one column per input channel), blue negative, white
    zero, red positive, on one scale for the whole layer."""
    _, weight = _conv_weight(model, layer)
    return Image.fromarray(render.filters_grid(filter_images(_drawable(weight))))


# -- figures -----------------------------------------------------------------------------------------------------

def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("convscope's figures need matplotlib: pip install 'convscope[plot]' (the *_image "
                          "functions give PIL images without it)") from None
    _display_in_notebooks(Figure)
    return Figure(figsize=(width, height), layout="constrained")


def _display_in_notebooks(figure_class) -> None:
    """IPython learns to show a Figure as a picture when pyplot is imported; ours are made without pyplot, so
    teach it here (once), as matplotlib's inline backend does."""
    ipython = sys.modules.get("IPython")  # not imported: not in a notebook, and no need to import it
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    if figure_class not in png.type_printers:
        from IPython.core.pylabtools import print_figure
        png.for_type(figure_class, lambda figure: print_figure(figure, "png", bbox_inches="tight"))


def colormap(anchors: list[tuple[int, int, int]], name: str):
    """One of render's colour maps for matplotlib, so a colour bar reads the colours ``render`` drew."""
    from matplotlib.colors import LinearSegmentedColormap
    return LinearSegmentedColormap.from_list(name, np.asarray(anchors) / 255.0)


def _colorbar(fig, ax, anchors, low: float, high: float, label: str) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    fig.colorbar(ScalarMappable(Normalize(low, high), colormap(anchors, label)), ax=ax, label=label, shrink=0.8)


def _picture(ax, array: np.ndarray, title: str) -> None:
    ax.imshow(array, interpolation="nearest", cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=255)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def cam_overlay(inspection: Inspection, alpha: float = 0.5):
    """The CAM (for a model with no spatial layer, the saliency map) over the model input with its colour scale:
    0 = no evidence, 1 = the map's strongest."""
    shown = _shown(inspection)
    fig = _figure(4.2, 3.6)
    ax = fig.add_subplot()
    _picture(ax, render.cam_image(inspection.input, shown[0], 1, alpha), shown[1])
    _colorbar(fig, ax, render.JET, 0, 1, "share of the map's maximum")
    return fig


def _shown(inspection: Inspection) -> tuple[torch.Tensor, str]:
    shown = inspection.explanation()
    if shown is None:
        raise ModelError("this inspection has no map: inspect with saliency=True or method='saliency'")
    return shown


def probabilities(inspection: Inspection, k: int = TOP_K):
    """The k most probable classes as horizontal bars, the predicted one on top, each labelled."""
    top = inspection.top(k)
    fig = _figure(4.5, 0.3 * len(top) + 0.8)
    _bars(fig.add_subplot(), top)
    return fig


def _bars(ax, top: list[tuple[str, float]]) -> None:
    names, values = [name for name, _ in top][::-1], [p for _, p in top][::-1]
    drawn = ax.barh(range(len(top)), values, color="#3b6fb6")
    ax.bar_label(drawn, labels=[f"{p:.1%}" for p in values], padding=2, fontsize=8)
    ax.set_yticks(range(len(top)), names, fontsize=8)
    ax.set_xlim(0, 1.18)
    ax.set_xlabel("probability")
    ax.spines[["top", "right"]].set_visible(False)


def inspection(result: Inspection, k: int = 5):
    """The model input, the CAM over it and the top k classes, in one row."""
    fig = _figure(10, 3.2)
    shown = result.explanation()
    axes = fig.subplots(1, 3 if shown else 2, width_ratios=[1, 1.25, 1.4] if shown else [1, 1.4])
    _picture(axes[0], render.input_image(result.input), "model input")
    if shown:
        _picture(axes[1], render.cam_image(result.input, shown[0]), shown[1])
        _colorbar(fig, axes[1], render.JET, 0, 1, "share of the maximum")
    _bars(axes[-1], result.top(k))
    fig.suptitle(f"predicted {result.class_name(result.predicted)} ({result.confidence:.1%})")
    return fig


def _channels(source, layer: str | None, n: int | None, order: str) -> tuple[torch.Tensor, list[int]]:
    """(C, h, w) maps of ``layer`` in an inspection (or a tensor), the first n or the n of highest mean."""
    if isinstance(source, Inspection):
        layer = layer or source.cam_layer
        if layer is None:
            maps = [name for name, value in source.activations.items() if value.dim() == 3] or ["none"]
            raise ModelError(f"give a layer: this inspection has no CAM layer to default to; captured layers with "
                             f"feature maps: {', '.join(maps)}")
        if layer not in source.activations:
            captured = ", ".join(source.activations) or "none"
            raise ModelError(f"layer {layer!r} was not captured in this inspection; captured: {captured} "
                             f"(inspect(..., layers=[{layer!r}]) captures it)")
        source = source.activations[layer]
    maps = torch.as_tensor(source).detach().float().cpu()
    if maps.dim() != 3:
        raise InputError(f"feature maps are (C, H, W); this layer's output is {tuple(maps.shape)}")
    if order not in ("index", "top"):
        raise InputError(f"order is 'index' or 'top', not {order!r}")
    count = min(n or maps.shape[0], maps.shape[0])
    indices = (maps.mean(dim=(1, 2)).argsort(descending=True)[:count].tolist() if order == "top"
               else list(range(count)))
    return maps[indices], indices


def feature_maps(source, layer: str | None = None, n: int | None = 16, order: str = "index", columns: int = 8):
    """A layer's channels as a grid (each on its own scale, viridis, labelled with its index and range): the
    first ``n``, or with ``order="top"`` the n with the highest mean activation. ``source`` is an inspection
    (``layer`` defaults to its CAM layer) or a (C, H, W) tensor."""
    if isinstance(source, Inspection):
        layer = layer or source.cam_layer
    maps, indices = _channels(source, layer, n, order)
    columns = min(columns, len(maps))
    rows = math.ceil(len(maps) / columns)
    fig = _figure(1.3 * columns, 1.45 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    cmap = colormap(render.VIRIDIS, "viridis")
    for ax, index, values in zip(axes, indices, maps, strict=False):
        ax.imshow(values.numpy(), cmap=cmap, interpolation="nearest")
        ax.set_title(f"{index}: {float(values.min()):.2g}..{float(values.max()):.2g}", fontsize=7)
    for ax in axes:
        ax.set_axis_off()
    if layer:
        channels = f"{len(maps)} channel" + ("s" if len(maps) > 1 else "")
        fig.suptitle(f"{layer}: {'top ' if order == 'top' else ''}{channels}", fontsize=10)
    return fig


def _conv_weight(model, layer: str | None) -> tuple[str, torch.Tensor]:
    adapter = getattr(model, "adapter", model)  # a Checkpoint or a ModelAdapter
    convs = [tap for tap in adapter.graph.taps if tap.kind.value == "conv" and tap.module and tap.call == 1]
    if not convs:
        raise ModelError(f"{adapter.name} has no conv layer")
    tap = adapter.graph[layer] if layer else convs[0]
    weight = getattr(adapter.module.get_submodule(tap.module), "weight", None) if tap.module else None
    if weight is None or weight.dim() != 4:
        raise ModelError(f"{tap.name} is not a conv layer; conv layers: {', '.join(t.name for t in convs)}")
    return tap.name, weight.detach().float().cpu()


def filters(model, layer: str | None = None, n: int = 64):
    """A conv layer's filters (default the first conv), at most ``n`` of them: an RGB first layer in colour
    (each filter scaled to its own range), otherwise one row per filter and one column per input channel on the
    layer's one symmetric scale, blue negative and red positive, with its colour bar in weight units."""
    name, weight = _conv_weight(model, layer)
    inputs = weight.shape[1]
    weight = _drawable(weight[:n])
    if weight.shape[1] == 3:
        low = weight.amin(dim=(1, 2, 3), keepdim=True)
        high = weight.amax(dim=(1, 2, 3), keepdim=True)
        tiles = ((weight - low) / (high - low).clamp(min=1e-12)).permute(0, 2, 3, 1).numpy()
        picture = render.grid(tiles, gap=1)
    else:
        picture = render.filters_grid(filter_images(weight))
    fig = _figure(6.5, float(np.clip(5 * picture.shape[0] / picture.shape[1], 1.5, 10)) + 0.6)
    ax = fig.add_subplot()
    ax.imshow(picture, interpolation="nearest")
    if weight.shape[1] != 3:
        bound = float(weight.abs().max())
        _colorbar(fig, ax, render.DIVERGING, -bound, bound, "weight")
    shown_inputs = f"{weight.shape[1]}" if weight.shape[1] == inputs else f"the first {weight.shape[1]} of {inputs}"
    ax.set_title(f"{name}: {weight.shape[0]} filters, {shown_inputs} input channels, "
                 f"{weight.shape[2]}x{weight.shape[3]}", fontsize=10)
    ax.set_axis_off()
    return fig


def _drawable(weight: torch.Tensor) -> torch.Tensor:
    """(out, in, kH, kW) cut to at most render.MAX_FILTER_TILES kernels by taking the first input channels."""
    return weight[:, :max(1, render.MAX_FILTER_TILES // weight.shape[0])]


def _history(run) -> list[dict]:
    if isinstance(run, Sequence):
        return list(run)
    if hasattr(run, "history"):  # TrainResult, FineTuneResult
        return run.history
    metadata = getattr(run, "metadata", None)  # a Checkpoint saved by a training run
    if metadata is not None:
        return metadata.get("history") or metadata.get("finetuned", {}).get("history") or []
    raise InputError(f"no training history in a {type(run).__name__}")


def history(run):
    """Loss and accuracy per epoch, training and validation, of a training or fine-tuning run (its result, its
    checkpoint or its ``history`` list)."""
    from .display import history_series
    entries = _history(run)
    if not entries:
        raise InputError("this run has no finished epoch to plot")
    fig = _figure(9, 3.2)
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy"), strict=True):
        series = history_series(entries, metric)
        for label, line in series.items():
            ax.plot(*zip(*line, strict=True), marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        if series:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {metric} recorded", ha="center", va="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
    return fig


def confusion_matrix(result, class_names: Sequence[str] | None = None, normalize: bool = True):
    """The confusion matrix of an evaluation (or its ``Metrics``): rows the true class, columns the prediction,
    each cell coloured by its share of its row (``normalize``) or by its count, and labelled with its count
    when there are at most 30 classes."""
    metrics = getattr(result, "metrics", result)
    names = class_names or getattr(result, "class_names", None)
    labels = [names[c] if names else str(c) for c in metrics.classes]
    counts = np.asarray(metrics.confusion, dtype=float)
    values = counts / counts.sum(axis=1, keepdims=True).clip(min=1) if normalize else counts
    size = min(12, 2 + 0.45 * len(labels))
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot()
    shown = ax.imshow(values, cmap=colormap(render.VIRIDIS, "viridis"), vmin=0, vmax=1 if normalize else None,
                      interpolation="nearest")
    fig.colorbar(shown, ax=ax, label="share of the true class" if normalize else "examples", shrink=0.8)
    if len(labels) <= 30:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        for (i, j), count in np.ndenumerate(counts):
            ax.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=7,
                    color="black" if values[i, j] > 0.5 * (values.max() or 1) else "white")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {metrics.accuracy:.2%} on {metrics.count:,} examples", fontsize=10)
    return fig


def compare(results: Mapping[str, Inspection], k: int = 3):
    """The same input through several models: for each, its CAM over its input, titled with its top class,
    and its top k."""
    fig = _figure(3.2 * len(results), 5)
    axes = fig.subplots(2, len(results), squeeze=False, height_ratios=[3, 1.2])
    for column, (name, result) in enumerate(results.items()):
        shown = result.explanation()
        picture = render.cam_image(result.input, shown[0]) if shown else render.input_image(result.input)
        _picture(axes[0, column], picture, f"{name}: {result.class_name(result.predicted)} "
                                           f"({result.confidence:.1%})")
        _bars(axes[1, column], result.top(k))
    return fig


def sample(item):
    """An MNIST sample with its label."""
    fig = _figure(2.4, 2.6)
    _picture(fig.add_subplot(), item.image.numpy(), f"label {item.label} ({item.split} #{item.index})")
    return fig


def show(result, **options):
    """The figure that fits what convscope returned: an inspection (input, CAM, top classes), several of them by
    model name (side by side), a training or fine-tuning run (its curves), an evaluation or metrics (the confusion
    matrix), a model or checkpoint (its first filters), an MNIST sample, or (C, H, W) feature maps."""
    from .data.mnist import Sample
    from .metrics import Metrics
    if isinstance(result, Inspection):
        return inspection(result, **options)
    if isinstance(result, Mapping) and result and all(isinstance(r, Inspection) for r in result.values()):
        return compare(result, **options)
    if hasattr(result, "history"):
        return history(result)
    if isinstance(result, Metrics) or isinstance(getattr(result, "metrics", None), Metrics):
        return confusion_matrix(result, **options)
    if hasattr(result, "adapter") or hasattr(result, "graph"):
        return filters(result, **options)
    if isinstance(result, Sample):
        return sample(result)
    if isinstance(result, torch.Tensor) and result.dim() == 3:
        return feature_maps(result, **options)
    raise InputError(f"show() does not know how to draw a {type(result).__name__}")
