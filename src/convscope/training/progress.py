"""A ready ``on_event`` for ``train`` and ``finetune``: a progress bar over the optimizer steps with the live loss and
accuracy, and the validation loss and accuracy after each epoch. Through ``tqdm.auto``, so it is a widget in
Jupyter and text elsewhere; the CLI's bar (``cli.progress.TerminalProgress``) is this one on stderr.

Events are told apart by ``type``: importing their classes would import torch, and ``convscope.training`` is
imported by processes that have not loaded it yet.
"""

from __future__ import annotations

from tqdm.auto import tqdm as auto_tqdm

PREPARING = {"images": "reading images", "features": "computing features"}  # Preparing.stage -> the bar's label


class ProgressBar:
    """``train(TrainConfig(), on_event=ProgressBar())``, ``finetune(folder, config, on_event=ProgressBar())``.

    Fine-tuning's preparation (reading the images, computing the frozen backbone's features) gets a bar of its
    own before training starts. The bar closes when the run finishes or fails; ``bar`` is the last one shown.
    ``file``: where a text bar goes (tqdm's default: stderr); ``tqdm_class`` and ``options`` go to the bars.
    """

    def __init__(self, file=None, tqdm_class=auto_tqdm, **options):
        self.file, self.tqdm_class, self.options = file, tqdm_class, options
        self.bar = None
        self.stage: str | None = None  # what the bar counts: "images", "features" (preparing) or "steps"
        self.postfix: dict[str, str] = {}
        self.batches = False  # whether this run reports batches (training from scratch does, fine-tuning not)

    def __call__(self, event) -> None:
        if event.type == "preparing":
            if self.stage != event.stage:
                self._open(event.stage, total=event.total, desc=PREPARING.get(event.stage, event.stage),
                           unit="image")
            self._show(event.done)
        elif event.type == "started":
            self._open("steps", total=event.total_steps, desc=event.config.get("model"), unit="step")
        elif event.type == "progress" and self.stage == "steps":
            self.postfix.update(loss=f"{event.loss:.3f}", acc=f"{event.accuracy:.3f}",
                                img_s=f"{event.images_per_s:,.0f}")
            self.batches = True
            self._show(event.step)
        elif event.type == "epoch" and self.stage == "steps":
            if not self.batches:  # else the live figures stay: the epoch's mean would be a jump back in time
                self.postfix.update(loss=f"{event.train_loss:.3f}", acc=f"{event.train_accuracy:.3f}")
            if event.val_accuracy is not None:
                self.postfix.update(val_loss=f"{event.val_loss:.3f}", val_acc=f"{event.val_accuracy:.3f}")
            self._show(event.step, now=True)
        elif event.type == "finished" and self.stage == "steps":
            if event.status != "completed":
                self.postfix["status"] = event.status
            if event.status != "cancelled":
                # A run that stopped early (target reached, no better validation loss) is finished, not broken:
                # its bar counts as full (a notebook colours a bar that closes short of its total red).
                self.bar.total = max(event.steps, 1)
            if event.test_metrics:
                self.postfix["test_acc"] = f"{event.test_metrics['accuracy']:.4f}"
            self._show(event.steps)
            self.close()
        elif event.type in ("finished", "failed"):
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.stage = None

    def _open(self, stage: str, **bar_options) -> None:
        self.close()
        self.bar = self.tqdm_class(file=self.file, **{**self.options, **bar_options})
        self.stage, self.postfix, self.batches = stage, {}, False

    def _show(self, done: int, now: bool = False) -> None:
        """The bar at ``done`` with the current figures; ``now``: drawn at once, not at tqdm's next redraw."""
        self.bar.set_postfix(self.postfix, refresh=False)
        self.bar.update(done - self.bar.n)
        if now:
            self.bar.refresh()
