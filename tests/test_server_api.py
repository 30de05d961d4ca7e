"""The REST API through the real app (TestClient runs the lifespan: migrations, model loading). Bodies are checked
against the engine's own answers, not just status codes."""

from __future__ import annotations

import base64
import io
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from convscope.inspect import Inspector
from convscope.models import load_model
from convscope.preprocessing.mnist_digit import preprocess_drawing
from convscope.server.encoding import decode_layers, decode_tensor
from convscope.server.settings import ServerSettings
from conftest import png_with_chunk
from server_fixtures import make_client

LEVEL = 1 / 255  # one quantization step, relative to a tensor's range


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def data_url(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def drawing_of_seven() -> Image.Image:
    """A "7" drawn as on a canvas: thick dark strokes on white, off-centre."""
    canvas = Image.new("L", (300, 300), 255)
    pen = ImageDraw.Draw(canvas)
    pen.line([(50, 40), (200, 40), (110, 250)], fill=0, width=16, joint="curve")
    return canvas


@pytest.fixture(scope="module")
def engine_cnn():
    return Inspector(load_model("mnist_cnn").adapter)


def assert_close_to(encoded_or_tensor, expected: torch.Tensor):
    decoded = decode_tensor(encoded_or_tensor) if isinstance(encoded_or_tensor, dict) else encoded_or_tensor
    assert list(decoded.shape) == list(expected.shape)
    span = float(expected.max() - expected.min()) or 1.0
    assert float((decoded - expected).abs().max()) <= span * LEVEL * 0.51 + 1e-6


def test_health_names_version_database_and_active_models(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["database"] == "sqlite"
    assert body["models"] == {"mnist_cnn": 1, "mnist_mlp": 1, "efficientnet_lite0": 1}  # the others: no weights here
    assert body["training_job"] is None


def test_models_list_versions_metrics_and_the_active_one(client):
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert set(models) == {"mnist_cnn", "mnist_mlp", "vgg16", "vgg19", "resnet50", "inception_v3", "efficientnet_lite0"}
    assert models["vgg16"]["active_version"] is None and models["vgg16"]["versions"] == []  # not downloaded
    lite = models["efficientnet_lite0"]
    assert lite["active_version"] == 1 and lite["versions"][0]["source"] == "pretrained"
    assert len(lite["class_names"]) == 1000 and lite["class_names"][967] == "espresso"
    cnn = models["mnist_cnn"]
    assert cnn["active_version"] == 1 and cnn["input_shape"] == [1, 28, 28]
    assert cnn["versions"] == [{"version": 1, "source": "packaged", "created_at": cnn["versions"][0]["created_at"],
                                "test_accuracy": load_model("mnist_cnn").test_accuracy, "active": True,
                                "job_id": None, "shuffled_labels": False}]
    detail = client.get("/api/models/mnist_cnn").json()
    assert detail["versions"][0]["details"]["training"]["config"]["epochs"] == 6


def test_architecture_shapes_parameters_and_flops(client):
    body = client.get("/api/models/mnist_cnn/architecture").json()
    layers = {layer["name"]: layer for layer in body["layers"]}
    assert layers["conv1"] == {"name": "conv1", "kind": "conv", "op": "Conv2d", "output_shape": [32, 26, 26],
                               "parents": ["input"], "module": "conv1", "call": 1, "parameters": 320,
                               "macs": 9 * 32 * 26 * 26, "flops": 2 * 9 * 32 * 26 * 26,
                               "kernel": [3, 3], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1]}
    assert layers["conv2"]["parents"] == ["pool1"]
    assert (body["traced"], body["output"], body["logits"], body["default_cam_layer"]) == (True, "softmax", "fc2",
                                                                                           "relu2")
    assert (layers["pool1"]["kernel"], layers["pool1"]["stride"]) == ([2, 2], [2, 2])
    assert "kernel" not in layers["fc1"]
    assert layers["fc1"]["parameters"] == 1600 * 128 + 128
    assert body["parameters"] == 225_034
    assert body["flops"] == sum(layer["flops"] for layer in body["layers"])
    mlp = client.get("/api/models/mnist_mlp/architecture").json()
    assert [layer["kind"] for layer in mlp["layers"]] == ["flatten", "linear", "sigmoid", "linear", "sigmoid",
                                                          "linear", "softmax"]


def test_weights_statistics_histograms_and_filters_match_the_model(client):
    model = load_model("mnist_cnn").model
    body = client.get("/api/models/mnist_cnn/weights", params={"bins": 12}).json()
    conv1 = next(layer for layer in body["layers"] if layer["layer"] == "conv1")
    weight = model.conv1.weight.detach().double()
    assert conv1["weight"]["shape"] == [32, 1, 3, 3]
    assert conv1["weight"]["stats"]["mean"] == pytest.approx(float(weight.mean()))
    assert conv1["weight"]["stats"]["max"] == pytest.approx(float(weight.max()))
    assert sum(conv1["weight"]["histogram"]["counts"]) == 288 and len(conv1["weight"]["histogram"]["edges"]) == 13
    filters = decode_tensor(conv1["filters"]["images"])
    assert conv1["filters"]["scale"] == pytest.approx(float(weight.abs().max()))
    # 0.5 is a zero weight; 0 and 1 are -/+ the largest absolute weight
    assert_close_to(filters, (weight / (2 * weight.abs().max()) + 0.5).float())
    assert "filters" not in next(layer for layer in body["layers"] if layer["layer"] == "fc1")


def test_samples_by_digit_are_seedable_and_by_index_exact(client):
    first = client.get("/api/samples", params={"digit": 3, "seed": 5}).json()
    again = client.get("/api/samples", params={"digit": 3, "seed": 5}).json()
    assert first == again and first["label"] == 3 and first["split"] == "test"
    by_index = client.get("/api/samples", params={"index": first["index"]}).json()
    assert by_index["pixels"] == first["pixels"]
    png = base64.b64decode(first["image"].split(",", 1)[1])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.array(first["pixels"], dtype=np.uint8))
    train = client.get("/api/samples", params={"digit": 3, "split": "train", "seed": 1}).json()
    assert train["split"] == "train" and train["label"] == 3
    assert client.get("/api/samples", params={"digit": 12}).status_code == 422
    assert client.get("/api/samples", params={"index": 10**6}).json()["error"]["code"] == "invalid_input"


def test_predict_pixels_returns_what_the_engine_computes(client, engine_cnn):
    pixels = client.get("/api/samples", params={"digit": 7, "seed": 0}).json()["pixels"]
    response = client.post("/api/predict", json={"pixels": pixels})
    assert response.status_code == 200
    body = response.json()
    expected = engine_cnn.inspect_prepared(torch.tensor(pixels, dtype=torch.uint8))
    assert body["predicted"] == expected.predicted and body["target"] == expected.predicted
    assert body["probabilities"] == pytest.approx(expected.probabilities.tolist(), abs=1e-5)
    assert body["model"] == "mnist_cnn" and body["version"] == 1
    assert body["cam"]["method"] == "gradcam" and body["cam"]["layer"] == "relu2"
    assert_close_to(body["cam"]["map"], expected.cam)
    assert_close_to(body["saliency"], expected.saliency)
    assert_close_to(body["input"], torch.tensor(pixels) / 255)
    layers = decode_layers(body["layers"])
    assert list(layers) == list(expected.activations)
    sources = {layer["name"]: layer["activation"].get("of", layer["name"]) for layer in body["layers"]}
    for name, activation in expected.activations.items():
        # A derived layer (relu of conv1) carries its source's precision: one step of the source's range.
        source = expected.activations[sources[name]]
        span = float(source.max() - source.min())
        assert float((layers[name] - activation).abs().max()) <= span * LEVEL * 0.51 + 1e-6, name
    # Every layer of mnist_cnn, CAM and saliency in at most 40 KB.
    assert len(response.content) <= 40_000


def test_derived_layers_are_sent_as_references_only_when_their_source_is_sent(client):
    pixels = client.get("/api/samples", params={"digit": 1, "seed": 0}).json()["pixels"]
    layers = {layer["name"]: layer["activation"] for layer in
              client.post("/api/predict", json={"pixels": pixels}).json()["layers"]}
    assert layers["relu1"] == {"shape": [32, 26, 26], "encoding": "relu", "of": "conv1"}
    assert layers["flatten"] == {"shape": [1600], "encoding": "reshape", "of": "pool2"}
    alone = client.post("/api/predict", json={"pixels": pixels, "layers": ["relu1"]}).json()["layers"]
    assert [layer["name"] for layer in alone] == ["relu1"]
    assert alone[0]["activation"]["encoding"] == "uint8-zlib-base64"


def test_predict_options_method_layer_target_and_layers(client, engine_cnn):
    pixels = client.get("/api/samples", params={"digit": 2, "seed": 0}).json()["pixels"]
    x = torch.tensor(pixels, dtype=torch.uint8)
    body = client.post("/api/predict", json={"pixels": pixels, "cam_method": "hirescam", "cam_layer": "conv1",
                                             "target": 5, "layers": ["fc2"]}).json()
    expected = engine_cnn.inspect(x, target=5, cam_layer="conv1", method="hirescam", layers=["fc2"])
    assert body["target"] == 5 and body["cam"]["layer"] == "conv1" and body["cam"]["method"] == "hirescam"
    assert_close_to(body["cam"]["map"], expected.cam)
    assert [layer["name"] for layer in body["layers"]] == ["fc2"]
    saliency = client.post("/api/predict", json={"pixels": pixels, "cam_method": "saliency"}).json()
    assert saliency["cam"]["method"] == "saliency" and saliency["cam"]["layer"] is None
    assert saliency["cam"]["map"] == saliency["saliency"]


def test_the_mlp_answers_the_same_way(client):
    pixels = client.get("/api/samples", params={"digit": 0, "seed": 0}).json()["pixels"]
    body = client.post("/api/predict", json={"pixels": pixels, "model": "mnist_mlp"}).json()
    expected = Inspector(load_model("mnist_mlp").adapter).inspect(torch.tensor(pixels, dtype=torch.uint8))
    assert body["predicted"] == expected.predicted and body["cam"] is None
    layers = decode_layers(body["layers"])
    assert [(layer["name"], layer["shape"]) for layer in body["layers"]][1:5] == [
        ("fc1", [32]), ("sigmoid1", [32]), ("fc2", [32]), ("sigmoid2", [32])]
    assert_close_to(layers["sigmoid2"], expected.activations["sigmoid2"])


def test_a_speck_or_a_scribble_is_called_unusual_and_a_digit_is_not(client):
    seven = client.post("/api/predict", json={"image": data_url(drawing_of_seven())}).json()
    assert seven["predicted"] == 7 and seven["unusual_input"] is None
    speck = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(speck).ellipse([130, 130, 141, 141], fill=0)
    scribble = Image.new("L", (280, 280), 255)
    points = [tuple(p) for p in np.random.default_rng(2).uniform(40, 240, size=(25, 2))]
    ImageDraw.Draw(scribble).line(points, fill=0, width=14, joint="curve")
    for image, model in ((speck, "mnist_cnn"), (scribble, "mnist_cnn"), (speck, "mnist_mlp")):
        answer = client.post("/api/predict", json={"image": data_url(image), "model": model}).json()
        assert answer["confidence"] > 0.5  # the model alone would be sure of it
        assert answer["unusual_input"]["reason"].startswith("the ink covers "), answer["unusual_input"]
        assert "MNIST digits cover 4.4% to 27.0%" in answer["unusual_input"]["reason"]


def test_a_16_bit_greyscale_png_is_read_like_its_8_bit_twin(client):
    """Dark ink on white paper in 16 bits: clipped at 255 it was all white ("the drawing is empty")."""
    eight = np.asarray(drawing_of_seven(), dtype=np.uint16)
    ink = np.where(eight < 128, 9000, 60000).astype(np.uint16)  # ink far above 255, paper near white
    png = io.BytesIO()
    Image.fromarray(ink).save(png, format="PNG")
    assert Image.open(io.BytesIO(png.getvalue())).mode.startswith("I")
    answer = client.post("/api/predict/upload", files={"file": ("scan.png", png.getvalue(), "image/png")})
    assert answer.status_code == 200, answer.text
    twin = Image.fromarray(np.where(eight < 128, 35, 234).astype(np.uint8))  # 9000/257, 60000/257
    expected = client.post("/api/predict/upload", files={"file": ("twin.png", png_bytes(twin), "image/png")})
    assert answer.json()["predicted"] == expected.json()["predicted"] == 7
    assert answer.json()["probabilities"] == pytest.approx(expected.json()["probabilities"], abs=1e-6)


def test_an_upload_is_turned_upright_as_its_exif_orientation_says(client, engine_cnn):
    """A phone stores the sensor's pixels and an orientation tag: 8 means "turn 90 degrees anticlockwise to show"."""
    upright = drawing_of_seven()
    sideways = upright.rotate(270, expand=True)  # as the sensor saw it: turned clockwise
    exif = Image.Exif()
    exif[0x0112] = 8
    tagged = io.BytesIO()
    sideways.save(tagged, format="JPEG", quality=95, exif=exif.tobytes())
    assert engine_cnn.inspect(preprocess_drawing(sideways)).predicted != 7  # read as stored, it is no 7
    answer = client.post("/api/predict/upload", files={"file": ("photo.jpg", tagged.getvalue(), "image/jpeg")})
    assert answer.status_code == 200 and answer.json()["predicted"] == 7
    seen = decode_tensor(answer.json()["input"])
    assert float((seen - preprocess_drawing(upright)).abs().max()) < 0.05  # JPEG's artefacts, no more


def test_a_drawing_is_preprocessed_like_mnist_and_uploads_agree_with_data_urls(client, engine_cnn):
    canvas = drawing_of_seven()
    by_url = client.post("/api/predict", json={"image": data_url(canvas)}).json()
    expected = engine_cnn.inspect(preprocess_drawing(canvas))
    assert by_url["predicted"] == expected.predicted == 7
    assert_close_to(by_url["input"], preprocess_drawing(canvas))
    for fmt, mime in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        upload = client.post("/api/predict/upload", files={"file": ("d", png_bytes(canvas, fmt), mime)},
                             data={"cam_method": "gradcam++", "layers": "conv1,fc2"}).json()
        assert upload["predicted"] == 7, fmt
        assert [layer["name"] for layer in upload["layers"]] == ["conv1", "fc2"]
        assert upload["cam"]["method"] == "gradcam++"


def test_unknown_model_version_and_layer(client):
    pixels = [[0] * 28] * 28
    assert client.post("/api/predict", json={"pixels": pixels, "model": "vgg99"}).json()["error"] == {
        "status": 404, "code": "not_found",
        "message": "unknown model 'vgg99'; known models: mnist_cnn, mnist_mlp, vgg16, vgg19, resnet50, inception_v3, "
                   "efficientnet_lite0"}
    assert client.post("/api/predict", json={"pixels": pixels, "version": 7}).json()["error"]["message"] == \
        "mnist_cnn has no version 7"
    bad_layer = client.post("/api/predict", json={"pixels": pixels, "layers": ["conv9"]})
    assert bad_layer.status_code == 422 and "conv9" in bad_layer.json()["error"]["message"]
    seven = data_url(drawing_of_seven())
    for dense in ("fc1", "relu3", "flatten"):  # a drawing that predicts; the layer is what is wrong
        answer = client.post("/api/predict", json={"image": seven, "cam_layer": dense})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["message"].endswith(
            "layers a CAM can use: conv1, relu1, pool1, conv2, relu2, pool2")
    assert client.get("/api/models/nope/architecture").status_code == 404


def test_empty_drawing_and_bad_fields_are_422_in_the_error_shape(client):
    blank = client.post("/api/predict", json={"image": data_url(Image.new("L", (50, 50), 255))})
    assert blank.status_code == 422 and blank.json()["error"]["message"] == "the drawing is empty: draw a digit first"
    both = client.post("/api/predict", json={"image": "data:image/png;base64,AA==", "pixels": [[0]]})
    assert both.status_code == 422 and "exactly one" in both.json()["error"]["message"]
    wrong = client.post("/api/predict", json={"pixels": [[300] * 28] * 28})
    assert wrong.json()["error"]["message"] == "pixels must be numbers from 0 to 255"
    extra = client.post("/api/predict", json={"pixels": [[0] * 28] * 28, "predicted": 3})
    assert extra.status_code == 422 and extra.json()["error"]["details"][0]["field"] == "body.predicted"
    not_json = client.post("/api/predict", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "invalid_input"
    method = client.post("/api/predict", json={"pixels": [[0] * 28] * 28, "cam_method": "magic"})
    assert method.status_code == 422


def test_images_that_are_not_images_or_not_allowed_are_415_and_corrupt_ones_422(client):
    def upload(data: bytes):
        return client.post("/api/predict/upload", files={"file": ("x", data, "application/octet-stream")})

    assert upload(b"just text").status_code == 415
    gif = png_bytes(Image.new("L", (20, 20)), "GIF")
    assert upload(gif).json()["error"]["message"] == "GIF images are not accepted: send a PNG, JPEG or WebP"
    truncated = png_bytes(drawing_of_seven())[:400]
    assert upload(truncated).status_code == 422
    # PNG text and colour-profile chunks that inflate to 50 MB (Pillow stops at 1 MB): refused, never a 500
    for chunk_type, payload in ((b"zTXt", b"comment\x00\x00"), (b"iCCP", b"icc\x00\x00")):
        answer = upload(png_with_chunk(chunk_type, payload + zlib.compress(b"a" * 50_000_000, 9)))
        assert answer.status_code == 422 and "corrupt image" in answer.json()["error"]["message"], answer.text
    assert upload(b"").status_code == 422
    not_data_url = client.post("/api/predict", json={"image": "http://example.com/x.png"})
    assert not_data_url.status_code == 415
    bad_base64 = client.post("/api/predict", json={"image": "data:image/png;base64,@@@"})
    assert bad_base64.status_code == 422


def test_a_huge_image_is_refused_from_its_header_before_decoding(client):
    # 10,000 x 10,000 pixels compress to a few KB: a decompression bomb if decoded.
    bomb = png_bytes(Image.new("1", (10_000, 10_000)))
    assert len(bomb) < 100_000
    response = client.post("/api/predict/upload", files={"file": ("bomb.png", bomb, "image/png")})
    assert response.status_code == 413
    assert "10000x10000 pixels is over the limit" in response.json()["error"]["message"]


def test_a_body_over_the_limit_is_413_declared_or_streamed(client, settings):
    big = b"x" * (settings.max_body_bytes + 1)
    declared = client.post("/api/predict/upload", files={"file": ("big.png", big, "image/png")})
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"

    def chunks():
        for _ in range(6):
            yield b"x" * 1_000_000

    streamed = client.post("/api/predict", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "payload_too_large"
    assert client.get("/api/health").status_code == 200  # and the server carries on


def test_unknown_routes_and_methods_use_the_error_shape(client):
    assert client.get("/api/nothing").json() == {"error": {"status": 404, "code": "not_found",
                                                           "message": "nothing here: GET /api/nothing"}}
    assert client.delete("/api/health").json()["error"]["code"] == "method_not_allowed"


def test_security_headers_docs_served_locally_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    docs = client.get("/api/docs")
    assert "<script>" not in docs.text  # no inline script: the CSP holds on the docs page too
    for asset in ("/api/docs/assets/swagger-ui-bundle.js", "/api/docs/assets/swagger-ui.css", "/api-docs.js"):
        assert client.get(asset).status_code == 200, asset
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/predict", "/api/predictions", "/api/jobs/{job_id}/events", "/api/stats",
                 "/api/models/{name}/weights", "/api/samples", "/api/reports/{report_id}"):
        assert path in paths, path


def test_only_loopback_host_names_are_answered_on_loopback(client):
    rebinding = client.get("/api/health", headers={"host": "evil.example:8000"})
    assert rebinding.status_code == 400 and rebinding.json()["error"]["code"] == "bad_request"
    assert client.get("/api/health", headers={"host": "localhost:8000"}).status_code == 200


def test_a_server_on_another_loopback_address_answers_its_own_host_name(tmp_path, synthetic_mnist_dir):
    settings = ServerSettings(host="127.0.0.2", data_dir=tmp_path / "data", mnist_dir=synthetic_mnist_dir, workers=1)
    with make_client(settings) as client:
        assert client.get("/api/health", headers={"host": "127.0.0.2:8000"}).status_code == 200
        assert client.get("/api/health", headers={"host": "127.0.0.3:8000"}).status_code == 400
        assert client.get("/api/health", headers={"host": "evil.example"}).status_code == 400


def test_a_bug_answers_500_in_the_error_shape_with_the_security_headers(client, monkeypatch, caplog):
    from convscope.server.routes import photos

    class Broken(dict):
        def values(self):
            raise RuntimeError("a bug in the photo list")

    monkeypatch.setattr(photos, "PHOTOS", Broken())
    answer = client.get("/api/photos")
    assert answer.status_code == 500
    assert answer.json()["error"] == {"status": 500, "code": "internal_error",
                                      "message": "internal error: the server logged the details"}
    assert "a bug in the photo list" not in answer.text  # the details go to the log, not to the client
    assert answer.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in answer.headers
    assert "a bug in the photo list" in caplog.text
    assert client.get("/api/health").status_code == 200  # and the server goes on


def test_openapi_documents_each_operations_errors_in_the_shape_they_have(client):
    from convscope.server.schemas import ErrorBody

    openapi = client.get("/api/openapi.json").json()
    assert "HTTPValidationError" not in str(openapi)  # FastAPI's own 422 shape is not what the server answers
    error_ref = "#/components/schemas/ErrorBody"
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            errors = {code: answer for code, answer in operation["responses"].items() if code[0] in "45"}
            assert "500" in errors, (method, path)
            for code, answer in errors.items():
                assert answer["content"]["application/json"]["schema"]["$ref"] == error_ref, (method, path, code)
            if "{" in path:
                assert "404" in errors, (method, path)
            if method in ("post", "put", "delete"):
                assert {"403", "413", "422"} <= set(errors), (method, path)
    assert "409" in openapi["paths"]["/api/jobs"]["post"]["responses"]
    assert "415" in openapi["paths"]["/api/predict/upload"]["post"]["responses"]
    assert "401" in openapi["paths"]["/api/models/{name}/active"]["put"]["responses"]
    assert set(openapi["paths"]["/api/health"]["get"]["responses"]) == {"200", "500"}  # no input, nothing to refuse
    # and the answers are what the schema says
    for answer in (client.post("/api/predict", json={"pixels": [[300]]}), client.get("/api/jobs/999"),
                   client.post("/api/predict", json={"pixels": [[0] * 28] * 28, "target": "x"})):
        assert answer.status_code in (404, 422) and ErrorBody.model_validate(answer.json())


@pytest.mark.parametrize("body, field", [
    ({"target": True}, "target"), ({"target": "3"}, "target"), ({"preprocess": 1}, "preprocess"),
    ({"version": 1.0}, "version"), ({"model": 7}, "model")])
def test_json_types_are_taken_as_they_are(client, body, field):
    pixels = [[0] * 28 for _ in range(28)]
    answer = client.post("/api/predict", json={"pixels": pixels, **body})
    assert answer.status_code == 422 and answer.json()["error"]["details"][0]["field"] == f"body.{field}"


def test_a_job_refuses_true_for_a_number(client):
    answer = client.post("/api/jobs", json={"epochs": True})
    assert answer.status_code == 422 and "body.epochs" in answer.json()["error"]["message"]
    assert client.get("/api/jobs").json()["items"] == []  # nothing started


def test_deflate_payload_is_plain_zlib_for_browsers(client):
    pixels = client.get("/api/samples", params={"digit": 9, "seed": 0}).json()["pixels"]
    encoded = client.post("/api/predict", json={"pixels": pixels}).json()["input"]
    raw = zlib.decompress(base64.b64decode(encoded["data"]))  # what DecompressionStream("deflate") reads
    assert len(raw) == 28 * 28 and encoded["shape"] == [28, 28]


def test_cors_is_off_by_default_and_allows_only_configured_origins(client, tmp_path, synthetic_mnist_dir):
    from fastapi.testclient import TestClient

    from convscope.server.app import create_app
    from convscope.server.settings import ServerSettings

    preflight = {"origin": "http://notebook.example", "access-control-request-method": "POST"}
    assert "access-control-allow-origin" not in client.options("/api/predict", headers=preflight).headers
    settings = ServerSettings(data_dir=tmp_path / "cors", mnist_dir=synthetic_mnist_dir,
                              allowed_origins="http://notebook.example")
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as allowed:
        answer = allowed.options("/api/predict", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "http://notebook.example"
        other = allowed.options("/api/predict", headers={**preflight, "origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        pixels = {"pixels": [[0] * 28] * 28}
        from_notebook = allowed.post("/api/predict", json=pixels, headers={"origin": "http://notebook.example",
                                                                           "sec-fetch-site": "cross-site"})
        assert from_notebook.status_code == 200  # an allowed origin may change things too


@pytest.mark.parametrize("headers", [
    {"origin": "http://evil.example"},  # a form or fetch on another site
    {"origin": "http://evil.example", "sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},  # another port or subdomain of the same site is another origin
    {"origin": "null"},  # a sandboxed frame or a file: page
])
def test_cross_site_changes_are_refused_on_loopback_too(client, headers):
    """A plain HTML form on any web page must not cancel a job or save a prediction on a local server."""
    pixels = {"pixels": [[0] * 28] * 28}
    refused = client.post("/api/predictions", json=pixels, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == {"status": 403, "code": "forbidden", "message": "cross-site request refused: "
                                       "changes come only from this server's own pages (or an allowed origin)"}
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert client.post("/api/jobs/1/cancel", headers=headers).status_code == 403  # a bodiless POST too
    assert client.get("/api/predictions").json()["total"] == 0  # nothing was saved
    assert client.get("/api/models", headers=headers).status_code == 200  # reading is not changing


def test_same_origin_pages_and_other_clients_may_change_things(client):
    pixels = {"pixels": [[0] * 28] * 28}
    browser = {"origin": "http://127.0.0.1", "sec-fetch-site": "same-origin"}
    assert client.post("/api/predictions", json=pixels, headers=browser).status_code == 201
    assert client.post("/api/predictions", json=pixels).status_code == 201  # curl, httpx, notebooks: no headers


@pytest.mark.parametrize("method, path, body", [
    ("GET", f"/api/predictions/{2**31}", None),  # beyond PostgreSQL's int4: was a database error, a 500
    ("DELETE", f"/api/predictions/{2**31}", None),
    ("PUT", f"/api/reports/{2**31}", {"resolved": True}),
    ("GET", f"/api/jobs/{2**31}", None),
    ("GET", f"/api/predictions?offset={2**31}", None),
    ("GET", f"/api/models/mnist_cnn/architecture?version={2**31}", None),
    ("POST", "/api/predict", {"pixels": [[0] * 28] * 28, "version": 2**31}),
    ("POST", "/api/predict", {"pixels": [[0] * 28] * 28, "target": 2**40}),
    ("POST", "/api/jobs", {"weight_decay": float("inf")}),  # accepted before, then a NaN model answered 500s
    ("POST", "/api/jobs", {"lr": float("nan")}),
    ("POST", "/api/jobs", {"seed": 2**40}),
    ("GET", f"/api/samples?seed={2**40}", None),
])
def test_numbers_the_database_or_the_engine_cannot_hold_are_422(client, method, path, body):
    import json as json_module
    content = None if body is None else json_module.dumps(body)  # Infinity and NaN as Python's json writes them
    answer = client.request(method, path, content=content, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_input"


def test_a_nul_character_in_a_report_reason_is_422(client):
    saved = client.post("/api/predictions", json={"pixels": [[0] * 28] * 28}).json()
    answer = client.post(f"/api/predictions/{saved['id']}/reports", json={"correct_label": 1, "reason": "a\x00b"})
    assert answer.status_code == 422 and answer.json()["error"]["details"][0]["field"] == "body.reason"


@pytest.mark.parametrize("url", ["/api/predictions?model=%00x", "/api/evaluations?model=a%00", "/api/models/mn%00ist"])
def test_nul_in_a_url_is_a_clear_422_not_a_database_error(client, url):
    answer = client.get(url)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == "the URL may not contain NUL (%00) characters"
