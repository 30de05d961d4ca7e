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
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ...data.download import atomic_write_bytes
from ...errors import ConvscopeError, DataError, ModelError
from ...settings import Settings
from .store import download_weights, find_weights
from .weights import WeightsRecord

PROGRESS_EVERY_S = 0.25  # how often a running download rewrites its progress file
log = logging.getLogger("convscope.weights")


def _progress_path(record: WeightsRecord, settings: Settings) -> Path:
    return settings.weights_cache_dir / f".{record.file_name}.download.json"


def _lock_path(record: WeightsRecord, settings: Settings) -> Path:
    return settings.weights_cache_dir / f".{record.file_name}.lock"


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding the exclusive lock on ``path``, or None when another holder has it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise DataError(f"the weights folder cannot be written ({e.strerror})") from None
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


def _read_progress(record: WeightsRecord, settings: Settings) -> dict | None:
    try:
        return json.loads(_progress_path(record, settings).read_text())
    except (OSError, ValueError):
        return None


def download_state(record: WeightsRecord, settings: Settings) -> dict:
    """Where the record's file stands: ``{"state": "ready"}``, ``{"state": "missing"}``,
    ``{"state": "downloading", "received": bytes, "total": bytes}`` or ``{"state": "failed", "error": why}``."""
    if find_weights(record, settings) is not None:
        return {"state": "ready"}
    progress = _read_progress(record, settings)
    if progress is None:
        # A download that just finished put its file in place before removing its progress file.
        return {"state": "ready"} if find_weights(record, settings) else {"state": "missing"}
    if progress.get("state") != "downloading":
        return progress
    fd = _try_lock(_lock_path(record, settings))
    if fd is None:  # its downloader is alive
        return progress
    _unlock(fd)
    # Nobody holds the lock: the download either finished a moment ago, or its process died.
    if find_weights(record, settings) is not None:
        return {"state": "ready"}
    again = _read_progress(record, settings)
    if again is None or again.get("state") != "downloading":
        return again or {"state": "missing"}
    return {"state": "failed", "error": "the download was interrupted (the process running it stopped); "
                                        "start it again"}


def start_download(record: WeightsRecord, settings: Settings,
                   on_ready: Callable[[Path], None] | None = None) -> dict:
    """Start downloading the record's file in a background thread unless it is here or already downloading
    (in any process); returns the state right after. ``on_ready(path)`` runs in that thread once the file is
    verified and in place. A failure's ``error`` says what went wrong, not where to put the file by hand: the
    caller knows who reads it (see ``store.where_to_put``)."""
    if record.url is None:
        raise ModelError(f"{record.key} is not downloaded: it ships in the Python package {record.package!r}")
    state = download_state(record, settings)
    if state["state"] in ("ready", "downloading"):
        return state
    fd = _try_lock(_lock_path(record, settings))
    if fd is None:  # another process started it a moment ago
        return download_state(record, settings)
    try:
        for stale in settings.weights_cache_dir.glob(f".{record.file_name}.*.part"):  # left by a killed process
            stale.unlink(missing_ok=True)
        _write_progress(record, settings, state="downloading", received=0, total=record.size, started=time.time())
        threading.Thread(target=_download, args=(record, settings, fd, on_ready),
                         name=f"convscope-download-{record.key}", daemon=True).start()
    except (OSError, RuntimeError) as e:
        _unlock(fd)
        raise DataError(f"the download could not start ({getattr(e, 'strerror', None) or e})") from None
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
        _fail(record, settings, str(e))
    except OSError as e:  # the cache folder: full, or not writable (said without its path)
        _fail(record, settings, f"the weights file could not be written ({e.strerror})")
    except Exception:  # a background thread: whatever broke reaches the user as "failed", the details the log
        log.exception("downloading %s failed", record.key)
        _fail(record, settings, "the download failed unexpectedly (the server's log says why)")
    finally:
        _unlock(lock_fd)


def _fail(record: WeightsRecord, settings: Settings, error: str) -> None:
    try:
        _write_progress(record, settings, state="failed", error=error)
    except OSError:
        log.exception("could not record that downloading %s failed", record.key)
