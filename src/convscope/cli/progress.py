"""Showing trainer events in a terminal: a tqdm bar for batches, one line per epoch."""

from __future__ import annotations

import sys

from tqdm import tqdm

from ..training.events import BatchProgress, EpochEnd, TrainEvent, TrainingFinished, TrainingStarted


class TerminalProgress:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar: tqdm | None = None

    def __call__(self, event: TrainEvent) -> None:
        if not self.enabled:
            return
        if isinstance(event, TrainingStarted):
            print(f"training {event.config['model']} on {event.train_size:,} images "
                  f"({event.validation_size:,} held out) on {event.device}, {event.precision}", file=sys.stderr)
            self.bar = tqdm(total=event.total_steps, unit="step", file=sys.stderr, dynamic_ncols=True)
        elif isinstance(event, BatchProgress) and self.bar is not None:
            self.bar.update(event.step - self.bar.n)
            self.bar.set_postfix(loss=f"{event.loss:.3f}", acc=f"{event.accuracy:.3f}",
                                 img_s=f"{event.images_per_s:,.0f}")
        elif isinstance(event, EpochEnd):
            val = "" if event.val_accuracy is None else \
                f", validation loss {event.val_loss:.4f} accuracy {event.val_accuracy:.4f}"
            line = (f"epoch {event.epoch}: train loss {event.train_loss:.4f} accuracy {event.train_accuracy:.4f}"
                    f"{val} ({event.elapsed_s:.1f} s)")
            (self.bar.write if self.bar else print)(line, file=sys.stderr)
        elif isinstance(event, TrainingFinished) and self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
