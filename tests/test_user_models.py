"""Bring your own model, end to end: a .py file with a factory plus its weights, through the Python API, the CLI,
the app and a real `convscope serve`; and every mistake a user will make, as one clear line / a 4xx."""

import argparse
import base64
import json

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from convscope.cli.main import main
from convscope.inspect import Inspector
from convscope.models.user import UserModel, load_user_model
from convscope.server.encoding import decode_layers
from convscope.testing.server import ServerProcess
from convscope.server.settings import ServerSettings
from server_fixtures import make_client
from user_net import CLASSES, NET, TINY_PREPROCESSING, write_user_files

PREPROCESSING = json.dumps(TINY_PREPROCESSING)


pytestmark = pytest.mark.usefixtures("restore_registry")  # tests here register models by name


@pytest.fixture
def user_files(tmp_path):
    files = write_user_files(tmp_path)
    namespace: dict = {}
    exec(compile(NET, str(files["net"]), "exec"), namespace)
    model = namespace["tiny"]()
    with torch.no_grad():  # weights unlike the factory's own, so loading them visibly matters
        for param in model.parameters():
            param.add_(torch.linspace(-0.5, 0.5, param.numel()).reshape(param.shape))
    state = model.state_dict()
    safetensors.torch.save_file(state, tmp_path / "net.safetensors")
    torch.save(state, tmp_path / "net.pth")
    return {"dir": tmp_path, "model": model.eval(), "net": f"{files['net']}:tiny",
            "weights": str(tmp_path / "net.safetensors"), "pth": str(tmp_path / "net.pth"),
            "classes": str(files["classes"]), "photo": files["photo"]}


def expected_probabilities(user_files) -> torch.Tensor:
    """The user's own module on the photo resized to 16x16 by PIL, computed without convscope's adapter."""
    picture = Image.open(user_files["photo"]).convert("RGB").resize((16, 16), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(picture, dtype=np.float32)).permute(2, 0, 1) / 255
    with torch.no_grad():
        return torch.softmax(user_files["model"](x[None]), dim=1)[0]


def test_python_api_wraps_and_inspects_the_users_model(user_files):
    for weights in (user_files["weights"], user_files["pth"]):
        adapter = load_user_model(UserModel(user_files["net"], weights, user_files["classes"], PREPROCESSING))
        assert adapter.name == "tiny" and adapter.class_names == tuple(CLASSES)
        assert adapter.graph.names == ["stem", "relu", "mix", "add", "relu:2", "pool", "flatten", "head"]
        assert adapter.graph["add"].parents == ("mix", "relu")
        x, framing = adapter.preprocessing.prepare(Image.open(user_files["photo"]))
        assert framing.source == (0.0, 0.0, 40.0, 30.0)
        result = Inspector(adapter).inspect(x)
        torch.testing.assert_close(result.probabilities, expected_probabilities(user_files))
        assert result.cam_layer == "relu:2" and result.cam.shape == (16, 16)


def run_cli(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_predicts_and_explains_with_the_users_model(user_files, capsys, tmp_path):
    model_args = ["--model-file", user_files["net"], "--weights", user_files["weights"], "--classes",
                  user_files["classes"], "--preprocessing", PREPROCESSING]
    code, out, _ = run_cli(capsys, ["predict", str(user_files["photo"]), *model_args, "--top-k", "3", "--json"])
    assert code == 0
    body = json.loads(out)
    expected = expected_probabilities(user_files)
    assert body["model"] == "tiny" and body["predicted"] == CLASSES[int(expected.argmax())]
    assert {entry["class"]: entry["probability"] for entry in body["top"]} == pytest.approx(
        {name: float(p) for name, p in zip(CLASSES, expected, strict=True)}, abs=1e-5)
    code, out, _ = run_cli(capsys, ["explain", str(user_files["photo"]), *model_args, "--layer", "stem",
                                    "--out", str(tmp_path / "views"), "--json"])
    assert code == 0
    summary = json.loads(out)
    assert summary["cam_layer"] == "stem" and summary["predicted"] in CLASSES
    assert (tmp_path / "views" / summary["files"]["cam_gradcam_stem"]).is_file()
    assert (tmp_path / "views" / "features_add.png").is_file() and (tmp_path / "views" / "filters_stem.png").is_file()


@pytest.mark.parametrize("change, message", [
    ({"net": "{dir}/net.py:nope"}, "net.py has no factory 'nope'; it defines: Gated, Tiny, dense, gated, tiny"),
    ({"net": "{dir}/missing.py:build"}, "missing.py: no such model file"),
    ({"net": "{dir}/net.py"}, "a model file is named path/to/file.py:factory"),
    ({"net": "{dir}/net.py:dense"}, "does not match the model's state_dict: missing: 1.weight, 1.bias; "
                                    "unexpected: head.bias, head.weight, mix.bias, mix.weight, stem.bias and 1 more"),
    ({"weights": "{dir}/pickled.pth"}, "holds more than tensors, and convscope never unpickles arbitrary objects"),
    ({"weights": "{dir}/classes.txt"}, "classes.txt is not a readable PyTorch weights file"),
    ({"weights": "{dir}/really_safetensors.pth"}, "--sample and --index take MNIST digits"),  # loads: by content
    ({"extra": ["--checkpoint", "{dir}/net.safetensors"]}, "--weights, and --checkpoint a model fine-tuned from it"),
    ({"classes": "{dir}/two.txt"}, "the model gives 3 scores but 2 class names were given"),
    ({"preprocessing": '{"name": "resize", "size": 3, "channels": 1}'}, "does not run on input of shape (1, 3, 3)"),
    ({"preprocessing": "jpeg"}, "unknown preprocessing 'jpeg'; choose from mnist_digit, imagenet, resize"),
    ({"extra": ["--layer", "head"]}, "a CAM needs a layer with a spatial (C, H, W) output; 'head' gives (3,)"),
])
def test_user_mistakes_are_one_line_errors(user_files, capsys, change, message):
    folder = user_files["dir"]
    # A pickled object of an arbitrary class beside the tensors: loading it would run the class's code.
    torch.save({"state": user_files["model"].state_dict(), "args": argparse.Namespace(lr=0.1)}, folder / "pickled.pth")
    (folder / "two.txt").write_text("a\nb\n")
    (folder / "really_safetensors.pth").write_bytes((folder / "net.safetensors").read_bytes())
    options = {"net": user_files["net"], "weights": user_files["weights"], "classes": user_files["classes"],
               "preprocessing": PREPROCESSING, "extra": []}
    options.update({k: v.replace("{dir}", str(folder)) if isinstance(v, str) else
                    [a.replace("{dir}", str(folder)) for a in v] for k, v in change.items()})
    image = ["--sample", "3"] if "really_safetensors" in options["weights"] else [str(user_files["photo"])]
    argv = ["explain", *image, "--model-file", options["net"], "--weights", options["weights"],
            "--classes", options["classes"], "--preprocessing", options["preprocessing"], *options["extra"],
            "--out", str(folder / "out")]
    code, _, err = run_cli(capsys, argv)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def png_data_url(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def test_the_app_serves_the_users_model(user_files, tmp_path, synthetic_mnist_dir):
    user = {"model_file": user_files["net"], "weights": user_files["weights"], "classes": user_files["classes"],
            "preprocessing": json.loads(PREPROCESSING), "name": "tiny"}
    settings = ServerSettings(data_dir=tmp_path / "data", mnist_dir=synthetic_mnist_dir, workers=1,
                              user_models=(user,))
    with make_client(settings) as client:
        listed = {m["name"]: m for m in client.get("/api/models").json()}
        assert listed["tiny"]["class_names"] == CLASSES and listed["tiny"]["active_version"] == 1
        assert (listed["tiny"]["trainable"], listed["mnist_cnn"]["trainable"]) == (False, True)
        details = client.get("/api/models/tiny").json()
        assert str(user_files["dir"]) not in json.dumps(details)  # file names only: the server's folders stay private
        assert details["versions"][0]["details"]["source"] == {"model_file": "net.py:tiny",
                                                               "weights": "net.safetensors", "classes": "classes.txt"}
        refused = client.post("/api/jobs", json={"model": "tiny"})
        assert refused.status_code == 422 and "not an MNIST model" in refused.json()["error"]["message"]
        assert listed["tiny"]["preprocessing"] == {"name": "resize", "size": [16, 16], "channels": 3,
                                                   "interpolation": "bilinear"}
        architecture = client.get("/api/models/tiny/architecture").json()
        assert architecture["default_cam_layer"] == "relu:2" and architecture["traced"] is True
        assert {layer["name"]: layer["parents"] for layer in architecture["layers"]}["add"] == ["mix", "relu"]
        answer = client.post("/api/predict", json={"image": png_data_url(user_files["photo"]), "model": "tiny",
                                                   "layers": ["stem"]}).json()
        expected = expected_probabilities(user_files)
        assert answer["predicted_class"] == CLASSES[int(expected.argmax())]
        assert answer["probabilities"] == pytest.approx(expected.tolist(), abs=1e-5)
        assert answer["cam"]["layer"] == "relu:2" and answer["cam"]["map"]["shape"] == [16, 16]
        assert answer["input"]["shape"] == [3, 16, 16]
        assert [layer["name"] for layer in answer["layers"]] == ["stem"]
        assert decode_layers(answer["layers"])["stem"].shape == (4, 16, 16)
        bad = client.post("/api/predict", json={"image": png_data_url(user_files["photo"]), "model": "tiny",
                                                "cam_layer": "head"})
        assert bad.status_code == 422
        message = ("a CAM needs a layer with a spatial (C, H, W) output; 'head' gives (3,); layers a CAM can use: "
                   "stem, relu, mix, add, relu:2")
        assert bad.json()["error"]["message"] == message  # the CLI's line, word for word
        saved = client.post("/api/predictions", json={"image": png_data_url(user_files["photo"]),
                                                      "model": "tiny"}).json()
        assert saved["predicted_class"] == answer["predicted_class"]
        other = (saved["predicted"] + 1) % 3  # a report names a class other than the predicted one
        report = client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": other})
        assert report.status_code == 201 and report.json()["correct_class"] == CLASSES[other]
        too_far = client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": 3})
        assert too_far.status_code == 422
        assert too_far.json()["error"]["message"] == "correct_label must be a class index of tiny: 0-2, got 3"


@pytest.mark.slow
def test_a_real_server_started_with_the_users_model(user_files, tmp_path, synthetic_mnist_dir):
    args = ("--model-file", user_files["net"], "--weights", user_files["pth"], "--classes", user_files["classes"],
            "--preprocessing", PREPROCESSING, "--model-name", "tiny", "--workers", "2")
    with ServerProcess(tmp_path / "data", env={"CONVSCOPE_MNIST_DIR": str(synthetic_mnist_dir)},
                       extra_args=args) as server:
        for _ in range(4):  # two worker processes: each loaded the model itself
            status, answer = server.request("POST", "/api/predict", {"image": png_data_url(user_files["photo"]),
                                                                     "model": "tiny", "layers": ["add"]})
            assert status == 200 and answer["predicted_class"] in CLASSES
            assert answer["layers"][0]["name"] == "add" and answer["cam"]["layer"] == "relu:2"
        status, digits = server.request("POST", "/api/predict", {"pixels": [[0] * 28] * 28, "layers": []})
        assert status == 200 and digits["model"] == "mnist_cnn"  # the built-in models are still there


def test_serve_refuses_a_broken_model_in_one_line(user_files, capsys, tmp_path):
    code, _, err = run_cli(capsys, ["serve", "--data-dir", str(tmp_path / "data"), "--model-file",
                                    f"{user_files['dir']}/net.py:nope"])
    assert code == 2 and "has no factory 'nope'" in err and err.count("\n") == 1


def test_serve_refuses_a_broken_model_from_its_setting_in_one_line(user_files, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_USER_MODELS", json.dumps([{"model_file": f"{user_files['dir']}/net.py:gone"}]))
    code, _, err = run_cli(capsys, ["serve", "--data-dir", str(tmp_path / "data")])
    assert code == 2 and "has no factory 'gone'" in err and err.count("\n") == 1


def test_evaluate_scores_the_users_model_on_a_folder_named_after_its_classes(user_files, capsys, tmp_path):
    model = ["--model-file", user_files["net"], "--weights", user_files["weights"], "--classes", user_files["classes"],
             "--preprocessing", PREPROCESSING]
    code, _, err = run_cli(capsys, ["evaluate", *model])
    assert code == 2 and "tiny does not read MNIST digits: give --folder DIR or --csv FILE" in err
    predicted = CLASSES[int(expected_probabilities(user_files).argmax())]
    for name in CLASSES:  # the photo under every class: right once, wrong the other times
        (tmp_path / "set" / name).mkdir(parents=True)
        (tmp_path / "set" / name / "photo.png").write_bytes(user_files["photo"].read_bytes())
    code, out, _ = run_cli(capsys, ["evaluate", *model, "--folder", str(tmp_path / "set"), "--json"])
    report = json.loads(out)
    assert code == 0 and report["metrics"]["accuracy"] == pytest.approx(1 / 3)
    assert {e["label"] for e in report["misclassified"]} == set(CLASSES) - {predicted}
    assert report["metrics"]["loss"] == pytest.approx(-float(expected_probabilities(user_files).log().mean()),
                                                      rel=1e-5)


def test_weights_or_classes_for_a_model_without_them_are_an_error(user_files, capsys):
    code, _, err = run_cli(capsys, ["predict", str(user_files["photo"]), "--weights", user_files["weights"]])
    assert code == 2 and "mnist_cnn has no pretrained weights to choose from" in err
    code, _, err = run_cli(capsys, ["predict", str(user_files["photo"]), "--classes", user_files["classes"]])
    assert code == 2 and "--classes goes with --model-file" in err


def test_cli_fine_tunes_the_users_model_and_predicts_with_the_result(user_files, capsys, tmp_path):
    from conftest import SHAPES, write_shapes
    folder = write_shapes(tmp_path / "shapes", per_class=4, size=16)
    model = ["--model-file", user_files["net"], "--weights", user_files["weights"], "--preprocessing", PREPROCESSING]
    out = tmp_path / "tuned.safetensors"
    code, stdout, err = run_cli(capsys, ["finetune", str(folder), *model, "--epochs", "2", "--out", str(out),
                                         "--json", "--quiet", "--no-tensorboard"])
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["base"] == "tiny" and summary["classes"] == list(SHAPES)
    code, stdout, err = run_cli(capsys, ["predict", str(folder / "circle" / "0.png"), *model, "--checkpoint", str(out),
                                         "--json"])
    assert code == 0, err
    assert json.loads(stdout)["model"] == "shapes" and json.loads(stdout)["predicted"] in SHAPES
    from convscope.models import MODELS
    del MODELS["tiny"]  # as in a new process: without the user's code, its architecture cannot be built
    code, _, err = run_cli(capsys, ["predict", str(folder / "circle" / "0.png"), "--checkpoint", str(out)])
    assert code == 2 and "shapes was fine-tuned from tiny, which is not registered here" in err, err


@pytest.mark.slow
def test_the_server_fine_tunes_the_users_model_on_a_folder(user_files, tmp_path, synthetic_mnist_dir):
    from conftest import SHAPES, write_shapes
    from test_server_jobs import wait_for
    write_shapes(tmp_path / "datasets" / "shapes", per_class=4, size=16)
    user = {"model_file": user_files["net"], "weights": user_files["weights"], "classes": user_files["classes"],
            "preprocessing": json.loads(PREPROCESSING), "name": "tiny"}
    settings = ServerSettings(data_dir=tmp_path / "data", mnist_dir=synthetic_mnist_dir, workers=1,
                              user_models=(user,), datasets_dir=tmp_path / "datasets")
    with make_client(settings) as client:
        started = client.post("/api/jobs/finetune", json={"base": "tiny", "dataset": "folder:shapes",
                                                           "name": "tiny-shapes", "epochs": 2})
        assert started.status_code == 202, started.text
        final = wait_for(client, started.json()["id"], ("completed", "stopped_early", "failed", "cancelled"))
        assert final["status"] == "completed", final  # its own process built the user's model from its files
        assert client.get("/api/models/tiny-shapes").json()["class_names"] == list(SHAPES)
        answer = client.post("/api/predict", json={"image": png_data_url(user_files["photo"]), "model": "tiny-shapes"})
        assert answer.status_code == 200 and answer.json()["predicted_class"] in SHAPES
