"""Where a position of a spatial layer looks in the input: its receptive field, in input pixels.

Along each axis a position ``i`` of a layer sees the input pixels ``[offset + i * stride, offset + i * stride +
size)``, clipped to the image (Araujo et al. 2019, "Computing Receptive Fields of Convolutional Neural Networks",
Distill). Two ways to find ``size``, ``stride`` and ``offset``:

* ``"graph"``: composed tap by tap from the traced graph's kernel, stride, padding and dilation. Exact, and free,
  when every tap between the input and the layer is a conv or pool with a known window, or keeps its parents' size
  (activations, norms, residual adds, concats); a strided conv that pads itself by the input's size (TensorFlow's
  "SAME", in EfficientNet) has no known window. A 1x1 parent beside spatial ones (a squeeze-and-excitation gate)
  is left out: it modulates the whole map rather than looking somewhere.
* ``"gradient"``: the nonzero support of d(position's activations, summed over channels)/d(input), united over a
  few noise images (one image can leave a ReLU shut or a max-pool window's other cells unchosen), at a handful of
  positions, then fitted to the linear form above. Works for any architecture; where max-pools gate the gradient
  it can come out a pixel or two smaller than the field the graph gives.

``receptive_field(model, layer)`` picks the graph where it can and caches the answer per model and layer.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Literal

import torch

from ...errors import ModelError
from ...models.adapter import ModelAdapter
from ...models.graph import INPUT

Method = Literal["auto", "graph", "gradient"]
Box = tuple[int, int, int, int]  # (top, left, bottom, right) in input pixels; bottom and right exclusive

NOISE_SAMPLES = 4  # noise images whose gradient supports are united (see the module docstring)

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(layer, method): ReceptiveField}


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of every position of one spatial layer: (height, width) pairs, in input pixels."""

    layer: str
    size: tuple[int, int]  # of one position's field before clipping
    stride: tuple[int, int]  # input pixels between neighbouring positions' fields
    offset: tuple[int, int]  # where position (0, 0)'s field starts; negative: it starts in the padding
    input_size: tuple[int, int]  # (H, W) of the input the boxes are clipped to
    method: str  # "graph" or "gradient"

    def box(self, row: int, col: int) -> Box:
        """(top, left, bottom, right) of the input pixels position (row, col) sees, clipped to the input."""
        top, bottom = self._span(0, row)
        left, right = self._span(1, col)
        return top, left, bottom, right

    def _span(self, axis: int, index: int) -> tuple[int, int]:
        start = self.offset[axis] + index * self.stride[axis]
        extent = self.input_size[axis]
        return max(0, start), min(extent, start + self.size[axis])

    def boxes(self, positions: torch.Tensor) -> torch.Tensor:
        """(..., 2) int64 (row, col) positions -> (..., 4) int64 boxes, as :meth:`box`."""
        stride = torch.tensor(self.stride)
        start = positions * stride + torch.tensor(self.offset)  # (..., 2)
        end = start + torch.tensor(self.size)
        limit = torch.tensor(self.input_size)
        start = torch.minimum(start.clamp(min=0), limit)
        end = torch.minimum(end, limit).clamp(min=0)
        return torch.stack([start[..., 0], start[..., 1], end[..., 0], end[..., 1]], dim=-1)

    def as_dict(self) -> dict:
        return {"layer": self.layer, "size": list(self.size), "stride": list(self.stride),
                "offset": list(self.offset), "input_size": list(self.input_size), "method": self.method}


def receptive_field(model: ModelAdapter, layer: str, method: Method = "auto") -> ReceptiveField:
    """The receptive field of ``layer``'s positions for the model's input size.

    ``method``: "graph", "gradient" or "auto" (the graph when the traced graph knows every window on the way,
    else the gradient). A layer with a (C,) output has no positions: :class:`ModelError`.
    """
    tap = model.graph[layer]
    if len(tap.output_shape) != 3:
        raise ModelError(f"{layer} has output shape {tap.output_shape}: only (C, H, W) maps have positions")
    if method not in ("auto", "graph", "gradient"):
        raise ValueError(f"unknown receptive field method {method!r}: use 'auto', 'graph' or 'gradient'")
    known = _cache.setdefault(model, {})
    if (layer, method) not in known:
        found = None
        if method in ("auto", "graph"):
            found = from_graph(model, layer)
            if found is None and method == "graph":
                raise ModelError(f"the graph does not give {layer}'s receptive field (an op of unknown window on "
                                 "the way, or an approximate graph): use method='gradient'")
        known[(layer, method)] = found or from_gradient(model, layer)
    return known[(layer, method)]


# Along one axis: (size, stride, offset) of a tap's field; None: unknown (an op that changes the size with no
# window we know of); "global": a 1x1 map of the whole input.
_Axis = tuple[int, int, int]


def from_graph(model: ModelAdapter, layer: str) -> ReceptiveField | None:
    """The field composed from the traced graph's windows; None when some tap on the way has no known window."""
    graph = model.graph
    if not graph.traced:
        return None  # the hook fallback's parents are guesses where it lost track of a tensor
    _, height, width = graph.input_shape
    fields: dict[str, object] = {INPUT: ((1, 1, 0), (1, 1, 0))}
    sizes: dict[str, tuple[int, ...]] = {INPUT: (height, width)}
    for tap in graph.taps:
        if len(tap.output_shape) == 3:
            sizes[tap.name] = tap.output_shape[1:]
            fields[tap.name] = None if _pads_by_input_size(model, tap) else _compose(tap, fields, sizes)
        if tap.name == layer:
            break
    found = fields.get(layer)
    if found == "global":  # a 1x1 map of a globally pooled input sees all of it
        return ReceptiveField(layer, (height, width), (1, 1), (0, 0), (height, width), "graph")
    if not isinstance(found, tuple):
        return None
    (size_h, stride_h, offset_h), (size_w, stride_w, offset_w) = found
    return ReceptiveField(layer, (size_h, size_w), (stride_h, stride_w), (offset_h, offset_w), (height, width),
                          "graph")


def _pads_by_input_size(model: ModelAdapter, tap) -> bool:
    """Whether ``tap`` is a strided module that pads its input itself (TensorFlow's "SAME", as EfficientNet's
    convs do): its padding before the input depends on the input's size, and the graph records only the
    stride-1 amount, one pixel too many on an even input."""
    if tap.module is None or tap.stride is None or max(tap.stride) == 1:
        return False
    return hasattr(model.module.get_submodule(tap.module), "padding_before")


def _compose(tap, fields: dict, sizes: dict) -> object:
    """A tap's field from its parents' (see ``_Axis``)."""
    out_size = tap.output_shape[1:]
    parents = [p for p in tap.parents if p in sizes]
    spatial = [p for p in parents if sizes[p] != (1, 1)]
    if len(parents) != len(tap.parents) or not parents:
        return None  # it reads something that is not a map (a vector reshaped into one)
    if out_size == (1, 1) and tap.kernel is None:
        return "global"
    if not spatial:
        return "global" if out_size == (1, 1) else None  # a 1x1 map grown back into a map: unknown
    parent_fields = [fields[p] for p in spatial]
    if any(not isinstance(f, tuple) for f in parent_fields):
        return None
    if tap.kernel is not None:
        if len(spatial) != 1 or len(tap.kernel) != 2:
            return None
        field = parent_fields[0]
        return tuple(_through_window(field[axis], tap.kernel[axis], tap.stride[axis], tap.padding[axis],
                                     (tap.dilation or (1, 1))[axis]) for axis in (0, 1))
    if any(sizes[p] != out_size for p in spatial):
        return None  # a resize, crop or unknown pool: no window to compose
    return tuple(_union([f[axis] for f in parent_fields]) for axis in (0, 1))


def _through_window(field: _Axis, kernel: int, stride: int, padding: int, dilation: int) -> _Axis:
    """A window of ``kernel`` cells ``dilation`` apart, moved ``stride`` at a time over a map whose field is
    ``field``, with ``padding`` cells before it: output cell i reads map cells i * stride - padding + j * dilation."""
    size, step, offset = field
    return size + (kernel - 1) * dilation * step, step * stride, offset - padding * step


def _union(fields: list[_Axis]) -> _Axis | None:
    """Taps merged cell by cell (an add, a concat): each cell sees what any of them sees."""
    if len({step for _, step, _ in fields}) != 1:
        return None
    start = min(offset for _, _, offset in fields)
    end = max(offset + size for size, _, offset in fields)
    return end - start, fields[0][1], start


def from_gradient(model: ModelAdapter, layer: str, samples: int = NOISE_SAMPLES, seed: int = 0) -> ReceptiveField:
    """The field fitted to gradient supports at a few positions of ``layer`` (see the module docstring)."""
    channels, height, width = model.input_shape
    _, rows, cols = model.graph[layer].output_shape
    probe_rows, probe_cols = _probes(rows), _probes(cols)
    count = max(len(probe_rows), len(probe_cols))
    positions = [(probe_rows[i % len(probe_rows)], probe_cols[i % len(probe_cols)]) for i in range(count)]
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(count * samples, channels, height, width, generator=generator)  # position-major
    x = x.to(model.device, model.dtype).requires_grad_(True)
    with torch.enable_grad():
        _, store = model.capture(x, [layer])
        out = store[layer]  # (count * samples, C, rows, cols)
        rows_of, cols_of = zip(*(positions[i // samples] for i in range(len(out))), strict=True)
        picked = out[torch.arange(len(out)), :, list(rows_of), list(cols_of)]  # (count * samples, C)
        (grad,) = torch.autograd.grad(picked.sum(), x)
    support = (grad.abs().sum(dim=1) > 0).view(count, samples, height, width).any(dim=1)  # (count, H, W)
    spans_h, spans_w = [], []
    for (row, col), mask in zip(positions, support, strict=True):
        if mask.any():
            spans_h.append((row, *_extent(mask.any(dim=1))))
            spans_w.append((col, *_extent(mask.any(dim=0))))
    size_h, stride_h, offset_h = _fit_axis(spans_h, height, rows)
    size_w, stride_w, offset_w = _fit_axis(spans_w, width, cols)
    return ReceptiveField(layer, (size_h, size_w), (stride_h, stride_w), (offset_h, offset_w), (height, width),
                          "gradient")


def _probes(n: int) -> list[int]:
    """Positions along an axis whose fields pin the fit down: both ends, their neighbours, the middle two."""
    return sorted({i for i in (0, 1, n // 2, n // 2 + 1, n - 2, n - 1) if 0 <= i < n})


def _extent(line: torch.Tensor) -> tuple[int, int]:
    """(first, last + 1) of the True cells of a 1-D mask."""
    where = torch.nonzero(line).flatten()
    return int(where[0]), int(where[-1]) + 1


def _fit_axis(spans: list[tuple[int, int, int]], extent: int, positions: int) -> _Axis:
    """(size, stride, offset) reproducing the clipped (index, start, end) spans. A start at 0 or an end at
    ``extent`` may be clipped, so only the others measure the field."""
    if not spans:
        return extent + positions, 1, -positions  # no gradient anywhere: say the whole input
    starts = sorted({(i, start) for i, start, _ in spans if start > 0})
    ends = sorted({(i, end) for i, _, end in spans if end < extent})
    stride = _stride(starts) or _stride(ends) or max(1, round(extent / positions))
    # Noise may leave an edge cell of a field unreached, never add one: take the widest field the spans allow.
    offset = min((start - i * stride for i, start in starts), default=-(positions - 1) * stride)
    end_of_first = max((end - i * stride for i, end in ends), default=extent)
    return max(1, end_of_first - offset), stride, offset


def _stride(points: list[tuple[int, int]]) -> int | None:
    """The most common step between fields, from (index, coordinate) pairs at different indices."""
    steps = [round((b - a) / (j - i)) for (i, a), (j, b) in zip(points, points[1:], strict=False) if j != i]
    steps = [step for step in steps if step > 0]
    return max(set(steps), key=steps.count) if steps else None
