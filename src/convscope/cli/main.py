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
from .finetune import add_finetune_parser, cmd_finetune
from .layers import add_layers_parser, cmd_layers
from .serve import add_serve_parser, cmd_serve
from .tensorboard import add_tensorboard_parser, add_train_tensorboard_args, cmd_tensorboard, train_log_dir
from .weights import DownloadBar, add_weights_parser, cmd_weights

EXIT_USER_ERROR = 2
SPEED_NOTE = """\
speed: convscope runs itself under tcmalloc or jemalloc when one is installed, which makes torch on a CPU about
1.5x faster (training, big models). Get it with: apt-get install libtcmalloc-minimal4 (Debian/Ubuntu) or
dnf install gperftools-libs (Fedora). CONVSCOPE_ALLOCATOR=system turns this off; CONVSCOPE_ALLOCATOR=FILE.so
picks the library. `convscope --version` says which is in use."""


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="registered model name (see `convscope models`; default mnist_cnn; the ImageNet "
                                   "ones download their weights on first use), or the name to give --model-file's "
                                   "model (default: its factory's name)")
    p.add_argument("--checkpoint", type=Path,
                   help="a checkpoint file from `convscope train` or `convscope finetune` (default: the packaged "
                        "weights)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: the weights converted once, about half the time of fp32 for the big models on a CPU "
                        "with bf16 units (predictions agree; logits differ slightly)")
    add_user_model_args(p)


def add_user_model_args(p: argparse.ArgumentParser) -> None:
    """Bring your own model: shared by predict, explain and serve."""
    group = p.add_argument_group("a model of your own")
    group.add_argument("--model-file", metavar="FILE.py:FACTORY",
                       help="a Python file and the function in it that returns your torch.nn.Module")
    group.add_argument("--weights", metavar="FILE|NAME",
                       help="its state_dict: .safetensors, .pt or .pth (tensors only, never unpickled objects); "
                            "default: as the factory makes it. For an ImageNet model: other official weights "
                            "(IMAGENET1K_V1) or a local copy of an official file")
    group.add_argument("--classes", metavar="FILE", help="its class names, one per line (default: 0, 1, ...)")
    group.add_argument("--preprocessing", default="resize", metavar="NAME|JSON",
                       help="mnist_digit, imagenet or resize, or parameters as JSON, e.g. "
                            '\'{"name": "resize", "size": 64, "channels": 1}\' (default: resize to 224x224 RGB)')


def user_model_from_args(args):
    """The ``UserModel`` the flags name, or None when no --model-file was given."""
    from ..errors import ConvscopeError
    if getattr(args, "model_file", None) is None:
        if getattr(args, "classes", None):
            raise ConvscopeError("--classes goes with --model-file")
        return None
    from ..models.user import UserModel
    return UserModel(args.model_file, args.weights, args.classes, args.preprocessing, args.model).absolute()


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
    p.add_argument("--model", default=defaults.model)
    p.add_argument("--epochs", type=float, default=defaults.epochs, help="passes over the data; may be fractional")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    p.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--validation-split", type=float, default=defaults.validation_split)
    p.add_argument("--augment", action="store_true", help="random small rotations, scalings, shifts, thickening")
    p.add_argument("--target-accuracy", type=float, help="stop once validation accuracy reaches this (0-1)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", choices=PRECISIONS, default=defaults.precision)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    add_train_tensorboard_args(p)
    p.add_argument("--out", type=Path, help="checkpoint path (default: <data dir>/models/<model>-<time>.safetensors)")
    p.add_argument("--json", action="store_true", help="print a final JSON summary on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _add_explain_parser(commands) -> None:
    from ..inspect.cams import CAM_METHODS
    p = commands.add_parser("explain", help="write PNGs of what the model sees in an image or an MNIST sample")
    _image_args(p)
    _model_args(p)
    p.add_argument("--sample", type=int, metavar="DIGIT", help="use a random MNIST test image of this digit")
    p.add_argument("--index", type=int, help="use the MNIST test image at this index")
    p.add_argument("--seed", type=int, help="seed for --sample")
    p.add_argument("--method", default="gradcam", choices=list(CAM_METHODS), help="class activation map method")
    p.add_argument("--layer", help="CAM layer (default: the last conv layer's activation)")
    p.add_argument("--target", type=int, help="class to explain (default: the predicted one)")
    p.add_argument("--layers", help="comma-separated layers whose feature maps to draw (default: every layer of a "
                                    "small model, the CAM layer of a big one)")
    p.add_argument("--page", type=int, default=0, help="which 64 channels of each layer to draw: 0 = the first 64")
    p.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    p.add_argument("--json", action="store_true")


def build_parser(only_serve: bool = False) -> argparse.ArgumentParser:
    """The full parser; ``only_serve`` builds just ``serve``, whose process then never imports torch (the other
    commands' options come from registries that do): each worker process imports it anyway, so the server
    starts about 0.8 s sooner."""
    parser = argparse.ArgumentParser(prog="convscope", description="See inside convolutional networks.",
                                     epilog=SPEED_NOTE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_parser(commands)
    if only_serve:
        return parser

    p = commands.add_parser("models", help="list the registered models and their packaged weights")
    p.add_argument("--json", action="store_true")

    p = commands.add_parser("data", help="dataset commands")
    data = p.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    d = data.add_parser("download", help="download MNIST from the official mirrors into the cache")
    d.add_argument("--dir", type=Path, help="folder to download into (default: <data dir>/mnist)")

    _add_train_parser(commands)

    add_finetune_parser(commands)
    add_evaluate_parser(commands, _model_args)

    p = commands.add_parser("predict", help="predict the class of an image: top-k names and probabilities")
    _image_args(p)
    _model_args(p)
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--json", action="store_true")

    _add_explain_parser(commands)
    add_layers_parser(commands, _model_args)
    add_weights_parser(commands)
    add_tensorboard_parser(commands)
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
    from ..data.mnist import MNIST_MIRRORS, download_mnist
    from ..settings import Settings
    settings = Settings.from_env()
    folder = args.dir or settings.mnist_cache_dir
    with DownloadBar("MNIST") as progress:
        download_mnist(folder, mirrors=settings.mnist_mirrors or MNIST_MIRRORS, progress=progress)
    print(f"MNIST is in {folder}")


def cmd_train(args) -> None:
    from ..settings import Settings
    from ..training import TrainConfig, train
    from .progress import TerminalProgress
    config = TrainConfig(
        model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        schedule=args.schedule, weight_decay=args.weight_decay, validation_split=args.validation_split,
        augment=args.augment, target_accuracy=args.target_accuracy, seed=args.seed, device=args.device,
        precision=args.precision, threads=args.threads, tensorboard_dir=train_log_dir(args),
    )
    out = args.out or Settings.from_env().models_dir / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}.safetensors"
    progress = TerminalProgress(enabled=not args.quiet)
    try:
        result = train(config, on_event=progress, out=out, command="convscope " + shlex.join(args.argv))
    finally:
        progress.close()
    summary = {"model": args.model, "status": result.status, "steps": result.steps, "wall_s": round(result.wall_s, 3),
               "test_accuracy": result.test_metrics.accuracy if result.test_metrics else None,
               "test_loss": result.test_metrics.loss if result.test_metrics else None,
               "checkpoint": str(result.checkpoint) if result.checkpoint else None, "history": result.history}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{result.status}: test accuracy {summary['test_accuracy']:.4f} in {result.wall_s:.1f} s; "
              f"saved {result.checkpoint}")


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
        with DownloadBar(spec.name) as progress:  # drawn only when the weights are downloaded
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
    result = Inspector(checkpoint.adapter).inspect(x, layers=[])
    k = max(1, min(args.top_k, len(result.probabilities)))
    top = result.probabilities.topk(k)
    names = checkpoint.spec.class_names
    ranked = [{"class": names[int(i)], "probability": round(float(p), 6)}
              for p, i in zip(top.values, top.indices, strict=True)]
    if args.json:
        print(json.dumps({"model": checkpoint.spec.name, "predicted": names[result.predicted], "top": ranked}))
        return
    for entry in ranked:
        print(f"{entry['class']}  {entry['probability']:.2%}")


def cmd_explain(args) -> None:
    from ..data import sample_digit
    from ..errors import InputError
    from ..inspect import Inspector
    from .explain import explanation_summary, sample_rgb, save_summary, write_explanation
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
        sample = sample_digit(args.sample, "test", seed=args.seed, index=args.index)
        original, x = sample_rgb(sample.image), sample.image
        source = {"mnist_split": "test", "index": sample.index, "label": sample.label}
    layers = None if args.layers is None else [name.strip() for name in args.layers.split(",") if name.strip()]
    result = Inspector(checkpoint.adapter).inspect(x, target=args.target, cam_layer=args.layer, method=args.method,
                                                   layers=layers)
    files = write_explanation(args.out, original, result, checkpoint.adapter, page=args.page)
    summary = {"model": checkpoint.spec.name, "source": source,
               **explanation_summary(result, checkpoint.spec.class_names, files)}
    save_summary(args.out, summary)
    if args.json:
        print(json.dumps(summary))
        return
    print(f"predicted {summary['predicted']} ({result.confidence:.2%}); wrote {len(files)} PNGs to {args.out}")


COMMANDS = {"serve": cmd_serve, "models": cmd_models, "train": cmd_train, "finetune": cmd_finetune,
            "evaluate": lambda args: cmd_evaluate(args, _load),
            "predict": cmd_predict, "explain": cmd_explain, "weights": cmd_weights,
            "layers": lambda args: cmd_layers(args, _load), "tensorboard": cmd_tensorboard}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(only_serve=argv[:1] == ["serve"]).parse_args(argv)
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
