"""The datasets top-activating examples are drawn from: a tensor of images held in memory (the MNIST test set,
``load_mnist("test").as_float()``) or a folder of image files prepared for the model as they are read.

Both are walked as ``(indices, pixels)`` batches, so an example found in a batch keeps its place in the dataset,
and both have a ``dataset_key``: what a cached result was computed from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ...data.labelled import IMAGE_SUFFIXES
from ...errors import DataError, InputError
from ...images import open_image
from ...preprocessing import Preprocessing

Batch = tuple[torch.Tensor, torch.Tensor]  # (B,) int64 dataset indices, (B, C, H, W) pixels in [0, 1]


class ImageFiles:
    """Image files as model input: ``files[i]`` prepared by ``preprocessing`` is image ``i``.

    A file that cannot be read as an image is left out of :meth:`batches` (and listed in ``skipped``); the others
    keep their indices. ``images[i]`` gives one prepared image (C, H, W).
    """

    def __init__(self, files: Sequence[str | Path], preprocessing: Preprocessing):
        self.files = [Path(f) for f in files]
        self.preprocessing = preprocessing
        self.skipped: dict[int, str] = {}  # index -> why it could not be read

    @classmethod
    def from_folder(cls, folder: str | Path, preprocessing: Preprocessing) -> ImageFiles:
        """Every image anywhere below ``folder`` (hidden files and folders left out), in sorted order."""
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if not files:
            raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        return cls(files, preprocessing)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.preprocessing.prepare(open_image(self.files[index]))[0]

    def _read(self, indices: range) -> Batch:
        kept, pixels = [], []
        for index in indices:
            try:
                pixels.append(self[index])
                kept.append(index)
            except InputError as e:
                self.skipped[index] = str(e)
        if not pixels:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, *self.preprocessing.input_shape)
        return torch.tensor(kept, dtype=torch.long), torch.stack(pixels)

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """``(indices, pixels)`` batches in file order. The next batch is decoded on a second thread while the
        caller runs the model on this one (PIL lets go of the GIL while it decodes and resizes)."""
        starts = range(0, len(self.files), batch_size)
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(self._read, range(0, min(batch_size, len(self.files))))
            for start in starts:
                batch = pending.result()
                following = start + batch_size
                if following < len(self.files):
                    pending = reader.submit(self._read, range(following, min(following + batch_size,
                                                                             len(self.files))))
                if len(batch[0]):
                    yield batch

    def identity(self) -> str:
        """What the images are: every file's path, size and modification time, and the preprocessing."""
        digest = hashlib.sha256(repr(self.preprocessing.describe()).encode())
        for file in self.files:
            stat = file.stat()
            digest.update(f"{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return f"files-{digest.hexdigest()[:16]}"


Dataset = torch.Tensor | ImageFiles | Iterable[torch.Tensor]


def batches_of(data: Dataset, batch_size: int) -> Iterator[Batch]:
    """``(indices, pixels)`` batches of a (N, C, H, W) tensor, an :class:`ImageFiles`, or any iterable of
    (B, C, H, W) batches (numbered in the order they come)."""
    if isinstance(data, torch.Tensor):
        if data.dim() != 4:
            raise InputError(f"expected images of shape (N, C, H, W), got {tuple(data.shape)}")
        for start in range(0, len(data), batch_size):
            stop = min(start + batch_size, len(data))
            yield torch.arange(start, stop), data[start:stop]
    elif isinstance(data, ImageFiles):
        yield from data.batches(batch_size)
    else:
        seen = 0
        for batch in data:
            yield torch.arange(seen, seen + len(batch)), batch
            seen += len(batch)


def dataset_size(data: Dataset) -> int:
    """How many images ``data`` holds; 0 when it is an iterable that does not say."""
    if isinstance(data, (torch.Tensor, ImageFiles)):
        return len(data)
    return 0


def dataset_key(data: torch.Tensor | ImageFiles) -> str:
    """A short name for what ``data`` holds, for cache keys: a hash of a tensor's values, or of the files'
    paths, sizes and times."""
    if isinstance(data, ImageFiles):
        return data.identity()
    values = data.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tuple(values.shape)}{values.dtype}".encode())
    digest.update(values.view(torch.uint8).numpy().tobytes() if values.numel() else b"")
    return f"tensor-{digest.hexdigest()[:16]}"
