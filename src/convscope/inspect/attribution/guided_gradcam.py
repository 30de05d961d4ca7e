"""Guided Grad-CAM: Guided Backpropagation's fine detail, weighted by where Grad-CAM says the class's evidence is."""

from __future__ import annotations

import torch

from .base import AttributionMethod, Run
from .cam import CamAttribution
from .gradients import GuidedBackprop


class GuidedGradCAM(AttributionMethod):
    name, title = "guided_gradcam", "Guided Grad-CAM"
    paper = "Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks"
    cost = "2 forwards, 2 backwards"
    signed = True
    needs_layer = True

    def passes(self, run: Run) -> int:
        return 2

    def explain(self, run: Run) -> torch.Tensor:
        guided = GuidedBackprop().explain(run)  # (C, H, W)
        cam = CamAttribution("gradcam").explain(run)  # (H, W), >= 0
        return guided * cam[None]
