"""The attribution methods by name, and the one function that runs any of them."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...errors import InputError, ModelError
from ...models.adapter import ModelAdapter
from ..cams import CAM_METHODS
from .base import Attribution, AttributionMethod, ProgressFn, Run
from .cam import CamAttribution, EigenCAM
from .gradients import GuidedBackprop, IntegratedGradients, Saliency, SmoothGrad
from .guided_gradcam import GuidedGradCAM
from .occlusion import Occlusion

ATTRIBUTIONS: dict[str, AttributionMethod] = {method.name: method for method in (
    *(CamAttribution(name) for name in CAM_METHODS), EigenCAM(), Saliency(), SmoothGrad(), IntegratedGradients(),
    Occlusion(), GuidedBackprop(), GuidedGradCAM())}


def attribute(model: ModelAdapter, x: torch.Tensor, method: str, target: int | None = None,
              layer: str | None = None, progress: ProgressFn | None = None,
              cancelled: Callable[[], bool] | None = None) -> Attribution:
    """Explain ``target`` (default: the predicted class) for one prepared input ``x`` ((C, H, W) or
    (1, C, H, W) in [0, 1]) with the method named ``method``. ``layer``: where a CAM looks (default the graph's
    CAM layer). ``progress(done, total)`` hears about the inputs evaluated; when ``cancelled()`` turns true, a
    slow method stops with :class:`Cancelled` at its next batch."""
    if method not in ATTRIBUTIONS:
        raise ModelError(f"unknown attribution method {method!r}; choose from {', '.join(ATTRIBUTIONS)}")
    chosen = ATTRIBUTIONS[method]
    x = torch.as_tensor(x).float().reshape(1, *model.input_shape).to(model.device, model.dtype)
    layer = layer_for(model, method, layer)
    if target is None:
        with torch.no_grad():
            target = int(model.logits(x)[0].argmax())
    if not 0 <= target < model.num_classes:
        raise InputError(f"target class must be in 0-{model.num_classes - 1}, got {target}")
    run = Run(model, x.detach().clone().requires_grad_(True), target, layer, progress, cancelled)
    return chosen(run)



def layer_for(model: ModelAdapter, method: str, layer: str | None) -> str | None:
    """Where ``method`` looks: for a CAM, ``layer`` or the model's default CAM layer, checked to be spatial;
    ``layer`` unchanged for the others. Raises ModelError for a CAM with no such layer."""
    chosen = ATTRIBUTIONS[method]
    if not chosen.needs_layer:
        return layer
    layer = layer or model.graph.default_cam_layer()
    if layer is None or not model.graph[layer].spatial:
        raise ModelError(f"{chosen.title} needs a layer with a spatial (C, H, W) output; "
                         f"{'this model has none' if layer is None else f'{layer!r} has none'}")
    return layer
