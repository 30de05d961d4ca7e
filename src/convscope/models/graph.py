"""A model as a graph of named taps, derived from the module itself.

A *tap* is one place whose output can be captured: a call of a leaf module, named by its module path as in
``named_modules()`` and the state_dict (``features.0``, ``layer1.0.conv1``), or a structural function call named
after the module it happens in (``layer1.0.add``, ``Mixed_5b.cat``, ``Mixed_5b.branch1x1.relu`` for a
``F.relu``). A module or op called more than once in one forward gives one tap per call: ``layer1.0.relu``,
``layer1.0.relu:2``, ``layer1.0.relu:3``. Each tap knows the taps it reads from (``parents``; ``"input"`` is the
model input), so residual adds and multi-branch concats are edges, not guesses from list order.

How the graph is found from a module: :mod:`convscope.models.tracing`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ModelError
from .kinds import LayerKind

INPUT = "input"  # the parent name of taps that read the model input
LOGITS = "(logits)"  # a hidden tap: the tensor a final softmax turns into probabilities, when no tap holds it


@dataclass(frozen=True)
class Tap:
    """One recorded call in a model's forward: a module call (``conv1``) or a structural function call
    (``layer1.0.add``), with its output shape (no batch dimension) and the taps it reads from."""

    name: str
    kind: LayerKind
    op: str  # the module class or function: "Conv2d", "add", "cat"
    output_shape: tuple[int, ...]  # without the batch dimension
    parents: tuple[str, ...]  # taps it reads from, INPUT for the model input
    module: str | None = None  # the module path for a module call; None for a function call
    call: int = 1  # which call of the module or op in one forward (1-based)
    parameters: int = 0  # the module's parameters, counted at its first call only
    macs: int = 0  # multiply-accumulates for one input; FLOPs ~= 2 * macs
    # conv and pool modules: how each output cell sees its input, (height, width) each
    kernel: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] | None = None  # before the input: "same" and "valid" resolved to numbers
    dilation: tuple[int, ...] | None = None

    @property
    def spatial(self) -> bool:
        """Whether the output is a (C, H, W) map bigger than 1x1: something a CAM can be laid out on."""
        return len(self.output_shape) == 3 and self.output_shape[1] * self.output_shape[2] > 1

    def as_dict(self) -> dict:
        body = {"name": self.name, "kind": self.kind.value, "op": self.op, "output_shape": list(self.output_shape),
                "parents": list(self.parents), "module": self.module, "call": self.call,
                "parameters": self.parameters, "macs": self.macs, "flops": 2 * self.macs}
        if self.kernel is not None:
            body.update(kernel=list(self.kernel), stride=list(self.stride), padding=list(self.padding),
                        dilation=list(self.dilation or (1,) * len(self.kernel)))
        return body


@dataclass(frozen=True)
class Graph:
    """A model as its taps in execution order: ``graph["conv2"]`` is one (a wrong name raises ModelError
    listing the right ones), ``graph.names`` all of them."""

    input_shape: tuple[int, ...]  # (C, H, W)
    taps: tuple[Tap, ...]  # in execution order
    output: str | None  # the tap whose output is the model's output; None when an untapped op makes it
    output_sources: tuple[str, ...]  # the taps whose values reach the output (``(output,)`` when it is a tap)
    output_shape: tuple[int, ...]  # the model output's shape without the batch dimension
    # Where the class scores are captured: None when the model's output is the scores; else the tap (or LOGITS,
    # the hidden one) holding what a final softmax turns into probabilities.
    logits: str | None
    traced: bool  # True: exact, from torch.fx; False: approximate, from the calls hooks saw
    _index: dict[str, Tap] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {tap.name: tap for tap in self.taps})

    def __repr__(self) -> str:
        approximate = "" if self.traced else ", approximate"
        return f"Graph({len(self.taps)} taps from input {self.input_shape} to output {self.output_shape}{approximate})"

    def __getitem__(self, name: str) -> Tap:
        try:
            return self._index[name]
        except KeyError:
            raise ModelError(f"unknown layer {name!r}; layers: {', '.join(self.names)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    @property
    def names(self) -> list[str]:
        return [tap.name for tap in self.taps]

    @property
    def scores_shape(self) -> tuple[int, ...]:
        """The shape of the class scores: one per class."""
        return self[self.logits].output_shape if self.logits in self._index else self.output_shape

    def default_cam_layer(self) -> str | None:
        """Where Grad-CAM looks by default: walking back from the output along the latest parent, the first tap
        with a spatial map that is not a pooling layer. That is the last conv block's activation (``relu2`` in
        mnist_cnn, ``features.29`` in VGG16), the last residual block's output in a ResNet, the last concat in
        Inception: the most semantic maps that keep a spatial layout. A pooling layer after it only coarsens the
        map. None for a model with no spatial layer (an MLP)."""
        order = {name: i for i, name in enumerate(self.names)}
        name = self._latest(self.output_sources, order)
        while name is not None:
            tap = self._index[name]
            if tap.spatial and tap.kind is not LayerKind.POOL:
                return name
            name = self._latest(tap.parents, order)
        return None

    @staticmethod
    def _latest(names, order: dict[str, int]) -> str | None:
        known = [name for name in names if name in order]
        return max(known, key=order.__getitem__) if known else None

    def as_dict(self) -> dict:
        return {"input_shape": list(self.input_shape), "traced": self.traced, "output": self.output,
                "output_shape": list(self.output_shape), "logits": self.logits,
                "default_cam_layer": self.default_cam_layer(), "layers": [tap.as_dict() for tap in self.taps]}
