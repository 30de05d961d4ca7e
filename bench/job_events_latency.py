"""How long a training job's events take to reach Server-Sent-Events clients (issue 5 target: <= 200 ms).

A real `convscope serve` with two workers; a short training job; several SSE connections at once (so some are
served by the worker running the job, which pushes events from memory, and some by the other, which reads them
from the database). Each event carries `emitted_at` (when the training process sent it); latency = arrival -
emitted_at, same machine clock. Prints p50 / p95 / max per connection and overall.
"""

from __future__ import annotations

import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import median, percentile

from convscope.testing.server import ServerProcess

CONNECTIONS = 6


def listen(server: ServerProcess, job_id: int, latencies: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    connection.request("GET", f"/api/jobs/{job_id}/events")
    response = connection.getresponse()
    for raw in response:
        line = raw.decode().strip()
        if line.startswith("data:"):
            data = json.loads(line[5:])
            if "emitted_at" in data:
                latencies.append((time.time() - data["emitted_at"]) * 1000)
            elif "status" in data and "config" in data:  # the closing "end" event
                break
    connection.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, ServerProcess(Path(folder),
                                                                env={"CONVSCOPE_WORKERS": "2"}) as server:
        status, job = server.request("POST", "/api/jobs", {"epochs": 0.5, "batch_size": 128})
        assert status == 202, job
        per_connection = [[] for _ in range(CONNECTIONS)]
        threads = [threading.Thread(target=listen, args=(server, job["id"], latencies))
                   for latencies in per_connection]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for i, latencies in enumerate(per_connection):
            print(f"connection {i}: {len(latencies)} events, p50 {median(latencies):.1f} ms, "
                  f"p95 {percentile(latencies, 95):.1f} ms, max {max(latencies):.1f} ms")
        everything = [t for latencies in per_connection for t in latencies]
        print(f"all: {len(everything)} events, p50 {median(everything):.1f} ms, "
              f"p95 {percentile(everything, 95):.1f} ms, max {max(everything):.1f} ms")
    print(f"(python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
