"""``convscope.explain`` (defined here: a module of that name would shadow the function on the package): one call
from a model and an image to an :class:`~convscope.inspect.Inspection`, for notebooks and scripts. Models named by
string are loaded once and kept with their Inspector; other models get a fresh Inspector each call (cheap: the
model is not copied), so nothing here keeps a model the caller has let go of."""

from __future__ import annotations

import functools

from torch import nn

from .inspect import Inspection, Inspector, Method
from .models import Checkpoint, ModelAdapter, load_model, wrap

@functools.lru_cache(maxsize=8)
def _named(name: str) -> Inspector:
    return Inspector(load_model(name).adapter)


def as_adapter(model) -> ModelAdapter:
    """A registered model's name, a checkpoint or a training run (their ``adapter``), a fine-tuning result (its
    checkpoint's), a wrapped model, or a bare ``nn.Module`` (wrapped with classes 0..K-1 and the default
    ``resize`` preprocessing, traced again on every call: ``convscope.wrap`` it once instead)."""
    if isinstance(model, str):
        return _named(model).model
    model = getattr(model, "checkpoint", None) or model  # a FineTuneResult
    if isinstance(getattr(model, "adapter", None), ModelAdapter):
        return model.adapter
    if isinstance(model, ModelAdapter):
        return model
    if isinstance(model, nn.Module):
        return wrap(model, None)
    raise TypeError(f"expected a model name, a Checkpoint, a training run, a ModelAdapter or an nn.Module, got "
                    f"{type(model).__name__}")


def explain(model: str | Checkpoint | ModelAdapter | nn.Module, image, method: Method = "gradcam",
            target: int | str | None = None, layer: str | None = None,
            layers: list[str] | None = None) -> Inspection | list[Inspection]:
    """The model's prediction for ``image`` with a ``method`` map (for class ``target``, by index or name,
    default the predicted one; at CAM ``layer``, default the model's) and its layers' activations:
    ``convscope.explain("mnist_cnn", "digit.png")``. ``image`` takes every form ``Inspector.inspect`` does (a
    path, a PIL image, an array, the model input, a batch)."""
    inspector = _named(model) if isinstance(model, str) else Inspector(as_adapter(model))
    return inspector.inspect(image, target=target, cam_layer=layer, method=method, layers=layers)
