"""The 3D view as a newcomer meets it, in headless Chromium against a real `convscope serve`: every layer labelled,
the whole network (the input included) in view at first, a pooling cell's lines going to its 2x2 window only, the
view following a drawing made on its own pad, the MLP's surfaces explained; and an ImageNet model (EfficientNet-
Lite0) shown as pictures of chosen channels, one layer per spatial size, with the top classes after them."""

from __future__ import annotations

import time

import pytest

from convscope.testing.browser import (changed_pixels, checked_page, drawn_share, module_fixtures, stage_once,
                                       stage_settled, wait_until)


server, context = module_fixtures("ui-3d")


@pytest.fixture
def page(context, server):
    with checked_page(context) as page:
        yield page


def updates(page) -> int:
    return page.evaluate("window.__convscope.network3d?.updates ?? 0")


def open_with_a_sample(page, server) -> None:
    page.goto(server.url + "/#/network")
    page.get_by_role("button", name="Random sample").click()
    wait_until(page, "window.__convscope.network3d?.updates >= 1", 30)


def test_layers_are_labelled_and_the_whole_network_is_in_view(page, server):
    open_with_a_sample(page, server)
    labels = page.locator(".stage-label.layer-label").all_inner_texts()
    assert labels[0] == "input · 1×28×28" and "pool1 · 32×13×13" in labels and labels[-1] == "softmax · 10"
    box = page.locator(".stage canvas").bounding_box()
    for layer, c, y, x in [("input", 0, 14, 14), ("softmax", 9, 0, 0), ("softmax", 0, 0, 0)]:
        point = page.evaluate(f"window.__convscope.network3d.screenPosition('{layer}', {c}, {y}, {x})")
        assert box["x"] < point["x"] < box["x"] + box["width"] and box["y"] < point["y"] < box["y"] + box["height"]


def test_a_pooling_cell_depends_on_its_window_only(page, server):
    open_with_a_sample(page, server)
    point = page.evaluate("window.__convscope.network3d.screenPosition('pool1', 5, 6, 6)")
    page.mouse.move(point["x"], point["y"])
    wait_until(page, "document.querySelector('.tooltip').textContent.startsWith('pool1 ')", 10)
    assert page.locator(".tooltip").inner_text().startswith("pool1 (pool), channel 5, row 6, column 6: ")
    assert page.evaluate("window.__convscope.network3d.links") == {"relu1": 4}  # its 2x2 window, same channel


def test_the_view_follows_a_drawing_made_on_its_pad(page, server):
    page.goto(server.url + "/#/network")
    page.locator(".mini-pad canvas").wait_for()
    page.locator(".stage-label.layer-label").last.wait_for()  # the cells are built, still grey: no input yet
    before = stage_settled(page)
    assert updates(page) == 0
    box = page.locator(".mini-pad canvas").bounding_box()
    answers = []  # the view predicts while the stroke is drawn too: the last answer is the one it shows
    page.on("response", lambda r: r.url.endswith("/api/predict") and r.ok and answers.append(r))
    page.mouse.move(box["x"] + 70, box["y"] + 15)
    page.mouse.down()
    page.mouse.move(box["x"] + 70, box["y"] + 125, steps=12)
    page.mouse.up()
    wait_until(page, "window.__convscope.network3d.updates >= 1", 30)
    deadline = time.monotonic() + 10
    while True:  # until the message shows the latest answer
        predicted = answers[-1].json()
        shown = f"mnist_cnn v1 predicts {predicted['predicted_class']} ({predicted['confidence'] * 100:.1f}%)"
        if page.locator(".network-view .message").inner_text() == shown:
            break
        assert time.monotonic() < deadline, (page.locator(".network-view .message").inner_text(), shown)
        time.sleep(0.05)
    stage_once(page, lambda picture: changed_pixels(picture, before) > 100)  # the cells took the drawing's colours


def test_the_mlp_says_why_it_has_no_surfaces(page, server):
    open_with_a_sample(page, server)
    page.get_by_label("Model and version").select_option("mnist_mlp@")
    page.get_by_text("mnist_mlp has no layer with a spatial map").wait_for()
    assert page.locator(".surfaces").is_hidden()
    labels = page.locator(".stage-label.layer-label").all_inner_texts()
    assert labels[0] == "input · 1×28×28" and any(label.startswith("sigmoid1") for label in labels)


def test_an_imagenet_model_is_shown_as_pictures_of_chosen_channels(page, server):
    page.goto(server.url + "/#/photo")
    page.click("button.sample-photo[data-photo=coffee]")  # the photo view's photo is the 3D view's input
    page.wait_for_selector("[data-testid=top-classes] li")
    page.get_by_role("link", name="Network in 3D").click()
    wait_until(page, "window.__convscope.network3d?.updates >= 1", 60)
    labels = page.locator(".stage-label.layer-label").all_inner_texts()
    assert labels[0] == "input · 3×224×224"
    # one layer per spatial size: the last activation before the maps shrink (the expansion before each
    # stride-2 depthwise conv), then the head's
    assert [label.split(" · ")[:2] for label in labels[1:]] == [
        ["_blocks.1._relu", "96×112×112"], ["_blocks.3._relu", "144×56×56"], ["_blocks.5._relu", "240×28×28"],
        ["_blocks.11._relu", "672×14×14"], ["_relu:2", "1280×7×7"]]
    assert all(label.endswith(" · the 16 strongest channels") for label in labels[1:])
    winner = page.locator(".stage-label.winner").inner_text()
    assert winner.startswith("espresso ")
    stage_once(page, lambda picture: drawn_share(picture) > 0.05)  # pictures, not blank

    page.get_by_label("Layer whose channels to choose").select_option(index=1)
    page.get_by_label("Channels to show").fill("0-3, 9")
    with page.expect_response(lambda r: r.url.endswith("/api/layers/activations")
                              and '"channels":[0,1,2,3,9]' in (r.request.post_data or "")) as asked:
        page.get_by_role("button", name="Show").click()
    assert asked.value.json()["order"] == [0, 1, 2, 3, 9]
    wait_until(page, "[...document.querySelectorAll('.stage-label.layer-label')]"
                     ".some((l) => l.textContent.endsWith('channels 0, 1, 2, 3, 9'))", 30)

    box = page.locator(".stage canvas").bounding_box()
    for dx in range(-200, 201, 25):  # somewhere near the middle is a picture: its reading names a channel
        page.mouse.move(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2)
        page.wait_for_timeout(60)
        if "channel" in page.locator(".tooltip").inner_text() or "input" in page.locator(".tooltip").inner_text():
            break
    assert "row" in page.locator(".tooltip").inner_text()
