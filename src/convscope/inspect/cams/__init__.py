"""Class activation map methods, found by name through ``CAM_METHODS`` (shared by the CLI, API and tests)."""

from .base import CAM, upsample_and_scale
from .gradcam import GradCAM
from .gradcam_plus_plus import GradCAMPlusPlus
from .hirescam import HiResCAM

CAM_METHODS: dict[str, CAM] = {method.name: method for method in (GradCAM(), GradCAMPlusPlus(), HiResCAM())}

__all__ = ["CAM", "CAM_METHODS", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "upsample_and_scale"]
