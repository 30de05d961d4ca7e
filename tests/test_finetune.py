"""Fine-tuning on a folder of images: the split, the head and blocks, a real run that learns generated shapes, the
saved model used like any other, and bad folders."""

import json

import pytest
import torch
from PIL import Image

from conftest import SHAPES, write_shapes
from convscope.cli.main import main
from convscope.data.labelled import image_folder
from convscope.errors import ConvscopeError, DataError, ModelError
from convscope.evaluation import FileSet, evaluate_model
from convscope.inspect import Inspector
from convscope.models import get_spec, load_checkpoint, load_model, read_metadata
from convscope.models.finetuned import blocks, classifier_head
from convscope.training.finetuning import FineTuneConfig, finetune, stratified_split


pytestmark = pytest.mark.usefixtures("restore_registry")  # tests here register models by name


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("shapes"), per_class=20)


def test_the_split_is_stratified_and_keeps_a_training_image_per_class():
    labels = [0] * 10 + [1] * 3 + [2] * 1
    train, validation = stratified_split(labels, 0.2, torch.Generator().manual_seed(0))
    assert sorted(train + validation) == list(range(14))
    held_out = [labels[i] for i in validation]
    # class 0: 2 of 10; class 1: round(0.6) = 1; class 2: its only image trains
    assert (held_out.count(0), held_out.count(1), held_out.count(2)) == (2, 1, 0)
    assert stratified_split(labels, 0.2, torch.Generator().manual_seed(0)) == (train, validation)


def test_the_head_and_blocks_of_known_architectures():
    resnet = get_spec("resnet50").build()
    head, layer = classifier_head(resnet)
    assert (head, layer.in_features) == ("fc", 2048)
    found = blocks(resnet, head)
    assert len(found) == 1 + 3 + 4 + 6 + 3  # the stem (conv1 with bn1), then 16 bottlenecks
    assert found[0] == ["conv1.weight", "bn1.weight", "bn1.bias"]
    assert all(name.startswith("layer4.2.") for name in found[-1])
    cnn = get_spec("mnist_cnn").build()
    assert classifier_head(cnn)[0] == "fc2"
    assert [b[0] for b in blocks(cnn, "fc2")] == ["conv1.weight", "conv2.weight", "fc1.weight"]


@pytest.mark.slow
def test_a_frozen_backbone_learns_generated_shapes_and_the_result_is_a_model_like_any_other(shapes, tmp_path):
    events = []
    out = tmp_path / "shapes.safetensors"
    result = finetune(shapes, FineTuneConfig(name="shapes", epochs=30), out=out, on_event=events.append)
    # Stated: EfficientNet-Lite0's ImageNet features tell dark circles, squares and triangles apart at >= 90% on
    # the 12 held-out images (measured: 100%, 11/12 by epoch 3).
    assert result.validation_metrics.accuracy >= 0.9 and result.validation_metrics.count == 12
    assert [e.type for e in events][-1] == "finished" and "preparing" in [e.type for e in events]
    features = [e for e in events if e.type == "preparing" and e.stage == "features"]
    assert features[-1].done == features[-1].total == 12 + 3 * 48  # validation once, training with 2 views more

    saved = load_checkpoint(out)
    assert saved.spec.name == "shapes" and saved.adapter.class_names == SHAPES
    meta = read_metadata(out)
    assert meta["finetuned"] == {"base": "efficientnet_lite0", "head": "_fc", "in_features": 1280,
                                 "class_names": list(SHAPES)}
    assert meta["architecture"]["preprocessing"]["name"] == "imagenet"
    assert meta["training"]["best_epoch"] == result.best_epoch and len(meta["history"]) == len(result.history)
    assert meta["validation_metrics"]["accuracy"] == result.validation_metrics.accuracy
    # the same predictions from the saved file as from the model in memory; CAMs and evaluation work on it
    x, _ = saved.adapter.preprocessing.prepare(Image.open(shapes / "square" / "0.png"))
    with torch.no_grad():
        torch.testing.assert_close(saved.adapter.logits(x[None]), result.checkpoint.adapter.logits(x[None]))
    inspection = Inspector(saved.adapter).inspect(x)
    assert inspection.cam is not None and inspection.cam.shape == (224, 224)
    report = evaluate_model(saved.adapter, FileSet(image_folder(shapes)))
    assert report.metrics.accuracy >= 0.9 and report.metrics.count == 60


@pytest.mark.slow
def test_training_the_last_block_changes_only_it_and_the_head(tmp_path):
    root = write_shapes(tmp_path / "small", per_class=6, size=28)
    before = {k: v.clone() for k, v in load_model("mnist_cnn").model.state_dict().items()}
    result = finetune(root, FineTuneConfig(base="mnist_cnn", name="digits-shapes", train_blocks=1, epochs=2,
                                           batch_size=8))
    after = result.checkpoint.model.state_dict()
    assert torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert torch.equal(after["conv2.weight"], before["conv2.weight"])
    assert not torch.equal(after["fc1.weight"], before["fc1.weight"])  # the last block learned
    assert after["fc2.weight"].shape == (3, 128)
    with pytest.raises(ConvscopeError, match="mnist_cnn has 3 blocks before its head"):
        finetune(root, FineTuneConfig(base="mnist_cnn", name="x", train_blocks=4))


def test_bad_folders_and_names_are_refused_with_clear_messages(tmp_path):
    write_shapes(tmp_path / "one", per_class=2)
    for shape in SHAPES[1:]:
        for file in (tmp_path / "one" / shape).iterdir():
            file.unlink()
        (tmp_path / "one" / shape).rmdir()
    with pytest.raises(DataError, match="1 class sub-folder\\(s\\) and needs at least 2"):
        finetune(tmp_path / "one", FineTuneConfig(base="mnist_cnn", name="x"))
    root = write_shapes(tmp_path / "broken", per_class=2, size=28)
    for file in (root / "square").iterdir():
        file.write_bytes(b"not a png")
    with pytest.raises(DataError, match="no readable image in the class folder\\(s\\) square \\(2 file\\(s\\) could"):
        finetune(root, FineTuneConfig(base="mnist_cnn", name="x"))
    with pytest.raises(ModelError, match="'vgg16' is already a model's name"):
        finetune(write_shapes(tmp_path / "fine", per_class=2, size=28), FineTuneConfig(base="mnist_cnn",
                                                                                       name="vgg16"))


def test_cli_finetune_skips_unreadable_images_and_says_where_the_model_is(tmp_path, capsys):
    root = write_shapes(tmp_path / "set", per_class=4, size=28)
    (root / "circle" / "broken.png").write_bytes(b"nope")
    out = tmp_path / "m.safetensors"
    assert main(["finetune", str(root), "--model", "mnist_cnn", "--epochs", "2", "--out", str(out), "--json",
                 "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "set" and summary["classes"] == list(SHAPES) and summary["checkpoint"] == str(out)
    assert [s["file"] for s in summary["skipped"]] == [str(root / "circle" / "broken.png")]
    assert len(summary["history"]) == summary["epochs"] == 2
    assert main(["predict", str(root / "square" / "0.png"), "--checkpoint", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "set"


def test_a_fine_tuning_run_writes_a_tensorboard_log(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    root = write_shapes(tmp_path / "set", per_class=4, size=28)
    result = finetune(root, FineTuneConfig(base="mnist_cnn", name="logged", epochs=3, patience=10,
                                           tensorboard_dir=str(tmp_path / "log")))
    events = EventAccumulator(str(tmp_path / "log"), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    events.Reload()
    validation = [s.value for s in events.Scalars("loss/validation")]
    assert validation == pytest.approx([e["val_loss"] for e in result.history])
    assert "gradients/network.fc2.weight" in events.Tags()["histograms"]  # the new head learns (the network as
    # the log runs it: pixels in [0, 1] normalised first, so that feature maps are the real ones)
    # the frozen backbone does not change: no histograms of it, and its feature maps once
    assert not any("conv1" in tag for tag in events.Tags()["histograms"])
    maps = [tag for tag in events.Tags()["images"] if tag.startswith("feature_maps/")]
    assert maps and all(len(events.Images(tag)) == 1 for tag in maps)
