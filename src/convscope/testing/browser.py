"""A real browser for the UI tests: Debian's chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-unsafe-swiftshader"]  # WebGL on the software renderer (the 3D view and Plotly's surfaces)


def require_browser() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            raise RuntimeError("CI must run the browser tests: apt-get install chromium (.ci/run does)")
        pytest.skip("chromium is not installed (apt-get install chromium)")


@contextmanager
def browser_context(width: int = 1280, height: int = 800, flags: tuple[str, ...] = ()):
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="convscope-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=[*FLAGS, *flags], headless=True,
                viewport={"width": width, "height": height})
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def stroke(page, points: list[tuple[float, float]], steps: int = 6) -> None:
    """A mouse stroke through `points` (pad pixels)."""
    box = page.locator("canvas.pad").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=steps)
    page.mouse.up()


ONE = [[(140, 40), (140, 250)]]
SEVEN = [[(60, 50), (220, 50), (120, 250)]]


# How far the page reaches past the right edge of the screen (sideways scrolling when > 0).
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"
# Every visible control whose box reaches past the left or right edge of the screen.
OFF_SCREEN = """() => [...document.querySelectorAll('main button, main select, main input, main textarea, main a')]
  .filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
  .filter((e) => { const box = e.getBoundingClientRect(); return box.left < 0 || box.right > window.innerWidth; })
  .map((e) => e.outerHTML.slice(0, 80))"""


def assert_fits(page) -> None:
    """Nothing of the page reaches past the screen's sides: no sideways scrolling, every control in reach."""
    assert page.evaluate(OVERFLOW) <= 0
    assert page.evaluate(OFF_SCREEN) == []


BACKGROUND = (244, 245, 247)  # the 3D stage's background colour


def stage_picture(page):
    """The 3D view's stage as an (H, W, 3) int array."""
    import io

    import numpy as np
    from PIL import Image

    png = page.locator(".stage canvas").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def changed_pixels(picture, other) -> int:
    """How many pixels differ clearly between two pictures of the same size."""
    import numpy as np

    return int((np.abs(picture - other).sum(axis=2) > 30).sum())


def drawn_share(picture) -> float:
    """The share of a stage picture that is not background."""
    import numpy as np

    return changed_pixels(picture, np.array(BACKGROUND)[None, None]) / (picture.shape[0] * picture.shape[1])


def stage_once(page, condition, timeout_s: float = 10.0):
    """The 3D stage's picture once ``condition(picture)`` holds: WebGL draws on its next frames, not at once."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        picture = stage_picture(page)
        if condition(picture):
            return picture
        if time.monotonic() > deadline:
            raise AssertionError("the 3D stage never showed what was expected")
        time.sleep(0.05)


def stage_settled(page, timeout_s: float = 10.0):
    """The 3D stage's picture once two taken 0.1 s apart are the same: whatever it was drawing is drawn."""
    import time

    last = stage_picture(page)
    deadline = time.monotonic() + timeout_s
    while True:
        time.sleep(0.1)
        picture = stage_picture(page)
        if picture.shape == last.shape and not changed_pixels(picture, last):
            return picture
        if time.monotonic() > deadline:
            raise AssertionError("the 3D stage kept changing")
        last = picture


def wait_until(page, expression: str, timeout_s: float = 10.0):
    """Poll a JavaScript expression until it is truthy. (Playwright's wait_for_function compiles its predicate
    with eval, which the app's Content-Security-Policy rightly forbids; page.evaluate is not affected.)"""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.02)


@contextmanager
def ui_server(folder, mnist_dir: str, env: dict | None = None):
    """A real `convscope serve` (one worker) for browser tests; skips when there is no browser. `env`: more
    CONVSCOPE_* settings (user models, say)."""
    from convscope.testing.server import ServerProcess

    require_browser()
    settings = {"CONVSCOPE_MNIST_DIR": mnist_dir, "CONVSCOPE_WORKERS": "1", **(env or {})}
    with ServerProcess(folder, env=settings, extra_args=("--access-log",)) as server:  # shown when a test fails
        yield server


class PageRecord:
    """What a tab did that a failing test should show: uncaught errors, console errors, requests that failed and
    requests still waiting for an answer."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.console: list[str] = []
        self.failed: list[str] = []
        self.pending: dict[object, str] = {}
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda m: m.type in ("error", "warning") and self.console.append(f"{m.type}: {m.text}"))
        page.on("request", lambda r: self.pending.__setitem__(r, f"{r.method} {r.url}"))
        page.on("requestfinished", lambda r: self.pending.pop(r, None))
        page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        self.pending.pop(request, None)
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def report(self) -> str:
        parts = [("uncaught errors", self.errors), ("console", self.console), ("failed requests", self.failed),
                 ("requests never answered", list(self.pending.values()))]
        return "\n".join(f"{title}:\n  " + "\n  ".join(lines) for title, lines in parts if lines) or "nothing"


@contextmanager
def checked_page(context):
    """A fresh tab that fails the test if the page throws an uncaught error. What it did is kept as
    ``page.record`` (PageRecord): the tests' conftest shows it when a test fails."""
    page = context.new_page()
    page.record = PageRecord(page)
    try:
        yield page
    finally:
        page.close()
    assert page.record.errors == [], page.record.errors


def module_fixtures(folder: str, env: dict | None = None, mnist_dir: str | None = None,
                    width: int = 1280, height: int = 800, flags: tuple[str, ...] = ()):
    """The `server` and `context` fixtures of a browser test module: one `convscope serve` (synthetic MNIST unless
    `mnist_dir`) and one browser for all its tests. ``server, context = module_fixtures("ui-photos")``."""

    @pytest.fixture(scope="module")
    def server(tmp_path_factory, synthetic_mnist_dir):
        with ui_server(tmp_path_factory.mktemp(folder), mnist_dir or str(synthetic_mnist_dir), env=env) as running:
            yield running

    @pytest.fixture(scope="module")
    def context(server):
        with browser_context(width, height, flags) as browser:
            yield browser

    return server, context
