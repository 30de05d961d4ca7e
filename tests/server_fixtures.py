"""Server fixtures: the app on SQLite or PostgreSQL (TestClient, lifespan included), and the engine's own answers
to compare the API with."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient


from convscope.server.app import create_app
from convscope.server.db.database import Database, sqlite_url
from convscope.server.settings import ServerSettings

_databases = itertools.count()


@pytest.fixture(scope="session")
def synthetic_mnist_dir(tmp_path_factory) -> Path:
    from conftest import write_mnist_dir

    return write_mnist_dir(tmp_path_factory.mktemp("mnist"), train_count=600, test_count=200)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite database at the newest revision, made once: a test's database starts as a copy of it (migrating
    costs each test about 0.15 s)."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    db = Database(sqlite_url(path))
    db.migrate()
    db.dispose()  # the last connection's close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres) -> str:
    """A PostgreSQL database at the newest revision, made once: the template of each test's database."""
    name = "migrated_template"
    db = Database(postgres.create_database(name))
    db.migrate()
    db.dispose()  # a template must have no one connected
    return name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_kind(request) -> str:
    return request.param


@pytest.fixture
def empty_database_url(database_kind, request, tmp_path) -> str:
    """A new, empty database on SQLite and on PostgreSQL: for the tests of migrations."""
    if database_kind == "sqlite":
        return sqlite_url(tmp_path / "server.db")
    return request.getfixturevalue("postgres").create_database(f"test_{next(_databases)}")


@pytest.fixture
def database_url(database_kind, request, tmp_path) -> str:
    """A new database at the newest revision, on SQLite and on PostgreSQL."""
    if database_kind == "sqlite":
        return sqlite_url(copy_of_migrated(request.getfixturevalue("migrated_sqlite"), tmp_path / "server.db"))
    template = request.getfixturevalue("migrated_postgres")
    return request.getfixturevalue("postgres").create_database(f"test_{next(_databases)}", template=template)


def copy_of_migrated(template: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return path


def make_client(settings: ServerSettings) -> TestClient:
    # The app answers loopback host names only (see security.py); TestClient's default is "testserver".
    return TestClient(create_app(settings), base_url="http://127.0.0.1")


@pytest.fixture
def settings(tmp_path, synthetic_mnist_dir, migrated_sqlite) -> ServerSettings:
    """SQLite in a temporary folder (its default place, migrated); MNIST samples and training from the synthetic
    set."""
    settings = ServerSettings(data_dir=tmp_path / "data", mnist_dir=synthetic_mnist_dir, workers=1)
    copy_of_migrated(migrated_sqlite, settings.data_dir / "convscope.db")
    return settings


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
