"""The trainer: the whole dataset held as tensors, batches as index slices, one loop that reads top to bottom.

Fast by default on this kind of CPU: bf16 autocast and channels_last memory (where the hardware has bf16 units),
Adam with a one-cycle schedule, batch 128. Progress leaves the loop only through events (see ``events.py``).
"""

from __future__ import annotations

import functools
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F

from ..data.mnist import CLASS_NAMES, MnistSplit, load_mnist
from ..devices import bf16_autocast_supported, resolve_device
from ..errors import ConvscopeError
from ..metrics import Metrics, evaluate
from ..models.adapter import ModelAdapter
from ..models.checkpoint import save_checkpoint
from ..models.net import LayeredNet
from ..models.registry import get_spec
from ..predict import as_model_input
from ..settings import Settings
from .augment import augment_batch
from .config import TrainConfig
from .events import BatchProgress, EpochEnd, EventCallback, TrainingFailed, TrainingFinished, TrainingStarted
from .tensorboard import TensorBoardLogger, first_conv_weight


class TrainingDiverged(ConvscopeError):
    """The loss became NaN or infinite: the run stops, and nothing is saved."""


class CancelFlag(Protocol):
    """Anything with ``is_set()``: a ``threading.Event`` or a ``multiprocessing.Event``."""

    def is_set(self) -> bool: ...


@dataclass
class TrainResult:
    """What training gave: the trained ``model`` (``adapter`` wraps it for inspection), how the run ended, its
    per-epoch ``history``, test metrics and the checkpoint file. In a notebook it shows its curves."""

    model: LayeredNet
    config: TrainConfig
    status: str  # "completed", "target_reached" or "cancelled"
    steps: int
    wall_s: float
    history: list[dict] = field(default_factory=list)
    test_metrics: Metrics | None = None
    checkpoint: Path | None = None

    @functools.cached_property
    def adapter(self) -> ModelAdapter:
        """The trained model, wrapped: what ``Inspector``, ``convscope.explain`` and ``evaluate_model`` take."""
        return get_spec(self.config.model).adapter(self.model)

    def __repr__(self) -> str:
        from ..display import run_title
        return f"TrainResult({run_title(self)})"

    def _repr_html_(self) -> str:
        from ..display import history_html, run_title
        return history_html(self.history, run_title(self))


def _make_optimizer(config: TrainConfig, model: LayeredNet, total_steps: int):
    params = model.parameters()
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    elif config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps)
    elif config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    return optimizer, scheduler


def _split_validation(data: MnistSplit, fraction: float, generator: torch.Generator):
    """(train_x, train_y, val_x, val_y): uint8 (N, 28, 28) images and int64 labels.

    Images stay uint8 (a quarter of the memory); each batch is converted to float as it is drawn."""
    images, labels = data.images, data.labels
    order = torch.randperm(len(labels), generator=generator)
    n_val = int(round(len(labels) * fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return images[train_idx], labels[train_idx], images[val_idx], labels[val_idx]


def train(
    config: TrainConfig,
    on_event: EventCallback | None = None,
    cancel: CancelFlag | None = None,
    out: Path | None = None,
    train_data: MnistSplit | None = None,
    test_data: MnistSplit | None = None,
    settings: Settings | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train ``config.model`` from scratch and return it with its history.

    ``train_data`` / ``test_data`` default to MNIST (loaded through ``settings``). When ``out`` is given, a run
    that was not cancelled is saved there as a checkpoint with its config, history, test metrics and ``command``
    (how it was started, e.g. the CLI line).
    Any exception is reported as a ``failed`` event, then raised.
    """
    emit = on_event or (lambda event: None)
    try:
        return _train(config, emit, cancel, out, train_data, test_data, settings, command)
    except BaseException as e:
        emit(TrainingFailed(error=f"{type(e).__name__}: {e}"))
        raise


class _Tally:
    """Running sums of loss and correct predictions, kept on the device so that only reading them syncs."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.count = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.loss += loss.detach() * len(labels)
        self.correct += (logits.argmax(1) == labels).sum()
        self.count += len(labels)

    def take(self) -> tuple[float, float, int]:
        """(mean loss, accuracy, count) so far, then start again from zero."""
        loss, accuracy, count = float(self.loss) / self.count, int(self.correct) / self.count, self.count
        self.loss.zero_(), self.correct.zero_()
        self.count = 0
        return loss, accuracy, count


class _Probes:
    """The first test image of each class (up to ``count``), predicted on demand while the model trains."""

    def __init__(self, data: MnistSplit, count: int, device: torch.device):
        self.indices = [int(torch.nonzero(data.labels == digit)[0]) for digit in range(len(CLASS_NAMES))
                        if (data.labels == digit).any()][:count]
        self.images = as_model_input(data.images[self.indices]).to(device)  # (P, 1, 28, 28)
        self.labels = [int(data.labels[i]) for i in self.indices]

    @torch.no_grad()
    def predict(self, model: LayeredNet) -> list[dict]:
        was_training = model.training
        model.eval()
        probabilities = model(self.images.contiguous(memory_format=torch.channels_last))  # (P, 10)
        model.train(was_training)
        confidence, predicted = probabilities.max(dim=1)
        return [{"index": i, "label": label, "predicted": int(p), "confidence": round(float(c), 4)}
                for i, label, p, c in zip(self.indices, self.labels, predicted, confidence, strict=True)]


class _Run:
    """One training run's state; ``train()`` drives it epoch by epoch."""

    def __init__(self, config: TrainConfig, emit, cancel, train_data: MnistSplit, probes: _Probes | None = None):
        self.config, self.emit, self.cancel = config, emit, cancel
        self.started = time.perf_counter()
        self.device = resolve_device(config.device)
        self.bf16 = config.precision == "bf16" or (config.precision == "auto" and bf16_autocast_supported(self.device))
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        train_x, train_y, self.val_x, self.val_y = _split_validation(train_data, config.validation_split,
                                                                     self.generator)
        if config.shuffle_labels:
            train_y = train_y[torch.randperm(len(train_y), generator=self.generator)]
        self.train_x, self.train_y = train_x.to(self.device), train_y.to(self.device)
        self.model = get_spec(config.model).build().to(self.device, memory_format=self.memory_format)
        self.steps_per_epoch = math.ceil(len(self.train_y) / config.batch_size)
        self.total_steps = max(1, math.ceil(config.epochs * self.steps_per_epoch))
        self.optimizer, self.scheduler = _make_optimizer(config, self.model, self.total_steps)
        self.step = 0
        self.window, self.epoch_tally = _Tally(self.device), _Tally(self.device)
        self.last_progress = time.perf_counter()
        self.probes = probes

    def probe(self) -> list | None:
        return self.probes.predict(self.model) if self.probes else None

    def started_event(self) -> TrainingStarted:
        return TrainingStarted(self.config.shown(), self.total_steps, self.steps_per_epoch, len(self.train_y),
                               len(self.val_y), str(self.device), "bf16" if self.bf16 else "fp32")

    def train_epoch(self) -> bool:
        """One pass (or what is left of ``epochs``); False when cancelled."""
        self.model.train()
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        order = torch.randperm(len(self.train_y), generator=self.generator).to(self.device)
        for start in range(0, len(self.train_y), self.config.batch_size):
            if self.step >= self.total_steps:
                break
            if self.cancel is not None and self.cancel.is_set():
                return False
            idx = order[start:start + self.config.batch_size]
            x, y = as_model_input(self.train_x[idx]), self.train_y[idx]  # (B, 1, 28, 28) in [0, 1], (B,)
            if self.config.augment:
                x = augment_batch(x, self.generator)
            with autocast:
                logits = self.model.logits(x.contiguous(memory_format=self.memory_format))  # (B, 10)
            loss = F.cross_entropy(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            self.window.add(loss, logits, y)
            self.epoch_tally.add(loss, logits, y)
            self._maybe_report_progress()
        return True

    def _maybe_report_progress(self) -> None:
        now = time.perf_counter()
        if now - self.last_progress < self.config.progress_interval_s and self.step != self.total_steps:
            return
        loss, accuracy, count = self.window.take()
        elapsed = now - self.started
        self.emit(BatchProgress(self.step, self.total_steps, self.step / self.steps_per_epoch, loss, accuracy,
                                self.scheduler.get_last_lr()[0], count / max(now - self.last_progress, 1e-9),
                                elapsed, elapsed / self.step * (self.total_steps - self.step), self.probe(),
                                first_conv_weight(self.model) if self.probes else None))
        self.last_progress = now
        self.stop_if_diverged(loss)

    def stop_if_diverged(self, loss: float) -> None:
        """Checked on each reported mean loss, which every step's loss goes into: one NaN or infinite step makes it
        NaN or infinite, without a per-step sync on an accelerator."""
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the loss became NaN or infinite at step {self.step}: the run diverged (try a "
                                   f"lower learning rate than {self.config.lr:g}); it was stopped and no model was "
                                   "saved")

    def end_epoch(self, epoch: int) -> EpochEnd:
        if self.window.count:  # the epoch tally already holds these steps; start the next window afresh
            self.window.take()
        train_loss, train_accuracy, _ = self.epoch_tally.take()
        val = evaluate(self.model, self.val_x, self.val_y) if len(self.val_y) else None
        event = EpochEnd(epoch, self.step, train_loss, train_accuracy, val.loss if val else None,
                         val.accuracy if val else None, time.perf_counter() - self.started,
                         first_conv_weight(self.model), self.probe())
        self.last_progress = time.perf_counter()  # keep validation time out of the next images/s figure
        return event


def _train(config, emit, cancel, out, train_data, test_data, settings, command) -> TrainResult:
    if config.threads:
        torch.set_num_threads(config.threads)
    if not get_spec(config.model).trainable:  # an unknown model fails before any data is read
        raise ConvscopeError(f"{config.model} is not an MNIST model: convscope trains the MNIST models for now")
    train_data = train_data or load_mnist("train", settings)
    probes = None
    if config.probes:
        test_data = test_data or load_mnist("test", settings)
        probes = _Probes(test_data, config.probes, resolve_device(config.device))
    run = _Run(config, emit, cancel, train_data, probes)
    emit(run.started_event())
    status, history = "completed", []
    tensorboard = TensorBoardLogger.for_run(run) if config.tensorboard_dir else None
    if tensorboard:
        run.emit = tensorboard.watching(run.emit)  # each progress event's loss and learning rate, logged too
    try:
        for epoch in range(1, math.ceil(run.total_steps / run.steps_per_epoch) + 1):
            if not run.train_epoch():
                status = "cancelled"
                break
            event = run.end_epoch(epoch)
            history.append({**{k: v for k, v in event.as_dict().items()
                               if k not in ("type", "first_conv_weight", "probes")},
                            "epochs": round(event.step / run.steps_per_epoch, 4)})  # a last epoch may be partial
            emit(event)
            run.stop_if_diverged(event.train_loss)
            if tensorboard:
                tensorboard.log_epoch(event, run.model, run.scheduler.get_last_lr()[0])
            if config.target_accuracy is not None and (event.val_accuracy or 0) >= config.target_accuracy:
                status = "target_reached"
                break
    except BaseException:
        if tensorboard:
            tensorboard.finish("failed")
        raise

    model = run.model.eval()
    test_metrics = None
    if config.evaluate_test and status != "cancelled":
        test_data = test_data or load_mnist("test", settings)
        test_metrics = evaluate(model, test_data.images, test_data.labels)
    if tensorboard:
        tensorboard.finish(status, test_metrics)  # the test metrics and the run's status; closes the log
    wall_s = time.perf_counter() - run.started
    checkpoint = None
    if out is not None and status != "cancelled":
        checkpoint = save_checkpoint(Path(out), model, config.model, {
            "training": {"config": config.as_dict(), "command": command, "steps": run.step, "status": status,
                         "wall_s": round(wall_s, 3), "device": str(run.device), "threads": torch.get_num_threads(),
                         "torch_version": torch.__version__},
            "history": history,
            "test_metrics": test_metrics.as_dict() if test_metrics else None,
            "data": {"train_sha256": train_data.sha256, "test_sha256": test_data.sha256 if test_data else None},
        })
    emit(TrainingFinished(status, run.step, wall_s, test_metrics.as_dict() if test_metrics else None,
                          str(checkpoint) if checkpoint else None))
    return TrainResult(model, config, status, run.step, wall_s, history, test_metrics, checkpoint)
