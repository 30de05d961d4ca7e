"""``resize``: the whole image resized to the model's input size, greyscale or RGB, with an optional mean/std.
The plain choice for a model of the user's own."""

from __future__ import annotations

import torch

from .base import RESAMPLING, Framing, Preprocessing, to_pil, to_tensor


class Resize(Preprocessing):
    name = "resize"

    def __init__(self, size=(224, 224), channels: int = 3, interpolation: str = "bilinear", mean=None, std=None):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if interpolation not in RESAMPLING:
            raise ValueError(f"unknown interpolation {interpolation!r}; choose from {', '.join(RESAMPLING)}")
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        super().__init__((channels, height, width), mean, std, size=[height, width], channels=channels,
                         interpolation=interpolation)
        self.interpolation = interpolation

    def prepare(self, image) -> tuple[torch.Tensor, Framing]:
        picture = to_pil(image, "L" if self.input_shape[0] == 1 else "RGB")
        _, height, width = self.input_shape
        resized = picture.resize((width, height), RESAMPLING[self.interpolation])
        return to_tensor(resized), Framing((0.0, 0.0, float(picture.width), float(picture.height)),
                                           (0, 0, width, height))
