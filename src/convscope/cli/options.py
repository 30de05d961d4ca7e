"""What the commands share: their parser (help format, one-line errors) and the options that several commands take,
each built here once so that it reads and behaves the same everywhere.

Imports nothing heavy: `convscope serve` builds its parser from here without importing torch."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..settings import Settings


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Ends an option's help with its default, as argparse.ArgumentDefaultsHelpFormatter does, except where that says
    nothing: a default of None (the help says what happens then instead), a flag's False, or help that already names
    its default. Descriptions and epilogs keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if quiet or not action.option_strings or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """The parser of `convscope` and of each of its commands (sub-commands get this class too)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        # A bad option is a user mistake like any other: one line and exit 2, not the usage block.
        self.exit(2, f"convscope: error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    """argparse type: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


MODEL_HELP = ("a registered model (`convscope models` lists them; the ImageNet ones download their weights on first "
              "use), or the name to give --model-file's model; default: the --checkpoint's own model, else mnist_cnn "
              "(with --model-file: its factory's name)")


def add_model_options(p: argparse.ArgumentParser, model_help: str = MODEL_HELP, default: str | None = None,
                      checkpoint: bool = True, own_model: bool = True) -> None:
    """--model; for commands that load a model to run it, --checkpoint and --precision; and a model of your own."""
    p.add_argument("--model", metavar="NAME", default=default, help=model_help)
    if checkpoint:
        p.add_argument("--checkpoint", type=Path, metavar="FILE",
                       help="a checkpoint file from `convscope train` or `convscope finetune`; default: the model's "
                            "packaged or official weights")
        p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                       help="bf16: the weights converted once, about half the time of fp32 for the big models on a "
                            "CPU with bf16 units (predictions agree; logits differ slightly)")
    if own_model:
        add_user_model_args(p)


def add_user_model_args(p: argparse.ArgumentParser) -> None:
    """Bring your own model: --model-file, --weights, --classes, --preprocessing."""
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


def add_mnist_dir_option(p: argparse.ArgumentParser, *aliases: str) -> None:
    """--mnist-dir, for the commands that read MNIST; it wins over CONVSCOPE_MNIST_DIR (see settings_from_args)."""
    p.add_argument("--mnist-dir", *aliases, type=Path, metavar="DIR",
                   help="a folder with the four MNIST idx files (.gz or raw); default: CONVSCOPE_MNIST_DIR if set, "
                        "else <data dir>/mnist, downloaded on first use")


def settings_from_args(args) -> Settings:
    """The settings from the environment, with what the command's options override."""
    settings = Settings.from_env()
    if getattr(args, "mnist_dir", None) is not None:
        settings = dataclasses.replace(settings, mnist_dir=args.mnist_dir)
    return settings


def add_run_options(p: argparse.ArgumentParser, file_stem: str) -> None:
    """What `train` and `finetune` share after their own options: threads, TensorBoard, where the model goes,
    JSON and quiet. ``file_stem`` names the default file (<model> or <name>)."""
    from .tensorboard import add_train_tensorboard_args
    p.add_argument("--threads", type=int, help="torch CPU threads; default: torch's own choice")
    add_train_tensorboard_args(p)
    p.add_argument("--out", type=Path, metavar="FILE",
                   help=f"checkpoint file to save the model to; default: <data dir>/models/{file_stem}-<time>"
                        ".safetensors (CONVSCOPE_MODEL_DIR instead of <data dir>/models if set)")
    p.add_argument("--json", action="store_true", help="print a final JSON summary on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress output")
