import json
import os

import pytest
import safetensors.torch
import torch

from convscope.errors import ModelError
from convscope.models import (MODELS, LayerKind, get_spec, load_checkpoint, load_model, read_metadata,
                              save_checkpoint)


def test_mnist_cnn_architecture():
    model = get_spec("mnist_cnn").build()
    assert sum(p.numel() for p in model.parameters()) == 225_034
    graph = get_spec("mnist_cnn").adapter(model).graph
    infos = graph.taps
    assert graph.traced and graph.output == "softmax" and graph.logits == "fc2"
    assert graph.default_cam_layer() == "relu2"
    assert [tap.parents for tap in infos] == [("input",)] + [(tap.name,) for tap in infos[:-1]]
    assert [(i.name, i.kind.value, i.output_shape) for i in infos] == [
        ("conv1", "conv", (32, 26, 26)), ("relu1", "relu", (32, 26, 26)), ("pool1", "pool", (32, 13, 13)),
        ("conv2", "conv", (64, 11, 11)), ("relu2", "relu", (64, 11, 11)), ("pool2", "pool", (64, 5, 5)),
        ("flatten", "flatten", (1600,)), ("fc1", "linear", (128,)), ("relu3", "relu", (128,)),
        ("fc2", "linear", (10,)), ("softmax", "softmax", (10,)),
    ]
    by_name = {i.name: i for i in infos}
    assert by_name["conv1"].parameters == 32 * 9 + 32
    assert by_name["conv1"].macs == 26 * 26 * 32 * 9  # one 3x3 dot product per output cell
    assert by_name["conv2"].macs == 11 * 11 * 64 * 32 * 9
    assert by_name["fc1"].macs == 1600 * 128


def test_mnist_mlp_architecture():
    model = get_spec("mnist_mlp").build()
    assert sum(p.numel() for p in model.parameters()) == 784 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10
    graph = get_spec("mnist_mlp").adapter(model).graph
    assert [tap.kind.value for tap in graph.taps] == [
        "flatten", "linear", "sigmoid", "linear", "sigmoid", "linear", "softmax"]
    assert graph.default_cam_layer() is None and graph.logits == "fc3"


def test_forward_gives_probabilities_and_logits_agree():
    model = get_spec("mnist_cnn").build().eval()
    x = torch.rand(3, 1, 28, 28)
    probabilities = model(x)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(3))
    torch.testing.assert_close(torch.softmax(model.logits(x), 1), probabilities)


def test_unknown_model():
    with pytest.raises(ModelError, match="unknown model 'vgg99'; known models: mnist_cnn, mnist_mlp, vgg16, vgg19"):
        get_spec("vgg99")


def test_checkpoint_round_trip_keeps_weights_and_metadata(tmp_path):
    model = get_spec("mnist_mlp").build()
    path = save_checkpoint(tmp_path / "m.safetensors", model, "mnist_mlp", {"history": [{"epoch": 1}]})
    loaded = load_checkpoint(path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
    assert loaded.metadata["history"] == [{"epoch": 1}]
    assert loaded.metadata["model"] == "mnist_mlp" and loaded.metadata["parameters"] == 26_506
    architecture = loaded.metadata["architecture"]
    assert architecture["input_shape"] == [1, 28, 28] and architecture["class_names"][9] == "9"
    assert [layer["kind"] for layer in architecture["layers"]][:3] == ["flatten", "linear", "sigmoid"]
    assert read_metadata(path)["format"] == 1


def test_a_crash_mid_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.safetensors", get_spec("mnist_mlp").build(), "mnist_mlp", {"run": 1})
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, get_spec("mnist_mlp").build(), "mnist_mlp", {"run": 2})
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was removed


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ModelError, match="not a readable safetensors checkpoint"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ModelError, match="not a convscope checkpoint"):
        load_checkpoint(foreign)
    mismatched = tmp_path / "mismatched.safetensors"
    header = {"format": 1, "model": "mnist_cnn"}
    safetensors.torch.save_file(get_spec("mnist_mlp").build().state_dict(), str(mismatched),
                                metadata={"convscope": json.dumps(header)})
    with pytest.raises(ModelError, match="does not match the mnist_cnn architecture"):
        load_checkpoint(mismatched)
    with pytest.raises(ModelError, match="holds a mnist_mlp model, not mnist_cnn"):
        load_model("mnist_cnn", checkpoint=save_checkpoint(tmp_path / "mlp.safetensors",
                                                           get_spec("mnist_mlp").build(), "mnist_mlp"))


@pytest.mark.parametrize("name, minimum", [("mnist_cnn", 0.992), ("mnist_mlp", 0.96)])
def test_packaged_weights_carry_their_provenance(name, minimum):
    checkpoint = load_model(name)
    meta = checkpoint.metadata
    assert meta["test_metrics"]["accuracy"] >= minimum
    assert meta["architecture"]["layers"][-1]["kind"] == "softmax"
    assert meta["training"]["command"].startswith(f"convscope train --model {name}")
    assert meta["training"]["config"]["model"] == name
    assert len(meta["history"]) >= 1 and meta["data"]["train_sha256"]
    assert not checkpoint.model.training


@pytest.mark.slow
def test_every_registered_model_builds_and_describes_itself():
    for spec in MODELS.values():
        graph = spec.adapter(spec.build()).graph
        scores = graph.logits or graph.output
        assert graph[scores].output_shape == (len(spec.class_names),)
        if spec.dataset == "mnist":
            assert graph[graph.output].kind is LayerKind.SOFTMAX and graph.logits is not None
