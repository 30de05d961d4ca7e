"""The example Streamlit app, driven by Streamlit's AppTest (no browser): every page for the MNIST models and an
ImageNet one, what it prints checked against what the library computes for the same input, and what it hands
convscope.plot checked by a spy; uploads, errors and models without a CAM; and `convscope streamlit`, which serves
it."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch
from PIL import Image, ImageDraw

from conftest import REAL_MNIST, write_mnist_dir
from convscope import plot
from convscope.cli.main import main
from convscope.cli.streamlit import APP, streamlit_command
from convscope.data.mnist import sample_digit
from convscope.data.photos import PHOTOS
from convscope.inspect import Inspector
from convscope.models import load_model

pytest.importorskip("matplotlib")
pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402


@pytest.fixture
def app(tmp_path, monkeypatch):
    """The app as `streamlit run` starts it, on the real MNIST when there is one (else a synthetic folder), with an
    empty data folder: the models offered are the ones that need no download."""
    mnist = REAL_MNIST or str(write_mnist_dir(tmp_path / "mnist"))
    monkeypatch.setenv("CONVSCOPE_MNIST_DIR", mnist)
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "argv", [str(APP)])  # the script reads its options from sys.argv, as under streamlit
    return AppTest.from_file(str(APP), default_timeout=60)


@pytest.fixture
def drawn(monkeypatch) -> list[tuple[str, tuple, dict]]:
    """Every call the app makes to the plot functions that draw a layer or a CAM: (name, args, keyword args)."""
    calls = []

    def spy(name: str, real):
        def recorded(*args, **kwargs):
            calls.append((name, args, kwargs))
            return real(*args, **kwargs)
        return recorded

    for name in ("feature_maps", "filters", "cam_overlay"):
        monkeypatch.setattr(plot, name, spy(name, getattr(plot, name)))
    return calls


def widget(at: AppTest, kind: str, label: str):
    return next(w for w in getattr(at.sidebar, kind) if w.label == label)


def ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def show(at: AppTest, page: str) -> AppTest:
    return ok(widget(at, "radio", "Page").set_value(page).run())


def metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drawn_one() -> bytes:
    image = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(image).line([(140, 30), (140, 250)], fill="black", width=12)
    return png(image)


def test_the_prediction_is_the_inspectors_for_the_same_digit(app):
    at = ok(app.run())
    assert widget(at, "selectbox", "Model").options == ["mnist_cnn", "mnist_mlp", "efficientnet_lite0"]
    inspector = Inspector(load_model("mnist_cnn").adapter)
    for seed in (0, 1):  # the first digit, then "Another one": seeded, so the same each time
        sample = sample_digit(3, "test", seed=seed)
        expected = inspector.inspect(sample.image)
        assert metrics(at) == {"Predicted": expected.class_name(expected.predicted),
                               "Confidence": f"{expected.confidence:.1%}", "Label": str(sample.label)}
        assert f"MNIST test image #{sample.index}" in [caption.value for caption in at.caption]
        assert len(at.image) == 2  # plot.inspection and plot.probabilities
        ok(widget(at, "button", "Another one").click().run())


def test_the_cam_and_its_choices_reach_the_inspection(app, drawn):
    at = show(app.run(), "CAM")
    assert len(at.image) == 1
    first = at.image[0].value
    widget(at, "selectbox", "Explanation").set_value("hirescam")
    widget(at, "selectbox", "CAM layer").set_value("conv1")
    ok(widget(at, "selectbox", "Explain the class").set_value(5).run())
    assert len(at.image) == 1 and at.image[0].value != first  # another map, another picture
    shown = drawn[-1][1][0]
    expected = Inspector(load_model("mnist_cnn").adapter).inspect(sample_digit(3, "test", seed=0).image, target=5,
                                                                  cam_layer="conv1", method="hirescam")
    assert (shown.cam_method, shown.cam_layer, shown.target) == ("hirescam", "conv1", 5)
    assert torch.equal(shown.cam, expected.cam)


def test_choosing_a_layer_draws_its_feature_maps(app, drawn):
    at = show(app.run(), "Feature maps")
    expected = Inspector(load_model("mnist_cnn").adapter).inspect(sample_digit(3, "test", seed=0).image)
    assert at.selectbox[0].value == "relu2"  # the CAM layer first
    ok(at.selectbox[0].set_value("conv1").run())  # another layer: its own channel count, so the slider anew
    at.slider[0].set_value(8)
    ok(at.radio[0].set_value("top").run())
    (name, (maps, layer), options), = drawn[-1:]
    assert (name, layer, options) == ("feature_maps", "conv1", {"n": 8, "order": "top"})
    assert torch.equal(maps, expected.activations["conv1"])
    assert len(at.image) == 1


def test_filters_pooling_dense_outputs_and_history(app, drawn):
    at = show(app.run(), "Filters")
    ok(at.selectbox[0].set_value("conv2").run())
    assert drawn[-1][0] == "filters" and drawn[-1][1][1:] == ("conv2",) and len(at.image) == 1

    at = show(at, "Pooling and dense outputs")
    expected = Inspector(load_model("mnist_cnn").adapter).inspect(sample_digit(3, "test", seed=0).image)
    assert at.selectbox[0].options == ["pool1", "pool2"]
    assert at.selectbox[1].options == ["fc1", "relu3", "fc2", "softmax"]  # not flatten: pool2 again
    ok(at.selectbox[1].set_value("fc2").run())
    assert drawn[-1][1][1] == "pool1" and torch.equal(drawn[-1][1][0], expected.activations["pool1"])
    units = expected.activations["fc2"]
    assert (f"fc2: 10 units, from {float(units.min()):.3g} to {float(units.max()):.3g}; the strongest is unit "
            f"{int(units.argmax())}") in [caption.value for caption in at.caption]
    assert len(at.get("vega_lite_chart")) == 1  # st.bar_chart of the units

    at = show(at, "Training history")
    checkpoint = load_model("mnist_cnn")
    assert metrics(at) == {"Test accuracy": f"{checkpoint.test_accuracy:.2%}"}
    assert at.code[0].value == checkpoint.metadata["training"]["command"]
    assert len(at.image) == 1


def test_a_model_without_a_spatial_layer_says_what_it_lacks(app):
    at = app.run()
    ok(widget(at, "selectbox", "Model").set_value("mnist_mlp").run())
    assert "CAM layer" not in [w.label for w in at.sidebar.selectbox]
    expected = Inspector(load_model("mnist_mlp").adapter).inspect(sample_digit(3, "test", seed=0).image)
    assert metrics(at)["Predicted"] == expected.class_name(expected.predicted)
    for page, message in [("CAM", "mnist_mlp has no layer with a spatial map, so there is no class activation map"),
                          ("Filters", "mnist_mlp has no conv layer"),
                          ("Feature maps", "mnist_mlp has no layer with a spatial map")]:
        at = show(at, page)
        assert len(at.info) == 1 and at.info[0].value.startswith(message) and not at.image, page
    at = show(at, "CAM")
    ok(widget(at, "selectbox", "Explanation").set_value("saliency").run())  # ... which it can show
    assert len(at.image) == 1 and not at.info


@pytest.mark.slow  # a big model: seconds
def test_an_imagenet_model_on_a_sample_photo(app, drawn):
    at = app.run()
    ok(widget(at, "selectbox", "Model").set_value("efficientnet_lite0").run())
    assert widget(at, "radio", "Input").options == ["a sample photo", "an image of your own"]  # no MNIST digits
    assert widget(at, "selectbox", "Photo").value == "coffee"
    inspector = Inspector(load_model("efficientnet_lite0").adapter)
    expected = inspector.inspect(PHOTOS["coffee"].path.read_bytes())
    assert metrics(at) == {"Predicted": expected.class_name(expected.predicted),
                           "Confidence": f"{expected.confidence:.1%}"}
    # Its inspection keeps only the CAM layer: another layer's maps are computed when it is picked.
    at = show(at, "Feature maps")
    layer = at.selectbox[0].options[3]
    ok(at.selectbox[0].set_value(layer).run())
    assert drawn[-1][1][1] == layer
    torch.testing.assert_close(drawn[-1][1][0], inspector.activations(expected.input, [layer])[layer])
    at = show(at, "Training history")
    assert at.info[0].value.startswith("efficientnet_lite0 has no training history") and not at.image


def test_an_upload_and_a_bad_one(app):
    at = app.run()
    ok(widget(at, "radio", "Input").set_value("an image of your own").run())
    assert at.info[0].value == "Upload a PNG, JPEG, WebP, GIF or BMP image in the sidebar."
    at.sidebar.file_uploader[0].set_value(("one.png", drawn_one(), "image/png")).run()
    expected = Inspector(load_model("mnist_cnn").adapter).inspect(drawn_one())
    assert ok(at) and metrics(at) == {"Predicted": expected.class_name(expected.predicted),
                                      "Confidence": f"{expected.confidence:.1%}"}
    for content, message in [(b"not an image", "not an image in a format this reads"),
                             (png(Image.new("RGB", (50, 50), "white")), "the drawing is empty")]:
        at.sidebar.file_uploader[0].set_value(("bad.png", content, "image/png")).run()
        assert not at.exception and len(at.error) == 1 and message in at.error[0].value


def test_a_checkpoint_file_from_the_command_line_or_the_sidebar(app, tmp_path, monkeypatch):
    mlp = shutil.copy(load_model("mnist_mlp").path, tmp_path / "run.safetensors")
    monkeypatch.setattr(sys, "argv", [str(APP), "--checkpoint", str(mlp)])  # as `convscope streamlit` passes it
    at = ok(app.run())
    assert f"mnist_mlp from {mlp}" in at.caption[0].value and widget(at, "text_input", "Checkpoint file").value
    missing = tmp_path / "missing.safetensors"
    widget(at, "text_input", "Checkpoint file").set_value(str(missing)).run()
    assert [e.value for e in at.error] == [f"checkpoint {missing} does not exist"] and not at.exception
    assert widget(at, "text_input", "Checkpoint file")  # the sidebar stays, to mend it


def test_the_command_line_picks_the_first_model(app, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(APP), "--model", "mnist_mlp"])
    assert widget(ok(app.run()), "selectbox", "Model").value == "mnist_mlp"


# -- convscope streamlit ---------------------------------------------------------------------------------------

def test_the_command_help_and_what_it_runs(capsys):
    assert main(["streamlit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--port N port to serve the app on, at 127.0.0.1 (default: 8501)", "--model NAME",
                   "--checkpoint FILE", "go after --, e.g. convscope streamlit --port 8502 -- --theme.base dark"):
        assert option in text
    from convscope.cli.main import build_parser
    args = build_parser().parse_args(["streamlit", "--port", "9000", "--model", "mnist_mlp", "--",
                                      "--theme.base", "dark"])
    command = streamlit_command(args)
    assert command[:6] == [sys.executable, "-P", "-m", "streamlit", "run", str(APP)]
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "9000"
    # streamlit's own options before its --, which ends them (the last of an option wins); the app's after it
    assert command[-5:] == ["--theme.base", "dark", "--", "--model", "mnist_mlp"]
    assert APP.is_file() and APP.parent.name == "apps" and (APP.parent / "__init__.py").is_file()  # in the wheel


def test_the_command_without_streamlit_or_with_a_bad_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "streamlit", None)  # find_spec: not installed
    assert main(["streamlit"]) == 2
    assert capsys.readouterr().err == ("convscope: error: `convscope streamlit` needs the streamlit package: "
                                       "pip install 'convscope[streamlit]'\n")
    monkeypatch.delitem(sys.modules, "streamlit")
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(tmp_path / "data"))  # no downloaded weights
    for argv, message in [(["--model", "vgg16"], "vgg16's weights are not here yet: convscope weights fetch vgg16"),
                          (["--model", "nope"], "unknown model 'nope'"),
                          (["--checkpoint", "missing.safetensors"], "missing.safetensors: no such file")]:
        assert main(["streamlit", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_command_serves_the_app_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    # SIGINT as Ctrl-C sends it; restored in the child, which inherits "ignored" when pytest runs in the background
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from convscope.cli.main import main; sys.exit(main())")
    process = subprocess.Popen([sys.executable, "-c", code, "streamlit", "--port", str(port)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline, health = time.monotonic() + 60, None
        while health != "ok" and process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as response:
                    health = response.read().decode()
            except OSError:
                time.sleep(0.2)
        assert health == "ok"
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert f"URL: http://127.0.0.1:{port}" in output and output.rstrip().endswith("Streamlit stopped")
        with pytest.raises(OSError):  # nothing is left serving
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
