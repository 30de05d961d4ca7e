"""``convscope serve`` as a child process on a free loopback port: what the benchmarks and the end-to-end tests
run against (a real server, real sockets). Stopped by its PID."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    def __init__(self, data_dir: Path, env: dict | None = None, extra_args: tuple[str, ...] = (),
                 log: Path | None = None):
        self.port = free_port()
        self.data_dir = Path(data_dir)
        self.env = {**os.environ, **(env or {})}
        self.args = [sys.executable, "-m", "convscope.cli.main", "serve", "--port", str(self.port),
                     "--data-dir", str(self.data_dir), *extra_args]
        self.log = log or self.data_dir / "server.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> float:
        """Start and wait for /api/health; returns the seconds it took."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(self.log, "ab") as log:
            # Its own process group: worker and training processes can be killed together with it.
            self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        while time.perf_counter() - started < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"convscope serve exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                status, _ = self.request("GET", "/api/health", timeout=1)
                if status == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"convscope serve did not answer within {timeout_s} s:\n{self.log.read_text()}")

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 30):
        """(status, decoded JSON body or raw bytes) over a fresh connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            connection.request(method, path, payload, {"content-type": "application/json"} if payload else {})
            response = connection.getresponse()
            data = response.read()
            is_json = response.getheader("content-type", "").startswith("application/json")
            return response.status, json.loads(data) if is_json else data
        finally:
            connection.close()

    def kill(self) -> None:
        """SIGKILL to the server and every process it started: no shutdown code runs (the crash test)."""
        if self.process:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # anything of its group still alive

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
