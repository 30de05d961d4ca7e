"""A model fine-tuned from another one: the base network with its last linear layer (the classifier head) replaced
by a new one for the user's classes.

What a fine-tuned checkpoint records (metadata ``finetuned``): the base model's name, the head's module path and
input width, the class names, and the base's preprocessing. That is enough to build the architecture again from
the registry and load the saved weights into it, so the result is a model like any other: inspect, CAM, compare,
evaluate. Its blocks (``blocks``) are what "train the last N blocks" counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import ModelError
from .registry import MODELS, ModelSpec, get_spec
from .user import MODEL_NAME

NORMALIZATION = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


def classifier_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """The last ``nn.Linear`` the model defines (its module path and the layer): the layer that makes the class
    scores in every classifier convscope knows (VGG ``classifier.6``, ResNet/Inception ``fc``, EfficientNet
    ``_fc``, the MNIST nets ``fc2``)."""
    linear = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise ModelError("the model has no linear layer to replace with a new classifier head")
    return linear[-1]


def replace_module(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, new)


def blocks(model: nn.Module, head: str) -> list[list[str]]:
    """The model's parameterised blocks before ``head``, first to last, each as its parameters' names.

    A block is a module reached by going down from the model through ``nn.Sequential``/``nn.ModuleList``
    containers only: a ResNet bottleneck (``layer4.2``), an EfficientNet MBConv block (``_blocks.15``), an
    Inception module (``Mixed_7c``), a VGG layer (``features.28``). A block with only normalisation parameters joins
    the one before it (``bn1`` goes with ``conv1``)."""
    units: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        if name == head or name.startswith(head + "."):
            continue
        parts, module, unit = name.split(".")[:-1], model, []
        for part in parts:
            module = module._modules[part]
            unit.append(part)
            if not isinstance(module, (nn.Sequential, nn.ModuleList)):
                break
        units.setdefault(".".join(unit), []).append(name)
    merged: list[list[str]] = []
    for path, names in units.items():
        only_norm = path and isinstance(model.get_submodule(path), NORMALIZATION)
        if only_norm and merged:
            merged[-1] += names
        else:
            merged.append(list(names))
    return merged


@dataclass(frozen=True)
class FineTuned:
    """What a fine-tuned model is made of (a checkpoint's ``finetuned`` metadata)."""

    name: str
    base: str
    head: str  # the replaced layer's module path
    in_features: int
    class_names: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"base": self.base, "head": self.head, "in_features": self.in_features,
                "class_names": list(self.class_names)}

    @classmethod
    def from_metadata(cls, name: str, values: dict) -> FineTuned:
        try:
            return cls(name, values["base"], values["head"], int(values["in_features"]),
                       tuple(values["class_names"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"corrupt fine-tuning metadata ({e!r})") from None

    def build(self) -> nn.Module:
        """The base architecture (random weights) with a new head of ``len(class_names)`` outputs."""
        model = get_spec(self.base).build()
        path, old = classifier_head(model)
        if path != self.head or old.in_features != self.in_features:
            raise ModelError(f"{self.base}'s classifier is {path} with {old.in_features} inputs, not {self.head} with "
                             f"{self.in_features}: the checkpoint was made from another version of it")
        replace_module(model, path, nn.Linear(self.in_features, len(self.class_names)))
        return model


def register_finetuned(finetuned: FineTuned) -> ModelSpec:
    """Register (or re-register) a fine-tuned model under its name; a built-in or user model's name is refused."""
    if not MODEL_NAME.fullmatch(finetuned.name):
        raise ModelError(f"model name {finetuned.name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    existing = MODELS.get(finetuned.name)
    if existing is not None and existing.dataset != "finetuned":
        raise ModelError(f"{finetuned.name!r} is already a model's name: give the fine-tuned one another")
    if finetuned.base not in MODELS:
        raise ModelError(f"{finetuned.name} was fine-tuned from {finetuned.base}, which is not registered here: a "
                         "model of your own needs its --model-file (and --preprocessing) again")
    base = get_spec(finetuned.base)
    MODELS[finetuned.name] = spec = ModelSpec(
        name=finetuned.name,
        description=f"{base.name} fine-tuned on {len(finetuned.class_names)} classes of your own "
                    f"({', '.join(finetuned.class_names[:4])}{', ...' if len(finetuned.class_names) > 4 else ''})",
        build=finetuned.build, input_shape=base.input_shape, class_names=finetuned.class_names,
        preprocessing=base.preprocessing, dataset="finetuned", tags=("finetuned", *base.tags),
        weights_info={"source": f"fine-tuned from {base.name}", "base": base.weights_info})
    return spec
