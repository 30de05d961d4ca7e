"""Weights downloads that run in the background and that every process sharing the cache folder can follow.

A download runs in a thread of the process that started it. Its progress is a small JSON file beside the cache
(``.<file>.download.json``), and an advisory lock (``.<file>.lock``, ``flock``) is held for as long as it runs.
So any process (each server worker) can tell a download that is running (the lock is held) from one whose
process died (a progress file saying "downloading" with nobody holding the lock), and two processes never
download the same file at once. The file itself appears in the cache only once verified (``download_file``).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ...data.download import atomic_write_bytes
from ...errors import ConvscopeError
from ...settings import Settings
from .store import download_weights, find_weights
from .weights import WeightsRecord

PROGRESS_EVERY_S = 0.25  # how often a running download rewrites its progress file


def _progress_path(record: WeightsRecord, settings: Settings) -> Path:
    return settings.weights_cache_dir / f".{record.file_name}.download.json"


def _lock_path(record: WeightsRecord, settings: Settings) -> Path:
    return settings.weights_cache_dir / f".{record.file_name}.lock"


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding the exclusive lock on ``path``, or None when another holder has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _write_progress(record: WeightsRecord, settings: Settings, **fields) -> None:
    atomic_write_bytes(_progress_path(record, settings), json.dumps(fields).encode())


def download_state(record: WeightsRecord, settings: Settings) -> dict:
    """Where the record's file stands: ``{"state": "ready"}``, ``{"state": "missing"}``,
    ``{"state": "downloading", "received": bytes, "total": bytes}`` or ``{"state": "failed", "error": why}``."""
    if find_weights(record, settings) is not None:
        return {"state": "ready"}
    try:
        progress = json.loads(_progress_path(record, settings).read_text())
    except (OSError, ValueError):
        return {"state": "missing"}
    if progress.get("state") == "downloading":
        fd = _try_lock(_lock_path(record, settings))
        if fd is None:  # its downloader is alive
            return progress
        _unlock(fd)
        return {"state": "failed", "error": "the download was interrupted (the process running it stopped); "
                                            "start it again"}
    return progress


def start_download(record: WeightsRecord, settings: Settings,
                   on_ready: Callable[[Path], None] | None = None) -> dict:
    """Start downloading the record's file in a background thread unless it is here or already downloading
    (in any process); returns the state right after. ``on_ready(path)`` runs in that thread once the file is
    verified and in place. A failure's ``error`` says what went wrong, not where to put the file by hand: the
    caller knows who reads it (see ``store.where_to_put``)."""
    state = download_state(record, settings)
    if state["state"] in ("ready", "downloading"):
        return state
    fd = _try_lock(_lock_path(record, settings))
    if fd is None:  # another process started it a moment ago
        return download_state(record, settings)
    _write_progress(record, settings, state="downloading", received=0, total=record.size, started=time.time())
    thread = threading.Thread(target=_download, args=(record, settings, fd, on_ready),
                              name=f"convscope-download-{record.key}", daemon=True)
    thread.start()
    return download_state(record, settings)


def _download(record: WeightsRecord, settings: Settings, lock_fd: int,
              on_ready: Callable[[Path], None] | None) -> None:
    started, last_written = time.time(), 0.0

    def progress(received: int, total: int | None) -> None:
        nonlocal last_written
        now = time.monotonic()
        if now - last_written >= PROGRESS_EVERY_S:
            last_written = now
            _write_progress(record, settings, state="downloading", received=received, total=total or record.size,
                            started=started)

    try:
        path = find_weights(record, settings) or download_weights(record, settings, progress=progress)
        _progress_path(record, settings).unlink(missing_ok=True)
        if on_ready is not None:
            on_ready(path)
    except ConvscopeError as e:
        _write_progress(record, settings, state="failed", error=str(e))
    except Exception as e:  # noqa: BLE001 - a background thread: whatever broke must reach the user as "failed"
        _write_progress(record, settings, state="failed", error=f"{type(e).__name__}: {e}")
    finally:
        _unlock(lock_fd)
