"""A private PostgreSQL server for the tests: Debian's binaries, a temporary cluster on 127.0.0.1 with fsync off,
stopped by its PID at the end. Each test gets a fresh database in it."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from convscope.testing.server import free_port


def find_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.root = Path(tempfile.mkdtemp(prefix="convscope-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.pid: int | None = None
        # initdb refuses to run as root: run the server as the postgres user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True)

    def start(self) -> None:
        if self.as_user:
            shutil.chown(self.root, "postgres")
        self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-U", "convscope", "-A", "trust",
                  "--no-sync", "-E", "UTF8")
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://convscope@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database, empty or a copy of ``template`` (which no one may be connected to); its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def stop(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGINT)  # fast shutdown
            for _ in range(100):
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)
