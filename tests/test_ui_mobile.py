"""The draw view, the dashboard and the train view on a phone (390x844) and a tablet (768x1024), in headless
Chromium against a real `convscope serve`: nothing scrolls sideways, every control is on the screen and can be
used, and on a phone the prediction shows right under the pad, without scrolling. (The photo and compare views:
test_ui_photos.py.)"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from convscope.testing.browser import assert_fits, checked_page, module_fixtures, wait_until
from test_ui_train_3d import run_job

SIZES = [(390, 844), (768, 1024)]
server, context = module_fixtures("ui-mobile")


@pytest.fixture(scope="module", autouse=True)
def listed(server):
    """Something for the dashboard and the train view to list: a saved prediction, a report, a finished run."""
    pixels = server.request("GET", "/api/samples?digit=3&seed=0")[1]["pixels"]
    status, saved = server.request("POST", "/api/predictions", {"pixels": pixels})
    assert status == 201, saved
    wrong = (saved["predicted"] + 1) % 10
    status, body = server.request("POST", f"/api/predictions/{saved['id']}/reports",
                                  {"correct_label": wrong, "reason": "a test report with a fairly long reason"})
    assert status == 201, body
    job = run_job(server)
    assert job["status"] == "completed", job


@contextmanager
def screen(context, server, width: int, height: int, path: str):
    """A tab the size of the device's screen, opened at `path`."""
    with checked_page(context) as page:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(server.url + path)
        yield page


def draw_one(page) -> None:
    """A "1" drawn with touch-sized mouse moves across the pad, whatever size the pad is shown at."""
    box = page.locator("canvas.pad").bounding_box()
    done = page.evaluate("window.__convscope.timings.length") + 1
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.9, steps=8)
    page.mouse.up()
    wait_until(page, f"window.__convscope.timings.length >= {done}", 20)


@pytest.mark.parametrize("width, height", SIZES)
def test_the_draw_view_fits_and_shows_the_prediction_under_the_pad(context, server, width, height):
    with screen(context, server, width, height, "/") as page:
        page.wait_for_selector("section.layer[data-layer=conv1] canvas.maps")
        draw_one(page)
        wait_until(page, "document.querySelector('.prediction .predicted-class').textContent === '1'")
        assert_fits(page)
        assert page.evaluate("window.scrollY") == 0
        prediction = page.locator(".prediction").bounding_box()
        pad = page.locator("canvas.pad").bounding_box()
        if width < 500:  # a phone: the pad as wide as the screen allows, the prediction right under it
            assert prediction["y"] + prediction["height"] <= height
            assert pad["width"] >= width - 80 and pad["x"] >= 0 and pad["x"] + pad["width"] <= width
        # every control can be used: a sample, the eraser, the CAM method, save
        page.get_by_role("button", name="Eraser").click()
        assert page.get_by_role("button", name="Eraser").get_attribute("aria-pressed") == "true"
        page.get_by_role("button", name="Pen").click()
        page.get_by_label("CAM method").select_option("saliency")
        page.get_by_label("Digit to sample").select_option("4")
        page.get_by_role("button", name="Random sample").click()
        page.locator(".prediction .truth", has_text="true label 4").wait_for()
        page.get_by_role("button", name="Save").click()
        page.get_by_text("Saved as #").wait_for()
        assert_fits(page)


@pytest.mark.parametrize("width, height", SIZES)
def test_the_dashboard_fits(context, server, width, height):
    with screen(context, server, width, height, "/#/dashboard") as page:
        page.locator("tr.row").first.wait_for()
        assert_fits(page)
        page.locator("tr.row").first.click()  # the detail view, with its re-run
        page.get_by_role("button", name="Re-run").first.wait_for()
        assert_fits(page)


@pytest.mark.parametrize("width, height", SIZES)
def test_the_train_view_fits(context, server, width, height):
    with screen(context, server, width, height, "/#/train") as page:
        page.locator(".train-view .message.info", has_text="finished").wait_for(timeout=30_000)
        wait_until(page, "document.querySelectorAll('.probe').length === 10", 20)
        assert_fits(page)
        page.get_by_label("Epochs").fill("2")
        assert page.get_by_role("button", name="Activate").is_visible()


@pytest.mark.parametrize("width, height", SIZES)
def test_the_architecture_and_3d_views_fit(context, server, width, height):
    with screen(context, server, width, height, "/#/architecture") as page:
        page.locator("[data-testid=layer-panel] .layer-weights").wait_for()  # the graph and the first layer
        assert_fits(page)
        page.goto(server.url + "/#/network")
        page.get_by_role("button", name="Random sample").click()
        wait_until(page, "window.__convscope.network3d?.updates >= 1", 30)
        assert_fits(page)
