"""Batched prediction throughput of mnist_cnn over the 10,000 MNIST test images (or random ones when MNIST is
not available), fp32 and bf16, with torch's default threads. Target (issue 2): >= 20,000 images/s.
Usage: python bench/batch_predict.py [rounds]"""

from __future__ import annotations

import sys
import time

import torch

from common import median
from convscope.errors import DataError
from convscope.models import load_model
from convscope.predict import predict_proba


def test_images() -> torch.Tensor:
    try:
        from convscope.data import load_mnist
        return load_mnist("test", download=False).images
    except DataError:
        return torch.randint(0, 256, (10_000, 28, 28), dtype=torch.uint8)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    model = load_model("mnist_cnn").model
    images = test_images()
    print(f"predict mnist_cnn on {len(images):,} images, {torch.get_num_threads()} threads, median of {rounds} rounds")
    for bf16 in (False, True):
        for batch_size in (256, 1024):
            predict_proba(model, images[:2048], batch_size, bf16)  # warm-up
            rates = []
            for _ in range(rounds):
                start = time.perf_counter()
                predict_proba(model, images, batch_size, bf16)
                rates.append(len(images) / (time.perf_counter() - start))
            print(f"  {'bf16' if bf16 else 'fp32'} batch {batch_size:>4}: {median(rates):,.0f} images/s")


if __name__ == "__main__":
    main()
