"""Evaluations through the API: the datasets, a background evaluation on MNIST and on a server folder whose report
matches the engine's, its images, and the errors a user meets (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image

from conftest import write_shapes
from convscope.data.mnist import load_mnist
from convscope.data.photos import get_photo
from convscope.evaluation import MnistSet, evaluate_model, labelled_set_for
from convscope.models import load_model
from convscope.server.settings import ServerSettings
from convscope.settings import Settings
from server_fixtures import make_client


@pytest.fixture
def datasets_dir(tmp_path):
    """photos: two sample photos under ImageNet class names (one by WordNet id) and a broken file; shapes: classes
    no ImageNet model has; empty: no class folders."""
    root = tmp_path / "datasets"
    for folder, photo in (("espresso", "coffee"), ("n02123045", "chelsea")):  # n02123045: tabby
        (root / "photos" / folder).mkdir(parents=True)
        (root / "photos" / folder / f"{photo}.png").write_bytes(get_photo(photo).path.read_bytes())
    (root / "photos" / "n02123045" / "broken.jpg").write_bytes(b"not a jpeg")
    write_shapes(root / "shapes", per_class=2, size=32)
    (root / "empty").mkdir()
    (tmp_path / "outside.png").write_bytes(get_photo("coffee").path.read_bytes())
    (root / "labelled.csv").write_text("file,label\nphotos/espresso/coffee.png,espresso\n"
                                       "photos/n02123045/chelsea.png,tabby\n../outside.png,espresso\nmissing.png,tabby\n")
    return root


@pytest.fixture
def client(tmp_path, synthetic_mnist_dir, database_url, datasets_dir):
    settings = ServerSettings(data_dir=tmp_path / "data", mnist_dir=synthetic_mnist_dir, database_url=database_url,
                              datasets_dir=datasets_dir, workers=1)
    with make_client(settings) as test_client:
        yield test_client


def finished(client, evaluation_id: int, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/api/evaluations/{evaluation_id}").json()
        if body["status"] != "running":
            return body
        time.sleep(0.05)
    raise AssertionError(f"evaluation {evaluation_id} still running: {body}")


def test_datasets_are_listed_with_their_classes_or_what_is_wrong(client):
    items = {item["name"]: item for item in client.get("/api/datasets").json()["items"]}
    assert list(items) == ["mnist:test", "mnist:train", "folder:empty", "csv:labelled", "folder:photos",
                           "folder:shapes"]
    assert items["csv:labelled"]["classes"] == {"espresso": 1, "tabby": 1}  # the file outside is not counted
    assert (items["mnist:test"]["count"], items["mnist:train"]["count"]) == (200, 600)  # the synthetic set's
    assert items["folder:photos"]["classes"] == {"espresso": 1, "n02123045": 2}  # files, readable or not
    assert items["folder:shapes"]["count"] == 6
    assert items["folder:empty"]["count"] == 0 and "0 class sub-folder(s)" in items["folder:empty"]["problem"]
    assert "datasets" not in items["folder:empty"]["problem"].split(" ")[0]  # named, not the server's path


def test_an_mnist_evaluation_runs_in_the_background_and_reports_the_engines_figures(client, synthetic_mnist_dir):
    started = client.post("/api/evaluations", json={"model": "mnist_cnn", "dataset": "mnist:test",
                                                    "misclassified": 5})
    assert started.status_code == 202, started.text
    assert started.json()["status"] in ("running", "completed") and started.json()["total"] == 200
    body = finished(client, started.json()["id"])
    assert body["status"] == "completed" and body["done"] == 200 and body["version"] == 1
    report = body["report"]
    engine = evaluate_model(load_model("mnist_cnn").adapter,
                            MnistSet(load_mnist("test", Settings(mnist_dir=synthetic_mnist_dir)), "test"),
                            misclassified_limit=5).as_dict()
    assert report["metrics"]["confusion"] == engine["metrics"]["confusion"]
    assert report["metrics"]["ece"] == pytest.approx(engine["metrics"]["ece"])
    assert body["accuracy"] == engine["metrics"]["accuracy"]
    assert [e["source"] for e in report["misclassified"]] == [e["source"] for e in engine["misclassified"]]
    listed = client.get("/api/evaluations").json()
    assert listed["total"] == 1 and "report" not in listed["items"][0] and listed["items"][0]["id"] == body["id"]


def test_a_folder_evaluation_names_files_inside_the_folder_and_serves_them(client, datasets_dir):
    started = client.post("/api/evaluations", json={"model": "efficientnet_lite0", "dataset": "folder:photos"})
    assert started.status_code == 202, started.text
    body = finished(client, started.json()["id"])
    assert body["status"] == "completed", body
    report = body["report"]
    engine = evaluate_model(load_model("efficientnet_lite0").adapter,
                            labelled_set_for(load_model("efficientnet_lite0").adapter,
                                             folder=datasets_dir / "photos")).as_dict()
    # the reference figures: espresso right at .957; the tabby taken for a tiger cat
    assert report["metrics"]["accuracy"] == engine["metrics"]["accuracy"] == 0.5
    assert report["metrics"]["loss"] == pytest.approx(engine["metrics"]["loss"])
    assert report["misclassified"] == [{**engine["misclassified"][0], "source": "n02123045/chelsea.png"}]
    assert report["skipped"] == [{"file": "n02123045/broken.jpg", "reason": engine["skipped"][0]["reason"]}]
    assert report["dataset"]["source"] == "photos" and str(datasets_dir) not in str(body)

    image = client.get("/api/datasets/folder:photos/image", params={"file": "n02123045/chelsea.png"})
    assert image.status_code == 200
    assert image.content == (datasets_dir / "photos" / "n02123045" / "chelsea.png").read_bytes()
    for file in ("../shapes/circle/0.png", "n02123045/broken.jpg.txt", "/etc/passwd", "espresso"):
        assert client.get("/api/datasets/folder:photos/image", params={"file": file}).status_code == 404, file


def test_a_csv_dataset_names_files_inside_the_datasets_folder_only(client, datasets_dir):
    started = client.post("/api/evaluations", json={"model": "efficientnet_lite0", "dataset": "csv:labelled"})
    assert started.status_code == 202, started.text
    report = finished(client, started.json()["id"])["report"]
    assert report["metrics"]["count"] == 2 and report["metrics"]["accuracy"] == 0.5
    assert report["dataset"]["source"] == "labelled.csv"
    assert report["misclassified"][0]["source"] == "photos/n02123045/chelsea.png"
    assert sorted((s["file"], s["reason"]) for s in report["skipped"]) == [
        ("missing.png", "no such file"), ("outside.png", "outside the datasets folder")]
    image = client.get("/api/datasets/csv:labelled/image", params={"file": "photos/espresso/coffee.png"})
    assert image.status_code == 200 and image.content == (datasets_dir / "photos/espresso/coffee.png").read_bytes()
    assert client.get("/api/datasets/csv:labelled/image", params={"file": "../outside.png"}).status_code == 404


def test_an_evaluation_can_be_cancelled_and_a_lost_one_frees_the_slot(client, monkeypatch):
    from datetime import timedelta

    from convscope.server import evaluations
    from convscope.server.db.tables import Evaluation, utcnow
    # one image a batch and a check after each; the batches wait until the cancel has been answered, so it is
    # certain to arrive while the evaluation runs
    monkeypatch.setattr(evaluations, "SERVER_BATCH", 1)
    monkeypatch.setattr(evaluations, "PROGRESS_EVERY_S", 0.0)
    cancelled = threading.Event()
    real_evaluate = evaluations.evaluate_model

    def held_back(adapter, data, forward, **options):
        def waiting_forward(x):
            assert cancelled.wait(30)
            return forward(x)
        return real_evaluate(adapter, data, forward=waiting_forward, **options)

    monkeypatch.setattr(evaluations, "evaluate_model", held_back)
    started = client.post("/api/evaluations", json={"model": "mnist_cnn", "dataset": "mnist:train"}).json()
    assert client.post(f"/api/evaluations/{started['id']}/cancel").status_code == 202
    cancelled.set()
    final = finished(client, started["id"])
    assert final["status"] == "cancelled" and final["report"] is None and final["done"] < 600
    assert client.post(f"/api/evaluations/{started['id']}/cancel").status_code == 409
    # a row whose worker stopped writing long ago (another host, say): settled, and the slot is free again
    db = client.app.state.convscope.db
    with db.session(write=True) as session:
        row = Evaluation(model="mnist_cnn", version_id=1, dataset="mnist:test", status="running", done=0, total=1,
                         owner="elsewhere:1:1", slot=1, heartbeat_at=utcnow() - timedelta(minutes=10))
        session.add(row)
        session.flush()
        lost = row.id
    assert client.get(f"/api/evaluations/{lost}").json()["status"] == "failed"
    again = client.post("/api/evaluations", json={"model": "mnist_cnn", "dataset": "mnist:test"})
    assert again.status_code == 202, again.text
    finished(client, again.json()["id"])


@pytest.mark.parametrize("request_body, status, message", [
    ({"model": "efficientnet_lite0", "dataset": "folder:shapes"},
     422, "3 class(es) of shapes are not classes of the model: circle, square, triangle"),
    ({"model": "efficientnet_lite0", "dataset": "mnist:test"}, 422, "efficientnet_lite0 does not read MNIST digits"),
    ({"model": "mnist_cnn", "dataset": "folder:nope"}, 404, "no dataset 'folder:nope': GET /api/datasets lists them"),
    ({"model": "mnist_cnn", "dataset": "../etc"}, 404, "no dataset '../etc'"),
    ({"model": "nope", "dataset": "mnist:test"}, 404, "unknown model"),
    ({"model": "mnist_cnn", "version": 9, "dataset": "mnist:test"}, 404, "version 9"),
    ({"model": "mnist_cnn", "dataset": "mnist:test", "misclassified": 501}, 422, "less than or equal to 500"),
])
def test_mistakes_get_clear_answers(client, request_body, status, message):
    answer = client.post("/api/evaluations", json=request_body)
    assert answer.status_code == status and message in answer.json()["error"]["message"], answer.text
    assert client.get("/api/evaluations").json()["total"] == 0
    assert client.get("/api/evaluations/7").status_code == 404


def png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (value, value, value)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_folder_uploaded_in_several_requests_becomes_a_dataset_and_can_be_deleted(client, datasets_dir):
    first = client.post("/api/datasets/folder:uploaded/images", files=[
        ("files", ("dark/1.png", png_bytes(10), "image/png")), ("files", ("light/1.png", png_bytes(240), "image/png")),
        ("files", ("light/notes.png", b"not an image", "image/png")),
        ("files", ("../escape.png", png_bytes(10), "image/png")), ("files", ("flat.png", png_bytes(10), "image/png"))])
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["dataset"] == "folder:uploaded" and body["added"] == 2
    assert body["classes"] == {"dark": 1, "light": 1}
    assert [r["file"] for r in body["refused"]] == ["light/notes.png", "../escape.png", "flat.png"]
    assert "not an image" in body["refused"][0]["reason"]
    second = client.post("/api/datasets/folder:uploaded/images",
                         files=[("files", ("dark/2.png", png_bytes(20), "image/png"))]).json()
    assert second["classes"] == {"dark": 2, "light": 1}
    listed = {d["name"]: d for d in client.get("/api/datasets").json()["items"]}
    assert listed["folder:uploaded"]["classes"] == {"dark": 2, "light": 1}
    assert not (datasets_dir.parent / "escape.png").exists() and not (datasets_dir / "escape.png").exists()

    # a folder placed by hand takes no uploads and is not deleted through the API
    hand = client.post("/api/datasets/folder:photos/images", files=[("files", ("x/1.png", png_bytes(1), "image/png"))])
    assert hand.status_code == 409 and "placed on the server by hand" in hand.json()["error"]["message"]
    assert client.delete("/api/datasets/folder:photos").status_code == 409
    assert client.post("/api/datasets/mnist:test/images",
                       files=[("files", ("x/1.png", png_bytes(1), "image/png"))]).status_code == 404
    assert client.post("/api/datasets/folder:bad name/images",
                       files=[("files", ("x/1.png", png_bytes(1), "image/png"))]).status_code == 422
    assert client.delete("/api/datasets/folder:uploaded").status_code == 204
    assert not (datasets_dir / "uploaded").exists()
    assert client.delete("/api/datasets/folder:uploaded").status_code == 404
