"""Each plotting helper draws the values it was given: figures are rendered with Agg and their pixels read back at
places worked out from the data (a CAM cell, a bar, a feature-map cell, a filter weight, a confusion cell)."""

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from torch import nn

from convscope import plot, render
from convscope.data.mnist import Sample
from convscope.errors import InputError, ModelError
from convscope.inspect import Inspection, Inspector
from convscope.metrics import metrics_from_logits
from convscope.models import load_model, wrap

from test_inspector import tiny_cam_net

JET_TOP, VIRIDIS_LOW, VIRIDIS_TOP = render.JET[-1], render.VIRIDIS[0], render.VIRIDIS[-1]
BLUE_NEGATIVE, WHITE_ZERO, RED_POSITIVE = render.DIVERGING[0], render.DIVERGING[3], render.DIVERGING[-1]


def made(probabilities, cam=None, names=("a", "b", "c"), input_=None) -> Inspection:
    """An inspection with chosen values, as Inspector makes them."""
    probabilities = torch.tensor(probabilities)
    x = torch.zeros(1, 4, 4) if input_ is None else input_
    return Inspection(probabilities=probabilities, logits=probabilities.log(), predicted=int(probabilities.argmax()),
                      target=int(probabilities.argmax()), activations={}, cam=cam, cam_raw=None, cam_layer="conv",
                      cam_method="gradcam", cam_blank=None, saliency=None, input=x, class_names=tuple(names))


def pixels(fig) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(int)


def colour_at(fig, image: np.ndarray, ax, x: float, y: float) -> tuple[int, ...]:
    """The rendered colour at data coordinates (x, y) of ``ax``."""
    px, py = ax.transData.transform((x, y))
    return tuple(image[int(round(image.shape[0] - py)), int(round(px))])


def close(colour, expected, tolerance: int = 3) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=True))


def test_cam_overlay_draws_the_map_over_the_input_in_its_colours():
    cam = torch.zeros(4, 4)
    cam[0, 0], cam[3, 3] = 1.0, 0.0
    ins = made([0.7, 0.2, 0.1], cam=cam)
    fig = plot.cam_overlay(ins)
    image, ax = pixels(fig), fig.axes[0]
    # Over a black input, half the CAM's colour: the strongest cell is half of jet's top, an empty cell half its foot.
    assert close(colour_at(fig, image, ax, 0, 0), [round(c / 2) for c in JET_TOP])
    assert close(colour_at(fig, image, ax, 3, 3), [round(c / 2) for c in render.JET[0]])
    assert ax.get_title() == "gradcam at conv for a"
    assert fig.axes[1].get_ylabel() == "share of the map's maximum"  # the colour bar
    assert np.array_equal(np.asarray(plot.cam_image(ins, scale=1)), render.cam_image(ins.input, cam))


def test_probabilities_draws_one_bar_per_class_as_long_as_its_probability():
    ins = made([0.7, 0.2, 0.1])
    fig = plot.probabilities(ins, k=3)
    image, ax = pixels(fig), fig.axes[0]
    # Bars from the top: a (0.7), b (0.2), c (0.1); y positions 2, 1, 0.
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "b", "a"]
    bar_blue = (0x3B, 0x6F, 0xB6)
    assert close(colour_at(fig, image, ax, 0.65, 2), bar_blue) and close(colour_at(fig, image, ax, 0.75, 2), (255,) * 3)
    assert close(colour_at(fig, image, ax, 0.15, 1), bar_blue) and close(colour_at(fig, image, ax, 0.25, 1), (255,) * 3)
    assert [t.get_text() for t in ax.texts] == ["10.0%", "20.0%", "70.0%"]


def test_feature_maps_puts_each_channel_on_its_own_scale_and_top_orders_by_mean():
    maps = torch.stack([torch.zeros(2, 2), torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.full((2, 2), 0.5)])
    fig = plot.feature_maps(maps, n=2, order="top")
    image = pixels(fig)
    first, second = fig.axes[:2]
    assert first.get_title() == "1: 0..3" and second.get_title() == "2: 0.5..0.5"
    assert close(colour_at(fig, image, first, 0, 0), VIRIDIS_LOW)
    assert close(colour_at(fig, image, first, 1, 1), VIRIDIS_TOP)
    with pytest.raises(InputError, match="order is 'index' or 'top'"):
        plot.feature_maps(maps, order="loudest")


def test_feature_maps_of_an_inspection_default_to_its_cam_layer_and_name_the_captured_ones():
    inspector = tiny_cam_net(conv_bias=0.0, head_weight=1.0)
    ins = inspector.inspect_prepared(torch.arange(16.0).reshape(1, 4, 4) / 15)
    fig = plot.feature_maps(ins)
    assert fig.axes[0].get_title() == "0: 0..1" and fig.get_suptitle() == "relu: 1 channel"
    with pytest.raises(ModelError, match=r"layer 'nope' was not captured in this inspection; captured: conv, relu"):
        plot.feature_maps(ins, "nope")


def test_filters_shows_the_sign_and_size_of_every_weight():
    conv = nn.Conv2d(1, 2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[2.0, -2.0], [0.0, 1.0]]], [[[0.0, 0.0], [0.0, 0.0]]]]))
    model = wrap(nn.Sequential(conv, nn.Flatten(), nn.Linear(18, 2)), ["a", "b"],
                 {"name": "resize", "size": 4, "channels": 1})
    fig = plot.filters(model)
    image, ax = pixels(fig), fig.axes[0]
    factor = 30 // 2  # render.filters_grid enlarges 2x2 kernels to 30 px tiles
    centre = factor / 2

    def cell(row, column):
        return colour_at(fig, image, ax, column * factor + centre - 0.5, row * factor + centre - 0.5)

    assert close(cell(0, 0), RED_POSITIVE) and close(cell(0, 1), BLUE_NEGATIVE) and close(cell(1, 0), WHITE_ZERO)
    assert ax.get_title() == "0: 2 filters, 1 input channels, 2x2"
    assert fig.axes[1].get_ylim() == (-2.0, 2.0)  # the colour bar in weight units
    with pytest.raises(ModelError, match="2 is not a conv layer; conv layers: 0"):
        plot.filters(model, "2")


def test_history_plots_every_epoch_of_training_and_validation():
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.8, "train_accuracy": 0.5, "val_accuracy": 0.6},
               {"epoch": 2, "train_loss": 0.4, "val_loss": 0.5, "train_accuracy": 0.9, "val_accuracy": None}]
    fig = plot.history(history)
    loss, accuracy = fig.axes
    assert loss.lines[0].get_xydata().tolist() == [[1, 1.0], [2, 0.4]]
    assert loss.lines[1].get_xydata().tolist() == [[1, 0.8], [2, 0.5]]
    assert accuracy.lines[1].get_xydata().tolist() == [[1, 0.6]]  # a missing value is left out, not drawn as 0
    image = pixels(fig)
    line_colour = tuple(int(c * 255) for c in __import__("matplotlib").colors.to_rgb(loss.lines[0].get_color()))
    assert close(colour_at(fig, image, loss, 1.5, 0.7), line_colour, tolerance=40)
    with pytest.raises(InputError, match="no finished epoch"):
        plot.history([])


def test_confusion_matrix_colours_each_cell_by_its_share_of_the_true_class():
    logits = torch.tensor([[5.0, 0], [5, 0], [5, 0], [0, 5], [0, 5]])
    metrics = metrics_from_logits(logits, torch.tensor([0, 0, 1, 1, 1]))  # class 1: 1 of 3 called 0
    fig = plot.confusion_matrix(metrics, class_names=["cat", "dog"])
    image, ax = pixels(fig), fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["2", "0", "1", "2"]
    assert close(colour_at(fig, image, ax, 0.3, 0.3), VIRIDIS_TOP)  # cat row: all right (share 1)
    assert close(colour_at(fig, image, ax, 1.3, 0.3), VIRIDIS_LOW)  # share 0
    share = render.colorize(np.array(2 / 3), render.VIRIDIS)
    assert close(colour_at(fig, image, ax, 1.3, 1.3), share, tolerance=4)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]


def test_compare_and_show_pick_the_figure_for_what_they_are_given():
    a, b = made([0.7, 0.2, 0.1], cam=torch.rand(4, 4)), made([0.1, 0.1, 0.8], cam=torch.rand(4, 4))
    fig = plot.compare({"net1": a, "net2": b})
    assert [ax.get_title() for ax in fig.axes[:2]] == ["net1: a (70.0%)", "net2: c (80.0%)"]
    assert plot.show({"net1": a, "net2": b}).axes[0].get_title() == "net1: a (70.0%)"
    assert plot.show(a).get_suptitle() == "predicted a (70.0%)"
    assert plot.show(Sample(torch.zeros(28, 28, dtype=torch.uint8), 3, 5, "test")).axes[0].get_title() == \
        "label 3 (test #5)"
    assert plot.show(torch.rand(2, 3, 3)).axes[0].get_title().startswith("0: ")
    assert plot.show(load_model("mnist_cnn")).axes[0].get_title().startswith("conv1: 32 filters")
    with pytest.raises(InputError, match="show\\(\\) does not know how to draw a str"):
        plot.show("a picture")


def test_pixel_helpers_give_the_pictures_the_cli_saves():
    checkpoint = load_model("mnist_cnn")
    ins = Inspector(checkpoint.adapter).inspect(torch.rand(28, 28) * 0.3)
    assert plot.input_image(ins).size == (280, 280)
    assert np.array_equal(np.asarray(plot.feature_map_image(ins, "conv1")),
                          render.feature_map_grid(ins.activations["conv1"]))
    assert plot.filter_image(checkpoint).size == render.filters_grid(torch.zeros(32, 1, 3, 3)).shape[1::-1]


def test_filters_of_a_wide_one_by_one_conv_are_cut_to_a_readable_grid():
    conv = nn.Conv2d(1152, 192, 1)
    model = wrap(nn.Sequential(nn.Conv2d(3, 1152, 1), nn.ReLU(), conv, nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                 [str(i) for i in range(192)], {"name": "resize", "size": 4, "channels": 3})
    fig = plot.filters(model, "2", n=64)
    assert fig.axes[0].get_title() == "2: 64 filters, the first 64 of 1152 input channels, 1x1"
    assert plot.filter_image(model, "2").size[0] < 4000


def test_feature_maps_without_a_layer_to_default_to_say_which_there_are():
    ins = tiny_cam_net(conv_bias=0.0, head_weight=1.0).inspect_prepared(torch.rand(1, 4, 4), method="saliency")
    with pytest.raises(ModelError, match="give a layer: .* captured layers with feature maps: conv, relu"):
        plot.feature_maps(ins)


def test_history_puts_a_partial_last_epoch_where_it_ended():
    history = [{"epoch": 1, "epochs": 1.0, "train_loss": 1.0}, {"epoch": 2, "epochs": 1.5, "train_loss": 0.5}]
    assert plot.history(history).axes[0].lines[0].get_xydata().tolist() == [[1.0, 1.0], [1.5, 0.5]]
