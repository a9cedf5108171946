"""Neural-network building blocks, as `torch.nn`: `Module` and its containers (module.py), the
layers, each beside its function in the module its topic names (linear, conv, pooling,
normalization, dropout, activation, loss), and `init`; `minigrad.nn.functional` (imported as F)
gathers the functions."""

from minigrad.nn import functional, init
from minigrad.nn.activation import GELU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from minigrad.nn.conv import Conv2d
from minigrad.nn.dropout import Dropout
from minigrad.nn.linear import Flatten, Linear
from minigrad.nn.module import (
    Identity,
    IncompatibleKeys,
    Module,
    ModuleList,
    Parameter,
    Sequential,
)
from minigrad.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from minigrad.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "GELU", "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout",
    "Flatten", "Identity", "IncompatibleKeys", "LayerNorm", "Linear", "LogSoftmax", "MaxPool2d",
    "Module", "ModuleList", "Parameter", "ReLU", "Sequential", "SiLU", "Sigmoid", "Softmax",
    "Tanh", "functional", "init",
]
