"""Every form a notebook user hands Inspector.inspect gives the same answer as the canonical one (the preprocessed
tensor), and each common mistake gets a message that says what to do."""

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.errors import InputError, ModelError
from convscope.inspect import InputWarning, Inspector
from convscope.models import load_model

from test_inspector import tiny_cam_net


@pytest.fixture(scope="module")
def cnn():
    return Inspector(load_model("mnist_cnn").adapter)


def drawing() -> Image.Image:
    """A dark "1" on white paper, as a user photographs or draws it: 56 x 56 pixels."""
    picture = np.full((56, 56), 255, np.uint8)
    picture[8:48, 26:31] = 0
    return Image.fromarray(picture)


def canonical(inspector: Inspector, picture: Image.Image):
    x, _ = inspector.model.preprocessing.prepare(picture)
    return x, inspector.inspect_prepared(x)


def same(a, b, form: str = "") -> None:
    torch.testing.assert_close(a.probabilities, b.probabilities, msg=f"{form}: other probabilities")
    torch.testing.assert_close(a.cam, b.cam, msg=f"{form}: another CAM")
    assert a.predicted == b.predicted


def test_every_form_of_a_picture_gives_the_canonical_answer(cnn, tmp_path):
    picture = drawing()
    x, expected = canonical(cnn, picture)
    path = tmp_path / "one.png"
    picture.save(path)
    grey = np.array(picture)
    forms = {
        "path": path, "str": str(path), "bytes": path.read_bytes(), "PIL": picture,
        "PIL RGB": picture.convert("RGB"),
        "HW uint8": grey, "HWC uint8": np.repeat(grey[..., None], 3, axis=2),
        "HW float": grey / 255.0, "CHW tensor": torch.from_numpy(grey)[None].repeat(3, 1, 1),
        "model input CHW": x, "model input HW": x[0], "model input NCHW": x[None],
        "model input uint8": (x * 255).round().to(torch.uint8), "model input numpy": x.numpy(),
    }
    for name, form in forms.items():
        result = cnn.inspect(form)
        if name == "model input uint8":  # rounded to 8 bits: the same answer, not the same digits
            assert result.predicted == expected.predicted
            continue
        same(result, expected, name)


def test_a_batch_gives_one_inspection_per_image(cnn):
    picture = drawing()
    x, expected = canonical(cnn, picture)
    for batch in (x[None].repeat(3, 1, 1, 1), x.repeat(3, 1, 1), [picture, x, np.asarray(picture)]):
        results = cnn.inspect(batch)
        assert isinstance(results, list) and len(results) == 3
        for result in results:
            same(result, expected)


def test_a_target_can_be_named(cnn):
    by_name = cnn.inspect(drawing(), target="7")
    assert by_name.target == 7 and by_name.class_name(7) == "7"
    with pytest.raises(InputError, match="no class is called 'seven'; classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"):
        cnn.inspect(drawing(), target="seven")


def test_saliency_is_a_method_like_the_cams(cnn):
    result = cnn.inspect(drawing(), method="saliency")
    assert result.cam_method == "saliency" and result.cam_layer is None
    torch.testing.assert_close(result.cam, result.saliency)
    torch.testing.assert_close(result.saliency, cnn.inspect(drawing()).saliency)


@pytest.mark.parametrize("image, message", [
    (torch.rand(28, 28) * 255, "values go up to 2.*, where model input runs from 0 to 1: if it is in 0-255, divide "
                               "it by 255 or pass it as uint8"),
    ((torch.rand(28, 28) - 0.1307) / 0.3081, "values go down to -0.4.*it looks normalised"),
    (torch.zeros(28, 28), r"the image is blank \(every value is 0\)"),
    (torch.full((28, 28), 0.3) + torch.rand(28, 28) * 0.01, "almost no contrast"),
    (1 - torch.zeros(28, 28).index_fill_(1, torch.arange(12, 16), 1.0), "this looks inverted: MNIST digits are "
                                                                          "light on a dark background"),
])
def test_likely_mistakes_are_warned_about_with_what_to_do(cnn, image, message):
    with pytest.warns(InputWarning, match=message):
        cnn.inspect(image)


def test_a_good_input_gets_no_warning(cnn):
    x, _ = canonical(cnn, drawing())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cnn.inspect(x)


@pytest.mark.parametrize("image, error, message", [
    (torch.full((28, 28), float("nan")), InputError, "NaN"),
    (np.full((40, 40), 300.0), InputError, "values go up to 300, where a float picture runs from 0 to 1"),
    (torch.rand(2, 2, 5, 7, 9), InputError, r"cannot read an array of shape \(2, 2, 5, 7, 9\) as an image; give a "
                                            r"path, bytes or a PIL image .* the model input itself \(1, 28, 28\)"),
    ({"pixels": 1}, InputError, "cannot inspect a dict; give a path"),
    ([], InputError, "an empty batch"),
    (b"not an image", InputError, "not an image in a format this reads"),
])
def test_what_cannot_be_an_image_is_a_clear_error(cnn, image, error, message):
    with pytest.raises(error, match=message):
        cnn.inspect(image)


def test_a_wrong_layer_lists_the_valid_ones(cnn):
    with pytest.raises(ModelError, match="unknown layer 'conv3'; layers: conv1, relu1, pool1, conv2"):
        cnn.inspect(drawing(), layers=["conv3"])
    with pytest.raises(ModelError, match="layers a CAM can use: conv1, relu1, pool1, conv2, relu2, pool2"):
        cnn.inspect(drawing(), cam_layer="fc1")


def test_prepared_input_is_taken_as_it_is_and_its_shape_is_named_plainly():
    inspector = tiny_cam_net(conv_bias=0.0, head_weight=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inspector.inspect_prepared(torch.full((1, 4, 4), 3.0)).predicted == 0
    with pytest.raises(InputError, match=r"expected one model input of shape \(1, 4, 4\), got \(4, 5\)"):
        inspector.inspect_prepared(torch.rand(4, 5))


def test_an_rgb_model_takes_a_grey_picture_and_an_rgba_one(tmp_path):
    model = load_model("efficientnet_lite0").adapter
    inspector = Inspector(model)
    rgb = Image.new("RGB", (300, 260), (200, 30, 30))
    expected = inspector.inspect_prepared(model.preprocessing.prepare(rgb)[0])
    buffer = io.BytesIO()
    rgb.convert("RGBA").save(buffer, format="PNG")
    for form in (rgb, np.asarray(rgb), buffer.getvalue()):
        same(inspector.inspect(form), expected)


def test_whole_numbers_are_pixels_whatever_their_type(cnn):
    """int64 arrays, lists of ints and 16-bit images are pixel values like uint8 ones, not floats in 0-255."""
    picture = np.array(drawing())
    expected = cnn.inspect(picture)
    for form in (picture.astype(np.int64), picture.tolist(), picture.astype(np.uint16) * 257,
                 Image.fromarray(picture.astype(np.uint16) * 257)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            same(cnn.inspect(form), expected, type(form).__name__)
    with pytest.raises(InputError, match="whole-number pixels run from 0 to 255 .* these go from -1 to 254"):
        cnn.inspect(picture.astype(np.int64) - 1)


def test_a_batch_of_pictures_in_any_layout_and_an_empty_batch(cnn):
    picture = np.array(drawing().convert("RGB"))  # (56, 56, 3): not the model's shape, so pictures
    expected = cnn.inspect(picture)
    for batch in (np.stack([picture, picture]), torch.from_numpy(np.stack([picture, picture])).permute(0, 3, 1, 2)):
        results = cnn.inspect(batch)
        assert len(results) == 2 and all(r.predicted == expected.predicted for r in results)
    with pytest.raises(InputError, match="an empty batch"):
        cnn.inspect(torch.zeros(0, 1, 28, 28))


def test_a_warning_points_at_the_line_that_called(cnn):
    inverted = 255 - (np.array(drawing().resize((28, 28))) < 128).astype(np.uint8) * 255
    for _ in range(2):  # shown each time: Python shows a warning once per line, and this line is the user's
        with pytest.warns(InputWarning, match="this looks inverted") as caught:
            cnn.inspect(inverted)
        assert caught[0].filename == __file__


def test_saliency_still_checks_a_layer_it_is_given(cnn):
    with pytest.raises(ModelError, match="unknown layer 'conv9'"):
        cnn.inspect(drawing(), method="saliency", cam_layer="conv9")
    with pytest.raises(ModelError, match="a CAM needs a layer with a spatial"):
        cnn.inspect(drawing(), method="saliency", cam_layer="fc1")
