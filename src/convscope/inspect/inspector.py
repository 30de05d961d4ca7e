"""Inspection in one pass: from ONE forward and ONE backward, the probabilities, the prediction, every layer's
activation, a class activation map on a conv layer and a vanilla-gradient saliency map.

Thread safety: forward hooks live on modules, so two threads sharing one module would see each other's hooks
and activations. An :class:`Inspector` therefore hands each call its own replica of the model from a pool; a call
waits when all replicas are busy. One replica per core is plenty (each call is under a millisecond).
"""

from __future__ import annotations

import copy
import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..errors import InputError, ModelError
from ..models.net import LayeredNet, LayerKind
from .cams import CAM_METHODS, upsample_and_scale
from .hooks import capture_activations

SPATIAL_KINDS = (LayerKind.CONV, LayerKind.RELU, LayerKind.POOL)


@dataclass
class Inspection:
    """What one pass found. Tensors are detached, on the CPU, without the batch dimension."""

    probabilities: torch.Tensor  # (num_classes,)
    logits: torch.Tensor  # (num_classes,)
    predicted: int
    target: int  # the class the CAM and saliency explain
    activations: dict[str, torch.Tensor]  # layer name -> its output, e.g. conv1 (32, 26, 26), fc1 (128,)
    cam: torch.Tensor | None  # (H, W) in [0, 1], upsampled to the input; None when the model has no conv layer
    cam_raw: torch.Tensor | None  # (h, w) at the CAM layer's resolution, before scaling
    cam_layer: str | None
    cam_method: str
    saliency: torch.Tensor  # (H, W) in [0, 1]: |d y^target / d x|, max over input channels, divided by its max
    input: torch.Tensor  # (C, H, W) the model input in [0, 1]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.predicted])


def default_cam_layer(model: LayeredNet) -> str | None:
    """The last conv layer's output after its activation (Grad-CAM's standard choice: the most semantic maps
    that keep a spatial layout). After the activation, as Keras' conv layers and the usual ``features[-1]`` /
    ``layer4`` targets are: on the pre-ReLU output, negative background responses often cancel the whole map."""
    names = list(model.kinds)
    convs = [i for i, name in enumerate(names) if model.kinds[name] is LayerKind.CONV]
    if not convs:
        return None
    last = convs[-1]
    follows = names[last + 1] if last + 1 < len(names) else None
    return follows if follows and model.kinds[follows] in (LayerKind.RELU, LayerKind.SIGMOID) else names[last]


def _single_input(image: torch.Tensor, input_shape: Sequence[int]) -> torch.Tensor:
    """(H, W), (C, H, W) or (1, C, H, W); uint8 0-255 or float in [0, 1] -> float (1, C, H, W)."""
    x = torch.as_tensor(image)
    given = tuple(x.shape)
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    while x.dim() < 4:
        x = x.unsqueeze(0)
    if tuple(x.shape[1:]) != tuple(input_shape) or x.shape[0] != 1:
        raise InputError(f"expected one image of shape {tuple(input_shape)}, got {given}")
    if not torch.isfinite(x).all():
        raise InputError("the image contains NaN or infinite values")
    return x


class Inspector:
    """Runs :meth:`inspect` on a shared model from any number of threads.

    ``replicas`` > 1 lets that many calls run at once; the extra replicas are copies taken now, so make a new
    Inspector after changing the model's weights.
    """

    def __init__(self, model: LayeredNet, input_shape: Sequence[int] = (1, 28, 28), replicas: int = 1):
        self.model = model.eval()
        self.input_shape = tuple(input_shape)
        self.layer_names = model.layer_names()
        self._pool: queue.SimpleQueue[LayeredNet] = queue.SimpleQueue()
        self._pool.put(self.model)
        for _ in range(replicas - 1):
            self._pool.put(copy.deepcopy(self.model))

    @contextmanager
    def _replica(self) -> Iterator[LayeredNet]:
        model = self._pool.get()
        try:
            yield model
        finally:
            self._pool.put(model)

    def inspect(
        self,
        image: torch.Tensor,
        target: int | None = None,
        cam_layer: str | None = None,
        method: str = "gradcam",
        layers: Sequence[str] | None = None,
    ) -> Inspection:
        """Inspect one image.

        Args:
            image: (H, W), (C, H, W) or (1, C, H, W); uint8 in 0-255 or float in [0, 1] (already preprocessed,
                see :func:`convscope.preprocess.preprocess_drawing` for drawings).
            target: class to explain; default the predicted class.
            cam_layer: a layer with a spatial output (conv, relu or pool); default the last conv layer's
                activation (``relu2`` in ``mnist_cnn``), see :func:`default_cam_layer`.
            method: a name from ``CAM_METHODS`` ("gradcam", "gradcam++", "hirescam").
            layers: which layers' activations to return; default all.
        """
        if method not in CAM_METHODS:
            raise ModelError(f"unknown CAM method {method!r}; choose from {', '.join(CAM_METHODS)}")
        cam_layer = cam_layer or default_cam_layer(self.model)
        if cam_layer is not None and self.model.kinds.get(cam_layer) not in SPATIAL_KINDS:
            raise ModelError(f"CAM layer must be a conv, relu or pool layer, not {cam_layer!r}")
        wanted = list(self.layer_names if layers is None else layers)
        unknown = [name for name in wanted if name not in self.model.kinds]
        if unknown:
            raise ModelError(f"unknown layer(s) {', '.join(unknown)}; layers: {', '.join(self.layer_names)}")
        x = _single_input(image, self.input_shape).to(self.model.input_mean.device).requires_grad_(True)

        with self._replica() as model, capture_activations(model, self.layer_names) as acts:
            probabilities = model(x)[0]  # (K,)
            logits = acts[self.layer_names[-2]][0]  # the layer feeding the softmax
            predicted = int(probabilities.argmax())
            target = predicted if target is None else int(target)
            if not 0 <= target < len(logits):
                raise InputError(f"target class must be in 0-{len(logits) - 1}, got {target}")
            sources = [x] + ([acts[cam_layer]] if cam_layer else [])
            gradients = torch.autograd.grad(logits[target], sources)

        cam = cam_raw = None
        if cam_layer:
            layer_map = CAM_METHODS[method].combine(acts[cam_layer].detach(), gradients[1])  # (1, h, w)
            cam_raw = layer_map[0]
            cam = upsample_and_scale(layer_map, self.input_shape[1:])[0]
        saliency = gradients[0][0].abs().amax(dim=0)  # (H, W)
        saliency = saliency / saliency.max().clamp(min=1e-12)
        return Inspection(
            probabilities=probabilities.detach().cpu(),
            logits=logits.detach().cpu(),
            predicted=predicted,
            target=target,
            activations={name: acts[name][0].detach().cpu() for name in wanted},
            cam=None if cam is None else cam.cpu(),
            cam_raw=None if cam_raw is None else cam_raw.cpu(),
            cam_layer=cam_layer,
            cam_method=method,
            saliency=saliency.cpu(),
            input=x[0].detach().cpu(),
        )
