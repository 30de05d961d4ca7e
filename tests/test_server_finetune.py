"""Fine-tuning jobs through the API: a real job on a server folder makes a new model that answers like any other,
other workers find it, and the mistakes a user can make get clear answers."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from conftest import SHAPES, write_shapes
from convscope.inspect import Inspector
from convscope.models import MODELS, load_checkpoint
from convscope.server.settings import ServerSettings
from server_fixtures import make_client
from test_server_jobs import read_events, wait_for

pytestmark = pytest.mark.usefixtures("restore_registry")  # the job registers its model in this process too


@pytest.fixture
def client(tmp_path, synthetic_mnist_dir):
    root = tmp_path / "datasets"
    write_shapes(root / "shapes", per_class=6, size=28)
    write_shapes(root / "one", per_class=2, size=28)
    for shape in SHAPES[1:]:
        for file in (root / "one" / shape).iterdir():
            file.unlink()
        (root / "one" / shape).rmdir()
    settings = ServerSettings(data_dir=tmp_path / "data", mnist_dir=synthetic_mnist_dir, datasets_dir=root, workers=1)
    with make_client(settings) as test_client:
        yield test_client


def data_url(path) -> str:
    buffer = io.BytesIO()
    Image.open(path).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.slow
def test_a_finetune_job_makes_a_new_model_that_answers_like_any_other(client):
    started = client.post("/api/jobs/finetune", json={"base": "mnist_cnn", "dataset": "folder:shapes",
                                                       "name": "shapes", "epochs": 4, "patience": 10})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["model"] == "shapes" and job["config"]["kind"] == "finetune"
    assert job["config"]["dataset"] == "folder:shapes" and "datasets" not in json.dumps(job)  # no server paths
    events = read_events(client, job["id"])
    kinds = [kind for _, kind, _ in events]
    assert kinds[:2] == ["preparing", "preparing"] and "started" in kinds and kinds[-2:] == ["finished", "end"]
    assert kinds.count("epoch") == 4
    final = wait_for(client, job["id"], ("completed", "stopped_early", "failed", "cancelled"))
    assert final["status"] == "completed" and final["version"] == 1 and len(final["history"]) == 4

    model = client.get("/api/models/shapes").json()
    assert model["class_names"] == list(SHAPES) and model["dataset"] == "finetuned"
    assert model["active_version"] == 1 and model["versions"][0]["source"] == "finetuned"
    assert model["versions"][0]["details"]["finetuned"]["base"] == "mnist_cnn"
    settings = client.app.state.convscope.settings
    for path in (settings.data_dir, settings.datasets_dir):  # no server paths, in the model or the job's events
        assert str(path) not in json.dumps(model) and str(path) not in json.dumps(events)
    folder = client.app.state.convscope.settings.datasets_dir / "shapes"
    answer = client.post("/api/predict", json={"image": data_url(folder / "square" / "0.png"), "model": "shapes"})
    assert answer.status_code == 200, answer.text
    # the answer is the saved model's own, run by the engine from its file
    kept = client.app.state.convscope.jobs.models_dir / f"shapes-job{job['id']}.safetensors"
    adapter = load_checkpoint(kept).adapter
    engine = Inspector(adapter).inspect_prepared(adapter.preprocessing.prepare(Image.open(folder / "square" /
                                                                                           "0.png"))[0])
    assert answer.json()["predicted_class"] == SHAPES[engine.predicted]
    assert answer.json()["probabilities"] == pytest.approx(engine.probabilities.tolist(), abs=1e-5)

    del MODELS["shapes"]  # as in a worker that did not run the job: it finds the model in the database
    assert client.get("/api/models/shapes").status_code == 200 and "shapes" in MODELS
    again = client.post("/api/jobs/finetune", json={"base": "mnist_cnn", "dataset": "folder:shapes", "name": "shapes"})
    assert again.status_code == 409 and "already a model called 'shapes'" in again.json()["error"]["message"]


@pytest.mark.parametrize("body, status, message", [
    ({"dataset": "folder:shapes", "name": "mnist_cnn", "base": "mnist_cnn"}, 409, "already a model called"),
    ({"dataset": "mnist:test", "name": "x", "base": "mnist_cnn"}, 422, "not an image folder"),
    ({"dataset": "folder:one", "name": "x", "base": "mnist_cnn"}, 422, "one has 1 class sub-folder(s)"),
    ({"dataset": "folder:nope", "name": "x", "base": "mnist_cnn"}, 404, "no dataset 'folder:nope'"),
    ({"dataset": "folder:shapes", "name": "x", "base": "nope"}, 404, "'nope' cannot be fine-tuned here"),
    ({"dataset": "folder:shapes", "name": "a b", "base": "mnist_cnn"}, 422, "body.name"),
    ({"dataset": "folder:shapes", "name": "..", "base": "mnist_cnn"}, 422, "body.name"),
])
def test_finetune_mistakes_get_clear_answers(client, body, status, message):
    answer = client.post("/api/jobs/finetune", json=body)
    assert answer.status_code == status and message in json.dumps(answer.json()), answer.text
    assert client.get("/api/jobs").json()["total"] == 0
