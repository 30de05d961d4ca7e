"""Recording taps during a forward, for a traced graph module and for the hook fallback alike.

A traced model (see :mod:`convscope.models.graph`) calls :func:`record` after every tap; an untraceable one gets
forward hooks that do the same. Outside a :func:`recording` block both cost one attribute lookup per tap.

Two things make captures correct where plain forward hooks are not:

* **In-place ops.** A tensor that a later op overwrites in place (``ReLU(inplace=True)`` after a conv, ``out +=
  identity``) would show the later values. The recorder keeps the tensor it was given and hands the rest of the
  network a copy to overwrite instead, so the capture holds the layer's own output and gradients still flow
  through it. Traced graphs copy only where an in-place consumer follows; hooks cannot see consumers and copy
  every capture.
* **Modules called more than once.** Each call is its own tap: ``layer1.0.relu``, ``layer1.0.relu:2``, ...
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

_state = threading.local()  # each thread records into its own store: inspections run on many threads


def call_suffix(name: str, call: int) -> str:
    """The tap name of a module's or op's ``call``-th call (1-based) in one forward."""
    return name if call == 1 else f"{name}:{call}"


def record(name: str, tensor, copy_for_in_place: bool):
    """Called by traced graphs after each tap: keep ``tensor`` when ``name`` is wanted now."""
    store = getattr(_state, "store", None)
    if store is None or name not in _state.wanted or not isinstance(tensor, torch.Tensor):
        return tensor
    store[name] = tensor
    return tensor.clone() if copy_for_in_place else tensor


@contextmanager
def recording(wanted: Iterable[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Yields a dict that fills with ``{tap name: output}`` for the wanted taps during forwards run inside."""
    previous = getattr(_state, "store", None), getattr(_state, "wanted", None), getattr(_state, "calls", None)
    _state.store, _state.wanted, _state.calls = {}, frozenset(wanted), {}
    try:
        yield _state.store
    finally:
        _state.store, _state.wanted, _state.calls = previous


@contextmanager
def hooked(modules: dict[str, nn.Module]) -> Iterator[None]:
    """The fallback for models that cannot be traced: forward hooks on ``{path: leaf module}`` that record like
    :func:`record`, counting calls per forward. Removed in ``finally``, however the block exits."""
    handles = []

    def hook_for(path: str):
        def hook(module: nn.Module, inputs, output):
            calls = getattr(_state, "calls", None)
            if calls is None:
                return None
            calls[path] = calls.get(path, 0) + 1
            return record(call_suffix(path, calls[path]), output, True)
        return hook

    try:
        for path, module in modules.items():
            handles.append(module.register_forward_hook(hook_for(path)))
        yield
    finally:
        for handle in handles:
            handle.remove()
