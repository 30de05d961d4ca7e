"""Each attribution method against values worked out by hand on tiny models, in chunks of bounded size, with
progress and cancel."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convscope.errors import InputError, ModelError
from convscope.inspect import Inspector
from convscope.inspect.attribution import (ATTRIBUTIONS, Cancelled, attribute, cascading_randomisation,
                                           data_randomisation, deletion_insertion)
from convscope.inspect.attribution.faithfulness import blur
from convscope.inspect.attribution.sanity import PASS_BELOW, layers_with_weights, ranks, spearman, ssim
from convscope.inspect.attribution.gradients import CHUNK
from convscope.inspect.attribution.occlusion import window
from convscope.models import load_model, wrap

W = torch.tensor([[1.0, -2.0, 3.0, 0.5], [0.0, 1.0, 0.0, 1.0]])  # class 0's and class 1's weights over 4 pixels
X = torch.tensor([[[0.2, 0.4], [0.6, 0.8]]])  # one channel, 2x2


def linear_model(size: int = 2, weights: torch.Tensor = W) -> nn.Module:
    head = nn.Linear(size * size, 2)
    with torch.no_grad():
        head.weight.copy_(weights)
        head.bias.copy_(torch.tensor([0.3, -0.1]))
    return wrap(nn.Sequential(nn.Flatten(), head), ["a", "b"], {"name": "resize", "size": size, "channels": 1})


def relu_model(inplace: bool = False, rectifier: type = nn.ReLU):
    """x -> conv 1x1 (weight 1, no bias) -> ReLU -> flatten -> linear W: on a positive input the ReLU passes
    everything, so the plain gradient is W and Guided Backpropagation's is W with its negatives cut."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    head = nn.Linear(4, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        head.weight.copy_(W)
        head.bias.zero_()
    module = nn.Sequential()
    module.add_module("conv", conv)
    module.add_module("relu", rectifier(inplace=inplace))
    module.add_module("flatten", nn.Flatten())
    module.add_module("fc", head)
    return wrap(module, ["a", "b"], {"name": "resize", "size": 2, "channels": 1})


def test_saliency_and_smoothgrad_of_a_linear_model_are_its_weights_magnitudes():
    model = linear_model()
    for target in (0, 1):
        expected = W[target].abs().reshape(2, 2)
        assert torch.allclose(attribute(model, X, "saliency", target).values, expected)
        # the gradient of a linear model is the same under any noise: SmoothGrad's mean is the gradient
        smooth = attribute(model, X, "smoothgrad", target)
        assert torch.allclose(smooth.values, expected, atol=1e-6) and smooth.forward_passes == 25


def test_integrated_gradients_of_a_linear_model_are_input_times_weight_and_add_up_to_the_logit_change():
    model = linear_model()
    result = attribute(model, X, "integrated_gradients", 0)
    assert result.signed and torch.allclose(result.values, X[0] * W[0].reshape(2, 2), atol=1e-5)
    with torch.no_grad():  # completeness
        change = model.logits(X[None])[0, 0] - model.logits(torch.zeros(1, 1, 2, 2))[0, 0]
    assert float(result.values.sum()) == pytest.approx(float(change), abs=1e-5)
    assert result.forward_passes == 50


def test_occlusion_is_the_mean_drop_over_the_patches_covering_each_pixel():
    size = 14  # patches of 2, stride 1: 13 x 13 positions
    torch.manual_seed(0)
    weights = torch.randn(2, size * size)
    image = torch.rand(1, size, size)
    model = linear_model(size, weights)
    patch, stride = window(size)
    assert (patch, stride) == (2, 1)
    contribution = (image[0] * weights[1].reshape(size, size))  # a linear model's drop is the patch's sum of w*x
    drops, covers = torch.zeros(size, size), torch.zeros(size, size)
    for top in range(0, size - patch + 1, stride):
        for left in range(0, size - patch + 1, stride):
            drops[top:top + patch, left:left + patch] += contribution[top:top + patch, left:left + patch].sum()
            covers[top:top + patch, left:left + patch] += 1
    result = attribute(model, image, "occlusion", 1)
    assert torch.allclose(result.values, drops / covers, atol=1e-5)
    assert result.forward_passes == 13 * 13 + 1
    # three channels: the patch covers them all, and each pixel gets that one drop (not one per channel, summed)
    head = nn.Linear(3 * size * size, 2)
    with torch.no_grad():
        head.weight.copy_(weights.repeat(1, 3) / 3)
        head.bias.zero_()
    rgb = wrap(nn.Sequential(nn.Flatten(), head), ["a", "b"], {"name": "resize", "size": size, "channels": 3})
    grey_thrice = attribute(rgb, image.expand(3, size, size), "occlusion", 1)
    assert torch.allclose(grey_thrice.values, drops / covers, atol=1e-5)


@pytest.mark.parametrize("inplace, rectifier", [(False, nn.ReLU), (True, nn.ReLU), (False, nn.ReLU6)])
def test_guided_backprop_passes_only_positive_gradients_back_through_relus(inplace, rectifier):
    model = relu_model(inplace, rectifier)
    guided = attribute(model, X, "guided_backprop", 0)
    assert torch.allclose(guided.values, W[0].clamp(min=0).reshape(2, 2))  # -2 cut: a plain gradient keeps it
    assert torch.allclose(attribute(model, X, "saliency", 0).values, W[0].abs().reshape(2, 2))
    assert model.module.relu.inplace is inplace  # put back as it was
    # Guided Grad-CAM: that, times Grad-CAM at the ReLU (its one channel weighted by the mean gradient, 0.625)
    gradcam = (W[0].mean() * X[0]).clamp(min=0)
    combined = attribute(model, X, "guided_gradcam", 0, layer="relu")
    assert torch.allclose(combined.values, W[0].clamp(min=0).reshape(2, 2) * gradcam, atol=1e-6)


class FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 1, 1), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def test_guided_backprop_refuses_a_model_whose_relus_it_cannot_guide():
    model = wrap(FunctionalRelu(), ["a", "b"], {"name": "resize", "size": 2, "channels": 1})
    with pytest.raises(ModelError, match="applies relu as a function \\(relu\\): choose another method"):
        attribute(model, X, "guided_backprop", 0)
    with pytest.raises(ModelError, match="this model has none"):
        attribute(linear_model(), X, "guided_backprop", 0)


def test_smoothgrad_draws_the_same_noise_every_time():
    model = load_model("mnist_cnn").adapter
    image = torch.rand(1, 28, 28)
    torch.manual_seed(5)
    first = attribute(model, image, "smoothgrad", 4).values
    state = torch.random.get_rng_state()
    assert torch.equal(attribute(model, image, "smoothgrad", 4).values, first)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's generator untouched


def test_the_cams_are_the_inspectors_and_eigencam_is_the_first_principal_component():
    model = load_model("mnist_cnn").adapter
    torch.manual_seed(1)
    image = torch.rand(1, 28, 28) * 0.5
    for method in ("gradcam", "gradcam++", "hirescam"):
        inspected = Inspector(model).inspect_prepared(image, target=3, method=method)
        ours = attribute(model, image, method, 3)
        assert ours.layer == "relu2" and torch.allclose(ours.normalised(), inspected.cam, atol=1e-5)
    # three channels that are multiples (1, 2, 2) of one map, x: their first principal component gives 3x
    conv = nn.Conv2d(1, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0, 2.0]).reshape(3, 1, 1, 1))
    module = nn.Sequential()
    module.add_module("conv", conv)
    module.add_module("flatten", nn.Flatten())
    module.add_module("fc", nn.Linear(12, 2))
    eigen = attribute(wrap(module, ["a", "b"], {"name": "resize", "size": 2, "channels": 1}), X, "eigencam",
                      layer="conv")
    assert torch.allclose(eigen.values, 3 * X[0], atol=1e-5)


@pytest.mark.parametrize("method", ["integrated_gradients", "smoothgrad", "occlusion"])
def test_slow_methods_run_in_bounded_chunks_report_progress_and_can_be_cancelled(method):
    model = load_model("mnist_cnn").adapter
    batches = []
    logits = model.logits
    model.logits = lambda x: batches.append(x.shape[0]) or logits(x)  # what each call evaluates
    try:
        heard = []
        result = attribute(model, torch.rand(1, 28, 28), method, 2, progress=lambda done, total: heard.append(
            (done, total)))
        assert max(batches) <= CHUNK and sum(batches) == result.forward_passes == heard[-1][0] == heard[-1][1]
        assert [done for done, _ in heard] == sorted(done for done, _ in heard)
        asked = []
        with pytest.raises(Cancelled):
            attribute(model, torch.rand(1, 28, 28), method, 2, cancelled=lambda: asked.append(1) or len(asked) > 1)
        assert len(asked) == 2  # stopped at the second batch
    finally:
        del model.logits


def test_every_method_says_what_it_costs_and_mistakes_are_clear():
    for method in ATTRIBUTIONS.values():
        assert method.describe()["cost"] and method.title and method.paper
    assert {name for name, m in ATTRIBUTIONS.items() if m.slow} == {"smoothgrad", "integrated_gradients", "occlusion"}
    model = linear_model()
    with pytest.raises(ModelError, match="unknown attribution method 'lime'"):
        attribute(model, X, "lime")
    with pytest.raises(ModelError, match="Grad-CAM needs a layer with a spatial"):
        attribute(model, X, "gradcam")  # a linear model has no spatial layer
    with pytest.raises(InputError, match="target class must be in 0-1, got 2"):
        attribute(model, X, "saliency", 2)


def test_rank_correlation_and_ssim_by_hand():
    assert list(ranks(torch.tensor([0.0, 3.0, 0.0, 1.0]).numpy())) == [1.5, 4.0, 1.5, 3.0]  # a tie: its mean rank
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert spearman(a, a * 10) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(1.0)  # of |values|
    assert spearman(a, torch.tensor([[4.0, 3.0], [2.0, 1.0]])) == pytest.approx(-1.0)
    assert spearman(a, torch.zeros(2, 2)) is None  # a flat map has no ranks to compare
    image = torch.rand(20, 20, generator=torch.Generator().manual_seed(0))
    assert ssim(image, image * 3) == pytest.approx(1.0)  # each scaled to [0, 1] first
    assert ssim(image, 1 - image) < 0.2


def eigen_model():
    """input -> conv 1x1 to 3 channels -> flatten -> linear: any conv weights give channels that are multiples of
    the input, so Eigen-CAM at the conv is the input's outline whatever the weights: it must fail the check."""
    module = nn.Sequential()
    module.add_module("conv", nn.Conv2d(1, 3, 1, bias=False))
    module.add_module("flatten", nn.Flatten())
    module.add_module("fc", nn.Linear(3 * 64, 2))
    return wrap(module, ["a", "b"], {"name": "resize", "size": 8, "channels": 1})


def test_cascading_randomisation_catches_a_method_blind_to_the_weights_and_passes_one_that_is_not():
    torch.manual_seed(0)
    model, image = eigen_model(), torch.rand(3, 1, 8, 8)  # three inputs: the means of their measures
    before = {name: p.clone() for name, p in model.module.named_parameters()}
    assert layers_with_weights(model.module) == ["conv", "fc"]
    blind = cascading_randomisation(model, image, "eigencam", layer="conv")
    assert [step.randomised for step in blind.steps] == ["fc", "conv"]  # from the logits down
    assert all(step.spearman == pytest.approx(1.0) and step.ssim == pytest.approx(1.0) for step in blind.steps)
    assert blind.outcome == "fails" and blind.verdict.startswith("fails: the maps barely change")
    # saliency of a linear model is |its weights|: fresh random weights give an unrelated map
    heard = []
    seeing = cascading_randomisation(linear_model(8, torch.randn(2, 64)), image, "saliency", target=1,
                                     progress=lambda done, total: heard.append((done, total)))
    assert heard == [(6, 6)] and seeing.targets == [1, 1, 1]
    assert [step.randomised for step in seeing.steps] == ["1"]  # the Sequential's Linear
    assert abs(seeing.steps[-1].spearman) < PASS_BELOW and seeing.outcome == "passes"
    assert seeing.verdict.startswith("passes") and seeing.as_dict()["outcome"] == "passes"
    asked = []
    with pytest.raises(Cancelled):  # a fast method stops too: asked before each map and each layer
        cascading_randomisation(model, image, "eigencam", layer="conv",
                                cancelled=lambda: bool(asked.append(1)) or len(asked) > 3)
    assert len(asked) == 4  # three maps of the original model, then the first layer's turn
    assert all(torch.equal(p, before[name]) for name, p in model.module.named_parameters())  # the model untouched


def test_deletion_and_insertion_curves_of_a_linear_model_follow_its_weights():
    model = linear_model()  # predicts class 0 for X: logits 1.9 and 1.1
    result = deletion_insertion(model, X[None], "saliency", steps=4)
    # saliency |W0| = [1, 2, 3, 0.5]: pixels go in the order 2, 1, 0, 3
    removed = [[0.2, 0.4, 0.6, 0.8], [0.2, 0.4, 0.0, 0.8], [0.2, 0.0, 0.0, 0.8], [0.0, 0.0, 0.0, 0.8], [0.0] * 4]
    logits = torch.tensor(removed) @ W.T + torch.tensor([0.3, -0.1])
    expected = logits.softmax(1)[:, 0].tolist()
    assert result.deletion.scores == pytest.approx(expected, abs=1e-6)
    assert result.deletion.fractions == [0, 0.25, 0.5, 0.75, 1]
    assert result.deletion.auc == pytest.approx(0.25 * (sum(expected) - (expected[0] + expected[-1]) / 2))
    # insertion: from the blurred input, the same pixels put back in the same order
    blurred = blur(X).flatten().tolist()
    order = [2, 1, 0, 3]
    inserted = [[X.flatten()[i].item() if i in order[:k] else blurred[i] for i in range(4)] for k in range(5)]
    expected = (torch.tensor(inserted) @ W.T + torch.tensor([0.3, -0.1])).softmax(1)[:, 0].tolist()
    assert result.insertion.scores == pytest.approx(expected, abs=1e-6)
    assert result.as_dict()["deletion"]["auc"] == round(result.deletion.auc, 4)


def test_blur_keeps_flat_images_flat_and_spreads_a_point_evenly():
    flat = torch.full((1, 20, 20), 0.3)
    assert torch.allclose(blur(flat), flat)
    point = torch.zeros(1, 20, 20)
    point[0, 10, 10] = 1.0
    spread = blur(point)[0]  # sigma 2 px: its 3-sigma window fits, so nothing is lost at the edges
    assert spread.sum().item() == pytest.approx(1.0, abs=1e-5) and spread.argmax().item() == 210
    assert spread[10, 8].item() == pytest.approx(spread[8, 10].item()) == pytest.approx(spread[10, 12].item())


def test_a_map_that_ranks_pixels_by_their_effect_beats_a_random_order():
    # 8x8 linear model: class 0's score is 0.05 times the sum of the left half's pixels (plus 0.3), class 1's -0.1;
    # the input is bright on the left, dark on the right
    left = torch.tensor([1.0 if column < 4 else 0.0 for row in range(8) for column in range(8)])
    model = linear_model(8, torch.stack([0.05 * left, torch.zeros(64)]))
    x = left.reshape(1, 1, 8, 8)
    result = deletion_insertion(model, x, "saliency")
    assert result.deletion.auc < result.random_deletion.auc and result.insertion.auc > result.random_insertion.auc
    assert result.deletion_beats_random and result.insertion_beats_random
    # half the pixels gone, the whole left half: class 0 is down to its bias
    assert result.deletion.scores[8] == pytest.approx(torch.tensor([0.3, -0.1]).softmax(0)[0].item())


def test_data_randomisation_compares_the_maps_of_the_two_models():
    model = linear_model()
    shuffled = linear_model(weights=torch.tensor([[2.0, -0.5, 3.0, 1.0], [0.0, 1.0, 0.0, 1.0]]))
    result = data_randomisation(model, shuffled, X[None], "saliency")
    # |W0| ranks [2, 3, 4, 1] against [3, 1, 4, 2]: Spearman 1 - 6 * 6 / (4 * 15) = 0.4
    assert result.spearman == pytest.approx(0.4) and result.outcome == "passes" and result.targets == [0]
    same = data_randomisation(model, linear_model(), X[None], "saliency")
    assert same.spearman == pytest.approx(1.0) and same.outcome == "fails" and "barely change" in same.verdict
    with pytest.raises(InputError, match="cannot be compared"):
        data_randomisation(model, linear_model(8, torch.zeros(2, 64)), X[None], "saliency")


def test_a_shuffled_label_model_with_flat_maps_leaves_the_data_check_inconclusive_and_says_why():
    dead = linear_model(weights=torch.zeros(2, 4))  # every gradient zero: what dead ReLUs give
    dead.name = "shuffled.safetensors"
    result = data_randomisation(linear_model(), dead, X[None], "saliency")
    assert result.outcome == "inconclusive" and result.flat_against
    assert result.verdict.startswith("inconclusive: every map of shuffled.safetensors is flat")
