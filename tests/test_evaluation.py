"""Evaluation of any model on labelled images: figures worked out by hand on a tiny model, folders and CSVs, class
names mapped onto a model's classes, bad folders, and the CLI."""

import json
import math
import zlib

import pytest
import torch
from PIL import Image
from torch import nn

from conftest import png_with_chunk
from convscope.cli.main import main
from convscope.data.labelled import image_folder, labelled_csv, map_onto
from convscope.errors import DataError
from convscope.evaluation import FileSet, evaluate_model
from convscope.models.adapter import ModelAdapter
from convscope.models.imagenet import imagenet_aliases, imagenet_categories


class Brightness(nn.Module):
    """Logits (2 - 4m, 0, 4m - 2) for an image of mean brightness m: a black image scores (2, 0, -2), a white one
    (-2, 0, 2)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(1, 3)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-4.0], [0.0], [4.0]]))
            self.head.bias.copy_(torch.tensor([2.0, 0.0, -2.0]))

    def forward(self, x):
        return self.head(self.pool(x).flatten(1))


def tiny_model() -> ModelAdapter:
    return ModelAdapter(Brightness(), ["a", "b", "c"], {"name": "resize", "size": 8, "channels": 1}, name="tiny")


def write_image(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (12, 10), value).save(path)


@pytest.fixture
def folder(tmp_path):
    """a: two black images and an unreadable file; b: one white; c: one white, one black. The model calls black a
    and white c: right, right, wrong (b as c), right, wrong (c as a)."""
    root = tmp_path / "images"
    write_image(root / "a" / "1.png", 0)
    write_image(root / "a" / "nested" / "2.png", 0)
    (root / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    # a zTXt chunk that inflates to 20 MB: skipped as corrupt, never fatal
    (root / "b" / "bomb.png").parent.mkdir(parents=True, exist_ok=True)
    (root / "b" / "bomb.png").write_bytes(png_with_chunk(b"zTXt", b"c\x00\x00" + zlib.compress(b"a" * 20_000_000)))
    write_image(root / "b" / "3.png", 255)
    write_image(root / "c" / "4.png", 255)
    write_image(root / "c" / "5.png", 0)
    (root / "c" / "notes.txt").write_text("not an image, ignored")
    return root


def test_metrics_of_a_folder_worked_out_by_hand(folder):
    report = evaluate_model(tiny_model(), FileSet(image_folder(folder)), batch_size=2)
    m = report.metrics
    z = math.exp(2) + 1 + math.exp(-2)
    sure, unsure, none = math.exp(2) / z, 1 / z, math.exp(-2) / z  # a black image: p = (sure, unsure, none)
    assert m.count == 5 and m.accuracy == pytest.approx(3 / 5) and m.top5_accuracy == 1.0
    assert m.confusion == [[2, 0, 0], [0, 0, 1], [1, 0, 1]]
    assert m.precision == pytest.approx([2 / 3, 0, 1 / 2]) and m.recall == pytest.approx([1, 0, 1 / 2])
    assert m.f1 == pytest.approx([0.8, 0, 0.5]) and m.support == [2, 1, 2]
    # cross-entropy: three right answers at p = sure; b's white image gives b 1/z; c's black image gives c e^-2/z
    assert m.loss == pytest.approx(-(3 * math.log(sure) + math.log(unsure) + math.log(none)) / 5)
    # every prediction has confidence `sure`; 3 of 5 are right
    assert m.ece == pytest.approx(abs(3 / 5 - sure))
    # squared error against one-hot: a right answer (1 - sure)² + unsure² + none²; b's white image has p = (none,
    # unsure, sure) against (0, 1, 0); c's black image p = (sure, unsure, none) against (0, 0, 1)
    right = (1 - sure) ** 2 + unsure ** 2 + none ** 2
    b_wrong = none ** 2 + (1 - unsure) ** 2 + sure ** 2
    c_wrong = sure ** 2 + unsure ** 2 + (1 - none) ** 2
    residual = 3 * right + b_wrong + c_wrong
    assert m.mse == pytest.approx(residual / 15)
    # one-hot columns about their means: a 2 of 5 (2 * 0.6² + 3 * 0.4² = 1.2), b 1 of 5 (0.8), c 2 of 5 (1.2)
    assert m.r2 == pytest.approx(1 - residual / 3.2)

    assert [(e["source"].split("/")[-1], e["label"], e["predicted"]) for e in report.misclassified] == [
        ("3.png", "b", "c"), ("5.png", "c", "a")]  # equally confident: in file order
    assert report.misclassified[0]["label_probability"] == pytest.approx(unsure, abs=1e-6)
    assert [s["file"].split("/")[-1] for s in report.skipped] == ["broken.jpg", "bomb.png"]
    assert report.skipped[1]["reason"].startswith("corrupt image")
    assert report.dataset == {"kind": "folder", "source": str(folder), "count": 7, "classes": {"a": 3, "b": 2, "c": 2},
                              "skipped": 2}


def test_a_csv_gives_the_same_figures_as_the_folder(folder, tmp_path):
    rows = ["file,label", "a/1.png,a", "a/nested/2.png,a", "b/3.png,b", "c/4.png,c", "c/5.png,c", "gone.png,a"]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    data = labelled_csv(folder / "labels.csv")
    assert data.class_names == ["a", "b", "c"] and data.skipped == [{"file": str(folder / "gone.png"),
                                                                      "reason": "no such file"}]
    from_csv = evaluate_model(tiny_model(), FileSet(data)).metrics
    from_folder = evaluate_model(tiny_model(), FileSet(image_folder(folder))).metrics
    assert from_csv == from_folder


def test_class_names_map_onto_the_model_by_name_case_or_wordnet_id(tmp_path):
    assert imagenet_aliases()["man eater"] == imagenet_aliases()["n01484850"] == 2  # "man-eater": a great white
    for name in ("tabby", "n02124075", "Tiger_Cat", "tabby cat"):  # tabby, Egyptian cat (by id), tiger cat, tabby
        write_image(tmp_path / name / "x.png", 128)
    categories = imagenet_categories()
    mapped = map_onto(image_folder(tmp_path), categories, imagenet_aliases())
    # sorted folder names: Tiger_Cat, n02124075, tabby, tabby cat
    assert [categories[i] for i in mapped.labels] == ["tiger cat", "Egyptian cat", "tabby", "tabby"]
    without_aliases = ["tabby", "tiger cat", "Egyptian cat"]
    with pytest.raises(DataError, match=r"2 class\(es\) of .* are not classes of the model: n02124075, tabby cat\. "):
        map_onto(image_folder(tmp_path), without_aliases)


def test_bad_folders_get_clear_messages(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        image_folder(tmp_path / "missing")
    write_image(tmp_path / "only" / "cat" / "1.png", 0)
    write_image(tmp_path / "only" / "loose.png", 0)
    with pytest.raises(DataError, match="1 class sub-folder\\(s\\) and needs at least 2.*1 image\\(s\\) lie directly"):
        image_folder(tmp_path / "only")
    (tmp_path / "only" / "dog").mkdir()
    (tmp_path / "only" / "dog" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images .* in the class folder\\(s\\) dog"):
        image_folder(tmp_path / "only")
    (tmp_path / "bad.csv").write_text("file,label\nonly-a-file\n")
    with pytest.raises(DataError, match="row 1: expected file,label"):
        labelled_csv(tmp_path / "bad.csv")


def test_nothing_readable_is_an_error_not_a_score(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="none of the 2 images could be read"):
        evaluate_model(tiny_model(), FileSet(image_folder(tmp_path)))


def test_cli_evaluates_an_imagenet_model_on_a_folder(tmp_path, capsys):
    from convscope.data.photos import get_photo
    root = tmp_path / "photos"
    (root / "espresso").mkdir(parents=True)
    (root / "n02123045").mkdir()  # tabby, by WordNet id
    (root / "espresso" / "coffee.png").write_bytes(get_photo("coffee").path.read_bytes())
    (root / "n02123045" / "chelsea.png").write_bytes(get_photo("chelsea").path.read_bytes())
    assert main(["evaluate", "--model", "efficientnet_lite0", "--folder", str(root), "--json",
                 "--out", str(tmp_path / "report.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((tmp_path / "report.json").read_text())
    m = report["metrics"]
    # espresso is right at .957; chelsea is taken for a tiger cat (.379) over tabby (.168), the reference figures
    assert m["count"] == 2 and m["accuracy"] == 0.5 and m["top5_accuracy"] == 1.0
    assert m["loss"] == pytest.approx(-(math.log(0.957) + math.log(0.168)) / 2, abs=0.01)
    assert report["misclassified"][0]["predicted"] == "tiger cat" and report["misclassified"][0]["label"] == "tabby"
    assert main(["evaluate", "--model", "efficientnet_lite0"]) == 2
    assert "does not read MNIST digits: give --folder" in capsys.readouterr().err


@pytest.mark.mnist
def test_cli_text_report_on_mnist(real_mnist, monkeypatch, capsys):
    monkeypatch.setenv("CONVSCOPE_MNIST_DIR", str(real_mnist.mnist_dir))
    assert main(["evaluate", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mnist_cnn on MNIST test: 10,000 images\n  top-1 accuracy 0.99")
    assert "confusion (rows: true class, columns: predicted)" in out and "most confident mistakes" in out
