"""The methods made of input gradients, through Captum: saliency, SmoothGrad, Integrated Gradients and Guided
Backpropagation, each on the model's logits for the target class."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .base import AttributionMethod, Run, captum_attr

CHUNK = 16  # inputs per batch for the many-sample methods: memory stays bounded whatever the sample count


class Saliency(AttributionMethod):
    name, title = "saliency", "Saliency (|gradient|)"
    paper = "Simonyan et al. 2014, Deep Inside Convolutional Networks"
    cost = "1 forward, 1 backward"
    uses_captum = True

    def explain(self, run: Run) -> torch.Tensor:
        return captum_attr().Saliency(run.forward).attribute(run.x, target=run.target, abs=True)[0]


class SmoothGrad(AttributionMethod):
    """The mean |gradient| over copies of the input with Gaussian noise (15% of the [0, 1] range, as the paper
    recommends): the sharp noise of a single gradient averages out."""

    name, title = "smoothgrad", "SmoothGrad"
    paper = "Smilkov et al. 2017, SmoothGrad: removing noise by adding noise"
    samples = 25
    noise = 0.15
    cost = f"{samples} forwards and backwards (noisy copies, in batches of {CHUNK})"
    slow = True
    uses_captum = True

    def passes(self, run: Run) -> int:
        return self.samples

    def explain(self, run: Run) -> torch.Tensor:
        attr = captum_attr()
        smooth = attr.NoiseTunnel(attr.Saliency(run.forward))
        return smooth.attribute(run.x, target=run.target, nt_type="smoothgrad", nt_samples=self.samples,
                                nt_samples_batch_size=CHUNK, stdevs=self.noise, abs=True)[0]


class IntegratedGradients(AttributionMethod):
    """The gradient averaged along the straight path from a black image to the input, times the input's
    difference from black: the attributions add up to the target's logit minus its logit for black
    (completeness)."""

    name, title = "integrated_gradients", "Integrated Gradients"
    paper = "Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks"
    steps = 50
    cost = f"{steps} forwards and backwards (points on the path, in batches of {CHUNK})"
    slow = True
    signed = True
    uses_captum = True

    def passes(self, run: Run) -> int:
        return self.steps

    def explain(self, run: Run) -> torch.Tensor:
        ig = captum_attr().IntegratedGradients(run.forward)
        return ig.attribute(run.x, baselines=torch.zeros_like(run.x), target=run.target, n_steps=self.steps,
                            internal_batch_size=CHUNK)[0]


class _Logits(nn.Module):
    """The adapter's logits as a module whose children are the model's own: Captum finds its ReLU modules there
    (Guided Backpropagation changes how gradients pass them)."""

    def __init__(self, run: Run):
        super().__init__()
        self.model = run.model.module
        self.run = run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run.forward(x)


class GuidedBackprop(AttributionMethod):
    """The gradient with every ReLU passing back only positive gradients where its input was positive. Its maps
    look sharp, but Adebayo et al. (2018) found they barely change when the weights are randomised: they outline
    the input more than they explain the model. Only ``nn.ReLU`` modules are changed: a model calling
    ``torch.relu`` or ``F.relu`` gets plain gradients there."""

    name, title = "guided_backprop", "Guided Backpropagation"
    paper = "Springenberg et al. 2015, Striving for Simplicity: The All Convolutional Net"
    cost = "1 forward, 1 backward"
    signed = True
    uses_captum = True

    def explain(self, run: Run) -> torch.Tensor:
        relus = [m for m in run.model.module.modules() if isinstance(m, nn.ReLU) and m.inplace]
        for relu in relus:  # a backward hook cannot follow a tensor written in place
            relu.inplace = False
        try:
            with warnings.catch_warnings():  # Captum says it hooks the ReLUs: that is the method
                warnings.filterwarnings("ignore", "Setting backward hooks on ReLU", UserWarning)
                return captum_attr().GuidedBackprop(_Logits(run)).attribute(run.x, target=run.target)[0]
        finally:
            for relu in relus:
                relu.inplace = True
