"""Neural-network building blocks, as `torch.nn`: `Module` and its containers (module.py), the
layers, each beside its function in the module its topic names (linear, conv, pooling,
normalization, dropout, activation, loss), and `init`; `minigrad.nn.functional` (imported as F)
gathers the functions."""

from minigrad.nn import functional, init, parallel, utils
from minigrad.nn.activation import (
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from minigrad.nn.attention import MultiheadAttention
from minigrad.nn.conv import Conv2d, ConvTranspose2d
from minigrad.nn.dropout import Dropout, Dropout2d
from minigrad.nn.embedding import Embedding
from minigrad.nn.linear import Flatten, Linear
from minigrad.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from minigrad.nn.module import (
    Identity,
    IncompatibleKeys,
    Module,
    ModuleList,
    Parameter,
    Sequential,
)
from minigrad.nn.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    LayerNorm,
    LocalResponseNorm,
    SyncBatchNorm,
)
from minigrad.nn.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from minigrad.nn.transformer import TransformerEncoder, TransformerEncoderLayer
from minigrad.nn.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = [
    "ELU", "GELU", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "BCELoss",
    "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d",
    "CrossEntropyLoss", "Dropout", "Dropout2d", "Embedding", "Flatten", "GroupNorm", "Hardsigmoid",
    "Hardswish", "HuberLoss", "Identity", "IncompatibleKeys", "KLDivLoss", "L1Loss", "LayerNorm",
    "LeakyReLU", "Linear", "LocalResponseNorm", "LogSoftmax", "MSELoss", "MaxPool2d", "Mish",
    "Module", "ModuleList", "MultiheadAttention", "NLLLoss", "Parameter", "ReLU", "Sequential",
    "SiLU", "Sigmoid", "SmoothL1Loss", "Softmax", "Softplus", "SyncBatchNorm", "Tanh",
    "TransformerEncoder",
    "TransformerEncoderLayer", "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d",
    "functional", "init", "parallel", "utils",
]
