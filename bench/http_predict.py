"""HTTP benchmark of a real `convscope serve` on loopback (SQLite in a temporary folder).

- start-up: from launching the process to the first answered prediction (median of 3 starts)
- sequential: POST /api/predict with every layer's activations and Grad-CAM for mnist_cnn, one keep-alive
  connection, p50 / p99 (the input is a 280x280 canvas drawing as a data URL, so preprocessing is included)
- concurrent: wrk with 16 connections for 20 s (Debian's `wrk`; skipped with a message when it is missing)

Targets (issue 3): p50 <= 5 ms, p99 <= 25 ms; >= 400 requests/s with 16 clients, zero errors; start-up <= 3 s.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import median, percentile

from convscope.data.mnist import sample_digit
from convscope.testing.server import ServerProcess


def canvas_data_url(digit: int = 7) -> str:
    """An MNIST test digit drawn the way a canvas holds it: dark strokes on a transparent 280x280 field."""
    ink = Image.fromarray(sample_digit(digit, "test", seed=0).image.numpy()).resize((200, 200), Image.BILINEAR)
    alpha = Image.new("L", (280, 280))
    alpha.paste(ink, (40, 40))
    canvas = Image.new("RGBA", (280, 280))
    canvas.putalpha(alpha)
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def time_to_first_answer(body: bytes, runs: int = 3) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as folder:
            server = ServerProcess(Path(folder))
            started = time.perf_counter()
            server.start()
            status, _ = server.request("POST", "/api/predict", json.loads(body))
            assert status == 200
            times.append(time.perf_counter() - started)
            server.stop()
    return times


def sequential(server: ServerProcess, body: bytes, requests: int) -> tuple[list[float], int]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port)
    headers = {"content-type": "application/json"}
    times, size = [], 0
    for i in range(requests + 50):
        started = time.perf_counter()
        connection.request("POST", "/api/predict", body, headers)
        response = connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        assert response.status == 200, data[:300]
        size = len(data)
        if i >= 50:  # warm-up
            times.append(elapsed)
    connection.close()
    return times, size


def concurrent(server: ServerProcess, body: bytes, connections: int, seconds: int) -> str:
    if shutil.which("wrk") is None:
        return "wrk not installed (apt-get install wrk): concurrent run skipped"
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        body_file = Path(folder) / "body.json"
        body_file.write_bytes(body)
        script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*a")\nf:close()\n')
        result = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                                 server.url + "/api/predict"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", result).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", result)
    socket_errors = re.search(r"Socket errors: (.*)", result)
    latency = {q: re.search(rf"\s{q}%\s+(\S+)", result).group(1) for q in ("50", "99")}
    return (f"{connections} connections, {seconds} s: {rps:,.0f} requests/s, latency p50 {latency['50']} "
            f"p99 {latency['99']}, non-2xx {non_2xx.group(1) if non_2xx else 0}, "
            f"socket errors {socket_errors.group(1) if socket_errors else 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    drawing = json.dumps({"image": canvas_data_url(), "cam_method": "gradcam"}).encode()
    pixels = json.dumps({"pixels": sample_digit(7, "test", seed=0).image.tolist()}).encode()
    startup = time_to_first_answer(drawing)
    print(f"start-up to first answer: median {median(startup):.2f} s ({', '.join(f'{t:.2f}' for t in startup)})")
    with tempfile.TemporaryDirectory() as folder, ServerProcess(Path(folder)) as server:
        for name, body in (("canvas data URL", drawing), ("28x28 pixels", pixels)):
            times, size = sequential(server, body, args.requests)
            ms = [t * 1000 for t in times]
            print(f"sequential predict ({name}, every layer + Grad-CAM, {size:,} byte answer): "
                  f"p50 {percentile(ms, 50):.2f} ms, p99 {percentile(ms, 99):.2f} ms over {len(ms)} requests")
        print("concurrent predict (canvas data URL):", concurrent(server, drawing, args.connections, args.seconds))
    print(f"(python {sys.version.split()[0]}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
