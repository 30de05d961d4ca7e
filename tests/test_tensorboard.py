"""TensorBoard logs: a run's log read back with TensorBoard's own event reader, value by value against what the
trainer reported and what the trained model holds; the default log of `convscope train`; `convscope tensorboard`
serving it."""

from __future__ import annotations

import io
import json
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import synthetic_split, write_mnist_dir
from convscope.errors import ConvscopeError
from convscope.predict import as_model_input
from convscope.training import TrainConfig, train
from convscope.training.config import TrainConfig as Config
from convscope.training.tensorboard import TensorBoardLogger, filter_tiles, image_grid, scale_each
from convscope.training.trainer import _split_validation

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import api_pb2, metadata  # noqa: E402

TRAIN, TEST = synthetic_split(256, 0), synthetic_split(100, 1)
EVERYTHING = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0, "compressedHistograms": 0}


def quick(**overrides) -> TrainConfig:
    # 192 training images in batches of 32: 6 steps an epoch; 64 validation images
    values = dict(epochs=2, batch_size=32, lr=3e-3, validation_split=0.25, seed=1, progress_interval_s=0.0)
    return TrainConfig(**{**values, **overrides})


def read_log(folder) -> EventAccumulator:
    return EventAccumulator(str(folder), size_guidance=EVERYTHING).Reload()


def decoded(image_event) -> np.ndarray:
    """A logged image as an (H, W, 3) uint8 array."""
    return np.asarray(Image.open(io.BytesIO(image_event.encoded_image_string)).convert("RGB"))


def as_logged(chw: np.ndarray) -> np.ndarray:
    """What torch.utils.tensorboard stores for a (C, H, W) image in [0, 1]: (H, W, 3) uint8."""
    pixels = (chw.transpose(1, 2, 0).astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def tile_pixels(image: np.ndarray, index: int, columns: int, side: int) -> np.ndarray:
    """Tile ``index`` of a logged grid with 1-pixel borders: (side, side, 3)."""
    row, column = divmod(index, columns)
    top, left = 1 + row * (side + 1), 1 + column * (side + 1)
    return image[top:top + side, left:left + side]


def filter_pixels(weight: torch.Tensor, scale: int) -> np.ndarray:
    """One filter (C, kH, kW) as logged, worked out here: scaled to [0, 1] over all its values, enlarged ``scale``
    times by repetition, as (kH * scale, kW * scale, 3) uint8 (a grey filter in all 3 channels)."""
    weight = weight.detach().double()
    unit = (weight - weight.min()) / (weight.max() - weight.min())
    big = unit.repeat_interleave(scale, 1).repeat_interleave(scale, 2).expand(3, -1, -1)
    return (big.permute(1, 2, 0).float().numpy() * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """A two-epoch run with a log, its events and its result."""
    folder = tmp_path_factory.mktemp("tb") / "run"
    events = []
    result = train(quick(tensorboard_dir=str(folder)), on_event=events.append, train_data=TRAIN, test_data=TEST)
    return folder, events, result, read_log(folder)


def test_epoch_scalars_are_the_trainers_history(logged_run):
    _, _, result, log = logged_run
    assert len(result.history) == 2
    for tag, key in [("loss/train", "train_loss"), ("accuracy/train", "train_accuracy"),
                     ("loss/validation", "val_loss"), ("accuracy/validation", "val_accuracy")]:
        logged = log.Scalars(tag)
        assert [e.step for e in logged] == [1, 2], tag  # the x axis of epoch metrics: the epoch
        assert [e.value for e in logged] == pytest.approx([h[key] for h in result.history], rel=1e-6, abs=1e-7), tag
    assert [e.value for e in log.Scalars("loss/test")] == pytest.approx([result.test_metrics.loss], rel=1e-6)
    assert [e.value for e in log.Scalars("accuracy/test")] == pytest.approx([result.test_metrics.accuracy])


def test_learning_rate_per_epoch_follows_the_one_cycle_schedule(logged_run):
    _, _, result, log = logged_run
    config = result.config
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=12)
    expected = []
    for step in range(1, 13):
        optimizer.step()
        schedule.step()
        if step % 6 == 0:
            expected.append(schedule.get_last_lr()[0])
    logged = log.Scalars("lr")
    assert [e.step for e in logged] == [1, 2]
    assert [e.value for e in logged] == pytest.approx(expected, rel=1e-6)
    assert expected[0] > 10 * expected[1]  # the schedule really moved: mid-run high, end low


def test_every_progress_event_is_logged_by_optimizer_step(logged_run):
    _, events, _, log = logged_run
    progress = [e for e in events if e.type == "progress"]
    assert [e.step for e in progress] == list(range(1, 13))
    for tag, key in [("batch/loss", "loss"), ("batch/accuracy", "accuracy"), ("batch/lr", "lr")]:
        logged = log.Scalars(tag)
        assert [e.step for e in logged] == list(range(1, 13)), tag
        assert [e.value for e in logged] == pytest.approx([getattr(e, key) for e in progress], rel=1e-6), tag


def test_histograms_of_every_weight_and_its_last_gradient(logged_run):
    _, _, result, log = logged_run
    tags = set(log.Tags()["histograms"])
    params = dict(result.model.named_parameters())
    assert {f"{kind}/{name}" for name in params for kind in ("weights", "gradients")} == tags
    for name, param in params.items():
        for kind, values in [("weights", param), ("gradients", param.grad)]:
            logged = log.Histograms(f"{kind}/{name}")
            assert [e.step for e in logged] == [1, 2]
            final = logged[-1].histogram_value  # epoch 2 ends at the run's last step: the model as returned
            values = values.detach().double()
            assert final.num == values.numel(), (kind, name)
            assert (final.min, final.max) == pytest.approx((values.min().item(), values.max().item()), rel=1e-6)
            assert final.sum == pytest.approx(values.sum().item(), rel=1e-4, abs=1e-6), (kind, name)
            assert sum(final.bucket) == values.numel()
    grad = log.Histograms("gradients/conv1.weight")
    assert grad[0].histogram_value.sum != grad[1].histogram_value.sum  # a new gradient each epoch


def test_first_layer_filters_as_one_grey_grid(logged_run):
    _, _, result, log = logged_run
    images = log.Images("filters/conv1")
    assert [e.step for e in images] == [1, 2]
    # 32 filters of 3x3, each enlarged 8 times to 24x24, in 6 columns and 6 rows with 1-pixel borders
    assert (images[-1].width, images[-1].height) == (6 * 25 + 1, 6 * 25 + 1)
    image, weight = decoded(images[-1]), result.model.conv1.weight
    for k in (0, 7, 31):
        difference = tile_pixels(image, k, 6, 24).astype(int) - filter_pixels(weight[k], 8).astype(int)
        assert np.abs(difference).max() <= 1, k  # rounding: float32 here, float32 there, in another order
    assert (image[0] == 255).all() and (image[:, 25] == 255).all()  # white lines around and between
    assert not np.array_equal(decoded(images[0]), decoded(images[1]))  # the filters changed between the epochs


def test_feature_maps_of_the_first_validation_images(logged_run):
    _, _, result, log = logged_run
    tags = set(log.Tags()["images"])
    assert tags == {"inputs", "filters/conv1"} | {f"feature_maps/{layer}/{i}" for layer in ("conv1", "conv2")
                                                  for i in range(4)}
    # the run's validation split, drawn as the trainer draws it: its first 4 images are the fixed inputs
    _, _, val_x, _ = _split_validation(TRAIN, 0.25, torch.Generator().manual_seed(1))
    x = as_model_input(val_x[:4])  # (4, 1, 28, 28)
    with torch.no_grad():
        conv1 = result.model.conv1(result.model.normalize(x))  # (4, 32, 26, 26)
        conv2 = result.model.conv2(result.model.pool1(result.model.relu1(conv1)))  # (4, 64, 11, 11)
    for layer, maps, side in [("conv1", conv1, 6 * 27 + 1), ("conv2", conv2, 8 * 34 + 1)]:
        for i in range(4):
            images = log.Images(f"feature_maps/{layer}/{i}")
            assert [e.step for e in images] == [1, 2]
            assert (images[-1].width, images[-1].height) == (side, side)
            expected = as_logged(image_grid(scale_each(maps[i, :, None].numpy())))
            difference = np.abs(decoded(images[-1]).astype(int) - expected.astype(int))
            assert difference.max() <= 1, (layer, i)  # conv arithmetic may differ in the last bit


def test_hyperparameters_with_final_metrics_and_status(logged_run):
    _, _, result, log = logged_run
    content = log.PluginTagToContent("hparams")
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    columns = {info.name: info.type for info in experiment.hparam_infos}
    assert set(columns) == {f for f in Config.__dataclass_fields__ if f != "tensorboard_dir"}
    assert columns["batch_size"] == columns["target_accuracy"] == api_pb2.DATA_TYPE_FLOAT64
    assert columns["optimizer"] == api_pb2.DATA_TYPE_STRING and columns["augment"] == api_pb2.DATA_TYPE_BOOL
    assert {m.name.tag for m in experiment.metric_infos} >= {"accuracy/validation", "loss/validation",
                                                              "accuracy/test", "loss/test"}
    values = start.hparams
    assert values["batch_size"].number_value == 32 and values["lr"].number_value == pytest.approx(3e-3)
    assert values["optimizer"].string_value == "adam" and values["augment"].bool_value is False
    assert "target_accuracy" not in values and "tensorboard_dir" not in values  # None, and a path: not logged
    assert end.status == api_pb2.STATUS_SUCCESS
    assert log.Scalars("accuracy/validation")[-1].value == pytest.approx(result.history[-1]["val_accuracy"])


def test_the_graph_of_the_traced_model(logged_run):
    log = logged_run[3]
    names = [node.name for node in log.Graph().node]
    for layer in ("Conv2d[conv1]", "Conv2d[conv2]", "Linear[fc1]", "Linear[fc2]"):
        assert any(layer in name for name in names), layer


def test_logging_leaves_the_training_unchanged(logged_run):
    _, _, logged, _ = logged_run
    plain = train(quick(), train_data=TRAIN, test_data=TEST)
    for (name, a), b in zip(logged.model.state_dict().items(), plain.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    drop = ("elapsed_s",)
    assert [{k: v for k, v in h.items() if k not in drop} for h in logged.history] == \
           [{k: v for k, v in h.items() if k not in drop} for h in plain.history]


def test_probe_digits_are_the_fixed_inputs(tmp_path):
    train(quick(epochs=0.5, probes=3, evaluate_test=False, tensorboard_dir=str(tmp_path)), train_data=TRAIN,
          test_data=TEST)
    log = read_log(tmp_path)
    assert {t for t in log.Tags()["images"] if t.startswith("feature_maps/conv1/")} == {
        f"feature_maps/conv1/{i}" for i in range(3)}
    assert "loss/test" not in log.Tags()["scalars"]


def test_a_cancelled_run_ends_its_session_as_unknown(tmp_path):
    cancel = threading.Event()

    def on_event(event):
        if event.type == "progress" and event.step == 3:
            cancel.set()

    result = train(quick(tensorboard_dir=str(tmp_path)), on_event=on_event, cancel=cancel, train_data=TRAIN,
                   test_data=TEST)
    assert result.status == "cancelled"
    log = read_log(tmp_path)
    end = metadata.parse_session_end_info_plugin_data(log.PluginTagToContent("hparams")[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_UNKNOWN
    assert [e.step for e in log.Scalars("batch/loss")] == [1, 2, 3] and "loss/train" not in log.Tags()["scalars"]


class Untraceable(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return {"score": float(self.conv(x).sum())}  # a Python float: torch.jit.trace cannot trace it


def test_a_model_that_cannot_be_traced_logs_everything_but_its_graph(tmp_path, caplog, capsys):
    model = Untraceable()
    with caplog.at_level(logging.WARNING, logger="convscope.training"):
        logger = TensorBoardLogger(str(tmp_path), model, torch.rand(2, 3, 8, 8))
    assert "no graph for this model" in caplog.text
    assert capsys.readouterr().out == ""  # torch prints tracing errors: not onto stdout (it may carry --json)
    from convscope.training.events import EpochEnd
    logger.log_epoch(EpochEnd(1, 1, 0.5, 0.5, None, None, 0.0), model, 0.1)
    logger.finish("completed")
    log = read_log(tmp_path)
    assert not log.Tags()["graph"]
    assert "gradients/conv.weight" not in log.Tags()["histograms"]  # no step was taken: no gradient
    filters = log.Images("filters/conv")[0]
    assert decoded(filters).shape == (25 + 1, 2 * 25 + 1, 3)  # 2 columns, 1 row; RGB: the layer reads 3 channels
    for k in (0, 1):
        difference = tile_pixels(decoded(filters), k, 2, 24).astype(int) - filter_pixels(model.conv.weight[k], 8)
        assert np.abs(difference).max() <= 1, k
    assert set(log.Tags()["images"]) == {"inputs", "filters/conv", "feature_maps/conv/0", "feature_maps/conv/1"}


def test_image_grid_layout():
    tiles = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 1, 2, 3) / 30
    grid = image_grid(tiles, min_tile=1, pad=1, pad_value=-1.0)
    assert grid.shape == (1, 2 * 3 + 1, 3 * 4 + 1)  # 3 columns, 2 rows of 2x3 tiles, 1-pixel borders
    np.testing.assert_array_equal(grid[0, 1:3, 1:4], tiles[0, 0])
    np.testing.assert_array_equal(grid[0, 1:3, 5:8], tiles[1, 0])
    np.testing.assert_array_equal(grid[0, 4:6, 5:8], tiles[4, 0])
    assert (grid[0, 4:6, 9:12] == -1).all() and (grid[0, 0] == -1).all() and (grid[0, :, -1] == -1).all()
    assert (grid[0, 3] == -1).all() and (grid[0, :, 4] == -1).all()  # the lines between the tiles
    big = image_grid(np.random.default_rng(0).random((1, 3, 3, 3)), min_tile=24)
    assert big.shape == (3, 26, 26)
    np.testing.assert_array_equal(big[:, 1:9, 1:9], np.broadcast_to(big[:, 1:2, 1:2], (3, 8, 8)))  # x8, nearest
    weight = torch.randn(4, 2, 3, 3)
    np.testing.assert_allclose(filter_tiles(weight), scale_each(weight.mean(1, keepdim=True).numpy()), rtol=1e-6)
    assert filter_tiles(weight).min() == 0 and filter_tiles(weight).max() == 1


def test_a_missing_tensorboard_package_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    with pytest.raises(ConvscopeError, match=r'pip install "convscope\[tensorboard\]"'):
        train(quick(tensorboard_dir=str(tmp_path)), train_data=TRAIN, test_data=TEST)


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_MNIST_DIR", str(write_mnist_dir(tmp_path / "mnist")))
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def cli_train(tmp_path, *flags) -> dict:
    from convscope.cli.main import main
    from convscope.models import load_checkpoint
    out = tmp_path / "run.safetensors"
    assert main(["train", "--epochs", "0.2", "--batch-size", "64", "--quiet", "--out", str(out), *flags]) == 0
    return load_checkpoint(out).metadata["training"]["config"]


def test_cli_training_logs_to_the_runs_folder_by_default(cli_env):
    config = cli_train(cli_env)
    runs = list((cli_env / "data" / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("mnist_cnn-")
    assert config["tensorboard_dir"] == str(runs[0])  # the checkpoint says where its log is
    assert [e.step for e in read_log(runs[0]).Scalars("loss/train")] == [1]


def test_cli_no_tensorboard_and_a_missing_package(cli_env, monkeypatch, capsys):
    assert cli_train(cli_env, "--no-tensorboard")["tensorboard_dir"] is None
    monkeypatch.setattr("convscope.training.tensorboard.tensorboard_available", lambda: False)
    assert cli_train(cli_env)["tensorboard_dir"] is None  # the default log is skipped; the run goes on
    assert 'warning: no TensorBoard log for this run: pip install "convscope[tensorboard]"' in capsys.readouterr().err
    assert not (cli_env / "data" / "runs").exists()


def test_cli_run_folders_never_collide(tmp_path):
    from convscope.cli.tensorboard import new_run_dir
    first = new_run_dir(tmp_path, "mnist_cnn")
    first.mkdir()
    second = new_run_dir(tmp_path, "mnist_cnn")
    assert second != first and second.name.startswith(first.name[:len("mnist_cnn-20260101-000000")])


def test_tensorboard_command_without_the_package(monkeypatch, capsys):
    from convscope.cli.main import main
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    assert main(["tensorboard"]) == 2
    assert 'needs the tensorboard package: pip install "convscope[tensorboard]"' in capsys.readouterr().err


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)


@pytest.mark.slow
def test_tensorboard_command_serves_the_runs_and_stops_on_ctrl_c(logged_run):
    folder, _, result, _ = logged_run
    # SIGINT as Ctrl-C sends it; restored in the child, which inherits "ignored" when pytest runs in the background
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from convscope.cli.main import main; sys.exit(main())")
    process = subprocess.Popen([sys.executable, "-c", code, "tensorboard", "--logdir", str(folder.parent),
                                "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
        first = lines.get(timeout=60)
        assert first.startswith(f"TensorBoard on {folder.parent}: http://127.0.0.1:"), first
        url = first.split(": ", 1)[1].split(" ")[0]
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"TensorBoard" in response.read()
        deadline = time.monotonic() + 60
        while True:  # the runs appear once TensorBoard has read the folder
            with urllib.request.urlopen(url + "data/runs", timeout=10) as response:
                runs = json.load(response)
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert runs == ["run"]
        query = urllib.parse.urlencode({"run": "run", "tag": "loss/validation"})
        with urllib.request.urlopen(f"{url}data/plugin/scalars/scalars?{query}", timeout=10) as response:
            served = json.load(response)  # [[wall time, step, value], ...]
        assert [row[1] for row in served] == [1, 2]
        assert [row[2] for row in served] == pytest.approx([h["val_loss"] for h in result.history], rel=1e-6)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert lines.get(timeout=5).strip() == "TensorBoard stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_model_without_conv_layers_logs_no_filters_or_maps(tmp_path):
    from convscope.models.registry import get_spec
    from convscope.training.events import EpochEnd
    model = get_spec("mnist_mlp").build()
    logger = TensorBoardLogger(str(tmp_path), model, torch.rand(2, 1, 28, 28), quick())
    logger.log_epoch(EpochEnd(1, 1, 0.5, 0.5, 0.4, 0.6, 0.0), model, 0.1)
    logger.finish("completed")
    log = read_log(tmp_path)
    assert log.Tags()["images"] == ["inputs"] and log.Tags()["graph"]
    assert len(log.Tags()["histograms"]) == len(list(model.parameters()))  # weights only: no step, no gradients
