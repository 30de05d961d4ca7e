"""The training process. It imports only the engine (it starts faster without the web stack), runs one training
job, and sends every trainer event to the server through a queue. It lowers its own priority so the server's
requests come first, and exits by itself if the server dies."""

from __future__ import annotations

import os
import threading
import time
import traceback
from pathlib import Path

PARENT_CHECK_S = 1.0


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent_pid:  # the server is gone (even after kill -9): stop training
            os._exit(1)


def run_job(config: dict, settings, out: str, events, cancel, parent_pid: int, command: str,
            folder: str | None = None, base_model=None) -> None:
    """Target of the spawned process. ``events``: a multiprocessing queue of event dicts; ``cancel``: an Event;
    ``command``: how the run was asked for, kept with its model. A config of ``kind`` "finetune" fine-tunes on the
    image ``folder`` (from ``base_model``, a ``UserModel``, when the base is a model of the user's own); any other
    trains from scratch."""
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    try:
        os.nice(10)
    except OSError:  # not allowed here: train at normal priority
        pass
    from ..training import FineTuneConfig, TrainConfig, finetune, train

    def send(event) -> None:
        # emitted_at (Unix time): lets a client measure how long an event took to reach it
        events.put({**event.as_dict(), "emitted_at": time.time()})

    try:
        if config.get("kind") == "finetune":
            if base_model is not None:
                from ..models.registry import register_user_model
                register_user_model(base_model)
            finetune(folder, FineTuneConfig.from_dict(config), out=Path(out), on_event=send, cancel=cancel,
                     command=command)
        else:
            train(TrainConfig.from_dict(config), on_event=send, cancel=cancel,
                  out=Path(out), settings=settings, command=command)
    except BaseException:  # both send a "failed" event first; the traceback helps whoever reads the log
        traceback.print_exc()
        raise SystemExit(1) from None
