"""Fetching files from a list of mirrors, verified by SHA-256 and written atomically into a cache."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import DataError

# Called with (bytes received so far, total bytes or None) while a file downloads.
ProgressFn = Callable[[int, int | None], None]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes files private; these are ordinary data files
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def fetch_url(url: str, timeout: float = 30.0, progress: ProgressFn | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "convscope"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        chunks, received = [], 0
        while chunk := response.read(1 << 16):
            chunks.append(chunk)
            received += len(chunk)
            if progress:
                progress(received, total)
    return b"".join(chunks)


def download_verified(
    filename: str,
    mirrors: Sequence[str],
    expected_sha256: str,
    destination: Path,
    decode: Callable[[bytes], bytes] = lambda data: data,
    progress: ProgressFn | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``filename`` from the first mirror that serves it with the right hash.

    ``decode`` maps the downloaded bytes to the bytes whose SHA-256 is ``expected_sha256`` (MNIST hashes the
    decompressed content, because re-compressed copies differ). Each mirror is tried in order; a wrong hash counts
    as a failed mirror. Raises :class:`DataError` listing every mirror's failure.
    """
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            data = fetch_url(url, timeout=timeout, progress=progress)
            digest = hashlib.sha256(decode(data)).hexdigest()
        except (urllib.error.URLError, OSError, ValueError, EOFError, zlib.error) as e:
            failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
            continue
        if digest != expected_sha256:
            failures.append(f"{url}: SHA-256 mismatch (got {digest[:12]}..., expected {expected_sha256[:12]}...)")
            continue
        atomic_write_bytes(destination, data)
        return destination
    raise DataError(f"could not download {filename}; tried:\n  " + "\n  ".join(failures))
