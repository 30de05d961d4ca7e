"""Showing trainer events in a terminal: the notebook's progress bar (``training.progress.ProgressBar``) as plain
text on stderr, with a line saying what trains and one line per epoch."""

from __future__ import annotations

import sys

from tqdm import tqdm

from ..training.progress import ProgressBar


class TerminalProgress(ProgressBar):
    def __init__(self, enabled: bool = True):
        super().__init__(file=sys.stderr, tqdm_class=tqdm, dynamic_ncols=True)
        self.enabled = enabled

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        if event.type == "started":
            print(f"training {event.config['model']} on {event.train_size:,} images "
                  f"({event.validation_size:,} held out) on {event.device}, {event.precision}", file=self.file)
        super().__call__(event)
        if event.type == "epoch":
            val = "" if event.val_accuracy is None else \
                f", validation loss {event.val_loss:.4f} accuracy {event.val_accuracy:.4f}"
            line = (f"epoch {event.epoch}: train loss {event.train_loss:.4f} accuracy {event.train_accuracy:.4f}"
                    f"{val} ({event.elapsed_s:.1f} s)")
            (self.bar.write if self.stage == "steps" else print)(line, file=self.file)
