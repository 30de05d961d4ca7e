"""A model as a graph of named taps, derived from the module itself.

A *tap* is one place whose output can be captured: a call of a leaf module, named by its module path as in
``named_modules()`` and the state_dict (``features.0``, ``layer1.0.conv1``), or a structural function call named
after the module it happens in (``layer1.0.add``, ``Mixed_5b.cat``, ``Mixed_5b.branch1x1.relu`` for a
``F.relu``). A module or op called more than once in one forward gives one tap per call: ``layer1.0.relu``,
``layer1.0.relu:2``, ``layer1.0.relu:3``. Each tap knows the taps it reads from (``parents``; ``"input"`` is the
model input), so residual adds and multi-branch concats are edges, not guesses from list order.

How: ``torch.fx`` symbolic tracing, with the standard ``torch.nn`` layers kept whole (as torchvision's feature
extraction does), then one forward of a blank input for the shapes. Ops that only do arithmetic with constants
(normalisation, ``x * 0.5``), shape bookkeeping and ``nn.Identity`` get no tap: edges pass through them. A model
that cannot be traced (data-dependent control flow, say) falls back to the order in which forward hooks saw its
leaf modules run during one forward; edges then follow tensor identity where they can and call order where they
cannot, and the graph says it is approximate (``traced=False``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn

from ..errors import ModelError
from .capture import call_suffix, hooked, record
from .kinds import MERGES, PASS_THROUGH_MODULES, LayerKind, call_kind, call_name, is_in_place, module_kind

INPUT = "input"  # the parent name of taps that read the model input


@dataclass(frozen=True)
class Tap:
    name: str
    kind: LayerKind
    op: str  # the module class or function: "Conv2d", "add", "cat"
    output_shape: tuple[int, ...]  # without the batch dimension
    parents: tuple[str, ...]  # taps it reads from, INPUT for the model input
    module: str | None = None  # the module path for a module call; None for a function call
    call: int = 1  # which call of the module or op in one forward (1-based)
    parameters: int = 0  # the module's parameters, counted at its first call only
    macs: int = 0  # multiply-accumulates for one input; FLOPs ~= 2 * macs
    # conv and pool modules: how each output cell sees its input, (height, width) each
    kernel: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] | None = None

    @property
    def spatial(self) -> bool:
        """Whether the output is a (C, H, W) map bigger than 1x1: something a CAM can be laid out on."""
        return len(self.output_shape) == 3 and self.output_shape[1] * self.output_shape[2] > 1

    def as_dict(self) -> dict:
        body = {"name": self.name, "kind": self.kind.value, "op": self.op, "output_shape": list(self.output_shape),
                "parents": list(self.parents), "module": self.module, "call": self.call,
                "parameters": self.parameters, "macs": self.macs, "flops": 2 * self.macs}
        if self.kernel is not None:
            body.update(kernel=list(self.kernel), stride=list(self.stride), padding=list(self.padding))
        return body


@dataclass(frozen=True)
class Graph:
    input_shape: tuple[int, ...]  # (C, H, W)
    taps: tuple[Tap, ...]  # in execution order
    output: str | None  # the tap whose output is the model's output; None when an untapped op makes it
    output_shape: tuple[int, ...]  # the model output's shape without the batch dimension
    traced: bool  # True: exact, from torch.fx; False: approximate, from the call order hooks saw
    _index: dict[str, Tap] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {tap.name: tap for tap in self.taps})

    def __getitem__(self, name: str) -> Tap:
        try:
            return self._index[name]
        except KeyError:
            raise ModelError(f"unknown layer {name!r}; layers: {', '.join(self.names)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    @property
    def names(self) -> list[str]:
        return [tap.name for tap in self.taps]

    @property
    def logits(self) -> str | None:
        """The tap holding the class scores when the model ends in a softmax (its input); None when the model's
        output itself is the scores."""
        out = self._index.get(self.output)
        if out is not None and out.kind is LayerKind.SOFTMAX and len(out.parents) == 1 and out.parents[0] != INPUT:
            return out.parents[0]
        return None

    def default_cam_layer(self) -> str | None:
        """Where Grad-CAM looks by default: walking back from the output along the latest parent, the first tap
        with a spatial map that is not a pooling layer. That is the last conv block's activation (``relu2`` in
        mnist_cnn, ``features.29`` in VGG16), the last residual block's output in a ResNet, the last concat in
        Inception: the most semantic maps that keep a spatial layout. A pooling layer after it only coarsens the
        map. None for a model with no spatial layer (an MLP)."""
        order = {name: i for i, name in enumerate(self.names)}
        name = self.output
        while name in self._index:
            tap = self._index[name]
            if tap.spatial and tap.kind is not LayerKind.POOL:
                return name
            parents = [p for p in tap.parents if p in order]
            name = max(parents, key=order.__getitem__) if parents else None
        return None

    def as_dict(self) -> dict:
        return {"input_shape": list(self.input_shape), "traced": self.traced, "output": self.output,
                "output_shape": list(self.output_shape),
                "logits": self.logits, "default_cam_layer": self.default_cam_layer(),
                "layers": [tap.as_dict() for tap in self.taps]}


@dataclass
class TracedModel:
    """A graph and the callable that runs the model with its taps recordable (see :mod:`.capture`)."""

    graph: Graph
    run: Callable[[torch.Tensor], object]


def trace_model(model: nn.Module, input_shape: tuple[int, ...]) -> TracedModel:
    """The graph of ``model`` (in eval mode) for inputs of ``input_shape`` (C, H, W), and how to run it with taps.

    Raises :class:`ModelError` when one forward of a blank input fails (the model does not take that shape).
    """
    model.eval()
    try:
        graph_module = _ScopeTracer().trace_to_module(model)
    except Exception:  # torch.fx raises many kinds of errors for code it cannot trace
        return _trace_with_hooks(model, tuple(input_shape))
    shapes = _node_shapes(graph_module, input_shape)
    return _instrument(graph_module, _taps_from_fx(graph_module, shapes, input_shape), tuple(input_shape))


def _blank(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    param = next(model.parameters(), None)
    return torch.zeros(1, *input_shape, device=param.device if param is not None else "cpu")


def _dry_run(run: Callable[[torch.Tensor], object], x: torch.Tensor, input_shape) -> object:
    try:
        with torch.no_grad():
            return run(x)
    except Exception as e:  # any error from the model's own code: the shape does not fit it
        raise ModelError(f"the model does not run on input of shape {tuple(input_shape)}: "
                         f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


class _ScopeTracer(fx.Tracer):
    """Keeps ``torch.nn`` layers whole and remembers which module each function call happened in."""

    def __init__(self) -> None:
        super().__init__()
        self.module_scope = ""

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


def _node_shapes(graph_module: fx.GraphModule, input_shape) -> dict[fx.Node, tuple[int, ...] | None]:
    """Each node's output shape (without the batch dimension) from one forward; None for non-tensors."""
    shapes: dict[fx.Node, tuple[int, ...] | None] = {}

    class Shapes(fx.Interpreter):
        def run_node(self, node):
            out = super().run_node(node)
            shapes[node] = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) and out.dim() > 0 else None
            return out

    _dry_run(Shapes(graph_module).run, _blank(graph_module, input_shape), input_shape)
    return shapes


def _pair(value) -> tuple[int, ...]:
    return (value, value) if isinstance(value, int) else tuple(value)


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
    kernel = getattr(module, "kernel_size", None)
    if kernel is not None and isinstance(module, (nn.modules.conv._ConvNd, nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride if module.stride is not None else kernel
        facts.update(kernel=_pair(kernel), stride=_pair(stride), padding=_pair(module.padding))
    return facts


def _classify(node: fx.Node, modules: dict[str, nn.Module], sources: tuple[str, ...], shapes) -> tuple | None:
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
        # An op we do not know still gets a tap when it merges activations, so no branch is ever hidden.
        kind = LayerKind.OTHER if len(sources) >= 2 else None
    if kind in (LayerKind.FLATTEN, LayerKind.POOL) and node.op == "call_method":
        before = shapes.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if before is None or len(shapes[node]) >= len(before):
            return None  # a view that keeps the rank, or a mean that is not a pooling
    if kind is None:
        return None
    op = call_name(node.op, node.target)
    scope = node.meta.get("convscope_scope", "")
    return kind, f"{scope}.{op}" if scope else op, op, None


def _taps_from_fx(graph_module: fx.GraphModule, shapes, input_shape) -> tuple[Graph, dict[fx.Node, str]]:
    modules = dict(graph_module.named_modules())
    feeds: dict[fx.Node, tuple[str, ...]] = {}  # the taps whose values reach each node
    names: dict[fx.Node, str] = {}
    calls: dict[str, int] = {}
    taps, output, output_shape = [], None, ()
    for node in graph_module.graph.nodes:
        sources = tuple(dict.fromkeys(name for arg in node.all_input_nodes for name in feeds.get(arg, ())))
        if node.op == "placeholder":
            feeds[node] = (INPUT,)
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, fx.Node) or shapes.get(result) is None:
                raise ModelError("the model's output must be one tensor of class scores")
            output, output_shape = names.get(result), shapes[result]
        elif shapes.get(node) is None:
            feeds[node] = ()  # sizes and other bookkeeping, and constants
        elif (found := _classify(node, modules, sources, shapes)) is None:
            feeds[node] = sources
        else:
            kind, base, op, module = found
            calls[base] = calls.get(base, 0) + 1
            name = call_suffix(base, calls[base])
            facts = _module_facts(module, shapes[node]) if module is not None else {}
            if calls[base] > 1:
                facts.pop("parameters", None)
            taps.append(Tap(name, kind, op, shapes[node], sources, node.target if module is not None else None,
                            calls[base], **facts))
            names[node] = name
            feeds[node] = (name,)
    return Graph(tuple(input_shape), tuple(taps), output, output_shape, traced=True), names


def _overwritten(node: fx.Node, tapped: dict[fx.Node, str], modules: dict[str, nn.Module]) -> bool:
    """Whether an in-place op later writes into ``node``'s output, directly or through an untapped view."""
    for user in node.users:
        module = modules.get(user.target) if user.op == "call_module" else None
        if user.args and user.args[0] is node and is_in_place(user.op, user.target, user.kwargs, module):
            return True
        if user not in tapped and user.op in ("call_function", "call_method") and _overwritten(user, tapped, modules):
            return True
    return False


def _instrument(graph_module: fx.GraphModule, found: tuple[Graph, dict[fx.Node, str]], input_shape) -> TracedModel:
    """Insert a :func:`record` call after every tap and recompile."""
    graph, names = found
    modules = dict(graph_module.named_modules())
    copies = {node: _overwritten(node, names, modules) for node in names}
    for node, name in names.items():
        with graph_module.graph.inserting_after(node):
            recorded = graph_module.graph.call_function(record, (name, node, copies[node]))
        node.replace_all_uses_with(recorded, delete_user_cb=lambda user, recorded=recorded: user is not recorded)
    graph_module.graph.lint()
    graph_module.recompile()
    return TracedModel(graph, graph_module)


def _leaf_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {path: module for path, module in model.named_modules()
            if path and next(module.children(), None) is None and not isinstance(module, PASS_THROUGH_MODULES)}


def _trace_with_hooks(model: nn.Module, input_shape: tuple[int, ...]) -> TracedModel:
    leaves = _leaf_modules(model)
    x = _blank(model, input_shape)
    producers: dict[int, str] = {id(x): INPUT}
    alive: list[torch.Tensor] = [x]  # keeps every output alive, so no id is reused during the forward
    taps: list[Tap] = []
    calls: dict[str, int] = {}

    def hook_for(path: str):
        def hook(module, inputs, output):
            calls[path] = calls.get(path, 0) + 1  # counted as capture.hooked counts, tensor or not
            if not isinstance(output, torch.Tensor):
                return
            name = call_suffix(path, calls[path])
            known = [producers[id(t)] for t in inputs if isinstance(t, torch.Tensor) and id(t) in producers]
            # An input no tap produced came from a function call we cannot see: the previous tap stands in.
            parents = tuple(dict.fromkeys(known)) or ((taps[-1].name,) if taps else (INPUT,))
            facts = _module_facts(module, tuple(output.shape[1:]))
            if calls[path] > 1:
                facts.pop("parameters", None)
            taps.append(Tap(name, module_kind(module), type(module).__name__, tuple(output.shape[1:]), parents,
                            path, calls[path], **facts))
            producers[id(output)] = name
            alive.append(output)
        return hook

    handles = [module.register_forward_hook(hook_for(path)) for path, module in leaves.items()]
    try:
        out = _dry_run(model, x, input_shape)
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(out, torch.Tensor):
        raise ModelError("the model's output must be one tensor of class scores")
    graph = Graph(input_shape, tuple(taps), producers.get(id(out)) if id(out) != id(x) else None,
                  tuple(out.shape[1:]), traced=False)
    return TracedModel(graph, _HookedRun(model))


class _HookedRun:
    """Runs an untraceable model with recording hooks on its leaf modules (an object, not a closure, so a deep
    copy of it runs the copied model)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __call__(self, inputs: torch.Tensor):
        with hooked(_leaf_modules(self.model)):
            return self.model(inputs)
