"""The model registry: every model with the metadata the CLI, API, UI and tests are generated from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from ..data.mnist import CLASS_NAMES
from ..errors import ModelError
from . import zoo
from .net import LayeredNet, LayerKind


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[[], LayeredNet]
    input_shape: tuple[int, int, int]  # (C, H, W)
    class_names: tuple[str, ...]
    # How raw input becomes model input: "mnist_digit" = 28x28 grey, ink light on dark, in [0, 1],
    # drawings centred by mass in a 20x20 box (see convscope.preprocess).
    preprocessing: str
    dataset: str
    default_weights: str | None = None  # file name under convscope/models/weights
    tags: tuple[str, ...] = field(default_factory=tuple)

    def default_weights_path(self) -> Path | None:
        if self.default_weights is None:
            return None
        path = Path(str(resources.files("convscope.models") / "weights" / self.default_weights))
        return path if path.is_file() else None


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is already registered")
    MODELS[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


register(ModelSpec(
    name="mnist_cnn",
    description="Conv32-Pool-Conv64-Pool-Dense128-Dense10 convolutional network for MNIST digits",
    build=zoo.mnist_cnn, input_shape=(1, 28, 28), class_names=CLASS_NAMES, preprocessing="mnist_digit",
    dataset="mnist", default_weights="mnist_cnn.safetensors", tags=("cnn",),
))
register(ModelSpec(
    name="mnist_mlp",
    description="784-32-32-10 dense network with sigmoid hidden layers for MNIST digits",
    build=zoo.mnist_mlp, input_shape=(1, 28, 28), class_names=CLASS_NAMES, preprocessing="mnist_digit",
    dataset="mnist", default_weights="mnist_mlp.safetensors", tags=("mlp",),
))


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: LayerKind
    output_shape: tuple[int, ...]  # without the batch dimension
    parameters: int
    macs: int  # multiply-accumulates for one input; FLOPs ~= 2 * macs
    # conv and pool layers: how each output cell sees its input, (height, width) each; None for other kinds
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | None = None

    def as_dict(self) -> dict:
        body = {"name": self.name, "kind": self.kind.value, "output_shape": list(self.output_shape),
                "parameters": self.parameters, "macs": self.macs, "flops": 2 * self.macs}
        if self.kernel is not None:
            body.update(kernel=list(self.kernel), stride=list(self.stride), padding=list(self.padding))
        return body


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _window(module: torch.nn.Module) -> dict:
    if isinstance(module, (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d)):
        stride = module.stride if module.stride is not None else module.kernel_size
        return {"kernel": _pair(module.kernel_size), "stride": _pair(stride), "padding": _pair(module.padding)}
    return {}


def _layer_macs(module: torch.nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, torch.nn.Conv2d):
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        return per_output * output[0].numel()
    if isinstance(module, torch.nn.Linear):
        return module.in_features * module.out_features
    return 0


def describe_layers(model: LayeredNet, input_shape: tuple[int, ...]) -> list[LayerInfo]:
    """Every layer's kind, output shape, parameter count and MACs, from one dry forward of a blank input."""
    x = torch.zeros(1, *input_shape, device=model.input_mean.device)
    infos = []
    with torch.no_grad():
        x = model.normalize(x)
        for name, module in model.named_children():
            x = module(x)
            infos.append(LayerInfo(name, model.kinds[name], tuple(x.shape[1:]),
                                   sum(p.numel() for p in module.parameters()), _layer_macs(module, x),
                                   **_window(module)))
    return infos
