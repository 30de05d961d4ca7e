"""Attribution methods: the time of each on one input, for the MNIST CNN (a digit from the MNIST test set) and for
EfficientNet-Lite0 (the coffee photo), medians of ``--repeats`` runs after one untimed; then the cascading
randomisation check per method (Adebayo et al. 2018) on the MNIST CNN over ``--images`` test digits: its time, and
the rank correlation and SSIM after each layer is randomised, with the verdict. ``--curves FILE`` also draws
those as a PNG, the paper's figure for this model (needs matplotlib).

``--more`` adds: the data randomisation check against a mnist_cnn trained here on shuffled labels
(``--shuffled-epochs``), the deletion/insertion areas per method on both models, and the cascading check on
EfficientNet-Lite0's four sample photos for the methods of one pass.

Usage: python bench/attributions.py [--repeats 5] [--images 8] [--curves docs/sanity-curves.png] [--more]"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from common import median, timed_calls
from convscope.data import load_mnist
from convscope.data.photos import get_photo
from convscope.images import open_image
from convscope.inspect.attribution import (ATTRIBUTIONS, attribute, cascading_randomisation, data_randomisation,
                                           deletion_insertion)
from convscope.inspect.attribution.sanity import sanity_inputs
from convscope.models import load_model
from convscope.settings import Settings


def method_times(model, x: torch.Tensor, repeats: int) -> None:
    print(f"{'method':<22} {'median ms':>10} {'inputs':>7}  cost")
    for name, method in ATTRIBUTIONS.items():
        passes = attribute(model, x, name).forward_passes
        times = timed_calls(lambda name=name: attribute(model, x, name), repeats, warmup=1)
        print(f"{name:<22} {median(times) * 1000:10.1f} {passes:>7}  {method.cost}")


def sanity_checks(model, images: torch.Tensor) -> dict:
    print(f"\ncascading randomisation, mnist_cnn, {len(images)} test digits (mean per step: rank correlation of "
          "|maps| / SSIM)")
    results = {}
    for name in ATTRIBUTIONS:
        started = time.perf_counter()
        check = cascading_randomisation(model, images, name)
        results[name] = check
        steps = "  ".join(f"{s.randomised} {s.spearman if s.spearman is not None else float('nan'):.2f}/{s.ssim:.2f}"
                          for s in check.steps)
        print(f"{name:<22} {time.perf_counter() - started:6.2f} s  {steps}  -> {'passes' if check.passes else 'fails'}")
    return results


def shuffled_label_model(settings: Settings, epochs: float):
    from convscope.training import TrainConfig, train
    started = time.perf_counter()
    # at the default learning rate (0.005) the ReLUs of a model fed shuffled labels die and every map is flat
    result = train(TrainConfig(epochs=epochs, lr=1e-3, shuffle_labels=True, validation_split=0), settings=settings)
    print(f"\nmnist_cnn trained on shuffled labels: {epochs} epochs in {time.perf_counter() - started:.0f} s, "
          f"training accuracy {result.history[-1]['train_accuracy']:.3f}, test accuracy "
          f"{result.test_metrics.accuracy:.3f}")
    return result


def data_checks(model, shuffled, images: torch.Tensor) -> None:
    print(f"data randomisation, mnist_cnn against the shuffled-label model, {len(images)} test digits")
    for name in ATTRIBUTIONS:
        check = data_randomisation(model, shuffled, images, name)
        corr = "  –  " if check.spearman is None else f"{check.spearman:5.2f}"
        print(f"{name:<22} rank correlation {corr}  SSIM {check.ssim:5.2f}  -> {check.outcome}")


def faithfulness(model, images: torch.Tensor, label: str) -> None:
    print(f"\ndeletion / insertion areas, {label} (random order in brackets; deletion: lower is better)")
    for name in ATTRIBUTIONS:
        started = time.perf_counter()
        found = deletion_insertion(model, images, name)
        print(f"{name:<22} {time.perf_counter() - started:6.2f} s  deletion {found.deletion.auc:.3f} "
              f"({found.random_deletion.auc:.3f})  insertion {found.insertion.auc:.3f} "
              f"({found.random_insertion.auc:.3f})  beats random: deletion {found.deletion_beats_random}, "
              f"insertion {found.insertion_beats_random}")


def imagenet_sanity(model, images: torch.Tensor) -> None:
    print(f"\ncascading randomisation, efficientnet_lite0, {len(images)} sample photos (one-pass methods)")
    for name, method in ATTRIBUTIONS.items():
        if method.slow:
            continue
        started = time.perf_counter()
        check = cascading_randomisation(model, images, name)
        final = check.steps[-1]
        print(f"{name:<22} {time.perf_counter() - started:6.1f} s  {len(check.steps)} layers; after the classifier: "
              f"{check.steps[0].spearman:.2f}/{check.steps[0].ssim:.2f}; all: {final.spearman:.2f}/{final.ssim:.2f}"
              f"  -> {check.outcome}")


def draw_curves(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for name, check in results.items():
        labels = ["none", *(s.randomised for s in check.steps)]
        style = "-" if check.passes else "--"
        left.plot(labels, [1.0, *(s.spearman if s.spearman is not None else 0 for s in check.steps)], style,
                  marker="o", label=name)
        right.plot(labels, [1.0, *(s.ssim for s in check.steps)], style, marker="o", label=name)
    left.set(title="Rank correlation of |maps| with the original", xlabel="randomised down to", ylim=(-0.2, 1.05))
    right.set(title="SSIM with the original", xlabel="randomised down to", ylim=(-0.2, 1.05))
    left.axhline(0.5, color="grey", linewidth=0.8)
    right.legend(fontsize=8, loc="lower left")
    figure.suptitle("Cascading randomisation, mnist_cnn (dashed: fails)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"curves written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--curves", type=Path)
    parser.add_argument("--more", action="store_true")
    parser.add_argument("--shuffled-epochs", type=float, default=1)
    args = parser.parse_args()
    torch.set_num_threads(2)
    settings = Settings(mnist_dir=Path(os.environ["CONVSCOPE_MNIST_DIR"])) if os.environ.get(
        "CONVSCOPE_MNIST_DIR") else Settings()
    digits = load_mnist("test", settings).images[:args.images].float()[:, None] / 255
    cnn = load_model("mnist_cnn").adapter
    print(f"mnist_cnn, one 28x28 digit, 2 threads, median of {args.repeats}")
    method_times(cnn, digits[0], args.repeats)
    lite = load_model("efficientnet_lite0").adapter
    photo = lite.preprocessing.prepare(open_image(get_photo("coffee").path))[0]
    print(f"\nefficientnet_lite0, the coffee photo (3x224x224), 2 threads, median of {args.repeats}")
    method_times(lite, photo, args.repeats)
    results = sanity_checks(cnn, digits)
    if args.curves:
        draw_curves(results, args.curves)
    if args.more:
        shuffled = shuffled_label_model(settings, args.shuffled_epochs).adapter
        data_checks(cnn, shuffled, digits)
        faithfulness(cnn, digits, f"mnist_cnn, {len(digits)} test digits")
        photos = sanity_inputs(lite, "imagenet", 4)
        faithfulness(lite, photos, "efficientnet_lite0, the 4 sample photos")
        imagenet_sanity(lite, photos)


if __name__ == "__main__":
    main()
