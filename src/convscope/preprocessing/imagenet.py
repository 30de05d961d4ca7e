"""``imagenet``: torchvision's classification preprocessing (``ImageClassification``): resize the short side,
centre crop, scale to [0, 1], then ImageNet mean/std. PIL resizes with antialiasing, as torchvision does for PIL
images and for tensors with ``antialias=True``."""

from __future__ import annotations

import torch

from ..errors import InputError
from .base import RESAMPLING, Framing, Preprocessing, to_pil, to_tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Resized images up to this many pixels are resized whole and cropped, as torchvision does; a longer strip has only
# the crop resampled (PIL's box: within 1/255 of the whole resize, without the gigapixel intermediate).
LARGEST_RESIZE = 4096 * 4096


class ImageNet(Preprocessing):
    name = "imagenet"

    def __init__(self, resize_size: int = 256, crop_size: int = 224, interpolation: str = "bilinear",
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        if interpolation not in RESAMPLING:
            raise ValueError(f"unknown interpolation {interpolation!r}; choose from {', '.join(RESAMPLING)}")
        if not 0 < crop_size <= resize_size:
            raise ValueError(f"the crop ({crop_size}) must be positive and fit the resized image ({resize_size})")
        super().__init__((3, crop_size, crop_size), mean, std, resize_size=resize_size, crop_size=crop_size,
                         interpolation=interpolation)
        self.resize_size, self.crop_size, self.interpolation = resize_size, crop_size, interpolation

    def prepare(self, image) -> tuple[torch.Tensor, Framing]:
        picture = to_pil(image, "RGB")
        width, height = picture.size
        if min(width, height) < 1:
            raise InputError("the image is empty")
        # torchvision: the short side becomes resize_size, the long side int(resize_size * long / short).
        if width <= height:
            new_width, new_height = self.resize_size, int(self.resize_size * height / width)
        else:
            new_width, new_height = int(self.resize_size * width / height), self.resize_size
        top = int(round((new_height - self.crop_size) / 2.0))
        left = int(round((new_width - self.crop_size) / 2.0))
        sx, sy = width / new_width, height / new_height  # input pixels per resized pixel
        source = (left * sx, top * sy, (left + self.crop_size) * sx, (top + self.crop_size) * sy)
        if new_width * new_height <= LARGEST_RESIZE:  # as torchvision does it, bit for bit
            resized = picture.resize((new_width, new_height), RESAMPLING[self.interpolation])
            crop = resized.crop((left, top, left + self.crop_size, top + self.crop_size))
        else:  # a long strip would resize to billions of pixels: resample only the part the crop keeps
            crop = picture.resize((self.crop_size, self.crop_size), RESAMPLING[self.interpolation], box=source)
        return to_tensor(crop), Framing(source, (0, 0, self.crop_size, self.crop_size))
