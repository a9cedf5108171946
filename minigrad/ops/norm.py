"""Normalisation ops: batch norm and layer norm, each one Function whose forward and backward
are backend kernels (the reference's math is in backends/numpy_backend.py).

Written as chains of small ops they would keep a dozen full-size intermediates alive for
backward and walk the data a dozen times; as one Function each saves only its input and the
per-channel or per-sample statistics (as PyTorch), recomputes xhat in backward and
differentiates through the statistics in closed form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.autograd import Function, array_module
from minigrad.backends import kernels_for


def batch_statistics(x: Any) -> tuple[Any, Any]:
    """The per-channel (dim 1) mean and biased variance of a Tensor's batch: float64 arrays,
    outside any graph (BatchNorm differentiates through them itself)."""
    return kernels_for(array_module([x.array])).batch_norm_stats(x.array)


class BatchNorm(Function):
    """(x - mean) / sqrt(var + eps) * weight + bias per channel (dim 1). In training, mean and
    var are x's own statistics (`batch_statistics`), so the gradient flows through them too;
    in eval they are the running statistics, constants, and d/dx is a per-channel scale."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, training=False, eps=1e-5):
        ctx.kernels, ctx.training, ctx.eps = kernels_for(ctx.xp), training, eps
        # copies: running statistics may be updated in place before this backward runs
        ctx.save_for_backward(x, weight, mean.astype(np.float64), var.astype(np.float64))
        return ctx.kernels.batch_norm_forward(x, weight, bias, mean, var, eps)

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, var = ctx.saved_tensors
        grads = ctx.kernels.batch_norm_backward(grad, x, weight, mean, var, ctx.eps,
                                                ctx.training, ctx.needs_input_grad[:3])
        return (*grads, None, None)


class LayerNorm(Function):
    """Each sample normalised over its last `ndim` dims (biased variance), then an elementwise
    weight and bias of those dims' shape; d/dx goes through the per-sample statistics."""

    @staticmethod
    def forward(ctx, x, weight, bias, ndim=1, eps=1e-5):
        ctx.kernels, ctx.ndim = kernels_for(ctx.xp), ndim
        out, mean, invstd = ctx.kernels.layer_norm_forward(x, weight, bias, ndim, eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        return out

    @staticmethod
    def backward(ctx, grad):
        return ctx.kernels.layer_norm_backward(grad, *ctx.saved_tensors, ctx.ndim,
                                               ctx.needs_input_grad)
