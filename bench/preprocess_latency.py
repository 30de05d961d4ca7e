"""Drawing preprocessing latency (crop, stroke-width normalisation, 20x20 box, centre of mass) for canvases of
several sizes, one thread: part of every live prediction's budget. Usage: python bench/preprocess_latency.py"""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw

from common import median, percentile, timed_calls
from convscope.preprocessing.mnist_digit import preprocess_drawing


def canvas(size: int) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    points = [(size * 0.2, size * 0.15), (size * 0.8, size * 0.15), (size * 0.4, size * 0.85)]
    ImageDraw.Draw(image).line(points, fill="black", width=max(2, size // 70))
    return image


def main() -> None:
    torch.set_num_threads(1)
    print("preprocess_drawing on a drawn 7, 1 thread, median of 3 rounds")
    for size, calls in ((280, 500), (560, 300), (1000, 100), (2000, 30)):
        image = canvas(size)
        runs = [timed_calls(lambda: preprocess_drawing(image), calls, warmup=5) for _ in range(3)]
        print(f"  {size}x{size}: p50 {median([percentile(r, 50) for r in runs]) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
