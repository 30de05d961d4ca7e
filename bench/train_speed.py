"""`convscope train` with its defaults against the same network trained the plain way, as whole processes.

Each run is a fresh process, so start-up, imports and reading the .gz files count, as a user would see them:
- defaults: `convscope train --json --quiet --out ...` (the command as installed; it preloads tcmalloc itself);
- plain: bench/plain_train.py (fp32, Adam 1e-3, batch 64, test accuracy after each epoch, stop at 99%), with no
  allocator preloaded.
The two alternate, so a slow spell on the machine hits both. Target (issue 13): the defaults >= 3x faster and
>= 99.0% test accuracy on every seed. Usage: python bench/train_speed.py [runs] (CONVSCOPE_MNIST_DIR set).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median

HERE = Path(__file__).parent


def timed(command: list[str], env: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - start, json.loads(result.stdout)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    env = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", "CONVSCOPE_ALLOCATOR")}
    convscope = shutil.which("convscope", path=str(Path(sys.executable).parent)) or "convscope"
    defaults, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(runs):
            wall, summary = timed([convscope, "train", "--seed", str(seed), "--out", f"{tmp}/{seed}.safetensors",
                                   "--json", "--quiet"], env)
            defaults.append((wall, summary["test_accuracy"]))
            print(f"  defaults seed {seed}: {wall:.2f} s, test accuracy {summary['test_accuracy']:.4f}", flush=True)
            wall, summary = timed([sys.executable, str(HERE / "plain_train.py"), str(seed)], env)
            plain.append((wall, summary["test_accuracy"]))
            print(f"  plain    seed {seed}: {wall:.2f} s, test accuracy {summary['test_accuracy']:.4f} after "
                  f"{summary['epochs']} epochs", flush=True)
    fast, slow = median([w for w, _ in defaults]), median([w for w, _ in plain])
    reached = sum(accuracy >= 0.99 for _, accuracy in defaults)
    print(f"median wall: defaults {fast:.2f} s ({reached}/{runs} runs >= 99.0%), plain {slow:.2f} s: "
          f"{slow / fast:.2f}x faster")


if __name__ == "__main__":
    main()
