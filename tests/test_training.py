import threading

import pytest
import torch

from conftest import synthetic_split
from convscope.errors import ConvscopeError
from convscope.models import load_checkpoint
from convscope.training import TrainConfig, TrainingDiverged, train

TRAIN, TEST = synthetic_split(400, 0), synthetic_split(100, 1)


def quick(**overrides) -> TrainConfig:
    values = dict(epochs=2, batch_size=32, lr=3e-3, validation_split=0.25, seed=1, progress_interval_s=0.0)
    return TrainConfig(**{**values, **overrides})


def run(config: TrainConfig, **kwargs):
    events = []
    result = train(config, on_event=events.append, train_data=TRAIN, test_data=TEST, **kwargs)
    return result, events


def test_learns_the_synthetic_task_and_reports_events_in_order(tmp_path):
    result, events = run(quick(), out=tmp_path / "run.safetensors")
    types = [e.type for e in events]
    assert types[0] == "started" and types[-1] == "finished"
    assert types.count("epoch") == 2 and "progress" in types
    started = events[0]
    assert (started.train_size, started.validation_size, started.steps_per_epoch) == (300, 100, 10)
    progress = [e for e in events if e.type == "progress"]
    assert [e.step for e in progress] == list(range(1, 21))  # interval 0: one event per step
    epochs = [e for e in events if e.type == "epoch"]
    assert epochs[-1].val_accuracy >= 0.9 and epochs[0].first_conv_weight.shape == (32, 1, 3, 3)
    assert result.status == "completed" and result.steps == 20
    assert result.test_metrics.accuracy >= 0.9
    saved = load_checkpoint(result.checkpoint)
    assert saved.metadata["training"]["config"]["batch_size"] == 32
    assert [h["epoch"] for h in saved.metadata["history"]] == [1, 2]
    assert saved.metadata["test_metrics"]["accuracy"] == result.test_metrics.accuracy
    assert saved.metadata["data"]["train_sha256"] == "synthetic-0"


def test_progress_events_are_rate_limited():
    _, events = run(quick(progress_interval_s=3600))
    progress = [e for e in events if e.type == "progress"]
    assert [e.step for e in progress] == [20]  # only the final step, whatever the interval


def test_same_seed_same_weights_other_seed_other_weights():
    a, _ = run(quick(epochs=0.5, augment=True))
    b, _ = run(quick(epochs=0.5, augment=True))
    c, _ = run(quick(epochs=0.5, augment=True, seed=2))
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.model.state_dict()["conv1.weight"], c.model.state_dict()["conv1.weight"])


def test_fractional_epochs_count_steps():
    result, events = run(quick(epochs=1.5))
    assert result.steps == 15 and [e.type for e in events].count("epoch") == 2


def test_cancel_stops_and_saves_nothing(tmp_path):
    cancel = threading.Event()

    def on_event(event):
        if event.type == "progress" and event.step == 3:
            cancel.set()

    out = tmp_path / "cancelled.safetensors"
    result = train(quick(), on_event=on_event, cancel=cancel, out=out, train_data=TRAIN, test_data=TEST)
    assert result.status == "cancelled" and result.steps == 3
    assert result.checkpoint is None and not out.exists() and result.test_metrics is None


def test_early_stop_at_target_accuracy():
    result, events = run(quick(epochs=5, target_accuracy=0.5, lr=5e-3))
    assert result.status == "target_reached"
    assert len([e for e in events if e.type == "epoch"]) < 5


def test_failure_is_reported_then_raised():
    events = []
    with pytest.raises(ConvscopeError, match="unknown model"):
        train(quick(model="nope"), on_event=events.append, train_data=TRAIN, test_data=TEST)
    assert events[-1].type == "failed" and "unknown model" in events[-1].error


def test_a_diverging_run_stops_with_the_reason_and_saves_nothing(tmp_path):
    events = []
    config = quick(lr=10.0, optimizer="sgd", schedule="constant", progress_interval_s=3600)  # NaN within steps
    with pytest.raises(TrainingDiverged) as raised:
        train(config, on_event=events.append, train_data=TRAIN, test_data=TEST, out=tmp_path / "run.safetensors")
    # checked where progress is reported or an epoch ends (here the end of epoch 1: progress is rate-limited)
    assert str(raised.value) == ("the loss became NaN or infinite at step 10: the run diverged (try a lower learning "
                                 "rate than 10); it was stopped and no model was saved")
    assert [e.type for e in events] == ["started", "epoch", "failed"]
    assert events[-1].error == f"TrainingDiverged: {raised.value}"
    assert not (tmp_path / "run.safetensors").exists()


def test_invalid_configs_are_rejected():
    with pytest.raises(ConvscopeError, match="epochs must be > 0; batch size must be >= 1"):
        TrainConfig(epochs=0, batch_size=0)
    with pytest.raises(ConvscopeError, match="a target accuracy needs a validation split"):
        TrainConfig(target_accuracy=0.9, validation_split=0)


@pytest.mark.parametrize("overrides", [
    dict(model="mnist_mlp", epochs=4, lr=1e-2, optimizer="adamw", weight_decay=0.01, schedule="cosine",
         precision="fp32"),
    dict(optimizer="sgd", lr=0.05, schedule="constant", channels_last=False),
])
def test_other_models_optimizers_schedules_and_precisions_learn(overrides):
    result, _ = run(quick(**overrides))
    assert result.test_metrics.accuracy >= 0.9


def test_tensorboard_logs_scalars_histograms_and_filters(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run(quick(tensorboard_dir=str(tmp_path / "tb")))
    log = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0, "images": 0}).Reload()
    tags = log.Tags()
    assert {"loss/train", "accuracy/validation"} <= set(tags["scalars"])
    assert "weights/conv1.weight" in tags["histograms"] and "filters/conv1" in tags["images"]
    assert [e.step for e in log.Scalars("loss/train")] == [1, 2]


@pytest.mark.mnist
@pytest.mark.slow
def test_real_mnist_passes_95_percent_in_a_few_hundred_steps(real_mnist):
    config = TrainConfig(epochs=300 / 422, batch_size=128, validation_split=0.1, seed=0)
    result = train(config, settings=real_mnist)
    assert result.steps == 300
    assert result.test_metrics.accuracy > 0.95
    assert result.test_metrics.count == 10_000


def test_probe_digits_are_predicted_in_every_progress_and_epoch_event():
    from convscope.training import TrainConfig, train

    events = []
    result = train(TrainConfig(epochs=1, batch_size=32, probes=10, progress_interval_s=0, evaluate_test=False,
                               seed=0), on_event=events.append, train_data=synthetic_split(200, 0),
                   test_data=synthetic_split(100, 1))
    progress = [e for e in events if e.type == "progress"]
    assert all(len(e.probes) == 10 for e in progress)
    assert all(tuple(e.first_conv_weight.shape) == (32, 1, 3, 3) for e in progress)  # the filters, live
    first = progress[0].probes
    assert [p["label"] for p in first] == list(range(10))
    test = synthetic_split(100, 1)
    assert [p["index"] for p in first] == [int((test.labels == d).nonzero()[0]) for d in range(10)]
    # after the one epoch the weights are the final ones: the probes are the trained model's own predictions
    epoch = next(e for e in events if e.type == "epoch")
    with torch.no_grad():
        probabilities = result.model.eval()(test.images[[p["index"] for p in first]].float()[:, None] / 255)
    assert [p["predicted"] for p in epoch.probes] == probabilities.argmax(dim=1).tolist()
    assert [p["confidence"] for p in epoch.probes] == pytest.approx(probabilities.max(dim=1).values.tolist(), abs=1e-4)
