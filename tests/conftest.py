"""Shared fixtures: tiny synthetic MNIST-format data, and the real MNIST when CONVSCOPE_MNIST_DIR points at it."""

from __future__ import annotations

import functools
import gzip
import http.server
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from convscope.data.idx import encode_idx
from convscope.data.mnist import MNIST_FILES, MnistSplit
from convscope.settings import Settings
from convscope.testing.webserver import local_http_server

pytest_plugins = ["server_fixtures"]

# `pytest -m "not slow"` (make quick): the quick feedback loop. Slow: every browser test, the files whose tests run
# real server and training processes or the Streamlit app, every test on PostgreSQL (each is also run on SQLite),
# and single tests marked @pytest.mark.slow (a fresh interpreter, a real-MNIST figure).
SLOW_FILES = {"test_server_e2e.py", "test_server_jobs.py", "test_streamlit_app.py"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name.startswith("test_ui"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
        elif item.path.name in SLOW_FILES or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.slow)


SERVER_LOG_LINES = 100


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that drove a browser or a server shows what the page did (its errors and the requests it was
    still waiting for) and the end of the server's log: a timeout alone says nothing of why."""
    report = yield
    if report.failed:
        record = getattr(getattr(item, "funcargs", {}).get("page"), "record", None)
        if record is not None:
            report.sections.append(("the page", record.report()))
        log = getattr(getattr(item, "funcargs", {}).get("server"), "log", None)
        if log is not None and log.exists():
            tail = log.read_text(errors="replace").splitlines()[-SERVER_LOG_LINES:]
            report.sections.append((f"the server's log (last {SERVER_LOG_LINES} lines)", "\n".join(tail)))
    return report


REAL_MNIST = os.environ.get("CONVSCOPE_MNIST_DIR")
if os.environ.get("CI") and not REAL_MNIST:
    raise RuntimeError("CI must run the real-MNIST tests: set CONVSCOPE_MNIST_DIR (the Makefile does when "
                       "../shared/data/mnist exists)")

def synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 images and labels: class k is a bright 6x6 block at a class-specific spot, plus
    noise. Separable, so a few training steps learn it."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.uint8) % 10
    images = rng.integers(0, 40, size=(count, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        row, col = 3 + 8 * (label // 4), 3 + 7 * (label % 4)
        images[i, row:row + 6, col:col + 6] = 255
    return images, labels

@pytest.fixture
def restore_registry():
    """For tests that register models (user models, fine-tuned ones) in the process-wide registry: take them out
    again afterwards."""
    from convscope.models import MODELS
    before = dict(MODELS)
    yield
    MODELS.clear()
    MODELS.update(before)


def png_with_chunk(chunk_type: bytes, data: bytes) -> bytes:
    """A small valid PNG with one more chunk right after its header (e.g. a zTXt that inflates to 50 MB)."""
    import io
    import struct
    import zlib

    from PIL import Image
    buffer = io.BytesIO()
    Image.new("L", (4, 4), 255).save(buffer, format="PNG")
    png = buffer.getvalue()
    chunk = struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", zlib.crc32(chunk_type + data))
    return png[:33] + chunk + png[33:]  # 8-byte signature + 25-byte IHDR chunk


SHAPES = ("circle", "square", "triangle")


def write_shapes(root: Path, per_class: int = 20, size: int = 64, seed: int = 0) -> Path:
    """A labelled image folder: dark circles, squares and triangles of random size, place and colour on light
    backgrounds, one sub-folder per shape."""
    import random

    from PIL import Image, ImageDraw
    rng = random.Random(seed)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = Image.new("RGB", (size, size), tuple(rng.randrange(150, 256) for _ in range(3)))
            ink = tuple(rng.randrange(0, 110) for _ in range(3))
            r = rng.uniform(0.2, 0.35) * size
            x, y = rng.uniform(r, size - r), rng.uniform(r, size - r)
            draw = ImageDraw.Draw(image)
            if shape == "circle":
                draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)
            elif shape == "square":
                draw.rectangle([x - r, y - r, x + r, y + r], fill=ink)
            else:
                draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=ink)
            image.save(root / shape / f"{i}.png")
    return root


def write_mnist_dir(folder: Path, train_count: int = 200, test_count: int = 100, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": synthetic_digits(train_count, 0), "test": synthetic_digits(test_count, 1)}
    for (split, kind), (stem, _) in MNIST_FILES.items():
        images, labels = splits[split]
        data = encode_idx(images if kind == "images" else labels)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return folder

@pytest.fixture
def synthetic_mnist(tmp_path) -> Settings:
    """Settings whose MNIST folder holds small synthetic idx files."""
    return Settings(data_dir=tmp_path / "data", mnist_dir=write_mnist_dir(tmp_path / "mnist"))

def synthetic_split(count: int, seed: int) -> MnistSplit:
    images, labels = synthetic_digits(count, seed)
    return MnistSplit(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)), f"synthetic-{seed}")

@pytest.fixture(scope="session")
def real_mnist() -> Settings:
    if not REAL_MNIST:
        pytest.skip("set CONVSCOPE_MNIST_DIR to a folder with the four MNIST files")
    return Settings(mnist_dir=Path(REAL_MNIST))

@pytest.fixture(scope="session")
def packaged_cnn():
    from convscope.models import load_model
    return load_model("mnist_cnn")

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server; yields (served folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    with local_http_server(functools.partial(QuietHandler, directory=root)) as url:
        yield root, url

def serve_real_mnist(root: Path) -> None:
    """Link the real MNIST .gz files into a served folder (skips the test when there is no local copy)."""
    if not REAL_MNIST:
        pytest.skip("set CONVSCOPE_MNIST_DIR to a folder with the four MNIST files")
    for stem, _ in MNIST_FILES.values():
        (root / f"{stem}.gz").symlink_to(Path(REAL_MNIST).resolve() / f"{stem}.gz")


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL server (skipped when Debian's postgresql is not installed; required in CI)."""
    from convscope.testing.postgres import PostgresServer, find_binaries

    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI must run the PostgreSQL tests: apt-get install postgresql (.ci/run does)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(binaries)
    server.start()
    yield server
    server.stop()
