"""Server fixtures: the app on SQLite or PostgreSQL (TestClient, lifespan included), and the engine's own answers
to compare the API with."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from fastapi.testclient import TestClient


from convscope.server.app import create_app
from convscope.server.settings import ServerSettings

_databases = itertools.count()


@pytest.fixture(scope="session")
def synthetic_mnist_dir(tmp_path_factory) -> Path:
    from conftest import write_mnist_dir

    return write_mnist_dir(tmp_path_factory.mktemp("mnist"), train_count=600, test_count=200)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    return request.getfixturevalue("postgres").create_database(f"test_{next(_databases)}")


def make_client(settings: ServerSettings) -> TestClient:
    # The app answers loopback host names only (see security.py); TestClient's default is "testserver".
    return TestClient(create_app(settings), base_url="http://127.0.0.1")


@pytest.fixture
def settings(tmp_path, synthetic_mnist_dir) -> ServerSettings:
    """SQLite in a temporary folder; MNIST samples and training from the synthetic set."""
    return ServerSettings(data_dir=tmp_path / "data", mnist_dir=synthetic_mnist_dir, workers=1)


@pytest.fixture
def client(settings):
    with make_client(settings) as test_client:
        yield test_client


@pytest.fixture
def db_client(tmp_path, synthetic_mnist_dir, database_url):
    """The app on SQLite and on PostgreSQL."""
    settings = ServerSettings(data_dir=tmp_path / "data", mnist_dir=synthetic_mnist_dir, database_url=database_url,
                              workers=1)
    with make_client(settings) as test_client:
        yield test_client
