"""``convscope sanity``: does an explanation method depend on what the model learned? The cascading randomisation
check (``inspect.attribution.sanity``), averaged over a few inputs: the first MNIST test digits for a digit
model, the bundled sample photos for the others."""

from __future__ import annotations

import json
import sys

from tqdm import tqdm

from .options import add_mnist_dir_option, add_model_options, positive_int, settings_from_args


def add_sanity_parser(commands) -> None:
    from ..inspect import ATTRIBUTIONS
    p = commands.add_parser("sanity", help="check an explanation method against the model's weights: randomise them "
                                           "layer by layer from the logits down and measure how much the maps change")
    add_model_options(p)
    p.add_argument("--method", required=True, choices=ATTRIBUTIONS, help="the explanation method to check")
    p.add_argument("--layer", help="where a CAM looks (default: the model's CAM layer)")
    p.add_argument("--images", type=positive_int, default=8, metavar="N",
                   help="how many inputs to average over: MNIST test digits for a digit model, the sample photos "
                        "(there are 4) for the others")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    add_mnist_dir_option(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_sanity(args, load) -> None:
    from ..inspect.attribution.sanity import cascading_randomisation, sanity_inputs
    checkpoint = load(args)
    images = sanity_inputs(checkpoint.adapter, checkpoint.spec.dataset, args.images, settings_from_args(args))
    with tqdm(desc=f"{args.method}, randomising", unit=" maps", file=sys.stderr, leave=False,
              disable=args.json) as shown:
        def progress(done: int, total: int) -> None:
            shown.total = total
            shown.update(done - shown.n)

        check = cascading_randomisation(checkpoint.adapter, images, args.method, layer=args.layer, seed=args.seed,
                                        progress=progress)
    body = {"model": checkpoint.spec.name, "images": len(images), **check.as_dict()}
    if args.json:
        print(json.dumps(body))
        return
    print(f"{checkpoint.spec.name}, {args.method}, {len(images)} inputs: {check.verdict}")
    print("randomised down to   rank corr.   SSIM")
    for step in check.steps:
        corr = "       –" if step.spearman is None else f"{step.spearman:8.3f}"
        print(f"{step.randomised:<20} {corr}   {step.ssim:6.3f}")
