"""The pooling ops that the backends' fixed-window kernels do not cover (see nn/pooling.py).

`MaxPoolAt` makes maxima found beforehand differentiable, given their input positions:
dilated max pooling, adaptive max pooling and `return_indices` find both outside the graph.
`AdaptiveAvgPool2d` averages windows of any size as products with constant averaging
matrices.
"""

from __future__ import annotations

import math

from minigrad.autograd import Function
from minigrad.backends import kernels_for

# The averaging matrices of adaptive average pooling are applied in one GEMM, as their
# Kronecker product, while that product has at most this many elements; above it the rows and
# columns are averaged one after the other (fewer flops for large images).
KRON_LIMIT = 1 << 16


class MaxPoolAt(Function):
    """Each window's maximum, `values`, found beforehand with its position `index` in the
    (H, W) plane of x (int64, (N, C, OH, OW)): the gradient goes to that element, added up
    where windows share their maximum."""

    @staticmethod
    def forward(ctx, x, index, values):
        ctx.in_shape = x.shape
        ctx.save_for_backward(index)
        return values

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        xp = ctx.xp
        n, c, h, w = ctx.in_shape
        # one flat position per output: plane number * plane size + position in the plane
        planes = index.reshape(n * c, math.prod(index.shape[2:]))
        flat = (planes + xp.arange(n * c)[:, None] * (h * w)).ravel()
        full = xp.zeros(n * c * h * w, dtype=grad.dtype)
        kernels_for(xp).scatter_add(full, flat, grad.ravel())
        return full.reshape(ctx.in_shape), None, None


class AdaptiveAvgPool2d(Function):
    """out = rows @ x @ cols^T for each image and channel, `rows` (OH, H) and `cols` (OW, W)
    averaging each output's window of rows and of columns; linear, so the gradient is
    rows^T @ grad @ cols."""

    @staticmethod
    def forward(ctx, x, rows, cols):
        xp = ctx.xp
        matmul = ctx.matmul = kernels_for(xp).matmul
        n, c, h, w = ctx.in_shape = x.shape
        oh, ow = rows.shape[0], cols.shape[0]
        if rows.size * cols.size <= KRON_LIMIT:
            ctx.both = xp.kron(rows, cols)  # (OH*OW, H*W): both averages in one product
            return matmul(x.reshape(n * c, h * w), ctx.both.T).reshape(n, c, oh, ow)
        ctx.both = None
        ctx.save_for_backward(rows, cols)
        across = matmul(x.reshape(n * c * h, w), cols.T).reshape(n * c, h, ow)
        down = matmul(across.transpose(0, 2, 1).reshape(n * c * ow, h), rows.T)
        return down.reshape(n, c, ow, oh).transpose(0, 1, 3, 2)

    @staticmethod
    def backward(ctx, grad):
        n, c, h, w = ctx.in_shape
        oh, ow = grad.shape[2:]
        if ctx.both is not None:
            return ctx.matmul(grad.reshape(n * c, oh * ow), ctx.both).reshape(ctx.in_shape), \
                None, None
        rows, cols = ctx.saved_tensors
        across = ctx.matmul(grad.reshape(n * c * oh, ow), cols).reshape(n * c, oh, w)
        down = ctx.matmul(across.transpose(0, 2, 1).reshape(n * c * w, oh), rows)
        return down.reshape(n, c, w, h).transpose(0, 1, 3, 2), None, None
