"""The MNIST models. Each builder returns a fresh, randomly initialised :class:`LayeredNet`."""

from __future__ import annotations

from torch import nn

from .net import Layer, LayeredNet

# MNIST pixel statistics over the training set, used to normalise inputs inside the network.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def mnist_cnn() -> LayeredNet:
    """Conv(32, 3x3)-ReLU-MaxPool(2)-Conv(64, 3x3)-ReLU-MaxPool(2)-Flatten-Dense(128)-ReLU-Dense(10)-Softmax.

    (1, 28, 28) -> conv1 (32, 26, 26) -> pool1 (32, 13, 13) -> conv2 (64, 11, 11) -> pool2 (64, 5, 5)
    -> flatten (1600) -> fc1 (128) -> fc2 (10): 225,034 parameters.
    """
    return LayeredNet(
        [
            Layer("conv1", nn.Conv2d(1, 32, 3)),
            Layer("relu1", nn.ReLU()),
            Layer("pool1", nn.MaxPool2d(2)),
            Layer("conv2", nn.Conv2d(32, 64, 3)),
            Layer("relu2", nn.ReLU()),
            Layer("pool2", nn.MaxPool2d(2)),
            Layer("flatten", nn.Flatten()),
            Layer("fc1", nn.Linear(64 * 5 * 5, 128)),
            Layer("relu3", nn.ReLU()),
            Layer("fc2", nn.Linear(128, 10)),
            Layer("softmax", nn.Softmax(dim=1)),
        ],
        mean=MNIST_MEAN,
        std=MNIST_STD,
    )


def mnist_mlp() -> LayeredNet:
    """784-32-32-10 with sigmoid hidden layers and a softmax output (the earlier model server's network)."""
    return LayeredNet(
        [
            Layer("flatten", nn.Flatten()),
            Layer("fc1", nn.Linear(784, 32)),
            Layer("sigmoid1", nn.Sigmoid()),
            Layer("fc2", nn.Linear(32, 32)),
            Layer("sigmoid2", nn.Sigmoid()),
            Layer("fc3", nn.Linear(32, 10)),
            Layer("softmax", nn.Softmax(dim=1)),
        ],
        mean=MNIST_MEAN,
        std=MNIST_STD,
    )
