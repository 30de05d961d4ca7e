"""The attribution, sanity-check and faithfulness API against the engine's own answers, plain and streamed."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
import torch

from convscope.errors import ModelError
from convscope.inspect.attribution import (ATTRIBUTIONS, Cancelled, attribute, cascading_randomisation,
                                           data_randomisation, deletion_insertion)
from convscope.inspect.attribution.sanity import sanity_inputs
from convscope.models import load_model
from convscope.training import TrainConfig, train
from convscope.server.encoding import decode_tensor


def sample_pixels(client, digit: int) -> list[list[int]]:
    return client.get("/api/samples", params={"digit": digit, "seed": 0}).json()["pixels"]


def test_methods_are_listed_with_what_they_cost(client):
    listed = client.get("/api/attributions").json()["methods"]
    assert [m["name"] for m in listed] == list(ATTRIBUTIONS)
    ig = next(m for m in listed if m["name"] == "integrated_gradients")
    assert ig["slow"] is True and ig["signed"] is True and ig["cost"].startswith("50 forwards and backwards")


def test_several_methods_side_by_side_are_the_engines_maps_with_their_raw_values(client):
    methods = ["gradcam", "integrated_gradients", "guided_backprop"]
    answer = client.post("/api/attributions", json={"pixels": sample_pixels(client, 3), "methods": methods})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    x = decode_tensor(body["input"])[None]  # the model input the maps explain
    model = load_model("mnist_cnn").adapter
    assert [m["name"] for m in body["maps"]] == methods and body["target_class"] == str(body["target"])
    for shown in body["maps"]:
        engine = attribute(model, x, shown["name"], body["target"]).values
        values = decode_tensor(shown["values"])
        level = float(engine.max() - engine.min()) / 255
        assert values.shape == (28, 28) and float((values - engine).abs().max()) <= level * 0.51 + 1e-5
        assert [shown["values"]["min"], shown["values"]["max"]] == pytest.approx(
            [float(engine.min()), float(engine.max())], rel=1e-5, abs=1e-9)
    assert body["range"] == {"min": min(m["values"]["min"] for m in body["maps"]),
                             "max": max(m["values"]["max"] for m in body["maps"])}
    assert body["maps"][0]["layer"] == "relu2" and body["maps"][1]["forward_passes"] == 50
    explained = client.post("/api/attributions", json={"pixels": sample_pixels(client, 3), "methods": ["saliency"],
                                                       "target": 5}).json()
    assert explained["target"] == 5 and torch.allclose(
        decode_tensor(explained["maps"][0]["values"]), attribute(model, x, "saliency", 5).values, atol=0.01)


def test_a_request_that_would_hold_the_worker_for_minutes_is_refused(client, monkeypatch):
    from convscope.server.routes import attributions
    monkeypatch.setattr(attributions, "MOST_MACS", 50_000_000)  # 10 mnist_cnn saliency maps' worth
    pixels = sample_pixels(client, 1)
    assert client.post("/api/attributions", json={"pixels": pixels, "methods": ["saliency"]}).status_code == 200
    costly = client.post("/api/attributions", json={"pixels": pixels, "methods": ["saliency", "smoothgrad"]})
    assert costly.status_code == 422 and "ask for fewer or cheaper methods" in costly.text


def test_attribution_mistakes_are_422_with_what_to_do(client):
    pixels = sample_pixels(client, 1)
    for body, message in [({"methods": ["lime"]}, "methods"), ({"methods": ["saliency", "saliency"]},
                                                                "name each method once"),
                          ({"methods": []}, "methods"),
                          ({"methods": ["gradcam"], "layer": "fc1"}, "needs a layer with a spatial"),
                          ({"methods": ["gradcam"], "model": "mnist_mlp"}, "this model has none"),
                          ({"methods": ["saliency"], "target": 10}, "target class must be in 0-9")]:
        answer = client.post("/api/attributions", json={"pixels": pixels, **body})
        assert answer.status_code == 422 and message in answer.text, (body, answer.text)


def test_a_sanity_check_is_the_engines_and_is_kept(client):
    asked = {"method": "gradcam", "images": 2}
    first = client.post("/api/sanity", json=asked)
    assert first.status_code == 200, first.text
    body = first.json()
    settings = client.app.state.convscope.settings.engine_settings()
    model = load_model("mnist_cnn").adapter
    engine = cascading_randomisation(model, sanity_inputs(model, "mnist", 2, settings), "gradcam").as_dict()
    assert {key: body[key] for key in engine} == engine and body["cached"] is False
    assert (body["model"], body["version"], body["images"]) == ("mnist_cnn", 1, 2) and body["outcome"] in (
        "passes", "fails")
    again = client.post("/api/sanity", json=asked).json()
    assert again == {**body, "cached": True}
    assert client.post("/api/sanity", json={"method": "lime"}).status_code == 422
    costly = client.post("/api/sanity", json={"model": "efficientnet_lite0", "method": "integrated_gradients",
                                              "images": 4})
    assert costly.status_code == 422 and "ask for fewer images or a method with fewer passes" in costly.text
    assert client.post("/api/sanity", json={"method": "gradcam", "model": "nope"}).status_code == 404


def streamed(client, path: str, body: dict) -> list[dict]:
    """The NDJSON lines of a streamed answer."""
    with client.stream("POST", path, json=body, headers={"accept": "application/x-ndjson"}) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in answer.iter_lines() if line]


def test_slow_methods_stream_their_progress_then_the_same_answer(client):
    body = {"pixels": sample_pixels(client, 7), "methods": ["integrated_gradients", "smoothgrad"]}
    lines = streamed(client, "/api/attributions", body)
    progress = [line["progress"] for line in lines[:-1]]
    # Integrated Gradients' 50 inputs in chunks of 16, then SmoothGrad's 25, counted as one request of 75
    assert [p["total"] for p in progress] == [75] * len(progress)
    assert [p["done"] for p in progress] == [16, 32, 48, 50, 66, 75]
    def timeless(answer: dict) -> dict:
        return {**answer, "maps": [{**m, "seconds": None} for m in answer["maps"]]}

    assert timeless(lines[-1]["result"]) == timeless(client.post("/api/attributions", json=body).json())


def test_a_streamed_failure_is_a_line_and_a_bad_request_is_still_refused_at_once(client, monkeypatch):
    from convscope.inspect.attribution import gradients

    def broken(*args, **kwargs):
        raise ModelError("this input cannot be explained")

    monkeypatch.setattr(gradients.Saliency, "explain", broken)
    lines = streamed(client, "/api/attributions", {"pixels": sample_pixels(client, 1), "methods": ["saliency"]})
    assert lines == [{"error": {"status": 422, "message": "this input cannot be explained"}}]
    refused = client.post("/api/attributions", json={"pixels": sample_pixels(client, 1), "methods": ["gradcam"],
                                                     "layer": "fc1"}, headers={"accept": "application/x-ndjson"})
    assert refused.status_code == 422 and "needs a layer with a spatial" in refused.json()["error"]["message"]


def test_a_client_that_goes_away_stops_the_work(client):
    from convscope.server.progress_stream import progress_lines
    state = client.app.state.convscope
    seen = []

    def work(progress, cancelled):
        for step in range(1000):
            seen.append(step)
            if cancelled():
                raise Cancelled("stopped")
            progress(step + 1, 1000)
            time.sleep(0.002)
        return {"finished": True}

    async def read_two_lines_and_leave():
        lines = progress_lines(state, work)
        first = [await anext(lines), await anext(lines)]
        await lines.aclose()  # what Starlette does when the client disconnects
        return first

    first = client.portal.call(read_two_lines_and_leave)
    assert json.loads(first[0]) == {"progress": {"done": 1, "total": 1000}}
    assert state.inference.submit(lambda: len(seen)).result() < 1000  # the thread stopped the work, then ran this


def test_faithfulness_is_the_engines_curves_and_is_kept(client):
    asked = {"method": "saliency", "images": 3}
    body = client.post("/api/faithfulness", json=asked).json()
    settings = client.app.state.convscope.settings.engine_settings()
    model = load_model("mnist_cnn").adapter
    engine = deletion_insertion(model, sanity_inputs(model, "mnist", 3, settings), "saliency").as_dict()
    assert {key: body[key] for key in engine} == engine and body["cached"] is False
    assert len(body["deletion"]["scores"]) == 17 and body["deletion"]["fractions"][-1] == 1.0
    assert client.post("/api/faithfulness", json=asked).json() == {**body, "cached": True}
    lines = streamed(client, "/api/faithfulness", {**asked, "images": 2})
    assert [line["progress"] for line in lines[:-1]] == [{"done": 1, "total": 2}, {"done": 2, "total": 2}]
    assert lines[-1]["result"]["images"] == 2


def test_the_data_randomisation_check_compares_with_a_version_trained_on_shuffled_labels(client, tmp_path):
    state = client.app.state.convscope
    engine_settings = state.settings.engine_settings()
    out = tmp_path / "shuffled.safetensors"
    train(TrainConfig(epochs=0.3, batch_size=32, shuffle_labels=True, evaluate_test=False, validation_split=0),
          out=out, settings=engine_settings)
    shuffled = state.models.register("mnist_cnn", out.read_bytes())
    versions = client.get("/api/models/mnist_cnn").json()["versions"]
    assert [(v["version"], v["shuffled_labels"]) for v in versions] == [(1, False), (shuffled.version, True)]
    body = client.post("/api/sanity", json={"method": "gradcam", "images": 2,
                                            "against_version": shuffled.version}).json()
    model = load_model("mnist_cnn").adapter
    engine = data_randomisation(model, state.models.load(shuffled).checkpoint.adapter,
                                sanity_inputs(model, "mnist", 2, engine_settings), "gradcam").as_dict()
    engine["against"] = f"mnist_cnn v{shuffled.version}"
    assert {key: body[key] for key in engine} == engine
    assert body["test"] == "data" and body["outcome"] in ("passes", "fails")
    same = client.post("/api/sanity", json={"method": "gradcam", "against_version": 1})
    assert same.status_code == 422 and "trained on shuffled labels" in same.text


def test_exact_values_are_the_engines_float32_map(client):
    answer = client.post("/api/attributions", json={"pixels": sample_pixels(client, 2), "methods": ["saliency"],
                                                    "exact": True}).json()
    exact = answer["maps"][0]["exact"]
    values = np.frombuffer(base64.b64decode(exact["data"]), "<f4").reshape(exact["shape"])
    x = decode_tensor(answer["input"])[None]
    engine = attribute(load_model("mnist_cnn").adapter, x, "saliency", answer["target"]).values
    assert exact["encoding"] == "float32-le-base64" and np.array_equal(values, engine.numpy())


def test_the_arrays_route_gives_each_map_as_numpy_arrays(client):
    pixels = sample_pixels(client, 4)
    answer = client.post("/api/attributions/arrays", json={"pixels": pixels, "methods": ["gradcam", "saliency"]})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"] == 'attachment; filename="mnist_cnn-gradcam-saliency.npz"'
    arrays = np.load(io.BytesIO(answer.content))
    assert sorted(arrays.files) == ["gradcam", "input", "saliency", "target"]
    model = load_model("mnist_cnn").adapter
    x = torch.from_numpy(arrays["input"])[None]
    assert x.shape == (1, 1, 28, 28) and int(arrays["target"]) == int(model.logits(x).argmax())
    for name in ("gradcam", "saliency"):
        assert arrays[name].dtype == np.float32 and np.array_equal(
            arrays[name], attribute(model, x, name, int(arrays["target"])).values.numpy())
    refused = client.post("/api/attributions/arrays", json={"pixels": pixels, "methods": ["lime"]})
    assert refused.status_code == 422
