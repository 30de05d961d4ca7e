"""The attribution and sanity-check API against the engine's own answers."""

from __future__ import annotations

import pytest
import torch

from convscope.inspect.attribution import ATTRIBUTIONS, attribute, cascading_randomisation
from convscope.inspect.attribution.sanity import sanity_inputs
from convscope.models import load_model
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
