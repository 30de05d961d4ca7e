from .checkpoint import Checkpoint, load_checkpoint, load_model, read_metadata, save_checkpoint
from .net import Layer, LayeredNet, LayerKind
from .registry import MODELS, LayerInfo, ModelSpec, describe_layers, get_spec, register

__all__ = [
    "Checkpoint", "Layer", "LayerInfo", "LayerKind", "LayeredNet", "MODELS", "ModelSpec", "describe_layers",
    "get_spec", "load_checkpoint", "load_model", "read_metadata", "register", "save_checkpoint",
]
