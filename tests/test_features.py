"""What each channel looks for (convscope.inspect.features): top-activating examples, receptive fields, feature
visualization and their cache, on tiny hand-built models whose answers are known in advance."""

from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

from convscope.inspect.attribution import Cancelled
from convscope.inspect.features import (
    FeatureCache, ImageFiles, Target, VisualizationSettings, cached_top_activating, cached_visualize, gram_similarity,
    model_key, receptive_field, top_activating, visualize,
)
from convscope.inspect.features.receptive_field import from_gradient, from_graph
from convscope.models import load_model, wrap
from convscope.preprocessing import Resize


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: a second thread only adds waiting, and when another process busies a core two
    threads' hand-offs made this file 20 times slower (47 s against 2)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# A "plus" sign: what channel 0 of PatternNet detects. Its weights are the pattern minus its mean, so a flat
# region of any brightness gives 0 and only the plus shape gives a strong response (5 - 25/9 = 2.22 at contrast 1).
PLUS = torch.tensor([[0., 1., 0.], [1., 1., 1.], [0., 1., 0.]])
# Channel 1 detects a diagonal line, its weights also zero-sum; centred on each other, each pattern drives the
# other's detector below 0.
DIAGONAL = torch.eye(3)
SIDE = 12  # PatternNet's input is 1x12x12


class PatternNet(nn.Module):
    """conv (2 fixed 3x3 detectors, no padding) -> relu -> 2x2 max-pool -> dense -> 2 scores."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, bias=False)
        with torch.no_grad():
            self.conv.weight[0, 0] = PLUS - PLUS.mean()
            self.conv.weight[1, 0] = DIAGONAL - DIAGONAL.mean()
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(2 * 5 * 5, 2)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def pattern_model():
    return wrap(PatternNet(), ["a", "b"], Resize((SIDE, SIDE), channels=1), input_shape=(1, SIDE, SIDE))


# Where the test images hold a plus: image index -> (contrast, centre row, centre col). The conv has no padding,
# so a plus centred at (r, c) peaks at conv position (r - 1, c - 1), whose 3x3 field is rows r-1..r+1.
PLANTED = {4: (1.0, 3, 7), 11: (0.8, 7, 3), 23: (0.6, 8, 8)}
DIAGONAL_IMAGE, DIAGONAL_AT = 17, (5, 9)  # a diagonal line of contrast 1, centred here


def pattern_images() -> torch.Tensor:
    """(30, 1, 12, 12): dim noise in [0, 0.1] (its strongest plus response is under 0.23), the planted pluses
    (at least 2.0, 1.78 and 1.33 with the noise on their corners: strictly ordered) and one diagonal line."""
    images = torch.rand(30, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(0)) * 0.1
    for index, (contrast, row, col) in PLANTED.items():
        region = images[index, 0, row - 1:row + 2, col - 1:col + 2]
        region[PLUS.bool()] = contrast
    row, col = DIAGONAL_AT
    images[DIAGONAL_IMAGE, 0, row - 1:row + 2, col - 1:col + 2] += DIAGONAL
    return images


def test_top_activating_finds_the_planted_patterns_their_positions_and_patches():
    model, images = pattern_model(), pattern_images()
    result = top_activating(model, images, ["conv", "pool", "fc"], k=4)
    conv = result["conv"].examples(0)
    assert [e.index for e in conv[:3]] == [4, 11, 23]
    assert [e.position for e in conv[:3]] == [(2, 6), (6, 2), (7, 7)]
    assert [e.box for e in conv[:3]] == [(2, 6, 5, 9), (6, 2, 9, 5), (7, 7, 10, 10)]  # the plus's own 3x3
    assert conv[0].value == pytest.approx(2.22, abs=0.25)
    # The next best is no plus: the diagonal line lays two cells on a plus's arms somewhere (2 x 4/9 = 0.89).
    assert conv[3].index not in PLANTED and conv[3].value < 1.0
    assert torch.equal(result["conv"].patches(0, images)[0][0] >= 0.5, PLUS.bool())  # the crop is the plus
    line = result["conv"].examples(1)[0]
    assert (line.index, line.position) == (DIAGONAL_IMAGE, (DIAGONAL_AT[0] - 1, DIAGONAL_AT[1] - 1))
    # After the 2x2 pool: positions halve, and each sees a 4x4 field moving 2 pixels at a time.
    pool = result["pool"].examples(0)
    assert [(e.index, e.position, e.box) for e in pool[:3]] == [
        (4, (1, 3), (2, 6, 6, 10)), (11, (3, 1), (6, 2, 10, 6)), (23, (3, 3), (6, 6, 10, 10))]
    fc = result["fc"]  # a (C,) layer: values only, sorted, no positions
    assert fc.positions is None and fc.examples(0)[0].box is None
    assert torch.all(fc.values[:, :-1] >= fc.values[:, 1:])


def test_top_activating_is_the_same_for_any_batching_and_source():
    model, images = pattern_model(), pattern_images()
    whole = top_activating(model, images, "conv", k=5, batch_size=64)["conv"]
    for other in (top_activating(model, images, "conv", k=5, batch_size=7)["conv"],
                  top_activating(model, iter(images.split(4)), "conv", k=5, batch_size=1)["conv"]):
        for name, array in whole.as_arrays().items():
            assert torch.equal(array, other.as_arrays()[name]), name


def test_top_activating_on_fewer_images_than_k_pads_with_minus_one():
    result = top_activating(pattern_model(), pattern_images()[:3], "conv", k=5)["conv"]
    assert result.indices[0, 3:].tolist() == [-1, -1] and len(result.examples(0)) == 3


def test_top_activating_on_a_folder_of_images(tmp_path):
    from PIL import Image
    images = pattern_images()[:6]
    for i, image in enumerate(images):
        Image.fromarray((image[0] * 255).round().byte().numpy()).save(tmp_path / f"{i:02d}.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    files = ImageFiles.from_folder(tmp_path, Resize((SIDE, SIDE), channels=1))
    seen = []
    result = top_activating(pattern_model(), files, "conv", k=2, batch_size=4,
                            progress=lambda done, total: seen.append((done, total)))["conv"]
    assert result.examples(0)[0].index == 4 and result.images == 6
    assert list(files.skipped) == [6] and seen == [(4, 7), (6, 7), (7, 7)]  # broken.png (the 7th) listed, skipped


def test_top_activating_reports_progress_and_stops_promptly_when_cancelled():
    model, images = pattern_model(), pattern_images()
    seen = []
    top_activating(model, images, "conv", batch_size=8, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(8, 30), (16, 30), (24, 30), (30, 30)]
    seen.clear()
    with pytest.raises(Cancelled):
        top_activating(model, images, "conv", batch_size=8, progress=lambda done, total: seen.append(done),
                       cancelled=lambda: len(seen) >= 2)
    assert seen == [8, 16]  # the third batch never ran


class TwoConvNet(nn.Module):
    """conv 3x3 (stride 1, padding 1) -> relu -> conv 3x3 (stride 2, no padding) -> relu -> dense, on 1x16x16."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 2, 3, stride=2)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(2 * 7 * 7, 2)

    def forward(self, x):
        return self.fc(self.relu2(self.conv2(self.relu1(self.conv1(x)))).flatten(1))


def test_receptive_field_of_two_convs_is_the_hand_computed_box():
    # conv2's (r, c) reads conv1 rows 2r..2r+2; conv1's row i reads input rows i-1..i+1: input rows 2r-1..2r+3.
    model = wrap(TwoConvNet(), ["a", "b"], Resize((16, 16), channels=1), input_shape=(1, 16, 16))
    for field in (from_graph(model, "relu2"), from_gradient(model, "relu2")):
        assert (field.size, field.stride, field.offset) == ((5, 5), (2, 2), (-1, -1)), field.method
        assert field.box(0, 0) == (0, 0, 4, 4)  # clipped at the top-left edge
        assert field.box(3, 5) == (5, 9, 10, 14)
        assert field.box(6, 6) == (11, 11, 16, 16)  # conv2 is 7x7: its last position ends at the edge
    assert receptive_field(model, "conv1").box(0, 0) == (0, 0, 2, 2)  # padding 1: one pixel of it is outside
    assert receptive_field(model, "relu2") is receptive_field(model, "relu2")  # cached per layer


def test_receptive_fields_from_the_graph_and_the_gradient_agree_on_mnist_cnn():
    model = load_model("mnist_cnn").adapter
    for layer, expected in {"conv1": (3, 1), "pool1": (4, 2), "conv2": (8, 2), "pool2": (10, 4)}.items():
        graph, gradient = from_graph(model, layer), from_gradient(model, layer)
        assert (graph.size[0], graph.stride[0]) == expected
        assert (gradient.size, gradient.stride, gradient.offset) == (graph.size, graph.stride, graph.offset)


# The fixed filter of FilterNet: a diagonal stripe of +1 on -1. The neuron at the map's centre is the dot product
# of this filter with the 5x5 patch under it, so with pixels in [0, 1] its best input is the filter's own sign
# pattern: +1 cells white, -1 cells black, the filter itself up to a linear map (correlation 1).
FILTER = torch.tensor([[1., 1., -1., -1., -1.], [1., 1., 1., -1., -1.], [-1., 1., 1., 1., -1.],
                       [-1., -1., 1., 1., 1.], [-1., -1., -1., 1., 1.]])


class FilterNet(nn.Module):
    """conv with FILTER on every input channel (1 output channel, no padding) -> relu -> global mean -> dense."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 5, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(FILTER.expand(1, channels, 5, 5) / channels)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1, 2)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def filter_model(channels: int, side: int):
    return wrap(FilterNet(channels), ["a", "b"], Resize((side, side), channels=channels),
                input_shape=(channels, side, side))


def centre_correlation(image: torch.Tensor, pattern: torch.Tensor) -> float:
    """Pearson correlation of ``pattern`` with the 5x5 patch of ``image`` (C, H, W) (channels averaged) that the
    centre neuron of FilterNet's conv sees."""
    grey = image.mean(dim=0)
    top = (grey.shape[0] - 4) // 2  # the conv map is (H - 4) wide; its centre position (H - 4) // 2 starts there
    patch = grey[top:top + 5, top:top + 5]
    return float(torch.corrcoef(torch.stack([patch.flatten(), pattern.flatten()]))[0, 1])


def test_visualizing_a_fixed_filter_neuron_reproduces_the_filter():
    # Pixels, no transformations: every +1 pixel gets the same push up and every -1 pixel the same push down, so
    # the patch becomes a two-level copy of the filter; anything under 0.99 means the gradient did not reach the
    # pixels as it should. The mirrored filter shares only the centre diagonal with it: about 0.04.
    model = filter_model(1, 28)
    settings = VisualizationSettings(steps=64, parameterisation="pixels", jitter=0, scale=0, degrees=0)
    image = visualize(model, Target.neuron("conv", 0), settings).images[0]
    assert centre_correlation(image, FILTER) > 0.99
    assert abs(centre_correlation(image, FILTER.flip(1))) < 0.3


@pytest.mark.parametrize("channels, side", [(1, 28), (3, 32)])
def test_default_visualization_correlates_with_the_filter_on_grey_and_colour_inputs(channels, side):
    # The defaults (Fourier basis, colour decorrelation, jitter, scale and rotation) blur the copy a little:
    # measured 0.90 (1x28) and 0.95 (3x32). Above 0.8 is a clear copy: a random 5x5 image correlates with the
    # filter by about +-0.2 (one standard deviation, 1/sqrt(24)), the untrained start by less.
    model = filter_model(channels, side)
    result = visualize(model, Target.neuron("conv", 0), VisualizationSettings(steps=64))
    assert result.images.shape == (1, channels, side, side)
    assert 0 <= result.images.min() and result.images.max() <= 1
    assert centre_correlation(result.images[0], FILTER) > 0.8
    assert result.history[-1] > result.history[0] and result.values[0] > 5  # 12.5: a perfect copy


def test_visualization_of_a_shut_relu_channel_still_climbs():
    # The ReLU's channel is 0 everywhere on the near-grey start (the conv's bias is -4): no gradient reaches the
    # image through it, and the plain objective would stay exactly 0 for ever. Its input at the strongest position
    # is raised instead until it opens; then the channel's mean climbs (0.03 after 48 steps, 0.04 after 128).
    model = filter_model(1, 28)
    model.module.conv.bias = nn.Parameter(torch.tensor([-4.0]))
    result = visualize(model, Target.channel("relu", 0), VisualizationSettings(steps=48))
    assert result.history[0] == 0 and result.values[0] > 0.01 and result.history[-1] > result.history[8]


def test_visualization_is_deterministic_and_reports_progress_and_images():
    model = filter_model(3, 32)
    steps, images, settings = [], [], VisualizationSettings(steps=10, seed=3)
    first = visualize(model, Target.channel("relu", 0), settings, image_every=4,
                      progress=lambda step, total: steps.append((step, total)),
                      on_image=lambda step, image: images.append((step, image)))
    assert steps == [(step, 10) for step in range(1, 11)]
    assert [step for step, _ in images] == [4, 8, 10] and torch.equal(images[-1][1], first.images)
    again = visualize(model, Target.channel("relu", 0), settings)
    other = visualize(model, Target.channel("relu", 0), VisualizationSettings(steps=10, seed=4))
    assert torch.equal(first.images, again.images) and not torch.allclose(first.images, other.images)
    assert all(p.grad is None for p in model.module.parameters())  # the model was only read


def test_visualization_of_a_logit_at_another_input_size():
    model = filter_model(3, 32)
    result = visualize(model, Target.logit(1), VisualizationSettings(steps=8, size=(40, 48)))
    assert result.images.shape == (1, 3, 40, 48) and result.settings.size == (40, 48)


def test_visualization_stops_promptly_when_cancelled():
    steps = []
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        visualize(filter_model(1, 28), Target.neuron("conv", 0), VisualizationSettings(steps=2000),  # 2 s in all
                  progress=lambda step, total: steps.append(step), cancelled=lambda: len(steps) >= 3)
    assert steps == [1, 2, 3] and time.perf_counter() - started < 1


class EightChannels(nn.Module):
    """conv (8 random 3x3 channels) -> relu -> global mean -> dense: enough channels for Gram matrices."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 8, 3)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def test_diversity_makes_the_images_of_a_batch_less_alike():
    model = wrap(EightChannels(), ["a", "b"], Resize((24, 24), channels=3), input_shape=(3, 24, 24))

    def similarity(diversity: float) -> float:
        settings = VisualizationSettings(steps=48, batch=3, diversity=diversity)
        images = visualize(model, Target.channel("relu", 2), settings).images
        return float(gram_similarity(model.activations(images, ["relu"])["relu"])) / 2  # mean of 2 pairs

    assert similarity(10.0) < similarity(0.0) - 0.05  # measured: 0.84 against 0.99996


def test_cached_visualization_is_reused_until_the_model_changes(tmp_path):
    cache, model = FeatureCache(tmp_path), filter_model(1, 28)
    target, settings = Target.neuron("conv", 0), VisualizationSettings(steps=6)
    first, cached = cached_visualize(cache, model, target, settings)
    assert not cached
    again, cached = cached_visualize(cache, model, target, settings)
    assert cached and torch.equal(again.images, first.images) and again.history == first.history
    record = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert record["settings"]["steps"] == 6 and record["settings"]["size"] == [28, 28]
    assert (next(tmp_path.rglob("*.json")).with_suffix(".png")).is_file()
    assert not cached_visualize(cache, model, target, VisualizationSettings(steps=7))[1]  # other settings
    with torch.no_grad():
        model.module.conv.weight.mul_(-1)  # a new version of the model: trained further, say
    changed, cached = cached_visualize(cache, model, target, settings)
    assert not cached and not torch.equal(changed.images, first.images)


def test_model_key_follows_the_weights_or_the_given_version():
    model = filter_model(1, 28)
    before = model_key(model)
    assert model_key(model) == before and model_key(model, version=3) == f"{model.name}@3"
    with torch.no_grad():
        model.module.fc.bias.add_(1)
    assert model_key(model) != before


def test_cached_top_activating_is_reused_per_version_and_can_be_invalidated(tmp_path):
    cache, model, images = FeatureCache(tmp_path), pattern_model(), pattern_images()
    calls = []

    def counted(done, total):
        calls.append(done)

    first = cached_top_activating(cache, model, images, ["conv", "pool"], k=3, version=1, progress=counted)
    again = cached_top_activating(cache, model, images, ["conv", "pool"], k=3, version=1, progress=counted)
    assert len(calls) == 1  # the second came from disk
    for layer in ("conv", "pool"):
        assert again[layer].examples(0) == first[layer].examples(0)
    cached_top_activating(cache, model, images, "conv", k=3, version=2, progress=counted)
    assert len(calls) == 2  # version 2 is computed afresh
    assert cache.invalidate(model_key(model, 1)) and not cache.invalidate(model_key(model, 1))
    cached_top_activating(cache, model, images, "conv", k=3, version=1, progress=counted)
    assert len(calls) == 3  # version 1's entries are gone


def test_a_cache_with_a_bound_keeps_the_newest_entries_of_a_model(tmp_path):
    cache, model = FeatureCache(tmp_path, keep=2), filter_model(1, 28)
    target = Target.neuron("conv", 0)
    for seed in range(3):  # three entries, written in this order
        cached_visualize(cache, model, target, VisualizationSettings(steps=2, seed=seed))
        time.sleep(0.01)  # distinct modification times
    key = model_key(model)
    kept = [cache.visualization(key, target, VisualizationSettings(steps=2, seed=seed).resolved(model))
            for seed in range(3)]
    assert [entry is not None for entry in kept] == [False, True, True]  # the oldest went, with all its files
    assert len(list(cache.folder(key).iterdir())) == 2 * 3  # .npz, .json and .png of each of the two
