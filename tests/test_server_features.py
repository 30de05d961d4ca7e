"""The feature API against the engine's own answers: top-activating examples with their patches, and
visualizations streamed as they improve, both kept on disk."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import torch
from PIL import Image

from conftest import SHAPES, write_shapes
from convscope.data import load_mnist
from convscope.inspect.features import Target, VisualizationSettings, crop, top_activating, visualize
from convscope.models import load_model


def picture(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_top_activating_examples_are_the_engines_with_their_patches(client):
    asked = {"model": "mnist_cnn", "layer": "relu2", "channel": 5, "k": 4}
    answer = client.post("/api/features/top", json=asked)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    digits = load_mnist("test", client.app.state.convscope.settings.engine_settings()).as_float()
    model = load_model("mnist_cnn").adapter
    engine = top_activating(model, digits, "relu2", 4)["relu2"].examples(5)
    assert [(e["index"], e["source"]) for e in body["examples"]] == [(e.index, f"mnist:test:{e.index}")
                                                                     for e in engine]
    assert [e["value"] for e in body["examples"]] == [e.value for e in engine]
    assert body["images"] == len(digits) and body["dataset"] == "mnist:test"
    first = engine[0]
    top, left, bottom, right = first.box
    assert body["examples"][0]["box"] == list(first.box) and body["receptive_field"]["size"] == [bottom - top] * 2
    patch = picture(body["examples"][0]["patch"])  # the patch, enlarged to 64 px by whole pixels
    expected = (crop(digits[first.index], first.box)[0] * 255).round().numpy().astype(np.uint8)
    step = 64 // expected.shape[0]
    assert np.array_equal(patch[::step, ::step][:expected.shape[0], :expected.shape[1]], expected)
    assert client.post("/api/features/top", json=asked).json() == body  # read back from the disk cache
    stored = client.app.state.convscope.settings.data_dir / "features"
    assert any(stored.rglob("*.npz"))


def test_top_activating_mistakes_are_422(client):
    for body, message in [({"layer": "nope", "channel": 0}, "unknown layer 'nope'; layers: conv1, relu1"),
                          ({"layer": "conv1", "channel": 32}, "conv1 has 32 channels: no channel 32"),
                          ({"layer": "conv1", "channel": 0, "dataset": "folder:none"}, "no dataset"),
                          ({"model": "efficientnet_lite0", "layer": "_conv_stem", "channel": 0,
                            "dataset": "mnist:test"}, "does not read MNIST digits")]:
        answer = client.post("/api/features/top", json=body)
        assert answer.status_code in (404, 422) and message in answer.text, (body, answer.text)


def test_a_visualization_streams_its_images_and_is_the_engines(client):
    asked = {"model": "mnist_cnn", "layer": "conv2", "channel": 7, "steps": 20}
    with client.stream("POST", "/api/features/visualize", json=asked,
                       headers={"accept": "application/x-ndjson"}) as answer:
        lines = [json.loads(line) for line in answer.iter_lines() if line]
    progress = [line["progress"] for line in lines[:-1]]
    counted = [p for p in progress if "images" not in p]
    assert [p["done"] for p in counted] == list(range(1, 21)) and {p["total"] for p in progress} == {20}
    shown = [p for p in progress if "images" in p]
    assert [p["done"] for p in shown] == [16, 20]  # every 16 steps, and the last
    body = lines[-1]["result"]
    model = load_model("mnist_cnn").adapter
    engine = visualize(model, Target.channel("conv2", 7), VisualizationSettings(steps=20))
    image = picture(body["images"][0]).astype(float) / 255
    assert image.shape == (28, 28) and np.abs(image - engine.images[0, 0].numpy()).max() <= 0.5 / 255 + 1e-6
    assert body["settings"] == VisualizationSettings(steps=20).resolved(model).as_dict()
    assert body["target"] == {"kind": "channel", "index": 7, "layer": "conv2", "position": None}
    assert body["values"] == engine.values and body["cached"] is False
    assert shown[-1]["images"] == body["images"]
    again = client.post("/api/features/visualize", json=asked).json()
    assert again["cached"] is True and again["images"] == body["images"]
    logit = client.post("/api/features/visualize", json={"logit": 3, "steps": 4, "batch": 2, "diversity": 1}).json()
    assert logit["target"]["kind"] == "logit" and len(logit["images"]) == 2


def test_visualization_mistakes_are_422(client):
    for body, message in [({"steps": 4}, "name either a layer and a channel, or a logit"),
                          ({"layer": "conv1", "channel": 0, "logit": 2}, "name either a layer and a channel"),
                          ({"logit": 2, "position": [1, 1]}, "a position belongs to a layer's channel"),
                          ({"layer": "conv1", "channel": 99}, "channel"),
                          ({"model": "efficientnet_lite0", "logit": 1, "steps": 2048, "size": 512},
                           "compute it ahead of time with convscope features-overview")]:
        answer = client.post("/api/features/visualize", json=body)
        assert answer.status_code == 422 and message in answer.text, (body, answer.text)
    assert torch.is_grad_enabled()


def test_top_activating_over_a_folder_follows_what_the_folder_holds(client):
    folder = client.app.state.convscope.settings.datasets_folder / "shapes"
    write_shapes(folder, per_class=2, size=40)
    asked = {"model": "mnist_cnn", "layer": "conv1", "channel": 4, "k": 3, "dataset": "folder:shapes"}
    first = client.post("/api/features/top", json=asked).json()
    assert first["dataset"] == "folder:shapes" and first["images"] == 6
    assert all(e["source"].split("/")[0] in SHAPES and not e["source"].startswith("/") for e in first["examples"])
    write_shapes(folder / "more", per_class=1, size=40, seed=1)  # three more images: a new pass, not the old one
    again = client.post("/api/features/top", json=asked).json()
    assert again["images"] == 9


def test_a_size_the_model_cannot_run_is_a_422_and_a_size_it_can_is_drawn(client):
    refused = client.post("/api/features/visualize", json={"logit": 3, "size": 64})
    assert refused.status_code == 422 and "cannot run 64x64 images up to its logits" in refused.text
    drawn = client.post("/api/features/visualize", json={"layer": "conv1", "channel": 0, "size": 64, "steps": 2})
    assert drawn.status_code == 200 and picture(drawn.json()["images"][0]).shape == (64, 64)
