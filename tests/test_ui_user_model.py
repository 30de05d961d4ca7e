"""The web UI with models of the user's own, in headless Chromium against a real `convscope serve`: a residual RGB
network with named classes (the architecture shows the add's two inputs, the class selects and labels use the
names, the dashboard counts by name, the 3D view follows the skip connection) and an untraceable one (its graph is
said to be approximate)."""

from __future__ import annotations

import json
import re

import pytest

from convscope.server.encoding import decode_layers
from convscope.testing.browser import browser_context, checked_page, ui_server, wait_until
from user_net import CLASSES, GATED_PREPROCESSING, TINY_PREPROCESSING, write_user_files



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user-model")
    write_user_files(folder)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory, synthetic_mnist_dir, files):
    models = [{"model_file": f"{files / 'net.py'}:tiny", "classes": str(files / "classes.txt"),
               "preprocessing": TINY_PREPROCESSING, "name": "tiny"},
              {"model_file": f"{files / 'net.py'}:gated", "preprocessing": GATED_PREPROCESSING,
               "name": "gated"}]
    with ui_server(tmp_path_factory.mktemp("ui-user"), str(synthetic_mnist_dir),
                   env={"CONVSCOPE_USER_MODELS": json.dumps(models)}) as running:
        yield running


@pytest.fixture(scope="module")
def context(server):
    with browser_context() as browser:
        yield browser


@pytest.fixture
def page(context, server):
    with checked_page(context) as page:
        page.goto(server.url + "/")
        page.wait_for_selector("section.layer[data-layer=conv1] canvas.maps")
        page.get_by_label("Model and version").select_option("tiny@")
        page.wait_for_selector("section.layer[data-layer=head]")
        yield page


def upload_photo(page, files) -> dict:
    with page.expect_response(lambda r: r.url.endswith("/api/predict/upload") and r.status == 200) as answer:
        page.get_by_label("Upload an image").set_input_files(str(files / "photo.png"))
    return answer.value.json()


def test_the_architecture_shows_the_residual_adds_two_inputs_and_an_approximate_graph_says_so(page):
    page.get_by_role("link", name="Architecture & weights").click()
    graph = page.locator("[data-testid=layer-graph]")
    graph.locator("[data-layer=add]").wait_for()
    edges = graph.locator("path.edge").evaluate_all("paths => paths.map(p => p.dataset.edge)")
    assert sorted(e for e in edges if e.endswith("→add")) == ["mix→add", "relu→add"]  # the skip reaches past mix
    assert "add→relu:2" in edges
    assert page.locator(".approximate").count() == 0
    assert "147 parameters" in page.locator(".architecture > p").inner_text()

    page.get_by_label("Model and version").select_option("gated@")
    graph.locator("[data-layer=fc]").wait_for()
    assert "Approximate graph" in page.locator(".approximate").inner_text()
    edges = graph.locator("path.edge").evaluate_all("paths => paths.map(p => p.dataset.edge)")
    assert "conv→fc" in edges


def test_class_selects_labels_and_reports_use_the_models_class_names(page, files):
    assert page.get_by_label("Class to explain").locator("option").all_inner_texts() == ["predicted class", *CLASSES]
    assert page.locator("[data-layer=head] .unit-labels").inner_text().split() == ["cat", "dog", "tabby", "cat"]
    answer = upload_photo(page, files)
    assert answer["predicted_class"] in CLASSES
    wait_until(page, f"document.querySelector('.prediction .predicted-class').textContent === "
                     f"{json.dumps(answer['predicted_class'])}")
    assert page.locator(".bars").get_attribute("aria-label").startswith("Probabilities: cat ")
    assert page.locator(".seen figcaption").first.inner_text() == "model input (16×16)"
    colour = page.locator(".seen canvas").first.evaluate(  # the RGB input is drawn in colour: red and blue
        "c => [c.width, c.height, ...c.getContext('2d').getImageData(0, 8, 1, 1).data.slice(0, 3),"
        " ...c.getContext('2d').getImageData(8, 8, 1, 1).data.slice(0, 3)]")
    assert colour[:2] == [16, 16] and colour[2] > colour[4] and colour[7] > colour[5]
    with page.expect_response(lambda r: r.url.endswith("/api/predict/upload")) as explained:
        page.get_by_label("Class to explain").select_option(label="dog")
    assert explained.value.json()["target_class"] == "dog"

    page.get_by_role("button", name="Report wrong").click()
    report = page.get_by_label("Correct class")
    report.locator("option").first.wait_for(state="attached")
    choices = report.locator("option").all_inner_texts()
    predicted = f"{answer['predicted_class']} (predicted)"
    assert choices[0] == "choose…" and choices[-1] == "none of these" and predicted in choices
    assert [c.removesuffix(" (predicted)") for c in choices[1:-1]] == CLASSES
    correction = next(name for name in reversed(CLASSES) if name != answer["predicted_class"])
    report.select_option(label=correction)
    page.get_by_role("button", name="Send report").click()
    page.get_by_text(re.compile(rf"Reported #\d+: the correct class is {correction}")).wait_for()

    page.get_by_role("link", name="Dashboard").click()
    page.get_by_label("Filter by model").select_option("tiny")
    page.get_by_role("heading", name="Statistics: tiny").wait_for()
    assert page.get_by_label("Filter by predicted class").locator("option").all_inner_texts() == \
        ["any class", *(f"predicted {name}" for name in CLASSES)]
    assert [row.split("\t")[0] for row in page.locator("table.per-class tbody tr").all_inner_texts()] == CLASSES
    assert page.locator("table.confusion thead th").all_inner_texts()[1:] == CLASSES
    row = page.locator("tr.row").first
    row.wait_for()
    assert answer["predicted_class"] in row.inner_text()
    assert f"correct class {correction}" in page.locator(".report").first.inner_text()


def test_the_3d_view_follows_the_skip_connection_and_names_the_classes(page, files):
    upload_photo(page, files)
    with page.expect_response(lambda r: "/api/predict" in r.url and r.request.method == "POST") as answer:
        page.get_by_role("link", name="Network in 3D").click()  # (the upload is sent again: /api/predict/upload)
    wait_until(page, "window.__convscope.network3d?.updates >= 1", 30)
    # a cell after the add depends on the relu before it twice: through the 1x1 conv (every channel) and directly
    point = page.evaluate("window.__convscope.network3d.screenPosition('relu:2', 1, 5, 5)")
    page.mouse.move(point["x"], point["y"])
    wait_until(page, "document.querySelector('.tooltip').textContent.startsWith('relu:2 ')", 10)
    assert page.evaluate("window.__convscope.network3d.links") == {"relu": 4}
    point = page.evaluate("window.__convscope.network3d.screenPosition('relu', 0, 5, 5)")
    page.mouse.move(point["x"], point["y"])
    wait_until(page, "document.querySelector('.tooltip').textContent.startsWith('relu ')", 10)
    assert page.evaluate("window.__convscope.network3d.links") == {"input": 3 * 3 * 3}  # 3x3 kernel, 3 channels
    point = page.evaluate("window.__convscope.network3d.screenPosition('head', 2)")
    page.mouse.move(point["x"], point["y"])
    wait_until(page, "document.querySelector('.tooltip').textContent.startsWith('head ')", 10)
    shown = re.fullmatch(r"head \(linear\), class tabby cat: (-?\d+\.\d{3})", page.locator(".tooltip").inner_text())
    assert shown and float(shown.group(1)) == pytest.approx(
        float(decode_layers(answer.value.json()["layers"])["head"][2]), abs=1e-3)
