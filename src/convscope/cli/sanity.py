"""``convscope sanity``: does an explanation method depend on what the model learned? The cascading randomisation
check (``inspect.attribution.sanity``), or with ``--against`` the data randomisation check against a checkpoint
trained on shuffled labels, and with ``--faithfulness`` the deletion and insertion curves too; averaged over a few
inputs: the first MNIST test digits for a digit model, the bundled sample photos for the others."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

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
    p.add_argument("--against", type=Path, metavar="FILE",
                   help="the data randomisation check instead: compare the maps with those of this checkpoint, the "
                        "same model trained on shuffled labels (convscope train --shuffle-labels)")
    p.add_argument("--faithfulness", action="store_true",
                   help="also the deletion and insertion curves (areas under them, against a random pixel order)")
    add_mnist_dir_option(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_sanity(args, load) -> None:
    from ..inspect.attribution.sanity import sanity_inputs
    checkpoint = load(args)
    images = sanity_inputs(checkpoint.adapter, checkpoint.spec.dataset, args.images, settings_from_args(args))
    name = checkpoint.spec.name
    body = {"model": name, "images": len(images), **run_check(args, checkpoint.adapter, images)}
    if args.faithfulness:
        body["faithfulness"] = run_faithfulness(args, checkpoint.adapter, images)
    if args.json:
        print(json.dumps(body))
        return
    print(f"{name}, {args.method}, {len(images)} inputs: {body['verdict']}")
    if "steps" in body:
        print("randomised down to   rank corr.   SSIM")
        for step in body["steps"]:
            corr = "       –" if step["spearman"] is None else f"{step['spearman']:8.3f}"
            print(f"{step['randomised']:<20} {corr}   {step['ssim']:6.3f}")
    if args.faithfulness:
        curves = body["faithfulness"]
        print(f"deletion AUC {curves['deletion']['auc']:.3f} (random order {curves['random']['deletion']['auc']:.3f}, "
              f"lower is better); insertion AUC {curves['insertion']['auc']:.3f} (random order "
              f"{curves['random']['insertion']['auc']:.3f}, higher is better)")


@contextmanager
def progress_bar(args, what: str, unit: str):
    """A tqdm bar on stderr (none with --json) and the ``progress(done, total)`` that moves it."""
    with tqdm(desc=f"{args.method}, {what}", unit=unit, file=sys.stderr, leave=False, disable=args.json) as shown:
        def progress(done: int, total: int) -> None:
            shown.total = total
            shown.update(done - shown.n)

        yield progress


def run_check(args, model, images) -> dict:
    from ..inspect.attribution.sanity import cascading_randomisation, data_randomisation
    if args.against is None:
        with progress_bar(args, "randomising", " maps") as progress:
            return {"test": "model", **cascading_randomisation(model, images, args.method, layer=args.layer,
                                                               seed=args.seed, progress=progress).as_dict()}
    from ..models import load_checkpoint
    shuffled = load_checkpoint(args.against).adapter
    shuffled.name = args.against.name
    with progress_bar(args, "against shuffled labels", " inputs") as progress:
        return {"test": "data", **data_randomisation(model, shuffled, images, args.method, args.layer,
                                                     progress).as_dict()}


def run_faithfulness(args, model, images) -> dict:
    from ..inspect.attribution.faithfulness import deletion_insertion
    with progress_bar(args, "deletion and insertion", " inputs") as progress:
        return deletion_insertion(model, images, args.method, args.layer, seed=args.seed, progress=progress).as_dict()
