"""What every attribution method shares: its description (name, cost, whether its values have a sign), the result
(an input-sized map of raw values), and the forward function that reports progress and stops a cancelled run.

Values are kept raw: normalising each map on its own hides that one method's evidence is a thousand times
another's; ``Attribution.normalised`` gives the per-map view, ``values`` the shared one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ...errors import ConvscopeError, ModelError
from ...models.adapter import ModelAdapter

ProgressFn = Callable[[int, int], None]  # (inputs evaluated so far, in all)


class Cancelled(ConvscopeError):
    """A slow attribution was stopped by its caller (``cancelled()`` became true)."""


@dataclass
class Attribution:
    """One method's explanation of one class for one input."""

    method: str
    target: int
    values: torch.Tensor  # (H, W) float32 on the CPU: each input pixel's attribution, channels reduced
    signed: bool  # values can be negative (evidence against the class): shown on a diverging scale
    layer: str | None  # the layer a CAM was taken at; None for the methods that work on the input
    seconds: float
    forward_passes: int  # inputs the model evaluated (a batch of 16 counts 16): what the method cost

    def normalised(self) -> torch.Tensor:
        """(H, W) divided by its largest magnitude: in [0, 1], or [-1, 1] for a signed method; zeros stay zeros."""
        peak = self.values.abs().max()
        return self.values / peak if peak > 0 else self.values.clone()


@dataclass
class Run:
    """One attribution's model, input and bookkeeping, handed to a method."""

    model: ModelAdapter
    x: torch.Tensor  # (1, C, H, W) in [0, 1]
    target: int
    layer: str | None
    progress: ProgressFn | None = None
    cancelled: Callable[[], bool] | None = None
    expected: int = 1  # inputs the method will evaluate, for progress
    evaluated: int = field(default=0, init=False)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """``model.logits`` that counts what it evaluates, reports progress and raises Cancelled when asked to
        stop: what the methods hand to Captum, which calls it once per chunk."""
        self.check()
        logits = self.model.logits(batch)
        self.count(batch.shape[0])
        return logits

    def check(self) -> None:
        """Raise Cancelled if the caller asked to stop."""
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("the attribution was cancelled")

    def count(self, inputs: int) -> None:
        """``inputs`` more evaluated: progress reported."""
        self.evaluated += inputs
        if self.progress is not None:
            self.progress(min(self.evaluated, self.expected), self.expected)


class AttributionMethod:
    """One explanation method. Subclasses set the class attributes and implement ``explain``."""

    name: ClassVar[str]
    title: ClassVar[str]
    paper: ClassVar[str]
    cost: ClassVar[str]  # what one attribution costs, in forward and backward passes
    slow: ClassVar[bool] = False  # many passes: run with progress, cancellable
    signed: ClassVar[bool] = False
    needs_layer: ClassVar[bool] = False  # a CAM: explained at a spatial layer
    backward: ClassVar[bool] = True  # its passes go back through the model too (counted as two forwards more)

    def passes(self, run: Run) -> int:
        """How many inputs the method will evaluate (for progress)."""
        return 1

    def macs(self, model: ModelAdapter) -> int:
        """About what one attribution costs with ``model``, in multiply-accumulates."""
        passes = self.passes(Run(model, torch.zeros(1, *model.input_shape), 0, None))
        return passes * sum(tap.macs for tap in model.graph.taps) * (3 if self.backward else 1)

    def explain(self, run: Run) -> torch.Tensor:
        """(H, W) or (C, H, W) attribution of ``run.target`` for ``run.x``."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "title": self.title, "paper": self.paper, "cost": self.cost, "slow": self.slow,
                "signed": self.signed, "needs_layer": self.needs_layer}

    def __call__(self, run: Run) -> Attribution:
        run.expected = self.passes(run)
        started = time.perf_counter()
        with torch.enable_grad():
            values = self.explain(run).detach().float().cpu()
        if values.dim() == 3:
            values = reduce_channels(values, self.signed)
        if not torch.isfinite(values).all():
            raise ModelError(f"{self.title} gave NaN or infinite values for this input")
        return Attribution(self.name, run.target, values, self.signed, run.layer if self.needs_layer else None,
                           time.perf_counter() - started, run.evaluated)


def reduce_channels(values: torch.Tensor, signed: bool) -> torch.Tensor:
    """(C, H, W) -> (H, W): a signed attribution is summed over the colour channels (its total per pixel, as
    Captum's visualisations do); a gradient magnitude takes the largest channel (Simonyan et al. 2014)."""
    return values.sum(dim=0) if signed else values.abs().amax(dim=0)


def captum_attr():
    """Captum's attribution package, imported when first needed: it imports matplotlib's pyplot (about a second)
    and the engine's core must not pay for that at import."""
    try:
        import captum.attr
    except ImportError as e:  # pragma: no cover - captum is a dependency
        raise ModelError(f"this method needs Captum (pip install captum): {e}") from None
    return captum.attr
