import threading

import pytest
import torch
from torch import nn

from convscope.errors import InputError, ModelError
from convscope.inspect import Inspector
from convscope.models import Layer, LayeredNet, get_spec, load_model, wrap


def fresh(name: str):
    """A registered model with random weights, wrapped."""
    spec = get_spec(name)
    return spec.adapter(spec.build())


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_one_forward_and_one_backward_give_everything(monkeypatch):
    model = fresh("mnist_cnn")
    forwards = []
    model.module.conv1.register_forward_pre_hook(lambda module, args: forwards.append(1))
    backwards = []
    real_grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: backwards.append(1) or real_grad(*a, **k))
    result = Inspector(model).inspect(torch.rand(28, 28))
    assert len(forwards) == 1 and len(backwards) == 1
    assert list(result.activations) == model.graph.names == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2", "softmax"]
    assert result.activations["conv2"].shape == (64, 11, 11) and result.activations["fc1"].shape == (128,)
    assert result.cam_layer == "relu2" and result.cam.shape == (28, 28) and result.saliency.shape == (28, 28)
    torch.testing.assert_close(result.activations["softmax"], result.probabilities)
    assert result.target == result.predicted == int(result.probabilities.argmax())


def test_target_class_and_layer_choice_change_the_map(packaged_cnn):
    inspector = Inspector(packaged_cnn.adapter)
    image = torch.zeros(28, 28)
    image[4:24, 13:16] = 1.0  # a vertical bar: a "1"
    own = inspector.inspect(image)
    other = inspector.inspect(image, target=7, cam_layer="conv1", method="gradcam++", layers=["fc2"])
    assert own.predicted == 1 and other.target == 7 and other.cam_layer == "conv1"
    assert list(other.activations) == ["fc2"]
    assert not torch.allclose(own.cam, other.cam)


def test_mlp_answers_without_a_cam():
    result = Inspector(fresh("mnist_mlp")).inspect(torch.rand(1, 28, 28))
    assert result.cam is None and result.cam_layer is None
    assert result.saliency.shape == (28, 28)
    assert result.activations["sigmoid1"].shape == (32,)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"method": "lime"}, ModelError, r"unknown method 'lime'; choose from gradcam, gradcam\+\+, hirescam, saliency"),
    ({"cam_layer": "fc1"}, ModelError, r"a CAM needs a layer with a spatial \(C, H, W\) output; 'fc1' gives \(128,\); "
                                   "layers a CAM can use: conv1, relu1, pool1, conv2, relu2, pool2"),
    ({"layers": ["conv9"]}, ModelError, "unknown layer"),
    ({"target": 10}, InputError, "target class must be in 0-9"),
])
def test_bad_options_are_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        Inspector(fresh("mnist_cnn")).inspect(torch.rand(28, 28), **kwargs)


def test_bad_images_are_clear_errors():
    inspector = Inspector(fresh("mnist_cnn"))
    with pytest.raises(InputError, match=r"cannot read an array of shape \(5, 7, 9\) as an image; give a path"):
        inspector.inspect(torch.rand(5, 7, 9))
    with pytest.raises(InputError, match="NaN"):
        inspector.inspect(torch.full((28, 28), float("nan")))


class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_a_model_that_does_not_run_on_its_input_is_a_clear_error():
    model = LayeredNet([Layer("flatten", nn.Flatten()), Layer("fc", nn.Linear(4, 2)), Layer("bad", Boom()),
                        Layer("softmax", nn.Softmax(dim=1))])
    with pytest.raises(ModelError, match=r"does not run on input of shape \(1, 2, 2\): RuntimeError: boom"):
        wrap(model, ["a", "b"], {"name": "resize", "size": 2, "channels": 1})
    assert all_hooks(model) == 0


def test_hooks_of_an_untraceable_model_are_installed_once_and_survive_a_forward_that_raises():
    class Moody(nn.Module):  # data-dependent control flow: torch.fx cannot trace it, so hooks record the taps
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            if float(x.detach().sum()) > 1e6:
                raise RuntimeError("boom")
            return self.fc(x.flatten(1))

    model = wrap(Moody(), ["a", "b"], {"name": "resize", "size": 2, "channels": 1})
    assert not model.graph.traced and model.graph.names == ["fc"]
    assert all_hooks(model.module) == 1  # one recording hook per leaf module, installed once
    wrap(model.module, ["a", "b"], {"name": "resize", "size": 2, "channels": 1})
    assert all_hooks(model.module) == 1  # wrapping again does not hook it twice
    inspector = Inspector(model)
    with pytest.raises(RuntimeError, match="boom"):
        inspector.inspect_prepared(torch.full((1, 2, 2), 1e7))  # prepared input is taken as it is
    assert inspector.inspect(torch.rand(1, 2, 2)).activations["fc"].shape == (2,)
    assert all_hooks(model.module) == 1
    expected = model.module(torch.rand(1, 1, 2, 2))  # outside an inspection the hooks change nothing
    assert expected.shape == (1, 2)


@pytest.mark.parametrize("replicas", [1, 3])
def test_concurrent_calls_match_serial_results(replicas):
    inspector = Inspector(load_model("mnist_cnn").adapter, replicas=replicas)
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(28, 28, generator=generator) for _ in range(32)]
    targets = [i % 10 for i in range(32)]
    methods = ["gradcam", "gradcam++", "hirescam"]
    serial = [inspector.inspect_prepared(images[i], target=targets[i], method=methods[i % 3])
              for i in range(len(images))]
    results, errors = {}, []

    def worker(offset: int) -> None:
        try:
            for round_ in range(3):
                for i in range(offset, len(images), 8):
                    results[(i, round_)] = inspector.inspect_prepared(images[i], target=targets[i],
                                                                      method=methods[i % 3])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 32 * 3
    for (i, _), result in results.items():
        expected = serial[i]
        assert result.target == expected.target
        torch.testing.assert_close(result.cam, expected.cam)
        torch.testing.assert_close(result.saliency, expected.saliency)
        for name, activation in expected.activations.items():
            torch.testing.assert_close(result.activations[name], activation)


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ranks = [t.flatten().argsort().argsort().double() for t in (a, b)]
    return float(torch.corrcoef(torch.stack(ranks))[0, 1])


def test_sanity_check_cam_depends_on_the_learned_weights(packaged_cnn):
    """Adebayo et al. 2018 (https://arxiv.org/abs/1810.03292), model-parameter randomisation: an explanation that
    barely changes when the weights are re-initialised is not explaining the model."""
    image = torch.zeros(28, 28)
    image[4:24, 13:16] = 1.0
    image[4:7, 8:20] = 1.0  # a "7"-ish hook on top of a bar
    trained = Inspector(packaged_cnn.adapter).inspect(image)
    torch.manual_seed(0)
    randomised = Inspector(fresh("mnist_cnn")).inspect(image, target=trained.target)
    assert spearman(trained.cam, randomised.cam) < 0.5
    # Pixels outside every receptive field have zero gradient in both; their tied ranks would inflate the score.
    covered = (trained.saliency > 0) | (randomised.saliency > 0)
    assert spearman(trained.saliency[covered], randomised.saliency[covered]) < 0.5


@pytest.mark.mnist
def test_default_maps_on_real_digits_are_never_blank_and_sit_on_the_ink(real_mnist, packaged_cnn):
    from convscope.data import load_mnist
    import torch.nn.functional as F
    test = load_mnist("test", real_mnist)
    inspector = Inspector(packaged_cnn.adapter)
    for method in ("gradcam", "gradcam++", "hirescam"):
        on_ink, area = [], []
        for image in test.images[:50]:
            result = inspector.inspect(image, method=method)
            assert float(result.cam.max()) == pytest.approx(1.0)  # never an all-zero map
            near_ink = F.max_pool2d((image > 64).float()[None, None], 7, stride=1, padding=3)[0, 0]
            on_ink.append(float((result.cam * near_ink).sum() / result.cam.sum()))
            area.append(float(near_ink.mean()))
        # The map's mass sits near the strokes far more than the strokes' share of the image would give.
        assert torch.tensor(on_ink).median() > torch.tensor(area).median() + 0.1, method


def test_a_nested_list_is_accepted_and_a_wrong_shape_is_named():
    inspector = Inspector(fresh("mnist_cnn"))
    assert inspector.inspect([[0.5 * (i == j) for i in range(28)] for j in range(28)]).probabilities.shape == (10,)
    with pytest.raises(InputError, match=r"cannot read an array of shape \(2, 3, 1, 4, 4\)"):
        inspector.inspect([[[[[0.0] * 4] * 4]] * 3] * 2)


def tiny_cam_net(conv_bias: float, head_weight: float):
    """input (1, 4, 4) -> conv 1x1 (weight 1) -> relu -> flatten -> linear to 2 classes (class 0's weights all
    `head_weight`, class 1's zero): small enough to work out its Grad-CAM by hand."""
    conv, head = nn.Conv2d(1, 1, 1), nn.Linear(16, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(conv_bias)
        head.weight.zero_()
        head.weight[0].fill_(head_weight)
        head.bias.copy_(torch.tensor([5.0, 0.0]))  # class 0 is predicted unless its weights speak against it
    model = LayeredNet([Layer("conv", conv), Layer("relu", nn.ReLU()), Layer("flatten", nn.Flatten()),
                        Layer("fc", head), Layer("softmax", nn.Softmax(dim=1))])
    return Inspector(wrap(model, ["a", "b"], {"name": "resize", "size": 4, "channels": 1}))


def test_a_blank_cam_says_why():
    image = torch.full((1, 4, 4), 0.5)
    # relu's input is 0.5 - 10 < 0 everywhere: nothing flows back to it, so the gradient at relu is zero
    dead = tiny_cam_net(conv_bias=-10.0, head_weight=1.0).inspect(image, cam_layer="conv")
    assert dead.predicted == 0 and float(dead.cam.max()) == 0 and dead.cam_blank == "zero-gradient"
    # the gradient is -1 at every position, the activation +0.5: the weighted sum is negative and ReLU cuts it
    against = tiny_cam_net(conv_bias=0.0, head_weight=-1.0).inspect(image, cam_layer="relu", target=0)
    assert float(against.cam.max()) == 0 and against.cam_blank == "no-positive-evidence"
    # the same net with evidence for the class: a map, and no excuse
    evidence = tiny_cam_net(conv_bias=0.0, head_weight=1.0).inspect(image, cam_layer="relu")
    assert float(evidence.cam.max()) == 1 and evidence.cam_blank is None
