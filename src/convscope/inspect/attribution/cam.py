"""The class activation maps (Grad-CAM, Grad-CAM++, HiResCAM: ``inspect/cams``) as attribution methods, and
Eigen-CAM, which needs no gradient: the first principal component of the layer's activations."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..cams import CAM_METHODS
from .base import AttributionMethod, Run


def upsampled(layer_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(h, w) -> (H, W), bilinear, values kept (not scaled: a shared scale compares them)."""
    return F.interpolate(layer_map[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


class CamAttribution(AttributionMethod):
    needs_layer = True
    cost = "1 forward, 1 backward to the layer"

    def __init__(self, name: str):
        self.cam = CAM_METHODS[name]
        self.name, self.title, self.paper = name, self.cam.title, self.cam.paper

    def explain(self, run: Run) -> torch.Tensor:
        run.check()
        x = run.x.detach().requires_grad_(True)
        logits, acts = run.model.capture(x, [run.layer])
        run.count(1)
        gradient, = torch.autograd.grad(logits[0, run.target], acts[run.layer])
        layer_map = self.cam.combine(acts[run.layer].detach().float(), gradient.float())[0]
        return upsampled(layer_map, tuple(x.shape[2:]))


class EigenCAM(AttributionMethod):
    """Muhammad & Yeasin (2020): the activations (K, h, w) as h*w points in K dimensions, projected on their first
    principal component. Class-agnostic (the target does not change it) and gradient-free, so it cannot be fooled
    by saturated gradients. The map is not centred first, as in the paper."""

    name, title = "eigencam", "Eigen-CAM"
    paper = "Muhammad & Yeasin 2020, Eigen-CAM: Class Activation Map using Principal Components"
    cost = "1 forward to the layer"
    needs_layer = True
    backward = False

    def explain(self, run: Run) -> torch.Tensor:
        run.check()
        acts = run.model.activations(run.x, [run.layer])[run.layer][0].float()  # (K, h, w)
        run.count(1)
        points = acts.flatten(1).T  # (h*w, K)
        _, _, components = torch.linalg.svd(points, full_matrices=False)
        projection = (points @ components[0]).reshape(acts.shape[1:])
        if projection.sum() < 0:  # the component's sign is arbitrary: most of the map is taken as evidence
            projection = -projection
        return upsampled(F.relu(projection), tuple(run.x.shape[2:]))
