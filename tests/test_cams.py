"""CAMs and saliency checked against values worked out by hand on a one-conv net with fixed weights."""

import pytest
import torch
from torch import nn

from convscope.inspect import CAM_METHODS, Inspector
from convscope.models import Layer, LayeredNet, wrap

# Input x (1, 3, 3):          Conv kernels (2 channels, 2x2, no bias):
#   1 2 0                       k0 = [[1, 0],      k1 = [[0, 1],
#   0 1 3                             [0, 1]]            [-1, 0]]
#   2 0 1
X = torch.tensor([[[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 0.0, 1.0]]])
# A0[i, j] = x[i, j] + x[i+1, j+1]:  [[2, 5], [0, 2]]
# A1[i, j] = x[i, j+1] - x[i+1, j]:  [[2, -1], [-1, 3]]
A0 = torch.tensor([[2.0, 5.0], [0.0, 2.0]])
A1 = torch.tensor([[2.0, -1.0], [-1.0, 3.0]])
# Linear layer on flatten(A) = [A0 row-major, A1 row-major]; class 0's weights are the gradients dy0/dA:
G0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # over A0
G1 = torch.tensor([[-1.0, 2.0], [0.0, 1.0]])  # over A1


def one_conv_net() -> LayeredNet:
    conv = nn.Conv2d(1, 2, 2, bias=False)
    conv.weight.data = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[0.0, 1.0], [-1.0, 0.0]]]])
    linear = nn.Linear(8, 2, bias=False)
    linear.weight.data = torch.stack([torch.cat([G0.flatten(), G1.flatten()]), torch.zeros(8)])
    return LayeredNet([Layer("conv", conv), Layer("flatten", nn.Flatten()), Layer("fc", linear),
                       Layer("softmax", nn.Softmax(dim=1))])


def inspect(method: str):
    model = wrap(one_conv_net(), ["a", "b"], {"name": "resize", "size": 3, "channels": 1})
    return Inspector(model).inspect_prepared(X, target=0, method=method, cam_layer="conv")


def test_activations_and_logits_by_hand():
    result = inspect("gradcam")
    torch.testing.assert_close(result.activations["conv"], torch.stack([A0, A1]))
    # y0 = sum(G0 * A0) + sum(G1 * A1) = (2 + 2) + (-2 - 2 + 0 + 3) = 3; y1 = 0
    torch.testing.assert_close(result.logits, torch.tensor([3.0, 0.0]))
    assert result.predicted == 0  # softmax(3, 0) = (sigmoid(3), sigmoid(-3))
    torch.testing.assert_close(result.probabilities[0], torch.sigmoid(torch.tensor(3.0)))


def test_gradcam_by_hand():
    # weights: w0 = mean(G0) = 0.5, w1 = mean(G1) = 0.5
    # 0.5 * A0 + 0.5 * A1 = [[2, 2], [-0.5, 2.5]] -> ReLU -> [[2, 2], [0, 2.5]]
    torch.testing.assert_close(inspect("gradcam").cam_raw, torch.tensor([[2.0, 2.0], [0.0, 2.5]]))


def test_hirescam_by_hand():
    # G0 * A0 + G1 * A1 = [[2, 0], [0, 2]] + [[-2, -2], [0, 3]] = [[0, -2], [0, 5]] -> ReLU -> [[0, 0], [0, 5]]
    torch.testing.assert_close(inspect("hirescam").cam_raw, torch.tensor([[0.0, 0.0], [0.0, 5.0]]))


def test_gradcam_plus_plus_by_hand():
    # alpha = G^2 / (2 G^2 + sum(A_k) G^3), 0 where G = 0; w_k = sum alpha * ReLU(G)
    # Channel 0: sum(A0) = 9. Where G0 = 1: alpha = 1 / (2 + 9) = 1/11. w0 = 1/11 + 1/11 = 2/11.
    # Channel 1: sum(A1) = 3. G1 = -1: ReLU(-1) = 0, no contribution; G1 = 2: alpha = 4 / (8 + 3 * 8) = 1/8,
    #   contributes 1/8 * 2 = 1/4; G1 = 1: alpha = 1 / (2 + 3) = 1/5, contributes 1/5. w1 = 9/20.
    w0, w1 = 2 / 11, 9 / 20
    expected = torch.tensor([[4 / 11 + 9 / 10, 10 / 11 - 9 / 20], [0.0, 4 / 11 + 27 / 20]])  # [1, 0] < 0 -> 0
    torch.testing.assert_close(expected, torch.relu(w0 * A0 + w1 * A1))
    torch.testing.assert_close(inspect("gradcam++").cam_raw, expected)


def test_cam_is_upsampled_to_the_input_and_scaled_to_one():
    result = inspect("hirescam")
    assert result.cam.shape == (3, 3)
    assert float(result.cam.max()) == pytest.approx(1.0) and float(result.cam.min()) >= 0
    # The only positive cell is the bottom-right one, so the bottom-right input pixel is the hottest.
    assert int(result.cam.argmax()) == 8


def test_saliency_by_hand():
    # y0 as a function of x: sum_ij G0[i,j] (x[i,j] + x[i+1,j+1]) + G1[i,j] (x[i,j+1] - x[i+1,j])
    # dy0/dx[r, c] collects every term touching x[r, c]:
    #   x00: G0[0,0] = 1                      x01: G1[0,0] = -1           x02: G1[0,1] = 2
    #   x10: -G1[0,0] = 1                     x11: G0[1,1] + G0[0,0] + G1[1,0] - G1[0,1] = 1 + 1 + 0 - 2 = 0
    #   x12: G0[0,1] + G1[1,1] = 1            x20: -G1[1,0] = 0
    #   x21: G0[1,0] - G1[1,1] = -1           x22: G0[1,1] = 1
    gradient = torch.tensor([[1.0, -1.0, 2.0], [1.0, 0.0, 1.0], [0.0, -1.0, 1.0]])
    torch.testing.assert_close(inspect("gradcam").saliency, gradient.abs() / 2)


def test_every_method_is_registered_with_its_paper():
    assert set(CAM_METHODS) == {"gradcam", "gradcam++", "hirescam"}
    assert all(m.paper.startswith("https://arxiv.org/") for m in CAM_METHODS.values())
