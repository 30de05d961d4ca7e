from .cams import CAM, CAM_METHODS, GradCAM, GradCAMPlusPlus, HiResCAM
from .inspector import Inspection, Inspector, default_layers
from .weights import filter_images, histogram, layer_weights, tensor_summary

__all__ = [
    "CAM", "CAM_METHODS", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "Inspection", "Inspector", "default_layers",
    "filter_images", "histogram", "layer_weights", "tensor_summary",
]
