"""The compact wire format for tensors (activations, CAMs, inputs, filters).

A tensor travels as 8-bit levels between its own minimum and maximum, zlib-compressed, then base64:

    {"shape": [32, 26, 26], "min": -0.41, "max": 2.93, "encoding": "uint8-zlib-base64", "data": "eJz..."}

    value = min + (max - min) * level / 255,  level = the i-th byte of zlib-decompress(base64-decode(data)), C order

Browsers decode it with ``DecompressionStream("deflate")`` (zlib format). Eight bits are what a colour map can
show; ReLU layers keep exact zeros because their minimum is 0.

Two kinds of layer are sent as what they are when the layer they come from is in the same answer: a ReLU right
after another layer as ``{"shape": [...], "encoding": "relu", "of": "conv1"}`` (value = max(that layer's value,
0)), and a flatten as ``{"shape": [1600], "encoding": "reshape", "of": "pool2"}``. No bytes, and the values at the
source's precision (one level of the source's range, which for a ReLU includes the negative part). Every layer of
``mnist_cnn`` for one digit is 67,636 values: about 90 KB as plain uint8 base64, about 43 KB compressed, and 32 KB
with the derived layers: inside the 40 KB budget.
"""

from __future__ import annotations

import base64
import zlib

import numpy as np
import torch

ENCODING = "uint8-zlib-base64"
EXACT_ENCODING = "float32-le-base64"  # encode_exact
CHANNELS_ENCODING = "uint8-zlib-base64-channels"  # the same, with a range per channel (encode_channels)
# zlib level 1 is ~3x faster than the default 6 here and the payload only a few percent larger (docs/benchmarks.md).
ZLIB_LEVEL = 1


def encode_tensor(tensor: torch.Tensor) -> dict:
    values = tensor.detach().float().cpu()
    low, high = (float(values.min()), float(values.max())) if values.numel() else (0.0, 0.0)
    span = high - low
    levels = ((values - low) * (255.0 / span)).round_() if span > 0 else torch.zeros_like(values)
    raw = levels.to(torch.uint8).numpy().tobytes()
    return {"shape": list(values.shape), "min": low, "max": high, "encoding": ENCODING,
            "data": base64.b64encode(zlib.compress(raw, ZLIB_LEVEL)).decode("ascii")}


def encode_exact(tensor: torch.Tensor) -> dict:
    """Every value as it is: float32, little-endian, base64 (no zlib: float noise hardly compresses). For exports,
    where 8-bit levels would not do."""
    values = tensor.detach().float().cpu().contiguous().numpy().astype("<f4")
    return {"shape": list(values.shape), "encoding": EXACT_ENCODING,
            "data": base64.b64encode(values.tobytes()).decode("ascii")}


def encode_channels(tensor: torch.Tensor) -> dict:
    """(C, ...) with each channel's 8-bit levels between its own minimum and maximum (``min`` and ``max`` are
    lists, one per channel): a page of feature maps keeps every channel's detail whatever the others' range."""
    values = tensor.detach().float().cpu().reshape(tensor.shape[0], -1)
    low, high = values.min(dim=1).values, values.max(dim=1).values
    span = (high - low).clamp(min=1e-30)
    levels = ((values - low[:, None]) * (255.0 / span[:, None])).round_().clamp_(0, 255)
    raw = levels.to(torch.uint8).numpy().tobytes()
    return {"shape": list(tensor.shape), "min": low.tolist(), "max": high.tolist(), "encoding": CHANNELS_ENCODING,
            "data": base64.b64encode(zlib.compress(raw, ZLIB_LEVEL)).decode("ascii")}


def derived(kind: str, source: str, shape: list[int]) -> dict:
    """A layer computed from another one in the same answer: ``kind`` is "relu" or "reshape"."""
    return {"shape": shape, "encoding": kind, "of": source}


def decode_layers(layers: list[dict]) -> dict[str, torch.Tensor]:
    """Every layer of a predict answer (``[{"name", "activation", ...}]``), derived ones included."""
    values: dict[str, torch.Tensor] = {}
    for layer in layers:
        encoded = layer["activation"]
        if encoded["encoding"] == "relu":
            values[layer["name"]] = values[encoded["of"]].clamp(min=0).reshape(encoded["shape"])
        elif encoded["encoding"] == "reshape":
            values[layer["name"]] = values[encoded["of"]].reshape(encoded["shape"])
        else:
            values[layer["name"]] = decode_tensor(encoded)
    return values


def decode_tensor(encoded: dict) -> torch.Tensor:
    """The inverse of :func:`encode_tensor` and :func:`encode_channels` (to within one level: (max - min) / 255)."""
    levels = np.frombuffer(zlib.decompress(base64.b64decode(encoded["data"])), dtype=np.uint8)
    low, high = torch.tensor(encoded["min"]), torch.tensor(encoded["max"])
    if encoded["encoding"] == CHANNELS_ENCODING:
        levels = levels.reshape(len(encoded["min"]), -1)
        low, high = low[:, None], high[:, None]
    values = torch.from_numpy(levels.astype(np.float32)) * ((high - low) / 255.0) + low
    return values.reshape(encoded["shape"])
