"""A real `convscope serve` (two worker processes, real sockets): many concurrent clients while a training job
runs, a kill -9 during a burst of saves, and streamed work stopped when its client hangs up."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from conftest import synthetic_digits
from convscope.inspect import Inspector
from convscope.models import load_model
from convscope.testing.server import ServerProcess

CLIENTS = 24
ROUNDS = 5


@pytest.fixture
def server(tmp_path, synthetic_mnist_dir):
    with ServerProcess(tmp_path / "data", env={"CONVSCOPE_MNIST_DIR": str(synthetic_mnist_dir),
                                               "CONVSCOPE_WORKERS": "2"}) as running:
        yield running


def test_concurrent_clients_get_their_own_correct_answers_while_training(server):
    images, labels = synthetic_digits(CLIENTS, seed=7)
    inspector = Inspector(load_model("mnist_cnn").adapter)
    expected = [inspector.inspect_prepared(torch.from_numpy(image)) for image in images]
    status, job = server.request("POST", "/api/jobs", {"epochs": 100, "batch_size": 16})
    assert status == 202, job
    deadline = time.monotonic() + 60
    while True:  # until it has taken its first steps
        started = server.request("GET", f"/api/jobs/{job['id']}")[1]
        if started["status"] == "running" and started["progress"]:
            break
        assert started["status"] in ("queued", "running") and time.monotonic() < deadline, started
        time.sleep(0.05)

    def client(i: int) -> list[str]:
        problems, pixels = [], images[i].tolist()
        for round_ in range(ROUNDS):
            status, body = server.request("POST", "/api/predict", {"pixels": pixels, "layers": ["fc2"]})
            if status != 200 or body["predicted"] != expected[i].predicted or not torch.allclose(
                    torch.tensor(body["probabilities"]), expected[i].probabilities, atol=1e-5):
                problems.append(f"client {i} predict {status}: {str(body)[:200]}")
            status, saved = server.request("POST", "/api/predictions", {"pixels": pixels})
            if status != 201 or saved["predicted"] != expected[i].predicted:
                problems.append(f"client {i} save {status}: {str(saved)[:200]}")
                continue
            reason = f"client {i} round {round_} <b>"
            status, report = server.request("POST", f"/api/predictions/{saved['id']}/reports",
                                            {"correct_label": (expected[i].predicted + 1) % 10, "reason": reason})
            if status != 201 or report["reason"] != reason or report["prediction_id"] != saved["id"]:
                problems.append(f"client {i} report {status}: {str(report)[:200]}")
            status, again = server.request("GET", f"/api/predictions/{saved['id']}")
            if status != 200 or again["reports"][-1]["reason"] != reason:
                problems.append(f"client {i} get {status}")
        return problems

    with ThreadPoolExecutor(CLIENTS) as pool:
        problems = [p for result in pool.map(client, range(CLIENTS)) for p in result]
    assert problems == []
    status, running = server.request("GET", f"/api/jobs/{job['id']}")
    # the burst overlapped the training: it was running before and after, and learned meanwhile
    assert running["status"] == "running" and running["progress"]["step"] > started["progress"]["step"]
    server.request("POST", f"/api/jobs/{job['id']}/cancel")
    status, stats = server.request("GET", "/api/stats")
    assert stats["predictions"] == CLIENTS * ROUNDS and stats["reports"]["total"] == CLIENTS * ROUNDS


def test_every_answered_save_survives_kill_9(tmp_path, synthetic_mnist_dir):
    env = {"CONVSCOPE_MNIST_DIR": str(synthetic_mnist_dir), "CONVSCOPE_WORKERS": "2"}
    server = ServerProcess(tmp_path / "data", env=env)
    server.start()
    images, _ = synthetic_digits(8, seed=11)
    answered: dict[int, int] = {}  # id -> predicted, for every save that got a 2xx
    lock, stop = threading.Lock(), threading.Event()

    def saver(i: int) -> None:
        while not stop.is_set():
            try:
                status, body = server.request("POST", "/api/predictions", {"pixels": images[i].tolist()}, timeout=5)
            except OSError:  # the server died mid-request: no answer, no promise
                return
            if 200 <= status < 300:
                with lock:
                    answered[body["id"]] = body["predicted"]

    threads = [threading.Thread(target=saver, args=(i,), daemon=True) for i in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(answered) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL, mid-burst
    stop.set()
    for thread in threads:
        thread.join()
    assert len(answered) >= 60, f"only {len(answered)} saves were answered in a minute"

    database = tmp_path / "data" / "convscope.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    restarted = ServerProcess(tmp_path / "data", env=env)
    restarted.start()
    try:
        status, listing = restarted.request("GET", "/api/predictions?limit=500")
        stored = {item["id"]: item["predicted"] for item in listing["items"]}
        assert len(answered) >= 60 and all(stored.get(i) == p for i, p in answered.items())
        status, one = restarted.request("GET", f"/api/predictions/{max(answered)}")
        assert status == 200 and one["image"].startswith("data:image/png;base64,")
    finally:
        restarted.stop()
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_job_whose_server_was_killed_is_settled_at_once_by_the_next_server(tmp_path, synthetic_mnist_dir):
    """kill -9 while training; a server started on the same data a moment later says the job was interrupted and
    takes a new one, without waiting for the old job's heartbeat to go stale (15 s)."""
    env = {"CONVSCOPE_MNIST_DIR": str(synthetic_mnist_dir), "CONVSCOPE_WORKERS": "2"}
    server = ServerProcess(tmp_path / "data", env=env)
    server.start()
    try:
        status, job = server.request("POST", "/api/jobs", {"epochs": 100, "batch_size": 8})
        assert status == 202, job
        deadline = time.monotonic() + 60
        while server.request("GET", f"/api/jobs/{job['id']}")[1]["status"] != "running":
            assert time.monotonic() < deadline, "the job never started running"
            time.sleep(0.1)
    finally:
        server.kill()  # SIGKILL to the server, its workers and the training process: no shutdown code runs
    killed_at = time.monotonic()
    restarted = ServerProcess(tmp_path / "data", env=env)
    restarted.start()
    try:
        status, old = restarted.request("GET", f"/api/jobs/{job['id']}")
        assert status == 200 and old["status"] == "failed" and old["error"].startswith("interrupted")
        status, new = restarted.request("POST", "/api/jobs", {"epochs": 0.05})
        assert status == 202, new  # the training slot is free again
        assert time.monotonic() - killed_at < 15  # sooner than a stale heartbeat could have told
        status, cancelled = restarted.request("POST", f"/api/jobs/{job['id']}/cancel")
        assert status == 409 and "already ended (failed)" in cancelled["error"]["message"]
    finally:
        restarted.stop()


def test_streamed_work_stops_when_its_client_hangs_up(tmp_path, synthetic_mnist_dir):
    """Occlusion's sanity check over 32 digits takes seconds; the client reads the first progress line and closes
    the socket: the server stops the work (and says so in its log: one worker, whose log is the server's)."""
    with ServerProcess(tmp_path / "data", env={"CONVSCOPE_MNIST_DIR": str(synthetic_mnist_dir),
                                               "CONVSCOPE_WORKERS": "1"}) as server:
        hang_up_after_the_first_line(server)
        deadline = time.monotonic() + 30
        while "streamed work stopped: its client went away" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-2000:]
            time.sleep(0.1)


def hang_up_after_the_first_line(server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("POST", "/api/sanity", json.dumps({"method": "occlusion", "images": 32}),
                       {"content-type": "application/json", "accept": "application/x-ndjson"})
    answer = connection.getresponse()
    assert answer.status == 200 and "progress" in json.loads(answer.readline())
    connection.close()
