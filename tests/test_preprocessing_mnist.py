import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from convscope.errors import InputError
from convscope.predict import predict_proba
from convscope.preprocessing.mnist_digit import BOX, ink_map, preprocess_drawing, stroke_width


def seven(size: int = 300, width: int = 6) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).line([(60, 50), (240, 50), (130, 260)], fill="black", width=width)
    return image


def centre_of_mass(x: torch.Tensor) -> tuple[float, float]:
    ys = torch.arange(x.shape[0], dtype=torch.float32)
    return float((x.sum(1) * ys).sum() / x.sum()), float((x.sum(0) * ys).sum() / x.sum())


def test_output_is_mnist_shaped_boxed_and_centred():
    digit = preprocess_drawing(seven())
    assert digit.shape == (28, 28) and digit.dtype == torch.float32
    assert 0 <= float(digit.min()) and float(digit.max()) <= 1
    rows = torch.nonzero((digit > 0.05).any(1)).flatten()
    cols = torch.nonzero((digit > 0.05).any(0)).flatten()
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) in (BOX, BOX + 1)  # anti-aliased edge may add one
    cy, cx = centre_of_mass(digit)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_polarity_and_transparency_do_not_matter():
    dark_on_light = seven()
    light_on_dark = Image.fromarray(255 - np.asarray(dark_on_light))
    ink = 255 - np.asarray(dark_on_light.convert("L"))
    transparent = np.zeros((300, 300, 4), np.uint8)
    transparent[..., 3] = ink  # black strokes on a transparent canvas: the ink is in alpha
    expected = preprocess_drawing(dark_on_light)
    for variant in (light_on_dark, Image.fromarray(transparent, "RGBA"), np.asarray(dark_on_light.convert("L"))):
        torch.testing.assert_close(preprocess_drawing(variant), expected, atol=1e-3, rtol=0)


def test_thin_strokes_are_thickened_to_mnist_width():
    thin = preprocess_drawing(seven(width=2))
    thick = preprocess_drawing(seven(width=30))
    for digit in (thin, thick):
        assert 1.5 <= stroke_width(digit > 0.5) <= 4.5


def test_empty_drawings_are_an_error():
    for empty in (Image.new("RGB", (200, 200), "white"), np.zeros((50, 50, 4), np.uint8), np.zeros((28, 28))):
        with pytest.raises(InputError, match="empty"):
            preprocess_drawing(empty)


def test_ink_map_rejects_odd_arrays():
    with pytest.raises(InputError, match="shape"):
        ink_map(np.zeros((4, 4, 5)))


# --- drawn MNIST: real test digits re-rendered the way a browser canvas would hold them ---

def canvas_rendering(digit: torch.Tensor, rng: np.random.Generator, canvas: int = 400) -> np.ndarray:
    """A uint8 (28, 28) MNIST digit -> an RGB canvas: dark thin strokes on white, scaled 5-11x, off-centre."""
    factor = rng.uniform(5, 11)
    size = int(28 * factor)
    big = F.interpolate(digit[None, None].float() / 255, size=(size, size), mode="bilinear", align_corners=False)
    strokes = (big[0, 0] > 0.75).float()  # the core of each stroke: thinner than MNIST's
    strokes = -F.max_pool2d(-strokes[None, None], 3, stride=1, padding=1)[0, 0]  # thinner still
    out = np.full((canvas, canvas), 255, np.uint8)
    top, left = rng.integers(0, canvas - size + 1, size=2)
    out[top:top + size, left:left + size] = (255 * (1 - strokes.numpy())).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=2)


def plain_resize(canvas: np.ndarray) -> torch.Tensor:
    """What a naive app does: shrink the whole canvas to 28x28 and invert it."""
    grey = torch.from_numpy(canvas[..., 0].astype(np.float32) / 255)
    small = F.interpolate(grey[None, None], size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return 1 - small[0, 0]


@pytest.mark.mnist
def test_drawn_digits_are_read_far_better_after_preprocessing(real_mnist, packaged_cnn, capsys):
    from convscope.data import load_mnist
    test = load_mnist("test", real_mnist)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(test), size=300, replace=False)
    canvases = [canvas_rendering(test.images[i], rng) for i in picks]
    labels = test.labels[picks]
    preprocessed = torch.stack([preprocess_drawing(c) for c in canvases])
    resized = torch.stack([plain_resize(c) for c in canvases])
    model = packaged_cnn.model
    accuracy_pre = float((predict_proba(model, preprocessed).argmax(1) == labels).float().mean())
    accuracy_plain = float((predict_proba(model, resized).argmax(1) == labels).float().mean())
    with capsys.disabled():
        print(f"\ncanvas-drawn MNIST (300 digits): {accuracy_pre:.1%} after preprocessing, "
              f"{accuracy_plain:.1%} after a plain resize")
    assert accuracy_pre >= 0.9
    assert accuracy_pre - accuracy_plain >= 0.4


def test_a_huge_canvas_with_a_hairline_stroke_is_still_read(packaged_cnn):
    image = Image.new("RGB", (2500, 2500), "white")
    ImageDraw.Draw(image).line([(1250, 300), (1250, 2200)], fill="black", width=3)
    digit = preprocess_drawing(image)
    assert 1.5 <= stroke_width(digit > 0.5) <= 4.5
    assert int(predict_proba(packaged_cnn.model, digit[None, None]).argmax()) == 1


def test_framing_maps_the_model_input_back_onto_the_drawing():
    from convscope.preprocessing.mnist_digit import frame_drawing

    canvas = np.full((200, 200), 255, np.uint8)
    canvas[60:140, 50:90] = 0  # a thick bar: 40 wide, 80 tall, no stroke thickening needed
    x, framing = frame_drawing(canvas)
    assert framing.source == (50.0, 60.0, 90.0, 140.0)
    left, top, width, height = framing.field
    assert (width, height) == (10, 20)  # the longer side scaled to 20
    inside = torch.zeros(28, 28, dtype=torch.bool)
    inside[top:top + height, left:left + width] = True
    assert float(x[~inside].abs().max()) == 0 and float(x[inside].min()) > 0.5

    thin = np.full((300, 300), 255, np.uint8)
    thin[40:260, 149:151] = 0  # a 2-pixel line: thickened, so the framed source grows around it
    _, framing = frame_drawing(thin)
    x0, y0, x1, y1 = framing.source
    assert x0 < 149 and x1 > 151 and y0 < 40 and y1 > 260
    assert abs((x0 + x1) / 2 - 150) <= 1.5  # to within one working pixel (3 input pixels here)
