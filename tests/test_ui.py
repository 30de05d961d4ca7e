"""The web UI in a real headless Chromium against a real `convscope serve` with a temporary database: drawing with
the mouse, samples, CAM options, save and report, the dashboard, re-runs, errors shown inline, text kept as text."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from convscope.server.encoding import decode_layers
from convscope.testing.browser import ONE, SEVEN, assert_fits, checked_page, module_fixtures, stroke, wait_until
from conftest import REAL_MNIST


server, context = module_fixtures("ui", mnist_dir=REAL_MNIST)


@pytest.fixture
def page(context, server):
    with checked_page(context) as page:
        page.goto(server.url + "/")
        page.wait_for_selector("section.layer[data-layer=conv1] canvas.maps")
        yield page


# The box of an overlay canvas's painted pixels (left, top, right, bottom) and how many colours they have.
PAINTED = """c => {
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const box = [c.width, c.height, 0, 0];
  const colours = new Set();
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      const i = (y * c.width + x) * 4;
      if (!data[i + 3]) continue;
      box[0] = Math.min(box[0], x); box[1] = Math.min(box[1], y);
      box[2] = Math.max(box[2], x + 1); box[3] = Math.max(box[3], y + 1);
      colours.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
    }
  }
  return { box, colours: colours.size };
}"""


def draw(page, strokes) -> dict:
    """Draw, and return the prediction the page showed once the last stroke ended."""
    answers = []
    listener = lambda r: r.url.endswith("/api/predict") and r.ok and answers.append(r)  # noqa: E731
    page.on("response", listener)
    page.get_by_role("button", name="Clear").click()
    done = page.evaluate("window.__convscope.timings.length") + len(strokes)
    for points in strokes:
        stroke(page, points)
    wait_until(page, f"window.__convscope.timings.length >= {done}")
    page.remove_listener("response", listener)
    return answers[-1].json()


def test_drawing_a_one_and_a_seven_predicts_them_and_updates_every_view(page):
    for strokes, expected in ((ONE, "1"), (SEVEN, "7")):
        answer = draw(page, strokes)
        wait_until(page, f"document.querySelector('.prediction .predicted-class').textContent === '{expected}'")
        assert answer["predicted"] == int(expected)
    assert re.fullmatch(r"\d+\.\d%", page.locator(".prediction .confidence").inner_text())
    names = page.locator("section.layer").evaluate_all("els => els.map(e => e.dataset.layer)")
    assert names == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2",
                     "softmax"]
    # every layer has its view, with its readout on hover: the values of the answer the page got
    layers = decode_layers(answer["layers"])
    conv1 = page.locator("section.layer[data-layer=conv1] canvas.maps")
    conv1.hover(position={"x": 3, "y": 3})
    low, high = re.fullmatch(r"channel 0: (-?[\d.]+) to (-?[\d.]+)",
                             page.locator("[data-layer=conv1] .readout").inner_text()).groups()
    channel = layers["conv1"][0]
    assert (float(low), float(high)) == pytest.approx((float(channel.min()), float(channel.max())), abs=0.011)
    page.locator("[data-layer=fc1] canvas.maps").hover(position={"x": 2, "y": 2})
    unit = re.fullmatch(r"unit 0: (-?[\d.]+)", page.locator("[data-layer=fc1] .readout").inner_text()).group(1)
    assert float(unit) == pytest.approx(float(layers["fc1"][0]), abs=0.011)
    conv1.click(position={"x": 3, "y": 3})
    assert page.locator("dialog.enlarge h3").inner_text() == "conv1, channel 0"
    page.get_by_role("button", name="Close").click()
    # the CAM is laid over the drawing where the preprocessing took the digit from (the answer's framing), in more
    # than one colour: a map, not a flat tint
    painted = page.locator("canvas.pad-overlay").evaluate(PAINTED)
    x0, y0, x1, y1 = answer["framing"]["source"]
    assert painted["box"] == pytest.approx([x0, y0, x1, y1], abs=2)
    assert painted["colours"] > 10
    timings = page.evaluate("window.__convscope.timings")
    assert all(0 < t < 10_000 for t in timings)


def test_sampling_a_digit_shows_it_and_predicts_it(page):
    page.get_by_label("Digit to sample").select_option("3")
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
        page.get_by_role("button", name="Random sample").click()
    assert page.locator(".message.info").inner_text().endswith("labelled 3")
    predicted = answer.value.json()["predicted"]
    # the answer has arrived; the page draws it a moment later
    wait_until(page, f"document.querySelector('.prediction .predicted-class').textContent === '{predicted}'")


def test_switching_cam_method_layer_and_target(page):
    draw(page, SEVEN)
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
        page.get_by_label("CAM method").select_option("hirescam")
    assert answer.value.json()["cam"]["method"] == "hirescam"
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
        page.get_by_label("CAM layer").select_option("conv1")
    cam = answer.value.json()["cam"]
    assert (cam["method"], cam["layer"]) == ("hirescam", "conv1")
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
        page.get_by_label("Class to explain").select_option("3")
    assert answer.value.json()["target"] == 3
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
        page.get_by_label("CAM method").select_option("saliency")
    assert answer.value.json()["cam"]["method"] == "saliency"


def test_a_bad_upload_shows_an_inline_error(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page.get_by_label("Upload an image").set_input_files(str(bad))
    error = page.locator(".input-panel .message.error")
    error.wait_for()
    assert "not an image" in error.inner_text()
    good = tmp_path / "seven.png"
    image = Image.new("L", (200, 200), 255)
    from PIL import ImageDraw
    ImageDraw.Draw(image).line([(40, 30), (160, 30), (80, 180)], fill=0, width=14)
    image.save(good)
    with page.expect_response(lambda r: r.url.endswith("/api/predict/upload") and r.status == 200) as answer:
        page.get_by_label("Upload an image").set_input_files(str(good))
    assert answer.value.json()["predicted"] == 7


def test_save_report_dashboard_rerun_and_text_stays_text(page, server):
    draw(page, SEVEN)
    page.get_by_role("button", name="Save").click()
    saved_text = page.locator(".result-panel .muted", has_text="Saved as").inner_text()
    saved_id = int(re.search(r"#(\d+)", saved_text).group(1))
    page.get_by_role("button", name="Report wrong").click()
    assert page.get_by_label("Correct class").locator("option").all_inner_texts() == [
        "choose…", "0", "1", "2", "3", "4", "5", "6", "7 (predicted)", "8", "9", "none of these"]
    page.get_by_label("Correct class").select_option("1")
    reason = "<script>window.pwned = 1</script><b>not bold</b>"
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Send report").click()
    page.get_by_text(f"Reported #{saved_id}: the correct class is 1").wait_for()

    page.get_by_role("link", name="Dashboard").click()
    row = page.locator("tr.row", has=page.get_by_role("cell", name=str(saved_id), exact=True))
    row.wait_for()
    assert "yes" in row.inner_text()
    report = page.locator(".report", has_text=f"#{saved_id}")
    assert report.locator(".reason").inner_text() == reason  # shown as text
    assert report.locator("b, script").count() == 0
    assert page.evaluate("window.pwned") is None
    status, stats = server.request("GET", "/api/stats")
    assert status == 200 and stats["reported_predictions"] >= 1 and stats["reports"]["open"] >= 1
    assert page.locator(".card").all_text_contents() == [
        f"{stats['predictions']} saved predictions", f"{stats['reported_predictions']} reported wrong",
        f"{stats['reported_error_rate'] * 100:.1f}% reported error rate", f"{stats['reports']['open']} open reports"]
    assert "correct class 1" in report.inner_text()
    # statistics by class name: the 7 saved and reported, the correction 7 -> 1 in the confusion matrix
    page.locator("table.per-class").wait_for()
    per_class = page.locator("table.per-class tbody tr").all_inner_texts()
    assert any(re.fullmatch(r"7\t1\t1\t100\.0%", row) for row in per_class), per_class
    confusion = page.locator("table.confusion")
    assert confusion.locator("thead th").all_inner_texts()[1:] == ["1", "7"]  # all models: the classes that occur
    assert confusion.locator("tbody tr", has=page.locator("th", has_text="7")).locator("td").all_inner_texts() \
        == ["1", ""]
    # one model chosen: its classes, all of them, in the statistics and the predicted-class filter
    page.get_by_label("Filter by model").select_option("mnist_cnn")
    page.get_by_role("heading", name="Statistics: mnist_cnn").wait_for()
    assert len(page.locator("table.per-class tbody tr").all()) == 10
    filter_options = page.get_by_label("Filter by predicted class").locator("option").all_inner_texts()
    assert filter_options == ["any class", *(f"predicted {d}" for d in range(10))]
    with page.expect_response(lambda r: "/api/predictions?" in r.url and "predicted=3" in r.url):
        page.get_by_label("Filter by predicted class").select_option("3")
    page.get_by_role("cell", name="Nothing saved yet.").wait_for()
    page.get_by_label("Filter by predicted class").select_option("")
    row.wait_for()

    row.click()
    page.get_by_role("heading", name=f"Saved prediction #{saved_id}").wait_for()
    with page.expect_response(lambda r: r.url.endswith(f"/api/predictions/{saved_id}/rerun")) as answer:
        page.get_by_role("button", name="Re-run").click()
    fresh = answer.value.json()
    assert fresh["original"]["id"] == saved_id and fresh["rerun"]["predicted"] == 7
    wait_until(page, "document.querySelector('.rerun-summary').textContent.startsWith('mnist_cnn v1: 7')")
    page.get_by_role("heading", name="Re-runs (1)").wait_for()
    wait_until(page, "(c => c.getContext('2d').getImageData(0, 0, 28, 28).data.some((v, i) => i % 4 !== 3 && v > 0))"
                     "(document.querySelector('canvas.detail-cam'))")  # the fresh CAM is drawn
    page.locator(".detail .report button", has_text="Resolve").click()
    page.get_by_role("heading", name=f"Saved prediction #{saved_id}").wait_for()
    wait_until(page, "!document.querySelector('.dashboard-view > section .report')")
    status, listing = server.request("GET", "/api/reports?resolved=true")
    assert [r["prediction_id"] for r in listing["items"]] == [saved_id]


def test_the_architecture_view_shows_the_graph_layers_weights_and_filters(page):
    page.get_by_role("link", name="Architecture & weights").click()
    graph = page.locator("[data-testid=layer-graph]")
    graph.locator("[data-layer=softmax]").wait_for()
    names = graph.locator("[data-layer]").evaluate_all("nodes => nodes.map(n => n.dataset.layer)")
    assert names[:3] == ["conv1", "relu1", "pool1"] and names[-1] == "softmax"
    # a chain: each layer's one arrow from the layer before, the first from the input; kernel and stride shown
    edges = graph.locator("path.edge").evaluate_all("paths => paths.map(p => p.dataset.edge)")
    assert edges[:2] == ["input→conv1", "conv1→relu1"] and len(edges) == len(names)
    assert graph.locator("path.edge").first.get_attribute("marker-end") == "url(#arrow)"
    assert "conv 3×3 · 32×26×26" in graph.locator("[data-layer=conv1]").text_content()
    assert "pool 2×2 /2 · 32×13×13" in graph.locator("[data-layer=pool1]").text_content()
    assert page.locator(".approximate").count() == 0
    assert "225,034 parameters" in page.locator(".architecture > p").inner_text()
    assert page.locator(".architecture > section.layer-weights canvas.filters").count() == 2
    # weight and bias of conv1, conv2, fc1, fc2
    assert page.locator(".architecture > section.layer-weights svg.histogram").count() == 8
    panel = page.locator("[data-testid=layer-panel]")
    panel.get_by_role("heading", name="conv1").wait_for()  # it opens on the first layer with weights
    # the graph scrolls inside its box (the flatten's 1,600 values once made the diagram 2,700 px tall)
    assert graph.bounding_box()["height"] <= 0.8 * 800 + 2
    graph.locator("[data-layer=conv2]").click()
    panel.get_by_role("heading", name="conv2").wait_for()
    panel.locator(".layer-weights").wait_for()
    assert "kernel3×3" in panel.inner_text().replace("\t", "").replace(" ", "")
    assert "weight 64×32×3×3" in panel.inner_text()
    width = panel.locator("canvas.filters").evaluate("c => c.getBoundingClientRect().width / c.width")
    assert width >= 4  # conv-2's 3x3 filters at 4 px a weight at least: readable


def test_the_mlp_is_selectable_and_answers_with_its_layers(page):
    page.get_by_label("Model and version").select_option("mnist_mlp@")
    page.wait_for_selector("section.layer[data-layer=sigmoid1]")
    answer = draw(page, ONE)
    assert answer["model"] == "mnist_mlp" and answer["cam"]["method"] == "saliency"  # no layer for a CAM
    grid = page.locator("[data-layer=fc1] canvas.maps")
    assert grid.evaluate("c => [c.width, c.height]") == [16 * 7 - 1, 2 * 7 - 1]  # 32 units as 2x16


def test_the_page_has_no_inline_script_and_its_policy_says_so(server):
    status, html = server.request("GET", "/")
    assert status == 200 and b"<script>" not in html and b'type="module" src="/js/app.js"' in html


@pytest.mark.parametrize("view", ["draw", "photo", "compare", "architecture", "dashboard", "train", "evaluate",
                                  "network"])
def test_every_view_fits_a_1280x800_screen(page, server, view):
    page.goto(f"{server.url}/#/{view}", wait_until="networkidle")
    assert page.locator("#view > *").count() > 0 and page.locator(".message.error:visible").count() == 0
    assert_fits(page)
