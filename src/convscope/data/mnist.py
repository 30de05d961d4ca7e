"""MNIST (LeCun, Cortes, Burges): loading the four idx files, downloading them, and drawing samples.

Where the files are looked for, in order: ``Settings.mnist_dir`` (``CONVSCOPE_MNIST_DIR``) when set, else the
cache ``<data_dir>/mnist``, which :func:`download_mnist` fills from the official mirrors.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..errors import DataError, InputError
from ..settings import Settings
from .download import ProgressFn, download_verified
from .idx import parse_idx, read_file_bytes

Split = Literal["train", "test"]

# The mirrors other libraries use, tried in order (torchvision's S3 copy first: yann.lecun.com often refuses).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# SHA-256 of the decompressed official files (the .gz wrappers vary between mirrors, the content does not).
MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte",
                          "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train", "labels"): ("train-labels-idx1-ubyte",
                          "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

CLASS_NAMES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class MnistSplit:
    """One split held in memory: ``images`` (N, 28, 28) uint8, ``labels`` (N,) int64, ``sha256`` of the files."""

    images: torch.Tensor
    labels: torch.Tensor
    sha256: str

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"MnistSplit({len(self):,} images (28, 28) uint8, labels {self.labels.unique().tolist()})"

    def as_float(self) -> torch.Tensor:
        """Images as (N, 1, 28, 28) float32 in [0, 1], the models' input."""
        return self.images.unsqueeze(1).float().div_(255.0)


def find_file(folder: Path, stem: str) -> Path | None:
    """The MNIST file ``stem`` in ``folder``, raw or gzipped; None when neither is there."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def mnist_dir(settings: Settings | None = None, download: bool = True, progress: ProgressFn | None = None) -> Path:
    """The folder holding all four files, downloading them into the cache if allowed and needed."""
    settings = settings or Settings.from_env()
    if settings.mnist_dir is not None:
        folder = settings.mnist_dir
        missing = [stem for stem, _ in MNIST_FILES.values() if find_file(folder, stem) is None]
        if missing:
            raise DataError(
                f"CONVSCOPE_MNIST_DIR={folder} lacks {', '.join(missing)} (.gz or raw). "
                "Put the four MNIST idx files there, or unset it to use the downloaded cache."
            )
        return folder
    folder = settings.mnist_cache_dir
    if all(find_file(folder, stem) for stem, _ in MNIST_FILES.values()):
        return folder
    if not download:
        raise DataError(f"MNIST is not in {folder}: run `convscope data download`")
    return download_mnist(folder, mirrors=settings.mnist_mirrors or MNIST_MIRRORS, progress=progress)


def download_mnist(
    folder: Path, mirrors: tuple[str, ...] = MNIST_MIRRORS, files: dict | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Download the four files into ``folder`` (skipping those already there), verifying every hash."""
    files = files or MNIST_FILES
    for stem, sha256 in files.values():
        if find_file(folder, stem) is not None:
            continue
        try:
            download_verified(f"{stem}.gz", mirrors, sha256, folder / f"{stem}.gz", decode=gzip.decompress,
                              progress=progress)
        except DataError as e:
            names = ", ".join(f"{s}.gz" for s, _ in files.values())
            raise DataError(
                f"{e}\nOffline? Put the four MNIST files ({names}) in {folder}, "
                "or point CONVSCOPE_MNIST_DIR at a folder that holds them."
            ) from None
    return folder


@functools.lru_cache(maxsize=4)
def _load_split(folder: Path, split: Split) -> MnistSplit:
    images_stem, _ = MNIST_FILES[(split, "images")]
    labels_stem, _ = MNIST_FILES[(split, "labels")]
    images_path, labels_path = find_file(folder, images_stem), find_file(folder, labels_stem)
    if images_path is None or labels_path is None:
        raise DataError(f"MNIST {split} files are missing from {folder}")
    images_bytes, labels_bytes = read_file_bytes(images_path), read_file_bytes(labels_path)
    images, labels = parse_idx(images_bytes, str(images_path)), parse_idx(labels_bytes, str(labels_path))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if len(labels) and labels.max() > 9:
        raise DataError(f"{labels_path}: label {int(labels.max())} is outside 0-9")
    digest = hashlib.sha256(images_bytes + labels_bytes).hexdigest()
    return MnistSplit(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), digest)


def load_mnist(split: Split = "train", settings: Settings | None = None, download: bool = True) -> MnistSplit:
    """One split of MNIST, validated, held in memory (cached per process)."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    return _load_split(mnist_dir(settings, download=download).resolve(), split)


@dataclass(frozen=True)
class Sample:
    """One MNIST image: ``image`` (28, 28) uint8 in 0-255 (light digit on black), its ``label`` 0-9, its ``index``
    in ``split``. In a notebook it shows the digit."""

    image: torch.Tensor  # (28, 28) uint8
    label: int
    index: int
    split: str

    def __repr__(self) -> str:
        return f"Sample(label={self.label}, index={self.index}, split={self.split!r}, image uint8 (28, 28))"

    def _repr_html_(self) -> str:
        from ..display import sample_html
        return sample_html(self)

    def _repr_png_(self) -> bytes:
        from ..display import png, sample_picture
        return png(sample_picture(self))


def sample_digit(
    digit: int | None = None, split: Split = "test", seed: int | None = None, index: int | None = None,
    settings: Settings | None = None,
) -> Sample:
    """A sample by ``index``, or a random one of ``digit`` (any digit when None), reproducible with ``seed``."""
    data = load_mnist(split, settings)
    if index is not None:
        if not 0 <= index < len(data):
            raise InputError(f"index {index} is outside the {split} split (0-{len(data) - 1})")
        return Sample(data.images[index], int(data.labels[index]), index, split)
    if digit is not None and not 0 <= digit <= 9:
        raise InputError(f"digit must be 0-9, got {digit}")
    candidates = torch.arange(len(data)) if digit is None else torch.nonzero(data.labels == digit).flatten()
    if len(candidates) == 0:
        raise DataError(f"the {split} split holds no image of digit {digit}")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    pick = int(candidates[torch.randint(len(candidates), (1,), generator=generator)])
    return Sample(data.images[pick], int(data.labels[pick]), pick, split)
