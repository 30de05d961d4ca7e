"""The model registry: every model with the metadata the CLI, API, UI and tests are generated from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from torch import nn

from ..data.mnist import CLASS_NAMES
from ..errors import ModelError
from ..settings import Settings
from . import zoo
from .adapter import ModelAdapter
from .imagenet import BUILDERS, DEFAULTS, WEIGHTS, WeightsRecord, imagenet_categories
from .imagenet.store import find_weights
from .user import UserModel, load_user_model


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it, its input shape, class names, preprocessing and default weights."""

    name: str
    description: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]  # (C, H, W)
    class_names: tuple[str, ...]
    # How a user's image becomes model input: a name (or describe() dict) from convscope.preprocessing.
    preprocessing: str | dict
    dataset: str
    default_weights: str | None = None  # file name under convscope/models/weights
    tags: tuple[str, ...] = field(default_factory=tuple)
    user: UserModel | None = None  # a model of the user's own: where its code, weights and classes are
    # Where the default weights come from and under which licence: {"source": ..., "licence": ...}
    weights_info: dict = field(default_factory=dict)
    # A user's model as registered, loaded once (registering checks it by loading it; nothing loads it again).
    loaded: ModelAdapter | None = field(default=None, compare=False, repr=False)
    # Pretrained weights records (the first is the default), for the ImageNet models.
    weights: tuple[WeightsRecord, ...] = field(default_factory=tuple)

    def adapter(self, module: nn.Module) -> ModelAdapter:
        """``module`` (built by ``build``, with weights loaded) wrapped with this model's metadata."""
        return ModelAdapter(module, self.class_names, self.preprocessing, name=self.name,
                            input_shape=self.input_shape,
                            metadata={"description": self.description, "dataset": self.dataset,
                                      "weights": self.weights_info})

    @property
    def trainable(self) -> bool:
        """Whether convscope's trainer can train it: the MNIST models, for now."""
        return self.dataset == "mnist"

    @property
    def loadable(self) -> bool:
        """Whether ``load_model(name)`` works now, with no training and no download: packaged weights, a user's
        model, or pretrained weights already here."""
        if self.user is not None or self.default_weights_path() is not None:
            return True
        return bool(self.weights) and find_weights(self.weights[0], Settings.from_env()) is not None

    def default_weights_path(self) -> Path | None:
        if self.default_weights is None:
            return None
        path = Path(str(resources.files("convscope.models") / "weights" / self.default_weights))
        return path if path.is_file() else None


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (replacing one of the same name) and return it."""
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is already registered")
    MODELS[spec.name] = spec
    return spec


def register_user_model(config: UserModel) -> ModelSpec:
    """Load a user's model (so every mistake in it shows now, as one clear error) and register it under its
    name; registering the same name again replaces an earlier user model, never a built-in one."""
    adapter = load_user_model(config)
    existing = MODELS.get(adapter.name)
    if existing is not None and existing.user is None:
        raise ModelError(f"{adapter.name!r} is a built-in model: give yours another name")
    MODELS[adapter.name] = spec = ModelSpec(
        name=adapter.name, description=adapter.metadata["description"], build=lambda: load_user_model(config).module,
        input_shape=adapter.input_shape, class_names=adapter.class_names,
        preprocessing=adapter.preprocessing.describe(), dataset="user", tags=("user",), user=config,
        weights_info={"source": config.public_source()["weights"] or "none: the factory's own (random) weights"},
        loaded=adapter)
    return spec


def build_model(name: str) -> nn.Module:
    """The named architecture with random weights (nothing is read or downloaded)."""
    return get_spec(name).build()


def get_spec(name: str) -> ModelSpec:
    """The registered model called ``name``; an unknown name raises ModelError listing the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


PACKAGED_MNIST_WEIGHTS = {"source": "trained on MNIST by convscope (`make weights`; the command is in the file)",
                          "licence": "MIT, as convscope; MNIST: Yann LeCun and Corinna Cortes, CC BY-SA 3.0"}

register(ModelSpec(
    name="mnist_cnn",
    description="Conv32-Pool-Conv64-Pool-Dense128-Dense10 convolutional network for MNIST digits",
    build=zoo.mnist_cnn, input_shape=(1, 28, 28), class_names=CLASS_NAMES, preprocessing="mnist_digit",
    dataset="mnist", default_weights="mnist_cnn.safetensors", tags=("cnn",), weights_info=PACKAGED_MNIST_WEIGHTS,
))
register(ModelSpec(
    name="mnist_mlp",
    description="784-32-32-10 dense network with sigmoid hidden layers for MNIST digits",
    build=zoo.mnist_mlp, input_shape=(1, 28, 28), class_names=CLASS_NAMES, preprocessing="mnist_digit",
    dataset="mnist", default_weights="mnist_mlp.safetensors", tags=("mlp",), weights_info=PACKAGED_MNIST_WEIGHTS,
))


IMAGENET_DESCRIPTIONS = {
    "vgg16": "VGG16 (Simonyan and Zisserman 2015): 13 3x3 convolutions in 5 blocks, 3 dense layers; ImageNet-1k",
    "vgg19": "VGG19 (Simonyan and Zisserman 2015): 16 3x3 convolutions in 5 blocks, 3 dense layers; ImageNet-1k",
    "resnet50": "ResNet50 (He et al. 2016): 16 bottleneck residual blocks in 4 stages; ImageNet-1k",
    "inception_v3": "Inception v3 (Szegedy et al. 2016): factorised multi-branch Inception blocks; ImageNet-1k, 299 px",
    "efficientnet_lite0": "EfficientNet-Lite0 (Tan and Le 2019, mobile variant): 16 inverted-residual blocks; "
                          "ImageNet-1k; weights ship with convscope, so it works offline",
}
for _name, _build in BUILDERS.items():
    _default = DEFAULTS[_name]
    register(ModelSpec(
        name=_name, description=IMAGENET_DESCRIPTIONS[_name], build=_build,
        input_shape=(3, _default.preprocessing["crop_size"], _default.preprocessing["crop_size"]),
        class_names=imagenet_categories(), preprocessing=_default.preprocessing, dataset="imagenet",
        tags=("cnn", "imagenet"), weights=tuple(r for r in WEIGHTS if r.model == _name),
        weights_info={"source": _default.url or f"the Python package {_default.package}",
                      "licence": _default.licence}))
