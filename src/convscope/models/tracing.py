"""Finding a module's :class:`~convscope.models.graph.Graph`, and a way to run it with its taps recordable.

``torch.fx`` symbolic tracing, with the standard ``torch.nn`` layers kept whole (as torchvision's feature
extraction does), then one forward of a blank input for the shapes. Ops that only do arithmetic with constants
(normalisation, ``x * 0.5``), shape bookkeeping, tuple plumbing and ``nn.Identity`` get no tap: edges pass
through them; an op we do not know still gets a tap when it merges two or more activations, so no branch is
hidden. A model that cannot be traced (data-dependent control flow, say) falls back to the calls forward hooks see
during one forward; edges then follow tensor identity where they can and call order where they cannot, and the
graph says it is approximate (``traced=False``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn

from ..errors import ModelError
from .capture import call_suffix, install_hooks, record, recording
from .graph import INPUT, LOGITS, Graph, Tap
from .kinds import MERGES, PASS_THROUGH_MODULES, LayerKind, call_kind, call_name, is_in_place, module_kind

CARRIES_TENSORS = "tensors"  # the value of a node that is a tuple or list holding tensors (chunk, split)


@dataclass
class TracedModel:
    graph: Graph
    run: Callable[[torch.Tensor], object]  # the model itself, or a traced copy sharing its parameters


def trace_model(model: nn.Module, input_shape: tuple[int, ...]) -> TracedModel:
    """The graph of ``model`` (in eval mode) for inputs of ``input_shape`` (C, H, W), and how to run it with taps.

    Raises :class:`ModelError` when one forward of a blank input fails (the model does not take that shape) or
    its output is not one tensor.
    """
    model.eval()
    input_shape = tuple(input_shape)
    try:
        graph_module = _ScopeTracer().trace_to_module(model)
    except Exception:  # torch.fx raises many kinds of errors for code it cannot trace
        return _trace_with_hooks(model, input_shape)
    return _instrument(graph_module, *_taps_from_fx(graph_module, _node_values(graph_module, input_shape),
                                                    input_shape))


def _blank(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    param = next(model.parameters(), None)
    if param is None:
        return torch.zeros(1, *input_shape)
    return torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype)


def _dry_run(run: Callable[[torch.Tensor], object], x: torch.Tensor, input_shape) -> object:
    try:
        with torch.no_grad():
            return run(x)
    except Exception as e:  # any error from the model's own code: the shape does not fit it
        raise ModelError(f"the model does not run on input of shape {tuple(input_shape)}: "
                         f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


class _ScopeTracer(fx.Tracer):
    """Keeps ``torch.nn`` layers whole (and subclasses of them: a conv that pads itself is still a conv) and
    remembers which module each function call happened in."""

    def __init__(self) -> None:
        super().__init__()
        self.module_scope = ""

    def is_leaf_module(self, module: nn.Module, path: str) -> bool:
        return super().is_leaf_module(module, path) or module_kind(module) is not LayerKind.OTHER

    def call_module(self, module, forward, args, kwargs):
        path = self.path_of_module(module)
        if self.is_leaf_module(module, path):
            return super().call_module(module, forward, args, kwargs)
        outer, self.module_scope = self.module_scope, path
        try:
            return super().call_module(module, forward, args, kwargs)
        finally:
            self.module_scope = outer

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["convscope_scope"] = self.module_scope
        return node

    def trace_to_module(self, model: nn.Module) -> fx.GraphModule:
        graph = self.trace(model)
        if sum(node.op == "placeholder" for node in graph.nodes) != 1:
            raise ModelError("convscope inspects models that take one input tensor")
        return fx.GraphModule(model, graph)


def _node_values(graph_module: fx.GraphModule, input_shape) -> dict[fx.Node, tuple[int, ...] | str | None]:
    """Each node's output from one forward: its shape without the batch dimension for a tensor,
    CARRIES_TENSORS for a tuple or list of them, None for anything else (sizes, constants)."""
    values: dict[fx.Node, tuple[int, ...] | str | None] = {}

    class Values(fx.Interpreter):
        def run_node(self, node):
            out = super().run_node(node)
            if isinstance(out, torch.Tensor) and out.dim() > 0:
                values[node] = tuple(out.shape[1:])
            elif isinstance(out, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in out):
                values[node] = CARRIES_TENSORS
            else:
                values[node] = None
            return out

    _dry_run(Values(graph_module).run, _blank(graph_module, input_shape), input_shape)
    return values


def _pair(value) -> tuple[int, ...]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _padding(module: nn.Module) -> tuple[int, ...]:
    """Padding before the input, with "valid" and "same" (stride 1) resolved to numbers; a module that pads its
    input itself says how much in ``padding_before``."""
    if hasattr(module, "padding_before"):
        return tuple(module.padding_before)
    if module.padding == "valid":
        return (0, 0)
    if module.padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(_pair(module.kernel_size), _pair(module.dilation),
                                                       strict=True))
    return _pair(module.padding)


def _module_facts(module: nn.Module, output_shape: tuple[int, ...]) -> dict:
    """Parameters, MACs and the sliding window of one leaf module."""
    facts = {"parameters": sum(p.numel() for p in module.parameters())}
    numel = 1
    for size in output_shape:
        numel *= size
    if isinstance(module, nn.modules.conv._ConvNd):
        per_output = module.in_channels // module.groups
        for k in module.kernel_size:
            per_output *= k
        facts["macs"] = per_output * numel
    elif isinstance(module, nn.Linear):
        facts["macs"] = module.in_features * numel
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        kernel = module.kernel_size
        stride = module.stride if module.stride is not None else kernel
        facts.update(kernel=_pair(kernel), stride=_pair(stride), padding=_padding(module),
                     dilation=_pair(getattr(module, "dilation", 1)))
    return facts


def _classify(node: fx.Node, modules: dict[str, nn.Module], sources: tuple[str, ...], values) -> tuple | None:
    """(kind, base name, op, module) of a node that gets a tap; None for one the edges pass through."""
    if node.op == "call_module":
        module = modules[node.target]
        if isinstance(module, PASS_THROUGH_MODULES):
            return None
        return module_kind(module), node.target, type(module).__name__, module
    if node.op not in ("call_function", "call_method"):
        return None
    kind = call_kind(node.op, node.target)
    if kind is None or (kind in MERGES and len(sources) < 2):
        kind = LayerKind.OTHER if len(sources) >= 2 else None
    if kind in (LayerKind.FLATTEN, LayerKind.POOL) and node.op == "call_method":
        before = values.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if not isinstance(before, tuple) or len(values[node]) >= len(before):
            return None  # a view that keeps the rank, or a mean that is not a pooling
    if kind is None:
        return None
    op = call_name(node.op, node.target)
    scope = node.meta.get("convscope_scope", "")
    return kind, f"{scope}.{op}" if scope else op, op, None


def _taps_from_fx(graph_module: fx.GraphModule, values, input_shape):
    """The graph, each tapped node's name, and the node to record as the hidden LOGITS tap (or None)."""
    modules = dict(graph_module.named_modules())
    feeds: dict[fx.Node, tuple[str, ...]] = {}  # the taps whose values reach each node
    names: dict[fx.Node, str] = {}
    calls: dict[str, int] = {}
    taps: list[Tap] = []
    for node in graph_module.graph.nodes:
        sources = tuple(dict.fromkeys(name for arg in node.all_input_nodes for name in feeds.get(arg, ())))
        value = values.get(node)
        if node.op == "placeholder":
            feeds[node] = (INPUT,)
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, fx.Node) or not isinstance(values.get(result), tuple):
                raise ModelError("the model's output must be one tensor of class scores")
        elif not isinstance(value, tuple):
            feeds[node] = sources if value == CARRIES_TENSORS else ()  # tuples pass their tensors' sources on
        elif (found := _classify(node, modules, sources, values)) is None:
            feeds[node] = sources
        else:
            kind, base, op, module = found
            calls[base] = calls.get(base, 0) + 1
            facts = _module_facts(module, value) if module is not None else {}
            if calls[base] > 1:
                facts.pop("parameters", None)
            names[node] = call_suffix(base, calls[base])
            taps.append(Tap(names[node], kind, op, value, sources, node.target if module is not None else None,
                            calls[base], **facts))
            feeds[node] = (names[node],)
    output = names.get(result)
    logits, logits_node = None, None
    if output is not None and taps[-1].name == output and taps[-1].kind is LayerKind.SOFTMAX:
        # Scores are what the softmax reads: a tap when it reads one as it is, else a hidden tap of its own
        # (``softmax(fc(x) / temperature)`` must give the same probabilities as the model).
        logits_node = result.args[0] if result.args and isinstance(result.args[0], fx.Node) else None
        logits = names.get(logits_node, LOGITS) if logits_node is not None else None
    graph = Graph(tuple(input_shape), tuple(taps), output, feeds[result], values[result], logits, traced=True)
    return graph, names, logits_node if logits == LOGITS else None


def _has_in_place_op(graph_module: fx.GraphModule) -> bool:
    modules = dict(graph_module.named_modules())
    return any(is_in_place(node.op, node.target, node.kwargs, modules.get(node.target))
               for node in graph_module.graph.nodes if node.op in ("call_module", "call_function", "call_method"))


def _instrument(graph_module: fx.GraphModule, graph: Graph, names: dict[fx.Node, str],
                logits_node: fx.Node | None) -> TracedModel:
    """Insert a :func:`record` call after every tap (and the hidden logits) and recompile. Captures are copies
    whenever the model has any in-place op: a later one could write into them through any alias (a view, an
    ``nn.Identity``, a dropout in eval mode)."""
    copy = _has_in_place_op(graph_module)
    recorded = dict(names) if logits_node is None else {**names, logits_node: LOGITS}
    for node, name in recorded.items():
        with graph_module.graph.inserting_after(node):
            call = graph_module.graph.call_function(record, (name, node, copy))
        node.replace_all_uses_with(call, delete_user_cb=lambda user, call=call: user is not call)
    graph_module.graph.lint()
    graph_module.recompile()
    return TracedModel(graph, graph_module)


def _leaf_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {path: module for path, module in model.named_modules()
            if path and next(module.children(), None) is None and not isinstance(module, PASS_THROUGH_MODULES)}


def _trace_with_hooks(model: nn.Module, input_shape: tuple[int, ...]) -> TracedModel:
    handles = [] if getattr(model, "_convscope_hooks", False) else install_hooks(_leaf_modules(model))
    model._convscope_hooks = True  # wrapping the same module twice must not hook it twice
    x = _blank(model, input_shape)
    producers: dict[int, str] = {id(x): INPUT}
    alive: list[torch.Tensor] = [x]  # keeps every output alive, so no id is reused during the forward
    taps: list[Tap] = []
    reads_as_is: dict[str, bool] = {}  # whether a tap's first input is another tap's output, unchanged

    def observe(path: str, call: int, module: nn.Module, inputs: tuple, output) -> None:
        if not isinstance(output, torch.Tensor):
            return
        name = call_suffix(path, call)
        tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
        known = [producers[id(t)] for t in tensors if id(t) in producers]
        # An input no tap produced came from a function call we cannot see: the previous tap stands in.
        parents = tuple(dict.fromkeys(known)) or ((taps[-1].name,) if taps else (INPUT,))
        reads_as_is[name] = bool(tensors) and id(tensors[0]) in producers
        facts = _module_facts(module, tuple(output.shape[1:]))
        if call > 1:
            facts.pop("parameters", None)
        taps.append(Tap(name, module_kind(module), type(module).__name__, tuple(output.shape[1:]), parents, path,
                        call, **facts))
        producers[id(output)] = name
        alive.append(output)

    try:
        with recording((), observer=observe):
            out = _dry_run(model, x, input_shape)
        if not isinstance(out, torch.Tensor):
            raise ModelError("the model's output must be one tensor of class scores")
    except ModelError:  # the model is not wrapped after all: leave it as it was
        for handle in handles:
            handle.remove()
        model._convscope_hooks = False
        raise
    output = producers.get(id(out)) if id(out) != id(x) else None
    by_name = {tap.name: tap for tap in taps}
    logits = None
    if output is not None and by_name[output].kind is LayerKind.SOFTMAX and reads_as_is[output]:
        logits = by_name[output].parents[0]
    sources = (output,) if output else ((taps[-1].name,) if taps else ())
    graph = Graph(input_shape, tuple(taps), output, sources, tuple(out.shape[1:]), logits, traced=False)
    return TracedModel(graph, model)
