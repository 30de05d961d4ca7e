"""Fetching files from a list of mirrors, verified by SHA-256 and written atomically into a cache."""

from __future__ import annotations

import hashlib
import http.client
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


def download_file(url: str, destination: Path, expected_sha256: str, expected_size: int | None = None,
                  progress: ProgressFn | None = None, timeout: float = 60.0) -> Path:
    """Stream ``url`` into ``destination``: through a temporary file beside it, hashed as it arrives, renamed
    into place only when the size and the whole SHA-256 are right. A failed, cut or wrong download leaves nothing
    behind. Raises :class:`DataError` saying what went wrong."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    digest, received = hashlib.sha256(), 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "convscope"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else expected_size
            # read1: whatever has arrived (up to 1 MB), so progress moves as the bytes come, not per full MB
            while chunk := response.read1(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress:
                    progress(received, total)
            out.flush()
            os.fsync(out.fileno())
        if expected_size is not None and received != expected_size:
            raise DataError(f"{url}: got {received:,} bytes, expected {expected_size:,} (the download was cut)")
        if digest.hexdigest() != expected_sha256:
            raise DataError(f"{url}: SHA-256 mismatch (got {digest.hexdigest()[:16]}..., expected "
                            f"{expected_sha256[:16]}...): the file was refused and deleted")
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, destination)
        return destination
    except urllib.error.HTTPError as e:
        raise DataError(f"could not download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise DataError(f"could not download {url}: {getattr(e, 'reason', None) or e}") from None
    finally:
        Path(tmp_name).unlink(missing_ok=True)  # gone already when the rename happened
