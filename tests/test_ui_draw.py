"""The draw view as a new user meets it, in a real Chromium against a real `convscope serve`: the CAM layer menu
offers only layers a CAM can use, clearing (or erasing, or a failure) leaves nothing stale, the keyboard opens a
feature map, the same file can be uploaded twice, a sample's label is shown, the report form asks rather than
assumes, unusual inputs are called so, and the MLP says it shows saliency."""

from __future__ import annotations

from PIL import Image, ImageDraw

from convscope.testing.browser import ONE, stroke, wait_until
# The same fixtures as test_ui (a server, a browser, a page): tests take them as arguments, which ruff reads as
# redefinitions of the imported names.
from test_ui import context, draw, page, server  # noqa: F401
# ruff: noqa: F811


SHOWN = "document.querySelector('.prediction .predicted-class').textContent"
PAINTED = "(c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0))"


def painted(page, selector: str) -> bool:
    return page.evaluate(f"{PAINTED}(document.querySelector('{selector}'))")


def assert_nothing_shown(page):
    assert page.evaluate(SHOWN) == "–"
    assert page.get_by_role("button", name="Save").is_disabled()
    assert page.get_by_role("button", name="Report wrong").is_disabled()
    for selector in ("canvas.pad-overlay", "[data-layer=conv1] canvas.maps", "[data-layer=fc2] canvas.maps",
                     ".seen canvas"):
        assert not painted(page, selector), selector


def options(page, label: str) -> list[str]:
    return page.get_by_label(label).locator("option").evaluate_all("os => os.map(o => o.value)")


def test_the_cam_layer_menu_offers_only_layers_a_cam_can_use(page, server):
    assert options(page, "CAM layer") == ["", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]
    page.get_by_label("CAM method").select_option("saliency")
    assert page.get_by_label("CAM layer").is_disabled()  # saliency is taken at the input
    page.get_by_label("CAM method").select_option("gradcam")
    assert page.get_by_label("CAM layer").is_enabled()
    # and the server refuses a dense layer with a 422 that names the ones it takes
    status, body = server.request("POST", "/api/predict", {"pixels": [[0] * 27 + [255]] * 28, "cam_layer": "relu3"})
    assert status == 422 and "layers a CAM can use: conv1, relu1, pool1, conv2, relu2, pool2" in \
        body["error"]["message"]


def test_clear_erasing_and_a_failure_leave_nothing_stale(page):
    for leave in ("clear", "undo", "eraser", "failure"):
        draw(page, [ONE[0]])
        wait_until(page, f"{SHOWN} === '1'")
        assert page.get_by_role("button", name="Save").is_enabled()
        if leave == "clear":
            page.get_by_role("button", name="Clear").click()
        elif leave == "undo":
            page.get_by_role("button", name="Undo").click()  # back to the empty pad
        elif leave == "eraser":
            page.get_by_role("button", name="Eraser").click()
            page.get_by_label("Pen width").fill("40")
            stroke(page, [(140, 20), (140, 270)])  # an 80-pixel eraser over the whole "1"
            page.get_by_role("button", name="Pen").click()
        else:
            page.route("**/api/predict", lambda route: route.fulfill(
                status=503, content_type="application/json",
                body='{"error": {"status": 503, "code": "unavailable", "message": "the server is busy"}}'))
            page.get_by_label("CAM method").select_option("hirescam")  # asks again, and fails
            page.locator(".input-panel .message.error", has_text="the server is busy").wait_for()
            page.unroute("**/api/predict")
            page.get_by_label("CAM method").select_option("gradcam")  # asks again (not yet answered)
            page.get_by_role("button", name="Clear").click()
            continue
        wait_until(page, f"{SHOWN} === '–'")
        assert_nothing_shown(page)


def test_a_failed_request_disables_save_and_shows_its_error(page):
    draw(page, [ONE[0]])
    page.route("**/api/predict", lambda route: route.fulfill(
        status=422, content_type="application/json",
        body='{"error": {"status": 422, "code": "invalid_input", "message": "that went wrong"}}'))
    page.get_by_label("CAM method").select_option("hirescam")
    page.locator(".input-panel .message.error", has_text="that went wrong").wait_for()
    wait_until(page, f"{SHOWN} === '–'")
    assert_nothing_shown(page)


def test_enter_on_a_feature_map_opens_it_and_it_stays_open(page):
    draw(page, [ONE[0]])
    page.locator("[data-layer=conv1] canvas.maps").focus()
    page.keyboard.press("ArrowRight")  # channel 0
    page.keyboard.press("ArrowRight")  # channel 1
    page.keyboard.press("Enter")
    assert page.evaluate("document.querySelector('dialog.enlarge').open")
    assert page.locator("dialog.enlarge h3").inner_text() == "conv1, channel 1"
    page.keyboard.press("Escape")
    assert not page.evaluate("document.querySelector('dialog.enlarge').open")


def test_the_same_file_uploaded_twice_is_predicted_twice(page, tmp_path):
    seven = tmp_path / "seven.png"
    image = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(image).line([(40, 30), (160, 30), (80, 180)], fill=0, width=14)
    image.save(seven)
    for _ in range(2):
        with page.expect_response(lambda r: r.url.endswith("/api/predict/upload") and r.status == 200):
            page.get_by_label("Upload an image").set_input_files(str(seven))
    assert page.get_by_label("Upload an image").evaluate("input => input.value") == ""


def test_a_samples_label_is_shown_beside_the_prediction_and_goes_when_drawing(page):
    page.get_by_label("Digit to sample").select_option("3")
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
        page.get_by_role("button", name="Random sample").click()
    predicted = answer.value.json()["predicted"]
    wait_until(page, f"{SHOWN} === '{predicted}'")
    truth = page.locator(".prediction .truth")
    assert truth.inner_text() == ("true label 3 ✓" if predicted == 3 else "true label 3 ✗")
    stroke(page, [(20, 20), (60, 60)])
    assert truth.is_hidden()


def test_the_report_form_asks_refuses_the_prediction_offers_none_and_keeps_the_focus(page):
    draw(page, [ONE[0]])
    wait_until(page, f"{SHOWN} === '1'")
    page.get_by_role("button", name="Report wrong").click()
    label = page.get_by_label("Correct class")
    assert label.evaluate("s => s.value") == ""  # nothing chosen for the user
    assert label.locator("option[value='1']").evaluate("o => [o.disabled, o.textContent]") == [True, "1 (predicted)"]
    reports = []
    page.on("request", lambda r: r.url.endswith("/reports") and r.method == "POST" and reports.append(r))
    page.get_by_role("button", name="Send report").click()  # nothing chosen: the form does not send
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Correct class"
    label.select_option("none")
    page.get_by_label("Reason").fill("a stick, not a digit")
    assert reports == []
    page.get_by_role("button", name="Send report").click()
    page.get_by_text("none of these classes. Thank you.").wait_for()
    assert len(reports) == 1 and reports[0].post_data_json == {"correct_label": None, "reason": "a stick, not a digit"}
    assert page.evaluate("document.activeElement.textContent").startswith("Reported #")


def test_a_speck_is_called_unusual_and_a_digit_is_not(page):
    draw(page, [[(140, 140), (143, 141)]])
    page.locator(".results .unusual", has_text="Unusual input: the ink covers").wait_for()
    draw(page, [ONE[0]])
    wait_until(page, f"{SHOWN} === '1'")
    assert page.locator(".results .unusual").is_hidden()


def test_the_mlp_explains_by_saliency_and_says_so(page):
    page.get_by_label("Model and version").select_option("mnist_mlp@")
    page.wait_for_selector("section.layer[data-layer=sigmoid1]")
    methods = page.get_by_label("CAM method").locator("option").evaluate_all(
        "os => os.map(o => [o.value, o.disabled])")
    assert methods == [["gradcam", True], ["gradcam++", True], ["hirescam", True], ["saliency", False]]
    assert page.get_by_label("CAM method").evaluate("s => s.value") == "saliency"
    assert page.get_by_label("CAM layer").is_disabled()
    answer = draw(page, [ONE[0]])
    assert answer["cam"]["method"] == "saliency"
    wait_until(page, "document.querySelectorAll('.seen figcaption')[1].textContent === 'saliency on the input'")


def test_the_page_has_a_real_favicon(page, server):
    href = page.locator("link[rel=icon]").evaluate("l => l.href")
    assert href == server.url + "/favicon.svg"
    status, svg = server.request("GET", "/favicon.svg")
    assert status == 200 and svg.startswith(b"<svg") and b"<script" not in svg
    # the browser draws it: an <img> of it has a size once loaded
    size = page.evaluate("""() => new Promise((resolve) => { const image = new Image();
        image.onload = () => resolve([image.naturalWidth, image.naturalHeight]); image.onerror = () => resolve(null);
        image.src = '/favicon.svg'; })""")
    assert size and size[0] > 0 and size[1] > 0
