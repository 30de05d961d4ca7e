"""The graph of taps and captures through it, worked out by hand on tiny nets with fixed weights."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convscope.errors import ModelError
from convscope.inspect import Inspector
from convscope.models import INPUT, LOGITS, LayerKind, get_spec, wrap

GREY_2x2 = {"name": "resize", "size": 2, "channels": 1}


class Residual(nn.Module):
    """conv (weight -1) -> ReLU(inplace) -> + input -> the same ReLU again -> linear. The in-place ReLU writes into
    the conv's output, and the shared ReLU runs twice: the two things plain forward hooks get wrong."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(-1.0)
            self.fc.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, -1.0]]))

    def forward(self, x):
        out = self.relu(self.conv(x))
        out = out + x
        return self.fc(self.relu(out).flatten(1))


# x = [[1, -2], [3, -4]]
X = torch.tensor([[[1.0, -2.0], [3.0, -4.0]]])
CONV = [[-1.0, 2.0], [-3.0, 4.0]]  # -x
RELU = [[0.0, 2.0], [0.0, 4.0]]  # what an in-place ReLU leaves in the conv's output tensor
ADD = [[1.0, 0.0], [3.0, 0.0]]  # RELU + x
# second ReLU: ADD unchanged; fc: [1+0+3+0, 0+0+0-0] = [4, 0]


def test_residual_graph_names_every_call_and_its_parents():
    graph = wrap(Residual(), ["a", "b"], GREY_2x2).graph
    assert graph.traced
    assert [(tap.name, tap.kind, tap.parents) for tap in graph.taps] == [
        ("conv", LayerKind.CONV, (INPUT,)),
        ("relu", LayerKind.RELU, ("conv",)),
        ("add", LayerKind.ADD, ("relu", INPUT)),  # the skip connection is an edge from the input
        ("relu:2", LayerKind.RELU, ("add",)),  # the shared ReLU's second call is a tap of its own
        ("flatten", LayerKind.FLATTEN, ("relu:2",)),
        ("fc", LayerKind.LINEAR, ("flatten",)),
    ]
    assert (graph["relu"].module, graph["relu"].call, graph["relu:2"].module, graph["relu:2"].call) == (
        "relu", 1, "relu", 2)
    assert graph.output == "fc" and graph.logits is None
    assert graph.default_cam_layer() == "relu:2"


def test_captures_hold_each_layers_own_output_despite_in_place_ops():
    result = Inspector(wrap(Residual(), ["a", "b"], GREY_2x2)).inspect(X, target=0, cam_layer="add")
    acts = result.activations
    torch.testing.assert_close(acts["conv"], torch.tensor([CONV]))
    torch.testing.assert_close(acts["relu"], torch.tensor([RELU]))
    torch.testing.assert_close(acts["add"], torch.tensor([ADD]))
    torch.testing.assert_close(acts["relu:2"], torch.tensor([ADD]))
    torch.testing.assert_close(result.logits, torch.tensor([4.0, 0.0]))
    # Grad-CAM at "add" for class 0: dy0/d(add) = fc row 0 through the ReLU's mask (add > 0) = [[1, 0], [1, 0]];
    # channel weight = its mean = 0.5; map = ReLU(0.5 * ADD) = [[0.5, 0], [1.5, 0]].
    torch.testing.assert_close(result.cam_raw, torch.tensor([[0.5, 0.0], [1.5, 0.0]]))
    # Saliency: d y0 / d x = -mask(conv > 0) * g + g with g = [[1, 0], [1, 0]]: x -> conv -> relu -> add and x -> add.
    torch.testing.assert_close(result.saliency, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))


def test_the_users_module_still_computes_the_same():
    model = Residual().eval()
    expected = model(X[None].clone())
    adapter = wrap(model, ["a", "b"], GREY_2x2)
    torch.testing.assert_close(adapter.logits(X[None]), expected)


class TwoBranch(nn.Module):
    """An Inception-style block: two branches concatenated; one branch's ReLU is a function call."""

    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1)

        def forward(self, x):
            return F.relu(self.conv(x), inplace=True)

    def __init__(self):
        super().__init__()
        self.left = TwoBranch.Branch()
        self.right = nn.Conv2d(1, 3, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        merged = torch.cat([self.left(x), self.right(x)], dim=1)
        return self.fc(torch.flatten(self.pool(merged), 1))


def test_two_branch_concat_has_both_parents_and_function_taps_are_named_by_scope():
    graph = wrap(TwoBranch(), None, {"name": "resize", "size": 4, "channels": 1}).graph
    parents = {tap.name: tap.parents for tap in graph.taps}
    assert parents == {"left.conv": (INPUT,), "left.relu": ("left.conv",), "right": (INPUT,),
                       "cat": ("left.relu", "right"), "pool": ("cat",), "flatten": ("pool",), "fc": ("flatten",)}
    assert graph["cat"].kind is LayerKind.CONCAT and graph["cat"].output_shape == (5, 4, 4)
    assert graph["left.relu"].module is None and graph["left.relu"].op == "relu"
    assert graph.default_cam_layer() == "cat"


def test_default_cam_layers_of_the_registered_models():
    cnn, mlp = (get_spec(name).adapter(get_spec(name).build()).graph for name in ("mnist_cnn", "mnist_mlp"))
    assert cnn.default_cam_layer() == "relu2"  # the pool after it only coarsens the map
    assert mlp.default_cam_layer() is None


def test_class_names_default_to_indices_and_must_match_the_outputs():
    assert wrap(TwoBranch(), None, {"name": "resize", "size": 4, "channels": 1}).class_names == ("0", "1", "2", "3")
    with pytest.raises(ModelError, match="the model gives 4 scores but 2 class names were given"):
        wrap(TwoBranch(), ["a", "b"], {"name": "resize", "size": 4, "channels": 1})


def test_an_untraceable_model_gets_an_approximate_graph_that_still_inspects():
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.fc = nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            y = self.conv(x)
            if y.sum() > 1e9:  # data-dependent control flow: torch.fx cannot trace this
                y = y * 0
            return self.fc(torch.relu(y).flatten(1))

    adapter = wrap(Gated(), None, {"name": "resize", "size": 4, "channels": 1})
    graph = adapter.graph
    assert not graph.traced
    assert [(tap.name, tap.parents) for tap in graph.taps] == [("conv", (INPUT,)), ("fc", ("conv",))]
    result = Inspector(adapter).inspect(torch.rand(1, 4, 4))
    assert result.cam_layer == "conv" and result.cam.shape == (4, 4)
    assert result.activations["conv"].shape == (2, 4, 4)


def test_wrong_input_size_and_wrong_output_are_clear_errors():
    with pytest.raises(ModelError, match=r"does not run on input of shape \(1, 3, 3\)"):
        wrap(Residual(), None, {"name": "resize", "size": 3, "channels": 1})

    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(ModelError, match="output must be one tensor"):
        wrap(Pair(), None, GREY_2x2)


def test_big_models_capture_only_what_is_asked(monkeypatch):
    import convscope.inspect.inspector as inspector_module
    adapter = get_spec("mnist_cnn").adapter(get_spec("mnist_cnn").build())
    monkeypatch.setattr(inspector_module, "ALL_LAYERS_BY_DEFAULT", 1000)  # make mnist_cnn count as big
    captured = []
    real_capture = adapter.capture
    monkeypatch.setattr(adapter, "capture", lambda x, taps: captured.append(sorted(taps)) or real_capture(x, taps))
    result = Inspector(adapter).inspect(torch.rand(28, 28))
    assert captured == [["relu2"]]  # only what the CAM needs was recorded
    assert result.activations == {} and result.cam_layer == "relu2" and result.cam is not None
    assert list(Inspector(adapter).inspect(torch.rand(28, 28), layers=["fc1", "conv1"]).activations) == [
        "conv1", "fc1"]  # in graph order


class Conv(nn.Module):
    """conv (weight 1, one channel) -> ``between`` -> ReLU(inplace): a later in-place op reaching the conv's
    output through an alias."""

    def __init__(self, between: nn.Module | None, view: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.between = between
        self.view = view
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)

    def forward(self, x):
        y = self.conv(x)
        if self.between is not None:
            y = self.between(y)
        if self.view:
            y = y.view(y.size(0), -1)
        return self.fc(self.act(y).flatten(1))


@pytest.mark.parametrize("between, view", [(nn.Identity(), False), (nn.Dropout(0.5), False), (None, True)])
def test_an_in_place_op_through_an_alias_leaves_the_capture_alone(between, view):
    adapter = wrap(Conv(between, view), None, GREY_2x2)
    _, store = adapter.capture(X[None], ["conv"])  # only the conv is asked for
    torch.testing.assert_close(store["conv"][0, 0], X[0])  # not rectified by the ReLU that came later


def test_tuple_outputs_keep_their_edges():
    class Shuffle(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 1)
            self.branch = nn.Conv2d(2, 2, 1)
            self.fc = nn.Linear(16, 2)

        def forward(self, x):
            kept, changed = self.conv(x).chunk(2, dim=1)
            return self.fc(torch.cat([kept, self.branch(changed)], 1).flatten(1))

    graph = wrap(Shuffle(), None, GREY_2x2).graph
    assert graph["branch"].parents == ("conv",) and graph["cat"].parents == ("conv", "branch")


def test_an_untapped_last_op_still_gives_a_cam_layer_and_a_scaled_softmax_its_real_logits():
    class Tempered(nn.Module):
        def __init__(self, temperature: float | None):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1)
            self.fc = nn.Linear(8, 3)
            self.temperature = temperature

        def forward(self, x):
            scores = self.fc(torch.relu(self.conv(x)).flatten(1)) / 2.0  # an op with no tap makes the output
            return scores if self.temperature is None else torch.softmax(scores / self.temperature, dim=1)

    plain = wrap(Tempered(None), None, GREY_2x2)
    assert plain.graph.output is None and plain.graph.output_sources == ("fc",)
    assert plain.graph.default_cam_layer() == "relu"
    torch.manual_seed(0)
    model = Tempered(0.3)
    tempered = wrap(model, None, GREY_2x2)
    assert tempered.graph.logits == LOGITS  # the softmax reads fc(x) / 2 / 0.3, which no tap holds
    x = torch.rand(1, 1, 2, 2)
    torch.testing.assert_close(torch.softmax(Inspector(tempered).inspect(x[0]).logits, 0), model(x)[0])


def test_string_padding_is_resolved_to_numbers():
    class Same(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding="same", dilation=2)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    tap = wrap(Same(), None, GREY_2x2).graph["conv"]
    assert (tap.kernel, tap.padding, tap.dilation) == ((3, 3), (2, 2), (2, 2))
    assert tap.as_dict()["padding"] == [2, 2]


def test_moving_a_wrapped_model_traces_it_again():
    adapter = get_spec("mnist_cnn").adapter(get_spec("mnist_cnn").build())
    adapter.to(dtype=torch.float64)
    scores, store = adapter.capture(torch.rand(1, 1, 28, 28, dtype=torch.float64), ["conv1"])
    assert scores.dtype == torch.float64 and store["conv1"].dtype == torch.float64


def test_an_untraceable_model_records_each_threads_own_calls():
    import threading

    class Twice(nn.Module):  # data-dependent control flow, and one module called twice
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1, bias=False)
            self.fc = nn.Linear(4, 2)
            with torch.no_grad():
                self.conv.weight.fill_(2.0)

        def forward(self, x):
            y = self.conv(self.conv(x)) if x.sum() > -1e9 else x
            return self.fc(y.flatten(1))

    adapter = wrap(Twice(), None, GREY_2x2)
    assert not adapter.graph.traced and adapter.graph.names == ["conv", "conv:2", "fc"]
    errors = []

    def worker(value: float) -> None:
        for _ in range(100):
            _, store = adapter.capture(torch.full((1, 1, 2, 2), value), ["conv", "conv:2"])
            if not (torch.all(store["conv"] == 2 * value) and torch.all(store["conv:2"] == 4 * value)):
                errors.append(value)

    threads = [threading.Thread(target=worker, args=(float(v),)) for v in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


class Counted(nn.Module):
    """conv -> relu -> fc, counting how often the fc runs."""

    def __init__(self, gated: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 4 * 4, 3)
        self.gated = gated
        self.fc_calls = 0
        self.fc.register_forward_pre_hook(lambda *_: setattr(self, "fc_calls", self.fc_calls + 1))

    def forward(self, x):
        y = self.conv(x)
        if self.gated and y.sum() > 1e9:  # data-dependent control flow: untraceable, recorded by hooks
            y = y * 0
        return self.fc(torch.relu(y).flatten(1))


@pytest.mark.parametrize("gated", [False, True])
def test_layer_activations_stop_the_forward_after_the_last_layer_asked(gated):
    from convscope.models import capture

    model = Counted(gated)
    adapter = wrap(model, None, {"name": "resize", "size": 4, "channels": 1})
    assert adapter.graph.traced is not gated
    x = torch.rand(1, 1, 4, 4)
    model.fc_calls = 0
    early = adapter.activations(x, ["conv"])
    assert model.fc_calls == 0 and list(early) == ["conv"]  # the fc never ran
    assert torch.equal(early["conv"], model.conv(x)) and not early["conv"].requires_grad
    assert capture._state.store is None and capture._state.stop_early is None  # the thread's state is restored
    logits, store = adapter.capture(x, ["conv"])  # and a full capture afterwards is whole
    assert model.fc_calls == 1 and torch.allclose(logits, model(x)) and list(store) == ["conv"]
    assert torch.equal(Inspector(adapter).activations(x[0], ["conv"])["conv"], early["conv"][0])
