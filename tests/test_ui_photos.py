"""The photo workbench, the layer graph and compare, in headless Chromium against a real `convscope serve` with no
weights downloaded and no network (its weights mirror is a port where nothing listens): a sample photo through
EfficientNet-Lite0 (the one ImageNet model whose weights ship in a package), a layer's 64 feature maps, a block
opened in the graph, two models compared, and a model without weights saying so and how to get them."""

from __future__ import annotations

from pathlib import Path

import pytest

from convscope.testing.browser import checked_page, module_fixtures, wait_until

PHOTOS = Path(__file__).resolve().parents[1] / "src" / "convscope" / "data" / "photos"

# Whether every canvas matching the selector has pixels that differ (not one flat colour).
NON_BLANK = """(selector) => [...document.querySelectorAll(selector)].map((canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 4; i < data.length; i += 4) {
    if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) return true;
  }
  return false;
})"""


server, context = module_fixtures("ui-photos", env={"CONVSCOPE_WEIGHTS_MIRROR": "http://127.0.0.1:9"}, height=900)


@pytest.fixture
def page(context, server):
    with checked_page(context) as page:
        page.goto(server.url + "/#/photo")
        page.wait_for_selector("button.sample-photo[data-photo=coffee]")
        yield page


def choose_sample(page, name: str) -> dict:
    with page.expect_response(lambda r: r.url.endswith("/api/predict") and r.status == 200) as answer:
        page.click(f"button.sample-photo[data-photo={name}]")
    page.wait_for_selector("[data-testid=top-classes] li")
    return answer.value.json()


def test_a_sample_photo_shows_its_top_five_and_a_cam_over_it(page):
    assert page.get_by_label("Image model").input_value() == "efficientnet_lite0"
    answer = choose_sample(page, "coffee")
    rows = page.locator("[data-testid=top-classes] li")
    assert rows.count() == 5 and rows.first.inner_text().startswith("espresso")
    assert answer["cam"]["layer"] == "_relu:2" and answer["input"]["shape"] == [3, 224, 224]
    assert page.evaluate(NON_BLANK, "canvas.photo-cam") == [True]
    assert page.evaluate(NON_BLANK, "canvas.model-input") == [True]
    assert "gradcam at _relu:2, for “espresso”" in page.inner_text(".cam-caption")
    assert page.evaluate("window.__convscope.timings.length") >= 1

    # The CAM layer menu offers only layers a CAM can be laid over: spatial ones, never the classifier.
    options = page.locator("select[aria-label='CAM layer'] option").evaluate_all("os => os.map(o => o.value)")
    assert "_blocks.15._project_conv" in options and "_fc" not in options and "_dropout" not in options
    # Another class and method: the answer explains that class.
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as second:
        page.get_by_label("Class to explain").fill("cup")
        page.get_by_label("Class to explain").dispatch_event("change")
    assert second.value.json()["target_class"] == "cup"
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as third:
        page.get_by_label("Explanation method").select_option("saliency")
    assert third.value.json()["cam"]["method"] == "saliency"


def test_clicking_a_layer_draws_64_feature_maps_and_its_weights(page):
    choose_sample(page, "chelsea")
    page.wait_for_selector("[data-testid=layer-graph] [data-node='block:_blocks.1']")
    page.click("[data-testid=layer-graph] [data-node='block:_blocks.1']")  # open a collapsed block
    node = page.wait_for_selector("[data-testid=layer-graph] [data-layer='_blocks.1._expand_conv']")
    with page.expect_response(lambda r: r.url.endswith("/api/layers/activations")) as answer:
        node.click()
    assert answer.value.json()["channels"] == 96
    page.wait_for_selector("[data-testid=channel-grid] canvas")
    assert page.evaluate(NON_BLANK, "[data-testid=channel-grid] canvas") == [True] * 64
    assert "channels 1-64 of 96" in page.inner_text("[data-testid=layer-panel]")
    page.get_by_role("button", name="Next ▸").click()
    wait_until(page, "document.querySelectorAll('[data-testid=channel-grid] canvas').length === 32")
    weights = page.wait_for_selector("[data-testid=layer-panel] .layer-weights")
    assert "weight 96×16×1×1" in weights.inner_text() and "bias" not in weights.inner_text()  # conv, no bias

    # Enter on a focused map opens its enlargement, which stays open, with a colour scale.
    page.focus("[data-testid=channel-grid] canvas[data-channel='64']")
    page.keyboard.press("Enter")
    page.wait_for_selector("dialog.channel-dialog[open] canvas.enlarged")
    page.wait_for_timeout(200)
    assert page.locator("dialog.channel-dialog[open]").count() == 1
    assert "channel 64" in page.inner_text("dialog.channel-dialog") and page.locator(
        "dialog.channel-dialog .legend").count() == 1


def test_the_first_layer_shows_rgb_filters_in_colour(page):
    choose_sample(page, "astronaut")
    page.click("[data-testid=layer-graph] [data-layer='_conv_stem']")
    page.wait_for_selector("canvas.rgb-filters")
    assert page.evaluate(NON_BLANK, "canvas.rgb-filters") == [True]
    assert page.locator("[data-testid=channel-grid] canvas").count() == 32  # a page holds the 32 there are


def test_a_model_without_weights_offers_the_download_and_says_why_it_failed_offline(page):
    page.get_by_label("Image model").select_option("resnet50")
    panel = page.locator("[data-testid=weights-state]")
    panel.get_by_role("button", name="Download 103 MB").wait_for()
    assert "put resnet50-11ad3fa6.pth in the server's weights folder" in panel.inner_text()
    panel.get_by_role("button", name="Download 103 MB").click()
    panel.get_by_text("The download failed").wait_for(timeout=20_000)
    assert "could not download http://127.0.0.1:9/resnet50-11ad3fa6.pth" in panel.inner_text()
    assert panel.get_by_role("button", name="Try again").is_visible()
    assert page.get_by_label("Model and version").input_value() == "resnet50@"  # the header follows


def test_compare_two_models_side_by_side(context, server):
    with checked_page(context) as page:
        page.goto(server.url + "/#/compare")
        page.wait_for_selector("button.sample-photo[data-photo=coffee]")
        assert page.get_by_label("vgg16 (weights not downloaded, 553 MB)").is_disabled()
        page.get_by_text("Models (2-4)").wait_for()  # how many one comparison takes: the server's schema says
        with page.expect_response(lambda r: r.url.endswith("/api/compare")) as answer:
            page.click("button.sample-photo[data-photo=coffee]")
        body = answer.value.json()
        assert sorted(m["model"] for m in body["models"]) == ["efficientnet_lite0", "mnist_cnn"]
        page.wait_for_selector(".compare-column[data-model=mnist_cnn]")
        assert page.locator(".compare-column").count() == 2
        verdict = page.inner_text("[data-testid=compare-verdict]")
        assert verdict.startswith("They disagree:") and "efficientnet_lite0 says espresso" in verdict
        wait_until(page, "window.__convscope.timings.length >= 1")
        assert page.evaluate(NON_BLANK, "canvas.compare-cam") == [True, True]
        lite0 = page.locator(".compare-column[data-model=efficientnet_lite0]")
        assert "4.65 M" in lite0.inner_text()  # parameters
        lite0.get_by_label("efficientnet_lite0: layer for feature maps").select_option("_conv_stem")
        lite0.locator("[data-testid=channel-grid] canvas").first.wait_for()
        assert lite0.locator("[data-testid=channel-grid] canvas").count() == 32


OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


@pytest.mark.parametrize("width, height", [(390, 844), (768, 1024)])
def test_the_photo_and_compare_views_fit_phones_and_tablets(context, server, width, height):
    with checked_page(context) as page:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(server.url + "/#/photo")
        page.wait_for_selector("button.sample-photo[data-photo=chelsea]")
        choose_sample(page, "chelsea")
        page.click("[data-testid=layer-graph] [data-layer='_conv_stem']")
        page.wait_for_selector("[data-testid=channel-grid] canvas")
        page.wait_for_selector("[data-testid=layer-panel] .layer-weights")
        assert page.evaluate(OVERFLOW) <= 0
        top = page.locator("[data-testid=top-classes]").bounding_box()
        assert top["x"] >= 0 and top["x"] + top["width"] <= width
        page.goto(server.url + "/#/compare")
        page.wait_for_selector("button.sample-photo[data-photo=coffee]")
        page.click("button.sample-photo[data-photo=coffee]")
        page.wait_for_selector(".compare-column[data-model=mnist_cnn]")
        assert page.evaluate(OVERFLOW) <= 0


def test_a_photo_prediction_is_saved_and_reported_with_a_class_from_the_list(page, server):
    answer = choose_sample(page, "chelsea")
    panel = page.locator(".save-panel")
    with page.expect_response(lambda r: r.url.endswith("/api/predictions") and r.status == 201) as saved:
        panel.get_by_role("button", name="Save").click()
    saved_id = saved.value.json()["id"]
    assert saved.value.json()["predicted_class"] == answer["predicted_class"]
    panel.get_by_text(f"Saved as #{saved_id}").wait_for()
    panel.get_by_role("button", name="Report wrong").click()
    panel.get_by_label("Correct class").fill(answer["predicted_class"])  # what it said already: refused here
    panel.get_by_role("button", name="Send report").click()
    panel.get_by_text("That is what the model answered").wait_for()
    panel.get_by_label("Correct class").fill("Persian cat")
    panel.get_by_label("Reason").fill("long fur")
    panel.get_by_role("button", name="Send report").click()
    panel.get_by_text("Reported: Persian cat.").wait_for()
    status, body = server.request("GET", f"/api/predictions/{saved_id}")
    assert status == 200 and body["model"] == "efficientnet_lite0"
    assert [(r["correct_class"], r["reason"]) for r in body["reports"]] == [("Persian cat", "long fur")]
    page.get_by_role("link", name="Dashboard").click()  # the dashboard lists the photo by its class names
    page.get_by_label("Filter by model").select_option("efficientnet_lite0")
    row = page.locator("tr.row").first
    row.wait_for()
    assert answer["predicted_class"] in row.inner_text() and "efficientnet_lite0" in row.inner_text()
    assert "correct class Persian cat" in page.locator(".report").first.inner_text()


def test_an_upload_is_shown_and_read_upright_as_its_exif_orientation_says(page, tmp_path):
    from PIL import Image

    upright = Image.open(PHOTOS / "coffee.png").convert("RGB")  # 400x300: wider than tall
    stored = upright.transpose(Image.Transpose.ROTATE_270)  # what a camera held sideways stores: 300x400
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: turn it 90 degrees clockwise to view
    path = tmp_path / "sideways.jpg"
    stored.save(path, quality=95, exif=exif)
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
        page.get_by_label("Choose a photo").set_input_files(str(path))
    body = answer.value.json()
    assert body["predicted_class"] == "espresso"
    assert body["framing"]["source"][2] > body["framing"]["source"][3]  # the crop was taken from the upright photo
    size = page.locator("canvas.photo-cam").evaluate("c => [c.width, c.height]")
    assert size[0] > size[1]  # and it is shown upright, the CAM over the same crop


DROP_AND_PASTE = """async ([kind, url]) => {
  const blob = await (await fetch(url)).blob();
  const transfer = new DataTransfer();
  transfer.items.add(new File([blob], "dropped.png", { type: "image/png" }));
  if (kind === "drop") {
    document.querySelector(".drop-zone").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer,
      bubbles: true, cancelable: true }));
  } else {
    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true }));
  }
}"""


@pytest.mark.parametrize("kind, photo, expected", [("drop", "chelsea", "cat"), ("paste", "coffee", "espresso")])
def test_a_photo_can_be_dropped_or_pasted(page, kind, photo, expected):
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
        page.evaluate(DROP_AND_PASTE, [kind, f"/api/photos/{photo}"])
    assert expected in answer.value.json()["predicted_class"]
    page.wait_for_selector("[data-testid=top-classes] li")
    assert page.inner_text(".cam-caption").startswith("dropped.png:")

