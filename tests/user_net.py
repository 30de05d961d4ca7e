"""A model of the user's own, as files on disk: the Python source with its factories, class names and a photo.
Shared by the engine, CLI and server tests (test_user_models.py) and the browser tests (test_ui_user_model.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image

NET = textwrap.dedent('''
    import torch
    from torch import nn


    class Tiny(nn.Module):
        """RGB 16x16 -> conv(4) -> ReLU(inplace) -> residual 1x1 conv + add -> the same ReLU -> pool -> 3 classes."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.relu = nn.ReLU(inplace=True)
            self.mix = nn.Conv2d(4, 4, 1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            x = self.relu(self.stem(x))
            x = self.relu(self.mix(x) + x)
            return self.head(torch.flatten(self.pool(x), 1))


    class Gated(nn.Module):
        """Grey 8x8; data-dependent control flow: torch.fx cannot trace it."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.fc = nn.Linear(2 * 8 * 8, 3)

        def forward(self, x):
            y = self.conv(x)
            if y.sum() > 1e9:
                y = y * 0
            return self.fc(torch.relu(y).flatten(1))


    def tiny():
        torch.manual_seed(0)
        return Tiny()


    def gated():
        torch.manual_seed(0)
        return Gated()


    def dense():
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))
''')
CLASSES = ["cat", "dog", "tabby cat"]
TINY_PREPROCESSING = {"name": "resize", "size": 16, "channels": 3}
GATED_PREPROCESSING = {"name": "resize", "size": 8, "channels": 1}


def write_user_files(folder: Path) -> dict[str, Path]:
    """net.py, classes.txt and photo.png (a 40x30 red picture with a blue square) in ``folder``."""
    (folder / "net.py").write_text(NET)
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    picture = Image.new("RGB", (40, 30), (200, 30, 30))
    picture.paste((20, 20, 220), (10, 5, 30, 25))
    picture.save(folder / "photo.png")
    return {"net": folder / "net.py", "classes": folder / "classes.txt", "photo": folder / "photo.png"}
