"""The one adapter between any ``nn.Module`` and the rest of convscope (inspector, CLI, server, UI).

A :class:`ModelAdapter` is the module with what it takes to use it on a user's image: its preprocessing, its class
names, its input shape, metadata (dataset, where its weights come from and their licence) and its graph of taps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ..errors import ModelError
from ..preprocessing import Preprocessing, get_preprocessing
from .capture import AllRecorded, recording
from .graph import Graph
from .tracing import trace_model


class ModelAdapter:
    """Wraps ``module`` (put in eval mode) for inspection.

    Args:
        module: any ``nn.Module`` taking one (B, C, H, W) tensor and returning (B, K) class scores (logits); a
            model that ends in a softmax works too: its input is used as the logits.
        class_names: K names, in the order of the module's outputs; None: "0", "1", ... one per output.
        preprocessing: a name from ``convscope.preprocessing.PREPROCESSINGS``, its ``describe()`` dict, or an
            object; its ``normalize`` (mean/std) runs inside :meth:`capture`, so attributions are in pixels.
        name: how the CLI, the API and the UI call the model.
        input_shape: (C, H, W); default the preprocessing's.
        metadata: anything else worth showing: ``dataset``, ``weights`` (source, licence), ``description``.

    Raises :class:`ModelError` when the module does not run on ``input_shape`` or its output does not have one
    score per class name.
    """

    def __init__(self, module: nn.Module, class_names: Sequence[str] | None,
                 preprocessing: str | dict | Preprocessing,
                 name: str = "model", input_shape: Sequence[int] | None = None, metadata: dict | None = None):
        self.module = module.eval()
        self.name = name
        self.preprocessing = get_preprocessing(preprocessing)
        self.input_shape = tuple(input_shape or self.preprocessing.input_shape)
        if self.input_shape != self.preprocessing.input_shape:
            raise ModelError(f"preprocessing {self.preprocessing.name!r} makes inputs of shape "
                             f"{self.preprocessing.input_shape}, not the model's {self.input_shape}")
        self.metadata = dict(metadata or {})
        self._trace()
        scores = self.graph.scores_shape
        if len(scores) != 1:
            raise ModelError(f"the model's output has shape {scores}: it must be one score per class")
        self.class_names = tuple(str(c) for c in class_names) if class_names is not None else tuple(
            str(i) for i in range(scores[0]))
        if scores != (len(self.class_names),):
            raise ModelError(f"the model gives {scores[0]} scores but {len(self.class_names)} class names were "
                             "given: one name per output")

    def _trace(self) -> None:
        traced = trace_model(self.module, self.input_shape)
        self.graph: Graph = traced.graph
        self._run = traced.run

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
           memory_format: torch.memory_format | None = None) -> ModelAdapter:
        """Move or convert the module, then trace it again: a traced copy holds its own references to buffers
        that ``nn.Module.to`` replaces."""
        given = {"device": device, "dtype": dtype, "memory_format": memory_format}
        self.module.to(**{key: value for key, value in given.items() if value is not None})
        self._trace()
        return self

    @property
    def device(self) -> torch.device:
        param = next(self.module.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        param = next(self.module.parameters(), None)
        return param.dtype if param is not None else torch.float32

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def capture(self, x: torch.Tensor, taps: Iterable[str] = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B, C, H, W) pixels in [0, 1] -> (B, K) logits and ``{tap: (B, ...) output}`` for the named taps.

        The captures stay on the autograd graph (so a CAM can take gradients through them) and hold each tap's
        own output even where the model later writes into it in place.
        """
        wanted = set(taps)
        logits_tap = self.graph.logits
        if logits_tap is not None:
            wanted.add(logits_tap)
        with recording(wanted) as store:
            output = self._run(self.preprocessing.normalize(x))
        return (store[logits_tap] if logits_tap is not None else output), store

    def activations(self, x: torch.Tensor, taps: Iterable[str]) -> dict[str, torch.Tensor]:
        """(B, C, H, W) pixels in [0, 1] -> ``{tap: (B, ...) output}`` for the named taps only, without
        gradients, the forward stopped as soon as they are all recorded: VGG16's first conv block costs about a
        tenth of the whole network."""
        wanted = set(taps)
        with torch.no_grad(), recording(wanted, stop_early=True) as store:
            try:
                self._run(self.preprocessing.normalize(x))
            except AllRecorded:
                pass
        return dict(store)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) pixels in [0, 1] -> (B, K) logits."""
        return self.capture(x)[0]

    def describe(self) -> dict:
        return {"name": self.name, "input_shape": list(self.input_shape), "class_names": list(self.class_names),
                "preprocessing": self.preprocessing.describe(), "metadata": self.metadata,
                "parameters": sum(p.numel() for p in self.module.parameters()), "graph": self.graph.as_dict()}

    def __repr__(self) -> str:
        return (f"ModelAdapter({self.name!r}: {type(self.module).__name__}, input {self.input_shape}, "
                f"{self.num_classes} classes, {len(self.graph.taps)} layers, "
                f"preprocessing {self.preprocessing.name!r})")

    def _repr_html_(self) -> str:
        from ..display import model_html
        return model_html(self)


def wrap(module: nn.Module, class_names: Sequence[str], preprocessing: str | dict | Preprocessing = "resize",
         **kwargs) -> ModelAdapter:
    """``ModelAdapter(module, class_names, preprocessing, ...)``: the short way to inspect a model of your own."""
    return ModelAdapter(module, class_names, preprocessing, **kwargs)
