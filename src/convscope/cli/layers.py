"""``convscope layers``: a model's graph as a table, and one layer's weights and biases with their statistics."""

from __future__ import annotations

import json

from .options import add_model_options, positive_int


def add_layers_parser(commands) -> None:
    p = commands.add_parser("layers", help="a model's layers (kind, shape, parents, parameters, MACs); with "
                                           "--layer, that layer's weight and bias statistics")
    add_model_options(p)
    p.add_argument("--layer", help="show this layer's weights and biases (loads the weights: downloads once); "
                                   "default: list every layer")
    p.add_argument("--bins", type=positive_int, default=10, help="histogram bins for --layer")
    p.add_argument("--json", action="store_true", help="print the layers, or the layer's statistics, as JSON")


def cmd_layers(args, load) -> None:
    from ..inspect.weights import layer_weights
    from ..models import get_spec
    if args.layer is None and args.model_file is None:
        spec = get_spec(args.model or "mnist_cnn")  # the architecture alone: nothing to load or download
        adapter = spec.adapter(spec.build())
    else:
        adapter = load(args).adapter
    if args.layer is None:
        _print_graph(adapter, args.json)
        return
    entries = layer_weights(adapter, bins=args.bins, layers=[args.layer])
    tap = adapter.graph[args.layer]
    body = {"layer": tap.as_dict(), "weights": [{role: {k: v for k, v in entry[role].items() if k != "tensor"}
                                                 for role in ("weight", "bias") if role in entry}
                                                for entry in entries]}
    if args.json:
        print(json.dumps(body))
        return
    print(f"{tap.name} ({tap.kind.value}, {tap.op}): output {tuple(tap.output_shape)}, {tap.parameters:,} parameters")
    if not entries:
        print("  no weights (a layer without parameters, or not the first call of its module)")
    for role, part in (body["weights"][0].items() if entries else ()):
        stats = part["stats"]
        print(f"  {role} {tuple(part['shape'])}: mean {stats['mean']:.4g}, std {stats['std']:.4g}, "
              f"min {stats['min']:.4g}, max {stats['max']:.4g}, |mean| {stats['abs_mean']:.4g}, "
              f"L2 {stats['l2_norm']:.4g}")


def _print_graph(adapter, as_json: bool) -> None:
    graph = adapter.graph
    if as_json:
        print(json.dumps({"model": adapter.name, **graph.as_dict()}))
        return
    note = "" if graph.traced else " (approximate: the model could not be traced)"
    print(f"{adapter.name}: {len(graph.taps)} layers, default CAM layer {graph.default_cam_layer()}{note}")
    for tap in graph.taps:
        print(f"  {tap.name:<34} {tap.kind.value:<10} {str(tuple(tap.output_shape)):<18} "
              f"{tap.parameters:>11,}  {tap.macs:>14,} MACs  <- {', '.join(tap.parents)}")
