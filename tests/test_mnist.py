import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from conftest import serve_real_mnist, synthetic_digits, write_mnist_dir
from convscope.data.idx import encode_idx
from convscope.data.mnist import MNIST_FILES, download_mnist, load_mnist, mnist_dir, sample_digit
from convscope.errors import DataError, InputError
from convscope.settings import Settings


def test_load_validates_and_returns_tensors(synthetic_mnist):
    train = load_mnist("train", synthetic_mnist)
    images, labels = synthetic_digits(200, 0)
    assert train.images.shape == (200, 28, 28) and str(train.images.dtype) == "torch.uint8"
    np.testing.assert_array_equal(train.images.numpy(), images)
    np.testing.assert_array_equal(train.labels.numpy(), labels)
    assert train.as_float().shape == (200, 1, 28, 28) and float(train.as_float().max()) == 1.0
    assert len(load_mnist("test", synthetic_mnist)) == 100


def test_raw_files_load_like_gz(tmp_path):
    settings = Settings(mnist_dir=write_mnist_dir(tmp_path / "raw", gz=False))
    assert len(load_mnist("train", settings)) == 200


def test_count_mismatch_and_bad_labels_are_errors(tmp_path):
    folder = write_mnist_dir(tmp_path / "m")
    labels_file = folder / "train-labels-idx1-ubyte.gz"
    labels_file.write_bytes(gzip.compress(encode_idx(np.zeros(199, np.uint8))))
    with pytest.raises(DataError, match="200 images but .* 199 labels"):
        load_mnist("train", Settings(mnist_dir=folder))
    labels_file.write_bytes(gzip.compress(encode_idx(np.full(200, 12, np.uint8))))
    with pytest.raises(DataError, match="label 12 is outside 0-9"):
        load_mnist("train", Settings(mnist_dir=folder))


def test_truncated_file_is_named(tmp_path):
    folder = write_mnist_dir(tmp_path / "m")
    images = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: truncated"):
        load_mnist("test", Settings(mnist_dir=folder))


def test_missing_files_in_the_configured_folder(tmp_path):
    with pytest.raises(DataError, match="CONVSCOPE_MNIST_DIR=.* lacks train-images-idx3-ubyte"):
        mnist_dir(Settings(mnist_dir=tmp_path))


def test_samples_by_digit_are_reproducible_and_by_index_exact(synthetic_mnist):
    a = sample_digit(7, "test", seed=3, settings=synthetic_mnist)
    b = sample_digit(7, "test", seed=3, settings=synthetic_mnist)
    assert a.label == 7 and a.index == b.index and a.image.shape == (28, 28)
    picks = {sample_digit(7, "test", seed=s, settings=synthetic_mnist).index for s in range(20)}
    assert len(picks) > 1  # different seeds reach different images
    by_index = sample_digit(index=13, split="train", settings=synthetic_mnist)
    assert (by_index.index, by_index.label) == (13, 3)
    with pytest.raises(InputError, match="outside the test split"):
        sample_digit(index=100, settings=synthetic_mnist)
    with pytest.raises(InputError, match="digit must be 0-9"):
        sample_digit(10, settings=synthetic_mnist)


# --- downloads, against a real HTTP server on 127.0.0.1 (the http_root fixture) ---

def synthetic_files(folder: Path) -> dict:
    """Write synthetic .gz files into ``folder``; return a MNIST_FILES-like table with their true hashes."""
    write_mnist_dir(folder)
    return {key: (stem, hashlib.sha256(gzip.decompress((folder / f"{stem}.gz").read_bytes())).hexdigest())
            for key, (stem, _) in MNIST_FILES.items()}


def test_download_tries_mirrors_in_order_and_verifies_hashes(http_root, tmp_path):
    root, url = http_root
    files = synthetic_files(root / "good")
    (root / "empty").mkdir()  # a mirror that answers 404 for everything
    cache = tmp_path / "cache"
    download_mnist(cache, mirrors=(f"{url}/empty/", f"{url}/good/"), files=files)
    for stem, _ in files.values():
        assert (cache / f"{stem}.gz").read_bytes() == (root / "good" / f"{stem}.gz").read_bytes()
    assert not list(cache.glob(".*tmp"))  # no temporary files left behind
    assert len(load_mnist("train", Settings(mnist_dir=cache))) == 200


def test_download_rejects_a_mirror_serving_wrong_content(http_root, tmp_path):
    root, url = http_root
    files = synthetic_files(root / "good")
    tampered = root / "tampered"
    write_mnist_dir(tampered, train_count=210)  # valid files, different bytes
    with pytest.raises(DataError, match="SHA-256 mismatch") as info:
        download_mnist(tmp_path / "cache", mirrors=(f"{url}/tampered/",), files=files)
    assert "Offline?" in str(info.value) and "CONVSCOPE_MNIST_DIR" in str(info.value)
    assert not (tmp_path / "cache" / "train-images-idx3-ubyte.gz").exists()
    # The good mirror after the tampered one is used.
    download_mnist(tmp_path / "cache", mirrors=(f"{url}/tampered/", f"{url}/good/"), files=files)
    assert (tmp_path / "cache" / "train-images-idx3-ubyte.gz").exists()


def test_offline_with_no_copy_says_where_to_put_the_files(tmp_path):
    unreachable = ("http://127.0.0.1:9/",)  # the discard port: connection refused
    settings = Settings(data_dir=tmp_path, mnist_mirrors=unreachable)
    with pytest.raises(DataError) as info:
        load_mnist("train", settings)
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message and "CONVSCOPE_MNIST_DIR" in message


def test_on_demand_download_fills_the_cache_once(http_root, tmp_path):
    """With no local copy, loading downloads the official files into the cache (served locally here)."""
    root, url = http_root
    serve_real_mnist(root)
    settings = Settings(data_dir=tmp_path, mnist_mirrors=(url,))
    folder = mnist_dir(settings)
    assert folder == tmp_path / "mnist"
    assert len(load_mnist("test", settings)) == 10000
    assert mnist_dir(Settings(data_dir=tmp_path, mnist_mirrors=("http://127.0.0.1:9/",))) == folder  # cached


def test_a_truncated_download_counts_as_a_failed_mirror(http_root, tmp_path):
    root, url = http_root
    files = synthetic_files(root / "good")
    broken = root / "broken"
    broken.mkdir()
    for stem, _ in files.values():
        (broken / f"{stem}.gz").write_bytes((root / "good" / f"{stem}.gz").read_bytes()[:40])
    with pytest.raises(DataError, match="could not download"):
        download_mnist(tmp_path / "cache", mirrors=(f"{url}/broken/",), files=files)
    download_mnist(tmp_path / "cache", mirrors=(f"{url}/broken/", f"{url}/good/"), files=files)
    assert len(load_mnist("test", Settings(mnist_dir=tmp_path / "cache"))) == 100
