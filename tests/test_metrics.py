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
    # F1 = 2PR / (P + R): class 1 has P 1/2, R 1; class 2 P 1, R 1/2; macro over the three classes
    assert m.f1 == pytest.approx([1.0, 2 / 3, 2 / 3]) and m.macro_f1 == pytest.approx(7 / 9)
    assert m.support == [1, 1, 2] and m.classes == [0, 1, 2] and m.top5_accuracy == 1.0  # 3 classes: always
    # Calibration: every example is predicted with confidence 3/5 and 3 of 4 are right, so all four share one bin
    # and ECE = |3/4 - 3/5|.
    filled = [b for b in m.reliability if b["count"]]
    assert len(m.reliability) == 15 and len(filled) == 1
    assert filled[0]["count"] == 4 and filled[0]["accuracy"] == 0.75
    assert filled[0]["confidence"] == pytest.approx(0.6)
    assert filled[0]["low"] < filled[0]["confidence"] <= filled[0]["high"]
    assert m.ece == pytest.approx(0.15)


def test_top5_and_calibration_by_hand():
    # Seven classes; logits 7, 6, ..., 1 for classes 0..6 in every row, so the ranking is 0 > 1 > ... > 6.
    logits = torch.arange(7, 0, -1, dtype=torch.float32).repeat(4, 1)
    labels = torch.tensor([0, 4, 5, 6])  # ranks 1, 5, 6, 7: top-1 1/4, top-5 2/4
    m = metrics_from_logits(logits, labels)
    assert m.accuracy == 0.25 and m.top5_accuracy == 0.5
    p0 = float(torch.softmax(logits[0], 0)[0])  # the confidence of every prediction: e^7 / sum e^k, about 0.63
    assert m.ece == pytest.approx(abs(0.25 - p0))
    # precision of class 0: predicted 4 times, right once; classes 4-6 never predicted: 0, as sklearn's zero_division
    assert m.precision == pytest.approx([0.25, 0, 0, 0, 0, 0, 0]) and m.recall == [1.0, 0, 0, 0, 0, 0, 0]
    assert m.confusion[5] == [1, 0, 0, 0, 0, 0, 0]


def test_r2_is_undefined_when_every_example_has_one_class():
    m = metrics_from_logits(torch.tensor([[2.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 0]))
    assert m.accuracy == 1.0 and m.r2 is None  # no variance in the targets to explain


def test_many_classes_keep_only_the_ones_that_occur():
    logits = torch.zeros(3, 1000)
    logits[0, 7] = logits[1, 7] = logits[2, 999] = 5.0
    m = metrics_from_logits(logits, torch.tensor([7, 500, 999]))
    assert m.classes == [7, 500, 999] and m.confusion == [[1, 0, 0], [1, 0, 0], [0, 0, 1]]
    assert m.support == [1, 1, 1] and m.recall == [1.0, 0.0, 1.0]


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
