"""Stroke end -> every view of the home page updated, in headless Chromium against a real `convscope serve`.

The page marks the end of each stroke and, once the answer is drawn and the next frame painted, records the time
(`window.__convscope.timings`). This draws digits stroke by stroke and prints p50 / p95 (issue 4 target: p50 <=
60 ms). With --screenshots DIR it also saves each view at 1280x800 (docs/screenshots/).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import median, percentile
from convscope.testing.browser import ONE, SEVEN, browser_context, stroke, wait_until
from convscope.testing.server import ServerProcess

STROKES = [ONE[0], SEVEN[0], [(80, 60), (200, 60), (200, 240)], [(100, 60), (180, 140), (100, 240)]]


def measure(page, strokes: int) -> list[float]:
    done = 0
    for i in range(strokes):
        if i % 2 == 0:
            page.get_by_role("button", name="Clear").click()
        stroke(page, STROKES[i % len(STROKES)])
        done += 1
        wait_until(page, f"window.__convscope.timings.length >= {done}")
        time.sleep(0.05)
    return page.evaluate("window.__convscope.timings")


def screenshots(page, url: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.get_by_role("button", name="Clear").click()
    stroke(page, SEVEN[0])
    wait_until(page, "document.querySelector('.prediction .predicted-class').textContent === '7'")
    time.sleep(0.5)
    page.screenshot(path=str(folder / "draw-and-explain.png"))
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Report wrong").click()
    page.get_by_label("Correct class").select_option("1")
    page.get_by_label("Reason").fill("the top bar is a serif")
    page.get_by_role("button", name="Send report").click()
    page.get_by_text("Reported").wait_for()
    page.goto(url + "/#/architecture")
    page.locator("canvas.filters").first.wait_for()
    time.sleep(0.3)
    page.screenshot(path=str(folder / "architecture.png"))
    page.goto(url + "/#/dashboard")
    page.locator("tr.row").first.click()
    page.get_by_role("button", name="Re-run").click()
    page.locator(".rerun-summary").wait_for()
    time.sleep(0.3)
    page.screenshot(path=str(folder / "dashboard.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=int, default=40)
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, ServerProcess(Path(folder)) as server, browser_context() as context:
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("section.layer[data-layer=conv1] canvas.maps")
        stroke(page, ONE[0])  # warm-up
        wait_until(page, "window.__convscope.timings.length >= 1")
        page.evaluate("window.__convscope.timings = []")
        timings = measure(page, args.strokes)
        print(f"stroke end -> every view updated and painted, {len(timings)} strokes: "
              f"p50 {median(timings):.1f} ms, p95 {percentile(timings, 95):.1f} ms, "
              f"min {min(timings):.1f}, max {max(timings):.1f}")
        if args.screenshots:
            screenshots(page, server.url, args.screenshots)
            print(f"screenshots in {args.screenshots}")


if __name__ == "__main__":
    main()
