"""Feature visualization by optimisation: an image made, by gradient ascent from near-grey, to drive one channel,
one neuron or one class logit as high as it goes (Erhan et al. 2009; Simonyan et al. 2014; Olah, Mordvintsev &
Schubert 2017, "Feature Visualization", Distill).

What keeps the result readable rather than adversarial noise: the image's parameterisation (a 1/f-scaled Fourier
basis, decorrelated colours, a sigmoid; :mod:`.parameterisation`) and random shifts, scales and rotations before
every step (:mod:`.transforms`). ``batch`` > 1 with ``diversity`` > 0 makes several images at once, pushed apart
by a penalty on how alike their Gram matrices are at the target layer (the paper's "Diversity" section), so they
show different facets of what the channel responds to.

Works for any input: 1-channel 28x28 digit models and 3-channel 224 px ones alike, and other sizes where the
model's layers up to the target take them. Everything random comes from one seeded generator: the same model,
target and settings give the same image.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import torch

from ...errors import InputError
from ...models.adapter import ModelAdapter
from ..attribution.base import Cancelled, ProgressFn
from .objective import Target, check_target, gram_similarity, objective_values, opening, stand_in_for
from .parameterisation import PARAMETERISATIONS, ImageParameters, Parameterisation
from .transforms import RandomAffine

ImageFn = Callable[[int, torch.Tensor], None]  # (step, (B, C, H, W) images in [0, 1] on the CPU)


@dataclass(frozen=True)
class VisualizationSettings:
    """How the image is made. ``size`` None: the model's input size; ``jitter`` None: about a 28th of the
    image's side (1 px on MNIST, 8 on 224 px, as Lucid's defaults at 224); ``jitter``, ``scale`` and
    ``degrees`` all 0: no transformation robustness."""

    steps: int = 256
    learning_rate: float = 0.05  # Adam's
    parameterisation: Parameterisation = "fourier"
    decorrelate: bool = True  # colour decorrelation; only 3-channel inputs have colours
    size: tuple[int, int] | None = None  # (H, W)
    jitter: float | None = None  # pixels each way
    scale: float = 0.1  # random scale in [1 - scale, 1 + scale]
    degrees: float = 10.0  # random rotation in [-degrees, degrees]
    batch: int = 1  # images made together
    diversity: float = 0.0  # weight of the Gram-similarity penalty between them
    seed: int = 0

    def __post_init__(self) -> None:
        problems = [
            (self.steps >= 1, "steps must be at least 1"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.parameterisation in PARAMETERISATIONS, f"parameterisation must be one of {PARAMETERISATIONS}"),
            (self.size is None or (len(self.size) == 2 and min(self.size) >= 1), "size must be (H, W)"),
            (self.jitter is None or self.jitter >= 0, "jitter must be 0 or more"),
            (0 <= self.scale < 1, "scale must be in [0, 1)"),
            (self.degrees >= 0, "degrees must be 0 or more"),
            (self.batch >= 1, "batch must be at least 1"),
            (self.diversity >= 0, "diversity must be 0 or more"),
        ]
        wrong = [message for ok, message in problems if not ok]
        if wrong:
            raise InputError("; ".join(wrong))

    def resolved(self, model: ModelAdapter) -> VisualizationSettings:
        """The same settings with ``size`` and ``jitter`` filled in for ``model``: what a result records."""
        size = tuple(self.size) if self.size is not None else tuple(model.input_shape[1:])
        jitter = self.jitter if self.jitter is not None else float(max(1, round(min(size) / 28)))
        return replace(self, size=size, jitter=jitter)

    def as_dict(self) -> dict:
        body = asdict(self)
        body["size"] = list(self.size) if self.size is not None else None
        return body


@dataclass
class Visualization:
    """The images made for one target, with how the objective rose."""

    target: Target
    settings: VisualizationSettings  # resolved: size and jitter filled in
    images: torch.Tensor  # (B, C, H, W) float32 in [0, 1], CPU
    history: list[float]  # per step, the objective on that step's transformed images (mean over the batch)
    values: list[float]  # the objective of each final image as it is, untransformed
    seconds: float


def visualize(model: ModelAdapter, target: Target, settings: VisualizationSettings | None = None, *,
              progress: ProgressFn | None = None, on_image: ImageFn | None = None, image_every: int = 16,
              cancelled: Callable[[], bool] | None = None) -> Visualization:
    """Optimise an image (or ``settings.batch`` of them) to maximise ``target`` in ``model``.

    Args:
        model: the model; it is not changed (no gradient reaches its parameters).
        target: a :class:`Target`.
        settings: :class:`VisualizationSettings`; default ones when None.
        progress: called as ``progress(step, steps)`` after every step.
        on_image: called as ``on_image(step, images)`` every ``image_every`` steps and after the last, with the
            (B, C, H, W) images so far: the image improving as it goes.
        cancelled: polled before every step; when it returns True the run stops, raising :class:`Cancelled`.
    """
    settings = (settings or VisualizationSettings()).resolved(model)
    check_target(model, target)
    ascent = _Ascent(model, target, settings)
    history: list[float] = []
    started = time.perf_counter()
    with denormals_flushed():
        for step in range(1, settings.steps + 1):
            if cancelled is not None and cancelled():
                raise Cancelled("the feature visualization was cancelled")
            history.append(ascent.step())
            if progress is not None:
                progress(step, settings.steps)
            if on_image is not None and (step % image_every == 0 or step == settings.steps):
                on_image(step, ascent.images())
        final = ascent.images()
        with torch.no_grad():
            values, _ = objective_values(model, target, final.to(model.device, model.dtype), set())
    return Visualization(target, settings, final, history, values.float().cpu().tolist(),
                         time.perf_counter() - started)


class _Ascent:
    """One optimisation: the image parameters, their optimiser, and what each step computes."""

    def __init__(self, model: ModelAdapter, target: Target, settings: VisualizationSettings):
        self.model, self.target, self.settings = model, target, settings
        self.diversity_layer = _diversity_layer(model, target, settings)
        self.stand_in = stand_in_for(model, target)
        self.extra_taps = {name for name in (self.diversity_layer, self.stand_in) if name is not None}
        height, width = settings.size
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.image = ImageParameters(settings.batch, model.input_shape[0], height, width, settings.parameterisation,
                                     settings.decorrelate, self.generator).to(model.device)
        self.transform = RandomAffine(settings.jitter, settings.scale, settings.degrees)
        self.optimiser = torch.optim.Adam(self.image.parameters(), lr=settings.learning_rate)

    def step(self) -> float:
        """One gradient step; returns the objective on the transformed images (mean over the batch)."""
        with torch.enable_grad():
            seen = self.transform(self.image(), self.generator).to(self.model.dtype)
            values, store = objective_values(self.model, self.target, seen, self.extra_taps)
            pushed = values
            if self.stand_in is not None:  # a shut ReLU passes no gradient: raise what goes into it until it opens
                pushed = torch.where(values > 0, values, opening(self.target, store[self.stand_in]))
            loss = -pushed.mean()
            if self.diversity_layer is not None:
                loss = loss + self.settings.diversity * gram_similarity(store[self.diversity_layer])
            parameters = list(self.image.parameters())
            grads = torch.autograd.grad(loss, parameters)  # the model's own weights get none
        for parameter, grad in zip(parameters, grads, strict=True):
            parameter.grad = grad
        self.optimiser.step()
        return float(values.detach().float().mean())

    def images(self) -> torch.Tensor:
        """(B, C, H, W) float32 in [0, 1] on the CPU: the images as they are now."""
        with torch.no_grad():
            return self.image().detach().float().cpu()


@contextmanager
def denormals_flushed() -> Iterator[None]:
    """Run the block with subnormal floats flushed to zero on this thread, as they were before afterwards. As an
    image settles, values in the network can fall below float32's smallest normal number, and the CPU handles
    those in microcode: EfficientNet-Lite0's steps at 128 px went from 24 ms to 370-700 ms for dozens of steps
    in a row. Flushed they stay at 24-30 ms; the image changes by nothing a float32 pixel can show."""
    tiny = torch.tensor([1e-39])  # subnormal in float32: a product with it comes out 0 while flushing
    was_flushing = float(tiny * torch.tensor([1.0])) == 0.0
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not was_flushing:
            torch.set_flush_denormal(False)


def _diversity_layer(model: ModelAdapter, target: Target, settings: VisualizationSettings) -> str | None:
    """Where the diversity penalty compares images: the target's layer when it is a map, else the layer a CAM
    would use (the last conv block's). None when there is no penalty."""
    if settings.diversity == 0 or settings.batch == 1:
        return None
    if target.layer is not None and len(model.graph[target.layer].output_shape) == 3:
        return target.layer
    layer = model.graph.default_cam_layer()
    if layer is None:
        raise InputError(f"{model.name} has no spatial layer to compare images at: use diversity 0")
    return layer
