import math

import pytest
import torch

from convscope.inspect import filter_images, histogram, layer_weights, tensor_summary
from convscope.metrics import evaluate, metrics_from_logits
from convscope.models import get_spec


def test_metrics_by_hand():
    # Three classes, four examples. Logits of 0 or ln 3 give probabilities of 1/5 or 3/5.
    big = math.log(3.0)
    logits = torch.tensor([[big, 0, 0], [0, big, 0], [0, big, 0], [0, 0, big]])
    labels = torch.tensor([0, 1, 2, 2])  # predicted: 0, 1, 1, 2 -> 3 of 4 right
    m = metrics_from_logits(logits, labels)
    assert m.count == 4 and m.accuracy == 0.75
    assert m.confusion == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert m.precision == [1.0, 0.5, 1.0] and m.recall == [1.0, 1.0, 0.5]
    # loss: three examples give the true class 3/5, one gives it 1/5
    assert m.loss == pytest.approx(-(3 * math.log(0.6) + math.log(0.2)) / 4)
    # squared error per example: each right one (0.4^2 + 0.2^2 + 0.2^2) = 0.24;
    # the wrong one, p = (1/5, 3/5, 1/5) against onehot (0, 0, 1): 0.04 + 0.36 + 0.64 = 1.04
    residual = 3 * 0.24 + 1.04
    assert m.mse == pytest.approx(residual / 12)
    # total: per class, onehot column minus its mean. class 0 [1,0,0,0] mean 1/4 -> 0.75; class 1 same 0.75;
    # class 2 [0,0,1,1] mean 1/2 -> 1.0
    assert m.r2 == pytest.approx(1 - residual / 2.5)


def test_perfect_predictions():
    labels = torch.tensor([0, 1, 2])
    m = metrics_from_logits(torch.eye(3) * 50, labels)
    assert m.accuracy == 1.0 and m.r2 == pytest.approx(1.0, abs=1e-9) and m.mse == pytest.approx(0, abs=1e-9)


def test_evaluate_accepts_uint8_images_and_restores_training_mode():
    model = get_spec("mnist_cnn").build().train()
    images = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8)
    m = evaluate(model, images, torch.arange(10))
    assert m.count == 10 and sum(map(sum, m.confusion)) == 10
    assert model.training


def test_weight_statistics_and_histograms():
    t = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    s = tensor_summary(t)
    assert (s["count"], s["mean"], s["min"], s["max"], s["abs_mean"]) == (4, 0.5, -1.0, 2.0, 1.0)
    assert s["std"] == pytest.approx(math.sqrt(1.25))
    h = histogram(t, bins=3)
    assert h["counts"] == [1, 1, 2] and h["edges"] == [-1.0, 0.0, 1.0, 2.0]
    assert histogram(torch.ones(5), bins=2)["counts"] == [0, 5]  # a constant tensor still gets a histogram


def test_layer_weights_cover_every_parameterised_layer():
    report = layer_weights(get_spec("mnist_cnn").adapter(get_spec("mnist_cnn").build()))
    assert [r["layer"] for r in report] == ["conv1", "conv2", "fc1", "fc2"]
    conv1 = report[0]
    assert conv1["weight"]["shape"] == [32, 1, 3, 3] and conv1["bias"]["shape"] == [32]
    assert sum(conv1["weight"]["histogram"]["counts"]) == 288


def test_filter_images_keep_sign_and_zero_at_half():
    weight = torch.tensor([[[[-2.0, 0.0], [1.0, 2.0]]]])
    torch.testing.assert_close(filter_images(weight), torch.tensor([[[[0.0, 0.5], [0.75, 1.0]]]]))
