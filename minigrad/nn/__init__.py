"""Neural-network building blocks, as `torch.nn`: `Module` and its containers, the layers, and
`init`; `minigrad.nn.functional` (imported as F) holds the stateless functions they call."""

from minigrad.nn import functional, init
from minigrad.nn.layers import (
    GELU,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    LayerNorm,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from minigrad.nn.module import (
    Identity,
    IncompatibleKeys,
    Module,
    ModuleList,
    Parameter,
    Sequential,
)

__all__ = [
    "GELU", "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout",
    "Flatten", "Identity", "IncompatibleKeys", "LayerNorm", "Linear", "LogSoftmax", "MaxPool2d",
    "Module", "ModuleList", "Parameter", "ReLU", "Sequential", "SiLU", "Sigmoid", "Softmax",
    "Tanh", "functional", "init",
]
