"""Normalisation ops: batch norm, layer norm and group norm, each one Function whose forward
and backward are backend kernels (the reference's math is in backends/numpy_backend.py); and
local response norm, in array code.

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
    in eval they are the running statistics, constants, and d/dx is a per-channel scale.
    SyncBatchNorm passes the statistics of every rank's batch, and `reduce`, which totals the
    backward's per-channel sums over the ranks (see the backends' batch_norm_backward)."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, training=False, eps=1e-5, reduce=None):
        ctx.kernels, ctx.training, ctx.eps, ctx.reduce = kernels_for(ctx.xp), training, eps, reduce
        # copies: running statistics may be updated in place before this backward runs
        ctx.save_for_backward(x, weight, mean.astype(np.float64), var.astype(np.float64))
        return ctx.kernels.batch_norm_forward(x, weight, bias, mean, var, eps)

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, var = ctx.saved_tensors
        grads = ctx.kernels.batch_norm_backward(grad, x, weight, mean, var, ctx.eps,
                                                ctx.training, ctx.needs_input_grad[:3],
                                                ctx.reduce)
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


class GroupNorm(Function):
    """Each sample's groups of C / num_groups channels normalised over their channels and
    other dims (biased variance), then a per-channel weight and bias; d x goes through the
    per-group statistics. Backend kernels, like layer norm's."""

    @staticmethod
    def forward(ctx, x, weight, bias, num_groups=1, eps=1e-5):
        ctx.kernels, ctx.num_groups = kernels_for(ctx.xp), num_groups
        out, mean, invstd = ctx.kernels.group_norm_forward(x, weight, bias, num_groups, eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        return out

    @staticmethod
    def backward(ctx, grad):
        return ctx.kernels.group_norm_backward(grad, *ctx.saved_tensors, ctx.num_groups,
                                               ctx.needs_input_grad[:3])


class LocalResponseNorm(Function):
    """x / (k + alpha/size * sum of x^2 over a window of `size` channels)^beta, the window
    around channel c being [c - size//2, c + (size-1)//2] (zero-padded), as PyTorch.

    With d = k + alpha/size * window_sum(x^2), out = x d^-beta and
    d out_j / d x_i = [i == j] d_j^-beta - 2 beta alpha/size x_i x_j d_j^(-beta-1) for every
    j whose window holds i: the transposed window sum, whose window is mirrored."""

    @staticmethod
    def forward(ctx, x, size=1, alpha=1e-4, beta=0.75, k=1.0):
        div = _window_sum(ctx.xp, x * x, size // 2, (size - 1) // 2)
        div *= alpha / size
        div += k
        scale = div ** -beta  # d^-beta
        ctx.save_for_backward(x, div, scale)
        ctx.size, ctx.alpha, ctx.beta = size, alpha, beta
        return x * scale

    @staticmethod
    def backward(ctx, grad):
        x, div, scale = ctx.saved_tensors
        size = ctx.size
        # grad_j * x_j * d_j^(-beta-1), summed over the (mirrored) windows holding each i
        through_div = grad * x
        through_div *= scale
        through_div /= div
        summed = _window_sum(ctx.xp, through_div, (size - 1) // 2, size // 2)
        summed *= x
        summed *= -2 * ctx.beta * ctx.alpha / size
        summed += grad * scale
        return summed


def _window_sum(xp: Any, a: Any, before: int, after: int) -> Any:
    """out[:, c] = sum of a[:, c - before : c + after + 1] along dim 1, zero outside: a
    window's sum as `before + after + 1` shifted slices of a zero-padded copy (a few adds of
    the whole array; the window is small)."""
    channels = a.shape[1]
    # a window never reaches further than the channels go: the rest of it is zeros
    before, after = min(before, max(channels - 1, 0)), min(after, max(channels - 1, 0))
    padded = xp.zeros((a.shape[0], channels + before + after, *a.shape[2:]), dtype=a.dtype)
    padded[:, before:before + channels] = a
    out = padded[:, :channels].copy()
    for shift in range(1, before + after + 1):
        out += padded[:, shift:shift + channels]
    return out
