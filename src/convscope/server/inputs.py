"""Turning what a client sends (an uploaded file, a canvas data URL, a 28x28 pixel array) into the stored image
and the model input. Everything is re-encoded as PNG by the server: what is stored and served back is always a
plain PNG that Pillow wrote, whatever the client sent."""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, UnreadableImageError
from ..images import open_image
from ..preprocess import Framing, frame_drawing, resize_drawing, whole_image

FORMATS = ("PNG", "JPEG", "WEBP")
DATA_URL = re.compile(r"data:image/(png|jpeg|webp);base64,(.*)", re.DOTALL)


@dataclass
class UserImage:
    kind: str  # "drawing" (a data URL), "upload" (a file) or "pixels" (a 28x28 array)
    image: Image.Image
    preprocess: bool  # crop, centre and scale like MNIST; False: resize the ink to 28x28 as it is

    @property
    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, format="PNG")
        return out.getvalue()

    def model_input(self) -> tuple[torch.Tensor, Framing]:
        """(28, 28) float in [0, 1], light ink on dark, as the model expects, and where it came from."""
        if self.preprocess:
            return frame_drawing(self.image)
        whole = whole_image(self.image.height, self.image.width)
        if self.kind == "pixels":  # already model input: used exactly as given
            return torch.from_numpy(np.asarray(self.image, dtype=np.float32) / 255.0), whole
        return resize_drawing(self.image), whole


def from_bytes(data: bytes, kind: str, max_pixels: int, preprocess: bool | None) -> UserImage:
    image = open_image(data, max_pixels)
    if image.format not in FORMATS:
        raise UnreadableImageError(f"{image.format} images are not accepted: send a PNG, JPEG or WebP")
    if image.mode not in ("L", "LA", "RGB", "RGBA"):  # palettes, CMYK, 16-bit: one of the modes PNG stores plainly
        image = image.convert("RGBA" if image.mode in ("P", "PA") or "transparency" in image.info else "RGB")
    return UserImage(kind, image, True if preprocess is None else preprocess)


def from_data_url(url: str, max_pixels: int, preprocess: bool | None) -> UserImage:
    match = DATA_URL.fullmatch(url.strip())
    if not match:
        raise UnreadableImageError("image must be a data URL: data:image/png, image/jpeg or image/webp;base64,...")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("the data URL's base64 is corrupt") from None
    return from_bytes(data, "drawing", max_pixels, preprocess)


def from_pixels(pixels: list[list[float]], preprocess: bool | None) -> UserImage:
    """A 28x28 array of 0-255 grey levels, light ink on dark as in MNIST (what ``/api/samples`` returns)."""
    array = np.asarray(pixels, dtype=np.float64)
    if array.shape != (28, 28):
        raise InputError(f"pixels must be a 28x28 array, got shape {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise InputError("pixels must be numbers from 0 to 255")
    image = Image.fromarray(array.round().astype(np.uint8))  # (28, 28) uint8: greyscale "L"
    # Already framed like MNIST: used as it is unless asked otherwise.
    return UserImage("pixels", image, False if preprocess is None else preprocess)


def from_png(png: bytes, kind: str, preprocess: bool) -> UserImage:
    """A stored input, read back for a re-run."""
    return UserImage(kind, open_image(png), preprocess)
