"""Whatever a user hands ``Inspector.inspect``, turned into model input, or a message that says what to do.

Two kinds of input are told apart by their shape:

- *model input*: already what the model takes, (C, H, W), (H, W) for one channel, or a batch (N, C, H, W) /
  (N, H, W); uint8 in 0-255 or float in [0, 1]. It is checked, not changed: a float image in 0-255, one already
  normalised with a mean and std, or a blank one is what a notebook user most often passes by mistake, and gets
  a warning that says what to do (a model of your own may mean such values, so it still runs).
- *a picture*: a path, bytes, a PIL image, or an array of any other size ((H, W), (H, W, C) or (C, H, W)). It goes
  through the model's preprocessing (``model.preprocessing.prepare``), as the CLI and the server do.

A list or tuple is a batch of either kind.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..images import eight_bit, open_image
from ..preprocessing import Preprocessing

FORMS = ("a path, bytes or a PIL image (preprocessed for the model), an (H, W), (H, W, C) or (C, H, W) picture, "
         "the model input itself {shape} (uint8 0-255 or float 0-1), or a batch of these")
# A range of pixel values under this is no picture: the model's answer for it says nothing.
LEAST_CONTRAST = 0.02
TOLERANCE = 1e-3  # float input may stray this far outside [0, 1] (resampling, rounding) and still count as in it


class InputWarning(UserWarning):
    """An input convscope can run but whose result deserves doubt (a blank image, an inverted MNIST digit)."""


def model_inputs(image, preprocessing: Preprocessing) -> tuple[torch.Tensor, bool]:
    """``image`` in any accepted form -> float32 (N, C, H, W) in [0, 1], and whether it was a batch. Model input
    that is blank or unlike what the preprocessing makes gets a warning (:class:`InputWarning`)."""
    if isinstance(image, (list, tuple)) and _numbers(image):
        image = np.asarray(image)  # a nested list of pixel values: one array (ints stay ints: 0-255)
    if isinstance(image, (list, tuple)):
        return _batch(list(image), preprocessing)
    if isinstance(image, (str, Path, bytes)):
        image = open_image(image)
    if isinstance(image, Image.Image):
        return preprocessing.prepare(eight_bit(image))[0][None], False
    if not isinstance(image, (torch.Tensor, np.ndarray)):
        raise InputError(f"cannot inspect a {type(image).__name__}; give {_forms(preprocessing)}")
    if isinstance(image, np.ndarray) and not image.flags.writeable:
        image = image.copy()  # np.asarray(a PIL image) is read-only, which torch warns about
    x = _eight_bit_if_whole(torch.as_tensor(image).detach().cpu())
    shape = tuple(preprocessing.input_shape)
    if is_model_input(tuple(x.shape), shape):
        return _checked(x, preprocessing), False
    if (x.dim() == 4 and tuple(x.shape[1:]) == shape) or (shape[0] == 1 and x.dim() == 3
                                                           and tuple(x.shape[1:]) == shape[1:]):
        if len(x) == 0:
            raise InputError("an empty batch: nothing to inspect")
        return _checked(x, preprocessing), True
    if x.dim() == 2 or x.dim() == 3 and (x.shape[-1] in (1, 3, 4) or x.shape[0] in (1, 3, 4)):
        return preprocessing.prepare(_picture(x))[0][None], False
    if x.dim() == 4:  # a batch of pictures: (N, H, W, C) or (N, C, H, W) of another size than the model's
        return _batch(list(x), preprocessing)
    raise InputError(f"cannot read an array of shape {tuple(x.shape)} as an image; give {_forms(preprocessing)}")


def _batch(images: list, preprocessing: Preprocessing) -> tuple[torch.Tensor, bool]:
    if not images:
        raise InputError("an empty batch: nothing to inspect")
    return torch.cat([model_inputs(one, preprocessing)[0] for one in images]), True


def _eight_bit_if_whole(x: torch.Tensor) -> torch.Tensor:
    """Whole numbers are pixel values: 0-255 (any integer type, a list of ints) as uint8; 16-bit ones (a 16-bit
    PNG read with numpy) scaled to 8 bits, as the images read from files are."""
    if x.dtype == torch.uint8 or x.dtype.is_floating_point or x.dtype == torch.bool or x.numel() == 0:
        return x
    x = x.to(torch.int64)  # torch has no min or max for uint16
    low, high = int(x.min()), int(x.max())
    if low < 0 or high > 65535:
        raise InputError(f"whole-number pixels run from 0 to 255 (or 65535 for 16 bits); these go from {low} to "
                         f"{high}")
    return (x if high <= 255 else (x.double() * (255 / 65535)).round()).to(torch.uint8)


def _numbers(values: list | tuple) -> bool:
    first = values[0] if values else None
    return isinstance(first, numbers.Real) or isinstance(first, (list, tuple)) and _numbers(first)


def _forms(preprocessing: Preprocessing) -> str:
    return FORMS.format(shape=tuple(preprocessing.input_shape))


def is_model_input(given: tuple, shape: tuple) -> bool:
    """Whether an array of shape ``given`` is one model input of ``shape`` (C, H, W)."""
    return given == shape or shape[0] == 1 and given == shape[1:] or given == (1, *shape)


def _picture(x: torch.Tensor) -> np.ndarray:
    """An array the preprocessing's ``to_pil`` reads: (H, W) or (H, W, C), uint8 or float in [0, 1]."""
    if x.dim() == 3 and x.shape[-1] not in (1, 3, 4):
        x = x.permute(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if x.dtype != torch.uint8:
        x = _finite(x.float(), "picture")
        doubt = _out_of_range(x)
        if doubt:  # a picture becomes 8-bit pixels: values outside [0, 1] would be clipped without a word
            raise InputError(doubt.replace("model input", "a float picture"))
    return x.numpy()


def _checked(x: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """Model input (any batch shape) -> float (N, C, H, W), with a warning for values the model hardly means."""
    x = x.float().div(255.0) if x.dtype == torch.uint8 else _finite(x.float(), "image")
    x = x.reshape(-1, *preprocessing.input_shape)
    for one in x:
        doubt = _out_of_range(one) or _blank(one) or preprocessing.doubt(one)
        if doubt:
            warn(doubt)
    return x


PACKAGE = str(Path(__file__).resolve().parents[1])


def warn(message: str) -> None:
    """An InputWarning attributed to the user's line that called into convscope (Python shows a warning once
    per line: attributed to a line of ours, a notebook would see it only the first time)."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, InputWarning, stacklevel=level)


def _finite(x: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(x).all():
        raise InputError(f"the {what} contains NaN or infinite values")
    return x


def _out_of_range(x: torch.Tensor) -> str | None:
    """Model input runs in [0, 1] (the model normalises inside itself); a model of your own may take other
    values, so this is a warning, not an error."""
    low, high = float(x.min()), float(x.max())
    if low < -TOLERANCE:
        return (f"the image's values go down to {low:g}, where model input runs from 0 to 1: it looks normalised "
                "(mean and std) already; pass the pixels in [0, 1], the model normalises them itself")
    if high > 1 + TOLERANCE:
        return (f"the image's values go up to {high:g}, where model input runs from 0 to 1: if it is in 0-255, "
                "divide it by 255 or pass it as uint8")
    return None


def _blank(x: torch.Tensor) -> str | None:
    spread = float(x.max() - x.min())
    if spread == 0:
        return f"the image is blank (every value is {float(x.max()):g}): the model's answer says nothing about it"
    if spread < LEAST_CONTRAST:
        return (f"the image has almost no contrast (its values span {spread:.3g}): stretch it to [0, 1] first, "
                "or the model's answer says little about it")
    return None
