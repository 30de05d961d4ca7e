"""Forward hooks as scoped resources: registered on entry, removed in ``finally`` even when the forward raises."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def capture_activations(model: nn.Module, layer_names: Iterable[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record each named layer's output during forwards run inside the block.

    Yields a dict that fills with ``{layer name: output tensor}`` (still attached to the autograd graph, so
    gradients with respect to them can be taken). The hooks are gone when the block exits, however it exits.
    """
    store: dict[str, torch.Tensor] = {}
    handles = []

    def recorder(name: str):
        def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
            store[name] = output
        return hook

    modules = dict(model.named_modules())  # one walk instead of a get_submodule per layer: this is a hot path
    try:
        for name in layer_names:
            if name not in modules:
                raise KeyError(f"{type(model).__name__} has no layer {name!r}")
            handles.append(modules[name].register_forward_hook(recorder(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()
