"""Occlusion, through Captum: a black patch slid over the input; each pixel's attribution is the mean drop
of the target's logit over the patches that covered it. Model-agnostic (no gradient), and slow: one forward per
patch position. The patch covers every channel, so each pixel has one value."""

from __future__ import annotations

import math

import torch

from .base import AttributionMethod, Run, captum_attr
from .gradients import CHUNK


def window(side: int) -> tuple[int, int]:
    """(patch side, stride) for an input side: about a seventh of it (4 on MNIST's 28, 32 on 224), half-overlapping."""
    patch = max(2, round(side / 7))
    return patch, max(1, patch // 2)


class Occlusion(AttributionMethod):
    name, title = "occlusion", "Occlusion"
    paper = "Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks"
    cost = ("1 forward per patch position, plus 1 (in batches of 16): 170 on a 28x28 or 224x224 input, 197 on "
            "299x299")
    slow = True
    backward = False
    signed = True

    def _positions(self, run: Run) -> int:
        _, _, height, width = run.x.shape
        (patch_h, stride_h), (patch_w, stride_w) = window(height), window(width)
        return (math.ceil((height - patch_h) / stride_h) + 1) * (math.ceil((width - patch_w) / stride_w) + 1)

    def passes(self, run: Run) -> int:
        return self._positions(run) + 1  # and the input itself

    def explain(self, run: Run) -> torch.Tensor:
        channels, height, width = run.x.shape[1:]
        (patch_h, stride_h), (patch_w, stride_w) = window(height), window(width)
        return captum_attr().Occlusion(run.forward).attribute(
            run.x, target=run.target, baselines=0.0, sliding_window_shapes=(channels, patch_h, patch_w),
            strides=(channels, stride_h, stride_w), perturbations_per_eval=CHUNK)[0, 0]  # every channel the same
