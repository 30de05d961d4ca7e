"""The layer and compare API: one layer's activations a page of channels at a time (checked against the engine's
own capture), and one image through several models side by side."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import torch

from convscope.inspect import Inspector
from convscope.models import load_model
from convscope.server.encoding import decode_tensor, encode_channels

PHOTOS = Path(__file__).resolve().parents[1] / "src" / "convscope" / "data" / "photos"


def photo_url(name: str) -> str:
    return "data:image/png;base64," + base64.b64encode((PHOTOS / f"{name}.png").read_bytes()).decode()


def pixels_of_a_bar() -> list[list[int]]:
    pixels = [[0] * 28 for _ in range(28)]
    for row in range(6, 22):
        pixels[row][13] = pixels[row][14] = 255
    return pixels


@pytest.fixture(scope="module")
def engine_cnn():
    return load_model("mnist_cnn")


def engine_activation(checkpoint, layer: str) -> torch.Tensor:
    x = torch.tensor(pixels_of_a_bar(), dtype=torch.float32)[None] / 255
    return Inspector(checkpoint.adapter).inspect_prepared(x, layers=[layer]).activations[layer]


def test_per_channel_encoding_keeps_each_channels_range():
    maps = torch.stack([torch.linspace(0, 1, 16).reshape(4, 4), torch.linspace(-1000, 0, 16).reshape(4, 4)])
    encoded = encode_channels(maps)
    assert encoded["min"] == [0.0, -1000.0] and encoded["max"] == [1.0, 0.0]
    decoded = decode_tensor(encoded)
    assert torch.allclose(decoded[0], maps[0], atol=1 / 255) and torch.allclose(decoded[1], maps[1], atol=1000 / 255)


def test_a_page_of_channels_in_index_and_mean_order(client, engine_cnn):
    expected = engine_activation(engine_cnn, "conv1")  # (32, 26, 26)
    body = client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "conv1",
                                                          "offset": 8, "limit": 10}).json()
    assert (body["layer"], body["kind"], body["shape"], body["channels"]) == ("conv1", "conv", [32, 26, 26], 32)
    assert body["order"] == list(range(8, 18)) and body["activation"]["shape"] == [10, 26, 26]
    assert torch.allclose(decode_tensor(body["activation"]), expected[8:18], atol=(expected.max() - expected.min())
                          / 255)
    assert body["means"] == pytest.approx(expected[8:18].mean(dim=(1, 2)).tolist(), abs=1e-5)

    by_mean = client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "conv1",
                                                             "sort": "mean", "limit": 4}).json()
    strongest = expected.mean(dim=(1, 2)).argsort(descending=True)[:4].tolist()
    assert by_mean["order"] == strongest and by_mean["means"] == sorted(by_mean["means"], reverse=True)
    past_the_end = client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "conv1",
                                                                 "offset": 40}).json()
    assert past_the_end["order"] == [] and past_the_end["activation"] is None


def test_thumbnails_are_averaged_down_and_dense_layers_come_whole(client, engine_cnn):
    small = client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "conv1",
                                                          "limit": 2, "max_side": 13}).json()
    expected = torch.nn.functional.avg_pool2d(engine_activation(engine_cnn, "conv1")[:2], 2)  # 26 -> 13: 2x2 means
    assert small["activation"]["shape"] == [2, 13, 13]
    assert torch.allclose(decode_tensor(small["activation"]), expected, atol=float(expected.max()) / 255 + 1e-6)
    dense = client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "fc1"}).json()
    assert dense["shape"] == [128] and "order" not in dense
    fc1 = engine_activation(engine_cnn, "fc1")
    assert torch.allclose(decode_tensor(dense["activation"]), fc1, atol=float(fc1.max() - fc1.min()) / 255 + 1e-5)


def test_layer_request_errors(client):
    unknown = client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "conv9"})
    assert unknown.status_code == 422 and "conv1" in unknown.json()["error"]["message"]
    assert client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "conv1",
                                                         "limit": 0}).status_code == 422
    assert client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "conv1",
                                                         "model": "nope"}).status_code == 404


def test_a_photos_layer_from_a_pretrained_model(client):
    body = client.post("/api/layers/activations", json={"image": photo_url("coffee"), "model": "efficientnet_lite0",
                                                          "layer": "_conv_stem", "limit": 64, "max_side": 56}).json()
    assert body["shape"] == [32, 112, 112] and len(body["order"]) == 32  # a page holds what there is
    maps = decode_tensor(body["activation"])
    assert maps.shape == (32, 56, 56) and all(float(m.std()) > 0 for m in maps)  # 32 non-blank maps


def test_compare_runs_each_model_and_says_whether_they_agree(client, monkeypatch, tmp_path):
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(tmp_path))  # no vgg16 weights, whatever this machine has
    body = client.post("/api/compare", json={"pixels": pixels_of_a_bar(), "models": [
        {"model": "mnist_cnn"}, {"model": "mnist_mlp"}, {"model": "vgg16"}]}).json()
    cnn, mlp, vgg = body["models"]
    single = client.post("/api/predict", json={"pixels": pixels_of_a_bar()}).json()
    assert cnn["predicted_class"] == single["predicted_class"]
    assert [t["probability"] for t in cnn["top"]] == sorted(single["probabilities"], reverse=True)[:5]
    layers = client.get("/api/models/mnist_cnn/architecture").json()["layers"]
    assert cnn["parameters"] == 225_034 and cnn["time_ms"] > 0
    assert cnn["macs"] == sum(layer["macs"] or 0 for layer in layers) == 2_631_040
    assert cnn["cam"]["layer"] == "relu2" and mlp["cam"] is None  # no spatial layer in the MLP
    assert "no active version" in vgg["error"]  # weights not here: that column says so, the others answer
    assert body["agree"] is False
    two = client.post("/api/compare", json={"pixels": pixels_of_a_bar(), "models": [
        {"model": "mnist_cnn"}, {"model": "mnist_cnn", "version": 1}], "top": 3}).json()
    assert two["agree"] is True and len(two["models"][0]["top"]) == 3
    assert client.post("/api/compare", json={"pixels": pixels_of_a_bar(), "models": [
        {"model": "mnist_cnn"}]}).status_code == 422


def test_compare_a_photo_through_image_and_digit_models(client):
    body = client.post("/api/compare", json={"image": photo_url("coffee"), "models": [
        {"model": "efficientnet_lite0"}, {"model": "mnist_cnn"}]}).json()
    lite0 = body["models"][0]
    assert lite0["predicted_class"] == "espresso" and lite0["top"][0]["class"] == "espresso"
    assert lite0["cam"]["layer"] == "_relu:2" and lite0["input"]["shape"] == [3, 224, 224]
    assert lite0["parameters"] == 4_652_008


def test_chosen_channels_in_the_order_asked(client, engine_cnn):
    expected = engine_activation(engine_cnn, "conv1")
    body = client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "conv1",
                                                          "channels": [30, 2, 7]}).json()
    assert body["order"] == [30, 2, 7] and body["activation"]["shape"] == [3, 26, 26]
    assert torch.allclose(decode_tensor(body["activation"])[0], expected[30],
                          atol=float(expected[30].max() - expected[30].min()) / 255 + 1e-6)
    wrong = client.post("/api/layers/activations", json={"pixels": pixels_of_a_bar(), "layer": "conv1",
                                                          "channels": [1, 32]})
    assert wrong.status_code == 422 and "conv1 has 32 channels (0-31); no channel 32" in \
        wrong.json()["error"]["message"]


def test_a_page_too_big_to_send_asks_for_thumbnails(client):
    photo = {"image": photo_url("coffee"), "model": "efficientnet_lite0", "layer": "_blocks.1._relu"}  # 96x112x112
    twice = list(range(96)) * 2  # 192 maps of 112x112: 2.4 million values
    too_big = client.post("/api/layers/activations", json={**photo, "channels": twice})
    assert too_big.status_code == 422 and "ask for fewer channels or a max_side" in too_big.json()["error"]["message"]
    thumbnails = client.post("/api/layers/activations", json={**photo, "channels": twice, "max_side": 56})
    assert thumbnails.status_code == 200 and thumbnails.json()["order"] == twice
    assert list(decode_tensor(thumbnails.json()["activation"]).shape) == [192, 56, 56]
