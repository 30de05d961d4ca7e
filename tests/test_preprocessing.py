"""The preprocessing registry: names, parameters, and torchvision's ImageNet recipe checked on images whose
answer is known without running the code under test."""

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.errors import ModelError
from convscope.preprocessing import (IMAGENET_MEAN, IMAGENET_STD, PREPROCESSINGS, frame_drawing, get_preprocessing)


def test_every_preprocessing_round_trips_through_its_description():
    for name in PREPROCESSINGS:
        made = get_preprocessing(name)
        again = get_preprocessing(made.describe())
        assert again.describe() == made.describe() and again.input_shape == made.input_shape
    assert get_preprocessing("imagenet").describe() == {
        "name": "imagenet", "resize_size": 256, "crop_size": 224, "interpolation": "bilinear",
        "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


@pytest.mark.parametrize("spec, message", [
    ("jpeg", "unknown preprocessing 'jpeg'"),
    ({"name": "imagenet", "crop_size": 300}, "must be positive and fit the resized image"),
    ({"name": "resize", "channels": 2}, "channels must be 1 or 3"),
    ({"name": "resize", "colour": True}, "bad parameters for preprocessing 'resize'"),
])
def test_bad_preprocessings_are_clear_errors(spec, message):
    with pytest.raises(ModelError, match=message):
        get_preprocessing(spec)


def test_imagenet_resizes_the_short_side_and_crops_the_centre():
    # 512x512 -> 256x256 (exactly half) -> centre 224 crop from 16 to 240. A white block at 256..320 in the
    # original lands at 128..160 after the resize and at 112..144 in the crop.
    picture = np.zeros((512, 512, 3), np.uint8)
    picture[256:320, 256:320] = 255
    x, framing = get_preprocessing("imagenet").prepare(Image.fromarray(picture))
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    assert torch.allclose(x[:, 114:142, 114:142], torch.ones(1)) and float(x[:, :100, :100].max()) == 0.0
    assert framing.source == (32.0, 32.0, 480.0, 480.0) and framing.field == (0, 0, 224, 224)


def test_imagenet_framing_of_a_wide_photo_and_its_normalisation():
    x, framing = get_preprocessing("imagenet").prepare(Image.new("RGB", (400, 300), (255, 128, 0)))
    # short side 300 -> 256, long side int(256 * 400 / 300) = 341; left = round((341 - 224) / 2) = 58, top = 16
    assert framing.source == pytest.approx((58 * 400 / 341, 16 * 300 / 256, 282 * 400 / 341, 240 * 300 / 256))
    torch.testing.assert_close(x[:, 50, 50], torch.tensor([1.0, 128 / 255, 0.0]))
    normalized = get_preprocessing("imagenet").normalize(x[None])[0, :, 50, 50]
    expected = [(v - m) / s for v, m, s in zip([1.0, 128 / 255, 0.0], IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    torch.testing.assert_close(normalized, torch.tensor(expected))


def test_transparent_images_lie_on_white_and_greyscale_becomes_rgb():
    clear = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    x, _ = get_preprocessing("imagenet").prepare(clear)
    assert torch.allclose(x, torch.ones(1))
    grey, _ = get_preprocessing("imagenet").prepare(np.full((256, 256), 0.5, np.float32))
    assert grey.shape == (3, 224, 224) and torch.allclose(grey, torch.full((1,), 128 / 255))


def test_resize_keeps_the_whole_image_in_the_channels_asked():
    x, framing = get_preprocessing({"name": "resize", "size": [8, 16], "channels": 1}).prepare(
        Image.new("RGB", (160, 80), (255, 255, 255)))
    assert x.shape == (1, 8, 16) and torch.allclose(x, torch.ones(1))
    assert framing.source == (0.0, 0.0, 160.0, 80.0) and framing.field == (0, 0, 16, 8)


def test_mnist_digit_from_the_registry_is_the_mnist_framing():
    drawing = np.zeros((200, 200), np.uint8)
    drawing[40:160, 90:110] = 255
    x, framing = get_preprocessing("mnist_digit").prepare(drawing)
    expected, expected_framing = frame_drawing(drawing)
    assert torch.equal(x[0], expected) and framing == expected_framing


def test_imagenet_takes_a_strip_too_long_to_resize_whole():
    """A 16.7M x 1 picture would resize to 4 billion pixels before the crop: only the crop is resampled."""
    strip = np.zeros((1, 4096 * 4096, 3), np.uint8)
    strip[0, 4096 * 2048 - 5:4096 * 2048 + 5] = (200, 30, 30)  # red around the centre, which the crop keeps
    x, framing = get_preprocessing("imagenet").prepare(Image.fromarray(strip))
    assert x.shape == (3, 224, 224)
    torch.testing.assert_close(x, torch.tensor([200, 30, 30]).div(255).view(3, 1, 1).expand(3, 224, 224))
    width = 4096 * 4096
    assert framing.source[0] == pytest.approx(width / 2 - 0.4375, abs=1e-3) and framing.source[2] < width
