"""Stateless neural-network functions, as `torch.nn.functional` (imported as F).

Each function lives beside its layer, in the module its topic names (`conv`, `pooling`, `loss`,
...); this module gathers them under PyTorch's names. Arguments are checked there, before any
kernel runs, so a mistake names the function and the shapes involved.
"""

from minigrad.nn.conv import conv2d
from minigrad.nn.dropout import dropout
from minigrad.nn.linear import linear
from minigrad.nn.loss import cross_entropy, mse_loss, nll_loss
from minigrad.nn.normalization import batch_norm, layer_norm
from minigrad.nn.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from minigrad.ops import gelu, log_softmax, pad, relu, sigmoid, silu, softmax, tanh

__all__ = [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "conv2d", "cross_entropy", "dropout",
    "gelu", "layer_norm", "linear", "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "pad",
    "relu", "sigmoid", "silu", "softmax", "tanh",
]
