"""One-pass inspection latency of mnist_cnn on one 28x28 image, one thread: probabilities, every layer's
activation, a CAM on the default layer and saliency from one forward and one backward. Target (issue 2): p50 <= 1 ms.

Usage: python bench/inspect_latency.py [--calls N] [--against REV]

``--against REV`` also times the code of git revision REV (for example the last landed commit) in the same run:
each round runs both, alternating, in fresh processes, and the ratio of the medians is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from common import median, percentile, timed_calls

ROUNDS = 3
REPO = Path(__file__).resolve().parent.parent

# Runs in a child process against whichever convscope is first on sys.path; works with the API before and after
# the model adapter (``Checkpoint.adapter``) came in.
CHILD = """
import json, sys
import torch
sys.path.insert(0, {bench!r})
from common import percentile, timed_calls
from convscope.inspect import Inspector
from convscope.models import load_model
torch.set_num_threads(1)
checkpoint = load_model("mnist_cnn")
inspector = Inspector(getattr(checkpoint, "adapter", checkpoint.model))
image = torch.rand(28, 28, generator=torch.Generator().manual_seed(0))
times = timed_calls(lambda: inspector.inspect(image, method={method!r}), {calls})
print(json.dumps([percentile(times, 50), percentile(times, 99)]))
"""


def time_in_child(source: Path, method: str, calls: int) -> tuple[float, float]:
    code = CHILD.format(bench=str(REPO / "bench"), method=method, calls=calls)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(source)})
    p50, p99 = json.loads(out.stdout.strip().splitlines()[-1])
    return p50, p99


def compare(revision: str, calls: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        sources = {"this tree": REPO / "src", revision: Path(folder) / "src"}
        print(f"inspect mnist_cnn, gradcam, 1 thread, {calls} calls per process, {ROUNDS} rounds alternating")
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in sources}
        for _ in range(ROUNDS):
            for name, source in sources.items():
                results[name].append(time_in_child(source, "gradcam", calls))
        p50 = {name: median([r[0] for r in runs]) * 1000 for name, runs in results.items()}
        for name, runs in results.items():
            p99 = median([r[1] for r in runs]) * 1000
            print(f"  {name:<12} p50 {p50[name]:.3f} ms  p99 {p99:.3f} ms  (rounds: "
                  + ", ".join(f"{r[0] * 1000:.3f}" for r in runs) + ")")
        print(f"  ratio this tree / {revision}: {p50['this tree'] / p50[revision]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--against", help="a git revision to time in the same run")
    args = parser.parse_args()
    if args.against:
        compare(args.against, args.calls)
        return
    from convscope.inspect import CAM_METHODS, Inspector
    from convscope.models import load_model
    torch.set_num_threads(1)
    inspector = Inspector(load_model("mnist_cnn").adapter)
    image = torch.rand(28, 28, generator=torch.Generator().manual_seed(0))
    print(f"inspect mnist_cnn, 1 thread, {args.calls} calls per row (after 20 warm-up calls)")
    for method in CAM_METHODS:
        runs = [timed_calls(lambda: inspector.inspect(image, method=method), args.calls) for _ in range(ROUNDS)]
        p50 = median([percentile(r, 50) for r in runs]) * 1000
        p99 = median([percentile(r, 99) for r in runs]) * 1000
        print(f"  {method:<10} p50 {p50:.3f} ms  p99 {p99:.3f} ms  (median of {ROUNDS} rounds)")


if __name__ == "__main__":
    main()
