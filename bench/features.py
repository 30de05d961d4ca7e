"""Feature visualization and top-activating examples (convscope.inspect.features): what they cost here.

Optimisation, one image, default settings (Fourier basis, decorrelated colour, jitter, scale and rotation), for a
channel of the layer Grad-CAM uses by default (the last conv block's output) and for a class logit:
  mnist_cnn at 28 px; efficientnet_lite0 and VGG16 at 128 and 224 px.
  * time per step: the median of ``--repeats`` steps, after 2 warm-up steps;
  * time to a recognisable result: the stated number of steps (``RECOGNISABLE``: 64 on mnist_cnn, 256 on the
    ImageNet models; Lucid renders 512) times the time per step. Looked at (EfficientNet-Lite0 at 128 px: the
    espresso and goldfish logits, two mid-layer channels; the ten mnist_cnn digit logits), the image at step 64
    already has its final layout and 256 adds detail; the objective reached 90% of its rise by step 45 of 64 on
    mnist_cnn and by step 101 of 256 for an EfficientNet logit. With ``--full`` the steps are run, and that
    90% step is printed too.
Top-activating pass (k = 9, the batch size the engine picks):
  mnist_cnn over the MNIST test set (10,000 digits), one pass per conv layer and one for all of them;
  efficientnet_lite0 and VGG16 over 1,000 photos: ``--photos DIR``, or by default the four sample photos 250
  times each, decoded and prepared every time like any other file, one pass per layer (first conv, a middle one,
  the default CAM layer) and one for the three; the time just to read the photos is printed first.

VGG16's official weights are not shipped: without them it is skipped, unless ``--random-weights`` (same cost).

Usage: python bench/features.py [--models mnist_cnn,efficientnet_lite0,vgg16] [--sizes 128,224] [--repeats 10]
                                [--full] [--photos DIR] [--photo-count 1000] [--random-weights] [--threads 2]
(CONVSCOPE_MNIST_DIR set, or MNIST in the cache)
"""

from __future__ import annotations

import argparse
import time
from itertools import pairwise
from pathlib import Path

import torch

from common import median
from convscope.data import load_mnist
from convscope.data.photos import PHOTOS
from convscope.inspect.features import ImageFiles, Target, VisualizationSettings, top_activating, visualize
from convscope.models import MODELS, load_model
from convscope.models.imagenet.store import find_weights, where_to_put
from convscope.models.kinds import LayerKind
from convscope.settings import Settings

RECOGNISABLE = {"mnist_cnn": 64, "imagenet": 256}  # steps
WARMUP_STEPS = 2


def adapter_for(name: str, random_weights: bool):
    """(adapter, what weights) or (None, why it is skipped)."""
    spec = MODELS[name]
    settings = Settings.from_env()
    if not spec.weights or find_weights(spec.weights[0], settings) is not None:
        return load_model(name).adapter, "official weights" if spec.weights else "packaged weights"
    if not random_weights:
        return None, f"official weights not here ({where_to_put(spec.weights[0], settings)}); --random-weights " \
                     "times it with random ones"
    module = spec.build().to(memory_format=torch.channels_last).eval()  # as load_model holds the official ones
    return spec.adapter(module), "random weights (official file not here; the cost is the same)"


def step_time(model, target: Target, size: int, repeats: int) -> float:
    """Median seconds per optimisation step: the per-step progress callback's clock, warm-up steps left out."""
    stamps = []
    settings = VisualizationSettings(steps=WARMUP_STEPS + repeats, size=(size, size))
    visualize(model, target, settings, progress=lambda step, steps: stamps.append(time.perf_counter()))
    steps = [after - before for before, after in pairwise(stamps)]  # step 2 onwards: step 1 has no start stamp
    return median(steps[WARMUP_STEPS - 1:])


def full_run(model, target: Target, size: int, steps: int) -> tuple[float, int]:
    """(seconds for ``steps`` steps, the step where the objective first reached 90% of its final value)."""
    result = visualize(model, target, VisualizationSettings(steps=steps, size=(size, size)))
    start, final = result.history[0], result.history[-1]
    reached = next(step for step, value in enumerate(result.history, 1) if value - start >= 0.9 * (final - start))
    return result.seconds, reached


def optimisation(name: str, model, sizes: list[int], repeats: int, full: bool) -> None:
    layer = model.graph.default_cam_layer()
    steps = RECOGNISABLE["mnist_cnn" if name == "mnist_cnn" else "imagenet"]
    for size in sizes:
        for label, target in ((f"{layer} channel 0", Target.channel(layer, 0)), ("logit 0", Target.logit(0))):
            per_step = step_time(model, target, size, repeats)
            line = (f"  {size:>4} px  {label:<28} {per_step * 1000:8.1f} ms/step   {steps} steps: "
                    f"{per_step * steps:6.1f} s")
            if full:
                seconds, reached = full_run(model, target, size, steps)
                line += f" (run: {seconds:.1f} s, 90% of the objective's rise by step {reached})"
            print(line, flush=True)


def spatial_convs(model) -> list[str]:
    return [tap.name for tap in model.graph.taps if tap.kind is LayerKind.CONV and tap.spatial]


def passes(model, data, layers: list[str], count: int) -> None:
    for chosen in [[layer] for layer in layers] + ([layers] if len(layers) > 1 else []):
        result = next(iter(top_activating(model, data, chosen).values()))
        label = chosen[0] if len(chosen) == 1 else f"all {len(chosen)} in one pass"
        print(f"  {label:<36} {result.seconds:7.2f} s  {count / result.seconds:8.0f} images/s", flush=True)


def mnist_pass(model) -> None:
    digits = load_mnist("test").as_float()  # (10000, 1, 28, 28)
    print(f"\ntop-activating pass, mnist_cnn, MNIST test set ({len(digits):,} digits), k = 9")
    passes(model, digits, spatial_convs(model), len(digits))


def photo_pass(name: str, model, photos: Path | None, count: int) -> None:
    if photos is not None:
        data = ImageFiles.from_folder(photos, model.preprocessing)
        source = f"{len(data):,} photos from {photos}"
    else:
        files = [photo.path for photo in PHOTOS.values()]
        data = ImageFiles((files * (count // len(files) + 1))[:count], model.preprocessing)
        source = f"the {len(files)} sample photos, {len(data):,} in all"
    started = time.perf_counter()
    read = sum(len(indices) for indices, _ in data.batches(32))
    print(f"\ntop-activating pass, {name}, {source}, k = 9; reading and preparing them alone: "
          f"{time.perf_counter() - started:.1f} s")
    convs = spatial_convs(model)
    layers = list(dict.fromkeys([convs[0], convs[len(convs) // 2], model.graph.default_cam_layer()]))
    passes(model, data, layers, read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mnist_cnn,efficientnet_lite0,vgg16")
    parser.add_argument("--sizes", default="128,224", help="input sizes for the ImageNet models (px)")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per optimisation")
    parser.add_argument("--full", action="store_true", help="also run the stated steps to a recognisable result")
    parser.add_argument("--photos", type=Path, help="a folder of photos for the ImageNet passes")
    parser.add_argument("--photo-count", type=int, default=1000)
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--no-passes", action="store_true", help="time the optimisation only")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} threads; optimisation: one image, default settings, median of {args.repeats} steps")
    for name in args.models.split(","):
        model, weights = adapter_for(name, args.random_weights)
        if model is None:
            print(f"\n{name}: skipped: {weights}")
            continue
        sizes = [28] if name == "mnist_cnn" else [int(size) for size in args.sizes.split(",")]
        print(f"\n{name} ({weights}), optimisation")
        optimisation(name, model, sizes, args.repeats, args.full)
        if args.no_passes:
            continue
        if name == "mnist_cnn":
            mnist_pass(model)
        else:
            photo_pass(name, model, args.photos, args.photo_count)


if __name__ == "__main__":
    main()
