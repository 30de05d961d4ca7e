"""The feature commands (`convscope visualize`, `top-activating`, `features-overview`), run in-process through
``main`` and held against the engine (``convscope.inspect.features``) called directly with the same settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_mnist_dir
from convscope.cli.features import GAP_PX, LABEL_PX
from convscope.cli.overview import stage_layers
from convscope.cli.main import main
from convscope.data.mnist import load_mnist
from convscope.inspect.features import (FeatureCache, ImageFiles, Target, VisualizationSettings, model_key,
                                        receptive_field, top_activating, visualize)
from convscope.models import get_spec, load_model
from convscope.models.user import UserModel, load_user_model
from convscope.settings import Settings
from user_net import TINY_PREPROCESSING, write_user_files

MNIST_PX = 280  # a 28 px image as the commands draw it: enlarged 10x


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: a second thread only adds waiting. The commands and the engine calls they are compared with
    run on the same thread count, so they add in the same order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Synthetic MNIST (100 test digits) and the data directory in tmp."""
    monkeypatch.setenv("CONVSCOPE_MNIST_DIR", str(write_mnist_dir(tmp_path / "mnist")))
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture(scope="module")
def cnn():
    return load_model("mnist_cnn").adapter


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def grey(path) -> np.ndarray:
    """A PNG's pixels in [0, 1]: (H, W) for greyscale, (H, W, 3) for RGB."""
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.float32) / 255


# visualize


def test_visualize_writes_the_engines_image_and_its_settings_beside_it(env, capsys, cnn):
    out = env / "pictures" / "conv2_3.png"  # the folder does not exist yet
    body = run_json(capsys, ["visualize", "--layer", "conv2", "--channel", "3", "--steps", "8", "--seed", "2",
                             "--out", str(out), "--json"])
    assert json.loads(out.with_suffix(".json").read_text()) == body
    settings = VisualizationSettings(steps=8, seed=2)
    engine = visualize(cnn, Target.channel("conv2", 3), settings)
    assert body["settings"] == settings.resolved(cnn).as_dict()
    assert body["settings"]["size"] == [28, 28] and body["settings"]["jitter"] == 1.0  # resolved for mnist_cnn
    assert body["target"] == {"kind": "channel", "index": 3, "layer": "conv2", "position": None}
    assert body["values"] == pytest.approx(engine.values, rel=1e-5) and body["history_length"] == 8
    assert body["objective"]["last"] == pytest.approx(engine.history[-1], rel=1e-5)
    model = body["model"]
    assert (model["name"], model["source"]) == ("mnist_cnn", "packaged")
    assert model["checkpoint"].endswith("mnist_cnn.safetensors")
    assert model_key(cnn) == f"mnist_cnn@{model['fingerprint']}"
    pixels = grey(out)
    assert pixels.shape == (MNIST_PX, MNIST_PX)  # greyscale, 28 px enlarged 10x ...
    blocks = pixels.reshape(28, 10, 28, 10)
    assert (blocks == blocks[:, :1, :, :1]).all()  # ... nearest neighbour: each pixel a 10x10 square
    assert np.abs(pixels[::10, ::10] - engine.images[0, 0].numpy()).max() <= 1 / 255
    assert np.abs(pixels[::10, ::10] - 0.5).max() > 0.1  # not a grey square


def test_visualize_a_batch_side_by_side(env, capsys, cnn):
    out = env / "seven.png"
    body = run_json(capsys, ["visualize", "--logit", "7", "--batch", "2", "--diversity", "0.5", "--steps", "6",
                             "--out", str(out), "--json"])
    settings = VisualizationSettings(steps=6, batch=2, diversity=0.5)
    engine = visualize(cnn, Target.logit(7), settings)
    assert body["target"] == {"kind": "logit", "index": 7, "layer": None, "position": None}
    assert body["settings"] == settings.resolved(cnn).as_dict()
    assert body["values"] == pytest.approx(engine.values, rel=1e-5)
    pixels = grey(out)
    assert pixels.shape == (MNIST_PX, 2 * MNIST_PX + GAP_PX)
    assert (pixels[:, MNIST_PX:MNIST_PX + GAP_PX] == 1).all()  # a white gap between them
    for i in range(2):
        tile = pixels[:, i * (MNIST_PX + GAP_PX):][:, :MNIST_PX]
        assert np.abs(tile[::10, ::10] - engine.images[i, 0].numpy()).max() <= 1 / 255


def test_visualize_a_neuron_with_every_setting(env, capsys, cnn):
    out = env / "neuron.png"
    body = run_json(capsys, ["visualize", "--layer", "relu2", "--channel", "5", "--neuron", "2,7", "--steps", "3",
                             "--param", "pixels", "--no-decorrelate", "--size", "28x28", "--jitter", "0",
                             "--scale", "0", "--degrees", "0", "--lr", "0.1", "--seed", "4", "--out", str(out),
                             "--json"])
    assert body["target"] == {"kind": "neuron", "index": 5, "layer": "relu2", "position": [2, 7]}
    assert body["settings"] == VisualizationSettings(
        steps=3, learning_rate=0.1, parameterisation="pixels", decorrelate=False, size=(28, 28), jitter=0.0,
        scale=0.0, degrees=0.0, seed=4).as_dict()
    assert main(["visualize", "--layer", "relu2", "--channel", "5", "--steps", "2", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("relu2 channel 5: objective ")


@pytest.mark.parametrize("options, message", [
    (["--layer", "nope", "--channel", "0"], "unknown layer 'nope'; layers: conv1, relu1, pool1, conv2,"),
    (["--layer", "conv2", "--channel", "64"], "conv2 has 64 channels: no channel 64"),
    (["--layer", "fc1", "--channel", "0", "--neuron", "1,1"],
     "fc1 gives output of shape (128,): --neuron needs a (C, H, W) map"),
    (["--layer", "relu2", "--channel", "0", "--neuron", "11,0"], "relu2's map is 11x11: no position (11, 0)"),
    (["--logit", "10"], "mnist_cnn has 10 classes: no class 10"),
    (["--logit", "3", "--layer", "conv2"], "--logit K takes no --layer, --channel or --neuron"),
    (["--layer", "conv2"], "give --layer L and --channel C (with --neuron ROW,COL for one position), or --logit K"),
    (["--layer", "conv2", "--channel", "0", "--scale", "1"], "scale must be in [0, 1)"),
    (["--layer", "conv2", "--channel", "0", "--neuron", "x"],
     "argument --neuron: expected ROW,COL (two whole numbers, 0 or more), got 'x' (see `convscope visualize --help`)"),
    (["--layer", "conv2", "--channel", "0", "--size", "0"],
     "argument --size: expected pixels (64) or HxW (64x48), got '0' (see `convscope visualize --help`)"),
])
def test_visualize_says_what_is_wrong(env, capsys, options, message):
    out = env / "x.png"
    assert main(["visualize", *options, "--steps", "2", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"convscope: error: {message}")
    assert captured.err.count("\n") == 1 and not out.exists()


def test_visualize_wants_a_png(env, capsys):
    assert main(["visualize", "--logit", "1", "--out", str(env / "x.json")]) == 2
    assert capsys.readouterr().err == ("convscope: error: --out names the PNG to write (e.g. channel.png), got "
                                       f"{env / 'x.json'}\n")


# top-activating


def field_patch(image: torch.Tensor, example: dict, field) -> torch.Tensor:
    """What the PNG should show for an example: its receptive field, mid-grey where it runs past the image."""
    top, left, bottom, right = example["box"]
    start_row = field.offset[0] + example["position"][0] * field.stride[0]
    start_col = field.offset[1] + example["position"][1] * field.stride[1]
    patch = torch.full((image.shape[0], *field.size), 0.5)
    patch[:, top - start_row:bottom - start_row, left - start_col:right - start_col] = image[:, top:bottom, left:right]
    return patch


def test_top_activating_over_mnist_matches_the_engine(env, capsys, cnn):
    out = env / "top"
    body = run_json(capsys, ["top-activating", "--layer", "relu2", "--channels", "5,0", "--k", "4", "--out", str(out),
                             "--json"])
    assert json.loads((out / "top_activating.json").read_text()) == body
    split = load_mnist("test", Settings(mnist_dir=env / "mnist"))
    images = split.as_float()
    engine = top_activating(cnn, images, "relu2", 4)["relu2"]
    assert [entry["channel"] for entry in body["channels"]] == [5, 0]
    for entry in body["channels"]:
        assert entry["examples"] == [{**e.as_dict(), "label": int(split.labels[e.index])}
                                     for e in engine.examples(entry["channel"])]
    field = receptive_field(cnn, "relu2")
    assert body["receptive_field"] == field.as_dict() and field.size == (8, 8)
    assert body["dataset"] == {"mnist": "test", "images": 100, "skipped": {}} and body["shape"] == [64, 11, 11]
    assert sorted(p.name for p in out.iterdir()) == ["channel_0.png", "channel_5.png", "top_activating.json"]
    side = 8 * 10  # the 8 px field enlarged 10x (to about 84 px)
    pixels = grey(out / "channel_5.png")
    assert pixels.shape == (side + LABEL_PX, 4 * side + 3 * GAP_PX, 3)
    for i, example in enumerate(body["channels"][0]["examples"]):
        tile = pixels[:side, i * (side + GAP_PX):][:, :side, 0]
        expected = field_patch(images[example["index"]], example, field)[0].numpy()
        assert np.abs(tile[::10, ::10] - expected).max() <= 1 / 255
    assert (pixels[side:, :, 0] < 0.5).any()  # the values written under the patches


def test_top_activating_lists_every_channel_and_draws_64(env, capsys):
    out = env / "fc1"
    assert main(["top-activating", "--layer", "fc1", "--k", "2", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "wrote 64 PNGs" in said and "(PNGs of the first 64 of 128 channels; --channels picks which)" in said
    body = json.loads((out / "top_activating.json").read_text())
    assert len(body["channels"]) == 128 and body["receptive_field"] is None
    assert [entry["image"] for entry in body["channels"]] == [f"channel_{c}.png" for c in range(64)] + [None] * 64
    assert len(list(out.glob("*.png"))) == 64
    assert all(e["position"] is None and e["box"] is None for e in body["channels"][0]["examples"])
    assert grey(out / "channel_0.png").shape == (84 + LABEL_PX, 2 * 84 + GAP_PX, 3)  # whole 28 px digits, 3x


def test_top_activating_over_a_folder_for_a_model_of_your_own(tmp_path, capsys, restore_registry):
    files = write_user_files(tmp_path)
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
            photos / ("sub" if i % 2 else "") / f"p{i}.png")
    (photos / "broken.png").write_bytes(b"not a png")
    model = ["--model-file", f"{files['net']}:tiny", "--preprocessing", json.dumps(TINY_PREPROCESSING)]
    body = run_json(capsys, ["top-activating", *model, "--layer", "relu", "--k", "3", "--folder", str(photos),
                             "--out", str(tmp_path / "top"), "--json"])
    adapter = load_user_model(UserModel(f"{files['net']}:tiny", preprocessing=TINY_PREPROCESSING))
    data = ImageFiles.from_folder(photos, adapter.preprocessing)
    engine = top_activating(adapter, data, "relu", 3)["relu"]
    assert len(body["channels"]) == 4 and body["model"]["name"] == "tiny" and body["model"]["source"] == "user"
    for entry in body["channels"]:
        assert entry["examples"] == [{**e.as_dict(), "file": str(data.files[e.index])}
                                     for e in engine.examples(entry["channel"])]
    assert body["dataset"]["images"] == 5 and list(body["dataset"]["skipped"]) == [str(photos / "broken.png")]
    field, side = receptive_field(adapter, "relu"), 3 * 28  # a 3 px field, enlarged 28x
    clipped = 0
    for entry in body["channels"]:
        pixels = grey(tmp_path / "top" / entry["image"])
        assert pixels.shape == (side + LABEL_PX, 3 * side + 2 * GAP_PX, 3)
        for i, example in enumerate(entry["examples"]):
            tile = pixels[:side, i * (side + GAP_PX):][:, :side]
            expected = field_patch(data[example["index"]], example, field).permute(1, 2, 0).numpy()
            assert np.abs(tile[::28, ::28] - expected).max() <= 1 / 255
            clipped += example["box"][2] - example["box"][0] < 3 or example["box"][3] - example["box"][1] < 3
    assert clipped  # some fields run past the image: mid-grey there, the image where it is

    assert main(["top-activating", *model, "--layer", "relu", "--out", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == ("convscope: error: tiny does not read MNIST digits: give --folder DIR, a folder "
                                       "of images\n")


@pytest.mark.parametrize("options, message", [
    (["--layer", "relu2", "--channels", "3,64"], "relu2 has 64 channels (0-63): no channel 64"),
    (["--layer", "relu2", "--channels", "a"], "--channels takes whole numbers separated by commas, got 'a'"),
    (["--layer", "nope"], "unknown layer 'nope'; layers: conv1,"),
    (["--layer", "relu2", "--folder", "missing"], "missing: no such folder"),
])
def test_top_activating_says_what_is_wrong(env, capsys, options, message):
    assert main(["top-activating", *options, "--out", str(env / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"convscope: error: {message}")
    assert not (env / "out").exists()


# features-overview


def test_features_overview_draws_each_stage_and_fills_the_servers_cache(env, capsys, cnn):
    out = env / "overview"
    argv = ["features-overview", "--out", str(out), "--channels", "2", "--steps", "4", "--json"]  # default cache
    body = run_json(capsys, argv)
    assert json.loads((out / "overview.json").read_text()) == body
    assert [layer["layer"] for layer in body["layers"]] == ["relu1", "relu2"]  # before pool1 and pool2
    settings = VisualizationSettings(steps=4).resolved(cnn)
    assert body["settings"] == settings.as_dict() and body["cache"] == str(env / "data" / "features")
    cache = FeatureCache(env / "data" / "features")  # where `convscope serve` looks (its data dir's)
    for layer in body["layers"]:
        assert [entry["channel"] for entry in layer["channels"]] == [0, 1]
        for entry in layer["channels"]:
            target = Target.channel(layer["layer"], entry["channel"])
            record = json.loads((out / entry["json"]).read_text())
            assert record["settings"] == settings.as_dict() and record["target"] == target.as_dict()
            assert not entry["cached"] and grey(out / entry["image"]).shape == (MNIST_PX, MNIST_PX)
            assert cache.visualization(model_key(cnn), target, settings) is not None
    engine = visualize(cnn, Target.channel("relu2", 1), settings)
    assert np.abs(grey(out / "relu2" / "channel_1.png")[::10, ::10] - engine.images[0, 0].numpy()).max() <= 1 / 255

    again = run_json(capsys, argv)  # every image from the cache now
    assert all(entry["cached"] for layer in again["layers"] for entry in layer["channels"])
    assert [layer["channels"] for layer in again["layers"]] == [
        [{**entry, "cached": True} for entry in layer["channels"]] for layer in body["layers"]]


def test_features_overview_of_the_layers_named(env, capsys):
    out = env / "named"
    body = run_json(capsys, ["features-overview", "--layers", "fc2", "--channels", "12", "--steps", "2", "--out",
                             str(out), "--no-cache", "--json"])
    assert body["cache"] is None and not (env / "data" / "features").exists()
    (layer,) = body["layers"]
    assert layer["folder"] == "fc2" and [entry["channel"] for entry in layer["channels"]] == list(range(10))
    assert sorted(p.name for p in (out / "fc2").glob("*.png")) == sorted(f"channel_{c}.png" for c in range(10))
    engine = visualize(load_model("mnist_cnn").adapter, Target.channel("fc2", 3), VisualizationSettings(steps=2))
    assert layer["channels"][3]["values"] == pytest.approx(engine.values, rel=1e-5)


@pytest.mark.parametrize("options, message", [
    (["--layers", "relu1,nope"], "unknown layer 'nope'"),
    (["--model", "mnist_mlp"], "mnist_mlp has no spatial map that gets downsampled: name the layers with --layers"),
])
def test_features_overview_says_what_is_wrong(env, capsys, options, message):
    assert main(["features-overview", *options, "--steps", "2", "--out", str(env / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"convscope: error: {message}")
    assert not (env / "out").exists()


@pytest.mark.parametrize("name, layers", [
    ("mnist_cnn", ["relu1", "relu2"]),
    ("vgg16", ["features.3", "features.8", "features.15", "features.22", "features.29"]),
    # a stage's output, not the next block's inner map that its strided conv reads
    ("resnet50", ["relu", "layer1.2.relu:3", "layer2.3.relu:3", "layer3.5.relu:3", "layer4.2.relu:3"]),
    ("mnist_mlp", []),
])
def test_stage_layers_end_each_resolution(name, layers):
    spec = get_spec(name)
    assert stage_layers(spec.adapter(spec.build()).graph) == layers  # the architecture alone: no weights
