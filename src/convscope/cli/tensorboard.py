"""TensorBoard from the command line: where ``convscope train`` writes its log, and ``convscope tensorboard``, which
serves the runs folder. Both need the ``tensorboard`` extra; a training run without it goes on without a log."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import ConvscopeError
from ..settings import Settings

INSTALL_HINT = 'pip install "convscope[tensorboard]"'


def add_train_tensorboard_args(p: argparse.ArgumentParser) -> None:
    """``convscope train``'s --tensorboard DIR and --no-tensorboard."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--tensorboard", type=Path, metavar="DIR",
                       help="write this run's TensorBoard log to DIR (default: a new folder in <data dir>/runs, "
                            "which `convscope tensorboard` serves)")
    group.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard log")


def train_log_dir(args, settings: Settings | None = None, name: str | None = None) -> str | None:
    """The folder for a training run's TensorBoard log, or None for no log.

    --tensorboard DIR is used as it is (without the tensorboard package the trainer then fails, naming the extra).
    The default log, a new ``<data dir>/runs/<model>-<time>`` folder, is skipped with one warning line when the
    package is missing: the run goes on."""
    from ..training.tensorboard import tensorboard_available
    if args.no_tensorboard:
        return None
    if args.tensorboard is not None:
        return str(args.tensorboard)
    if not tensorboard_available():
        print(f"convscope: warning: no TensorBoard log for this run: {INSTALL_HINT} (--no-tensorboard hides this)",
              file=sys.stderr)
        return None
    return str(new_run_dir((settings or Settings.from_env()).runs_dir, name or args.model))


def new_run_dir(runs: Path, name: str) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``, ... where that is taken (runs started in the same
    second), so that each run's curves stay apart."""
    stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder, n = runs / stem, 1
    while folder.exists():
        n += 1
        folder = runs / f"{stem}-{n}"
    return folder


def add_tensorboard_parser(commands) -> None:
    p = commands.add_parser("tensorboard", help="serve TensorBoard on the training runs' logs (the tensorboard extra)")
    p.add_argument("--logdir", type=Path,
                   help="a folder of runs, or one run's log (default: <data dir>/runs, where `convscope train` "
                        "logs every run)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=6006, help="port (default 6006; 0: any free one)")


def cmd_tensorboard(args) -> None:
    """Serve TensorBoard in this process (its server runs in a thread) until Ctrl-C."""
    try:
        from tensorboard import program
    except ImportError:
        raise ConvscopeError(f"`convscope tensorboard` needs the tensorboard package: {INSTALL_HINT}") from None
    logdir = args.logdir or Settings.from_env().runs_dir
    if not logdir.exists():
        print(f"{logdir} does not exist yet: `convscope train` logs each run there", file=sys.stderr)
    board = program.TensorBoard()
    board.configure(logdir=str(logdir), host=args.host, port=args.port)
    try:
        url = board.launch()
    except program.TensorBoardServerException as e:
        raise ConvscopeError(f"TensorBoard could not start: {e.msg}") from None
    print(f"TensorBoard on {logdir}: {url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("TensorBoard stopped", flush=True)
