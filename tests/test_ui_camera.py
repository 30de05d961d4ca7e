"""The photo view's camera, in headless Chromium with its fake camera (a moving test pattern) against a real
`convscope serve`: the camera opens, a frame is taken and goes through the model like any photo."""

from __future__ import annotations

from convscope.testing.browser import checked_page, module_fixtures, wait_until

server, context = module_fixtures("ui-camera", flags=("--use-fake-ui-for-media-stream",
                                                      "--use-fake-device-for-media-stream"))


def test_a_photo_taken_with_the_camera_goes_through_the_model(context, server):
    with checked_page(context) as page:
        page.goto(server.url + "/#/photo")
        page.get_by_role("button", name="Use the camera").click()
        wait_until(page, "document.querySelector('video.camera')?.readyState >= 2", 20)
        assert page.locator("video.camera").is_visible()
        with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
            page.get_by_role("button", name="Take the photo").click()
        body = answer.value.json()
        assert answer.value.status == 200 and body["model"] == "efficientnet_lite0"
        assert body["input"]["shape"] == [3, 224, 224]
        page.wait_for_selector("[data-testid=top-classes] li")
        assert page.inner_text(".cam-caption").startswith("camera:")
        assert page.locator("video.camera").is_hidden()  # the camera is stopped once the photo is taken
        page.goto(server.url + "/#/draw")
        page.get_by_role("link", name="Photos").click()
        page.get_by_role("button", name="Use the camera").click()
        wait_until(page, "document.querySelector('video.camera')?.readyState >= 2", 20)
        page.evaluate("window.__stream = document.querySelector('video.camera').srcObject")
        assert page.evaluate("window.__stream.getTracks().every((t) => t.readyState === 'live')")
        page.get_by_role("link", name="Compare").click()  # leaving the view stops the camera
        wait_until(page, "window.__stream.getTracks().every((t) => t.readyState === 'ended')")
