"""Reading user images safely: the pixel count is checked from the header before any pixel is decoded."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageTooLargeError, InputError, UnreadableImageError

MAX_PIXELS = 4096 * 4096


def open_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open a PNG, JPEG, WebP, GIF or BMP file (path or bytes) and decode it, refusing huge or corrupt images, turned
    upright as its EXIF orientation says (its ``format`` stays the file's)."""
    name = "image" if isinstance(source, bytes) else str(source)
    try:
        with warnings.catch_warnings():  # PIL warns about big images; the check below refuses them itself
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except Image.DecompressionBombError as e:  # PIL's own header check, far above ours
        raise ImageTooLargeError(f"{name}: {e}") from None
    except UnidentifiedImageError:
        raise UnreadableImageError(f"{name}: not an image in a format this reads (PNG, JPEG, WebP, GIF, BMP)") from None
    except OSError as e:
        raise UnreadableImageError(f"{name}: not a readable image ({e})") from None
    except (ValueError, SyntaxError) as e:
        # ValueError: a PNG text or colour-profile chunk that inflates past Pillow's limit (a zTXt/iCCP bomb);
        # SyntaxError: Pillow's word for some malformed headers. A corrupt file of a format we read: 422, not 415.
        raise InputError(f"{name}: corrupt image ({e})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{name}: {width}x{height} pixels is over the limit of {max_pixels:,}")
    try:
        image.load()
        # A phone photo is stored as the sensor saw it, with an EXIF tag saying how to turn it upright.
        ImageOps.exif_transpose(image, in_place=True)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise InputError(f"{name}: corrupt image ({e})") from None
    return eight_bit(image)


def eight_bit(image: Image.Image) -> Image.Image:
    """An image of 8 bits per channel: 16-bit (and 32-bit integer) greyscale scaled to 8 bits. Pillow's own
    conversion clips at 255, which turns a 16-bit photo of dark ink on white paper all white."""
    if image.mode not in ("I;16", "I;16B", "I;16L", "I"):
        return image
    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
    scaled = Image.fromarray(np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    scaled.format = image.format
    return scaled
