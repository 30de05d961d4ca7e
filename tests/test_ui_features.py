"""What each channel looks for, in headless Chromium against a real `convscope serve`: the channels page (a layer's
visualizations, top patches and first-layer filters; a page visualized, then cancelled) and an enlarged channel
in the photo view's layer panel."""

from __future__ import annotations

import pytest

from convscope.testing.browser import checked_page, module_fixtures, wait_until

server, context = module_fixtures("ui-features")
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(context, server):
    with checked_page(context) as page:
        yield page


def ask(server, path: str, body: dict) -> dict:
    status, answer = server.request("POST", path, body, timeout=120)
    assert status == 200, answer
    return answer


def sources(page, selector: str) -> list[str]:
    """The source each patch picture names (its alt text: "source: value")."""
    return page.locator(selector).evaluate_all("images => images.map(i => i.alt.split(': ')[0])")


def test_a_layers_channels_with_their_images_patches_and_filters(page, server):
    page.goto(server.url + "/#/features")
    wait_until(page, "document.querySelectorAll('.feature-card').length === 16", 30)
    assert page.locator("canvas.channel-filter").count() == 16  # conv1: each channel's 3x3 filter beside it
    page.get_by_label("Layer").select_option("relu2")
    wait_until(page, "document.querySelectorAll('.feature-card .patches').length === 16", 60)
    assert page.locator("canvas.channel-filter").count() == 0  # a ReLU has no filters
    top = ask(server, "/api/features/top", {"layer": "relu2", "channel": 3, "k": 5})
    assert sources(page, ".feature-card[data-channel='3'] .patches img") == [e["source"] for e in top["examples"]]

    page.get_by_label("Steps").fill("12")
    page.get_by_role("button", name="Visualize this page").click()  # the steps' change comes first, on blur
    wait_until(page, "document.querySelectorAll('.feature-card img.visualization[src]').length === 16", 120)
    made = ask(server, "/api/features/visualize", {"layer": "relu2", "channel": 7, "steps": 12})
    assert made["cached"] and page.locator(".feature-card[data-channel='7'] img.visualization").get_attribute(
        "src") == made["images"][0]

    page.get_by_label("Steps").fill("400")  # new images are needed: cancel after the first
    page.get_by_label("Steps").dispatch_event("change")
    wait_until(page, "document.querySelectorAll('.feature-card img.visualization[src]').length === 0")
    page.get_by_role("button", name="Visualize this page").click()
    wait_until(page, "/channel 1 \\(2 of 16\\)/.test(document.querySelector('[data-testid=features-progress]')"
                     ".textContent)", 60)
    page.get_by_role("button", name="Cancel").click()
    wait_until(page, "document.querySelector('[data-testid=features-progress]').textContent.startsWith('Cancelled')")
    done = page.locator(".feature-card img.visualization[src]").count()
    assert 1 <= done < 16
    kept = ask(server, "/api/features/visualize", {"layer": "relu2", "channel": 0, "steps": 400, "only_cached": True})
    assert kept["images"]  # the first was finished and kept


def test_an_enlarged_channel_shows_what_it_looks_for(page, server):
    page.goto(server.url + "/#/photo")
    page.locator("[data-photo=chelsea]").click()
    page.click("[data-testid=layer-graph] [data-layer='_conv_stem']")
    page.wait_for_selector("[data-testid=channel-grid] canvas")
    page.click("[data-testid=channel-grid] canvas[data-channel='3']")
    section = page.get_by_test_id("channel-looks-for")
    section.wait_for()
    assert "What channel 3 looks for" in section.inner_text()
    wait_until(page, "document.querySelectorAll('[data-testid=channel-looks-for] .patches img').length === 4", 60)
    top = ask(server, "/api/features/top", {"model": "efficientnet_lite0", "layer": "_conv_stem", "channel": 3})
    assert sources(page, "[data-testid=channel-looks-for] .patches img") == [e["source"] for e in top["examples"]]
    assert "All 4 images of photos, the strongest first" in section.inner_text()  # an image model's: the samples
    section.get_by_role("button", name="Visualize (optimise an image)").click()
    # the image shows while it improves: there, with the button still disabled and the progress short of the end
    wait_until(page, """(() => {
        const section = document.querySelector('[data-testid=channel-looks-for]');
        const bar = section.querySelector('progress');
        return section.querySelector('img.visualization[src]') && section.querySelector('button').disabled
            && bar.value < bar.max; })()""", 120)
    wait_until(page, "document.querySelector('[data-testid=channel-looks-for] button').disabled === false", 120)
    made = ask(server, "/api/features/visualize", {"model": "efficientnet_lite0", "layer": "_conv_stem",
                                                   "channel": 3})
    assert made["cached"] and section.locator("img.visualization").get_attribute("src") == made["images"][0]
    assert "Optimised image: 256 steps" in section.inner_text()
