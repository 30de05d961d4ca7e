"""``convscope.explain`` (defined here: a module of that name would shadow the function on the package): one call
from a model and an image to an :class:`~convscope.inspect.Inspection`, for notebooks and scripts. Models named by
string are loaded once and kept; each model gets one Inspector."""

from __future__ import annotations

import functools
import weakref

from torch import nn

from .inspect import Inspection, Inspector, Method
from .models import Checkpoint, ModelAdapter, load_model, wrap

_inspectors: weakref.WeakKeyDictionary[ModelAdapter, Inspector] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=8)
def _named(name: str) -> ModelAdapter:
    return load_model(name).adapter


def as_adapter(model) -> ModelAdapter:
    """A registered model's name, a checkpoint or a training run (their ``adapter``), a wrapped model, or a bare
    ``nn.Module`` (wrapped with classes 0..K-1 and the default ``resize`` preprocessing: ``convscope.wrap``
    chooses others)."""
    if isinstance(model, str):
        return _named(model)
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
    adapter = as_adapter(model)
    inspector = _inspectors.get(adapter)
    if inspector is None:
        inspector = _inspectors[adapter] = Inspector(adapter)
    return inspector.inspect(image, target=target, cam_layer=layer, method=method, layers=layers)
