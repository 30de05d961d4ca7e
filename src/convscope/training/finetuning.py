"""Fine-tuning any image model on a folder of the user's images, one sub-folder per class.

The base model keeps its layers; its classifier head is replaced by a new one for the folder's classes. With the
backbone frozen (the default) each image goes through it once: its features (the head's input) are computed and
cached, with ``augment_views`` augmented copies of each training image, and every epoch after that trains only the
head on the cache: a fraction of a second on a CPU. With ``train_blocks`` > 0 the last blocks learn too (at a tenth
of the head's learning rate), and every epoch runs the whole network, with augmentation on the fly.

Batch-norm layers stay in inference mode throughout: batches of a few dozen photos give poor statistics, and the
base's running statistics come from far more data. The split is stratified; training stops early once the
validation loss has not improved for ``patience`` epochs, and the best epoch's weights are the ones kept.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.labelled import LabelledFiles, image_folder, read_image
from ..errors import ConvscopeError, DataError
from ..metrics import Metrics, metrics_from_logits
from ..models.checkpoint import Checkpoint, load_model, save_checkpoint
from ..models.finetuned import FineTuned, blocks, classifier_head, register_finetuned, replace_module
from .augment import augment_photos
from .config import FineTuneConfig
from .events import EpochEnd, EventCallback, Preparing, TrainingFailed, TrainingFinished, TrainingStarted
from .trainer import CancelFlag, TrainingDiverged

BLOCK_LR_FACTOR = 0.1  # trainable blocks learn at a tenth of the new head's rate: they start from good weights


@dataclass
class FineTuneResult:
    """What fine-tuning gave: the new model (``checkpoint``, None if cancelled), how it stopped, its best
    epoch, validation metrics and history. In a notebook it shows its curves."""

    checkpoint: Checkpoint | None  # the fine-tuned model, loaded (its adapter inspects, explains, evaluates)
    status: str  # "completed", "stopped_early" or "cancelled"
    best_epoch: int
    validation_metrics: Metrics | None  # None when cancelled before any epoch
    history: list[dict]
    skipped: list[dict]  # {"file", "reason"}: images that could not be read
    timings: dict = field(default_factory=dict)  # seconds: "images", "features", "epochs" (all), "per_epoch"
    path: Path | None = None

    def title(self) -> str:
        accuracy = "" if self.validation_metrics is None else \
            f", validation accuracy {self.validation_metrics.accuracy:.2%}"
        where = "" if self.path is None else f"; saved to {self.path}"
        return f"{self.status} after {len(self.history)} epochs (best: {self.best_epoch}){accuracy}{where}"

    def __repr__(self) -> str:
        return f"FineTuneResult({self.title()}; {len(self.skipped)} images skipped)"

    def _repr_html_(self) -> str:
        from ..display import history_html
        return history_html(self.history, self.title())


def stratified_split(labels: list[int], fraction: float, generator: torch.Generator) -> tuple[list[int], list[int]]:
    """(train, validation) positions: ``fraction`` of each class (rounded, at least one when a class has two or
    more images) to validation, the rest (at least one per class) to training."""
    by_class: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        by_class.setdefault(label, []).append(position)
    train, validation = [], []
    for positions in by_class.values():
        shuffled = [positions[i] for i in torch.randperm(len(positions), generator=generator).tolist()]
        n_val = min(max(round(len(shuffled) * fraction), 1 if len(shuffled) > 1 else 0), len(shuffled) - 1)
        validation += shuffled[:n_val]
        train += shuffled[n_val:]
    return sorted(train), sorted(validation)


def _read_images(data: LabelledFiles, prepare, emit, started: float, cancelled=lambda: False):
    """Every readable image as the model's input, kept as uint8 (a quarter of float32's memory), its label, and
    the files that could not be read."""
    def read(index: int):
        image, problem = read_image(data.files[index], lambda picture: (prepare(picture)[0] * 255).round().byte())
        return index, image, problem

    images, labels, skipped = [], [], list(data.skipped)
    with ThreadPoolExecutor(2) as pool:  # PIL decodes and resizes without holding the GIL
        for count, (index, image, problem) in enumerate(pool.map(read, range(len(data.files))), start=1):
            if image is None:
                skipped.append({"file": str(data.files[index]), "reason": problem})
            else:
                images.append(image)
                labels.append(data.labels[index])
            if count % 50 == 0 or count == len(data.files):
                emit(Preparing("images", count, len(data.files), time.perf_counter() - started))
                if cancelled():
                    raise _Cancelled
    missing = sorted(set(range(len(data.class_names))) - set(labels))
    if missing:
        raise DataError(f"no readable image in the class folder(s) {', '.join(data.class_names[i] for i in missing)}"
                        f" ({len(skipped)} file(s) could not be read)")
    return torch.stack(images), torch.tensor(labels), skipped


def _as_input(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(255).contiguous(memory_format=torch.channels_last)


class _Cancelled(Exception):
    """Raised inside the feature extraction when the run is cancelled."""


class _Normalizing(nn.Module):
    """The model as TensorBoard's logger runs it (feature maps, graph): pixels in [0, 1] in, normalised first."""

    def __init__(self, network: nn.Module, preprocessing):
        super().__init__()
        self.network, self.preprocessing = network, preprocessing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.preprocessing.normalize(x))


class _HeadInput:
    """Records what goes into the head: the backbone's features."""

    def __init__(self, head: nn.Module):
        self.value: torch.Tensor | None = None
        self.handle = head.register_forward_pre_hook(self._record)

    def _record(self, module, args) -> None:
        self.value = args[0].detach()


def finetune(folder: str | Path | LabelledFiles, config: FineTuneConfig, out: str | Path | None = None,
             on_event: EventCallback | None = None, cancel: CancelFlag | None = None,
             command: str | None = None) -> FineTuneResult:
    """Fine-tune ``config.base`` on ``folder`` (one sub-folder of images per class) and return the new model,
    saved to ``out`` when given (safetensors with its metadata: base model, classes, preprocessing, config,
    history, validation metrics). Any exception is reported as a ``failed`` event, then raised."""
    emit = on_event or (lambda event: None)
    try:
        return _FineTuning(folder, config, emit, cancel).run(out, command)
    except BaseException as e:
        emit(TrainingFailed(error=f"{type(e).__name__}: {e}"))
        raise


class _FineTuning:
    def __init__(self, folder, config: FineTuneConfig, emit, cancel):
        self.config, self.emit, self.cancel = config, emit, cancel
        self.started = time.perf_counter()
        if config.threads:
            torch.set_num_threads(config.threads)
        self.data = folder if isinstance(folder, LabelledFiles) else image_folder(folder, min_classes=2)
        base = load_model(config.base, weights=config.weights)
        self.preprocessing = base.adapter.preprocessing
        self.model = base.adapter.module.eval()
        head_path, old_head = classifier_head(self.model)
        self.spec = FineTuned(config.name, config.base, head_path, old_head.in_features,
                              tuple(self.data.class_names))
        self.blocks = blocks(self.model, head_path)
        if config.train_blocks > len(self.blocks):
            raise ConvscopeError(f"{config.base} has {len(self.blocks)} blocks before its head: train_blocks must be "
                                 f"at most that")
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.head = nn.Linear(old_head.in_features, len(self.data.class_names))
        replace_module(self.model, head_path, self.head)
        # The adapter gives logits whatever the model ends in (the MNIST nets end in a softmax).
        self.registered = register_finetuned(self.spec)
        self.adapter = self.registered.adapter(self.model)
        self.timings: dict[str, float] = {}

    def _trainable_blocks(self) -> list[nn.Parameter]:
        """The last ``train_blocks`` blocks' parameters, which learn with the head; everything else is frozen."""
        names = {name for block in self.blocks[len(self.blocks) - self.config.train_blocks:] for name in block}
        self.model.requires_grad_(False)
        self.head.requires_grad_(True)
        trainable = [p for name, p in self.model.named_parameters() if name in names]
        for p in trainable:
            p.requires_grad_(True)
        return trainable

    def run(self, out, command) -> FineTuneResult:
        config = self.config
        reading = time.perf_counter()
        try:
            images, labels, skipped = _read_images(self.data, self.preprocessing.prepare, self.emit, self.started,
                                                   self._cancelled)
        except _Cancelled:
            return self._cancelled_result(list(self.data.skipped))
        self.timings["images"] = time.perf_counter() - reading
        train_idx, val_idx = stratified_split(labels.tolist(), config.validation_split, self.generator)
        if not val_idx:
            raise DataError("too few images to hold any out for validation: give each class at least two")
        self.train_x, self.train_y = images[train_idx], labels[train_idx]
        self.val_x, self.val_y = images[val_idx], labels[val_idx]
        trainable = self._trainable_blocks()
        frozen = config.train_blocks == 0
        try:
            if frozen:
                self._cache_features()
        except _Cancelled:
            return self._cancelled_result(skipped)
        steps_per_epoch = math.ceil(len(self.train_y) / config.batch_size)
        optimizer = torch.optim.AdamW(
            [{"params": list(self.head.parameters()), "lr": config.lr},
             {"params": trainable, "lr": config.lr * BLOCK_LR_FACTOR}], weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
        self.emit(TrainingStarted({**config.shown(), "model": config.name}, config.epochs * steps_per_epoch,
                                  steps_per_epoch, len(self.train_y), len(self.val_y), "cpu", "fp32"))
        logger = self._logger()
        try:
            result = self._train_epochs(optimizer, scheduler, frozen, logger)
        except BaseException:
            if logger:
                logger.finish("failed")
            raise
        if result[1] is None:  # cancelled before the first epoch ended: nothing to keep
            if logger:
                logger.finish("cancelled")
            return self._cancelled_result(skipped)
        return self._finish(out, command, skipped, logger, *result)

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _cancelled_result(self, skipped: list[dict]) -> FineTuneResult:
        self.emit(TrainingFinished("cancelled", 0, time.perf_counter() - self.started, None, None))
        return FineTuneResult(None, "cancelled", 0, None, [], skipped, dict(self.timings))

    def _logger(self):
        if not self.config.tensorboard_dir:
            return None
        from .tensorboard import TensorBoardLogger
        inputs = _as_input(self.val_x[:4])  # fixed validation images: their feature maps each epoch
        self.logged = _Normalizing(self.model, self.preprocessing)  # what the logger runs: pixels in, normalised
        return TensorBoardLogger(self.config.tensorboard_dir, self.logged, inputs, self.config)

    def _train_epochs(self, optimizer, scheduler, frozen: bool, logger):
        config = self.config
        epochs_started = time.perf_counter()
        best = (math.inf, -1.0, 0)  # (validation loss, accuracy, epoch)
        best_state, history, status, step = None, [], "completed", 0
        for epoch in range(1, config.epochs + 1):
            if self._cancelled():
                status = "cancelled"
                break
            train_loss, train_accuracy, step = self._epoch(optimizer, scheduler, step, frozen)
            val_logits = self._validation_logits(frozen)
            val_loss = float(F.cross_entropy(val_logits, self.val_y))
            val_accuracy = float((val_logits.argmax(1) == self.val_y).float().mean())
            if not math.isfinite(train_loss) or not math.isfinite(val_loss):
                raise TrainingDiverged(f"the loss became NaN or infinite in epoch {epoch}: the run diverged (try a "
                                       f"lower learning rate than {config.lr:g}); no model was saved")
            event = EpochEnd(epoch, step, train_loss, train_accuracy, val_loss, val_accuracy,
                             time.perf_counter() - self.started)
            history.append({k: v for k, v in event.as_dict().items()
                            if k not in ("type", "first_conv_weight", "probes")})
            self.emit(event)
            if logger:
                logger.log_epoch(event, self.logged, scheduler.get_last_lr()[0], trainable_only=True)
            if (val_loss, -val_accuracy) < (best[0], -best[1]):
                best = (val_loss, val_accuracy, epoch)
                best_state = {name: p.detach().clone() for name, p in self.model.named_parameters() if p.requires_grad}
            elif epoch - best[2] >= config.patience:
                status = "stopped_early"
                break
        self.timings["epochs"] = time.perf_counter() - epochs_started
        self.timings["per_epoch"] = self.timings["epochs"] / max(len(history), 1)
        return best, best_state, history, status, step

    def _finish(self, out, command, skipped, logger, best, best_state, history, status, step) -> FineTuneResult:
        """The best epoch's weights back in the model, its validation metrics, the checkpoint, the last events."""
        config, frozen = self.config, self.config.train_blocks == 0
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if name in best_state:
                    p.copy_(best_state[name])
        self.model.eval().requires_grad_(True)
        metrics = metrics_from_logits(self._validation_logits(frozen), self.val_y)
        if logger:
            logger.finish(status if status != "stopped_early" else "completed")
        wall_s = time.perf_counter() - self.started
        path = None
        if out is not None and status != "cancelled":
            path = save_checkpoint(Path(out), self.model, config.name, {
                "finetuned": self.spec.as_dict(),
                "training": {"kind": "finetune", "config": config.as_dict(), "command": command, "steps": step,
                             "status": status, "best_epoch": best[2], "wall_s": round(wall_s, 3),
                             "timings": {k: round(v, 3) for k, v in self.timings.items()},
                             "threads": torch.get_num_threads(), "torch_version": torch.__version__},
                "history": history,
                "validation_metrics": metrics.as_dict(),
                "data": {"source": self.data.source, "classes": self.data.counts(), "train": len(self.train_y),
                         "validation": len(self.val_y), "skipped": len(skipped)},
            })
        self.emit(TrainingFinished(status, step, wall_s, None, str(path) if path else None))
        checkpoint = Checkpoint(self.adapter, self.registered, {"model": config.name,
                                                                "finetuned": self.spec.as_dict()}, path)
        return FineTuneResult(checkpoint, status, best[2], metrics, history, skipped, dict(self.timings), path)

    def _forward_features(self, x_uint8: torch.Tensor, augment: bool = False) -> torch.Tensor:
        """The head's input for a batch of stored images, without gradients."""
        recorder = _HeadInput(self.head)
        try:
            with torch.inference_mode():
                x = _as_input(x_uint8)
                if augment:
                    x = augment_photos(x, self.generator)
                self.model(self.preprocessing.normalize(x))
        finally:
            recorder.handle.remove()
        return recorder.value.flatten(1).clone()

    def _cache_features(self) -> None:
        """The backbone's features of every validation image and of every training image plus its augmented
        views, computed once: (views, N, D) for training, (N, D) for validation."""
        started = time.perf_counter()
        views = 1 + (self.config.augment_views if self.config.augment else 0)
        total, done = len(self.val_y) + views * len(self.train_y), 0
        batch = 32

        def features(images: torch.Tensor, augment: bool) -> torch.Tensor:
            nonlocal done
            parts = []
            for start in range(0, len(images), batch):
                if self._cancelled():
                    raise _Cancelled
                parts.append(self._forward_features(images[start:start + batch], augment))
                done += len(parts[-1])
                self.emit(Preparing("features", done, total, time.perf_counter() - self.started))
            return torch.cat(parts)

        self.val_features = features(self.val_x, False)
        self.train_features = torch.stack([features(self.train_x, view > 0) for view in range(views)])
        self.timings["features"] = time.perf_counter() - started

    def _epoch(self, optimizer, scheduler, step: int, frozen: bool) -> tuple[float, float, int]:
        config = self.config
        self.head.train()
        order = torch.randperm(len(self.train_y), generator=self.generator)
        total_loss, correct, seen = 0.0, 0, 0
        for start in range(0, len(order), config.batch_size):
            if not frozen and self._cancelled():  # a whole-network epoch takes long: stop within it
                break
            idx = order[start:start + config.batch_size]
            y = self.train_y[idx]
            if frozen:  # one cached view of each image, drawn at random
                view = torch.randint(len(self.train_features), (len(idx),), generator=self.generator)
                logits = self.head(self.train_features[view, idx])
            else:
                x = _as_input(self.train_x[idx])
                if config.augment:
                    x = augment_photos(x, self.generator)
                logits = self.adapter.logits(x)
            loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)  # fewer than all when cancelled within the epoch
        self.head.eval()
        return total_loss / max(seen, 1), correct / max(seen, 1), step

    @torch.inference_mode()
    def _validation_logits(self, frozen: bool) -> torch.Tensor:
        if frozen:
            return self.head(self.val_features)
        return torch.cat([self.adapter.logits(_as_input(self.val_x[start:start + 32]))
                          for start in range(0, len(self.val_y), 32)])
