"""Training jobs through the API: a real training process on the synthetic set, its live event stream, the new
version it registers, one job at a time, cancel, a crashing process, and the admin token."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
from fastapi.testclient import TestClient

from convscope.models import read_metadata
from convscope.server.app import create_app
from convscope.server.settings import ServerSettings

QUICK = {"epochs": 1, "batch_size": 64, "seed": 3}
LONG = {"epochs": 60, "batch_size": 16}


def read_events(client, job_id: int, after: int = 0) -> list[tuple[int | None, str, dict]]:
    events, current = [], {}
    with client.stream("GET", f"/api/jobs/{job_id}/events", params={"after": after}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(("event:", "data:", "id:")):
                key, _, value = line.partition(":")
                current[key] = value.strip()
            elif not line and "data" in current:
                events.append((int(current["id"]) if "id" in current else None, current.get("event", "message"),
                               json.loads(current["data"])))
                current = {}
    return events


def wait_for(client, job_id: int, statuses: tuple[str, ...], timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {statuses}: {job}")


def start(client, **config) -> dict:
    response = client.post("/api/jobs", json=config)
    assert response.status_code == 202, response.text
    return response.json()


def test_a_follower_behind_what_a_running_job_keeps_in_memory_reads_the_rest_from_the_database(client, monkeypatch):
    from convscope.server import jobs
    monkeypatch.setattr(jobs, "KEEP_EVENTS", 3)
    job = start(client, **LONG)
    feed = client.app.state.convscope.jobs._live[job["id"]].feed
    deadline = time.monotonic() + 60
    while feed.dropped < 5:  # more events than memory keeps: the first ones are only in the database now
        assert time.monotonic() < deadline, "the job did not get going"
        time.sleep(0.05)
    client.post(f"/api/jobs/{job['id']}/cancel")
    events = read_events(client, job["id"])  # from the running job's feed (the cancel takes a moment)
    assert [seq for seq, _, _ in events[:-1]] == list(range(1, len(events)))  # every one, in order, from 1
    assert events[0][1] == "started" and events[-1][1] == "end"


def test_a_training_process_that_cannot_start_fails_its_job_and_frees_the_slot(client, monkeypatch):
    manager = client.app.state.convscope.jobs

    def refuse(process):
        raise RuntimeError("spawn failed")

    monkeypatch.setattr(manager._context.Process, "start", refuse)
    job = start(client, **QUICK)
    body = client.get(f"/api/jobs/{job['id']}").json()
    assert body["status"] == "failed" and body["error"] == "the training process could not start: spawn failed"
    assert job["id"] not in manager._live  # nothing left for shutdown to join
    monkeypatch.undo()
    assert client.post(f"/api/jobs/{start(client, **QUICK)['id']}/cancel").status_code == 202  # the slot was free


def test_a_job_streams_its_events_and_registers_a_version_that_can_be_activated(client):
    job = start(client, **QUICK)
    assert job["status"] in ("queued", "running") and job["config"]["epochs"] == 1 and job["version"] is None
    events = read_events(client, job["id"])
    kinds = [kind for _, kind, _ in events]
    assert kinds[0] == "started" and kinds[-2:] == ["finished", "end"] and "progress" in kinds
    assert [seq for seq, _, _ in events[:-1]] == list(range(1, len(events)))  # ids to resume from
    epoch = next(data for _, kind, data in events if kind == "epoch")
    assert len(epoch["first_conv_weight"]) == 32 and len(epoch["first_conv_weight"][0][0]) == 3
    end = events[-1][2]
    assert end["status"] == "completed" and end["version"] == 2 and end["test_metrics"]["accuracy"] > 0.5

    done = client.get(f"/api/jobs/{job['id']}").json()
    assert epoch["val_accuracy"] == done["history"][0]["val_accuracy"] and done["test_metrics"] == end["test_metrics"]
    assert done["history"][0]["epoch"] == 1 and done["finished_at"] and done["error"] is None
    versions = client.get("/api/models/mnist_cnn").json()["versions"]
    assert [(v["version"], v["source"], v["active"], v["job_id"]) for v in versions] == [
        (1, "packaged", True, None), (2, "trained", False, job["id"])]
    assert versions[1]["details"]["training"]["config"]["seed"] == 3
    kept = client.app.state.convscope.settings.data_dir / "models" / f"mnist_cnn-job{job['id']}.safetensors"
    assert read_metadata(kept)["training"]["config"]["seed"] == 3  # a file for the CLI too
    # a TensorBoard log like a CLI run's, in <data dir>/runs; where it is stays out of what the API shows
    log = client.app.state.convscope.settings.data_dir / "runs" / f"mnist_cnn-job{job['id']}"
    assert read_metadata(kept)["training"]["config"]["tensorboard_dir"] == str(log)
    assert any(p.name.startswith("events.out.tfevents") for p in log.iterdir())
    assert "tensorboard_dir" not in versions[1]["details"]["training"]["config"] and "runs" not in json.dumps(done)
    data_dir = str(client.app.state.convscope.settings.data_dir)
    assert data_dir not in json.dumps(versions) and data_dir not in json.dumps(events)  # the command, the events

    pixels = client.get("/api/samples", params={"digit": 5, "seed": 0}).json()["pixels"]
    assert client.post("/api/predict", json={"pixels": pixels}).json()["version"] == 1
    assert client.post("/api/predict", json={"pixels": pixels, "version": 2}).json()["version"] == 2
    activated = client.put("/api/models/mnist_cnn/active", json={"version": 2}).json()
    assert activated["active_version"] == 2
    assert client.post("/api/predict", json={"pixels": pixels}).json()["version"] == 2
    assert client.get("/api/health").json()["models"]["mnist_cnn"] == 2
    assert client.put("/api/models/mnist_cnn/active", json={"version": 5}).status_code == 404

    resumed = read_events(client, job["id"], after=2)  # a client reconnecting after event 2 catches up
    assert resumed[0][0] == 3 and resumed[-1][1] == "end" and len(resumed) == len(events) - 2
    listed = client.get("/api/jobs").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]


def test_one_job_at_a_time_and_cancel_leaves_the_active_model(client):
    job = start(client, **LONG)
    second = client.post("/api/jobs", json=QUICK)
    assert second.status_code == 409
    assert second.json()["error"]["message"] == (f"training job {job['id']} is still running: one job at a time; "
                                                 "cancel it or wait")
    wait_for(client, job["id"], ("running",))
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["cancel_requested"] is True
    final = wait_for(client, job["id"], ("cancelled", "failed", "completed"))
    assert final["status"] == "cancelled" and final["version"] is None
    assert [v["version"] for v in client.get("/api/models/mnist_cnn").json()["versions"]] == [1]
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 409
    assert client.get("/api/health").json()["training_job"] is None


def test_a_crashing_training_process_fails_the_job_and_not_the_server(client):
    job = start(client, **LONG)
    wait_for(client, job["id"], ("running",))
    process = client.app.state.convscope.jobs._live[job["id"]].process
    os.kill(process.pid, signal.SIGKILL)
    final = wait_for(client, job["id"], ("failed",))
    assert final["error"] == "the training process stopped unexpectedly (exit code -9)"
    assert client.get("/api/health").json()["status"] == "ok"
    assert [v["version"] for v in client.get("/api/models/mnist_cnn").json()["versions"]] == [1]
    events = read_events(client, job["id"])
    assert events[-1][1] == "end" and events[-1][2]["status"] == "failed"
    again = start(client, **QUICK)  # the training slot was released
    wait_for(client, again["id"], ("completed",))


DIVERGING = {"epochs": 3, "batch_size": 64, "lr": 10, "optimizer": "sgd", "schedule": "constant", "seed": 0}


def test_a_diverging_job_is_stopped_as_diverged_and_makes_no_version(client):
    job = start(client, **DIVERGING)  # plain SGD at lr 10: the loss is NaN within the first steps
    final = wait_for(client, job["id"], ("completed", "failed", "cancelled", "diverged"))
    assert final["status"] == "diverged" and final["version"] is None
    assert final["error"].startswith("the loss became NaN or infinite at step ")
    assert "no model was saved" in final["error"]
    assert [v["version"] for v in client.get("/api/models/mnist_cnn").json()["versions"]] == [1]
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as response:
        raw = "".join(response.iter_text())
    assert not re.search(r"[:,\[]\s*-?(NaN|Infinity)", raw)  # JSON has neither: a browser's JSON.parse throws
    events = read_events(client, job["id"])
    total = events[0][2]["total_steps"]
    training = [data for _, kind, data in events if kind in ("progress", "epoch")]
    # the event that stopped it carries a NaN or infinity (as null): its loss, its weights, or its probe digits'
    # confidences (earlier events may still be finite, if huge)
    assert "null" in json.dumps(training[-1])
    assert training[-1]["step"] < total  # stopped there, not trained to the end
    assert events[-1][1] == "end" and events[-1][2]["status"] == "diverged"


def test_a_version_with_nan_weights_cannot_be_activated(client, tmp_path):
    import torch

    from convscope.models import get_spec, save_checkpoint

    model = get_spec("mnist_cnn").build()
    with torch.no_grad():
        model.conv1.weight[0, 0, 0, 0] = float("nan")
    path = save_checkpoint(tmp_path / "nan.safetensors", model, "mnist_cnn")
    client.app.state.convscope.models.register("mnist_cnn", path.read_bytes())  # as an older server stored one
    refused = client.put("/api/models/mnist_cnn/active", json={"version": 2})
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == ("mnist_cnn v2 has NaN or infinite weights (its training "
                                                  "diverged): it cannot be activated")
    assert client.get("/api/models/mnist_cnn").json()["active_version"] == 1


def test_invalid_job_configs_are_422(client):
    for config in ({"epochs": 0}, {"optimizer": "rmsprop"}, {"validation_split": 1.0}, {"batch_size": 0},
                   {"lr": -1}, {"learning_rate": 0.1}):
        response = client.post("/api/jobs", json=config)
        assert response.status_code == 422, config
    assert client.post("/api/jobs", json={"model": "resnet"}).status_code == 404
    assert client.get("/api/jobs/99").status_code == 404
    assert client.get("/api/jobs/99/events").status_code == 404


@pytest.fixture
def exposed_client(tmp_path, synthetic_mnist_dir):
    settings = ServerSettings(host="0.0.0.0", admin_token="s3cret", data_dir=tmp_path / "data",
                              mnist_dir=synthetic_mnist_dir)
    with TestClient(create_app(settings), base_url="http://192.0.2.10") as client:
        yield client


def test_admin_actions_need_the_token_off_loopback(exposed_client):
    client = exposed_client
    assert client.post("/api/jobs", json=QUICK).status_code == 401
    wrong = client.post("/api/jobs", json=QUICK, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"]["message"] == "wrong admin token"
    assert client.put("/api/models/mnist_cnn/active", json={"version": 1}).status_code == 401
    token = {"authorization": "Bearer s3cret"}
    assert client.put("/api/models/mnist_cnn/active", json={"version": 1}, headers=token).status_code == 200
    pixels = client.get("/api/samples", params={"digit": 1}).json()["pixels"]
    saved = client.post("/api/predictions", json={"pixels": pixels}).json()  # not an admin action
    assert client.delete(f"/api/predictions/{saved['id']}").status_code == 401
    assert client.delete(f"/api/predictions/{saved['id']}", headers=token).status_code == 204


def test_a_token_is_generated_when_exposed_without_one(tmp_path):
    app = create_app(ServerSettings(host="0.0.0.0", data_dir=tmp_path))
    assert len(app.state.settings.admin_token) >= 32
    assert create_app(ServerSettings(data_dir=tmp_path)).state.settings.admin_token is None  # loopback: open


def test_a_job_left_running_by_a_dead_server_is_failed_at_the_next_start(settings):
    from datetime import datetime, timedelta, timezone

    from convscope.server.db.database import Database
    from convscope.server.db.tables import TrainingJob

    db = Database(settings.database)  # the settings fixture's: migrated already
    with db.session(write=True) as session:
        session.add(TrainingJob(model="mnist_cnn", status="running", slot=1, config={}, history=[],
                                heartbeat_at=datetime.now(timezone.utc) - timedelta(minutes=5)))
    db.dispose()
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        job = client.get("/api/jobs/1").json()
        assert job["status"] == "failed"
        assert job["error"] == "interrupted: the server stopped while this job was running"
        assert client.get("/api/health").json()["training_job"] is None
