"""``mnist_digit``: turning a drawing into what an MNIST model expects, the way MNIST digits were made (LeCun et
al.): crop to the ink, scale the longer side into a 20x20 box keeping the aspect ratio (anti-aliased), and place
the result in a 28x28 field so that its centre of mass sits at the centre. On top of that the stroke width is
brought near MNIST's (about 2.6 px at 28x28; thin canvas strokes would otherwise shrink to faint one-pixel lines).

Accepts any size, dark-on-light or light-on-dark, greyscale, RGB, or RGBA where the ink is in the alpha channel
(a canvas drawn on a transparent background).
"""

from __future__ import annotations

import math
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError
from .base import Framing, Preprocessing

FIELD = 28  # output size
BOX = 20  # the longer side of the digit after scaling
CENTRE = 14.0  # where MNIST puts the centre of mass (measured on the test set: 13.99, 14.00)
MNIST_STROKE_WIDTH = 2.6  # median of 2 * area / perimeter over MNIST test digits at 28x28
INK_THRESHOLD = 0.1  # fraction of full ink below which a pixel counts as background
WORK_SIZE = 100  # the cropped digit is reduced to at most this many pixels (5x the box) before the stroke work


def ink_map(image: Image.Image | np.ndarray | torch.Tensor) -> np.ndarray:
    """Any image -> (H, W) float32 in [0, 1] where 1 is full ink and 0 is background."""
    if isinstance(image, Image.Image):
        return _pil_ink(image)
    array = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)) or min(array.shape[:2]) < 1:
        raise InputError(f"expected a greyscale, RGB or RGBA image, got an array of shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError("the image contains NaN or infinite values")
    array = array.clip(0, 1)
    if array.ndim == 3 and array.shape[2] in (2, 4) and array[:, :, -1].min() < 1.0:
        return array[:, :, -1]  # transparent background: the alpha channel is the ink
    if array.ndim == 2:
        return _ink_from_grey(array)
    if array.shape[2] >= 3:
        return _ink_from_grey(array[:, :, :3] @ np.array([0.299, 0.587, 0.114], np.float32))  # ITU-R 601 luma
    return _ink_from_grey(array[:, :, 0])  # grey + opaque alpha


def _pil_ink(image: Image.Image) -> np.ndarray:
    """The PIL path: conversions run in PIL's C code, several times faster than in numpy for canvas-sized input."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return np.asarray(alpha, dtype=np.float32) / 255.0  # transparent background: the alpha is the ink
    return _ink_from_grey(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)  # L is ITU-R 601 luma


def _ink_from_grey(grey: np.ndarray) -> np.ndarray:
    """Greyscale in [0, 1] -> ink; the background level is the median of the border pixels."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on a light background
        return ((background - grey) / background).clip(0, 1)
    return ((grey - background) / max(1.0 - background, 1e-6)).clip(0, 1)


def stroke_width(mask: torch.Tensor) -> float:
    """Estimated stroke width of a binary (H, W) mask: 2 * area / boundary length, exact for long strokes."""
    m = mask.float()[None, None]
    cross = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)[None, None]
    neighbours = F.conv2d(F.pad(m, (1, 1, 1, 1)), cross)[0, 0]
    boundary = (mask & (neighbours < 5)).sum()
    return float(2 * mask.sum() / boundary.clamp(min=1))


def _dilate(ink: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey dilation by a (2r+1)-square, growing the image by r on every side. Done as a row pass then a column
    pass: 2(2r+1) comparisons per pixel instead of (2r+1)^2."""
    k = 2 * radius + 1
    x = F.pad(ink[None, None], (2 * radius,) * 4)
    x = F.max_pool2d(x, (1, k), stride=1)
    return F.max_pool2d(x, (k, 1), stride=1)[0, 0]


def _crop(ink: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """The ink's bounding box, and its (row, column) origin in the image."""
    rows = torch.nonzero((ink > INK_THRESHOLD).any(dim=1)).flatten()
    cols = torch.nonzero((ink > INK_THRESHOLD).any(dim=0)).flatten()
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], (int(rows[0]), int(cols[0]))


def whole_image(height: int, width: int) -> Framing:
    return Framing((0.0, 0.0, float(width), float(height)), (0, 0, FIELD, FIELD))


def preprocess_drawing(image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
    """A drawing of one digit -> (28, 28) float32 in [0, 1], light ink on dark, MNIST-style.

    Raises :class:`InputError` for an empty drawing.
    """
    return frame_drawing(image)[0]


def frame_drawing(image: Image.Image | np.ndarray | torch.Tensor) -> tuple[torch.Tensor, Framing]:
    """:func:`preprocess_drawing`, and the :class:`Framing` that maps the result back onto the drawing."""
    ink = torch.from_numpy(np.ascontiguousarray(ink_map(image)))
    if not (ink > INK_THRESHOLD).any():
        raise InputError("the drawing is empty: draw a digit first")
    ink, (y0, x0) = _crop(ink)
    y1, x1 = y0 + ink.shape[0], x0 + ink.shape[1]
    factor = 1  # input pixels per working pixel
    if max(ink.shape) > WORK_SIZE:
        # Shrink big drawings first so the work below stays cheap; max pooling keeps thin strokes at full ink.
        factor = math.ceil(max(ink.shape) / WORK_SIZE)
        ink = F.max_pool2d(ink[None, None], factor, stride=factor, ceil_mode=True)[0, 0]
        y1, x1 = y0 + ink.shape[0] * factor, x0 + ink.shape[1] * factor
    scale = BOX / max(ink.shape)
    # Thicken strokes that would come out much thinner than MNIST's, working at the drawing's own resolution.
    width = stroke_width(ink > 0.5) if (ink > 0.5).any() else 1.0
    radius = round((MNIST_STROKE_WIDTH / scale - width) / 2)
    if radius >= 1 and width * scale < 0.75 * MNIST_STROKE_WIDTH:
        ink = _dilate(ink, radius)  # grows by `radius` working pixels on every side
        scale = BOX / max(ink.shape)
        grow = radius * factor
        y0, x0, y1, x1 = y0 - grow, x0 - grow, y1 + grow, x1 + grow
    height, width_px = (max(1, round(side * scale)) for side in ink.shape)
    digit = F.interpolate(ink[None, None], size=(height, width_px), mode="bilinear", antialias=True,
                          align_corners=False)[0, 0].clamp(0, 1)
    # Place by centre of mass: integer shift, as MNIST did.
    total = digit.sum()
    cy = float((digit.sum(dim=1) * torch.arange(height)).sum() / total)
    cx = float((digit.sum(dim=0) * torch.arange(width_px)).sum() / total)
    top, left = round(CENTRE - cy), round(CENTRE - cx)
    field = torch.zeros(FIELD + 2 * BOX, FIELD + 2 * BOX)  # margin so any shift fits, then cut the field out
    field[BOX + top:BOX + top + height, BOX + left:BOX + left + width_px] = digit
    framing = Framing((float(x0), float(y0), float(x1), float(y1)), (left, top, width_px, height))
    return field[BOX:BOX + FIELD, BOX:BOX + FIELD].contiguous(), framing


def resize_drawing(image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
    """The image's ink resized to (28, 28) as it is, with no cropping or centring (for input already framed like
    MNIST, or to see what preprocessing changes)."""
    ink = torch.from_numpy(np.ascontiguousarray(ink_map(image)))[None, None]
    return F.interpolate(ink, size=(FIELD, FIELD), mode="bilinear", antialias=True, align_corners=False)[0, 0]


class MnistDigit(Preprocessing):
    """A drawing of one digit -> (1, 28, 28) in [0, 1], light ink on dark, cropped, scaled and centred like MNIST.
    The MNIST models normalise inside themselves, so there is no mean/std here."""

    name = "mnist_digit"

    def __init__(self) -> None:
        super().__init__((1, FIELD, FIELD))

    def prepare(self, image) -> tuple[torch.Tensor, Framing]:
        digit, framing = frame_drawing(image)
        return digit[None], framing

    def resize(self, image) -> tuple[torch.Tensor, Framing]:
        height, width = _size(image)
        return resize_drawing(image)[None], whole_image(height, width)


def _size(image) -> tuple[int, int]:
    if isinstance(image, Image.Image):
        return image.height, image.width
    return tuple(np.shape(image)[:2])
