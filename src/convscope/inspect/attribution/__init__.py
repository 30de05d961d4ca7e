"""Attribution methods: which input pixels (or, for a CAM, which places in a layer) make the model's score for a
class. One interface (:class:`AttributionMethod`), one small file per family, found by name in ``ATTRIBUTIONS``;
Captum computes the methods it implements (saliency, SmoothGrad, Integrated Gradients, occlusion, Guided
Backpropagation), ours the rest (the CAM family, Eigen-CAM, Guided Grad-CAM)."""

from .base import Attribution, AttributionMethod, Cancelled
from .registry import ATTRIBUTIONS, attribute
from .sanity import SanityCheck, cascading_randomisation

__all__ = ["ATTRIBUTIONS", "Attribution", "AttributionMethod", "Cancelled", "SanityCheck", "attribute",
           "cascading_randomisation"]
