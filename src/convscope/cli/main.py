"""The ``convscope`` command: thin adapters over the library. User mistakes print one line, never a traceback."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import ConvscopeError
from .evaluate import add_evaluate_parser, cmd_evaluate
from .features import add_top_activating_parser, add_visualize_parser, cmd_top_activating, cmd_visualize
from .overview import add_features_overview_parser, cmd_features_overview
from .finetune import add_finetune_parser, cmd_finetune
from .layers import add_layers_parser, cmd_layers
from .sanity import add_sanity_parser, cmd_sanity
from .options import (Parser, add_mnist_dir_option, add_model_options, add_run_options, positive_int,
                      settings_from_args, user_model_from_args)
from .serve import add_serve_parser, cmd_serve
from .streamlit import add_streamlit_parser, cmd_streamlit
from .tensorboard import add_tensorboard_parser, cmd_tensorboard, train_log_dir
from .weights import add_weights_parser, cmd_weights, terminal_download_bar

EXIT_USER_ERROR = 2
SPEED_NOTE = """\
speed: convscope runs itself under tcmalloc or jemalloc when one is installed, which makes torch on a CPU about
1.5x faster (training, big models). Get it with: apt-get install libtcmalloc-minimal4 (Debian/Ubuntu) or
dnf install gperftools-libs (Fedora). CONVSCOPE_ALLOCATOR=system turns this off; CONVSCOPE_ALLOCATOR=FILE.so
picks the library. `convscope --version` says which is in use."""


def _image_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", nargs="?", type=Path, help="a PNG, JPEG, WebP, GIF or BMP image: a drawn digit for the "
                                                       "MNIST models, a photo for the ImageNet ones")
    p.add_argument("--photo", metavar="NAME", help="a sample photo that ships with convscope: coffee, chelsea, "
                                                   "astronaut, grace_hopper")
    p.add_argument("--no-preprocess", action="store_true",
                   help="feed the image resized to the model's input as it is, instead of its preprocessing "
                        "(MNIST-style cropping and centring; for photos, the short-side resize and centre crop)")


def _add_train_parser(commands) -> None:
    from ..training.config import OPTIMIZERS, PRECISIONS, SCHEDULES, TrainConfig
    defaults = TrainConfig()
    p = commands.add_parser("train", help="train a model from scratch on MNIST")
    add_model_options(p, default=defaults.model, checkpoint=False, own_model=False,
                      model_help="the MNIST model to train (`convscope models` lists them)")
    add_mnist_dir_option(p)
    p.add_argument("--epochs", type=float, default=defaults.epochs, help="passes over the data; may be fractional")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="images per training step")
    p.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer, help="the optimizer")
    p.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule,
                   help="learning rate schedule: onecycle warms up to --lr and anneals, cosine anneals from it")
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="L2 penalty on the weights")
    p.add_argument("--validation-split", type=float, default=defaults.validation_split,
                   help="share of the training set held out for validation")
    p.add_argument("--augment", action="store_true", help="random small rotations, scalings, shifts, thickening")
    p.add_argument("--shuffle-labels", action="store_true",
                   help="train on shuffled labels: the model the data randomisation check compares with (use "
                        "--lr 0.001: at the default its ReLUs die and every map is flat)")
    p.add_argument("--target-accuracy", type=float,
                   help="stop once validation accuracy reaches this (0-1); default: train every epoch")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    p.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                   help="auto: bf16 autocast where the hardware has it, else fp32")
    add_run_options(p, "<model>")


def _add_explain_parser(commands) -> None:
    from ..inspect import ATTRIBUTIONS, METHODS
    p = commands.add_parser("explain", help="write PNGs of what the model sees in an image or an MNIST sample")
    _image_args(p)
    add_model_options(p)
    p.add_argument("--sample", type=int, metavar="DIGIT", help="use a random MNIST test image of this digit")
    p.add_argument("--index", type=int, metavar="N", help="use the MNIST test image at this index")
    add_mnist_dir_option(p)
    p.add_argument("--seed", type=int, help="seed for --sample; default: a different sample each time")
    p.add_argument("--method", default="gradcam", choices=METHODS,
                   help="explanation method: a class activation map, or saliency (the input gradient's size)")
    p.add_argument("--layer", help="CAM layer (default: the last conv layer's activation)")
    p.add_argument("--target", type=int, metavar="CLASS",
                   help="index of the class to explain (default: the predicted one)")
    p.add_argument("--layers", help="comma-separated layers whose feature maps to draw (default: every layer of a "
                                    "small model, the CAM layer of a big one)")
    p.add_argument("--page", type=int, default=0, help="which 64 channels of each layer to draw: 0 = the first 64")
    p.add_argument("--attributions", metavar="M1,M2", default="",
                   help=f"more explanations, side by side, each with its cost: {', '.join(ATTRIBUTIONS)} (the "
                        "slow ones: smoothgrad, integrated_gradients, occlusion)")
    p.add_argument("--format", default="png", metavar="png,npy,json",
                   help="what to write: PNG pictures, every tensor as a NumPy .npy file, and/or all tensors in "
                        "tensors.json with their shapes")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the files")
    p.add_argument("--json", action="store_true", help="print the summary (also written to DIR/summary.json) as JSON")


def build_parser(only_serve: bool = False) -> argparse.ArgumentParser:
    """The full parser; ``only_serve`` builds just ``serve``, whose process then never imports torch (the other
    commands' options come from registries that do): each worker process imports it anyway, so the server
    starts about 0.8 s sooner."""
    parser = Parser(prog="convscope", description="See inside convolutional networks.", epilog=SPEED_NOTE)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_parser(commands)
    if only_serve:
        return parser

    p = commands.add_parser("models", help="list the registered models and their packaged weights")
    p.add_argument("--json", action="store_true", help="print the models as JSON, with their layers")

    p = commands.add_parser("data", help="dataset commands")
    data = p.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    d = data.add_parser("download", help="download MNIST from the official mirrors (CONVSCOPE_MNIST_MIRRORS "
                                         "instead, if set) into its folder, or check the files that are there")
    add_mnist_dir_option(d, "--dir")  # --dir: this command's older name for it

    _add_train_parser(commands)

    add_finetune_parser(commands)
    add_evaluate_parser(commands)

    p = commands.add_parser("predict", help="predict the class of an image: top-k names and probabilities")
    _image_args(p)
    add_model_options(p)
    p.add_argument("--top-k", type=positive_int, default=3, metavar="K",
                   help="how many of the most probable classes to list")
    p.add_argument("--json", action="store_true",
                   help="print JSON: the predicted class's name and index, and the top K with their probabilities")

    _add_explain_parser(commands)
    add_layers_parser(commands)
    add_weights_parser(commands)
    add_sanity_parser(commands)
    add_visualize_parser(commands)
    add_top_activating_parser(commands)
    add_features_overview_parser(commands)
    add_tensorboard_parser(commands)
    add_streamlit_parser(commands)
    return parser


def _version() -> str:
    from .. import __version__
    from .launch import HOW_TO_INSTALL, malloc_in_use
    library = malloc_in_use()
    return f"{__version__}\nmalloc: {library or 'the system allocator; faster with tcmalloc: ' + HOW_TO_INSTALL}"


def cmd_models(args) -> None:
    from ..models import MODELS, read_metadata
    from ..models.imagenet.store import status
    from ..preprocessing import get_preprocessing
    from ..settings import Settings
    settings = Settings.from_env()
    rows = []
    for spec in MODELS.values():
        row = {"name": spec.name, "description": spec.description, "input_shape": list(spec.input_shape),
               "classes": len(spec.class_names), "preprocessing": get_preprocessing(spec.preprocessing).describe()}
        if spec.weights:  # pretrained: the figures come from the weights records, nothing is built
            weights = [status(record, settings) for record in spec.weights]
            row.update(parameters=spec.weights[0].parameters, weights=weights,
                       ready=weights[0]["state"] == "ready", accuracy=spec.weights[0].acc1 / 100)
        else:
            path = spec.default_weights_path()
            meta = read_metadata(path) if path else {}
            adapter = spec.adapter(spec.build())
            row.update(parameters=sum(p.numel() for p in adapter.module.parameters()), ready=spec.loadable,
                       accuracy=(meta.get("test_metrics") or {}).get("accuracy"),
                       layers=[tap.as_dict() for tap in adapter.graph.taps])
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        measured = "published ImageNet top-1" if "weights" in row else "test accuracy"
        accuracy = f"{row['accuracy']:.2%} {measured}" if row["accuracy"] else "no weights"
        state = "ready" if row["ready"] else "weights not downloaded yet (convscope weights fetch NAME)"
        print(f"{row['name']:<18} {row['parameters']:>11,} parameters  {accuracy}; {state}")
        print(f"{'':<18} {row['description']}")


def cmd_data_download(args) -> None:
    """MNIST into the folder the other commands read it from (--mnist-dir, CONVSCOPE_MNIST_DIR, else the cache): the
    missing files are downloaded, then all four checked, so that a folder filled by hand is known good too."""
    import hashlib

    from ..data.idx import read_file_bytes
    from ..data.mnist import MNIST_FILES, MNIST_MIRRORS, download_mnist, find_file
    from ..errors import DataError
    settings = settings_from_args(args)
    folder = settings.mnist_dir or settings.mnist_cache_dir

    missing = sum(find_file(folder, stem) is None for stem, _ in MNIST_FILES.values())
    with terminal_download_bar("MNIST") as progress:
        download_mnist(folder, mirrors=settings.mnist_mirrors or MNIST_MIRRORS, progress=progress)
    for stem, sha256 in MNIST_FILES.values():  # downloads were checked already; this is for the files found here
        path = find_file(folder, stem)
        if hashlib.sha256(read_file_bytes(path)).hexdigest() != sha256:
            raise DataError(f"{path} is not the official MNIST file (its SHA-256 differs): delete it and run "
                            "`convscope data download` again")
    note = f"downloaded {missing} of the 4 files" if missing else "all 4 files were there"
    print(f"MNIST is in {folder} ({note}; checked by SHA-256)")


def cmd_train(args) -> None:
    from ..training import TrainConfig, train
    from .progress import TerminalProgress
    config = TrainConfig(
        model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        schedule=args.schedule, weight_decay=args.weight_decay, validation_split=args.validation_split,
        augment=args.augment, shuffle_labels=args.shuffle_labels, target_accuracy=args.target_accuracy,
        seed=args.seed, device=args.device, precision=args.precision, threads=args.threads,
        tensorboard_dir=train_log_dir(args),
    )
    settings = settings_from_args(args)
    out = args.out or settings.models_dir / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}.safetensors"
    progress = TerminalProgress(enabled=not args.quiet)
    try:
        result = train(config, on_event=progress, out=out, settings=settings,
                       command="convscope " + shlex.join(args.argv))
    finally:
        progress.close()
    summary = {"model": args.model, "status": result.status, "steps": result.steps, "wall_s": round(result.wall_s, 3),
               "test_accuracy": result.test_metrics.accuracy if result.test_metrics else None,
               "test_loss": result.test_metrics.loss if result.test_metrics else None,
               "checkpoint": str(result.checkpoint) if result.checkpoint else None, "history": result.history}
    # Where the model went, on stderr under --json so that stdout stays one JSON document.
    saved = f"saved the model to {result.checkpoint}" if result.checkpoint else "saved nothing"
    if args.json:
        print(json.dumps(summary))
        print(saved, file=sys.stderr)
        return
    print(f"{result.status}: test accuracy {summary['test_accuracy']:.4f} in {result.wall_s:.1f} s\n{saved}")
    if result.checkpoint:
        print(f"use it: convscope evaluate --checkpoint {shlex.quote(str(result.checkpoint))}")


def _load(args):
    import torch
    checkpoint = _load_fp32(args)
    if getattr(args, "precision", "fp32") == "bf16":
        checkpoint.adapter.to(dtype=torch.bfloat16)  # converted once, not autocast per call
    return checkpoint


def _load_fp32(args):
    from ..models import get_spec, load_checkpoint, load_model
    from ..models.registry import register_user_model
    user = user_model_from_args(args)
    if user is None and args.checkpoint is not None and args.model is None:
        return load_checkpoint(args.checkpoint)  # whichever model it holds: trained, fine-tuned
    if user is None:
        spec = get_spec(args.model or "mnist_cnn")
        if not spec.weights:
            return load_model(spec.name, args.checkpoint, weights=args.weights)
        with terminal_download_bar(spec.name) as progress:  # drawn only when the weights are downloaded
            return load_model(spec.name, args.checkpoint, weights=args.weights, progress=progress)
    registered = register_user_model(user)
    if args.checkpoint is not None:  # a model fine-tuned from this one: its code builds the architecture
        from ..models import read_metadata
        hint = ("a model of your own takes its state_dict with --weights, and --checkpoint a model fine-tuned from "
                "it (convscope finetune --model-file ...)")
        try:
            base = (read_metadata(args.checkpoint).get("finetuned") or {}).get("base")
        except ConvscopeError:
            raise ConvscopeError(f"{args.checkpoint} is not a convscope checkpoint: {hint}") from None
        if base != registered.name:
            raise ConvscopeError(f"{args.checkpoint} was not fine-tuned from {registered.name}: {hint}")
        return load_checkpoint(args.checkpoint)
    return load_model(registered.name)


def _image_input(args, checkpoint):
    """(original RGB array, (C, H, W) model input in [0, 1] from the model's own preprocessing, where it came from)
    for the IMAGE or --photo the arguments name."""
    from ..data.photos import get_photo
    from ..errors import InputError
    from ..images import open_image
    if (args.image is None) == (args.photo is None):
        raise InputError("give an IMAGE or --photo NAME")
    path = args.image if args.image is not None else get_photo(args.photo).path
    image = open_image(path)
    no_preprocess = args.no_preprocess
    preprocessing = checkpoint.adapter.preprocessing
    model_input, _ = (preprocessing.resize if no_preprocess else preprocessing.prepare)(image)
    source = {"image": str(args.image)} if args.image is not None else {"photo": args.photo}
    return np.asarray(image.convert("RGB")), model_input, source


def cmd_predict(args) -> None:
    from ..inspect import Inspector
    checkpoint = _load(args)
    _, x, _ = _image_input(args, checkpoint)
    result = Inspector(checkpoint.adapter).inspect_prepared(x, layers=[], saliency=False)
    top = result.probabilities.topk(min(args.top_k, len(result.probabilities)))
    names = checkpoint.spec.class_names
    # "class" is the name, "index" its position in the model's output: MNIST's names look like indices, ImageNet's
    # do not, and a script needs the number either way.
    ranked = [{"class": names[int(i)], "index": int(i), "probability": round(float(p), 6)}
              for p, i in zip(top.values, top.indices, strict=True)]
    if args.json:
        print(json.dumps({"model": checkpoint.spec.name, "predicted": names[result.predicted],
                          "predicted_index": result.predicted, "top": ranked}))
        return
    for entry in ranked:
        print(f"{entry['class']}  {entry['probability']:.2%}")


def cmd_explain(args) -> None:
    from ..data import sample_digit
    from ..errors import InputError
    from ..inspect import ATTRIBUTIONS, Inspector, attribute
    from .explain import (attribution_summary, explanation_summary, explanation_tensors, parse_formats, sample_rgb,
                          save_summary, write_attributions, write_explanation, write_tensors)
    chosen = sum(x is not None for x in (args.image, args.photo, args.sample, args.index))
    if chosen != 1:
        raise InputError("give exactly one of IMAGE, --photo NAME, --sample DIGIT or --index N")
    checkpoint = _load(args)
    if args.image is not None or args.photo is not None:
        original, x, source = _image_input(args, checkpoint)
    else:
        if checkpoint.spec.dataset != "mnist":
            raise InputError(f"--sample and --index take MNIST digits, which {checkpoint.spec.name} does not read: "
                             "give an image instead")
        sample = sample_digit(args.sample, "test", seed=args.seed, index=args.index, settings=settings_from_args(args))
        original, x = sample_rgb(sample.image), sample.image
        source = {"mnist_split": "test", "index": sample.index, "label": sample.label}
    formats = parse_formats(args.format)
    methods = [name.strip() for name in args.attributions.split(",") if name.strip()]
    unknown = [name for name in methods if name not in ATTRIBUTIONS]
    if unknown:
        raise InputError(f"unknown attribution method(s) {', '.join(unknown)}; choose from {', '.join(ATTRIBUTIONS)}")
    layers = None if args.layers is None else [name.strip() for name in args.layers.split(",") if name.strip()]
    result = Inspector(checkpoint.adapter).inspect_prepared(x, target=args.target, cam_layer=args.layer,
                                                            method=args.method, layers=layers)
    attributions = {name: attribute(checkpoint.adapter, result.input, name, result.target,
                                    args.layer if ATTRIBUTIONS[name].needs_layer else None) for name in methods}
    files = {}
    if "png" in formats:
        files.update(write_explanation(args.out, original, result, checkpoint.adapter, page=args.page))
        files.update(write_attributions(args.out, result, attributions))
    files.update(write_tensors(args.out, explanation_tensors(result, attributions), formats))
    summary = {"model": checkpoint.spec.name, "source": source,
               **explanation_summary(result, checkpoint.spec.class_names, files),
               "attributions": attribution_summary(attributions)}
    save_summary(args.out, summary)
    if args.json:
        print(json.dumps(summary))
        return
    print(f"predicted {summary['predicted']} ({result.confidence:.2%}); wrote {len(files)} files to {args.out}")


COMMANDS = {"serve": cmd_serve, "models": cmd_models, "train": cmd_train, "finetune": cmd_finetune,
            "evaluate": lambda args: cmd_evaluate(args, _load),
            "predict": cmd_predict, "explain": cmd_explain, "weights": cmd_weights,
            "layers": lambda args: cmd_layers(args, _load), "sanity": lambda args: cmd_sanity(args, _load),
            "visualize": lambda args: cmd_visualize(args, _load),
            "top-activating": lambda args: cmd_top_activating(args, _load),
            "features-overview": lambda args: cmd_features_overview(args, _load),
            "tensorboard": cmd_tensorboard,
            "streamlit": cmd_streamlit}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(only_serve=argv[:1] == ["serve"]).parse_args(argv)
    except SystemExit as e:  # --help, --version, or a mistake in the options (said in one line): its exit status
        return e.code
    args.argv = argv
    handler = cmd_data_download if args.command == "data" else COMMANDS[args.command]
    try:
        handler(args)
    except ConvscopeError as e:
        print(f"convscope: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as e:  # an unwritable --out folder, a full disk: the environment, not a bug
        print(f"convscope: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("convscope: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
