"""Stateless neural-network functions, as `torch.nn.functional` (imported as F).

Each function lives beside its layer, in the module its topic names (`conv`, `pooling`, `loss`,
...); this module gathers them under PyTorch's names. Arguments are checked there, before any
kernel runs, so a mistake names the function and the shapes involved.
"""

from minigrad.nn.activation import (
    elu,
    hardsigmoid,
    hardswish,
    leaky_relu,
    mish,
    relu,
    silu,
    softplus,
)
from minigrad.nn.attention import multi_head_attention_forward, scaled_dot_product_attention
from minigrad.nn.conv import conv2d, conv_transpose2d
from minigrad.nn.dropout import dropout, dropout2d
from minigrad.nn.embedding import embedding
from minigrad.nn.linear import linear
from minigrad.nn.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from minigrad.nn.normalization import batch_norm, group_norm, layer_norm, local_response_norm
from minigrad.nn.pooling import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d
from minigrad.nn.upsampling import interpolate
from minigrad.ops import gelu, log_softmax, pad, sigmoid, softmax, tanh

__all__ = [
    "adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "batch_norm",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "conv2d", "conv_transpose2d",
    "cross_entropy", "dropout", "dropout2d", "elu", "embedding", "gelu", "group_norm",
    "hardsigmoid", "hardswish", "huber_loss", "interpolate", "kl_div", "l1_loss", "layer_norm",
    "leaky_relu", "linear", "local_response_norm", "log_softmax", "max_pool2d", "mish", "mse_loss",
    "multi_head_attention_forward", "nll_loss", "pad", "relu", "scaled_dot_product_attention",
    "sigmoid", "silu", "smooth_l1_loss", "softmax", "softplus", "tanh",
]
