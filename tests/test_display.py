"""Results show themselves in a notebook: short reprs with no tensor dumps, and HTML/PNG displays whose pictures
are the values the result holds."""

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convscope import render
from convscope.data.mnist import MnistSplit, Sample
from convscope.evaluation import Evaluation
from convscope.inspect import Inspector
from convscope.metrics import metrics_from_logits
from convscope.models import load_model
from convscope.training.config import TrainConfig
from convscope.training.finetuning import FineTuneResult
from convscope.training.trainer import TrainResult

from test_plot import made


def inlined_pngs(html: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
            for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


@pytest.fixture(scope="module")
def inspection():
    return Inspector(load_model("mnist_cnn").adapter).inspect(torch.rand(28, 28) * 0.5)


def test_an_inspection_is_one_short_line_and_shows_its_input_cam_and_top_classes(inspection):
    text = repr(inspection)
    assert len(text) < 200 and "tensor(" not in text
    assert text.startswith(f"Inspection(predicted '{inspection.predicted}' at ")
    html = inspection._repr_html_()
    assert f"predicted {inspection.predicted} ({inspection.confidence:.1%})" in html
    model_input, cam = inlined_pngs(html)
    assert np.array_equal(model_input, render.input_image(inspection.input, 6))  # 28 px -> 168
    assert np.array_equal(cam, render.cam_image(inspection.input, inspection.cam, 6))
    for name, p in inspection.top(5):
        assert f"<td style='padding:2px 6px;text-align:right'>{name}</td><td style='width:160px;padding:2px 0'>" \
               f"<div style='background:#3b6fb6;height:12px;width:{p * 100:.1f}%'>" in html
    png = np.asarray(Image.open(io.BytesIO(inspection._repr_png_())).convert("RGB"))
    assert png.shape[0] == 168 and np.array_equal(png[:, :168], render.input_image(inspection.input, 6)[..., None]
                                                  .repeat(3, axis=2))


def test_a_bar_in_the_png_is_as_long_as_its_probability():
    png = np.asarray(Image.open(io.BytesIO(made([0.75, 0.25, 0.0], cam=torch.zeros(4, 4))._repr_png_())))
    bars = png[:, 2 * 168 + 2 * 8:]  # after the input and the CAM, each 168 px wide with an 8 px gap
    blue = np.all(bars == (0x3B, 0x6F, 0xB6), axis=2)
    lengths = [int(blue[row].sum()) for row in (16, 16 + 56, 16 + 112)]  # inside each bar: 168 px / 3 rows
    assert lengths[0] == pytest.approx(3 * lengths[1], abs=2) and lengths[2] == 0


def test_a_sample_and_a_split_show_their_digit_and_size():
    image = torch.zeros(28, 28, dtype=torch.uint8)
    image[10:20, 13] = 255
    sample = Sample(image, 1, 42, "test")
    assert repr(sample) == "Sample(label=1, index=42, split='test', image uint8 (28, 28))"
    (shown,) = inlined_pngs(sample._repr_html_())
    assert shown.shape == (112, 112) and shown[4 * 15, 4 * 13] == 255 and shown[0, 0] == 0
    assert "label 1, test image 42" in sample._repr_html_()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(sample._repr_png_()))), shown)
    split = MnistSplit(torch.zeros(3, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, 1]), "x")
    assert repr(split) == "MnistSplit(3 images (28, 28) uint8, labels [0, 1])"


def test_metrics_and_an_evaluation_show_their_numbers_and_confusion_matrix():
    metrics = metrics_from_logits(torch.tensor([[5.0, 0], [5, 0], [5, 0], [0, 5]]), torch.tensor([0, 0, 1, 1]))
    assert repr(metrics).startswith("Metrics(4 examples: accuracy 0.7500, top-5 1.0000")
    evaluation = Evaluation("net", {"kind": "folder", "source": "pets/"}, ["cat", "dog"], metrics, [], [], 1.0)
    assert repr(evaluation).startswith("Evaluation('net' on pets/: Metrics(4 examples")
    html = evaluation._repr_html_()
    assert "net on pets/: 75.00% top-1 on 4 images" in html
    assert "<td style='padding:2px 6px;text-align:right'>top-1 accuracy</td><td style='padding:2px 6px;" \
           "text-align:right'>0.7500</td>" in html
    # The dog row: one called cat (half of the row), one right.
    assert re.search(r"<th[^>]*>dog</th><td[^>]*background:rgba\(59,111,182,0\.500\)[^>]*>1</td>"
                     r"<td[^>]*background:rgba\(59,111,182,0\.500\)[^>]*>1</td>", html)


def test_a_training_run_shows_its_curves_and_where_it_was_saved():
    history = [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "train_accuracy": 0.8, "val_accuracy": 0.85},
               {"epoch": 2, "train_loss": 0.2, "val_loss": 0.3, "train_accuracy": 0.95, "val_accuracy": 0.9}]
    metrics = metrics_from_logits(torch.tensor([[5.0, 0]]), torch.tensor([0]))
    run = TrainResult(torch.nn.Linear(1, 1), TrainConfig(epochs=2), "completed", 100, 3.25, history, metrics,
                      Path("run.safetensors"))
    assert repr(run) == ("TrainResult(mnist_cnn: completed, 100 steps in 3.2 s; test accuracy 100.00%; saved to "
                         "run.safetensors)")
    html = run._repr_html_()
    assert html.count("<svg") == 2 and html.count("<polyline") == 4  # loss and accuracy, train and validation
    first_loss_line = re.search(r"<polyline[^>]*points='([^']+)'", html).group(1).split()
    assert len(first_loss_line) == 2
    (x1, y1), (x2, y2) = [map(float, p.split(",")) for p in first_loss_line]
    assert x2 > x1 and y2 > y1  # the loss falls: lower on the chart means a larger SVG y
    tuned = FineTuneResult(None, "stopped_early", 2, metrics, history, [{"file": "x", "reason": "corrupt"}])
    assert repr(tuned) == ("FineTuneResult(stopped_early after 2 epochs (best: 2), validation accuracy 100.00%; "
                           "1 images skipped)")
    assert tuned._repr_html_().count("<svg") == 2


def test_a_model_shows_its_layer_table():
    checkpoint = load_model("mnist_cnn")
    text = repr(checkpoint)
    assert text.startswith("Checkpoint(mnist_cnn from ") and "test accuracy 99.48%" in text and len(text) < 300
    html = checkpoint._repr_html_()
    assert html.count("<tr>") == 1 + len(checkpoint.adapter.graph.taps)  # the header and one row per layer
    conv1 = checkpoint.adapter.graph["conv1"]
    assert re.search(rf"<td[^>]*>conv1</td><td[^>]*>conv</td><td[^>]*>Conv2d</td><td[^>]*>32x26x26</td>"
                     rf"<td[^>]*>{conv1.parameters:,}</td>", html)
    assert repr(checkpoint.adapter.graph) == "Graph(11 taps from input (1, 28, 28) to output (10,))"


def test_a_thousand_classes_show_their_worst_and_most_confused_not_a_million_cells():
    logits, labels = torch.randn(5000, 1000, generator=torch.Generator().manual_seed(0)), torch.arange(5000) % 1000
    metrics = metrics_from_logits(logits, labels)
    html = metrics._repr_html_()
    assert len(html) < 50_000 and "confusion matrix" not in html
    assert "the 30 classes with the lowest F1 of 1000" in html and "the most frequent confusions" in html


def test_a_model_without_a_spatial_layer_shows_its_saliency():
    ins = Inspector(load_model("mnist_mlp").adapter).inspect(torch.rand(28, 28) * 0.4)
    assert ins.cam is None and "saliency (no spatial layer for a CAM)" in repr(ins)
    model_input, saliency = inlined_pngs(ins._repr_html_())
    assert np.array_equal(saliency, render.cam_image(ins.input, ins.saliency, 6))


def test_a_short_wide_input_keeps_every_bar_in_the_png():
    ins = made([0.4, 0.3, 0.2, 0.05, 0.05], cam=torch.rand(4, 40), names="abcde", input_=torch.zeros(1, 4, 40))
    png = np.asarray(Image.open(io.BytesIO(ins._repr_png_())))
    assert png.shape[0] >= 5 * 16  # five rows of bars, not cut to the picture's height
