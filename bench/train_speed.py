"""Wall time to train mnist_cnn from scratch to >= 99.0% test accuracy on the full 60k/10k MNIST.

Each run is a fresh `convscope train` process, so imports and reading the .gz files count, as a user would see.
Target (issue 2): <= 10 s on the 2-core machine. Usage: python bench/train_speed.py [runs]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median

RECIPE = ["--epochs", "1.5", "--batch-size", "128", "--lr", "5e-3", "--validation-split", "0"]


def one_run(seed: int, out: Path) -> dict:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "convscope.cli.main", "train", *RECIPE, "--seed", str(seed), "--out", str(out),
         "--json", "--quiet"], capture_output=True, text=True, check=True, env=os.environ)
    wall = time.perf_counter() - start
    summary = json.loads(result.stdout)
    return {"seed": seed, "wall_s": wall, "train_s": summary["wall_s"], "test_accuracy": summary["test_accuracy"]}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"train mnist_cnn {' '.join(RECIPE)} (LD_PRELOAD={os.environ.get('LD_PRELOAD', '') or 'none'})")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(runs):
            r = one_run(seed, Path(tmp) / f"{seed}.safetensors")
            results.append(r)
            print(f"  seed {seed}: {r['wall_s']:.2f} s wall ({r['train_s']:.2f} s in train()), "
                  f"test accuracy {r['test_accuracy']:.4f}")
    reached = sum(r["test_accuracy"] >= 0.99 for r in results)
    print(f"median wall {median([r['wall_s'] for r in results]):.2f} s, "
          f"median accuracy {median([r['test_accuracy'] for r in results]):.4f}, {reached}/{runs} runs >= 99.0%")


if __name__ == "__main__":
    main()
