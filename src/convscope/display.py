"""How results show themselves in a notebook: the ``_repr_html_`` and ``_repr_png_`` of inspections, samples,
evaluations, training runs and models. Plain HTML with PNGs inlined and SVG charts: no matplotlib, no JavaScript,
so they render in Jupyter, VS Code, Colab and an exported HTML file alike. The pixels come from ``render``.
"""

from __future__ import annotations

import base64
import html
import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import render

TOP_K = 5
MOST_CLASSES_SHOWN = 30  # per-class rows and confusion-matrix sides in a notebook display
BAR_BLUE = "#3b6fb6"
CELL = "padding:2px 6px;text-align:right"
SERIES_COLOURS = ("#3b6fb6", "#d9822b", "#2e9e5b", "#b3364a")


def png(array: np.ndarray | Image.Image) -> bytes:
    image = array if isinstance(array, Image.Image) else Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def img(array: np.ndarray | Image.Image, alt: str) -> str:
    data = base64.b64encode(png(array)).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
            'style="image-rendering:pixelated;max-width:100%">')


def captioned(cells: list[tuple[str, str]], title: str = "") -> str:
    """A row of (caption, content) cells under an optional title."""
    head = f"<div style='font-weight:bold;margin-bottom:4px'>{html.escape(title)}</div>" if title else ""
    body = "".join(f"<figure style='margin:0 12px 0 0'>{content}<figcaption style='font-size:90%'>"
                   f"{html.escape(caption)}</figcaption></figure>" for caption, content in cells)
    return f"<div>{head}<div style='display:flex;flex-wrap:wrap;align-items:flex-start'>{body}</div></div>"


def table(header: list[str], rows: list[list], title: str = "") -> str:
    caption = f"<caption style='text-align:left;font-weight:bold'>{html.escape(title)}</caption>" if title else ""
    head = "".join(f"<th style='{CELL}'>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='{CELL}'>{html.escape(_text(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return (f"<table style='border-collapse:collapse'>{caption}<thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def bars(pairs: list[tuple[str, float]], title: str = "") -> str:
    """Class probabilities as horizontal bars, most probable first."""
    rows = "".join(
        f"<tr><td style='{CELL}'>{html.escape(name)}</td><td style='width:160px;padding:2px 0'>"
        f"<div style='background:{BAR_BLUE};height:12px;width:{max(p, 0) * 100:.1f}%'></div></td>"
        f"<td style='{CELL}'>{p:.1%}</td></tr>" for name, p in pairs)
    caption = f"<caption style='text-align:left'>{html.escape(title)}</caption>" if title else ""
    return f"<table style='border-collapse:collapse'>{caption}{rows}</table>"


# -- inspections -------------------------------------------------------------------------------------------------

def _inspection_pictures(ins) -> list[tuple[str, np.ndarray]]:
    factor = render.enlargement(max(ins.input.shape[-2:]), 168)
    pictures = [("model input", render.input_image(ins.input, factor))]
    shown = ins.explanation()
    if shown is not None:
        pictures.append((shown[1], render.cam_image(ins.input, shown[0], factor)))
    return pictures


def inspection_title(ins) -> str:
    return f"predicted {ins.class_name(ins.predicted)} ({ins.confidence:.1%})"


def inspection_html(ins) -> str:
    cells = [(caption, img(picture, caption)) for caption, picture in _inspection_pictures(ins)]
    cells.append((f"top {min(TOP_K, len(ins.probabilities))} classes", bars(ins.top(TOP_K))))
    return captioned(cells, inspection_title(ins))


def inspection_png(ins) -> bytes:
    pictures = [picture for _, picture in _inspection_pictures(ins)]
    top = ins.top(TOP_K)
    chart = bar_image(top, height=max(pictures[0].shape[0], 16 * len(top)))
    return png(side_by_side([*pictures, chart]))


def bar_image(pairs: list[tuple[str, float]], height: int, width: int = 260) -> np.ndarray:
    """Probabilities as labelled horizontal bars, drawn with PIL: for ``_repr_png_`` where HTML is not shown."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    row = max(14, height // max(len(pairs), 1))
    label_px, value_px = 90, 50
    for i, (name, p) in enumerate(pairs):
        top = i * row
        draw.text((2, top), name[:14], fill="black", font=font)
        length = round(p * (width - label_px - value_px))
        if length > 0:
            draw.rectangle((label_px, top + 2, label_px + length, top + row - 4), fill=BAR_BLUE)
        draw.text((width - value_px + 4, top), f"{p:.1%}", fill="black", font=font)
    return np.asarray(image)


def side_by_side(pictures: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """RGB or greyscale pictures in one row, top-aligned on white."""
    rgb = [p if p.ndim == 3 else np.repeat(p[..., None], 3, axis=2) for p in pictures]
    height = max(p.shape[0] for p in rgb)
    out = np.full((height, sum(p.shape[1] for p in rgb) + gap * (len(rgb) - 1), 3), 255, np.uint8)
    x = 0
    for p in rgb:
        out[:p.shape[0], x:x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


# -- samples -----------------------------------------------------------------------------------------------------

def sample_picture(sample) -> np.ndarray:
    return render.upscale(sample.image.numpy(), 4)


def sample_html(sample) -> str:
    caption = f"label {sample.label}, {sample.split} image {sample.index}"
    return captioned([(caption, img(sample_picture(sample), caption))])


# -- evaluations -------------------------------------------------------------------------------------------------

def metrics_summary(metrics) -> list[list]:
    return [["images", metrics.count], ["top-1 accuracy", metrics.accuracy],
            ["top-5 accuracy", metrics.top5_accuracy], ["cross-entropy", metrics.loss],
            ["macro F1", metrics.macro_f1], ["ECE", metrics.ece]]


def confusion_html(metrics, class_names: list[str] | None = None) -> str:
    """The confusion matrix, each cell shaded by its share of its row (the true class)."""
    names = [class_names[c] if class_names else str(c) for c in metrics.classes]
    head = "".join(f"<th style='{CELL}'>{html.escape(n)}</th>" for n in names)
    rows = []
    for name, counts in zip(names, metrics.confusion, strict=True):
        total = max(sum(counts), 1)
        cells = "".join(f"<td style='{CELL};background:rgba(59,111,182,{count / total:.3f});"
                        f"color:{'white' if count / total > 0.5 else 'black'}'>{count:,}</td>" for count in counts)
        rows.append(f"<tr><th style='{CELL}'>{html.escape(name)}</th>{cells}</tr>")
    return (f"<table style='border-collapse:collapse'><caption style='text-align:left'>confusion matrix (rows: "
            f"true class, columns: predicted)</caption><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def metrics_html(metrics, class_names: list[str] | None = None, title: str = "") -> str:
    """The summary, the per-class table and the confusion matrix; with more than ``MOST_CLASSES_SHOWN`` classes
    (an ImageNet model's thousand would make a 100 MB page) the classes with the lowest F1 and the most frequent
    confusions instead."""
    names = [class_names[c] if class_names else str(c) for c in metrics.classes]
    per_class = [[n, p, r, f, s] for n, p, r, f, s in
                 zip(names, metrics.precision, metrics.recall, metrics.f1, metrics.support, strict=True)]
    header = ["class", "precision", "recall", "F1", "support"]
    if len(names) <= MOST_CLASSES_SHOWN:
        return captioned([("", table(["metric", "value"], metrics_summary(metrics))), ("", table(header, per_class)),
                          ("", confusion_html(metrics, class_names))], title)
    worst = sorted((row for row in per_class if row[4]), key=lambda row: row[3])[:MOST_CLASSES_SHOWN]
    confusions = sorted(((count, names[i], names[j]) for i, row in enumerate(metrics.confusion)
                         for j, count in enumerate(row) if i != j and count), reverse=True)[:MOST_CLASSES_SHOWN]
    return captioned([("", table(["metric", "value"], metrics_summary(metrics))),
                      ("", table(header, worst, f"the {len(worst)} classes with the lowest F1 of {len(names)}")),
                      ("", table(["true class", "predicted", "examples"], [[t, p, n] for n, t, p in confusions],
                                 "the most frequent confusions (plot.confusion_matrix draws them all)"))], title)


def evaluation_html(evaluation) -> str:
    title = (f"{evaluation.model} on {evaluation.dataset.get('source', evaluation.dataset.get('kind'))}: "
             f"{evaluation.metrics.accuracy:.2%} top-1 on {evaluation.metrics.count:,} images")
    return metrics_html(evaluation.metrics, evaluation.class_names, title)


# -- training ----------------------------------------------------------------------------------------------------

def line_chart(series: dict[str, list[tuple[float, float]]], title: str, x_label: str = "epoch",
               width: int = 320, height: int = 200) -> str:
    """Lines as an inline SVG, with its axis ranges written at the corners."""
    points = [p for line in series.values() for p in line]
    if not points:
        return ""
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-9)
    left, right, top, bottom = 46, 8, 20, 28

    def xy(x: float, y: float) -> str:
        return (f"{left + (x - x0) / (x1 - x0) * (width - left - right):.1f},"
                f"{height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom):.1f}")

    lines, legend = [], []
    for i, (label, line) in enumerate(series.items()):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        lines.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' "
                     f"points='{' '.join(xy(x, y) for x, y in line)}'/>")
        lines.extend(f"<circle cx='{xy(x, y).split(',')[0]}' cy='{xy(x, y).split(',')[1]}' r='2.5' fill='{colour}'/>"
                     for x, y in line)
        legend.append(f"<tspan fill='{colour}'>{html.escape(label)}</tspan>")
    text = "font-size='11' font-family='sans-serif'"
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img'>"
            f"<title>{html.escape(title)}</title>"
            f"<text x='{left}' y='12' {text} font-weight='bold'>{html.escape(title)}: {'  '.join(legend)}</text>"
            f"<rect x='{left}' y='{top}' width='{width - left - right}' height='{height - top - bottom}' "
            "fill='none' stroke='#999'/>"
            f"<text x='{left - 4}' y='{top + 10}' {text} text-anchor='end'>{y1:.3g}</text>"
            f"<text x='{left - 4}' y='{height - bottom}' {text} text-anchor='end'>{y0:.3g}</text>"
            f"<text x='{left}' y='{height - 12}' {text}>{x0:g}</text>"
            f"<text x='{width - right}' y='{height - 12}' {text} text-anchor='end'>{x1:g}</text>"
            f"<text x='{(left + width) / 2}' y='{height - 2}' {text} text-anchor='middle'>{x_label}</text>"
            f"{''.join(lines)}</svg>")


def history_series(history: list[dict], metric: str) -> dict[str, list[tuple[float, float]]]:
    """{"train": [(epochs, value)], "validation": [...]} for "loss" or "accuracy", leaving out missing values."""
    out = {}
    for label, key in (("train", f"train_{metric}"), ("validation", f"val_{metric}")):
        # "epochs": passes done, fractional for a run that ended mid-epoch (older runs have only the epoch number)
        line = [(float(h.get("epochs", h["epoch"])), float(h[key])) for h in history if h.get(key) is not None]
        if line:
            out[label] = line
    return out


def history_html(history: list[dict], title: str) -> str:
    charts = [(metric, line_chart(history_series(history, metric), metric)) for metric in ("loss", "accuracy")]
    return captioned([("", chart) for _, chart in charts if chart] or [("", "no finished epoch")], title)


def run_title(result) -> str:
    parts = [f"{result.config.model}: {result.status}, {result.steps:,} steps in {result.wall_s:.1f} s"]
    if result.test_metrics is not None:
        parts.append(f"test accuracy {result.test_metrics.accuracy:.2%}")
    if result.checkpoint is not None:
        parts.append(f"saved to {result.checkpoint}")
    return "; ".join(parts)


# -- models ------------------------------------------------------------------------------------------------------

def model_html(adapter, title: str = "") -> str:
    graph = adapter.graph
    rows = [[tap.name, tap.kind.value, tap.op, "x".join(map(str, tap.output_shape)), tap.parameters, tap.macs]
            for tap in graph.taps]
    parameters = sum(p.numel() for p in adapter.module.parameters())
    summary = (title or f"{adapter.name}: {type(adapter.module).__name__}") + (
        f", input {'x'.join(map(str, adapter.input_shape))}, {adapter.num_classes} classes, {parameters:,} "
        f"parameters, {sum(t.macs for t in graph.taps):,} MACs, preprocessing {adapter.preprocessing.name}"
        + ("" if graph.traced else " (graph approximate: the model could not be traced)"))
    return table(["layer", "kind", "op", "output", "parameters", "MACs"], rows, summary)
