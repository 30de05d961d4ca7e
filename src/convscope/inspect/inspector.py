"""Inspection in one pass: from ONE forward and ONE backward, the probabilities, the prediction, every layer's
activation, a class activation map on a conv layer and a vanilla-gradient saliency map.

Thread safety: captures are recorded per thread, but an untraceable model records through forward hooks that live
on its modules, where two threads would see each other's calls. An :class:`Inspector` therefore hands each call
its own replica of the model from a pool; a call waits when all replicas are busy. One replica per core is plenty
(an MNIST inspection is under a millisecond).
"""

from __future__ import annotations

import copy
import math
import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, ModelError
from ..models.adapter import ModelAdapter
from .cams import CAM_METHODS, upsample_and_scale
from .inputs import is_model_input, model_inputs, warn

SALIENCY = "saliency"
# Every explanation method by the one name the Python API, the CLI and the REST API all use.
METHODS = (*CAM_METHODS, SALIENCY)
Method = Literal["gradcam", "gradcam++", "hirescam", "saliency"]

# Below this many activation values in all (16 MB of float32), every layer is captured by default: the MNIST
# models have 37,306. Above it (VGG16 has 15 million per image) only the layers asked for are.
ALL_LAYERS_BY_DEFAULT = 4_000_000


@dataclass
class Inspection:
    """What one pass found. Tensors are detached, on the CPU, without the batch dimension."""

    probabilities: torch.Tensor  # (num_classes,)
    logits: torch.Tensor  # (num_classes,)
    predicted: int
    target: int  # the class the CAM and saliency explain
    activations: dict[str, torch.Tensor]  # tap name -> its output, e.g. conv1 (32, 26, 26), fc1 (128,)
    # (H, W) in [0, 1], upsampled to the input; None when the model has no spatial layer. With the method
    # "saliency" it is the saliency map, and cam_raw and cam_layer are None.
    cam: torch.Tensor | None
    cam_raw: torch.Tensor | None  # (h, w) at the CAM layer's resolution, before scaling
    cam_layer: str | None
    cam_method: str  # one of METHODS
    cam_blank: str | None  # why the CAM is all zero: "zero-gradient" (the target's gradient vanishes at the
    # layer) or "no-positive-evidence" (every position's weighted sum is <= 0, which the ReLU cuts); None otherwise
    saliency: torch.Tensor | None  # (H, W) in [0, 1]: |d y^target / d x|, max over channels, over its max; None
    # when not asked for
    input: torch.Tensor  # (C, H, W) the model input in [0, 1]
    class_names: tuple[str, ...] = ()  # the model's, to name the classes above

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.predicted])

    def class_name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else str(index)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The k most probable classes, most probable first: [(name, probability)]."""
        values, indices = self.probabilities.topk(min(k, len(self.probabilities)))
        return [(self.class_name(int(i)), float(p)) for p, i in zip(values, indices, strict=True)]

    def explanation(self) -> tuple[torch.Tensor, str] | None:
        """The map to show and what it is: the CAM (or saliency map) asked for, or for a model with no spatial
        layer, where a CAM cannot be, its saliency map; None when there is neither."""
        if self.cam is not None:
            where = f" at {self.cam_layer}" if self.cam_layer else ""
            return self.cam, f"{self.cam_method}{where} for {self.class_name(self.target)}"
        if self.saliency is not None:
            return self.saliency, f"saliency for {self.class_name(self.target)} (no spatial layer for a CAM)"
        return None

    def __repr__(self) -> str:
        explained = "" if self.target == self.predicted else f", explaining {self.class_name(self.target)!r}"
        if self.cam is not None:
            method = self.cam_method + (f" at {self.cam_layer}" if self.cam_layer else "")
        else:
            method = "saliency (no spatial layer for a CAM)" if self.saliency is not None else "no map"
        return (f"Inspection(predicted {self.class_name(self.predicted)!r} at {self.confidence:.1%}{explained}; "
                f"{method}; {len(self.activations)} layers captured; input {tuple(self.input.shape)})")

    def _repr_html_(self) -> str:
        from ..display import inspection_html
        return inspection_html(self)

    def _repr_png_(self) -> bytes:
        from ..display import inspection_png
        return inspection_png(self)


def _blank_reason(cam_raw: torch.Tensor, gradients: torch.Tensor) -> str | None:
    """Why a CAM map (h, w) is all zero, told from the target's gradients at its layer (1, K, h, w)."""
    if bool((cam_raw > 0).any()):
        return None
    return "zero-gradient" if not bool(gradients.any()) else "no-positive-evidence"


def _prepared_input(image, input_shape: tuple[int, ...]) -> torch.Tensor:
    """One model input as the preprocessing makes it, (C, H, W) or (1, C, H, W), (H, W) for one channel; uint8
    in 0-255 or float -> float (1, C, H, W), its values taken as they are."""
    x = torch.as_tensor(image)
    if not is_model_input(tuple(x.shape), tuple(input_shape)):
        raise InputError(f"expected one model input of shape {tuple(input_shape)}, got {tuple(x.shape)}")
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    if not torch.isfinite(x).all():
        raise InputError("the image contains NaN or infinite values")
    return x.reshape(1, *input_shape)


def default_layers(model: ModelAdapter) -> list[str]:
    """Every tap for a small model; none (only what a CAM needs) for a big one."""
    total = sum(math.prod(tap.output_shape) for tap in model.graph.taps)
    return model.graph.names if total <= ALL_LAYERS_BY_DEFAULT else []


class Inspector:
    """Runs :meth:`inspect` on a shared model from any number of threads.

    ``replicas`` > 1 lets that many calls run at once; the extra replicas are copies taken now, so make a new
    Inspector after changing the model's weights.
    """

    def __init__(self, model: ModelAdapter, replicas: int = 1):
        if not isinstance(model, ModelAdapter):
            raise TypeError("Inspector takes a ModelAdapter: wrap a module with convscope.models.wrap(...) first")
        self.model = model
        self.graph = model.graph
        self.input_shape = model.input_shape
        self._default_layers = default_layers(model)
        self._default_cam_layer = model.graph.default_cam_layer()
        self._pool: queue.SimpleQueue[ModelAdapter] = queue.SimpleQueue()
        self._pool.put(self.model)
        for _ in range(replicas - 1):
            self._pool.put(copy.deepcopy(self.model))

    @property
    def small(self) -> bool:
        """Whether every layer is captured by default (see :func:`default_layers`): the MNIST models are small,
        the ImageNet ones are not."""
        return bool(self._default_layers)

    @contextmanager
    def _replica(self) -> Iterator[ModelAdapter]:
        model = self._pool.get()
        try:
            yield model
        finally:
            self._pool.put(model)

    def activations(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Only the named layers' outputs for one image (as for :meth:`inspect`), without gradients, the forward
        stopped after the last of them: what a layer view fetches on demand. Float32 on the CPU, no batch
        dimension."""
        names = [self.graph[name].name for name in layers]  # raises ModelError naming the layers there are
        x = _prepared_input(image, self.input_shape).to(self.model.device, self.model.dtype)
        with self._replica() as model:
            acts = model.activations(x, names)
        missing = [name for name in names if name not in acts]
        if missing:  # as in inspect(): only an approximate (untraced) graph can name a layer that did not run
            raise ModelError(f"layer(s) {', '.join(missing)} did not run for this input")
        return {name: acts[name][0].float().cpu() for name in names}

    @overload
    def inspect(self, image: str | Path | bytes | Image.Image, target: int | str | None = None,
                cam_layer: str | None = None, method: Method = "gradcam", layers: Sequence[str] | None = None,
                saliency: bool = True) -> Inspection: ...

    @overload
    def inspect(self, image: list | tuple, target: int | str | None = None, cam_layer: str | None = None,
                method: Method = "gradcam", layers: Sequence[str] | None = None,
                saliency: bool = True) -> list[Inspection]: ...

    @overload
    def inspect(self, image: torch.Tensor | np.ndarray, target: int | str | None = None,
                cam_layer: str | None = None, method: Method = "gradcam", layers: Sequence[str] | None = None,
                saliency: bool = True) -> Inspection | list[Inspection]: ...

    def inspect(self, image, target=None, cam_layer=None, method="gradcam", layers=None, saliency=True):
        """Inspect one image, or each image of a batch (then a list of inspections comes back).

        Args:
            image: a path, bytes or PIL image, or an (H, W) / (H, W, C) array of a picture: preprocessed for the
                model first (``model.preprocessing``); or the model input itself, (C, H, W) or (H, W) for one
                channel, uint8 in 0-255 or float in [0, 1]; or a batch: (N, C, H, W), a list of any of these.
                A float image in 0-255, an already normalised one, an inverted MNIST digit or a blank image get
                an error or a warning (:class:`convscope.inspect.InputWarning`) saying what to do.
            target: class to explain, by index or name; default the predicted class.
            cam_layer: a tap with a spatial (C, h, w) output; default the graph's
                (:meth:`convscope.models.Graph.default_cam_layer`: ``relu2`` in ``mnist_cnn``).
            method: one of ``METHODS``: "gradcam", "gradcam++", "hirescam", or "saliency" (|d score / d pixel|,
                then ``cam`` is the saliency map and ``cam_layer`` does not apply).
            layers: which taps' activations to return; default all of them for a small model and none for a
                big one (see :func:`default_layers`), so a VGG16 inspection does not hold 100+ MB unasked.
            saliency: also the gradient with respect to the input pixels. It costs a backward pass through the
                whole network, where a CAM's only goes back to its layer (EfficientNet-Lite0: about 3x).
        """
        if method not in METHODS:
            raise ModelError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        if isinstance(target, str):
            target = self._class_index(target)
        x, batched = model_inputs(image, self.model.preprocessing)
        one = [self.inspect_prepared(x[i:i + 1], target, cam_layer, method, layers, saliency) for i in range(len(x))]
        for result in one:  # what the server shows as "unusual input", a notebook user meets as a warning
            doubt = self.model.preprocessing.unusual(result.input, result.probabilities)
            if doubt:
                warn(f"the model's answer deserves no trust: {doubt}")
        return one if batched else one[0]

    def _class_index(self, name: str) -> int:
        names = list(self.model.class_names)
        if name not in names:
            shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
            raise InputError(f"no class is called {name!r}; classes: {shown}")
        return names.index(name)

    def inspect_prepared(self, x: torch.Tensor, target: int | None = None, cam_layer: str | None = None,
                         method: str = "gradcam", layers: Sequence[str] | None = None,
                         saliency: bool = True) -> Inspection:
        """:meth:`inspect` for input the model's preprocessing made: one image, (C, H, W) or (1, C, H, W) float
        in [0, 1], taken as it is (what the server and the CLI call)."""
        if method not in METHODS:
            raise ModelError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        x = _prepared_input(x, self.input_shape)
        graph = self.graph
        if cam_layer is not None and not graph[cam_layer].spatial:  # checked even where saliency will not use it
            valid = [name for name in graph.names if graph[name].spatial]
            raise ModelError(f"a CAM needs a layer with a spatial (C, H, W) output; {cam_layer!r} gives "
                             f"{graph[cam_layer].output_shape}; layers a CAM can use: "
                             f"{', '.join(valid) if valid else 'none (this model has no spatial layer)'}")
        if method == SALIENCY:
            cam_layer, saliency = None, True
        else:
            cam_layer = cam_layer or self._default_cam_layer
        if layers is None:
            wanted = self._default_layers
        else:
            asked = {graph[name].name for name in layers}  # graph[...] raises ModelError naming the layers there are
            wanted = [name for name in graph.names if name in asked]  # in graph order: parents before children
        # In the model's own dtype: a model converted to bf16 once runs in bf16 (explanations are computed in fp32).
        x = x.to(self.model.device, self.model.dtype).requires_grad_(True)

        with self._replica() as model:
            scores, acts = model.capture(x, [*wanted, cam_layer] if cam_layer else wanted)
            missing = [name for name in [*wanted, cam_layer] if name and name not in acts]
            if missing:  # only an untraced graph, found on a blank input, can name a layer a real input skips
                raise ModelError(f"layer(s) {', '.join(missing)} did not run for this input (this model could not "
                                 "be traced, so its graph is approximate)")
            logits = scores[0]  # (K,)
            predicted = int(logits.argmax())
            target = predicted if target is None else int(target)
            if not 0 <= target < len(logits):
                raise InputError(f"target class must be in 0-{len(logits) - 1}, got {target}")
            sources = ([x] if saliency else []) + ([acts[cam_layer]] if cam_layer else [])
            # Autograd goes back only as far as the sources need: to the CAM layer unless saliency is asked for.
            gradients = list(torch.autograd.grad(logits[target], sources)) if sources else []

        cam = cam_raw = cam_blank = None
        if cam_layer:
            layer_map = CAM_METHODS[method].combine(acts[cam_layer].detach().float(), gradients[-1].float())
            cam_raw = layer_map[0]  # (h, w)
            cam = upsample_and_scale(layer_map, self.input_shape[1:])[0]
            cam_blank = _blank_reason(cam_raw, gradients[-1])
        pixels = None
        if saliency:
            pixels = gradients[0][0].float().abs().amax(dim=0)  # (H, W)
            pixels = (pixels / pixels.max().clamp(min=1e-12)).cpu()
        logits = logits.detach().float().cpu()
        if method == SALIENCY:
            cam = pixels
        return Inspection(
            probabilities=torch.softmax(logits, dim=0),
            logits=logits,
            predicted=predicted,
            target=target,
            activations={name: acts[name][0].detach().cpu() for name in wanted},
            cam=None if cam is None else cam.cpu(),
            cam_raw=None if cam_raw is None else cam_raw.cpu(),
            cam_layer=cam_layer,
            cam_method=method,
            cam_blank=cam_blank,
            saliency=pixels,
            input=x[0].detach().float().cpu(),
            class_names=tuple(self.model.class_names),
        )
