from .adapter import ModelAdapter, wrap
from .checkpoint import Checkpoint, load_checkpoint, load_model, read_metadata, save_checkpoint
from .graph import INPUT, Graph, Tap, trace_model
from .kinds import LayerKind
from .net import Layer, LayeredNet
from .registry import MODELS, ModelSpec, get_spec, register

__all__ = [
    "Checkpoint", "Graph", "INPUT", "Layer", "LayerKind", "LayeredNet", "MODELS", "ModelAdapter", "ModelSpec", "Tap",
    "get_spec", "load_checkpoint", "load_model", "read_metadata", "register", "save_checkpoint", "trace_model", "wrap",
]
