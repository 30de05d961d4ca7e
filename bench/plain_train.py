"""The baseline of bench/train_speed.py: mnist_cnn trained the plain way, as a tutorial would.

fp32, Adam at 1e-3, batch 64, the data held as tensors, test accuracy after each epoch, stop at 99.0%. Run as its
own process (no allocator preloaded, no convscope training code), so that start-up counts as it does for the CLI.
Prints one JSON line: {"epochs", "test_accuracy", "train_s"}.
"""

from __future__ import annotations

import json
import sys
import time

import torch
import torch.nn.functional as F

from convscope.data.mnist import load_mnist
from convscope.models.registry import get_spec


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    start = time.perf_counter()
    torch.manual_seed(seed)
    train, test = load_mnist("train"), load_mnist("test")
    train_x, train_y = train.images.unsqueeze(1).float() / 255, train.labels
    test_x, test_y = test.images.unsqueeze(1).float() / 255, test.labels
    model = get_spec("mnist_cnn").build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    accuracy, epoch = 0.0, 0
    while accuracy < 0.99 and epoch < 10:
        epoch += 1
        model.train()
        for idx in torch.randperm(len(train_y)).split(64):
            loss = F.cross_entropy(model.logits(train_x[idx]), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            predicted = torch.cat([model.logits(batch).argmax(1) for batch in test_x.split(1000)])
        accuracy = float((predicted == test_y).float().mean())
    print(json.dumps({"epochs": epoch, "test_accuracy": accuracy, "train_s": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
