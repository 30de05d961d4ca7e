"""What each channel looks for.

* :func:`top_activating`: the dataset images (and, for a spatial layer, the input patch around the strongest
  position) that drive each channel hardest, from one batched pass over the MNIST test set or a folder of photos.
* :func:`visualize`: an image optimised to drive a channel, a neuron or a class logit, with progress, intermediate
  images and cancelling.
* :func:`receptive_field`: the input rectangle a position of a spatial layer sees.
* :class:`FeatureCache`: both kinds of result kept on disk per model version, target and settings.
"""

from .cache import FeatureCache, cached_top_activating, cached_visualize, model_key, weights_fingerprint
from .datasets import ImageFiles, dataset_key
from .receptive_field import ReceptiveField, receptive_field
from .top_activating import Example, TopActivating, crop, top_activating
from .objective import Target, gram_similarity
from .visualize import Visualization, VisualizationSettings, visualize

__all__ = [
    "Example", "FeatureCache", "ImageFiles", "ReceptiveField", "Target", "TopActivating", "Visualization",
    "VisualizationSettings", "cached_top_activating", "cached_visualize", "crop", "dataset_key",
    "gram_similarity", "model_key", "receptive_field", "top_activating", "visualize", "weights_fingerprint",
]
