"""One-pass inspection latency of mnist_cnn on one 28x28 image, one thread: probabilities, every layer's
activation, Grad-CAM on conv2 and saliency from one forward and one backward. Target (issue 2): p50 <= 1 ms.
Usage: python bench/inspect_latency.py [calls]"""

from __future__ import annotations

import sys

import torch

from common import median, percentile, timed_calls
from convscope.inspect import CAM_METHODS, Inspector
from convscope.models import load_model


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    torch.set_num_threads(1)
    inspector = Inspector(load_model("mnist_cnn").model)
    image = torch.rand(28, 28, generator=torch.Generator().manual_seed(0))
    print(f"inspect mnist_cnn, 1 thread, {calls} calls per row (after 20 warm-up calls)")
    for method in CAM_METHODS:
        runs = [timed_calls(lambda: inspector.inspect(image, method=method), calls) for _ in range(3)]
        p50 = median([percentile(r, 50) for r in runs]) * 1000
        p99 = median([percentile(r, 99) for r in runs]) * 1000
        print(f"  {method:<10} p50 {p50:.3f} ms  p99 {p99:.3f} ms  (median of 3 rounds)")


if __name__ == "__main__":
    main()
