"""What the notebook conveniences cost on top of the one-pass inspection, mnist_cnn on one MNIST digit, one thread:
``inspect_prepared`` (the model input as the server passes it) against ``inspect`` given the same tensor (shape
and value checks, the warnings' tests), a PIL image (preprocessed first) and a file path, ``convscope.explain`` by
model name, and drawing the results: an inspection's HTML and PNG displays, and ``plot.show`` as a PNG.

Usage: python bench/python_api.py [--calls N]"""

from __future__ import annotations

import argparse
import io
import tempfile
import warnings
from pathlib import Path

import torch
from PIL import Image

import convscope
from common import median, timed_calls
from convscope import plot


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    calls = parser.parse_args().calls
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", convscope.InputWarning)
    sample = convscope.sample_digit(7, seed=0)
    inspector = convscope.Inspector(convscope.load_model("mnist_cnn").adapter)
    picture = Image.fromarray(sample.image.numpy())
    prepared = sample.image.float().div(255)[None]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "digit.png"
        picture.save(path)
        result = inspector.inspect(prepared)
        cases = {
            "inspect_prepared(model input)": lambda: inspector.inspect_prepared(prepared),
            "inspect(model input, checked)": lambda: inspector.inspect(prepared),
            "inspect(PIL image)": lambda: inspector.inspect(picture),
            "inspect(file path)": lambda: inspector.inspect(path),
            'convscope.explain("mnist_cnn", tensor)': lambda: convscope.explain("mnist_cnn", prepared),
            "inspection._repr_html_()": result._repr_html_,
            "inspection._repr_png_()": result._repr_png_,
            "plot.show(inspection) drawn to PNG": lambda: plot.show(result).savefig(io.BytesIO(), format="png"),
        }
        print(f"mnist_cnn, one thread, median of {calls} calls (figures: {max(calls // 20, 5)})")
        for name, call in cases.items():
            repeats = calls if "plot" not in name else max(calls // 20, 5)
            print(f"  {name:<40} {median(timed_calls(call, repeats, warmup=5)) * 1000:8.2f} ms")


if __name__ == "__main__":
    main()
