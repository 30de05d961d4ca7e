"""``convscope features-overview``: visualizations of the first channels of one layer per resolution stage, early
to late (VGG16: edges, textures, patterns, parts, objects), computed ahead of time: each costs seconds to minutes on
a CPU. They go into the feature cache the server reads (by default), so the web UI shows them at once."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from .features import add_settings_options, describe_target, safe_name, model_record, save_visualization, settings_from
from .options import add_model_options, positive_int, settings_from_args


def add_features_overview_parser(commands) -> None:
    p = commands.add_parser("features-overview", help="feature visualizations of the first channels of a layer per "
                                                      "resolution stage, early to late (VGG16: edges, textures, "
                                                      "patterns, parts, objects), computed ahead of time")
    add_model_options(p)
    p.add_argument("--layers", metavar="L1,L2", help="the layers; default: one per resolution stage, the last before "
                                                    "each spatial downsampling (mnist_cnn: relu1, relu2)")
    p.add_argument("--channels", type=positive_int, default=8, metavar="N", help="the first N channels of each layer")
    add_settings_options(p)
    p.add_argument("--cache", type=Path, metavar="DIR",
                   help="the feature cache the results are kept in (and those already there taken from); default: "
                        "the server's, <data dir>/features, where `convscope serve` finds them for the same weights")
    p.add_argument("--no-cache", action="store_true", help="keep nothing in a cache")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for <layer>/channel_<C>.png and .json each, and overview.json")
    p.add_argument("--json", action="store_true", help="print overview.json too, and no progress bar")


def cmd_features_overview(args, load) -> None:
    checkpoint = load(args)
    model = checkpoint.adapter
    layers, jobs = _overview_jobs(args, model)
    settings = settings_from(args).resolved(model)
    cache, record = _cache(args), model_record(checkpoint)
    started, done = time.perf_counter(), {layer: [] for layer in layers}
    with tqdm(total=len(jobs) * settings.steps, desc=f"{len(jobs)} images", unit=" steps", file=sys.stderr,
              leave=False, disable=args.json) as bar:
        for target in jobs:
            result, cached = _visualize_on(bar, model, target, settings, cache, record["fingerprint"])
            png = Path(safe_name(target.layer)) / f"channel_{target.index}.png"
            save_visualization(args.out / png, result, record, cached=cached)
            done[target.layer].append({"channel": target.index, "image": str(png),
                                       "json": str(png.with_suffix(".json")), "values": result.values,
                                       "cached": cached})
    body = {"model": record, "settings": settings.as_dict(), "cache": str(cache.directory) if cache else None,
            "seconds": round(time.perf_counter() - started, 3),
            "layers": [{"layer": layer, "shape": list(model.graph[layer].output_shape), "folder": safe_name(layer),
                        "channels": done[layer]} for layer in layers]}
    (args.out / "overview.json").write_text(json.dumps(body, indent=1))
    if args.json:
        print(json.dumps(body))
        return
    reused = sum(entry["cached"] for entries in done.values() for entry in entries)
    print(f"{len(jobs)} visualizations of {', '.join(layers)} ({reused} from the cache) in {body['seconds']:.1f} s\n"
          f"wrote them and overview.json to {args.out}")


def _overview_jobs(args, model):
    """(the layers, a channel Target for each of the first --channels of each)."""
    from ..inspect.features import Target
    layers = _layer_names(args.layers) if args.layers else stage_layers(model.graph)
    if not layers:
        raise InputError(f"{model.name} has no spatial map that gets downsampled: name the layers with --layers")
    jobs = []
    for layer in layers:
        shape = model.graph[layer].output_shape  # an unknown layer: ModelError naming the known ones
        if len(shape) not in (1, 3):
            raise InputError(f"{layer} gives output of shape {shape}: a channel needs (C,) or (C, H, W)")
        jobs += [Target.channel(layer, channel) for channel in range(min(args.channels, shape[0]))]
    return layers, jobs


def _visualize_on(bar, model, target, settings, cache, version: str):
    """(Visualization, whether it came from ``cache``) for ``target``, moving ``bar`` a step at a time."""
    from ..inspect.features import cached_visualize, visualize
    bar.set_postfix_str(describe_target(target))
    start = bar.n

    def progress(step: int, steps: int) -> None:
        bar.update(start + step - bar.n)

    if cache is None:
        result, cached = visualize(model, target, settings, progress=progress), False
    else:
        result, cached = cached_visualize(cache, model, target, settings, version=version, progress=progress)
    bar.update(start + settings.steps - bar.n)  # all at once for a result from the cache
    return result, cached


def _layer_names(text: str) -> list[str]:
    return list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))


def _cache(args):
    """The FeatureCache --cache names (default: the server's), or None with --no-cache."""
    from ..inspect.features import FeatureCache
    if args.no_cache:
        return None
    return FeatureCache(args.cache or settings_from_args(args).data_dir / "features")


def stage_layers(graph) -> list[str]:
    """The last layer of each resolution stage, early to late: the map a spatial downsampling reads (a pool or
    strided conv whose output is at most 3/4 of its input's side), and the map the model pools or flattens at the
    end when it holds a conv's output. Where several maps of one size are downsampled, the first in execution
    order: a ResNet stage's output (read by the next block's downsampling shortcut), not that block's own inner
    map; a GoogLeNet stage's concat, not a branch inside the next module.

    mnist_cnn: relu1, relu2; VGG16: features.3, .8, .15, .22, .29; ResNet-50: relu, layer1.2.relu:3, ...,
    layer4.2.relu:3."""
    from ..models.kinds import LayerKind
    order = {name: i for i, name in enumerate(graph.names)}
    last_map = max((order[tap.name] for tap in graph.taps if tap.spatial), default=-1)
    with_conv = {tap.output_shape[1:] for tap in graph.taps if tap.spatial and tap.kind is LayerKind.CONV}
    ends: dict[tuple[int, ...], list[str]] = {}
    for tap in graph.taps:
        for parent in (graph[name] for name in tap.parents if name in graph):
            if not parent.spatial:
                continue
            size = parent.output_shape[1:]
            if tap.spatial:
                downsampled = any(4 * new <= 3 * old for new, old in zip(tap.output_shape[1:], size, strict=True))
            else:  # pooled to 1x1 or flattened: the end only after the last map (an SE gate's squeeze is not)
                downsampled = order[tap.name] > last_map and size in with_conv
            if downsampled:
                ends.setdefault(size, []).append(parent.name)
    return sorted({min(names, key=order.__getitem__) for names in ends.values()}, key=order.__getitem__)
