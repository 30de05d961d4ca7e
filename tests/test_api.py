"""The top of the Python API: `import convscope` is light and gives the main entry points; `convscope.explain`
takes a model in any form; a checkpoint knows its own model."""

import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import convscope
from convscope.errors import DataError, ModelError
from convscope.inspect import InputWarning, Inspector
from convscope.models import get_spec, save_checkpoint
from convscope.predict import predict_logits

from conftest import synthetic_split


def test_import_convscope_is_light_and_names_the_entry_points():
    code = ("import sys, convscope; assert 'torch' not in sys.modules; "
            "print(sorted(n for n in convscope.__all__ if not n.startswith('_')))")
    names = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for name in ("explain", "load_model", "wrap", "Inspector", "train", "TrainConfig", "ProgressBar", "finetune",
                 "evaluate_model", "labelled_set_for", "sample_digit"):
        assert f"'{name}'" in names
        assert getattr(convscope, name) is not None
    assert "'inspect'" not in names and "'display'" not in names  # a star-import must not shadow them
    assert convscope.plot.show is not None and convscope.inspect.Inspector is convscope.Inspector
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        convscope.nothing  # noqa: B018


def test_explain_takes_a_model_in_any_form():
    digit = torch.zeros(28, 28, dtype=torch.uint8)
    digit[5:23, 12:16] = 255
    checkpoint = convscope.load_model("mnist_cnn")
    expected = Inspector(checkpoint.adapter).inspect(digit)
    for model in ("mnist_cnn", checkpoint, checkpoint.adapter):
        torch.testing.assert_close(convscope.explain(model, digit).probabilities, expected.probabilities)
    bare = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    result = convscope.explain(bare, torch.rand(3, 224, 224))  # wrapped: classes 0-2, 224x224 RGB
    assert result.class_names == ("0", "1", "2") and result.cam_layer == "1"
    with pytest.raises(TypeError, match="expected a model name, a Checkpoint, a training run"):
        convscope.explain(42, digit)


def test_a_checkpoint_knows_its_own_model(tmp_path):
    spec = get_spec("mnist_mlp")
    module = spec.build()
    path = save_checkpoint(tmp_path / "mlp.safetensors", module, "mnist_mlp")
    loaded = convscope.load_model(checkpoint=path)
    assert loaded.spec.name == "mnist_mlp"
    torch.testing.assert_close(loaded.model.state_dict()["fc1.weight"], module.state_dict()["fc1.weight"])
    with pytest.raises(ModelError, match="holds a mnist_mlp model, not mnist_cnn"):
        convscope.load_model("mnist_cnn", checkpoint=path)


def test_a_training_run_is_a_model_to_inspect_and_evaluate():
    run = convscope.train(convscope.TrainConfig(epochs=0.2, batch_size=32, evaluate_test=False),
                          train_data=synthetic_split(320, seed=0))
    digit = synthetic_split(1, seed=5).images[0]
    result = convscope.explain(run, digit)
    torch.testing.assert_close(result.logits, predict_logits(run.model, digit[None])[0], atol=1e-4, rtol=1e-4)


def test_an_mnist_split_is_a_labelled_set_for_a_digit_model_only():
    with pytest.raises(DataError, match=r"MNIST digits are \(1, 28, 28\); efficientnet_lite0 takes \(3, 224, 224\)"):
        convscope.labelled_set_for(convscope.load_model("efficientnet_lite0").adapter, split="test")
    with pytest.raises(DataError, match="give one of a folder, a CSV file or an MNIST split"):
        convscope.labelled_set_for(convscope.load_model("mnist_cnn").adapter, folder="x", split="test")


def test_an_answer_the_model_cannot_stand_behind_is_a_warning():
    scribble = torch.zeros(28, 28)
    scribble[2:26, 2:26] = 1.0  # a filled square: far more ink than any digit
    with pytest.warns(InputWarning, match="the model's answer deserves no trust: the ink covers"):
        convscope.explain("mnist_cnn", scribble)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Inspector(convscope.load_model("mnist_cnn").adapter).inspect_prepared(scribble)  # the server's path: quiet


def test_explain_keeps_no_model_the_caller_let_go_of():
    import gc
    import weakref
    checkpoint = convscope.load_model("mnist_mlp")
    convscope.explain(checkpoint, torch.zeros(28, 28, dtype=torch.uint8) + 0)
    module = weakref.ref(checkpoint.model)
    del checkpoint
    gc.collect()
    assert module() is None


def test_a_fine_tuning_result_and_a_run_are_models_and_a_checkpoint_takes_no_weights(tmp_path):
    run = convscope.train(convscope.TrainConfig(epochs=0.1, batch_size=32, evaluate_test=False),
                          train_data=synthetic_split(320, seed=0))
    assert run.adapter is run.adapter  # traced once
    assert run.history[-1]["epochs"] == pytest.approx(0.1, abs=0.02)  # where the run ended, not epoch 1
    with pytest.raises(ModelError, match="give a checkpoint or pretrained weights, not both"):
        convscope.load_model(checkpoint=tmp_path / "x.safetensors", weights="IMAGENET1K_V1")
