"""Peak memory of reading and preprocessing the biggest images the server takes (16.7 megapixels, 20 KB as a PNG):
a 4096x4096 drawing and a 16,777,216x1 strip, each through mnist_digit and imagenet preprocessing, each in a fresh
process: the rise of its peak resident size over what it held after the imports. Usage: python bench/image_memory.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = """
import resource, sys
from pathlib import Path
from convscope.images import open_image
from convscope.preprocessing import get_preprocessing
preprocessing = get_preprocessing(sys.argv[1])
data = Path(sys.argv[2]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
preprocessing.prepare(open_image(data))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
SHAPES = {"4096x4096 drawing": (4096, 4096), "16777216x1 strip": (1, 4096 * 4096)}


def write_png(folder: Path, shape: tuple[int, int]) -> Path:
    pixels = np.zeros(shape, np.uint8)
    pixels[shape[0] // 4:shape[0] * 3 // 4 + 1, shape[1] // 2 - 200:shape[1] // 2 + 200] = 255
    path = folder / f"{shape[0]}x{shape[1]}.png"
    Image.fromarray(pixels).save(path)
    return path


def main() -> None:
    print("image                 preprocessing  PNG bytes  peak rise")
    with tempfile.TemporaryDirectory() as folder:
        for label, shape in SHAPES.items():
            path = write_png(Path(folder), shape)
            for name in ("mnist_digit", "imagenet"):
                out = subprocess.run([sys.executable, "-c", CHILD, name, str(path)], capture_output=True, text=True)
                result = f"{float(out.stdout):7.0f} MB" if out.returncode == 0 else \
                    f"failed: {out.stderr.strip().splitlines()[-1]}"
                print(f"  {label:<20} {name:<14} {path.stat().st_size:>9,} {result}")


if __name__ == "__main__":
    main()
