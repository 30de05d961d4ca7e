"""``convscope finetune FOLDER``: a new model for the classes of a folder of images, from any model's features."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

from .options import add_model_options, add_run_options, user_model_from_args
from .tensorboard import train_log_dir


def add_finetune_parser(commands) -> None:
    from ..training.finetuning import FineTuneConfig
    defaults = FineTuneConfig()
    p = commands.add_parser("finetune", help="fine-tune a model on a folder of your images (one sub-folder per "
                                             "class): a new head, the backbone frozen with its features cached")
    p.add_argument("folder", type=Path, help="a folder with one sub-folder of JPEG/PNG images per class")
    # a model of your own as the base too; --weights also picks an ImageNet model's weights
    add_model_options(p, checkpoint=False,
                      model_help=f"the base model (default: {defaults.base}; any of `convscope models`), or the name "
                                 "to give --model-file's model (default: its factory's name)")
    p.add_argument("--name", help="the new model's name (default: the folder's name)")
    p.add_argument("--train-blocks", type=int, default=defaults.train_blocks, metavar="N",
                   help="also train the base's last N blocks (default 0: frozen, features computed once; N > 0 runs "
                        "the whole network every epoch)")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="at most this many (early stopping)")
    p.add_argument("--patience", type=int, default=defaults.patience,
                   help="stop after this many epochs without a lower validation loss")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="images per training step")
    p.add_argument("--lr", type=float, default=defaults.lr, help="the new head's learning rate (blocks: a tenth)")
    p.add_argument("--validation-split", type=float, default=defaults.validation_split,
                   help="share of each class held out for validation")
    p.add_argument("--no-augment", action="store_true", help="no random crops, mirroring or colour jitter")
    p.add_argument("--augment-views", type=int, default=defaults.augment_views, metavar="N",
                   help="frozen backbone: augmented copies of each training image to compute features of")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    add_run_options(p, "<name>")


class _Progress:
    """One line per stage and per epoch on stderr (events told apart by ``type``: importing their classes would
    import torch before `convscope serve` needs it)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        if event.type == "preparing":
            end = "\n" if event.done == event.total else ""
            what = "reading images" if event.stage == "images" else "computing features"
            print(f"\r{what}: {event.done:,}/{event.total:,} ({event.elapsed_s:.1f} s)", end=end, file=sys.stderr,
                  flush=True)
        elif event.type == "started":
            print(f"training on {event.train_size:,} images, {event.validation_size:,} held out", file=sys.stderr)
        elif event.type == "epoch":
            print(f"epoch {event.epoch}: train loss {event.train_loss:.4f} accuracy {event.train_accuracy:.4f}, "
                  f"validation loss {event.val_loss:.4f} accuracy {event.val_accuracy:.4f}", file=sys.stderr)


def cmd_finetune(args) -> None:
    from ..models.registry import register_user_model
    from ..settings import Settings
    from ..training.finetuning import FineTuneConfig, finetune
    name = args.name or args.folder.resolve().name
    user = user_model_from_args(args)
    base = register_user_model(user).name if user else args.model or FineTuneConfig().base
    config = FineTuneConfig(
        base=base, name=name, weights=None if user else args.weights, train_blocks=args.train_blocks,
        epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, lr=args.lr,
        validation_split=args.validation_split, augment=not args.no_augment, augment_views=args.augment_views,
        seed=args.seed, threads=args.threads, tensorboard_dir=train_log_dir(args, name=name))
    out = args.out or Settings.from_env().models_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.safetensors"
    result = finetune(args.folder, config, out=out, on_event=_Progress(not args.quiet),
                      command="convscope " + shlex.join(args.argv))
    m = result.validation_metrics
    summary = {"model": name, "base": base, "status": result.status, "best_epoch": result.best_epoch,
               "epochs": len(result.history), "classes": list(result.checkpoint.adapter.class_names),
               "validation_accuracy": m.accuracy, "validation_loss": m.loss,
               "timings": {k: round(v, 3) for k, v in result.timings.items()}, "skipped": result.skipped,
               "checkpoint": str(result.path), "history": result.history}
    if args.json:
        print(json.dumps(summary))
        return
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable file(s), e.g. {result.skipped[0]['file']}: "
              f"{result.skipped[0]['reason']}", file=sys.stderr)
    print(f"{result.status} after {len(result.history)} epochs: best epoch {result.best_epoch}, validation accuracy "
          f"{m.accuracy:.4f} ({m.count} images); saved {result.path}\n"
          f"use it: convscope predict IMAGE --checkpoint {result.path}"
          + (f" --model-file {args.model_file}" if user else ""))
