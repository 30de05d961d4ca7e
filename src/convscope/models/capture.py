"""Recording taps during a forward, for a traced graph module and for the hook fallback alike.

A traced model (see :mod:`convscope.models.tracing`) calls :func:`record` after every tap; an untraceable one
carries forward hooks (:func:`install_hooks`) that do the same. Outside a :func:`recording` block both cost one
attribute lookup per tap. Everything recorded goes to the calling thread's own store, so one model can serve
many threads.

Two things make captures correct where plain forward hooks are not:

* **In-place ops.** A tensor that a later op overwrites in place (``ReLU(inplace=True)`` after a conv, ``out +=
  identity``) would show the later values. The recorder keeps the tensor it was given and hands the rest of the
  network a copy to overwrite instead, so the capture holds the layer's own output and gradients still flow
  through it. Traced graphs copy only when the model has an in-place op at all; hooks cannot see what follows
  and always copy.
* **Modules called more than once.** Each call is its own tap: ``layer1.0.relu``, ``layer1.0.relu:2``, ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

_state = threading.local()  # each thread records into its own store: inspections run on many threads

# Called by the hooks as observer(module path, call number, module, inputs, output) while a graph is found.
Observer = Callable[[str, int, nn.Module, tuple, object], None]


def call_suffix(name: str, call: int) -> str:
    """The tap name of a module's or op's ``call``-th call (1-based) in one forward."""
    return name if call == 1 else f"{name}:{call}"


class AllRecorded(Exception):  # noqa: N818 - not an error: the signal that ends a forward early
    """Raised inside a forward run under ``recording(..., stop_early=True)`` once every wanted tap is recorded."""


def record(name: str, tensor, copy_for_in_place: bool):
    """Called by traced graphs after each tap: keep ``tensor`` when ``name`` is wanted now."""
    store = getattr(_state, "store", None)
    if store is None or name not in _state.wanted or not isinstance(tensor, torch.Tensor):
        return tensor
    store[name] = tensor
    if _state.stop_early and len(store) == len(_state.wanted):
        raise AllRecorded
    return tensor.clone() if copy_for_in_place else tensor


STATE_KEYS = ("store", "wanted", "calls", "observer", "stop_early")


@contextmanager
def recording(wanted: Iterable[str], observer: Observer | None = None,
              stop_early: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Yields a dict that fills with ``{tap name: output}`` for the wanted taps during forwards run inside;
    ``observer`` also sees every hooked call (how an untraceable model's graph is found). With ``stop_early``
    the forward ends, raising :class:`AllRecorded`, as soon as the last wanted tap is recorded."""
    previous = [getattr(_state, key, None) for key in STATE_KEYS]
    _state.store, _state.wanted, _state.calls, _state.observer, _state.stop_early = (
        {}, frozenset(wanted), {}, observer, stop_early)
    try:
        yield _state.store
    finally:
        _state.store, _state.wanted, _state.calls, _state.observer, _state.stop_early = previous


def install_hooks(modules: dict[str, nn.Module]) -> list:
    """The fallback for models that cannot be traced: a forward hook on each ``{path: leaf module}`` that counts
    its calls and records like :func:`record`. They stay (a deep copy of the model carries them) and do nothing
    outside a :func:`recording` block, so concurrent forwards never see each other's hooks come and go.
    Returns the handles."""

    def hook_for(path: str):
        def hook(module: nn.Module, inputs, output):
            calls = getattr(_state, "calls", None)
            if calls is None:
                return None
            calls[path] = calls.get(path, 0) + 1
            name = call_suffix(path, calls[path])
            if _state.observer is not None:
                _state.observer(path, calls[path], module, inputs, output)
            return record(name, output, True)
        return hook

    return [module.register_forward_hook(hook_for(path)) for path, module in modules.items()]
