"""The trainer: the whole dataset held as tensors, batches as index slices, one loop that reads top to bottom.

Fast by default on this kind of CPU: bf16 autocast and channels_last memory (where the hardware has bf16 units),
Adam with a one-cycle schedule, batch 64. Progress leaves the loop only through events (see ``events.py``).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F

from ..data.mnist import MnistSplit, load_mnist
from ..devices import bf16_autocast_supported, resolve_device
from ..metrics import Metrics, evaluate
from ..models.checkpoint import save_checkpoint
from ..models.net import LayeredNet
from ..models.registry import get_spec
from ..predict import as_model_input
from ..settings import Settings
from .augment import augment_batch
from .config import TrainConfig
from .events import BatchProgress, EpochEnd, EventCallback, TrainingFailed, TrainingFinished, TrainingStarted
from .tensorboard import TensorBoardLogger, first_conv_weight


class CancelFlag(Protocol):
    """Anything with ``is_set()``: a ``threading.Event`` or a ``multiprocessing.Event``."""

    def is_set(self) -> bool: ...


@dataclass
class TrainResult:
    model: LayeredNet
    config: TrainConfig
    status: str  # "completed", "target_reached" or "cancelled"
    steps: int
    wall_s: float
    history: list[dict] = field(default_factory=list)
    test_metrics: Metrics | None = None
    checkpoint: Path | None = None


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


def _train(config, emit, cancel, out, train_data, test_data, settings, command) -> TrainResult:
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and bf16_autocast_supported(device))
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    spec = get_spec(config.model)
    train_data = train_data or load_mnist("train", settings)
    train_x, train_y, val_x, val_y = _split_validation(train_data, config.validation_split, generator)
    train_x, train_y = train_x.to(device), train_y.to(device)
    model = spec.build().to(device, memory_format=memory_format)
    steps_per_epoch = math.ceil(len(train_y) / config.batch_size)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    optimizer, scheduler = _make_optimizer(config, model, total_steps)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
    tensorboard = TensorBoardLogger(config.tensorboard_dir) if config.tensorboard_dir else None
    emit(TrainingStarted(config.as_dict(), total_steps, steps_per_epoch, len(train_y), len(val_y), str(device),
                         "bf16" if use_bf16 else "fp32"))

    step, status, history = 0, "completed", []
    window_loss = torch.zeros((), device=device)  # sums since the last progress event, kept on the device
    window_correct = torch.zeros((), device=device, dtype=torch.long)
    window_count, last_progress, epoch_stats = 0, time.perf_counter(), [0.0, 0, 0]
    for epoch in range(1, math.ceil(total_steps / steps_per_epoch) + 1):
        model.train()
        order = torch.randperm(len(train_y), generator=generator).to(device)
        for start in range(0, len(train_y), config.batch_size):
            if step >= total_steps:
                break
            if cancel is not None and cancel.is_set():
                status = "cancelled"
                break
            idx = order[start:start + config.batch_size]
            x, y = as_model_input(train_x[idx]), train_y[idx]  # (B, 1, 28, 28) in [0, 1], (B,)
            if config.augment:
                x = augment_batch(x, generator)
            x = x.contiguous(memory_format=memory_format)
            with autocast:
                logits = model.logits(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            window_loss += loss.detach() * len(y)
            window_correct += (logits.argmax(1) == y).sum()
            window_count += len(y)

            now = time.perf_counter()
            if now - last_progress >= config.progress_interval_s or step == total_steps:
                loss_sum, correct = float(window_loss), int(window_correct)
                epoch_stats = [epoch_stats[0] + loss_sum, epoch_stats[1] + correct, epoch_stats[2] + window_count]
                elapsed = now - started
                emit(BatchProgress(step, total_steps, step / steps_per_epoch, loss_sum / window_count,
                                   correct / window_count, scheduler.get_last_lr()[0],
                                   window_count / max(now - last_progress, 1e-9), elapsed,
                                   elapsed / step * (total_steps - step)))
                window_loss.zero_(), window_correct.zero_()
                window_count, last_progress = 0, now
        if window_count:  # fold what the last window holds into this epoch's figures
            epoch_stats = [epoch_stats[0] + float(window_loss), epoch_stats[1] + int(window_correct),
                           epoch_stats[2] + window_count]
            window_loss.zero_(), window_correct.zero_()
            window_count = 0
        if status == "cancelled" or epoch_stats[2] == 0:
            break
        val = evaluate(model, val_x, val_y) if len(val_y) else None
        event = EpochEnd(epoch, step, epoch_stats[0] / epoch_stats[2], epoch_stats[1] / epoch_stats[2],
                         val.loss if val else None, val.accuracy if val else None, time.perf_counter() - started,
                         first_conv_weight(model))
        epoch_stats = [0.0, 0, 0]
        history.append({k: v for k, v in event.as_dict().items() if k not in ("type", "first_conv_weight")})
        emit(event)
        if tensorboard:
            tensorboard.log_epoch(event, model)
        last_progress = time.perf_counter()  # keep validation time out of the next images/s figure
        if config.target_accuracy is not None and val is not None and val.accuracy >= config.target_accuracy:
            status = "target_reached"
            break
    if tensorboard:
        tensorboard.close()

    model.eval()
    test_metrics = None
    if config.evaluate_test and status != "cancelled":
        test_data = test_data or load_mnist("test", settings)
        test_metrics = evaluate(model, test_data.images, test_data.labels)
    wall_s = time.perf_counter() - started
    checkpoint = None
    if out is not None and status != "cancelled":
        checkpoint = save_checkpoint(Path(out), model, spec.name, {
            "training": {"config": config.as_dict(), "command": command, "steps": step,
                         "status": status, "wall_s": round(wall_s, 3), "device": str(device),
                         "threads": torch.get_num_threads(), "torch_version": torch.__version__},
            "history": history,
            "test_metrics": test_metrics.as_dict() if test_metrics else None,
            "data": {"train_sha256": train_data.sha256, "test_sha256": test_data.sha256 if test_data else None},
        })
    emit(TrainingFinished(status, step, wall_s, test_metrics.as_dict() if test_metrics else None,
                          str(checkpoint) if checkpoint else None))
    return TrainResult(model, config, status, step, wall_s, history, test_metrics, checkpoint)
