"""The photo views in headless Chromium against a real `convscope serve`: photo -> top 5 and CAM drawn, a layer
clicked -> its first 64 feature maps drawn, and three models compared on one photo -> all drawn (issue 12 targets:
<= 300 ms for efficientnet_lite0, <= 1 s for resnet50; <= 250 ms for VGG16's first conv block).

VGG16 and ResNet50 weights cannot be downloaded on a machine without a network, so those two run as user models
built from convscope's own architectures with random weights: the same layers and the same arithmetic, so the
same time. Prints medians (and all runs) in milliseconds; with --screenshots DIR it saves the photo and compare
views (docs/screenshots/).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import median
from convscope.models.imagenet import imagenet_categories
from convscope.models.imagenet.weights import DEFAULTS
from convscope.testing.browser import browser_context, wait_until
from convscope.testing.server import ServerProcess

PHOTOS = ["coffee", "chelsea", "astronaut", "grace_hopper"]
FACTORIES = "from convscope.models.imagenet import resnet50, vgg16\n"


def user_models(folder: Path) -> str:
    """vgg16 and resnet50 architectures with random weights, registered as user models."""
    (folder / "nets.py").write_text(FACTORIES)
    (folder / "classes.txt").write_text("\n".join(imagenet_categories()) + "\n")
    return json.dumps([{"model_file": f"{folder / 'nets.py'}:{name}", "classes": str(folder / "classes.txt"),
                        "preprocessing": DEFAULTS[name].preprocessing, "name": f"{name}_random"}
                       for name in ("vgg16", "resnet50")])


def repeat(page, key: str, action, rounds: int) -> list[float]:
    """Run ``action(i)`` ``rounds`` times, each time waiting for the page to record one more timing under
    ``window.__convscope[key]``; returns those timings (ms)."""
    recorded = f"(window.__convscope.{key} || []).length"
    for i in range(rounds):
        before = page.evaluate(recorded)
        action(i)
        wait_until(page, f"{recorded} > {before}", 120)
        time.sleep(0.1)
    return page.evaluate(f"window.__convscope.{key}")[-rounds:]


def photo_times(page, url: str, model: str, rounds: int) -> list[float]:
    page.goto(url + "/#/photo")
    page.get_by_label("Image model").select_option(model)
    page.wait_for_selector("button.sample-photo[data-photo=coffee]")
    return repeat(page, "timings", lambda i: page.click(f"button.sample-photo[data-photo={PHOTOS[i % 4]}]"), rounds)


def layer_times(page, layer: str, rounds: int) -> list[float]:
    return repeat(page, "layerTimings", lambda _: page.click(f"[data-testid=layer-graph] [data-layer='{layer}']"),
                  rounds)


def compare_times(page, url: str, models: list[str], rounds: int) -> list[float]:
    page.goto(url + "/#/compare")
    page.wait_for_selector("button.sample-photo[data-photo=coffee]")
    for box in page.locator(".compare-models input").all():
        if box.is_checked():
            box.uncheck()
    for model in models:
        page.locator(f".compare-models input[value='{model}']").check()
    return repeat(page, "timings", lambda i: page.click(f"button.sample-photo[data-photo={PHOTOS[i % 4]}]"), rounds)


def report(name: str, times: list[float]) -> None:
    print(f"{name:58s} median {median(times):7.0f} ms   runs: {', '.join(f'{t:.0f}' for t in times)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {"CONVSCOPE_WORKERS": "1", "CONVSCOPE_USER_MODELS": user_models(Path(folder))}
        with ServerProcess(Path(folder) / "server", env=env) as server, browser_context(1280, 900) as context:
            page = context.new_page()
            for model in ("efficientnet_lite0", "resnet50_random", "vgg16_random"):
                report(f"photo -> top 5 and CAM drawn, {model}", photo_times(page, server.url, model, args.rounds))
                layer = {"efficientnet_lite0": "_conv_stem", "resnet50_random": "relu",
                         "vgg16_random": "features.1"}[model]
                report(f"click {layer} -> its first 64 maps drawn, {model}", layer_times(page, layer, args.rounds))
                if args.screenshots and model == "efficientnet_lite0":
                    args.screenshots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(args.screenshots / "photo-workbench.png"), full_page=True)
            models = ["efficientnet_lite0", "resnet50_random", "vgg16_random"]
            report("compare 3 models -> all drawn", compare_times(page, server.url, models, max(3, args.rounds // 2)))
            if args.screenshots:  # with real weights only: the ImageNet model here and a digit model
                compare_times(page, server.url, ["efficientnet_lite0", "mnist_cnn"], 1)
                page.screenshot(path=str(args.screenshots / "compare.png"), full_page=True)


if __name__ == "__main__":
    main()
