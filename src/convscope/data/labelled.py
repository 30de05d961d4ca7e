"""A user's labelled images: a folder with one sub-folder per class, or a CSV of ``file,label`` rows.

Only the file list is read here; images are decoded as they are used (see ``decode``), and one that cannot be
read is skipped and listed, never fatal. Class names are matched onto a model's classes by ``map_onto``: exactly,
then ignoring case and ``_``/``-``, then (for an ImageNet model) by WordNet id or any WordNet synonym.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import DataError, InputError
from ..images import open_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


@dataclass
class LabelledFiles:
    """Image files with a class index each, into ``class_names``."""

    files: list[Path]
    labels: list[int]
    class_names: list[str]
    source: str  # the folder or CSV they came from
    kind: str  # "folder" or "csv"
    skipped: list[dict] = field(default_factory=list)  # [{"file", "reason"}]: listed but not usable

    def __len__(self) -> int:
        return len(self.files)

    def counts(self) -> dict[str, int]:
        counts = torch.bincount(torch.tensor(self.labels, dtype=torch.long), minlength=len(self.class_names))
        return dict(zip(self.class_names, counts.tolist(), strict=True))

    def describe(self) -> dict:
        return {"kind": self.kind, "source": self.source, "count": len(self), "classes": self.counts(),
                "skipped": len(self.skipped)}


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def image_folder(root: str | Path, min_classes: int = 2) -> LabelledFiles:
    """One class per sub-folder of ``root`` (sorted by name, hidden ones ignored), its images anywhere below it."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    class_folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_folders) < min_classes:
        loose = sum(p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir() if p.is_file())
        raise DataError(f"{root} has {len(class_folders)} class sub-folder(s) and needs at least {min_classes}: put "
                        f"each class's images in a sub-folder named after it (e.g. {root}/cat/1.jpg, "
                        f"{root}/dog/2.jpg)" + (f"; {loose} image(s) lie directly in it" if loose else ""))
    files, labels, empty = [], [], []
    for label, folder in enumerate(class_folders):
        found = _images_in(folder)
        if not found:
            empty.append(folder.name)
        files += found
        labels += [label] * len(found)
    if empty:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in the class folder(s) {', '.join(empty)}")
    return LabelledFiles(files, labels, [p.name for p in class_folders], str(root), "folder")


def labelled_csv(path: str | Path, root: str | Path | None = None) -> LabelledFiles:
    """Rows of ``file,label`` (a header row naming them is allowed); files relative to ``root``, default the CSV's
    folder. Classes are the labels in order of first appearance; a missing file is listed as skipped."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    if rows and [cell.strip().lower() for cell in rows[0][:2]] in (["file", "label"], ["filename", "label"],
                                                                    ["path", "label"], ["image", "label"]):
        rows = rows[1:]
    files, labels, names, skipped = [], [], {}, []
    for number, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"{path}, row {number}: expected file,label, got {','.join(row)!r}")
        file, label = (root / row[0].strip()), row[1].strip()
        if not file.is_file():
            skipped.append({"file": str(file), "reason": "no such file"})
            continue
        files.append(file)
        labels.append(names.setdefault(label, len(names)))
    if not files:
        raise DataError(f"{path}: no rows naming an existing image" + (f" ({len(skipped)} missing)" if skipped else ""))
    return LabelledFiles(files, labels, list(names), str(path), "csv", skipped)


def plain_name(name: str) -> str:
    """A class name compared loosely: lower case, with runs of spaces, ``_`` and ``-`` as one space."""
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


def map_onto(data: LabelledFiles, class_names: Sequence[str], aliases: dict[str, int] | None = None) -> LabelledFiles:
    """The same files labelled with ``class_names``' indices. ``aliases`` maps more names (already
    ``plain_name``s) onto indices, e.g. WordNet ids and synonyms for the ImageNet classes. A name that matches
    nothing is an error that lists it."""
    exact = {name: i for i, name in enumerate(class_names)}
    plain = {**(aliases or {}), **{plain_name(name): i for i, name in enumerate(class_names)}}
    index, unknown = [], []
    for name in data.class_names:
        found = exact.get(name, plain.get(plain_name(name)))
        index.append(found)
        if found is None:
            unknown.append(name)
    if unknown:
        examples = ", ".join(list(class_names)[:3])
        raise DataError(f"{len(unknown)} class(es) of {data.source} are not classes of the model: "
                        f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}. Name them after the "
                        f"model's classes (e.g. {examples})" + (" or their WordNet ids (n01440764)" if aliases else ""))
    return LabelledFiles(data.files, [index[label] for label in data.labels], list(class_names), data.source,
                         data.kind, list(data.skipped))


def read_image(file: Path, prepare) -> tuple[torch.Tensor | None, str | None]:
    """(``prepare(image)``, None), or (None, why) for a file that cannot be read as an image."""
    try:
        return prepare(open_image(file)), None
    except InputError as e:
        return None, str(e).removeprefix(f"{file}: ")
