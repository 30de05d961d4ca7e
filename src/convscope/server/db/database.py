"""Engine, sessions and migrations. SQLite (the zero-configuration default) or PostgreSQL, same code.

SQLite runs in WAL mode so readers never wait for a writer, with ``synchronous=FULL`` so a save that was answered
survives a crash, and a busy timeout so concurrent writers queue instead of failing. Write transactions start
with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes can fail at once with "database is
locked" when another writer got there first; taking the write lock up front makes it wait its turn instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

WRITE = "convscope_write"  # execution option: this connection's transactions write
MIGRATION_LOCK = 0x636F6E76  # PostgreSQL advisory lock key ("conv")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):  # the psycopg 3 driver, not the default psycopg2
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The engine and two session factories: read-only work and work that writes."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(**{WRITE: True}), expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def migrate(self, revision: str = "head", down: bool = False) -> None:
        """Bring the schema to the newest revision (Alembic ``upgrade head``), or to ``revision`` (``down``: back
        to it, as ``alembic downgrade`` does, for an operator going back a release). Worker processes starting
        together take turns: SQLite's write lock (BEGIN IMMEDIATE) or a PostgreSQL advisory lock is held
        throughout."""
        config = Config()
        config.set_main_option("script_location", str(resources.files("convscope.server.db") / "migrations"))
        with self.engine.connect() as connection:
            # SQLite alters a table by copying it to a new one and dropping the old: with foreign keys on, that
            # drop would cascade and delete every dependent row. The pragma only applies outside a transaction.
            if self.is_sqlite:
                connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
            try:
                with connection.execution_options(**{WRITE: True}).begin():
                    if connection.dialect.name == "postgresql":
                        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                    config.attributes["connection"] = connection
                    (command.downgrade if down else command.upgrade)(config, revision)
                    if self.is_sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                        raise RuntimeError("the migration left rows whose foreign keys point nowhere")
            finally:
                if self.is_sqlite:
                    connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back when it raises."""
        with (self._write if write else self._read)() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
