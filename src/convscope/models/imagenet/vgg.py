"""VGG16 and VGG19 (Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015, https://arxiv.org/abs/1409.1556), laid out as torchvision lays them out so its weight files load as
they are: ``features.N`` (conv / ReLU / max-pool in one numbered sequence), ``avgpool`` to 7x7, and
``classifier.{0,3,6}`` (4096-4096-1000 with ReLU and dropout between).
"""

from __future__ import annotations

from torch import nn

# Output channels of each 3x3 conv; "M" is a 2x2 max-pool. VGG16 is configuration D, VGG19 configuration E.
LAYOUTS = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


class VGG(nn.Module):
    def __init__(self, layout: tuple, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))  # 224 px input: already 7x7, so this changes nothing
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        self._initialise()

    def _initialise(self) -> None:
        """He initialisation for convs, N(0, 0.01) for the dense layers, zero biases (what the paper's successors
        and torchvision use)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        """(B, 3, H, W) ImageNet-normalised -> (B, num_classes) logits."""
        x = self.avgpool(self.features(x))  # (B, 512, 7, 7)
        return self.classifier(x.flatten(1))


def vgg16() -> VGG:
    return VGG(LAYOUTS["vgg16"])


def vgg19() -> VGG:
    return VGG(LAYOUTS["vgg19"])
