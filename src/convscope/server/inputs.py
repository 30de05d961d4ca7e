"""Turning what a client sends (an uploaded file, a canvas data URL, a 28x28 pixel array) into the stored image
and the model input. Everything is re-encoded by the server: what is stored and served back is always an image
Pillow wrote (no metadata, nothing the client crafted): a JPEG for a JPEG and a WebP for a lossy WebP (a photo as PNG
is 15-23x bigger), a PNG for the rest."""

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
from ..preprocessing import Framing, Preprocessing

FORMATS = ("PNG", "JPEG", "WEBP")
LOSSY_QUALITY = 95  # a photo re-encoded this close to its original shows no new artefacts, at about its size
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
DATA_URL = re.compile(r"data:image/(png|jpeg|webp);base64,(.*)", re.DOTALL)


@dataclass
class UserImage:
    kind: str  # "drawing" (a data URL), "upload" (a file) or "pixels" (a 28x28 array)
    image: Image.Image
    preprocess: bool  # the model's full preprocessing (MNIST: crop, centre, scale); False: fit it as it is
    sent_as: str = "PNG"  # the format the client sent: PNG, JPEG or WEBP
    lossy: bool = False  # sent lossily compressed (a JPEG, a lossy WebP): a photo, kept that way

    def stored(self) -> tuple[bytes, str]:
        """The bytes to keep and their format ("png", "jpeg" or "webp"): a lossy image is kept in its own format, at
        quality 95; the rest (drawings, lossless files, transparency) as PNG."""
        out = io.BytesIO()
        if self.lossy and self.image.mode in ("L", "RGB"):
            self.image.save(out, format=self.sent_as, quality=LOSSY_QUALITY)
            return out.getvalue(), self.sent_as.lower()
        self.image.save(out, format="PNG")
        return out.getvalue(), "png"

    def model_input(self, preprocessing: Preprocessing) -> tuple[torch.Tensor, Framing]:
        """(C, H, W) float in [0, 1] as the model expects, made by the model's own preprocessing, and where it
        came from."""
        if self.preprocess:
            return preprocessing.prepare(self.image)
        if self.kind == "pixels" and (1, self.image.height, self.image.width) == preprocessing.input_shape:
            # already model input: used exactly as given
            pixels = torch.from_numpy(np.asarray(self.image, dtype=np.float32) / 255.0)[None]
            return pixels, Framing((0.0, 0.0, float(self.image.width), float(self.image.height)),
                                   (0, 0, self.image.width, self.image.height))
        return preprocessing.resize(self.image)


def from_bytes(data: bytes, kind: str, max_pixels: int, preprocess: bool | None) -> UserImage:
    image = open_image(data, max_pixels)
    sent_as = image.format  # before any conversion, which forgets it
    if sent_as not in FORMATS:
        raise UnreadableImageError(f"{sent_as} images are not accepted: send a PNG, JPEG or WebP")
    if image.mode not in ("L", "LA", "RGB", "RGBA"):  # palettes, CMYK, 16-bit: one of the modes PNG stores plainly
        image = image.convert("RGBA" if image.mode in ("P", "PA") or "transparency" in image.info else "RGB")
    lossy = sent_as == "JPEG" or (sent_as == "WEBP" and is_lossy_webp(data))
    return UserImage(kind, image, True if preprocess is None else preprocess, sent_as, lossy)


def is_lossy_webp(data: bytes) -> bool:
    """Whether a WebP file's image is lossy ("VP8 " data) rather than lossless ("VP8L"). Its chunks follow the
    12-byte RIFF header, each a four-letter name, a little-endian size and the data, padded to an even length."""
    offset = 12
    while offset + 8 <= len(data):
        name, size = data[offset:offset + 4], int.from_bytes(data[offset + 4:offset + 8], "little")
        if name in (b"VP8 ", b"VP8L"):
            return name == b"VP8 "
        if name == b"ANMF":  # an animation frame: its image's chunks follow the frame's 16-byte header
            offset += 8 + 16
            continue
        offset += 8 + size + (size & 1)
    return False


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
    """An (H, W) array of 0-255 grey levels; for the MNIST models 28x28, light ink on dark (what ``/api/samples``
    returns)."""
    try:
        array = np.asarray(pixels, dtype=np.float64)
    except ValueError:
        raise InputError("pixels must be a rectangular array of numbers (every row the same length)") from None
    if array.ndim != 2 or min(array.shape) < 1:
        raise InputError(f"pixels must be a 2-D array of grey levels, got shape {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise InputError("pixels must be numbers from 0 to 255")
    image = Image.fromarray(array.round().astype(np.uint8))  # (28, 28) uint8: greyscale "L"
    # Already framed like MNIST: used as it is unless asked otherwise.
    return UserImage("pixels", image, False if preprocess is None else preprocess)


def from_stored(data: bytes, kind: str, preprocess: bool) -> UserImage:
    """A stored input, read back for a re-run."""
    image = open_image(data)
    return UserImage(kind, image, preprocess, image.format, image.format != "PNG")
