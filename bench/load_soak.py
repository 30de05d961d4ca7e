"""Load and soak: a real `convscope serve` (two workers) while a training job runs, under N concurrent clients
(16, 64, 256 by default) that mix the API's everyday requests: predict (a 28x28 digit), inspect (predict with
every layer's activations), save a prediction, list saved predictions, statistics, the job's status; and one
event stream per 16 clients following the job. Per level: requests per second, p50/p99 latency per kind,
errors (any status but the expected), and the server's peak resident memory (supervisor, workers and the
training process, sampled every 0.5 s). ``--soak S`` holds the first level for S seconds and reports the memory
at its start and end too, to show whether anything grows.

Usage: python bench/load_soak.py [--levels 16,64,256] [--seconds 20] [--soak 0]"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import percentile
from convscope.testing.server import ServerProcess

# kind -> (share of requests, method, path, extra JSON fields beside the pixels or None for no body, the statuses
# that are right). A predict with layers [] answers the prediction and CAM only; without, every layer too.
KINDS = {
    "predict": (0.40, "POST", "/api/predict", {"layers": []}, (200,)),
    "inspect": (0.15, "POST", "/api/predict", {}, (200,)),
    "save": (0.10, "POST", "/api/predictions", {}, (201,)),
    "list": (0.15, "GET", "/api/predictions?limit=50", None, (200,)),
    "stats": (0.10, "GET", "/api/stats", None, (200,)),
    "job": (0.10, "GET", "/api/jobs/{job}", None, (200,)),
}


def processes(pid: int) -> dict[int, str]:
    """The process and its descendants: pid -> a short name (its command line's end)."""
    found, pending = {}, [pid]
    while pending:
        current = pending.pop()
        try:
            command = Path(f"/proc/{current}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found[current] = command.strip()[-60:]
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


class MemoryWatch:
    """Every 0.5 s, the resident memory of the server's processes: their total (``samples``) and, at the start of
    each minute, each one's (``by_minute``: pid -> MB), to tell a plateau from a leak."""

    def __init__(self, pid: int):
        self.pid, self.samples, self.by_minute, self.stop = pid, [], [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            by_process = {pid: rss_mb(pid) for pid in processes(self.pid)}
            self.samples.append(sum(by_process.values()))
            if (time.monotonic() - started) // 60 >= len(self.by_minute):
                self.by_minute.append(by_process)
            self.stop.wait(0.5)

    def close(self) -> list[float]:
        self.stop.set()
        self.thread.join()
        return self.samples


async def client(http: httpx.AsyncClient, job_id: int, pixels: list, until: float, results: dict) -> None:
    names = list(KINDS)
    weights = [KINDS[name][0] for name in names]
    rng = random.Random()
    while time.monotonic() < until:
        kind = rng.choices(names, weights)[0]
        _, method, path, body, right = KINDS[kind]
        json_body = None if body is None else {"pixels": pixels, **body}
        started = time.perf_counter()
        try:
            response = await http.request(method, path.format(job=job_id), json=json_body)
            ok = response.status_code in right
        except httpx.HTTPError:
            ok = False
        results[kind].append((time.perf_counter() - started, ok))


async def stream(url: str, until: float, counts: list) -> None:
    async with httpx.AsyncClient(timeout=None) as http:
        try:
            async with http.stream("GET", url) as response:
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        counts.append(1)
                    if time.monotonic() >= until:
                        break
        except httpx.HTTPError:
            counts.append(0)


async def level(server: ServerProcess, job_id: int, pixels: list, clients: int, seconds: float) -> dict:
    results = {kind: [] for kind in KINDS}
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    events: list = []
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
        streams = [stream(f"{server.url}/api/jobs/{job_id}/events", until, events)
                   for _ in range(max(1, clients // 16))]
        await asyncio.gather(*[client(http, job_id, pixels, until, results) for _ in range(clients)], *streams)
    return {"results": results, "events": len(events)}


def report(clients: int, seconds: float, outcome: dict, memory: list[float]) -> None:
    results = outcome["results"]
    total = sum(len(r) for r in results.values())
    errors = sum(not ok for r in results.values() for _, ok in r)
    print(f"{clients:>4} clients: {total / seconds:7.1f} requests/s, {errors} errors, {outcome['events']} stream "
          f"events, peak RSS {max(memory):,.0f} MB")
    for kind, timings in results.items():
        times = sorted(t for t, _ in timings)
        if times:
            print(f"       {kind:<8} {len(times):>6} requests  p50 {percentile(times, 50) * 1000:7.1f} ms  "
                  f"p99 {percentile(times, 99) * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="16,64,256")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--soak", type=float, default=0.0)
    args = parser.parse_args()
    env = {"CONVSCOPE_MAX_CONNECTIONS": "1000"}
    if os.environ.get("CONVSCOPE_MNIST_DIR"):
        env["CONVSCOPE_MNIST_DIR"] = os.environ["CONVSCOPE_MNIST_DIR"]
    with tempfile.TemporaryDirectory() as folder, ServerProcess(Path(folder) / "server", env=env) as server:
        pixels = server.request("GET", "/api/samples?digit=7&seed=0")[1]["pixels"]
        status, job = server.request("POST", "/api/jobs", {"epochs": 100, "batch_size": 16})
        assert status == 202, job
        while server.request("GET", f"/api/jobs/{job['id']}")[1]["status"] != "running":
            time.sleep(0.2)
        print(f"convscope serve, 2 workers, a training job running; {args.seconds:g} s per level")
        levels = [int(n) for n in args.levels.split(",")]
        if args.soak:
            names = processes(server.process.pid)
            watch = MemoryWatch(server.process.pid)
            outcome = asyncio.run(level(server, job["id"], pixels, levels[0], args.soak))
            memory = watch.close()
            report(levels[0], args.soak, outcome, memory)
            print(f"       soak: RSS {memory[0]:,.0f} MB at the start, {memory[-1]:,.0f} MB at the end; by process, "
                  "MB at the start of each minute and at the end:")
            for pid, name in names.items():
                print(f"         {pid:>7} " + " ".join(f"{minute.get(pid, 0):5.0f}" for minute in watch.by_minute)
                      + f" | {rss_mb(pid):5.0f}  {name}")
            return
        for clients in levels:
            watch = MemoryWatch(server.process.pid)
            outcome = asyncio.run(level(server, job["id"], pixels, clients, args.seconds))
            report(clients, args.seconds, outcome, watch.close())
        server.request("POST", f"/api/jobs/{job['id']}/cancel")


if __name__ == "__main__":
    main()
