"""Top-activating examples: for every channel of a layer, the k dataset images that drive it hardest (Zeiler &
Fergus 2014, "Visualizing and Understanding Convolutional Networks"; Olah et al. 2017, "Feature Visualization",
Distill, its "dataset examples").

One no-grad pass over the dataset serves every layer asked for: each batch's activations are reduced to one value
per image and channel (a spatial map's maximum, with where it is) and merged into a running top k per channel, so
memory stays at one batch of activations plus (C, k) numbers per layer however big the dataset. For a spatial
layer each example also carries the receptive-field box of its strongest position: the patch of the input that
position sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ...errors import ModelError
from ...models.adapter import ModelAdapter
from ..attribution.base import Cancelled, ProgressFn
from .datasets import Dataset, ImageFiles, batches_of, dataset_size
from .receptive_field import Box, receptive_field

# What one batch's activations may take: the batch size is chosen to fit. Big batches buy nothing for the ImageNet
# models on this CPU (EfficientNet-Lite0, 1 thread: 19 ms an image in batches of 1 or 5, 29 ms in batches of 25,
# which no longer fit the caches), so the budget gives them a few images (EfficientNet-Lite0 6, VGG16 1-2) and
# mnist_cnn a few hundred.
ACTIVATION_BUDGET = 64 * 2**20
MAX_BATCH = 512


@dataclass(frozen=True)
class Example:
    """One top-activating example of a channel."""

    index: int  # in the dataset
    value: float  # the channel's activation: its largest over positions for a spatial layer
    position: tuple[int, int] | None  # (row, col) in the layer's map where it is largest; None: a (C,) layer
    box: Box | None  # (top, left, bottom, right) input pixels that position sees; bottom and right exclusive

    def as_dict(self) -> dict:
        return {"index": self.index, "value": self.value,
                "position": list(self.position) if self.position is not None else None,
                "box": list(self.box) if self.box is not None else None}


@dataclass
class TopActivating:
    """The top k dataset examples of every channel of one layer. Rows are in descending order of value; a
    dataset with fewer than k images leaves index -1 (value -inf) in the rest."""

    layer: str
    values: torch.Tensor  # (C, k) float32
    indices: torch.Tensor  # (C, k) int64
    positions: torch.Tensor | None  # (C, k, 2) int64 (row, col); None for a (C,) layer
    boxes: torch.Tensor | None  # (C, k, 4) int64 (top, left, bottom, right); None for a (C,) layer
    images: int  # images the pass saw
    seconds: float

    @property
    def k(self) -> int:
        return self.values.shape[1]

    @property
    def channels(self) -> int:
        return self.values.shape[0]

    def examples(self, channel: int) -> list[Example]:
        """``channel``'s examples, strongest first."""
        if not 0 <= channel < self.channels:
            raise ModelError(f"{self.layer} has {self.channels} channels: no channel {channel}")
        found = []
        for rank in range(self.k):
            index = int(self.indices[channel, rank])
            if index < 0:
                break
            position = tuple(self.positions[channel, rank].tolist()) if self.positions is not None else None
            box = tuple(self.boxes[channel, rank].tolist()) if self.boxes is not None else None
            found.append(Example(index, float(self.values[channel, rank]), position, box))
        return found

    def patches(self, channel: int, images: torch.Tensor | ImageFiles) -> list[torch.Tensor]:
        """The input patches ``channel``'s examples' strongest positions see, (C, h, w) each, from the dataset
        the result was computed on; whole images for a (C,) layer."""
        return [crop(images[example.index], example.box) for example in self.examples(channel)]

    def as_arrays(self) -> dict[str, torch.Tensor]:
        arrays = {"values": self.values, "indices": self.indices}
        if self.positions is not None:
            arrays.update(positions=self.positions, boxes=self.boxes)
        return arrays


def crop(image: torch.Tensor, box: Box | None) -> torch.Tensor:
    """(C, H, W) image -> the (C, bottom - top, right - left) patch in ``box``; the whole image for None."""
    if box is None:
        return image
    top, left, bottom, right = box
    return image[:, top:bottom, left:right]


def top_activating(model: ModelAdapter, data: Dataset, layers: str | Sequence[str], k: int = 9, *,
                   batch_size: int | None = None, progress: ProgressFn | None = None,
                   cancelled: Callable[[], bool] | None = None) -> dict[str, TopActivating]:
    """The top ``k`` examples of every channel of each of ``layers``, from one pass over ``data``.

    Args:
        model: the model, its input (B, C, H, W) pixels in [0, 1].
        data: a (N, C, H, W) tensor of pixels in [0, 1] (the MNIST test set: ``load_mnist("test").as_float()``),
            an :class:`ImageFiles` (a folder of photos), or any iterable of (B, C, H, W) batches.
        layers: one tap name or several; each must give (C, H, W) or (C,) per image.
        k: examples kept per channel.
        batch_size: images per forward; default as many as fit ``ACTIVATION_BUDGET``.
        progress: called as ``progress(images done, images in all)`` after each batch (0 in all: an iterable
            that does not say how many it holds).
        cancelled: polled before each batch; when it returns True the pass stops, raising :class:`Cancelled`.

    Returns ``{layer: TopActivating}``.
    """
    names = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    tracks = {name: _Track(model, name, k) for name in names}
    batch_size = batch_size or default_batch_size(model, names)
    total, started = dataset_size(data), time.perf_counter()
    done = seen = 0  # done: images read or skipped (files that are not images), seen: images run
    for indices, pixels in batches_of(data, batch_size):
        if cancelled is not None and cancelled():
            raise Cancelled("the top-activating pass was cancelled")
        outputs = model.activations(pixels.to(model.device, model.dtype), names)
        for name, track in tracks.items():
            track.add(outputs[name], indices)
        done, seen = int(indices[-1]) + 1, seen + len(indices)
        if progress is not None:
            progress(done, total)
    if progress is not None and done < total:  # the last files could not be read
        progress(total, total)
    seconds = time.perf_counter() - started
    return {name: track.result(seen, seconds) for name, track in tracks.items()}


def default_batch_size(model: ModelAdapter, layers: Sequence[str]) -> int:
    """The largest batch whose kept activations, plus two of the largest map on the way to the deepest of
    ``layers`` (what the forward holds at once), fit in ``ACTIVATION_BUDGET``."""
    order = {name: i for i, name in enumerate(model.graph.names)}
    deepest = max(order[model.graph[name].name] for name in layers)
    sizes = [_numel(tap.output_shape) for tap in model.graph.taps[:deepest + 1]]
    per_image = 4 * (sum(_numel(model.graph[name].output_shape) for name in layers) + 2 * max(sizes)
                     + _numel(model.input_shape))
    return max(1, min(MAX_BATCH, ACTIVATION_BUDGET // per_image))


def _numel(shape: Sequence[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


class _Track:
    """The running top k of one layer's channels."""

    def __init__(self, model: ModelAdapter, layer: str, k: int):
        self.model, self.layer, self.k = model, layer, k
        shape = model.graph[layer].output_shape
        if len(shape) not in (1, 3):
            raise ModelError(f"{layer} gives output of shape {shape}: top-activating examples need (C,) or "
                             "(C, H, W) per image")
        channels = shape[0]
        self.spatial = len(shape) == 3
        self.values = torch.full((channels, 0), float("-inf"))
        self.indices = torch.zeros((channels, 0), dtype=torch.long)
        self.positions = torch.zeros((channels, 0, 2), dtype=torch.long)

    def add(self, output: torch.Tensor, indices: torch.Tensor) -> None:
        """Merge one batch: ``output`` (B, C, H, W) or (B, C), ``indices`` (B,) its dataset indices."""
        output = output.detach().float().cpu()
        maps = output.flatten(2) if self.spatial else None  # (B, C, H*W)
        values = maps.amax(dim=2) if self.spatial else output  # (B, C): a spatial channel's strongest position
        values = values.nan_to_num(nan=float("-inf"))
        kept, (batch, channels) = self.values.shape[1], values.shape
        candidates = torch.cat([self.values, values.T], dim=1)  # (C, kept + B)
        # A stable sort keeps the earlier image first among equal values: the same answer for any batch size.
        order = candidates.sort(dim=1, descending=True, stable=True).indices[:, :self.k]  # (C, k)
        self.values = candidates.gather(1, order)
        self.indices = torch.cat([self.indices, indices.expand(channels, -1)], dim=1).gather(1, order)
        positions = torch.cat([self.positions, torch.zeros((channels, batch, 2), dtype=torch.long)], dim=1)
        positions = positions.gather(1, order[..., None].expand(-1, -1, 2))
        if self.spatial:
            # Where the maximum is, only for the few newcomers: argmax costs eight times amax on the whole batch.
            channel, rank = torch.nonzero(order >= kept, as_tuple=True)
            where = maps[order[channel, rank] - kept, channel].argmax(dim=1)
            width = output.shape[3]
            positions[channel, rank] = torch.stack([where // width, where % width], dim=-1)
        self.positions = positions

    def result(self, images: int, seconds: float) -> TopActivating:
        missing = self.k - self.values.shape[1]  # fewer images than k
        values = torch.nn.functional.pad(self.values, (0, missing), value=float("-inf"))
        indices = torch.nn.functional.pad(self.indices, (0, missing), value=-1)
        if not self.spatial:
            return TopActivating(self.layer, values, indices, None, None, images, seconds)
        positions = torch.nn.functional.pad(self.positions, (0, 0, 0, missing))
        boxes = receptive_field(self.model, self.layer).boxes(positions)
        return TopActivating(self.layer, values, indices, positions, boxes, images, seconds)
