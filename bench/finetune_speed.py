"""Fine-tuning a frozen EfficientNet-Lite0 on 1,000 images of 224 px: time to read the images, to compute the
features, per head epoch, and the validation accuracy reached.

The images are real handwriting: 100 MNIST test digits per class, drawn dark on white and scaled to 224x224 RGB
JPEGs in a temporary folder (one sub-folder per digit). Each run is a fresh `convscope finetune` process with its
defaults (20% held out per class, 2 augmented views per training image). Usage:
python bench/finetune_speed.py [runs] (CONVSCOPE_MNIST_DIR set).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median
from PIL import Image

from convscope.data.mnist import load_mnist

PER_CLASS = 100
SIZE = 224


def write_digits(root: Path) -> None:
    test = load_mnist("test")
    for digit in range(10):
        folder = root / str(digit)
        folder.mkdir(parents=True)
        for n, index in enumerate((test.labels == digit).nonzero().flatten()[:PER_CLASS].tolist()):
            image = Image.fromarray(255 - test.images[index].numpy()).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
            image.convert("RGB").save(folder / f"{n}.jpg", quality=90)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    convscope = shutil.which("convscope", path=str(Path(sys.executable).parent)) or "convscope"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        write_digits(Path(tmp) / "digits")
        for run in range(runs):
            start = time.perf_counter()
            done = subprocess.run([convscope, "finetune", f"{tmp}/digits", "--out", f"{tmp}/{run}.safetensors",
                                   "--json", "--quiet"], capture_output=True, text=True, check=True, env=os.environ)
            summary = json.loads(done.stdout)
            summary["wall_s"] = time.perf_counter() - start
            results.append(summary)
            t = summary["timings"]
            print(f"  run {run}: images {t['images']:.1f} s, features {t['features']:.1f} s, {summary['epochs']} head "
                  f"epochs at {t['per_epoch'] * 1000:.0f} ms each, validation accuracy "
                  f"{summary['validation_accuracy']:.4f}, whole process {summary['wall_s']:.1f} s", flush=True)
    pick = {key: median([r["timings"][key] for r in results]) for key in ("images", "features", "per_epoch")}
    print(f"median: reading 1,000 images {pick['images']:.1f} s, features of 1,000 + 2 x 800 views "
          f"{pick['features']:.1f} s, head epoch {pick['per_epoch'] * 1000:.0f} ms, validation accuracy "
          f"{median([r['validation_accuracy'] for r in results]):.4f}, whole process "
          f"{median([r['wall_s'] for r in results]):.1f} s")


if __name__ == "__main__":
    main()
