"""``mnist_digit``: turning a drawing into what an MNIST model expects, the way MNIST digits were made (LeCun et
al.): crop to the ink, scale the longer side into a 20x20 box keeping the aspect ratio (anti-aliased), and place
the result in a 28x28 field so that its centre of mass sits at the centre. On top of that the stroke width is
brought near MNIST's (about 2.6 px at 28x28; thin canvas strokes would otherwise shrink to faint one-pixel lines,
and a small digit drawn with a wide pen would close its own openings), and a photo's uneven background (a shadow
across the page) is modelled and divided out before the ink is found.

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
# The mean pixel of MNIST test digits (ink coverage of the 28x28 field): its 0.5th and 99.5th percentiles, 4.4%
# and 27.0% (median 12.9%). Outside them an input is unlike MNIST, however sure the model is.
MNIST_COVERAGE = (0.044, 0.27)
LEAST_CONFIDENCE = 0.5  # below this top probability no class claims the input
THICK = 1.5  # strokes wider than this many times MNIST's once scaled are thinned
# A drawing over this many pixels is reduced before its ink is worked out (4096 x 4096 uploads are allowed).
MAX_INK_PIXELS = 2048 * 2048
MAX_INK_SIDE = 4096
WORK_SIZE = 100  # the cropped digit is reduced to at most this many pixels (5x the box) before the stroke work
UNEVEN_BACKGROUND = 0.08  # a border whose 10th-90th percentile spread is wider than this is not an even background
BACKGROUND_WORK_SIZE = 128  # the background is estimated on a copy at most this many pixels wide


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
    """The PIL path: conversions run in PIL's C code, several times faster than in numpy for canvas-sized input.
    A huge drawing gives a smaller map (see :func:`_shrunk`): the caller scales by its size."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:  # transparent background: the alpha is the ink
            return _shrunk(np.asarray(alpha), keep=np.max).astype(np.float32) / 255.0
    grey = np.asarray(image.convert("L"))  # L is ITU-R 601 luma
    if grey.size > MAX_INK_PIXELS or max(grey.shape) > MAX_INK_SIDE:
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        grey = _shrunk(grey, keep=np.min if np.median(border) > 127 else np.max)  # keep the ink's extreme
    return _ink_from_grey(grey.astype(np.float32) / 255.0)


def _shrunk(pixels: np.ndarray, keep) -> np.ndarray:
    """A uint8 (H, W) image over MAX_INK_PIXELS, or longer than MAX_INK_SIDE, reduced block by block until it
    is neither, each block to its darkest or lightest pixel (``keep``), so that a one-pixel stroke survives: the
    float work after it then holds megabytes, not the hundreds a 16-megapixel drawing would take."""
    factor = max(math.ceil(math.sqrt(pixels.size / MAX_INK_PIXELS)), math.ceil(max(pixels.shape) / MAX_INK_SIDE))
    if factor <= 1:
        return pixels
    # Blocks no taller or wider than the image: a 1-pixel-high strip is reduced along its length only.
    block_y, block_x = min(factor, pixels.shape[0]), min(factor, pixels.shape[1])
    height = math.ceil(pixels.shape[0] / block_y) * block_y
    width = math.ceil(pixels.shape[1] / block_x) * block_x
    padded = np.full((height, width), 255 if keep is np.min else 0, np.uint8)  # padding that never wins
    padded[:pixels.shape[0], :pixels.shape[1]] = pixels
    return keep(padded.reshape(height // block_y, block_y, width // block_x, block_x), axis=(1, 3))


def _ink_from_grey(grey: np.ndarray) -> np.ndarray:
    """Greyscale in [0, 1] -> ink. On an even background (a canvas, a scan) its level is the median of the border
    pixels; on an uneven one (a photo of paper with a shadow) it is estimated at every pixel."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if float(np.percentile(border, 90) - np.percentile(border, 10)) > UNEVEN_BACKGROUND and min(grey.shape) >= 16:
        return _ink_on_uneven_background(grey)
    background = float(np.median(border))
    if background > 0.5:  # dark ink on a light background
        return ((background - grey) / background).clip(0, 1)
    return ((grey - background) / max(1.0 - background, 1e-6)).clip(0, 1)


def _ink_on_uneven_background(grey: np.ndarray) -> np.ndarray:
    """Ink on a background whose level varies (shadow, vignetting, uneven light): the background is estimated by
    a morphological closing wider than any stroke, on a reduced copy, then smoothed and brought back to full size;
    the ink is the contrast against it, relative to it (a shadow scales the page and the ink alike, so it cancels
    out), with the paper's own texture cut off by Otsu's threshold. A border in shadow cannot tell the polarity:
    the ink is the few pixels far from their neighbourhood's mean, so its side is the sign of their skew."""
    x = torch.from_numpy(np.ascontiguousarray(grey))[None, None]
    ink = _contrast_against_background(x if _skew_from_local_mean(x) <= 0 else 1 - x).numpy()
    threshold = _otsu(ink)
    strong = ink[ink > threshold]
    if strong.size == 0:
        return np.zeros_like(ink)
    full = float(np.percentile(strong, 90))  # the ink's own level counts as full ink
    return ((ink - threshold) / max(full - threshold, 1e-6)).clip(0, 1).astype(np.float32)


def _reduced(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A copy at most BACKGROUND_WORK_SIZE pixels wide, and an odd window a quarter of its shorter side."""
    shrink = max(1, math.ceil(max(x.shape[-2:]) / BACKGROUND_WORK_SIZE))
    small = F.avg_pool2d(x, shrink, stride=shrink, ceil_mode=True)
    return small, max(3, (min(small.shape[-2:]) // 4) | 1)


def _window(x: torch.Tensor, k: int, reduce) -> torch.Tensor:
    return reduce(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)


def _skew_from_local_mean(x: torch.Tensor) -> float:
    """The skewness of (1, 1, H, W) pixels minus their neighbourhood's mean: negative for dark ink."""
    small, k = _reduced(x)
    residual = small - _window(small, k, F.avg_pool2d)
    return float((residual ** 3).mean() / residual.pow(2).mean().clamp(min=1e-12) ** 1.5)


def _contrast_against_background(x: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) dark ink on a lighter, uneven background -> (H, W) ink contrast in [0, 1]."""
    small, k = _reduced(x)  # the window is wider than any stroke
    closed = _window(small, k, F.max_pool2d)  # dilate: dark strokes vanish
    closed = -_window(-closed, k, F.max_pool2d)  # erode: the paper's edges come back
    closed = _window(closed, k, F.avg_pool2d)  # smooth
    background = F.interpolate(closed, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return ((background - x) / background.clamp(min=1e-3)).clamp(0, 1)[0, 0]


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1] (64 bins): the split that maximises the between-class variance."""
    counts, edges = np.histogram(values, bins=64, range=(0.0, 1.0))
    p = counts / max(counts.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(p)
    mean = np.cumsum(p * centres)
    between = (mean[-1] * weight - mean) ** 2 / np.maximum(weight * (1 - weight), 1e-12)
    return float(centres[int(np.argmax(between[:-1]))] + (centres[1] - centres[0]) / 2)


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


def _erode(ink: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey erosion by an octagon of radius r (r steps alternating a 3x3 square and a plus), same size: a stroke
    loses about r pixels on each side whatever its direction (a square would eat diagonals sqrt(2) times faster)."""
    x = -ink[None, None]
    for step in range(radius):
        x = F.pad(x, (1, 1, 1, 1), value=-0.0)  # outside the image is background
        if step % 2 == 0:
            x = F.max_pool2d(x, 3, stride=1)
        else:  # a plus: the max over the centre and its four neighbours
            x = torch.stack([x[..., 1:-1, 1:-1], x[..., :-2, 1:-1], x[..., 2:, 1:-1], x[..., 1:-1, :-2],
                             x[..., 1:-1, 2:]]).amax(dim=0)
    return -x[0, 0]


def _normalise_stroke(ink: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Bring the stroke width of a cropped digit (H, W) near MNIST's once it is scaled into the 20-pixel box:
    thin strokes are dilated (a thin pen would shrink to faint one-pixel lines), thick ones eroded (a small
    digit drawn with a wide pen would fill its loops in: a "3" becomes an "8"). Returns the new ink, cropped to
    itself, and how far its box grew on each side (top, left, bottom, right; negative where it shrank)."""
    mask = ink > 0.5
    if not mask.any():
        return ink, (0, 0, 0, 0)
    width = stroke_width(mask)
    extent = max(ink.shape)
    scaled = width * BOX / extent
    if scaled < 0.75 * MNIST_STROKE_WIDTH:
        radius = round((MNIST_STROKE_WIDTH * extent / BOX - width) / 2)
        if radius >= 1:
            return _dilate(ink, radius), (radius,) * 4  # grows by `radius` on every side
    elif scaled > THICK * MNIST_STROKE_WIDTH:
        # Eroding by r takes 2r off both the stroke and the extent: solve (w - 2r) / (E - 2r) = target / BOX.
        ratio = MNIST_STROKE_WIDTH / BOX
        radius = min(round((width - ratio * extent) / (2 * (1 - ratio))), int((width - 1) // 2))
        if radius >= 1:
            thinner = _erode(ink, radius)
            if (thinner > INK_THRESHOLD).any():
                cropped, (top, left) = _crop(thinner)
                bottom = ink.shape[0] - top - cropped.shape[0]
                right = ink.shape[1] - left - cropped.shape[1]
                return cropped, (-top, -left, -bottom, -right)
    return ink, (0, 0, 0, 0)


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
    # Input pixels per ink-map pixel: 1, or more for a huge drawing whose map was shrunk.
    reduced = (_size(image)[0] / ink.shape[0], _size(image)[1] / ink.shape[1])
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
    ink, (top_grow, left_grow, bottom_grow, right_grow) = _normalise_stroke(ink)
    y0, x0 = y0 - top_grow * factor, x0 - left_grow * factor
    y1, x1 = y1 + bottom_grow * factor, x1 + right_grow * factor
    scale = BOX / max(ink.shape)
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
    framing = Framing((x0 * reduced[1], y0 * reduced[0], x1 * reduced[1], y1 * reduced[0]),
                      (left, top, width_px, height))
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

    def unusual(self, x: torch.Tensor, probabilities: torch.Tensor) -> str | None:
        """A speck (scaled up into the box, it becomes a blob), a scribble or a filled shape covers far more of
        the field than any MNIST digit; an empty corner of a canvas far less; and a digit no class claims is
        unlike them too."""
        coverage = float(x.mean())
        low, high = MNIST_COVERAGE
        if not low <= coverage <= high:
            return (f"the ink covers {coverage:.1%} of the model input, where MNIST digits cover {low:.1%} to "
                    f"{high:.1%}: this does not look like one handwritten digit")
        best = float(probabilities.max())
        if best < LEAST_CONFIDENCE:
            return f"no class stands out (the most probable has {best:.0%}): this may not be a digit the model knows"
        return None

    def doubt(self, x: torch.Tensor) -> str | None:
        """MNIST digits are light ink on a dark background: an input mostly light is most likely inverted."""
        if float(x.mean()) > 0.6:  # MNIST digits average 0.13, inverted ones 0.87
            return ("this looks inverted: MNIST digits are light on a dark background and this image is mostly "
                    "light; pass 1 - image, or the picture itself (a path or PIL image), whose ink the mnist_digit "
                    "preprocessing finds on any background")
        return None

    def resize(self, image) -> tuple[torch.Tensor, Framing]:
        height, width = _size(image)
        return resize_drawing(image)[None], whole_image(height, width)


def _size(image) -> tuple[int, int]:
    if isinstance(image, Image.Image):
        return image.height, image.width
    return tuple(np.shape(image)[:2])
