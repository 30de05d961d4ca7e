"""What kind of layer a module or a function call is, read from its class or function (never from its name).

The kinds are what the inspector, the API and the UI reason about: which taps have spatial maps, which one turns
scores into probabilities, which ones merge branches.
"""

from __future__ import annotations

import operator
from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn


class LayerKind(str, Enum):
    """What a tap does, for the views: conv, pool, dense, activation, normalisation, and the structural kinds."""

    CONV = "conv"
    LINEAR = "linear"
    RELU = "relu"
    SIGMOID = "sigmoid"
    ACTIVATION = "activation"  # any other element-wise non-linearity (GELU, SiLU, tanh, ...)
    SOFTMAX = "softmax"
    POOL = "pool"
    NORM = "norm"
    DROPOUT = "dropout"
    FLATTEN = "flatten"
    ADD = "add"  # a residual merge
    MUL = "mul"  # a gating merge (squeeze-and-excitation)
    CONCAT = "concat"  # a multi-branch merge
    OTHER = "other"


_MODULE_KINDS: tuple[tuple[tuple[type, ...], LayerKind], ...] = (
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), LayerKind.CONV),
    ((nn.Linear, nn.Bilinear), LayerKind.LINEAR),
    ((nn.ReLU,), LayerKind.RELU),
    ((nn.Sigmoid,), LayerKind.SIGMOID),
    ((nn.Softmax, nn.LogSoftmax), LayerKind.SOFTMAX),
    ((nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
      nn.Hardsigmoid, nn.Hardtanh, nn.Tanh, nn.Softplus), LayerKind.ACTIVATION),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
      nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
      nn.AdaptiveMaxPool3d, nn.LPPool2d), LayerKind.POOL),
    ((nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm), LayerKind.NORM),
    ((nn.modules.dropout._DropoutNd,), LayerKind.DROPOUT),
    ((nn.Flatten,), LayerKind.FLATTEN),
)

# Module types that change nothing in evaluation: no tap of their own, the edge passes through them.
PASS_THROUGH_MODULES = (nn.Identity,)


def module_kind(module: nn.Module) -> LayerKind:
    for types, kind in _MODULE_KINDS:
        if isinstance(module, types):
            return kind
    return LayerKind.OTHER


_FUNCTION_KINDS: dict[object, LayerKind] = {
    F.conv1d: LayerKind.CONV, F.conv2d: LayerKind.CONV, F.conv3d: LayerKind.CONV,
    F.linear: LayerKind.LINEAR,
    F.relu: LayerKind.RELU, torch.relu: LayerKind.RELU, F.relu_: LayerKind.RELU, torch.relu_: LayerKind.RELU,
    F.sigmoid: LayerKind.SIGMOID, torch.sigmoid: LayerKind.SIGMOID,
    F.softmax: LayerKind.SOFTMAX, torch.softmax: LayerKind.SOFTMAX, F.log_softmax: LayerKind.SOFTMAX,
    torch.log_softmax: LayerKind.SOFTMAX,
    F.relu6: LayerKind.ACTIVATION, F.leaky_relu: LayerKind.ACTIVATION, F.gelu: LayerKind.ACTIVATION,
    F.silu: LayerKind.ACTIVATION, F.hardswish: LayerKind.ACTIVATION, F.hardsigmoid: LayerKind.ACTIVATION,
    F.elu: LayerKind.ACTIVATION, F.mish: LayerKind.ACTIVATION, torch.tanh: LayerKind.ACTIVATION,
    F.tanh: LayerKind.ACTIVATION,
    F.max_pool1d: LayerKind.POOL, F.max_pool2d: LayerKind.POOL, F.max_pool3d: LayerKind.POOL,
    F.avg_pool1d: LayerKind.POOL, F.avg_pool2d: LayerKind.POOL, F.avg_pool3d: LayerKind.POOL,
    F.adaptive_avg_pool1d: LayerKind.POOL, F.adaptive_avg_pool2d: LayerKind.POOL,
    F.adaptive_max_pool2d: LayerKind.POOL,
    F.batch_norm: LayerKind.NORM, F.layer_norm: LayerKind.NORM, F.group_norm: LayerKind.NORM,
    F.dropout: LayerKind.DROPOUT,
    torch.flatten: LayerKind.FLATTEN,
    operator.add: LayerKind.ADD, operator.iadd: LayerKind.ADD, torch.add: LayerKind.ADD,
    operator.mul: LayerKind.MUL, operator.imul: LayerKind.MUL, torch.mul: LayerKind.MUL,
    torch.cat: LayerKind.CONCAT, torch.concat: LayerKind.CONCAT,
}
_METHOD_KINDS: dict[str, LayerKind] = {
    "relu": LayerKind.RELU, "relu_": LayerKind.RELU, "sigmoid": LayerKind.SIGMOID,
    "sigmoid_": LayerKind.SIGMOID, "softmax": LayerKind.SOFTMAX, "log_softmax": LayerKind.SOFTMAX,
    "tanh": LayerKind.ACTIVATION, "flatten": LayerKind.FLATTEN, "view": LayerKind.FLATTEN,
    "reshape": LayerKind.FLATTEN, "add": LayerKind.ADD, "add_": LayerKind.ADD, "mul": LayerKind.MUL,
    "mul_": LayerKind.MUL, "mean": LayerKind.POOL,
}
# Kinds that only deserve a tap when they merge two or more activations (``x + 1`` is not a residual add), or
# when they really reshape a map into a vector or pool it globally (checked against the shapes).
MERGES = (LayerKind.ADD, LayerKind.MUL)


def call_kind(op: str, target) -> LayerKind | None:
    """The kind of an ``torch.fx`` ``call_function`` / ``call_method`` node, or None for an op we do not know."""
    if op == "call_method":
        return _METHOD_KINDS.get(target)
    try:
        return _FUNCTION_KINDS.get(target)
    except TypeError:  # an unhashable target
        return None


def call_name(op: str, target) -> str:
    """A short readable name for a function or method call: ``add``, ``cat``, ``relu``, ``adaptive_avg_pool2d``."""
    if op == "call_method":
        return str(target).rstrip("_")
    name = getattr(target, "__name__", str(target))
    return {"iadd": "add", "imul": "mul", "concat": "cat"}.get(name.strip("_"), name.strip("_"))


def is_in_place(op: str, target, kwargs: dict, module: nn.Module | None = None) -> bool:
    """Whether a call writes into its first argument (``ReLU(inplace=True)``, ``x += y``, ``x.relu_()``)."""
    if op == "call_module":
        return bool(getattr(module, "inplace", False))
    if op == "call_method":
        return str(target).endswith("_") and not str(target).startswith("_")
    if kwargs.get("inplace"):
        return True
    return target in (operator.iadd, operator.isub, operator.imul, operator.itruediv, F.relu_, torch.relu_)
