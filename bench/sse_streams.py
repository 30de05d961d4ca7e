"""What open event streams cost the server: a real `convscope serve` with two workers runs a long training job
while N clients follow its events (GET /api/jobs/{id}/events); the worker processes' CPU time (user + system,
from /proc; the training process itself left out) over a fixed window, with 0 streams and with N. Streams land on
either worker: those on the one that does not run the job read its events from the database.

Usage: python bench/sse_streams.py [--streams N] [--window S] [--against REV]
``--against REV`` also runs the code of git revision REV (its src/ by PYTHONPATH) the same way."""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from convscope.testing.server import ServerProcess

REPO = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def workers(server: ServerProcess) -> list[int]:
    """The uvicorn worker processes: the supervisor's children (a training job is a worker's child)."""
    return [pid for pid in children(server.process.pid)
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]


def follow(port: int, job_id: int, stop: threading.Event) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", f"/api/jobs/{job_id}/events")
    response = connection.getresponse()
    while not stop.is_set() and response.readline():
        pass
    connection.close()


def measure(server: ServerProcess, job_id: int, streams: int, window: float) -> float:
    stop = threading.Event()
    threads = [threading.Thread(target=follow, args=(server.port, job_id, stop), daemon=True) for _ in range(streams)]
    for thread in threads:
        thread.start()
    time.sleep(2)  # the streams have caught up
    pids = workers(server)
    before = sum(cpu_seconds(pid) for pid in pids)
    time.sleep(window)
    used = sum(cpu_seconds(pid) for pid in pids) - before
    stop.set()
    return used / window


def run(label: str, env: dict, streams: int, window: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        mnist = os.environ.get("CONVSCOPE_MNIST_DIR")
        with ServerProcess(Path(folder) / "server", env={**env, "CONVSCOPE_WORKERS": "2",
                                                          **({"CONVSCOPE_MNIST_DIR": mnist} if mnist else {})}) as s:
            status, job = s.request("POST", "/api/jobs", {"epochs": 100, "batch_size": 16})
            assert status == 202, job
            while s.request("GET", f"/api/jobs/{job['id']}")[1]["status"] != "running":
                time.sleep(0.2)
            idle = measure(s, job["id"], 0, window)
            busy = measure(s, job["id"], streams, window)
            s.request("POST", f"/api/jobs/{job['id']}/cancel")
    print(f"  {label:<12} workers' CPU: {idle:.1%} of a core with no stream, {busy:.1%} with {streams}: "
          f"{(busy - idle) / streams:.2%} per stream")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--against")
    args = parser.parse_args()
    print(f"{args.streams} event streams on a running job, CPU over {args.window:g} s")
    run("this tree", {}, args.streams, args.window)
    if args.against:
        with tempfile.TemporaryDirectory() as folder:
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.against, "src"], check=True,
                                     capture_output=True)
            subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
            run(args.against, {"PYTHONPATH": str(Path(folder) / "src")}, args.streams, args.window)


if __name__ == "__main__":
    main()
