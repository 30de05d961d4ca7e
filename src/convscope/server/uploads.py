"""Image folders uploaded through the API, as datasets to evaluate and fine-tune on.

A browser picks a folder (one sub-folder of images per class) and sends its images in requests of a few megabytes
each (the body limit), each image named ``class/file.jpg``. They land in the datasets folder as
``<name>/<class>/<file>``, where ``folder:<name>`` then lists them like a folder placed there by hand. Every image
is decoded before it is kept; a file that is not one is refused and named. A folder the API made carries a marker
file: only such a folder takes more images or can be deleted through the API, never one placed by hand.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..data.download import atomic_write_bytes
from ..data.labelled import IMAGE_SUFFIXES, image_folder
from ..errors import ConvscopeError, InputError
from ..images import open_image
from .errors import Conflict, NotFound

MARKER = ".uploaded-by-convscope"
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PART_NAME = re.compile(r"[^/\\\x00-\x1f.][^/\\\x00-\x1f]{0,199}")  # a class or file name: no path, not hidden
MAX_FILES = 50_000  # per dataset
MAX_BYTES = 2 * 1024 ** 3  # per dataset: 2 GB


def _usage(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file() and p.name != MARKER]
    return len(files), sum(p.stat().st_size for p in files)


def add_images(datasets: Path, name: str, images: list[tuple[str, bytes]], max_pixels: int) -> dict:
    """Keep each ``(class/file name, bytes)`` that is an image in ``datasets/name``; returns the dataset's name,
    how many were added, the refused files with why, and the classes' image counts now."""
    if not DATASET_NAME.fullmatch(name):
        raise InputError(f"dataset name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter "
                         "or digit")
    root = datasets / name
    if root.exists() and not (root / MARKER).exists():
        raise Conflict(f"folder:{name} was placed on the server by hand: upload under another name")
    count, size = _usage(root) if root.exists() else (0, 0)
    if count + len(images) > MAX_FILES or size + sum(len(data) for _, data in images) > MAX_BYTES:
        raise Conflict(f"folder:{name} would hold over {MAX_FILES:,} images or {MAX_BYTES / 1e9:.0f} GB: split it")
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).touch()
    added, refused = 0, []
    for relative, data in images:
        parts = relative.replace("\\", "/").split("/")
        if len(parts) != 2 or not all(PART_NAME.fullmatch(part) for part in parts):
            refused.append({"file": relative, "reason": "name it class/file (one class folder, no hidden names)"})
            continue
        if Path(parts[1]).suffix.lower() not in IMAGE_SUFFIXES:
            refused.append({"file": relative, "reason": f"not one of {', '.join(IMAGE_SUFFIXES)}"})
            continue
        try:
            open_image(data, max_pixels)
        except InputError as e:
            refused.append({"file": relative, "reason": str(e).removeprefix("image: ")})
            continue
        (root / parts[0]).mkdir(exist_ok=True)
        atomic_write_bytes(root / parts[0] / parts[1], data)
        added += 1
    try:
        classes = image_folder(root, min_classes=1).counts()
    except ConvscopeError:
        classes = {}
    return {"dataset": f"folder:{name}", "added": added, "refused": refused, "classes": classes}


def delete_dataset(datasets: Path, name: str) -> None:
    root = datasets / name
    if not DATASET_NAME.fullmatch(name) or not root.is_dir():
        raise NotFound(f"no dataset folder:{name}")
    if not (root / MARKER).exists():
        raise Conflict(f"folder:{name} was placed on the server by hand: delete it there")
    shutil.rmtree(root)
