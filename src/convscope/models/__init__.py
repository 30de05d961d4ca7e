"""Models: ``load_model`` (a registered model or a checkpoint), ``wrap`` (any ``nn.Module``), the ``ModelAdapter``
between a module and the rest of convscope, its ``Graph`` of taps, the registry and checkpoints."""

from .adapter import ModelAdapter, wrap
from .checkpoint import Checkpoint, load_checkpoint, load_model, read_metadata, save_checkpoint
from .graph import INPUT, LOGITS, Graph, Tap
from .kinds import LayerKind
from .net import Layer, LayeredNet
from .registry import MODELS, ModelSpec, build_model, get_spec, register
from .tracing import trace_model

__all__ = [
    "Checkpoint", "Graph", "INPUT", "LOGITS", "Layer", "LayerKind", "LayeredNet", "MODELS", "ModelAdapter", "ModelSpec",
    "Tap", "build_model", "get_spec", "load_checkpoint", "load_model", "read_metadata", "register", "save_checkpoint",
    "trace_model", "wrap",
]
