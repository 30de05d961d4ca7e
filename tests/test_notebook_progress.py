"""Progress in notebooks: the training ProgressBar (driven by hand-built events and by a real run), the CLI's bar
built on it, one-line event reprs, and the DownloadBar against a local HTTP server."""

import gzip
import hashlib
import io

import pytest
import torch
from tqdm import tqdm

from conftest import synthetic_split, write_mnist_dir, write_shapes
from convscope.cli.progress import TerminalProgress
from convscope.data.download import download_file
from convscope.data.mnist import MNIST_FILES, download_mnist
from convscope.progress import DownloadBar
from convscope.training import (BatchProgress, EpochEnd, FineTuneConfig, Preparing, ProgressBar, TrainConfig,
                                TrainingFailed, TrainingFinished, TrainingStarted, finetune, train)

CONFIG = TrainConfig().shown()


def closed(bar) -> bool:
    return bar.disable  # tqdm disables a bar as it closes it


def started(total_steps: int = 20, config: dict = CONFIG) -> TrainingStarted:
    return TrainingStarted(config, total_steps, 10, 300, 100, "cpu", "fp32")


def progress(step: int, loss: float = 0.5, accuracy: float = 0.8) -> BatchProgress:
    return BatchProgress(step, 20, step / 10, loss, accuracy, 0.005, 12345.6, 1.0, 1.0,
                         probes=[{"index": 0, "label": 0, "predicted": 0, "confidence": 0.9}] * 10,
                         first_conv_weight=torch.randn(32, 1, 3, 3))


def epoch(number: int, step: int, val_loss: float | None = 0.25, val_accuracy: float | None = 0.9375) -> EpochEnd:
    return EpochEnd(number, step, 0.4, 0.85, val_loss, val_accuracy, 2.5, torch.randn(32, 1, 3, 3))


# --- the training bar ---

def test_the_bar_follows_steps_with_live_figures_and_closes_when_finished():
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar(started())
    steps = bar.bar
    assert (steps.n, steps.total, steps.desc) == (0, 20, "mnist_cnn")
    bar(progress(4, loss=0.123456, accuracy=0.5))
    assert steps.n == 4 and steps.postfix == "loss=0.123, acc=0.500, img_s=12,346"
    bar(progress(10))
    bar(epoch(1, 10))
    assert steps.n == 10 and steps.postfix == "loss=0.500, acc=0.800, img_s=12,346, val_loss=0.250, val_acc=0.938"
    bar(progress(15, loss=0.3))
    assert "loss=0.300" in steps.postfix and "val_acc=0.938" in steps.postfix  # the last epoch's stay shown
    bar(epoch(2, 20))
    bar(TrainingFinished("completed", 20, 5.0, {"accuracy": 0.9871, "loss": 0.05}, None))
    assert steps.n == steps.total == 20 and closed(steps)
    assert "test_acc=0.9871" in steps.postfix and "status" not in steps.postfix
    assert "20/20" in out.getvalue()


def test_a_run_stopped_early_closes_full_and_says_why_a_failed_one_where_it_broke():
    early = ProgressBar(file=io.StringIO())
    early(started())
    early(progress(10))
    early(TrainingFinished("target_reached", 10, 1.0, None, None))
    assert early.bar.n == early.bar.total == 10 and closed(early.bar)  # full, not an unfinished (red) bar
    assert "status=target_reached" in early.bar.postfix

    cancelled = ProgressBar(file=io.StringIO())
    cancelled(started())
    cancelled(progress(7))
    cancelled(TrainingFinished("cancelled", 7, 1.0, None, None))
    assert (cancelled.bar.n, cancelled.bar.total) == (7, 20) and "status=cancelled" in cancelled.bar.postfix

    failed = ProgressBar(file=io.StringIO())
    failed(started())
    failed(progress(3))
    failed(TrainingFailed("TrainingDiverged: the loss became NaN"))
    assert (failed.bar.n, failed.bar.total) == (3, 20) and closed(failed.bar)


def test_fine_tuning_shows_its_preparation_then_epochs():
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar(Preparing("images", 50, 120, 0.5))
    images = bar.bar
    bar(Preparing("images", 120, 120, 1.0))
    assert (images.n, images.total, images.desc) == (120, 120, "reading images")
    bar(Preparing("features", 32, 288, 1.5))
    features = bar.bar
    assert closed(images) and features is not images and features.desc == "computing features"
    bar(Preparing("features", 288, 288, 2.0))
    config = {**FineTuneConfig().shown(), "model": "flowers"}
    bar(started(total_steps=12, config=config))
    assert closed(features) and (bar.bar.total, bar.bar.desc) == (12, "flowers")
    bar(epoch(1, 4, val_loss=0.7, val_accuracy=0.6))  # fine-tuning reports no batches: epochs move the bar
    assert bar.bar.n == 4 and bar.bar.postfix == "loss=0.400, acc=0.850, val_loss=0.700, val_acc=0.600"
    bar(epoch(2, 8))
    bar(TrainingFinished("stopped_early", 8, 3.0, None, "flowers.safetensors"))
    assert bar.bar.n == bar.bar.total == 8 and closed(bar.bar) and "status=stopped_early" in bar.bar.postfix
    assert "reading images" in out.getvalue() and "computing features" in out.getvalue()


def test_cancelled_while_preparing_and_a_reused_bar():
    bar = ProgressBar(file=io.StringIO())
    bar(Preparing("features", 32, 288, 1.5))
    bar(TrainingFinished("cancelled", 0, 1.0, None, None))
    assert closed(bar.bar) and bar.bar.n == 32
    bar(started())  # the same callable for another run: a new bar, no figures from the last one
    bar(progress(2))
    assert bar.bar.n == 2 and "val_acc" not in bar.bar.postfix


def test_a_real_run_with_the_bar_and_with_print(capsys):
    out, events = io.StringIO(), []
    bar = ProgressBar(file=out)

    def on_event(event):
        events.append(event)
        bar(event)
        print(event)

    config = TrainConfig(epochs=2, batch_size=32, lr=3e-3, validation_split=0.25, seed=1, progress_interval_s=0.0,
                         probes=10)
    result = train(config, on_event=on_event, train_data=synthetic_split(400, 0),
                   test_data=synthetic_split(100, 1))
    assert bar.bar.n == bar.bar.total == result.steps == 20 and closed(bar.bar)
    assert "val_acc=" in bar.bar.postfix and f"test_acc={result.test_metrics.accuracy:.4f}" in bar.bar.postfix
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(events) and "tensor(" not in "".join(printed)
    assert printed[0].startswith("TrainingStarted(config={'model': 'mnist_cnn', ") and "total_steps=20" in printed[0]
    assert any(line.startswith("EpochEnd(epoch=2, step=20, ") for line in printed)
    assert all(len(line) < 400 for line in printed)


@pytest.mark.usefixtures("restore_registry")  # fine-tuning registers the new model by name
def test_a_real_fine_tuning_run_with_the_bar(tmp_path):
    out = io.StringIO()
    bar = ProgressBar(file=out)
    config = FineTuneConfig(base="mnist_cnn", name="shapes", epochs=4, augment_views=1)
    finetune(write_shapes(tmp_path, per_class=20), config, on_event=bar)  # ~2 s: an MNIST net's features
    assert bar.bar.n == bar.bar.total == 8 and closed(bar.bar) and "val_acc=" in bar.bar.postfix
    text = out.getvalue()
    assert "reading images: 100%" in text and "computing features: 100%" in text and "shapes: 100%" in text


# --- the CLI's bar: the same logic on stderr, with its lines ---

def test_the_terminal_bar_is_the_notebook_bar_on_stderr_with_lines(capsys):
    terminal = TerminalProgress()
    terminal(started())
    terminal(progress(10))
    terminal(epoch(1, 10))
    terminal(epoch(2, 20, None, None))
    terminal(TrainingFinished("completed", 20, 5.0, None, None))
    terminal.close()
    err = capsys.readouterr().err
    assert "training mnist_cnn on 300 images (100 held out) on cpu, fp32" in err
    assert "epoch 1: train loss 0.4000 accuracy 0.8500, validation loss 0.2500 accuracy 0.9375 (2.5 s)" in err
    assert "epoch 2: train loss 0.4000 accuracy 0.8500 (2.5 s)" in err
    assert closed(terminal.bar) and terminal.bar.n == 20 and type(terminal.bar) is tqdm  # plain text, not auto

    quiet = TerminalProgress(enabled=False)
    quiet(started())
    quiet(epoch(1, 10))
    assert quiet.bar is None and capsys.readouterr().err == ""


# --- event reprs ---

def test_every_event_is_one_short_line_with_its_numbers_and_no_tensor_data():
    metrics = {"count": 100, "accuracy": 0.98765, "top5_accuracy": 1.0, "loss": 0.0456789, "classes": list(range(10)),
               "confusion": [[0] * 10] * 10, "mse": 0.002, "r2": 0.97, "ece": 0.01}
    events = [started(), Preparing("features", 32, 288, 1.23456), progress(4, loss=0.123456, accuracy=0.96125),
              epoch(1, 10), TrainingFinished("completed", 20, 5.04, metrics, "/tmp/run.safetensors"),
              TrainingFailed("DataError: could not download\n  one\n  two")]
    for event in events:
        text = repr(event)
        assert "\n" not in text and "tensor(" not in text and len(text) < 300, text
        assert text == str(event) and text.startswith(type(event).__name__ + "(")
    assert repr(events[2]) == ("BatchProgress(step=4, total_steps=20, epoch=0.4, loss=0.1235, accuracy=0.9613, "
                               "lr=0.005, images_per_s=12346, elapsed_s=1.0, eta_s=1.0, probes=<10 probes>, "
                               "first_conv_weight=<tensor (32, 1, 3, 3)>)")
    assert repr(epoch(1, 10, None, None)).startswith(
        "EpochEnd(epoch=1, step=10, train_loss=0.4, train_accuracy=0.85, val_loss=None, val_accuracy=None, ")
    assert "probes" not in repr(epoch(1, 10))  # optional extras that are absent are left out
    assert "config={'model': 'mnist_cnn', 'epochs': 1.5, 'batch_size': 64, 'optimizer': 'adam', 'lr': 0.005, ...}" \
        in repr(events[0])
    assert "test_metrics={'count': 100, 'accuracy': 0.9877, 'top5_accuracy': 1.0, 'loss': 0.04568, 'mse': 0.002, ...}" \
        in repr(events[4])
    assert repr(events[5]) == r"TrainingFailed(error='DataError: could not download\n  one\n  two')"


def test_as_dict_keeps_everything():
    event = epoch(1, 10)
    data = event.as_dict()
    assert data["first_conv_weight"] == event.first_conv_weight.tolist() and data["val_accuracy"] == 0.9375
    assert data["type"] == "epoch" and data["probes"] is None
    assert started().as_dict()["config"] == CONFIG


# --- downloads ---

def recording(bars: list):
    """A tqdm_class that keeps every bar it makes."""
    def make(**options):
        bars.append(tqdm(**options))
        return bars[-1]
    return make


def test_download_bar_draws_one_bar_per_file_and_closes_each():
    bars = []
    progress = DownloadBar("weights", file=io.StringIO(), tqdm_class=recording(bars))
    progress(65536, 200_000)
    progress(200_000, 200_000)
    assert len(bars) == 1 and (bars[0].n, bars[0].total, bars[0].desc) == (200_000, 200_000, "weights")
    assert closed(bars[0])
    progress(1000, 3000)  # the next file (its first chunk bigger than nothing, smaller than the last file)
    progress(3000, 3000)
    progress(4096, None)  # a size the server did not say: open until the next file or close()
    progress(2048, None)  # another mirror's copy started over
    assert [bar.n for bar in bars] == [200_000, 3000, 4096, 2048] and closed(bars[2]) and not closed(bars[3])
    progress.close()
    assert closed(bars[3])


def test_download_bar_with_a_weights_download_and_mnist_from_a_local_server(http_root, tmp_path):
    root, url = http_root
    payload = bytes(range(256)) * 4000  # ~1 MB: several chunks
    (root / "w.pth").write_bytes(payload)
    out = io.StringIO()
    with DownloadBar("w.pth", file=out) as progress:
        download_file(f"{url}/w.pth", tmp_path / "w.pth", hashlib.sha256(payload).hexdigest(), len(payload),
                      progress=progress)
    assert (progress.bar.n, progress.bar.total) == (len(payload), len(payload)) and closed(progress.bar)
    assert "w.pth: 100%" in out.getvalue()

    write_mnist_dir(root / "mnist")
    files = {key: (stem, hashlib.sha256(gzip.decompress((root / "mnist" / f"{stem}.gz").read_bytes())).hexdigest())
             for key, (stem, _) in MNIST_FILES.items()}
    bars = []
    download_mnist(tmp_path / "cache", mirrors=(f"{url}/mnist/",), files=files,
                   progress=DownloadBar("MNIST", file=io.StringIO(), tqdm_class=recording(bars)))
    sizes = sorted((root / "mnist" / f"{stem}.gz").stat().st_size for stem, _ in files.values())
    assert sorted(bar.n for bar in bars) == sizes and all(closed(bar) for bar in bars)

    again = DownloadBar("MNIST")  # everything is here: nothing downloads, nothing is drawn
    download_mnist(tmp_path / "cache", mirrors=(f"{url}/mnist/",), files=files, progress=again)
    assert again.bar is None
