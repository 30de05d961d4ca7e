"""Attribution methods: which input pixels (or, for a CAM, which places in a layer) make the model's score for a
class. One interface (:class:`AttributionMethod`), one small file per family, found by name in ``ATTRIBUTIONS``;
Captum computes the methods it implements (saliency, SmoothGrad, Integrated Gradients, occlusion, Guided
Backpropagation), ours the rest (the CAM family, Eigen-CAM, Guided Grad-CAM)."""

from .base import Attribution, AttributionMethod, Cancelled
from .registry import ATTRIBUTIONS, attribute
from .faithfulness import Faithfulness, deletion_insertion
from .sanity import DataRandomisation, SanityCheck, cascading_randomisation, data_randomisation

__all__ = ["ATTRIBUTIONS", "Attribution", "AttributionMethod", "Cancelled", "DataRandomisation", "Faithfulness",
           "SanityCheck", "attribute", "cascading_randomisation", "data_randomisation", "deletion_insertion"]
