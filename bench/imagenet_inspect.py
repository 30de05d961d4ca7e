"""The ImageNet models on one photo, 2 threads: what the adapter and a full inspection cost on top of the bare
module, and the bf16 path.

For each model (its official weights when they are here, else random weights: the cost is the same):
  bare forward      module(x) under no_grad, channels_last
  adapter forward   the adapter's traced copy, no taps asked (goal: <= 1.10x bare)
  bare fwd+bwd      module(x), then d(top logit)/d(x): the floor for any gradient explanation
  inspection        Inspector.inspect: prediction + Grad-CAM at the default layer (goal: <= 1.5x fwd+bwd)
  + saliency        the same with the input gradient too (a backward through the whole network)
  bf16 inspection   the module converted to bf16 once (not autocast per call), same inspection
and, on the four sample photos, how often bf16's top-1 agrees with fp32's and the largest logit difference.
Goals (issue 11): efficientnet_lite0 inspection <= 30 ms; VGG16 inspection with Grad-CAM <= 150 ms in bf16.

Usage: python bench/imagenet_inspect.py [--runs N] [--models vgg16,resnet50]
"""

from __future__ import annotations

import argparse
import copy

import torch
from PIL import Image

from common import median, timed_calls
from convscope.data.photos import PHOTOS
from convscope.inspect import Inspector
from convscope.models import MODELS, load_model
from convscope.models.imagenet.store import find_weights
from convscope.settings import Settings


def timed(fn, runs: int) -> float:
    """Median seconds per call, after two warm-up calls."""
    return median(timed_calls(fn, runs, warmup=2))


def adapter_for(name: str):
    spec = MODELS[name]
    if find_weights(spec.weights[0], Settings.from_env()) is not None:
        return load_model(name).adapter, "official weights"
    module = spec.build().to(memory_format=torch.channels_last).eval()
    return spec.adapter(module), "random weights (official file not here)"


def bare_forward_backward(module, x):
    x = x.clone().requires_grad_(True)
    logits = module(x)
    torch.autograd.grad(logits[0].max(), x)


def measure(name: str, runs: int) -> None:
    adapter, weights = adapter_for(name)
    module = adapter.module
    photo = Image.open(PHOTOS["coffee"].path)
    pixels, _ = adapter.preprocessing.prepare(photo)
    x = adapter.preprocessing.normalize(pixels[None]).contiguous(memory_format=torch.channels_last)
    inspector = Inspector(adapter)
    with torch.no_grad():
        bare = timed(lambda: module(x), runs)
        wrapped = timed(lambda: adapter.logits(pixels[None]), runs)
    both = timed(lambda: bare_forward_backward(module, x), runs)
    full = timed(lambda: inspector.inspect(pixels, saliency=False), runs)
    with_saliency = timed(lambda: inspector.inspect(pixels), runs)
    low = copy.deepcopy(adapter).to(dtype=torch.bfloat16)
    low_inspector = Inspector(low)
    bf16 = timed(lambda: low_inspector.inspect(pixels, saliency=False), runs)
    agree, worst = 0, 0.0
    for photo in PHOTOS.values():
        image, _ = adapter.preprocessing.prepare(Image.open(photo.path))
        exact = inspector.inspect(image, layers=[], saliency=False)
        approx = low_inspector.inspect(image, layers=[], saliency=False)
        agree += exact.predicted == approx.predicted
        worst = max(worst, float((exact.logits - approx.logits).abs().max()))
    print(f"{name:<18} ({weights})")
    print(f"  bare forward {bare * 1000:7.1f} ms | adapter forward {wrapped * 1000:7.1f} ms ({wrapped / bare:.2f}x)")
    print(f"  bare fwd+bwd {both * 1000:7.1f} ms | inspection      {full * 1000:7.1f} ms ({full / both:.2f}x), "
          f"CAM at {inspector.graph.default_cam_layer()}; + saliency {with_saliency * 1000:.1f} ms")
    print(f"  bf16 inspection {bf16 * 1000:7.1f} ms ({bf16 / full:.2f}x fp32); top-1 agrees on {agree}/{len(PHOTOS)} "
          f"photos, largest logit difference {worst:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--models", default="efficientnet_lite0,resnet50,inception_v3,vgg16,vgg19")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.runs} runs, "
          "one 224 px photo (299 for Inception)")
    for name in args.models.split(","):
        measure(name, args.runs)


if __name__ == "__main__":
    main()
