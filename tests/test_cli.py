"""Every CLI command, run in-process through ``main`` (and once as a real subprocess)."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import serve_real_mnist, write_mnist_dir
from convscope.cli.launch import fast_allocator
from convscope.cli.main import main
from convscope.data.mnist import load_mnist
from convscope.evaluation import MnistSet, evaluate_model
from convscope.inspect import attribute
from convscope.inspect.attribution import cascading_randomisation, data_randomisation, deletion_insertion
from convscope.models import load_checkpoint, load_model, read_metadata
from convscope.settings import Settings


@pytest.fixture
def env(tmp_path, monkeypatch):
    """CLI environment: synthetic MNIST, data directory in tmp."""
    monkeypatch.setenv("CONVSCOPE_MNIST_DIR", str(write_mnist_dir(tmp_path / "mnist")))
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def drawn_one(path, size=280):
    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).line([(140, 30), (140, 250)], fill="black", width=12)
    image.save(path)
    return path


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_models_lists_the_registry(capsys):
    rows = run_json(capsys, ["models", "--json"])
    by_name = {r["name"]: r for r in rows}
    assert by_name["mnist_cnn"]["parameters"] == 225_034 and by_name["mnist_cnn"]["accuracy"] >= 0.992
    assert by_name["efficientnet_lite0"]["ready"] and by_name["efficientnet_lite0"]["parameters"] == 4_652_008
    assert by_name["vgg16"]["weights"][0]["url"] == "https://download.pytorch.org/models/vgg16-397923af.pth"
    assert by_name["mnist_mlp"]["layers"][1] == {
        "name": "fc1", "kind": "linear", "op": "Linear", "output_shape": [32], "parents": ["flatten"], "module": "fc1",
        "call": 1, "parameters": 784 * 32 + 32, "macs": 784 * 32, "flops": 2 * 784 * 32}
    assert main(["models"]) == 0
    assert "mnist_cnn              225,034 parameters  99.48% test accuracy; ready" in capsys.readouterr().out


def test_predict_reads_a_drawn_one(tmp_path, capsys):
    body = run_json(capsys, ["predict", str(drawn_one(tmp_path / "one.png")), "--top-k", "2", "--json"])
    assert body["predicted"] == "1" and body["predicted_index"] == 1 and len(body["top"]) == 2
    assert body["top"][0]["class"] == "1" and body["top"][0]["index"] == 1 and body["top"][0]["probability"] > 0.9
    assert main(["predict", str(tmp_path / "one.png"), "--model", "mnist_mlp"]) == 0
    assert capsys.readouterr().out.startswith("1  ")


def test_predict_json_gives_the_class_name_and_index_apart(capsys):
    """MNIST's class names look like their indices; ImageNet's do not."""
    body = run_json(capsys, ["predict", "--photo", "coffee", "--model", "efficientnet_lite0", "--top-k", "2",
                             "--json"])
    assert (body["predicted"], body["predicted_index"]) == ("espresso", 967)
    assert body["top"][0] == {"class": "espresso", "index": 967, "probability": body["top"][0]["probability"]}
    assert all(type(entry["index"]) is int and type(entry["class"]) is str for entry in body["top"])


@pytest.mark.parametrize("value, message", [("0", "must be 1 or more, got 0"), ("-1", "must be 1 or more, got -1"),
                                            ("two", "expected a whole number, got 'two'")])
def test_top_k_must_be_positive(tmp_path, capsys, value, message):
    assert main(["predict", str(drawn_one(tmp_path / "one.png")), "--top-k", value]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"convscope: error: argument --top-k: {message} (see `convscope predict --help`)\n")


def test_explain_writes_every_view(tmp_path, capsys):
    out = tmp_path / "out"
    body = run_json(capsys, ["explain", str(drawn_one(tmp_path / "one.png")), "--out", str(out), "--json",
                             "--method", "hirescam"])
    files = body["files"]
    expected = {"input", "preprocessed", "cam_hirescam_relu2", "saliency", "features_conv1", "features_relu1",
                "features_pool1", "features_conv2", "features_relu2", "features_pool2", "units_fc1", "units_relu3",
                "units_fc2", "units_softmax", "filters_conv1", "filters_conv2"}
    assert set(files) == expected
    for name in files.values():
        with Image.open(out / name) as image:
            assert image.format == "PNG"
    with Image.open(out / files["preprocessed"]) as image:
        assert image.size == (280, 280)
    with Image.open(out / files["units_fc1"]) as image:  # 128 units as 8 rows of 16 cells of 24 px
        assert image.size == (16 * 24, 8 * 24)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predicted"] == "1" and summary["cam_layer"] == "relu2"
    assert sum(summary["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_explain_an_mnist_sample(env, capsys):
    body = run_json(capsys, ["explain", "--sample", "3", "--seed", "1", "--out", str(env / "s"), "--json"])
    assert body["source"]["label"] == 3 and body["source"]["mnist_split"] == "test"
    assert (env / "s" / "input.png").exists()


def test_evaluate(env, capsys):
    body = run_json(capsys, ["evaluate", "--json"])
    metrics = body["metrics"]
    engine = evaluate_model(load_model("mnist_cnn").adapter,
                            MnistSet(load_mnist("test", Settings(mnist_dir=env / "mnist")), "test"),
                            misclassified_limit=20).as_dict()  # the default --misclassified
    assert metrics["count"] == 100 and metrics["confusion"] == engine["metrics"]["confusion"]
    right = sum(metrics["confusion"][i][i] for i in range(10))
    assert metrics["accuracy"] == engine["metrics"]["accuracy"] == right / 100
    assert body["dataset"] == {"kind": "mnist", "source": "MNIST test", "count": 100, "skipped": 0}
    assert [e["source"] for e in body["misclassified"]] == [e["source"] for e in engine["misclassified"]]
    assert len(body["misclassified"]) == min(20, round(100 * (1 - metrics["accuracy"])))
    assert main(["evaluate", "--model", "mnist_mlp"]) == 0
    assert "class  precision  recall      F1  images" in capsys.readouterr().out


def test_train_json_summary_and_checkpoint(env, capsys):
    out = env / "run.safetensors"
    assert main(["train", "--epochs", "1", "--batch-size", "32", "--seed", "3", "--out", str(out), "--json",
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    body = json.loads(captured.out)
    assert captured.err.endswith(f"saved the model to {out}\n")  # stdout stays one JSON document
    assert body["status"] == "completed" and body["steps"] == 6 and body["wall_s"] > 0
    assert body["checkpoint"] == str(out)
    meta = read_metadata(out)
    assert body["test_accuracy"] == meta["test_metrics"]["accuracy"]
    assert meta["training"]["command"].startswith("convscope train --epochs 1")
    assert meta["training"]["config"]["seed"] == 3
    body = run_json(capsys, ["evaluate", "--checkpoint", str(out), "--json"])
    assert body["metrics"]["accuracy"] == meta["test_metrics"]["accuracy"]


def test_train_says_where_it_saved_the_model(env, capsys):
    assert main(["train", "--epochs", "0.2", "--quiet", "--no-tensorboard"]) == 0
    out = capsys.readouterr().out
    path = Path(re.search(r"^saved the model to (.+)$", out, re.M)[1])
    assert path.parent == env / "data" / "models" and path.name.startswith("mnist_cnn-") and path.is_file()
    assert f"use it: convscope evaluate --checkpoint {path}" in out


def test_the_readme_train_and_evaluate_lines_work_as_written(env, monkeypatch, capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    train, evaluate = (shlex.split(re.search(rf"^convscope {command} --(?:out|checkpoint) run\.safetensors .*$",
                                             readme, re.M)[0].split("#")[0])[1:]
                       for command in ("train", "evaluate"))
    monkeypatch.chdir(env)
    assert main([*train, "--epochs", "0.2", "--quiet", "--no-tensorboard"]) == 0  # quick, or it would take minutes
    assert "saved the model to run.safetensors" in capsys.readouterr().out
    assert main(evaluate) == 0
    assert capsys.readouterr().out.startswith("mnist_cnn on MNIST test: 100 images")


def test_mnist_dir_option_wins_over_the_setting(env, capsys):
    """env's CONVSCOPE_MNIST_DIR holds 200 training and 100 test images; this folder 50 and 30."""
    other = write_mnist_dir(env / "other", train_count=50, test_count=30)
    body = run_json(capsys, ["evaluate", "--mnist-dir", str(other), "--json"])
    assert body["metrics"]["count"] == 30
    body = run_json(capsys, ["train", "--mnist-dir", str(other), "--epochs", "1", "--batch-size", "32", "--quiet",
                             "--no-tensorboard", "--out", str(env / "run.safetensors"), "--json"])
    assert body["steps"] == 2  # 45 images after the 10% held out
    assert main(["explain", "--index", "40", "--mnist-dir", str(other), "--out", str(env / "x")]) == 2
    assert "index 40 is outside the test split (0-29)" in capsys.readouterr().err


def test_data_download_from_a_mirror(http_root, tmp_path, monkeypatch, capsys):
    root, url = http_root
    serve_real_mnist(root)
    monkeypatch.setenv("CONVSCOPE_MNIST_MIRRORS", f"http://127.0.0.1:9/,{url}")
    assert main(["data", "download", "--dir", str(tmp_path / "m")]) == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(p.name for p in root.iterdir())


@pytest.fixture
def offline_data(tmp_path, monkeypatch):
    """No MNIST setting, a data directory in tmp, and a mirror where nothing answers: nothing is downloaded."""
    monkeypatch.delenv("CONVSCOPE_MNIST_DIR", raising=False)
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONVSCOPE_MNIST_MIRRORS", "http://127.0.0.1:9/")
    return tmp_path


def test_data_download_checks_the_mnist_dir_setting(offline_data, monkeypatch, capsys):
    folder = offline_data / "mine"
    folder.mkdir()
    serve_real_mnist(folder)  # links the real files in
    monkeypatch.setenv("CONVSCOPE_MNIST_DIR", str(folder))
    assert main(["data", "download"]) == 0
    assert capsys.readouterr().out == f"MNIST is in {folder} (all 4 files were there; checked by SHA-256)\n"
    assert not (offline_data / "data").exists()  # the cache was left alone

    monkeypatch.setenv("CONVSCOPE_MNIST_DIR", str(write_mnist_dir(offline_data / "synthetic")))
    assert main(["data", "download"]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz is not the official MNIST file" in err and err.count("\n") == 1
    assert main(["data", "download", "--mnist-dir", str(folder)]) == 0  # the option wins over the setting
    assert capsys.readouterr().out.startswith(f"MNIST is in {folder} ")


def test_data_download_fills_the_mnist_dir_setting(offline_data, http_root, monkeypatch, capsys):
    root, url = http_root
    serve_real_mnist(root)
    folder = offline_data / "empty"
    monkeypatch.setenv("CONVSCOPE_MNIST_DIR", str(folder))
    monkeypatch.setenv("CONVSCOPE_MNIST_MIRRORS", url)
    assert main(["data", "download"]) == 0
    assert capsys.readouterr().out == f"MNIST is in {folder} (downloaded 4 of the 4 files; checked by SHA-256)\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in root.iterdir())
    assert not (offline_data / "data").exists()


def command_helps(capsys, argv=()):
    """{argv: --help text} for `convscope` and every command and sub-command, found as a user would: in the list
    under COMMAND or SUBCOMMAND of the help above."""
    assert main([*argv, "--help"]) == 0
    text = capsys.readouterr().out
    helps = {tuple(argv): text}
    for name in re.findall(r"^    ([\w-]+)", text, re.M):  # the commands listed, indented under (SUB)COMMAND
        helps.update(command_helps(capsys, (*argv, name)))
    return helps


def option_entries(text):
    """(option line, whether help text follows it) for each option in a --help text."""
    lines = text.splitlines()
    return [(line, bool(re.match(r"  \S.*?\s{2,}\S", line)) or lines[i + 1:i + 2] != [] and
             lines[i + 1].startswith("   "))
            for i, line in enumerate(lines) if line.startswith("  -")]


# Options that commands share, built by one helper each, and the commands that must have them.
SHARED = {"--mnist-dir DIR": {"train", "evaluate", "explain", "data download"},
          "--model NAME": {"train", "finetune", "evaluate", "predict", "explain", "layers"},
          "--checkpoint FILE": {"evaluate", "predict", "explain", "layers"},
          "--model-file FILE.py:FACTORY": {"finetune", "evaluate", "predict", "explain", "layers", "serve"},
          "--weights FILE|NAME": {"finetune", "evaluate", "predict", "explain", "layers", "serve"},
          "--preprocessing NAME|JSON": {"finetune", "evaluate", "predict", "explain", "layers", "serve"}}


def test_every_option_has_help_and_says_its_default(capsys):
    helps = command_helps(capsys)
    assert {" ".join(argv) for argv in helps} >= {"", "train", "data", "data download", "weights", "weights fetch",
                                                  "serve", "tensorboard"}
    for argv, text in helps.items():
        entries = option_entries(text)
        assert entries and "(default: None)" not in text and "(default: False)" not in text, argv
        assert [line for line, has_help in entries if not has_help] == [], argv
    for option, commands in SHARED.items():
        having = {" ".join(argv) for argv, text in helps.items() if re.search(rf"^  {re.escape(option)}", text, re.M)}
        assert having >= commands, option
    # the real defaults, where they are values
    predict, train = (" ".join(helps[(command,)].split()) for command in ("predict", "train"))
    assert "--top-k K how many of the most probable classes to list (default: 3)" in predict
    assert "(default: 1.5)" in train and "(default: 0.005)" in train and "(default: mnist_cnn)" in train
    assert "--weight-decay WEIGHT_DECAY L2 penalty on the weights (default: 0.0)" in train
    assert "--seed SEED random seed (default: 0)" in train


def test_serve_help_gives_the_server_settings_defaults():
    """serve's help words the defaults itself (ServerSettings is slow to import): they must stay true."""
    from convscope.cli.serve import FLAGS
    from convscope.server.settings import ServerSettings

    for name, field in ServerSettings.model_fields.items():
        if name in FLAGS and isinstance(field.default, (str, int)):
            assert FLAGS[name][1].startswith(str(field.default)), name


@pytest.mark.parametrize("argv, message", [
    (["predict", "missing.png"], "missing.png: no such file"),
    (["predict", "{junk}"], "not an image in a format this reads"),
    (["predict", "{blank}"], "the drawing is empty"),
    (["explain", "--out", "x"], "give exactly one of IMAGE, --photo NAME, --sample DIGIT or --index N"),
    (["explain", "{one}", "--out", "{tmp}/x", "--layer", "fc1"], "a CAM needs a layer with a spatial (C, H, W) output"),
    (["evaluate", "--checkpoint", "{junk}"], "not a readable safetensors checkpoint"),
    (["train", "--epochs", "0"], "epochs must be > 0"),
    pytest.param(["train", "--device", "cuda:0"], "CUDA was asked for but is not available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    (["train", "--device", "tpu"], "unknown device 'tpu'"),
    (["explain", "{one}", "--out", "{tmp}/one.png/x"], "Not a directory"),
])
def test_user_mistakes_are_one_line_errors(env, tmp_path, capsys, argv, message):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    Image.new("RGB", (50, 50), "white").save(tmp_path / "blank.png")
    drawn_one(tmp_path / "one.png")
    argv = [a.format(junk=junk, blank=tmp_path / "blank.png", one=tmp_path / "one.png", tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_the_installed_command_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "convscope.cli.main", "predict", str(tmp_path / "nope.png")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"convscope: error: {tmp_path / 'nope.png'}: no such file"


def test_no_preprocess_feeds_the_image_as_framed(tmp_path, capsys):
    framed = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(framed).line([(14, 4), (14, 23)], fill=255, width=3)  # an MNIST-framed "1", light on dark
    framed.save(tmp_path / "framed.png")
    body = run_json(capsys, ["predict", str(tmp_path / "framed.png"), "--no-preprocess", "--json"])
    assert body["predicted"] == "1"


def test_serve_refuses_bad_settings_in_one_line(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert capsys.readouterr().err.strip() == (
        "convscope: error: invalid server settings: port: Input should be less than or equal to 65535")
    assert main(["serve", "--workers", "0"]) == 2


@pytest.mark.slow
def test_serve_open_opens_the_browser_at_the_served_url_once_it_answers(tmp_path):
    """`webbrowser` runs the command in BROWSER with the URL: here a script that writes down what it was given and
    whether the server answered by then."""
    import stat
    import time

    from convscope.testing.server import ServerProcess

    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"
    browser.write_text("import sys, urllib.request\n"
                       "status = urllib.request.urlopen(sys.argv[1] + 'api/health').status\n"
                       f"open({str(opened)!r}, 'w').write(f'{{sys.argv[1]}} {{status}}')\n")
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    env = {"BROWSER": f"{sys.executable} {browser} %s", "CONVSCOPE_WORKERS": "1"}
    with ServerProcess(tmp_path / "server", env=env, extra_args=("--open",)) as server:
        deadline = time.monotonic() + 60
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert opened.read_text() == f"{server.url}/ 200"


def test_the_allocator_to_preload(tmp_path):
    library = tmp_path / "libjemalloc.so.2"
    library.write_bytes(b"")
    assert fast_allocator({"CONVSCOPE_ALLOCATOR": "system"}) is None
    assert fast_allocator({"CONVSCOPE_ALLOCATOR": str(library)}) == str(library)
    assert fast_allocator({"CONVSCOPE_ALLOCATOR": str(library), "LD_PRELOAD": str(library)}) is None  # re-run once
    assert fast_allocator({"CONVSCOPE_ALLOCATOR": str(tmp_path / "missing.so")}) is None
    assert fast_allocator({"LD_PRELOAD": "/opt/lib/libtcmalloc.so.4"}) is None  # the user preloaded one already


@pytest.mark.slow  # fresh interpreters
@pytest.mark.skipif(fast_allocator({}) is None, reason="neither tcmalloc nor jemalloc is installed")
def test_the_command_runs_itself_under_the_fast_allocator():
    def version(**extra):
        env = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", "CONVSCOPE_ALLOCATOR")}
        return subprocess.run([sys.executable, "-m", "convscope", "--version"], env={**env, **extra},
                              capture_output=True, text=True, check=True).stdout
    library = os.path.realpath(fast_allocator({}))
    assert f"malloc: {library}" in version()
    assert "malloc: the system allocator; faster with tcmalloc: apt-get install" in version(
        CONVSCOPE_ALLOCATOR="system")


def test_explain_writes_attributions_side_by_side_and_every_tensor_as_npy_and_json(env, capsys):
    out = env / "attributions"
    body = run_json(capsys, ["explain", "--index", "0", "--out", str(out), "--attributions",
                             "integrated_gradients,guided_backprop", "--format", "png,npy,json", "--json"])
    x = torch.from_numpy(np.load(out / "input.npy"))
    model = load_model("mnist_cnn").adapter
    for name in ("integrated_gradients", "guided_backprop"):
        engine = attribute(model, x, name, int(body["target"]))
        saved = np.load(out / f"attribution_{name}.npy")
        assert saved.shape == (28, 28) and np.allclose(saved, engine.values.numpy(), atol=1e-6)
        summary = body["attributions"][name]
        assert summary["signed"] is True and summary["max"] == pytest.approx(float(engine.values.max()))
        assert Image.open(out / f"attribution_{name}.png").size == (280, 280)
    assert body["attributions"]["integrated_gradients"]["forward_passes"] == 50
    tensors = json.loads((out / "tensors.json").read_text())
    assert tensors["activation_conv1"]["shape"] == [32, 26, 26]
    assert np.allclose(np.array(tensors["activation_conv1"]["values"]), np.load(out / "activation_conv1.npy"))
    assert np.allclose(np.array(tensors["probabilities"]["values"]), [body["probabilities"][str(d)] for d in range(10)],
                       atol=1e-6)
    assert main(["explain", "--index", "0", "--out", str(out), "--attributions", "lime"]) == 2
    assert "unknown attribution method(s) lime" in capsys.readouterr().err
    assert main(["explain", "--index", "0", "--out", str(out), "--format", "gif"]) == 2
    assert "--format takes a comma-separated list of png, npy, json; got 'gif'" in capsys.readouterr().err


def test_sanity_randomises_from_the_logits_down_and_says_whether_the_method_passes(env, capsys):
    body = run_json(capsys, ["sanity", "--method", "gradcam", "--images", "3", "--json"])
    images = load_mnist("test", Settings(mnist_dir=env / "mnist")).images[:3].float()[:, None] / 255
    engine = cascading_randomisation(load_model("mnist_cnn").adapter, images, "gradcam").as_dict()
    assert body == {"model": "mnist_cnn", "images": 3, "test": "model", **engine}
    assert [step["randomised"] for step in body["steps"]] == ["fc2", "fc1", "conv2", "conv1"]
    assert body["passes"] == (abs(body["steps"][-1]["spearman"]) < body["pass_below"])
    assert main(["sanity", "--method", "gradcam", "--images", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("mnist_cnn, gradcam, 2 inputs: ")
    assert "randomised down to   rank corr.   SSIM\nfc2 " in text


def test_sanity_against_shuffled_labels_and_with_faithfulness_is_the_engines(env, capsys):
    shuffled = env / "shuffled.safetensors"
    assert main(["train", "--epochs", "0.3", "--shuffle-labels", "--out", str(shuffled), "--quiet"]) == 0
    capsys.readouterr()
    body = run_json(capsys, ["sanity", "--method", "saliency", "--images", "2", "--against", str(shuffled),
                             "--faithfulness", "--json"])
    images = load_mnist("test", Settings(mnist_dir=env / "mnist")).images[:2].float()[:, None] / 255
    model = load_model("mnist_cnn").adapter
    other = load_checkpoint(shuffled).adapter
    other.name = "shuffled.safetensors"
    assert body == {"model": "mnist_cnn", "images": 2, "test": "data",
                    **data_randomisation(model, other, images, "saliency").as_dict(),
                    "faithfulness": deletion_insertion(model, images, "saliency").as_dict()}
    assert load_checkpoint(shuffled).metadata["training"]["config"]["shuffle_labels"] is True
    assert main(["sanity", "--method", "saliency", "--images", "2", "--against", str(shuffled),
                 "--faithfulness"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"mnist_cnn, saliency, 2 inputs: {body['verdict']}\ndeletion AUC ")
