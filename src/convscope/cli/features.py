"""``convscope visualize`` and ``convscope top-activating``: what a channel looks for (``inspect.features``),
written as PNGs with JSON beside them that records how each was made (``features-overview``, many at once, is in
overview.py).

* ``visualize``: an image optimised to drive one channel, neuron or class logit; FILE.png and FILE.json.
* ``top-activating``: the dataset images (the MNIST test set, or a folder of images) that drive each channel of a
  layer hardest, as a row of receptive-field patches per channel; DIR/channel_<C>.png and DIR/top_activating.json.
"""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from .options import add_mnist_dir_option, add_model_options, positive_int, settings_from_args

MAX_CHANNEL_PNGS = 64  # top-activating PNGs written when --channels does not say which
PATCH_PX = 84  # a top-activating patch is enlarged (nearest neighbour) to about this many pixels a side
LABEL_PX = 14  # the strip under each patch that holds its value
GAP_PX = 4  # white pixels between the images of a row


# Options


def add_settings_options(p) -> None:
    """The options of ``VisualizationSettings``, with its defaults."""
    from ..inspect.features import VisualizationSettings
    from ..inspect.features.parameterisation import PARAMETERISATIONS
    d = VisualizationSettings()
    group = p.add_argument_group("how the image is made")
    group.add_argument("--steps", type=positive_int, default=d.steps, help="gradient ascent steps")
    group.add_argument("--size", type=_image_size, metavar="PX|HxW",
                       help="the image's side in pixels, or HxW; default: the model's input size")
    group.add_argument("--lr", type=float, default=d.learning_rate, help="Adam's learning rate")
    group.add_argument("--param", choices=PARAMETERISATIONS, default=d.parameterisation,
                       help="fourier: a 1/f-scaled Fourier basis, which keeps the image readable; pixels: the "
                            "pixels themselves")
    group.add_argument("--no-decorrelate", action="store_true",
                       help="optimise RGB as it is, without ImageNet's colour decorrelation (3-channel inputs)")
    group.add_argument("--jitter", type=float, metavar="PX",
                       help="random shift each way before every step; default: about a 28th of the image's side "
                            "(1 px at 28, 8 at 224)")
    group.add_argument("--scale", type=float, default=d.scale,
                       help="random scaling in [1 - SCALE, 1 + SCALE] before every step")
    group.add_argument("--degrees", type=float, default=d.degrees,
                       help="random rotation in [-DEGREES, DEGREES] before every step")
    group.add_argument("--batch", type=positive_int, default=d.batch, metavar="N",
                       help="images made together, side by side in one PNG")
    group.add_argument("--diversity", type=float, default=d.diversity, metavar="W",
                       help="weight of a penalty on how alike the batch's images are (their Gram matrices): "
                            "with --batch 2 or more, different facets of the feature")
    group.add_argument("--seed", type=int, default=d.seed, help="seed of everything random: same seed, same image")


def _image_size(text: str) -> tuple[int, int]:
    """argparse type: ``64`` or ``64x48`` (height x width) -> (H, W)."""
    import argparse
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise argparse.ArgumentTypeError(f"expected pixels (64) or HxW (64x48), got {text!r}")
    return (int(parts[0]), int(parts[-1]))


def _position(text: str) -> tuple[int, int]:
    """argparse type: ``ROW,COL`` -> (row, col)."""
    import argparse
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected ROW,COL (two whole numbers, 0 or more), got {text!r}")
    return int(parts[0]), int(parts[1])


def settings_from(args):
    """The ``VisualizationSettings`` the options give (bad values: InputError)."""
    from ..inspect.features import VisualizationSettings
    return VisualizationSettings(steps=args.steps, learning_rate=args.lr, parameterisation=args.param,
                                 decorrelate=not args.no_decorrelate, size=args.size, jitter=args.jitter,
                                 scale=args.scale, degrees=args.degrees, batch=args.batch, diversity=args.diversity,
                                 seed=args.seed)


@contextmanager
def progress_bar(quiet: bool, what: str, unit: str):
    """A tqdm bar on stderr (none when ``quiet``: --json) and the ``progress(done, total)`` that moves it."""
    with tqdm(desc=what, unit=unit, file=sys.stderr, leave=False, disable=quiet) as shown:
        def progress(done: int, total: int) -> None:
            shown.total = total
            shown.update(done - shown.n)

        yield progress


def model_record(checkpoint) -> dict:
    """What a result was computed with: the model, where its weights came from, and their fingerprint (the
    feature cache's and the server's key for this version of the model)."""
    from ..inspect.features import weights_fingerprint
    meta, path = checkpoint.metadata, checkpoint.path
    packaged = getattr(checkpoint.spec, "default_weights_path", lambda: None)()
    source = meta.get("source") or ("packaged" if path is not None and path == packaged else "checkpoint")
    body = {"name": checkpoint.spec.name, "source": source, "checkpoint": str(path) if path is not None else None,
            "fingerprint": weights_fingerprint(checkpoint.adapter.module)}
    if meta.get("weights"):  # pretrained: the official file
        body["weights"] = {key: meta["weights"].get(key) for key in ("name", "url", "sha256")}
    if source == "user":
        body["user"] = {key: value for key, value in meta.items() if key not in ("model", "source")}
    return body


def safe_name(layer: str) -> str:
    """A layer name as a folder name (``layer1.2.relu:3`` -> ``layer1.2.relu_3``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", layer)


# visualize


def add_visualize_parser(commands) -> None:
    p = commands.add_parser("visualize", help="an image optimised to drive a channel, a neuron or a class logit "
                                              "(feature visualization): a PNG, and JSON of how it was made")
    add_model_options(p)
    target = p.add_argument_group("what to drive: --layer and --channel (and --neuron), or --logit")
    target.add_argument("--layer", help="the layer (`convscope layers` lists them)")
    target.add_argument("--channel", type=int, metavar="C", help="the layer's channel: its mean over positions")
    target.add_argument("--neuron", type=_position, metavar="ROW,COL",
                        help="only the channel's value at this position of the layer's map")
    target.add_argument("--logit", type=int, metavar="K", help="the score of class K instead (its index)")
    add_settings_options(p)
    p.add_argument("--out", type=Path, required=True, metavar="FILE.png",
                   help="the PNG to write (small images enlarged); FILE.json beside it records the model, its "
                        "weights, the target, the settings and the objective")
    p.add_argument("--json", action="store_true", help="print that record as JSON, and no progress bar")


def cmd_visualize(args, load) -> None:
    from ..inspect.features import visualize
    if args.out.suffix.lower() != ".png":
        raise InputError(f"--out names the PNG to write (e.g. channel.png), got {args.out}")
    target = _target(args)
    checkpoint = load(args)
    settings = settings_from(args)
    _check_target(checkpoint.adapter, target, settings)
    with progress_bar(args.json, describe_target(target), " steps") as progress:
        result = visualize(checkpoint.adapter, target, settings, progress=progress)
    record = save_visualization(args.out, result, model_record(checkpoint))
    if args.json:
        print(json.dumps(record))
        return
    values = ", ".join(f"{value:.4g}" for value in result.values)
    print(f"{describe_target(target)}: objective {values} after {len(result.history)} steps in {result.seconds:.1f} s\n"
          f"wrote {args.out} and {args.out.with_suffix('.json')}")


def _target(args):
    """The Target the options name (checked against the model later)."""
    from ..inspect.features import Target
    if args.logit is not None:
        if any(option is not None for option in (args.layer, args.channel, args.neuron)):
            raise InputError("--logit K takes no --layer, --channel or --neuron")
        return Target.logit(args.logit)
    if args.layer is None or args.channel is None:
        raise InputError("give --layer L and --channel C (with --neuron ROW,COL for one position), or --logit K")
    if args.neuron is not None:
        return Target.neuron(args.layer, args.channel, args.neuron)
    return Target.channel(args.layer, args.channel)


def _check_target(model, target, settings) -> None:
    """The engine's checks (a known layer, a channel or class in range), and a neuron's position, before any step."""
    from ..inspect.features.objective import check_target
    check_target(model, target)
    if target.kind != "neuron":
        return
    shape = model.graph[target.layer].output_shape
    if len(shape) != 3:
        raise InputError(f"{target.layer} gives output of shape {shape}: --neuron needs a (C, H, W) map")
    if settings.size not in (None, tuple(model.input_shape[1:])):
        return  # another input size makes another map size: the engine checks the position on the first step
    (row, col), (rows, cols) = target.position, shape[1:]
    if not (row < rows and col < cols):
        raise InputError(f"{target.layer}'s map is {rows}x{cols}: no position ({row}, {col})")


def describe_target(target) -> str:
    if target.kind == "logit":
        return f"logit {target.index}"
    where = f" at {target.position[0]},{target.position[1]}" if target.position is not None else ""
    return f"{target.layer} channel {target.index}{where}"


def visualization_picture(images):
    """(B, C, H, W) images in [0, 1] -> (uint8 picture of them side by side, GAP_PX apart, each enlarged
    (nearest neighbour) to about 280 px when small, as the other commands draw MNIST; the enlargement)."""
    import numpy as np

    from ..render import enlargement, grid, input_image
    factor = enlargement(images.shape[-1])
    tiles = np.stack([input_image(image, factor) for image in images])  # (B, H', W') or (B, H', W', 3)
    return grid(tiles, columns=len(tiles), gap=GAP_PX, fill=255), factor


def save_visualization(path: Path, result, model: dict, **extra) -> dict:
    """Write ``result``'s picture to ``path`` and its record to ``path`` with .json; returns the record."""
    from ..render import save_png
    picture, factor = visualization_picture(result.images)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(picture, path)
    record = {"model": model, "target": result.target.as_dict(), "settings": result.settings.as_dict(),
              "values": result.values, "history_length": len(result.history),
              "objective": {"first": result.history[0], "last": result.history[-1]} if result.history else None,
              "seconds": round(result.seconds, 3),
              "image": {"file": path.name, "images": len(result.images), "enlarged": factor, "gap": GAP_PX},
              **extra}
    path.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return record


# top-activating


def add_top_activating_parser(commands) -> None:
    p = commands.add_parser("top-activating", help="the dataset images that drive each channel of a layer hardest, "
                                                   "as the receptive-field patches of their strongest positions: a "
                                                   "PNG per channel, and JSON")
    add_model_options(p)
    p.add_argument("--layer", required=True, help="the layer (`convscope layers` lists them)")
    p.add_argument("--channels", metavar="C1,C2", help="which channels; default: every one in the JSON, and PNGs "
                                                      f"of the first {MAX_CHANNEL_PNGS}")
    p.add_argument("--k", type=positive_int, default=9, help="examples per channel")
    p.add_argument("--folder", type=Path, metavar="DIR",
                   help="search the images in this folder (and its sub-folders), prepared as the model's input; "
                        "default: the MNIST test set for a digit model (the others need a folder)")
    add_mnist_dir_option(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for channel_<C>.png and top_activating.json")
    p.add_argument("--json", action="store_true", help="print top_activating.json too, and no progress bar")


def cmd_top_activating(args, load) -> None:
    from ..inspect.features import receptive_field, top_activating
    checkpoint = load(args)
    model = checkpoint.adapter
    shape = model.graph[args.layer].output_shape  # an unknown layer: ModelError naming the known ones
    if len(shape) not in (1, 3):
        raise InputError(f"{args.layer} gives output of shape {shape}: top-activating examples need (C,) or "
                         "(C, H, W) per image")
    channels = _channels(args.channels, args.layer, shape[0])
    data, dataset, about = _dataset(args, checkpoint)
    with progress_bar(args.json, f"{args.layer}, top {args.k}", " images") as progress:
        found = top_activating(model, data, args.layer, args.k, progress=progress)[args.layer]
    field = receptive_field(model, args.layer) if len(shape) == 3 else None
    drawn = set(channels if args.channels else channels[:MAX_CHANNEL_PNGS])
    args.out.mkdir(parents=True, exist_ok=True)
    images = _Images(data)
    entries = []
    for channel in channels:
        examples = found.examples(channel)
        png = f"channel_{channel}.png" if channel in drawn and examples else None
        if png is not None:
            from ..render import save_png
            save_png(patch_row(images, examples, field), args.out / png)
        entries.append({"channel": channel, "image": png,
                        "examples": [{**example.as_dict(), **about(example.index)} for example in examples]})
    skipped = getattr(data, "skipped", {})
    body = {"model": model_record(checkpoint), "layer": args.layer, "shape": list(shape), "k": args.k,
            "dataset": {**dataset, "images": found.images,
                        "skipped": {str(data.files[i]): why for i, why in sorted(skipped.items())}},
            "receptive_field": field.as_dict() if field is not None else None, "seconds": round(found.seconds, 3),
            "channels": entries}
    (args.out / "top_activating.json").write_text(json.dumps(body, indent=1))
    if args.json:
        print(json.dumps(body))
        return
    capped = (f" (PNGs of the first {len(drawn)} of {len(channels)} channels; --channels picks which)"
              if len(drawn) < len(channels) else "")
    print(f"{args.layer}: the top {args.k} of {found.images} images for {len(channels)} channels in "
          f"{found.seconds:.1f} s\nwrote {sum(e['image'] is not None for e in entries)} PNGs and "
          f"top_activating.json to {args.out}{capped}")
    if skipped:
        print(f"skipped {len(skipped)} files that are not images (listed in the JSON)", file=sys.stderr)


def _channels(text: str | None, layer: str, count: int) -> list[int]:
    """``0,3,5`` -> [0, 3, 5], each checked against the layer's ``count`` channels; None: all of them."""
    if text is None:
        return list(range(count))
    try:
        channels = list(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
    except ValueError:
        raise InputError(f"--channels takes whole numbers separated by commas, got {text!r}") from None
    wrong = [channel for channel in channels if not 0 <= channel < count]
    if wrong or not channels:
        raise InputError(f"{layer} has {count} channels (0-{count - 1}): no channel "
                         f"{', '.join(map(str, wrong)) or 'given'}")
    return channels


def _dataset(args, checkpoint):
    """(images, what they are, index -> what to record of an example): a folder's files, or the MNIST test set."""
    from ..inspect.features import ImageFiles
    if args.folder is not None:
        files = ImageFiles.from_folder(args.folder, checkpoint.adapter.preprocessing)
        return files, {"folder": str(args.folder), "files": len(files)}, lambda i: {"file": str(files.files[i])}
    if checkpoint.spec.dataset != "mnist":
        raise InputError(f"{checkpoint.spec.name} does not read MNIST digits: give --folder DIR, a folder of images")
    from ..data import load_mnist
    split = load_mnist("test", settings_from_args(args))
    return split.as_float(), {"mnist": "test"}, lambda i: {"label": int(split.labels[i])}


class _Images:
    """``images[i]``, each read (a file decoded and prepared) once however many channels show it."""

    def __init__(self, data):
        self.data, self.read = data, {}

    def __getitem__(self, index: int):
        if index not in self.read:
            self.read[index] = self.data[index]
        return self.read[index]


def patch_row(images, examples, field):
    """RGB uint8 picture: each example's patch (its receptive field at the strongest position, mid-grey where the
    field runs past the image; the whole image for a (C,) layer) enlarged (nearest) to about PATCH_PX, in a row
    GAP_PX apart, with its value under it."""
    import numpy as np
    from PIL import Image, ImageDraw

    from ..render import enlargement, grid, input_image
    tiles = [_field_patch(images[example.index], example, field) for example in examples]  # (C, h, w), same size
    factor = enlargement(max(tiles[0].shape[1:]), PATCH_PX)
    pixels = [input_image(tile, factor) for tile in tiles]
    pixels = np.stack([np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p for p in pixels])
    row = grid(pixels, columns=len(pixels), gap=GAP_PX, fill=255)  # (H, W, 3)
    picture = Image.new("RGB", (row.shape[1], row.shape[0] + LABEL_PX), "white")
    picture.paste(Image.fromarray(row), (0, 0))
    draw, width = ImageDraw.Draw(picture), pixels.shape[2]
    for i, example in enumerate(examples):
        draw.text((i * (width + GAP_PX) + 2, row.shape[0] + 1), f"{example.value:.3g}", fill="black")
    return np.asarray(picture)


def _field_patch(image, example, field):
    """(C, H, W) image -> the (C, *field.size) patch its example's position sees, mid-grey outside the image."""
    import torch
    if field is None:
        return image
    top, left, bottom, right = example.box
    start_row = field.offset[0] + example.position[0] * field.stride[0]  # where the unclipped field starts
    start_col = field.offset[1] + example.position[1] * field.stride[1]
    patch = torch.full((image.shape[0], *field.size), 0.5)
    patch[:, top - start_row:bottom - start_row, left - start_col:right - start_col] = image[:, top:bottom, left:right]
    return patch


# features-overview
