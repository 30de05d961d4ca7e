"""Data: MNIST (verified downloads, ``load_mnist``, ``sample_digit``), labelled image folders and CSVs, sample
photos."""

from .mnist import CLASS_NAMES, MnistSplit, Sample, download_mnist, load_mnist, mnist_dir, sample_digit

__all__ = ["CLASS_NAMES", "MnistSplit", "Sample", "download_mnist", "load_mnist", "mnist_dir", "sample_digit"]
