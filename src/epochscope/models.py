"""Example models (PyTorch): the classic MNIST CNN and the Iris MLP.

Module names are part of the API: record ``"hidden"`` of the CNN or ``"l1".."l4"`` of the MLP.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

from ._optional import require

torch = require("torch", extra="torch", purpose="the example models")
nn = torch.nn

__all__ = ["mnist_cnn", "iris_mlp", "ACTIVATIONS"]

# Keras' 'same' padding for a 2x2 kernel pads one side only; torch does that too, and warns
# that it copies the input to do so. The copy is the price of matching the classic model.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel", category=UserWarning)

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


def mnist_cnn(side: int = 28, n_classes: int = 10, channels: int = 1) -> nn.Sequential:
    """The classic Keras MNIST CNN, layer for layer, with the same names.

    Two blocks of two 2x2 'same' convolutions (32 filters, He-normal), ReLU, 2x2 max-pool
    and 20% dropout; then ``flat1``, ``hidden`` (Linear 512), ``acti3`` (ReLU) and ``end``
    (Linear ``n_classes``; the softmax is in the loss). ``side`` is the input's height and
    width (28 for MNIST, 8 for scikit-learn's digits).

    >>> mnist_cnn()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    if side < 4:
        raise ValueError(f"side must be at least 4 (two 2x2 poolings), got {side}")

    def conv(c_in: int) -> nn.Conv2d:
        layer = nn.Conv2d(c_in, 32, kernel_size=2, padding="same")
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
        return layer

    flat = 32 * (side // 4) ** 2
    return nn.Sequential(OrderedDict([
        ("conv2D_1", conv(channels)), ("conv2D_2", conv(32)), ("acti1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)), ("drop1", nn.Dropout(0.2)),
        ("conv2D_3", conv(32)), ("conv2D_4", conv(32)), ("acti2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)), ("drop2", nn.Dropout(0.2)),
        ("flat1", nn.Flatten()), ("hidden", nn.Linear(flat, 512)), ("acti3", nn.ReLU()),
        ("end", nn.Linear(512, n_classes)),
    ]))


def iris_mlp(activation: str = "sigmoid", sizes: tuple[int, ...] = (4, 5, 5, 5, 3)) -> nn.Sequential:
    """The 4-5-5-5-3 Iris MLP with layers ``l1``..``l4`` and activations ``act1``..``act3``.

    Sigmoid trains reliably at this width; ReLU units often die.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output size, got {sizes}")
    layers: list[tuple[str, nn.Module]] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers.append((f"l{i}", nn.Linear(n_in, n_out)))
        if i < len(sizes) - 1:
            layers.append((f"act{i}", ACTIVATIONS[activation]()))
    return nn.Sequential(OrderedDict(layers))
