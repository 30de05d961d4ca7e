"""What every preprocessing does: an image in, the model input and where it came from out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from ..errors import InputError


@dataclass(frozen=True)
class Framing:
    """Where the model input came from: the rectangle ``source`` (x0, y0, x1, y1, in input-image pixels) became
    the rectangle ``field`` (left, top, width, height, in model-input pixels). With it a map over the model input
    (a CAM) can be laid back over the user's image."""

    source: tuple[float, float, float, float]
    field: tuple[int, int, int, int]

    def as_dict(self) -> dict:
        return {"source": list(self.source), "field": list(self.field)}


class Preprocessing:
    """Turns a user's image into model input: ``prepare`` gives (C, H, W) float32 in [0, 1], the picture the
    model sees, and its :class:`Framing`. ``normalize`` is the part that is not a picture (mean/std): the model
    adapter applies it inside the forward, so attributions are taken with respect to the pixels."""

    name: ClassVar[str]

    def __init__(self, input_shape: tuple[int, int, int], mean=None, std=None, **params):
        self.input_shape = tuple(input_shape)
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        for values in (self.mean, self.std):
            if values is not None and len(values) not in (1, input_shape[0]):
                raise ValueError(f"mean and std need 1 or {input_shape[0]} values, got {len(values)}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError("std must be positive")
        self.params = params

    def prepare(self, image) -> tuple[torch.Tensor, Framing]:
        raise NotImplementedError

    def resize(self, image) -> tuple[torch.Tensor, Framing]:
        """The image fitted to the input size as it is, for input already framed the way the model wants.
        By default the same as :meth:`prepare`."""
        return self.prepare(image)

    def unusual(self, x: torch.Tensor, probabilities: torch.Tensor) -> str | None:
        """Why the model input x (C, H, W) in [0, 1], and the model's answer for it (num_classes,), look unlike
        what models with this preprocessing were trained on: a sentence, or None when nothing is known to be
        off. A confident answer for such an input deserves no trust. By default nothing is known."""
        return None

    def doubt(self, x: torch.Tensor) -> str | None:
        """Why model input x (C, H, W) in [0, 1], given as it is rather than prepared from a picture, may not be
        what this preprocessing makes: a sentence saying what to do, or None. By default nothing is known."""
        return None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> what the module takes."""
        if self.mean is None and self.std is None:
            return x
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean or (0.0,), dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std or (1.0,), dtype=x.dtype, device=x.device).view(shape)
        return (x - mean) / std

    def describe(self) -> dict:
        """The name and parameters, as stored with a model and returned by the API; ``get_preprocessing`` of it
        gives an equal preprocessing back."""
        body = {"name": self.name, **self.params}
        if self.mean is not None:
            body["mean"] = list(self.mean)
        if self.std is not None:
            body["std"] = list(self.std)
        return body


def to_pil(image, mode: str) -> Image.Image:
    """A PIL image, an (H, W) / (H, W, C) array (uint8 0-255 or float in [0, 1]) or a (C, H, W) tensor, in PIL
    ``mode`` ("RGB" or "L"). Transparent pixels are laid on white, as a browser shows them."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = image.permute(1, 2, 0) if image.dim() == 3 and image.shape[0] in (1, 3, 4) else image
        image = image.numpy()
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            if not np.isfinite(array).all():
                raise InputError("the image contains NaN or infinite values")
            array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise InputError(f"expected a greyscale, RGB or RGBA image, got an array of shape {image.shape}")
        image = Image.fromarray(array)
    if not isinstance(image, Image.Image):
        raise InputError(f"expected an image, got {type(image).__name__}")
    if image.mode in ("RGBA", "LA", "PA", "P") and (image.mode != "P" or "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert(mode)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL "RGB" or "L" image -> (C, H, W) float32 in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())


RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
              "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
