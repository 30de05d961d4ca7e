"""``convscope streamlit``: the example Streamlit app (``convscope/apps/streamlit_app.py``) served by ``streamlit
run`` in a child process, on this machine only, until Ctrl-C. Needs the ``streamlit`` extra."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import ConvscopeError
from .options import positive_int

INSTALL_HINT = "pip install 'convscope[streamlit]'"
APP = Path(__file__).resolve().parents[1] / "apps" / "streamlit_app.py"


def add_streamlit_parser(commands) -> None:
    p = commands.add_parser(
        "streamlit", help="run the example Streamlit app: prediction, CAM, filters, feature maps, pooling and dense "
                          "outputs, training history (the streamlit extra)",
        epilog="Options for `streamlit run` itself go after --, e.g. convscope streamlit --port 8502 -- "
               "--theme.base dark")
    p.add_argument("--port", type=positive_int, default=8501, metavar="N", help="port to serve the app on, at "
                                                                               "127.0.0.1")
    p.add_argument("--model", metavar="NAME",
                   help="the model the app shows first (default: mnist_cnn); it offers every registered model "
                        "whose weights are here")
    p.add_argument("--checkpoint", type=Path, metavar="FILE",
                   help="a checkpoint file from `convscope train` or `convscope finetune` to show instead; "
                        "default: none")
    p.add_argument("streamlit_args", nargs="*", metavar="STREAMLIT_OPTION",
                   help="after --: options for `streamlit run`, which win over the ones above")


def streamlit_command(args) -> list[str]:
    """``streamlit run`` on the app, bound to 127.0.0.1 and opening no browser; the app's own options go after its
    ``--``."""
    app_args = [*(["--model", args.model] if args.model else []),
                *(["--checkpoint", str(args.checkpoint.resolve())] if args.checkpoint else [])]
    # -P: no current directory on sys.path, as the convscope command itself runs (a csv.py there must not shadow csv).
    # No usage statistics: Streamlit's frontend would send them to Streamlit's servers by default.
    return [sys.executable, "-P", "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
            "--server.port", str(args.port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer",  # a local tool: no "Deploy" button
            *args.streamlit_args, "--", *app_args]


def _check_model(args) -> None:
    """A mistake in --model or --checkpoint as one line now, not as an error page in the browser."""
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise ConvscopeError(f"{args.checkpoint}: no such file")
    if args.model is not None:
        from ..models import get_spec
        if not get_spec(args.model).loadable:  # get_spec names the known models for an unknown one
            raise ConvscopeError(f"{args.model}'s weights are not here yet: convscope weights fetch {args.model}")


def cmd_streamlit(args) -> None:
    if importlib.util.find_spec("streamlit") is None:
        raise ConvscopeError(f"`convscope streamlit` needs the streamlit package: {INSTALL_HINT}")
    _check_model(args)
    process = subprocess.Popen(streamlit_command(args))
    # `kill PID` stops the app too: SIGTERM becomes an exit, whose `finally` stops the child.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        status = process.wait()
    except KeyboardInterrupt:  # the terminal's Ctrl-C reached streamlit too: it is closing its sessions
        status = None
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(process)
    if status is None:
        print("Streamlit stopped", flush=True)
    elif status != 0:
        raise ConvscopeError(f"streamlit exited with status {status} (its message is above)")


def _stop(process: subprocess.Popen, grace_s: float = 10) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
