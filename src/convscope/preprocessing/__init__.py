"""Named preprocessings, one file each, found by name everywhere (Python API, CLI, server, UI).

A model names its preprocessing in its metadata as ``{"name": ..., **parameters}`` (or just the name, for the
defaults); :func:`get_preprocessing` turns that back into the object.
"""

from __future__ import annotations

from ..errors import ModelError
from .base import Framing, Preprocessing
from .imagenet import IMAGENET_MEAN, IMAGENET_STD, ImageNet
from .mnist_digit import MnistDigit, frame_drawing, preprocess_drawing, resize_drawing
from .resize import Resize

PREPROCESSINGS: dict[str, type[Preprocessing]] = {cls.name: cls for cls in (MnistDigit, ImageNet, Resize)}


def get_preprocessing(spec: str | dict | Preprocessing) -> Preprocessing:
    """A :class:`Preprocessing` from its name, its ``describe()`` dict, or itself."""
    if isinstance(spec, Preprocessing):
        return spec
    params = dict(spec) if isinstance(spec, dict) else {"name": spec}
    name = params.pop("name", None)
    if name not in PREPROCESSINGS:
        raise ModelError(f"unknown preprocessing {name!r}; choose from {', '.join(PREPROCESSINGS)}")
    try:
        return PREPROCESSINGS[name](**params)
    except (TypeError, ValueError) as e:
        raise ModelError(f"bad parameters for preprocessing {name!r}: {e}") from None


__all__ = [
    "Framing", "IMAGENET_MEAN", "IMAGENET_STD", "ImageNet", "MnistDigit", "PREPROCESSINGS", "Preprocessing",
    "Resize", "frame_drawing", "get_preprocessing", "preprocess_drawing", "resize_drawing",
]
