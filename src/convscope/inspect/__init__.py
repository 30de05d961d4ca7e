"""Inspection: ``Inspector`` runs one forward and one backward for the prediction, every layer's activation and an
explanation map (``METHODS``); ``InputWarning`` flags input whose answer deserves doubt; weight statistics."""

from .cams import CAM, CAM_METHODS, GradCAM, GradCAMPlusPlus, HiResCAM
from .inputs import InputWarning
from .inspector import METHODS, SALIENCY, Inspection, Inspector, Method, default_layers
from .weights import filter_images, histogram, layer_weights, tensor_summary

__all__ = [
    "CAM", "CAM_METHODS", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "InputWarning", "Inspection", "Inspector",
    "METHODS", "Method", "SALIENCY", "default_layers", "filter_images", "histogram", "layer_weights",
    "tensor_summary",
]
