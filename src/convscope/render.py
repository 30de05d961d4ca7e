"""Turning tensors into pictures (numpy + PIL only; the ML core never imports this module). The CLI's PNGs, the
notebook displays (``display.py``) and the figures (``plot.py``) all draw their pixels here.

Colour maps are piecewise-linear through a few anchor colours: viridis for activations, a jet-like map for
heatmaps laid over input, and blue-white-red for signed weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

VIRIDIS = [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129),
           (92, 200, 99), (170, 220, 50), (253, 231, 37)]
JET = [(0, 0, 128), (0, 0, 255), (0, 128, 255), (0, 255, 255), (128, 255, 128), (255, 255, 0), (255, 128, 0),
       (255, 0, 0), (128, 0, 0)]
DIVERGING = [(33, 102, 172), (103, 169, 207), (209, 229, 240), (247, 247, 247), (253, 219, 199), (239, 138, 98),
             (178, 24, 43)]


# A filter grid is drawn with at most this many kernels (VGG's last layer has 262,144; a 1x1 conv of EfficientNet
# 221,184): more is a picture of tens of thousands of pixels a side that nobody can read.
MAX_FILTER_TILES = 64 * 64


def colorize(values: np.ndarray, anchors: list[tuple[int, int, int]]) -> np.ndarray:
    """(...,) values in [0, 1] -> (..., 3) uint8 RGB."""
    table = np.asarray(anchors, dtype=np.float32)
    position = np.clip(values, 0, 1) * (len(table) - 1)
    low = np.floor(position).astype(int).clip(0, len(table) - 2)
    frac = (position - low)[..., None]
    return (table[low] * (1 - frac) + table[low + 1] * frac).round().astype(np.uint8)


def normalize(values: np.ndarray) -> np.ndarray:
    """Values stretched to [0, 1] over their own range (all zeros when they are constant)."""
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def grid(tiles: np.ndarray, columns: int | None = None, gap: int = 1, fill: float = 1.0) -> np.ndarray:
    """(N, h, w) or (N, h, w, 3) tiles -> one image with ``columns`` tiles per row and ``gap`` pixels between."""
    n, h, w = tiles.shape[:3]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    shape = (rows * (h + gap) - gap, columns * (w + gap) - gap) + tiles.shape[3:]
    out = np.full(shape, fill, dtype=tiles.dtype)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out


def upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so each activation stays a crisp square."""
    return rgb.repeat(factor, axis=0).repeat(factor, axis=1)


def feature_map_grid(activation: torch.Tensor, tile_px: int = 84) -> np.ndarray:
    """(C, h, w) -> RGB grid of every channel, each scaled to its own range (viridis)."""
    maps = activation.detach().float().cpu().numpy()
    factor = max(1, tile_px // maps.shape[-1])
    tiles = np.stack([upscale(colorize(normalize(m), VIRIDIS), factor) for m in maps])
    return grid(tiles, gap=2, fill=255)


def vector_grid(values: torch.Tensor, columns: int, cell_px: int = 24) -> np.ndarray:
    """(N,) dense-layer outputs -> RGB grid of N cells, ``columns`` per row, one shared scale (viridis)."""
    v = normalize(values.detach().float().cpu().numpy())
    rows = math.ceil(len(v) / columns)
    padded = np.concatenate([v, np.full(rows * columns - len(v), np.nan)]).reshape(rows, columns)
    rgb = colorize(np.nan_to_num(padded), VIRIDIS)
    rgb[np.isnan(padded)] = 255
    return upscale(rgb, cell_px)


def overlay(base: torch.Tensor, heat: torch.Tensor, alpha: float = 0.5, factor: int = 10) -> np.ndarray:
    """Greyscale (H, W) base in [0, 1] with an (H, W) heatmap in [0, 1] blended over it (jet), enlarged."""
    grey = np.repeat(base.detach().float().cpu().numpy()[..., None] * 255, 3, axis=2)
    heat_rgb = colorize(heat.detach().float().cpu().numpy(), JET).astype(np.float32)
    return upscale(((1 - alpha) * grey + alpha * heat_rgb).round().astype(np.uint8), factor)


def filters_grid(filters01: torch.Tensor, tile_px: int = 30) -> np.ndarray:
    """(out, in, k, k) filters in [0, 1] (0.5 = zero) -> RGB grid: one row per output filter, one column per
    input channel (blue negative, white zero, red positive)."""
    out_ch, in_ch, k, _ = filters01.shape
    factor = max(1, tile_px // k)
    tiles = np.stack([upscale(colorize(f, DIVERGING), factor) for f in filters01.reshape(-1, k, k).numpy()])
    return grid(tiles, columns=in_ch if in_ch > 1 else math.ceil(math.sqrt(out_ch)), gap=1, fill=255)


def grey_image(values: torch.Tensor, factor: int = 10) -> np.ndarray:
    """(H, W) values in [0, 1] -> uint8 greyscale, each value a ``factor`` x ``factor`` square."""
    return upscale((values.detach().float().cpu().numpy().clip(0, 1) * 255).round().astype(np.uint8), factor)


def enlargement(width: int, target_px: int = 280) -> int:
    """How many times to enlarge a map ``width`` pixels wide: MNIST's 28 px 10x, a 224 px photo not at all."""
    return max(1, target_px // width)


def input_image(x: torch.Tensor, factor: int = 1) -> np.ndarray:
    """A (C, H, W) model input in [0, 1] -> the picture the model saw: greyscale for one channel, RGB for three."""
    if x.shape[0] == 1:
        return grey_image(x[0], factor)
    return upscale((x.permute(1, 2, 0).detach().float().cpu().numpy().clip(0, 1) * 255).round().astype(np.uint8),
                   factor)


def cam_image(x: torch.Tensor, heat: torch.Tensor, factor: int = 1, alpha: float = 0.5) -> np.ndarray:
    """An (H, W) map in [0, 1] laid over the (C, H, W) model input in grey (jet): a CAM or a saliency map."""
    return overlay(x.mean(dim=0), heat, alpha=alpha, factor=factor)


def attribution_image(x: torch.Tensor, values: torch.Tensor, signed: bool, factor: int = 1) -> np.ndarray:
    """An (H, W) attribution as a picture: one without sign (a CAM, a gradient's size) in heat colours over the
    input, scaled by its maximum; a signed one alone, blue against the class, white nothing, red for it, scaled by
    its largest magnitude (so zero stays white)."""
    peak = float(values.abs().max()) or 1.0
    if not signed:
        return cam_image(x, values.abs() / peak, factor)
    return upscale(colorize((values.detach().float().cpu().numpy() / peak + 1) / 2, DIVERGING), factor)


def save_png(array: np.ndarray, path: Path) -> Path:
    """An RGB or greyscale uint8 array as a PNG file."""
    Image.fromarray(array).save(path, format="PNG")
    return path
