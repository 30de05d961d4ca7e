"""The evaluate view in headless Chromium against a real `convscope serve`: a model scored on MNIST and on a folder of
photos, the report's figures, charts and mistakes, a mistake's explanation, deep links, and a refused dataset; and
a model fine-tuned from the train view on a folder, then evaluated."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from convscope.testing.browser import assert_fits, checked_page, module_fixtures, wait_until
from conftest import SHAPES, write_shapes
from convscope.data.photos import get_photo


def _datasets() -> Path:
    """photos: two sample photos filed under ImageNet classes (one by WordNet id: n02123045 is tabby); shapes:
    generated circles, squares and triangles."""
    root = Path(tempfile.mkdtemp(prefix="convscope-ui-datasets-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    write_shapes(root / "shapes", per_class=6, size=28)
    for folder, photo in (("espresso", "coffee"), ("n02123045", "chelsea")):
        (root / "photos" / folder).mkdir(parents=True)
        (root / "photos" / folder / f"{photo}.png").write_bytes(get_photo(photo).path.read_bytes())
    return root


server, context = module_fixtures("ui-evaluate", env={"CONVSCOPE_DATASETS_DIR": str(_datasets())})
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(context, server):
    with checked_page(context) as page:
        yield page


def api(server, path: str) -> dict:
    with urllib.request.urlopen(server.url + path) as response:
        return json.loads(response.read())


def evaluate(page, server, model: str, dataset: str) -> dict:
    page.goto(server.url + "/#/evaluate")
    wait_until(page, f"[...document.querySelectorAll('option')].some(o => o.value === '{dataset}')")
    page.get_by_label("Model to evaluate").select_option(model)
    page.get_by_label("Dataset").select_option(dataset)
    before = api(server, "/api/evaluations")["total"]
    page.get_by_role("button", name="Evaluate").click()
    page.get_by_test_id("evaluation-figures").wait_for(timeout=60_000)
    latest = api(server, "/api/evaluations")["items"][0]
    assert api(server, "/api/evaluations")["total"] == before + 1
    return api(server, f"/api/evaluations/{latest['id']}")


def painted(page, selector: str) -> list[bool]:
    """For each canvas matching ``selector``: whether it holds more than one colour."""
    return page.evaluate(f"""[...document.querySelectorAll('{selector}')].map(c => {{
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return new Set(Array.from({{length: d.length / 4}}, (_, i) => d[4 * i] * 65536 + d[4 * i + 1] * 256
            + d[4 * i + 2])).size > 1; }})""")


def test_mnist_report_and_a_mistake_explained(page, server):
    evaluation = evaluate(page, server, "mnist_cnn@1", "mnist:test")
    metrics = evaluation["report"]["metrics"]
    figures = page.get_by_test_id("evaluation-figures").inner_text()
    assert f"{metrics['accuracy'] * 100:.2f}%" in figures and f"{metrics['ece']:.4f}" in figures
    assert page.locator("[data-testid=per-class] tbody tr").count() == 10
    page.locator("[data-testid=reliability] .main-svg").first.wait_for()
    page.locator("[data-testid=confusion] .main-svg").first.wait_for()
    mistakes = page.locator("[data-testid=mistakes] button")
    assert mistakes.count() == len(evaluation["report"]["misclassified"]) > 0
    first = evaluation["report"]["misclassified"][0]
    assert mistakes.first.inner_text().startswith(f"{first['label']} → {first['predicted']}")
    wait_until(page, "document.querySelector('[data-testid=mistakes] img').naturalWidth > 0")
    mistakes.first.click()
    explained = page.get_by_test_id("mistake-explained")
    explained.wait_for(timeout=20_000)
    assert painted(page, "[data-testid=mistake-explained] canvas") == [True, True]
    assert f"why “{first['predicted']}”" in explained.inner_text()
    assert f"where it saw “{first['label']}”" in explained.inner_text()


def test_a_folder_of_photos_on_an_imagenet_model_and_a_deep_link(page, server):
    evaluation = evaluate(page, server, "efficientnet_lite0@1", "folder:photos")
    assert evaluation["report"]["metrics"]["accuracy"] == 0.5  # espresso right; the tabby taken for a tiger cat
    assert "50.00%" in page.get_by_test_id("evaluation-figures").inner_text()
    mistake = page.locator("[data-testid=mistakes] button")
    assert mistake.count() == 1 and mistake.inner_text().startswith("tabby → tiger cat")
    wait_until(page, "document.querySelector('[data-testid=mistakes] img').naturalWidth === 451")  # chelsea.png
    mistake.click()
    page.get_by_test_id("mistake-explained").wait_for(timeout=30_000)
    assert painted(page, "[data-testid=mistake-explained] canvas") == [True, True]

    page.goto(server.url + "/#/evaluate")  # the report again from a link, as shared
    page.goto(server.url + f"/#/evaluate/{evaluation['id']}")
    page.get_by_test_id("evaluation-figures").wait_for()
    assert "efficientnet_lite0 v1 on folder:photos" in page.get_by_test_id("evaluation-report").inner_text()
    page.get_by_text("Earlier evaluations").click()
    assert page.locator(".evaluation-history tbody tr").count() == api(server, "/api/evaluations")["total"]


def test_a_dataset_the_model_cannot_read_is_refused_with_the_reason(page, server):
    page.goto(server.url + "/#/evaluate")
    wait_until(page, "[...document.querySelectorAll('option')].some(o => o.value === 'mnist:test')")
    page.get_by_label("Model to evaluate").select_option("efficientnet_lite0@1")
    page.get_by_label("Dataset").select_option("mnist:test")
    page.get_by_role("button", name="Evaluate").click()
    alert = page.locator(".evaluate-view .message.error")
    alert.wait_for()
    assert "efficientnet_lite0 does not read MNIST digits" in alert.inner_text()


@pytest.mark.parametrize("width, height", [(390, 844), (768, 1024)])
def test_a_report_fits_a_phone_and_a_tablet(page, server, width, height):
    status, started = server.request("POST", "/api/evaluations", {"model": "mnist_cnn", "dataset": "mnist:test"})
    assert status == 202, started
    page.set_viewport_size({"width": width, "height": height})
    page.goto(server.url + f"/#/evaluate/{started['id']}")  # followed until done, then shown
    page.get_by_test_id("evaluation-figures").wait_for()
    page.locator("[data-testid=confusion] .main-svg").first.wait_for()
    assert_fits(page)


def test_a_model_fine_tuned_from_the_train_view_is_then_evaluated(page, server):
    page.goto(server.url + "/#/train")
    page.get_by_text("… or fine-tune one on a folder of images").click()
    form = page.get_by_role("form", name="Fine-tune a model")
    wait_until(page, "[...document.querySelectorAll('option')].some(o => o.value === 'folder:shapes')")
    form.get_by_label("Start from").select_option("mnist_cnn")
    form.get_by_label("Image folder").select_option("folder:shapes")
    assert form.get_by_label("Name of the result").input_value() == "shapes-mnist_cnn"  # suggested
    form.get_by_label("Name of the result").fill("shapes-ui")
    form.get_by_label("Epoch limit").fill("5")
    form.get_by_role("button", name="Fine-tune").click()
    done = page.locator(".train-view .message.info", has_text="saved as shapes-ui v1")
    done.wait_for(timeout=90_000)
    assert "validation accuracy" in done.inner_text()
    assert page.evaluate("document.querySelectorAll('.chart')[1].data[1].x.length") >= 1  # validation curve
    row = page.locator(".runs tbody tr").first
    assert "fine-tuned from mnist_cnn on folder:shapes" in row.inner_text()
    wait_until(page, "[...document.querySelectorAll('#model-select option')].some(o => o.value === 'shapes-ui@')")

    page.goto(server.url + "/#/evaluate")
    wait_until(page, "[...document.querySelectorAll('option')].some(o => o.value === 'shapes-ui@1')")
    page.get_by_label("Model to evaluate").select_option("shapes-ui@1")
    page.get_by_label("Dataset").select_option("folder:shapes")
    page.get_by_role("button", name="Evaluate").click()
    page.get_by_test_id("evaluation-figures").wait_for(timeout=60_000)
    names = page.locator("[data-testid=per-class] tbody tr td:first-child").all_inner_texts()
    assert names == list(SHAPES)


def test_a_folder_uploaded_from_this_computer_becomes_a_dataset(page, server, tmp_path):
    folder = write_shapes(tmp_path / "my shapes", per_class=3, size=24)
    (folder / "circle" / "readme.png").write_bytes(b"not an image")
    page.goto(server.url + "/#/evaluate")
    wait_until(page, "[...document.querySelectorAll('option')].some(o => o.value === 'mnist:test')")
    page.locator(".evaluate-form").get_by_label("Folder of images to upload").set_input_files(folder)
    status = page.locator(".evaluate-form [data-testid=upload-status]")
    wait_until(page, "document.querySelector('.evaluate-form [data-testid=upload-status]')"
                     ".textContent.startsWith('Uploaded')", timeout_s=30)
    assert status.inner_text().startswith("Uploaded 9 images to folder:my-shapes; 1 refused (circle/readme.png")
    expect(page.get_by_label("Dataset")).to_have_value("folder:my-shapes")  # chosen once the list has reloaded
    listed = {d["name"]: d for d in api(server, "/api/datasets")["items"]}
    assert listed["folder:my-shapes"]["classes"] == {"circle": 3, "square": 3, "triangle": 3}
    assert server.request("DELETE", "/api/datasets/folder:my-shapes")[0] == 204  # leave the module's server as it was
