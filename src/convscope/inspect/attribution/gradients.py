"""The methods made of input gradients, each on the model's logits for the target class: saliency, SmoothGrad and
Integrated Gradients through Captum; Guided Backpropagation ours."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ModelError
from .base import AttributionMethod, Run, captum_attr

CHUNK = 16  # inputs per batch for the many-sample methods: memory stays bounded whatever the sample count
NOISE_SEED = 0


class Saliency(AttributionMethod):
    name, title = "saliency", "Saliency (|gradient|)"
    paper = "Simonyan et al. 2014, Deep Inside Convolutional Networks"
    cost = "1 forward, 1 backward"

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

    def passes(self, run: Run) -> int:
        return self.samples

    def explain(self, run: Run) -> torch.Tensor:
        attr = captum_attr()
        smooth = attr.NoiseTunnel(attr.Saliency(run.forward))
        # The same noise every time (Captum draws from torch's global generator): a map can be reproduced, and a
        # sanity check compares maps made with the same noise, not two draws of it.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(NOISE_SEED)
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

    def passes(self, run: Run) -> int:
        return self.steps

    def explain(self, run: Run) -> torch.Tensor:
        ig = captum_attr().IntegratedGradients(run.forward)
        return ig.attribute(run.x, baselines=torch.zeros_like(run.x), target=run.target, n_steps=self.steps,
                            internal_batch_size=CHUNK)[0]


GUIDED = (nn.ReLU, nn.ReLU6)  # the rectifiers Guided Backpropagation guides


class GuidedBackprop(AttributionMethod):
    """The gradient with every rectifier passing back only positive gradients, where its input let the signal
    through. Its maps look sharp, but Adebayo et al. (2018) found they barely change when the weights are
    randomised: they outline the input more than they explain the model.

    Ours, not Captum's: Captum guides ``nn.ReLU`` modules only, and EfficientNet's rectifiers are ``nn.ReLU6``
    (with Captum its "guided" map was the plain gradient). A model that applies relu as a function (``F.relu``:
    Inception v3) has nothing to hook, and is refused rather than given a plain gradient under this name."""

    name, title = "guided_backprop", "Guided Backpropagation"
    paper = "Springenberg et al. 2015, Striving for Simplicity: The All Convolutional Net"
    cost = "1 forward, 1 backward"
    signed = True

    def explain(self, run: Run) -> torch.Tensor:
        functional = [tap.name for tap in run.model.graph.taps if tap.op in ("relu", "relu_", "relu6")
                      and tap.module is None]
        rectifiers = [m for m in run.model.module.modules() if isinstance(m, GUIDED)]
        if functional or not rectifiers:
            raise ModelError(f"{self.title} guides nn.ReLU and nn.ReLU6 modules; this model "
                             + (f"applies relu as a function ({', '.join(functional[:3])})" if functional
                                else "has none") + ": choose another method")
        inplace = [m for m in rectifiers if m.inplace]
        for module in inplace:  # a gradient hook needs the rectifier's own output tensor
            module.inplace = False
        hooks = [m.register_forward_hook(_guide) for m in rectifiers]
        try:
            x = run.x.detach().requires_grad_(True)
            gradient, = torch.autograd.grad(run.forward(x)[0, run.target], x)
            return gradient[0]
        finally:
            for hook in hooks:
                hook.remove()
            for module in inplace:
                module.inplace = True


def _guide(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
    """Only the positive part of the gradient reaching a rectifier's output goes back through it (the
    rectifier's own backward then masks where its input was cut)."""
    if output.requires_grad:
        output.register_hook(lambda gradient: gradient.clamp(min=0))
