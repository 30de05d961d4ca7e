"""The explain view in headless Chromium against a real `convscope serve`: methods side by side on one scale or
each on its own, exports read back and compared with the API's values, slow methods cancelled, the sanity and
faithfulness checks beside each method, and the misclassification explorer from a confusion cell to the explain
view."""

from __future__ import annotations

import base64
import json
import re
import time

import numpy as np
import pytest

from convscope.inspect.attribution import ATTRIBUTIONS
from convscope.testing.browser import checked_page, module_fixtures, wait_until

server, context = module_fixtures("ui-explain")
pytestmark = [pytest.mark.browser, pytest.mark.slow]
# the methods ticked when the view opens, in the order of the registry (the order the page lists them)
DEFAULT_METHODS = [name for name in ATTRIBUTIONS if name in ("gradcam", "guided_backprop", "saliency",
                                                             "integrated_gradients")]


@pytest.fixture
def page(context, server):
    with checked_page(context) as page:
        yield page


def ask(server, method: str, path: str, body: dict | None = None) -> dict:
    status, answer = server.request(method, path, body, timeout=120)
    assert status in (200, 202), answer
    return answer


def explain_a_sample_digit(page, server) -> list[list[int]]:
    """Open the view, take a random test digit and wait for the default methods' maps: the digit's pixels."""
    page.goto(server.url + "/#/explain")
    wait_until(page, "document.querySelectorAll('.method-choice input').length === 10")
    page.get_by_text("Choose an input").click()
    with page.expect_response(re.compile(r"/api/samples")) as sampled:
        page.get_by_role("button", name="Random test digit").click()
    wait_until(page, f"document.querySelectorAll('figure.attribution').length === {len(DEFAULT_METHODS)}", 30)
    return sampled.value.json()["pixels"]


def legend_ends(page) -> list[tuple[str, float, float]]:
    """Each map's method and its colour scale's two ends, as the legends say them."""
    return page.evaluate("""[...document.querySelectorAll('figure.attribution')].map(f => {
        const [, low, high] = f.querySelector('.legend').getAttribute('aria-label').match(/from (\\S+) to (\\S+)$/);
        return [f.dataset.method, Number(low), Number(high)]; })""")


def test_methods_side_by_side_each_on_its_own_scale_or_on_one(page, server):
    pixels = explain_a_sample_digit(page, server)
    answer = ask(server, "POST", "/api/attributions", {"pixels": pixels, "methods": DEFAULT_METHODS, "exact": True})
    peaks = {m["name"]: float(np.abs(exact_values(m)).max()) for m in answer["maps"]}
    own = legend_ends(page)
    assert [method for method, _, _ in own] == DEFAULT_METHODS
    for method, low, high in own:  # signed maps (Integrated Gradients) run from -peak to peak, the others from 0
        signed = next(m["signed"] for m in answer["maps"] if m["name"] == method)
        assert high == pytest.approx(peaks[method], rel=5e-3)  # 3 significant digits
        assert low == (-high if signed else 0)
    assert f"Why “{answer['target_class']}”" in page.get_by_test_id("attribution-rows").inner_text()

    page.get_by_label("Colour scale").select_option("shared")
    shared = legend_ends(page)
    assert {high for _, _, high in shared} == {max(high for _, _, high in own)}
    assert all(low in (0, -high) for _, low, high in shared)

    # every map's pixels are painted from its values: the saliency map's brightest pixel is where its peak is
    assert page.evaluate("""(() => {
        const c = document.querySelector('figure[data-method=saliency] canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let best = 0, at = 0;
        for (let i = 0; i < d.length; i += 4) {
            const s = d[i] + d[i + 1] + d[i + 2];
            if (s > best) { best = s; at = i / 4; }
        }
        return at; })()""") == int(np.argmax(exact_values(answer["maps"][DEFAULT_METHODS.index("saliency")])))


def exact_values(shown: dict) -> np.ndarray:
    exact = shown["exact"]
    return np.frombuffer(base64.b64decode(exact["data"]), "<f4").reshape(exact["shape"])


def test_a_map_exported_as_png_npy_and_json_holds_the_apis_values(page, server, tmp_path):
    pixels = explain_a_sample_digit(page, server)
    figure = page.locator("figure[data-method=integrated_gradients]")
    saved = {}
    for button in ("PNG", ".npy", ".json"):
        with page.expect_download() as download:
            figure.get_by_role("button", name=button, exact=True).click()
        saved[button] = tmp_path / download.value.suggested_filename
        download.value.save_as(saved[button])
    answer = ask(server, "POST", "/api/attributions", {"pixels": pixels, "methods": ["integrated_gradients"],
                                                       "exact": True})
    expected = exact_values(answer["maps"][0])
    stem = f"mnist_cnn-v1-integrated_gradients-class{answer['target']}"
    assert saved[".npy"].name == f"{stem}.npy" and np.array_equal(np.load(saved[".npy"]), expected)
    written = json.loads(saved[".json"].read_text())
    assert written["shape"] == [28, 28] and written["target"] == answer["target"]
    assert np.array_equal(np.array(written["values"], dtype="<f4"), expected)
    # 12 px margins, the map at 280 px, its legend's bar (10 + 14) and ends (18), 4 lines: the caption's 3 and
    # "Not checked yet"
    figure_height = 280 + 10 + 14 + 18 + 4 * 18
    assert png_size(saved["PNG"]) == (12 + 280 + 12, 12 + figure_height + 12)
    assert_caption_drawn(page, saved["PNG"], tmp_path)
    with page.expect_download() as download:
        page.get_by_role("button", name="Save the row as PNG").click()
    row = tmp_path / download.value.suggested_filename
    download.value.save_as(row)
    width, height = png_size(row)
    assert row.name == f"mnist_cnn-v1-class{answer['target']}-methods.png"
    assert width == 12 + 292 * len(DEFAULT_METHODS) and height == 12 + 24 + figure_height + 12  # a title line


def png_size(path) -> tuple[int, int]:
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def assert_caption_drawn(page, path, tmp_path) -> None:
    """The caption's area holds dark text on white, and the legend's row the colour table."""
    from PIL import Image
    picture = np.asarray(Image.open(path).convert("RGB")).astype(int)
    caption = picture[304 + 30:, 12:292]
    assert (caption.sum(axis=2) < 300).mean() > 0.02  # text: dark pixels
    bar = picture[12 + 280 + 10 + 7, 12:292]
    assert len({tuple(p) for p in bar}) > 50  # the diverging table, not a blank


def test_a_slow_method_shows_its_progress_and_can_be_cancelled(page, server):
    page.goto(server.url + "/#/explain")
    page.get_by_label("Model and version").select_option("efficientnet_lite0@")
    wait_until(page, "document.querySelectorAll('.method-choice input').length === 10")
    for box in page.locator(".method-choice input").all():
        box.set_checked(box.get_attribute("value") in ("occlusion", "integrated_gradients"))
    page.get_by_text("Choose an input").click()
    page.locator("[data-photo=coffee]").click()
    progress = page.get_by_test_id("explain-progress")
    wait_until(page, "/of \\d+ inputs/.test(document.querySelector('[data-testid=explain-progress]').textContent)",
               60)
    page.get_by_role("button", name="Cancel").click()
    wait_until(page, "document.querySelector('[data-testid=explain-progress]').textContent.startsWith('Cancelled')")
    assert page.locator("figure.attribution").count() <= 1  # occlusion comes second: never reached
    # the page goes on: a quick method now
    for box in page.locator(".method-choice input").all():
        box.set_checked(box.get_attribute("value") == "saliency")
    page.get_by_role("button", name="Explain").click()
    wait_until(page, "document.querySelector('figure[data-method=saliency]')", 30)
    assert progress.inner_text() == ""


def test_each_method_is_shown_with_its_sanity_checks_and_faithfulness(page, server):
    page.goto(server.url + "/#/train")  # a version trained on shuffled labels, from the train view's form
    page.get_by_label("Epochs").fill("0.2")
    page.get_by_label("Shuffle the labels").check()
    with page.expect_response(re.compile(r"/api/jobs$")) as started:
        page.get_by_role("button", name="Start training").click()
    job = started.value.json()
    assert job["config"]["shuffle_labels"] is True
    deadline = time.monotonic() + 120
    while ask(server, "GET", f"/api/jobs/{job['id']}")["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, "the shuffled-label run did not finish"
        time.sleep(0.5)
    shuffled = [v for v in ask(server, "GET", "/api/models/mnist_cnn")["versions"] if v["shuffled_labels"]]
    assert len(shuffled) == 1
    explain_a_sample_digit(page, server)  # the model list is read when the page opens: after the run
    for box in page.locator(".method-choice input").all():
        box.set_checked(box.get_attribute("value") in ("gradcam", "guided_backprop"))
    page.get_by_role("button", name="Check these methods").click()
    wait_until(page, "document.querySelectorAll('[data-testid=checks-gradcam] li, "
                     "[data-testid=checks-guided_backprop] li').length === 8", 120)
    assert page.get_by_test_id("checks-saliency").inner_text() == "Not checked yet: “Check these methods”."
    for method in ("gradcam", "guided_backprop"):
        sanity = ask(server, "POST", "/api/sanity", {"method": method})
        data = ask(server, "POST", "/api/sanity", {"method": method, "against_version": shuffled[0]["version"]})
        curves = ask(server, "POST", "/api/faithfulness", {"method": method})
        assert sanity["cached"] and data["cached"] and curves["cached"]  # the page asked for the same checks
        lines = page.get_by_test_id(f"checks-{method}").locator("li").all_inner_texts()
        assert lines[0] == f"Weights randomised: {sanity['verdict']}"
        assert lines[1] == f"Labels shuffled: {data['verdict']}"
        assert lines[2:] == [
            f"Deletion AUC {curves['deletion']['auc']:.3f} (random order {curves['random']['deletion']['auc']:.3f}; "
            "lower is better)",
            f"Insertion AUC {curves['insertion']['auc']:.3f} (random order {curves['random']['insertion']['auc']:.3f}; "
            "higher is better)"]
        classes = page.get_by_test_id(f"checks-{method}").locator("li").evaluate_all("l => l.map(i => i.className)")
        verdict = {True: "passes", False: "fails"}
        assert classes == [sanity["outcome"], data["outcome"], verdict[curves["deletion_beats_random"]],
                           verdict[curves["insertion_beats_random"]]]


def test_a_confusion_cell_opens_its_mistakes_and_one_opens_in_the_explain_view(page, server):
    started = ask(server, "POST", "/api/evaluations", {"model": "mnist_cnn", "version": 1, "dataset": "mnist:test"})
    page.goto(server.url + f"/#/evaluate/{started['id']}")
    page.locator("[data-testid=confusion] .main-svg").first.wait_for(timeout=60_000)
    report = ask(server, "GET", f"/api/evaluations/{started['id']}")["report"]
    names = [report["class_names"][c] for c in report["metrics"]["classes"]]
    # the most frequent confusion: click its cell (the y axis runs top to bottom)
    count, row, column = max((n, i, j) for i, counts in enumerate(report["metrics"]["confusion"])
                             for j, n in enumerate(counts) if i != j)
    cells = page.locator("[data-testid=confusion] .nsewdrag").first
    cells.scroll_into_view_if_needed()
    box = cells.bounding_box()
    x, y = (box["x"] + (column + 0.5) * box["width"] / len(names), box["y"] + (row + 0.5) * box["height"] / len(names))
    page.mouse.move(x, y)  # Plotly clicks the point under its hover label
    hover = page.locator("[data-testid=confusion] .hoverlayer .hovertext")
    hover.wait_for()
    assert hover.text_content() == f"true {names[row]}, predicted {names[column]}: {count}"
    page.mouse.click(x, y)
    title = page.get_by_test_id("mistakes-title")
    wait_until(page, "document.querySelector('[data-testid=mistakes-title]').textContent.includes('taken for')")
    assert title.inner_text().startswith(f"{count} image(s) of {names[row]} taken for {names[column]}")
    in_cell = [m for m in report["misclassified"] if (m["label"], m["predicted"]) == (names[row], names[column])]
    buttons = page.locator("[data-testid=mistakes] button")
    assert buttons.count() == len(in_cell)
    assert [float(t.split("\n")[-1].rstrip("%")) for t in buttons.all_inner_texts()] == [
        round(m["confidence"] * 100, 1) for m in in_cell]  # most confident first
    buttons.first.click()
    page.get_by_role("button", name="Open in Explain: every method, for both classes").click()
    wait_until(page, f"document.querySelectorAll('figure.attribution').length === {2 * len(DEFAULT_METHODS)}", 60)
    headings = page.locator(".attribution-row h3").all_inner_texts()
    assert headings == [f"Why “{names[column]}”", f"Why “{names[row]}”"]  # the predicted class, then the true one
    assert page.evaluate("location.hash") == "#/explain"
