"""Predict-and-inspect for the API: one user image through one loaded model version, and the response body."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..inspect import SALIENCY, Inspection
from ..models.graph import Graph
from ..models.kinds import LayerKind
from ..preprocessing import Framing
from .encoding import derived, encode_tensor
from .inputs import UserImage
from .model_store import LoadedModel, ModelStore


@dataclass
class Options:
    model: str = "mnist_cnn"
    version: int | None = None  # None: the active version
    target: int | None = None  # the class to explain; None: the predicted one
    cam_method: str = "gradcam"  # one of METHODS
    cam_layer: str | None = None  # None: the model's default (see Graph.default_cam_layer)
    layers: Sequence[str] | None = None  # activations to return; None: every layer of a small model, none of a big


@dataclass
class Result:
    loaded: LoadedModel
    inspection: Inspection
    framing: Framing  # how the input image became the model input (to lay the CAM over the drawing)
    unusual: str | None = None  # why the input looks unlike the model's training data (see Preprocessing.unusual)


def run(store: ModelStore, image: UserImage, options: Options) -> Result:
    loaded = store.load(store.resolve(options.model, options.version))
    # Saliency needs a backward through the whole network: always for the small models (whose view shows it
    # beside the CAM), for big ones only when asked for.
    saliency = options.cam_method == SALIENCY or loaded.inspector.small
    model_input, framing = image.model_input(loaded.checkpoint.adapter.preprocessing)
    inspection = loaded.inspector.inspect_prepared(model_input, target=options.target, cam_layer=options.cam_layer,
                                                   method=options.cam_method, layers=options.layers,
                                                   saliency=saliency)
    unusual = loaded.checkpoint.adapter.preprocessing.unusual(inspection.input, inspection.probabilities)
    return Result(loaded, inspection, framing, unusual)


def prediction_summary(result: Result) -> dict:
    ins, ref = result.inspection, result.loaded.ref
    class_names = result.loaded.checkpoint.adapter.class_names
    return {"model": ref.model, "version": ref.version, "predicted": ins.predicted,
            "predicted_class": class_names[ins.predicted], "confidence": round(ins.confidence, 6),
            "probabilities": [round(float(p), 6) for p in ins.probabilities]}


def response_body(result: Result, cam_method: str) -> dict:
    """Everything the UI draws, with tensors in the compact encoding (see encoding.py)."""
    ins = result.inspection
    if cam_method == SALIENCY:
        cam = {"method": SALIENCY, "layer": None, "map": encode_tensor(ins.saliency), "blank": None}
    elif ins.cam is not None:
        cam = {"method": ins.cam_method, "layer": ins.cam_layer, "map": encode_tensor(ins.cam),
               "blank": _blank_cam(ins, result.loaded.checkpoint.adapter.class_names[ins.target])}
    else:
        cam = None  # a model without conv layers has no CAM; its saliency map is still there
    return {
        **prediction_summary(result),
        "target": ins.target,
        "target_class": result.loaded.checkpoint.adapter.class_names[ins.target],
        "input": encode_tensor(ins.input if ins.input.shape[0] > 1 else ins.input[0]),
        "framing": result.framing.as_dict(),
        "cam": cam,
        "saliency": None if ins.saliency is None else encode_tensor(ins.saliency),
        "layers": _layers(ins, result.loaded.checkpoint.adapter.graph),
        "unusual_input": None if result.unusual is None else {"reason": result.unusual},
    }


def _blank_cam(ins: Inspection, target_class: str) -> str | None:
    """Why the CAM is all zero, in words; None when it is not."""
    if ins.cam_blank == "zero-gradient":
        return (f"the map is blank: the gradient of class {target_class} is zero at {ins.cam_layer}, so nothing "
                "there changes its score (its units are switched off for this input)")
    if ins.cam_blank == "no-positive-evidence":
        return (f"the map is blank: at every position of {ins.cam_layer} the weighted activations speak against "
                f"class {target_class}, and the CAM keeps only evidence for it")
    return None


def _layers(ins: Inspection, graph: Graph) -> list[dict]:
    """Each requested layer's activation; a ReLU or flatten that equals its parent tap's output rectified or
    reshaped, with that parent in the same answer, is sent as derived from it (see encoding.py)."""
    out = []
    for name, activation in ins.activations.items():
        tap = graph[name]
        parent = ins.activations.get(tap.parents[0]) if len(tap.parents) == 1 else None
        shape = list(activation.shape)
        if parent is not None and tap.kind is LayerKind.RELU and parent.shape == activation.shape \
                and torch.equal(parent.clamp(min=0), activation):
            encoded = derived("relu", tap.parents[0], shape)
        elif parent is not None and tap.kind is LayerKind.FLATTEN and parent.numel() == activation.numel() \
                and torch.equal(parent.reshape(activation.shape), activation):
            encoded = derived("reshape", tap.parents[0], shape)
        else:
            encoded = encode_tensor(activation)
        out.append({"name": name, "kind": tap.kind.value, "shape": shape, "parents": list(tap.parents),
                    "activation": encoded})
    return out
