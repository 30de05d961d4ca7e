from .cams import CAM, CAM_METHODS, GradCAM, GradCAMPlusPlus, HiResCAM
from .hooks import capture_activations
from .inspector import Inspection, Inspector, default_cam_layer
from .weights import filter_images, histogram, layer_weights, tensor_summary

__all__ = [
    "CAM", "CAM_METHODS", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "Inspection", "Inspector",
    "capture_activations", "default_cam_layer", "filter_images", "histogram", "layer_weights", "tensor_summary",
]
