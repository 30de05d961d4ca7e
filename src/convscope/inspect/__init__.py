"""Inspection: ``Inspector`` runs one forward and one backward for the prediction, every layer's activation and an
explanation map (``METHODS``); ``attribute`` explains with any of the ``ATTRIBUTIONS`` (Integrated Gradients,
SmoothGrad, occlusion... at their own cost); ``cascading_randomisation`` tests whether a method's maps depend on
the learned weights, ``data_randomisation`` against a model trained on shuffled labels, ``deletion_insertion`` how
faithful they are; ``InputWarning`` flags input whose answer deserves doubt; weight statistics. What each channel
looks for (``top_activating``, ``visualize``) is in ``convscope.inspect.features``."""

from .attribution import (ATTRIBUTIONS, Attribution, Cancelled, attribute, cascading_randomisation,
                          data_randomisation, deletion_insertion)
from .cams import CAM, CAM_METHODS, GradCAM, GradCAMPlusPlus, HiResCAM
from .inputs import InputWarning
from .inspector import METHODS, SALIENCY, Inspection, Inspector, Method, default_layers
from .weights import filter_images, histogram, layer_weights, tensor_summary

__all__ = [
    "ATTRIBUTIONS", "Attribution", "CAM", "CAM_METHODS", "Cancelled", "GradCAM", "GradCAMPlusPlus", "HiResCAM",
    "InputWarning", "Inspection", "Inspector", "METHODS", "Method", "SALIENCY", "attribute",
    "cascading_randomisation", "data_randomisation", "default_layers", "deletion_insertion", "filter_images",
    "histogram", "layer_weights", "tensor_summary",
]
