"""The heavy ops of neural networks: conv2d, max/avg pooling and linear.

Their forward and backward call the backend's kernels (`minigrad.backends`): the NumPy
reference, the Numba JIT or CuPy, picked by `kernels_for(ctx.xp)` from the arrays' device and
the active backend.
"""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.backends import kernels_for


class Conv2d(Function):
    """Cross-correlation (as PyTorch); d/dx is the transposed convolution, d/dw the correlation
    of the input with the output gradient, d/dbias the gradient summed over N, OH, OW."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        kernels = kernels_for(ctx.xp)
        ctx.kernels, ctx.geometry = kernels, (stride, padding, dilation, groups)
        ctx.save_for_backward(x, weight)
        out = kernels.conv2d_forward(x, weight, stride, padding, dilation, groups)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)  # `out` is fresh memory of our own
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        kernels, geometry = ctx.kernels, ctx.geometry
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        grad_x, grad_w = kernels.conv2d_backward(grad, x, weight, *geometry, needs_x, needs_w)
        grad_b = _bias_grad(kernels, grad) if needs_b else None
        return grad_x, grad_w, grad_b, None, None, None, None


def _bias_grad(kernels, grad):
    """grad summed over N, OH, OW, as ones (1, N*OH*OW) times its rows (N*OH*OW, K): a GEMM
    is several times faster than NumPy's column sum, which adds the rows one after another,
    in float32."""
    n, k, oh, ow = grad.shape
    rows = grad.transpose(0, 2, 3, 1).reshape(n * oh * ow, k)
    return kernels.matmul(kernels.xp.ones((1, n * oh * ow), grad.dtype), rows)[0]


class MaxPool2d(Function):
    """The gradient goes to each window's maximum (the first one, where values tie)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        kernels = kernels_for(ctx.xp)
        out, argmax = kernels.maxpool2d_forward(x, kernel, stride, padding)
        ctx.save_for_backward(argmax)
        ctx.kernels, ctx.geometry = kernels, (x.shape, kernel, stride, padding)
        return out

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved_tensors
        return ctx.kernels.maxpool2d_backward(grad, argmax, *ctx.geometry), None, None, None


class AvgPool2d(Function):
    """Each input pixel gets 1/(kH kW) of the gradient of every window it is in."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        kernels = kernels_for(ctx.xp)
        ctx.kernels, ctx.geometry = kernels, (x.shape, kernel, stride, padding)
        return kernels.avgpool2d_forward(x, kernel, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        return ctx.kernels.avgpool2d_backward(grad, *ctx.geometry), None, None, None


class Linear(Function):
    """y = x W^T + b over the last dim of x; one node instead of a transpose, matmul and add."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        out = kernels_for(ctx.xp).matmul(x, weight.T)
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        matmul = kernels_for(ctx.xp).matmul
        needs_x, needs_w, needs_b = ctx.needs_input_grad
        rows = grad.reshape(-1, grad.shape[-1])
        grad_x = matmul(grad, weight) if needs_x else None
        grad_w = matmul(rows.T, x.reshape(-1, x.shape[-1])) if needs_w else None
        grad_b = rows.sum(axis=0) if needs_b else None
        return grad_x, grad_w, grad_b
