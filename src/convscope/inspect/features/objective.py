"""What a feature visualization maximises: a :class:`Target` (a channel, a neuron or a class logit), its value
for a batch of images, and what the optimisation needs around it: a stand-in while a ReLU hides the target, and
the Gram-matrix similarity behind the diversity penalty."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ...errors import InputError, ModelError
from ...models.adapter import ModelAdapter
from ...models.capture import AllRecorded, recording
from ...models.kinds import LayerKind


@dataclass(frozen=True)
class Target:
    """What to make an image for: ``Target.channel("conv2", 5)`` (its mean over positions),
    ``Target.neuron("conv2", 5, (3, 4))`` (one position; default the map's centre), ``Target.logit(7)``."""

    kind: Literal["channel", "neuron", "logit"]
    index: int  # the channel, or the class
    layer: str | None = None
    position: tuple[int, int] | None = None  # (row, col) of a neuron in the layer's map

    @classmethod
    def channel(cls, layer: str, index: int) -> Target:
        return cls("channel", index, layer)

    @classmethod
    def neuron(cls, layer: str, index: int, position: tuple[int, int] | None = None) -> Target:
        return cls("neuron", index, layer, tuple(position) if position is not None else None)

    @classmethod
    def logit(cls, index: int) -> Target:
        return cls("logit", index)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "index": self.index, "layer": self.layer,
                "position": list(self.position) if self.position is not None else None}


def gram_similarity(activations: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> how alike the B images' Gram matrices (C, C) are: the sum of the cosine similarities of
    every pair of different images, over B. 0 for one image."""
    batch = activations.shape[0]
    flat = activations.flatten(2)  # (B, C, H*W)
    grams = F.normalize((flat @ flat.transpose(1, 2)).flatten(1), dim=1)  # (B, C*C), unit length
    similarity = grams @ grams.T  # (B, B)
    return (similarity.sum() - similarity.diagonal().sum()) / batch


def objective_values(model: ModelAdapter, target: Target, x: torch.Tensor,
                     extra_taps: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(B,) objective values for images x, and the recorded taps (the target's and ``extra_taps``)."""
    taps = extra_taps | ({target.layer} if target.layer is not None else set())
    if target.kind == "logit":
        logits, store = model.capture(x, taps)
        return logits[:, target.index], store
    store = capture_until(model, x, taps)
    return values_at(target, store[target.layer]), store


def values_at(target: Target, output: torch.Tensor) -> torch.Tensor:
    """A channel or neuron target's (B,) values from its layer's (B, C, H, W) or (B, C) output."""
    output = output[:, target.index]  # (B, H, W) or (B,)
    if output.dim() == 1:
        return output
    if target.kind == "channel":
        return output.mean(dim=(1, 2))
    rows, cols = output.shape[1:]
    row, col = target.position if target.position is not None else (rows // 2, cols // 2)
    if not (0 <= row < rows and 0 <= col < cols):
        raise InputError(f"{target.layer}'s map is {rows}x{cols} here: no position ({row}, {col})")
    return output[:, row, col]


def capture_until(model: ModelAdapter, x: torch.Tensor, taps: set[str]) -> dict[str, torch.Tensor]:
    """The taps' outputs, on the autograd graph, with the forward stopped once they are all recorded: a channel
    of VGG16's first block costs a tenth of a whole forward and backward. (``ModelAdapter.capture`` always runs
    the whole model, and ``activations``, which stops early, keeps no gradient.)"""
    with recording(taps, stop_early=True) as store:
        try:
            model._run(model.preprocessing.normalize(x))
        except AllRecorded:
            pass
    missing = taps - store.keys()
    if missing:
        raise ModelError(f"the forward never reached {', '.join(sorted(missing))}")
    return dict(store)


def check_target(model: ModelAdapter, target: Target) -> None:
    """Raise a clear error for a target ``model`` does not have, before any step is spent on it."""
    if target.kind == "logit":
        if not 0 <= target.index < model.num_classes:
            raise InputError(f"{model.name} has {model.num_classes} classes: no class {target.index}")
        return
    if target.kind not in ("channel", "neuron") or target.layer is None:
        raise InputError(f"a target is a channel or neuron of a layer, or a logit; got {target}")
    shape = model.graph[target.layer].output_shape  # an unknown layer raises ModelError naming the known ones
    if len(shape) not in (1, 3):
        raise InputError(f"{target.layer} gives output of shape {shape}: a channel needs (C,) or (C, H, W)")
    if not 0 <= target.index < shape[0]:
        raise InputError(f"{target.layer} has {shape[0]} channels: no channel {target.index}")


def opening(target: Target, before: torch.Tensor) -> torch.Tensor:
    """(B,) what to raise while a shut activation hides the target: for a channel its strongest position's input
    (one position opening opens the channel's mean), for a neuron its own input."""
    if target.kind == "channel" and before.dim() == 4:
        return before[:, target.index].flatten(1).amax(dim=1)
    return values_at(target, before)


def stand_in_for(model: ModelAdapter, target: Target) -> str | None:
    """The tap feeding a target that is an activation function's output (a ReLU's): while the target is 0, no
    gradient comes through, and its input is raised instead (see ``opening``; after Lucid's "redirected ReLU",
    Olah et al. 2017). From a near-grey start a whole channel is often shut. None for any other target."""
    if target.layer is None:
        return None
    tap = model.graph[target.layer]
    if tap.kind not in (LayerKind.RELU, LayerKind.ACTIVATION) or len(tap.parents) != 1:
        return None
    parent = tap.parents[0]
    if parent not in model.graph or model.graph[parent].output_shape != tap.output_shape:
        return None
    return parent
