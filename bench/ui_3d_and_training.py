"""The 3D view's frame rate and draw calls, and how fast training events reach the train view's chart, in headless
Chromium (software WebGL: SwiftShader) against a real `convscope serve` on the real MNIST.

- 3D: ~37,000 activation cells of mnist_cnn; frames per second while every frame is redrawn (median of 3
  measurements of 10 frames), and the draw calls per frame.
- Train view: a 0.5-epoch run; for every event, chart updated minus `emitted_at` (set by the training process).
With --screenshots DIR it saves both views at 1280x800.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import percentile
from convscope.testing.browser import browser_context, wait_until
from convscope.testing.server import ServerProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, ServerProcess(Path(folder)) as server, browser_context() as context:
        page = context.new_page()
        page.goto(server.url + "/#/network")
        page.get_by_label("Digit to sample").select_option("7")
        page.get_by_role("button", name="Random sample").click()
        wait_until(page, "window.__convscope.network3d?.updates >= 1", 60)
        runs = [page.evaluate("window.__convscope.network3d.measureFps(10)") for _ in range(3)]
        fps = [r["fps"] for r in runs]
        print(f"3D view: {runs[0]['cells']:,} cells, {runs[0]['drawCalls']} draw calls per frame, "
              f"{statistics.median(fps):.2f} fps median ({', '.join(f'{f:.2f}' for f in fps)}) on SwiftShader")
        if args.screenshots:
            point = page.evaluate("window.__convscope.network3d.screenPosition('relu2', 9, 5, 5)")
            page.mouse.move(point["x"], point["y"])
            time.sleep(2.5)
            page.screenshot(path=str(args.screenshots / "network-3d.png"))

        page.goto(server.url + "/#/train")
        page.get_by_label("Epochs").fill("0.5")
        page.get_by_role("button", name="Start training").click()
        page.locator(".train-view .message.info").wait_for(timeout=120_000)
        latencies = page.evaluate("window.__convscope.eventLatencies")
        print(f"training events to the chart: {len(latencies)} events, p50 {statistics.median(latencies):.1f} ms, "
              f"p95 {percentile(latencies, 95):.1f} ms, max {max(latencies):.1f} ms")
        if args.screenshots:
            page.screenshot(path=str(args.screenshots / "train.png"))


if __name__ == "__main__":
    main()
