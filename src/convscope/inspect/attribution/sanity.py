"""The model parameter randomisation test of Adebayo et al. (2018, "Sanity Checks for Saliency Maps"): randomise
the model's weights layer by layer, from the logits down (cascading), explain the same input and class again after
each layer, and measure how much the explanation still looks like the original. An explanation of the model must
change once the weights it learned are gone; one that stays the same shows the input's outline, not the model.

Similarity is the Spearman rank correlation of the absolute attributions and the SSIM of the maps each scaled to
[0, 1], the paper's two measures. The verdict: a method passes when, with every layer randomised, the rank
correlation has fallen below ``PASS_BELOW``; flat maps (no ranks) leave it inconclusive."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InputError
from ...models.adapter import ModelAdapter
from .base import Attribution, ProgressFn
from .base import Cancelled
from .registry import ATTRIBUTIONS, attribute

PASS_BELOW = 0.5


@dataclass
class SanityStep:
    randomised: str  # the layer randomised at this step (with every layer above it, randomised before)
    spearman: float | None  # of the absolute attributions, the mean over the inputs; None when the maps are flat
    ssim: float  # the mean over the inputs
    attribution: Attribution = field(repr=False)  # the first input's, with the weights as randomised so far


@dataclass
class SanityCheck:
    method: str
    targets: list[int]  # each input's class explained
    original: Attribution = field(repr=False)  # the first input's
    steps: list[SanityStep]

    @property
    def outcome(self) -> str:
        """"passes", "fails", or "inconclusive": no layer to randomise, or flat maps, which have no ranks to
        compare (a CAM with no positive evidence, say)."""
        final = self.steps[-1].spearman if self.steps else None
        if final is None:
            return "inconclusive"
        return "passes" if abs(final) < PASS_BELOW else "fails"

    @property
    def passes(self) -> bool:
        return self.outcome == "passes"

    @property
    def verdict(self) -> str:
        if not self.steps:
            return "inconclusive: the model has no layer with weights to randomise"
        final = self.steps[-1]
        if final.spearman is None:
            return "inconclusive: the maps are flat (no ranks to compare)"
        measured = f"rank correlation {final.spearman:.2f}, SSIM {final.ssim:.2f} with every layer randomised"
        if self.passes:
            return f"passes: the maps change when the weights are randomised ({measured})"
        return f"fails: the maps barely change when the weights are randomised ({measured})"

    def as_dict(self) -> dict:
        return {"method": self.method, "targets": self.targets, "outcome": self.outcome, "passes": self.passes,
                "verdict": self.verdict,
                "pass_below": PASS_BELOW,
                "steps": [{"randomised": s.randomised, "spearman": s.spearman, "ssim": s.ssim} for s in self.steps]}


def layers_with_weights(module: nn.Module) -> list[str]:
    """The modules that hold parameters of their own, in the order they were defined (the forward order for the
    usual models), by their names in the module."""
    return [name for name, m in module.named_modules() if name and any(True for _ in m.parameters(recurse=False))]


def randomise(module: nn.Module, generator: torch.Generator) -> None:
    """Draw a module's own parameters afresh: normal, with each tensor's own mean and standard deviation (the
    scale the layer had: a batch norm's scales stay near their mean, about 1.4 in EfficientNet, instead of
    centring on 0 and silencing the network; what was learned, the arrangement, is gone)."""
    with torch.no_grad():
        for param in module.parameters(recurse=False):
            mean = float(param.mean())
            scale = float(param.std()) if param.numel() > 1 else abs(mean) or 1.0
            param.copy_(mean + torch.randn(param.shape, generator=generator) * (scale or 1.0))


def check_cost(model: ModelAdapter, method: str, images: int) -> int:
    """The multiply-accumulates a check would take: every input explained once per layer with weights, and once
    more with the weights as trained."""
    return images * (len(layers_with_weights(model.module)) + 1) * ATTRIBUTIONS[method].macs(model)


def cascading_randomisation(model: ModelAdapter, images: torch.Tensor, method: str, target: int | None = None,
                            layer: str | None = None, seed: int = 0, progress: ProgressFn | None = None,
                            cancelled: Callable[[], bool] | None = None) -> SanityCheck:
    """Explain each of ``images`` (one prepared input (C, H, W), or a batch (N, C, H, W)) for ``target``
    (default: each one's predicted class) with ``method``; then again after randomising each layer with weights in
    turn, from the last to the first, on a copy of the model (the model itself is untouched). Each step's measures
    are the means over the inputs. ``progress(done, total)`` counts explanations."""
    images = torch.as_tensor(images).reshape(-1, *model.input_shape)
    originals = [attribute(model, x, method, target, layer, cancelled=cancelled) for x in images]
    names = layers_with_weights(model.module)
    copied = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    modules = dict(copied.module.named_modules())
    steps, total = [], len(images) * (len(names) + 1)
    for step, name in enumerate(reversed(names), 1):
        if cancelled is not None and cancelled():
            raise Cancelled("the sanity check was cancelled")
        randomise(modules[name], generator)
        again = [attribute(copied, x, method, original.target, original.layer, cancelled=cancelled)
                 for x, original in zip(images, originals, strict=True)]
        pairs = [(o.values, a.values) for o, a in zip(originals, again, strict=True)]
        correlations = [c for c in (spearman(*pair) for pair in pairs) if c is not None]
        steps.append(SanityStep(name, float(np.mean(correlations)) if correlations else None,
                                float(np.mean([ssim(*pair) for pair in pairs])), again[0]))
        if progress is not None:
            progress(len(images) * (step + 1), total)
    return SanityCheck(method, [o.target for o in originals], originals[0], steps)


@dataclass
class DataRandomisation:
    """The data randomisation test: the same inputs and classes explained by the model and by one of the same
    architecture trained on shuffled labels. A map that explains what the model learned from its labels must
    differ between the two."""

    method: str
    against: str  # the model trained on shuffled labels
    targets: list[int]
    spearman: float | None  # of the absolute attributions, the mean over the inputs; None when the maps are flat
    ssim: float
    flat_against: bool = False  # every map of the shuffled-label model is flat: it learned nothing at all

    @property
    def outcome(self) -> str:
        if self.spearman is None or self.flat_against:
            return "inconclusive"
        return "passes" if abs(self.spearman) < PASS_BELOW else "fails"

    @property
    def verdict(self) -> str:
        if self.flat_against:
            return (f"inconclusive: every map of {self.against} is flat, so it learned nothing to compare with (its "
                    "ReLUs died in training: train it with a smaller learning rate, 0.001 say)")
        if self.spearman is None:
            return "inconclusive: the maps are flat (no ranks to compare)"
        measured = f"rank correlation {self.spearman:.2f}, SSIM {self.ssim:.2f} against {self.against}"
        if self.outcome == "passes":
            return f"passes: the maps change when the labels were shuffled in training ({measured})"
        return f"fails: the maps barely change when the labels were shuffled in training ({measured})"

    def as_dict(self) -> dict:
        return {"method": self.method, "against": self.against, "targets": self.targets, "outcome": self.outcome,
                "verdict": self.verdict, "pass_below": PASS_BELOW, "spearman": self.spearman, "ssim": self.ssim,
                "flat_against": self.flat_against}


def data_randomisation(model: ModelAdapter, shuffled: ModelAdapter, images: torch.Tensor, method: str,
                       layer: str | None = None, progress: ProgressFn | None = None,
                       cancelled: Callable[[], bool] | None = None) -> DataRandomisation:
    """Explain each of ``images`` for the class ``model`` predicts, with ``model`` and with ``shuffled`` (the same
    architecture trained on shuffled labels), and compare the maps (means over the inputs)."""
    if shuffled.input_shape != model.input_shape or shuffled.num_classes != model.num_classes:
        raise InputError(f"{shuffled.name} takes {shuffled.input_shape} with {shuffled.num_classes} classes; "
                         f"{model.name} takes {model.input_shape} with {model.num_classes}: they cannot be compared")
    images = torch.as_tensor(images).reshape(-1, *model.input_shape)
    pairs, targets = [], []
    for done, x in enumerate(images):
        original = attribute(model, x, method, layer=layer, cancelled=cancelled)
        pairs.append((original.values, attribute(shuffled, x, method, original.target, original.layer,
                                                  cancelled=cancelled).values))
        targets.append(original.target)
        if progress is not None:
            progress(done + 1, len(images))
    correlations = [c for c in (spearman(*pair) for pair in pairs) if c is not None]
    flat = all(bool((b == b.flatten()[0]).all()) for _, b in pairs)
    return DataRandomisation(method, shuffled.name, targets,
                             float(np.mean(correlations)) if correlations else None,
                             float(np.mean([ssim(*pair) for pair in pairs])), flat)


def sanity_inputs(model: ModelAdapter, dataset: str, count: int, settings=None) -> torch.Tensor:
    """(N, C, H, W) inputs to check a method on: the first ``count`` MNIST test digits for a model that reads them
    (``dataset`` "mnist"), the sample photos (four) prepared for any other."""
    if dataset == "mnist":
        from ...data import load_mnist
        return load_mnist("test", settings).images[:count].float()[:, None] / 255.0
    from ...data.photos import PHOTOS
    from ...images import open_image
    return torch.stack([model.preprocessing.prepare(open_image(photo.path))[0]
                        for photo in list(PHOTOS.values())[:count]])


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their mean rank (a CAM's many zeros are one tie)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2  # ranks starts+1 .. ends, averaged
    result = np.empty(len(values))
    result[order] = mean_rank[np.cumsum(first) - 1]
    return result


def spearman(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Spearman's rank correlation of |a| and |b|; None when either is constant."""
    ra, rb = ranks(a.abs().flatten().double().numpy()), ranks(b.abs().flatten().double().numpy())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / norm) if norm > 0 else None


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Structural similarity (Wang et al. 2004) of two (H, W) maps, each |map| scaled to [0, 1] by its maximum: a
    Gaussian window (sigma 1.5, 11 wide or the map's smaller side), over the positions it fits in whole."""
    def scaled(m: torch.Tensor) -> torch.Tensor:
        m = m.abs().double()
        return m / m.max() if m.max() > 0 else m

    x, y = scaled(a)[None, None], scaled(b)[None, None]
    side = min(11, *x.shape[2:])
    side -= 1 - side % 2  # odd
    offsets = torch.arange(side, dtype=torch.float64) - side // 2
    g = torch.exp(-offsets ** 2 / (2 * 1.5 ** 2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]

    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window)

    mx, my = mean(x), mean(y)
    vx, vy, cxy = mean(x * x) - mx ** 2, mean(y * y) - my ** 2, mean(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(index.mean())
