"""A ready ``progress`` callback for downloads (pretrained weights, MNIST): a ``tqdm.auto`` bar, so a widget in
Jupyter and text elsewhere. Training runs have their own: ``convscope.training.ProgressBar``."""

from __future__ import annotations

from tqdm.auto import tqdm as auto_tqdm


class DownloadBar:
    """A ``ProgressFn`` (called with bytes received so far and the total, or None) drawing one bar per file:
    ``load_model("resnet50", progress=DownloadBar("resnet50"))``, ``mnist_dir(progress=DownloadBar("MNIST"))``.

    Nothing is drawn until bytes arrive, so weights that are already here show no bar. A bar closes itself once
    its file is complete; one whose size is unknown closes at the next file or with ``close()`` (or ``with``).
    ``file``: where a text bar goes (tqdm's default: stderr); ``tqdm_class`` and ``options`` go to the bars.
    """

    def __init__(self, description: str = "download", file=None, tqdm_class=auto_tqdm, **options):
        self.description, self.file, self.tqdm_class, self.options = description, file, tqdm_class, options
        self.bar = None  # the last bar shown
        self.open = False

    def __call__(self, received: int, total: int | None) -> None:
        if not self.open or received < self.bar.n:  # the first bytes of a file, or of another mirror's copy
            self.close()
            # The total goes in now: a notebook's widget takes its length when it is made.
            self.bar = self.tqdm_class(total=total, desc=self.description, unit="B", unit_scale=True,
                                       unit_divisor=1024, file=self.file, **self.options)
            self.open = True
        self.bar.update(received - self.bar.n)
        if total is not None and received >= total:
            self.close()

    def close(self) -> None:
        if self.open:
            self.bar.close()
            self.open = False

    def __enter__(self) -> DownloadBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
