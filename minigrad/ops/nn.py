"""The heavy ops of neural networks: conv2d and its transpose, max/avg pooling, resampling
(nearest and bilinear interpolation) and linear.

Their forward and backward call the backend's kernels (`minigrad.backends`): the NumPy
reference, the Numba JIT or CuPy, picked by `kernels_for(ctx.xp)` from the arrays' device and
the active backend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from minigrad.autograd import Function
from minigrad.backends import kernels_for
from minigrad.backends.geometry import output_hw


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


class ConvTranspose2d(Function):
    """conv2d's adjoint in its input (the forward is conv2d's input gradient, with weight
    (in, out/groups, kH, kW) in the place of conv2d's (K, C/groups, kH, kW)); so d/dx is conv2d
    itself, and d/dw conv2d's weight gradient with x as the output gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, dilation, groups):
        kernels = kernels_for(ctx.xp)
        n, _, h, w = x.shape
        kernel = weight.shape[2:]
        out_hw = tuple((x.shape[2 + d] - 1) * stride[d] - 2 * padding[d]
                       + dilation[d] * (kernel[d] - 1) + output_padding[d] + 1 for d in range(2))
        # A conv2d over out_hw has (h, w) outputs, unless output_padding >= stride (allowed
        # where it is < dilation): then its last rows or columns see only padding, and x gets
        # zero rows or columns there to match.
        conv_hw = output_hw(out_hw, kernel, stride, padding, dilation)
        if conv_hw != (h, w):
            x = ctx.xp.pad(x, ((0, 0), (0, 0), (0, conv_hw[0] - h), (0, conv_hw[1] - w)))
        x = kernels.channels_last(x)  # once, for the forward and the weight gradient
        ctx.kernels, ctx.geometry, ctx.hw = kernels, (stride, padding, dilation, groups), (h, w)
        ctx.save_for_backward(x, weight)
        out = kernels.conv2d_backward_input(x, weight, (n, weight.shape[1] * groups, *out_hw),
                                            stride, padding, dilation, groups)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)  # `out` is fresh memory of our own
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        kernels, geometry = ctx.kernels, ctx.geometry
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if needs_x or needs_w:
            grad = kernels.channels_last(grad)  # once, for both gradients
        if needs_x:
            h, w = ctx.hw
            grad_x = kernels.conv2d_forward(grad, weight, *geometry)[:, :, :h, :w]
        if needs_w:
            grad_w = kernels.conv2d_backward_weight(x, grad, weight.shape, *geometry)
        if needs_b:
            grad_b = _bias_grad(kernels, grad)
        return grad_x, grad_w, grad_b, None, None, None, None, None


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


class Taps(NamedTuple):
    """How one axis of an image is resampled: output i reads input index0[i] with weight0[i]
    plus input index1[i] with weight1[i] (linear interpolation), or input index0[i] alone
    (nearest: weights None). `size` is the input's length; `identity` marks an axis that is
    copied as it is. `grad_index`, where given, replaces index0 in the backward: PyTorch's
    nearest backward may pick other sources than its forward, by a different rounding."""

    size: int
    index0: Any
    weight0: Any = None
    index1: Any = None
    weight1: Any = None
    identity: bool = False
    grad_index: Any = None

    def for_backward(self) -> Taps:
        return self if self.grad_index is None else self._replace(index0=self.grad_index)

    def matrix(self, xp: Any, dtype: Any) -> Any:
        """The (out, in) interpolation matrix: one 1 per row (nearest) or two weights."""
        out = xp.zeros((len(self.index0), self.size), dtype)
        rows = xp.arange(len(self.index0))
        if self.weight0 is None:
            out[rows, xp.asarray(self.index0)] = 1
            return out
        out[rows, xp.asarray(self.index0)] = xp.asarray(self.weight0)
        out[rows, xp.asarray(self.index1)] += xp.asarray(self.weight1)  # index1 may = index0
        return out


class Resample2d(Function):
    """Separable resampling of (N, C, H, W): each image becomes A_h x A_w^T, A_h and A_w the
    (out, in) interpolation matrices of `Taps`, so the gradient is A_h^T grad A_w: every input
    pixel gets the output gradients it was read into, times the weights it was read with.

    Finite arrays go through the matrices as two GEMMs (their zeros add nothing); where an
    array holds inf or NaN they would spread it over whole rows, so it is gathered (and
    scattered back) tap by tap instead, PyTorch's arithmetic: w0 * x[i0] + w1 * x[i1] along
    W, then the same along H."""

    @staticmethod
    def forward(ctx, x, rows: Taps, cols: Taps):
        xp = ctx.xp
        ctx.kernels, ctx.taps = kernels_for(xp), (rows, cols)
        if rows.identity and cols.identity:
            return x.copy()
        if rows.weight0 is not None and _finite(xp, x):
            return _through_matrices(ctx.kernels, x, cols.matrix(xp, x.dtype).T,
                                     rows.matrix(xp, x.dtype), cols, rows)
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, as in PyTorch
            return _gather(xp, _gather(xp, x, cols, 3), rows, 2)

    @staticmethod
    def backward(ctx, grad):
        xp, kernels = ctx.xp, ctx.kernels
        rows, cols = (taps.for_backward() for taps in ctx.taps)
        if rows.identity and cols.identity:
            return grad
        if _finite(xp, grad):
            return _through_matrices(kernels, grad, cols.matrix(xp, grad.dtype),
                                     rows.matrix(xp, grad.dtype).T, cols, rows)
        with np.errstate(invalid="ignore", over="ignore"):
            return _scatter(kernels, _scatter(kernels, grad, cols, 3), rows, 2)


def _finite(xp: Any, a: Any) -> bool:
    """Whether `a` holds no inf or NaN, by one sum (which could only overflow to inf for
    values near the dtype's limit: that takes the exact, slower way, and is still right)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(xp.isfinite(a.sum()))


def _through_matrices(kernels: Any, a: Any, along_w: Any, along_h: Any, cols: Taps,
                      rows: Taps) -> Any:
    """a @ along_w over W (one GEMM over all rows of the batch), then along_h @ that over H
    (a GEMM per image); an identity axis is skipped."""
    n, c, h, w = a.shape
    if not cols.identity:
        a = kernels.matmul(a.reshape(n * c * h, w), along_w).reshape(n, c, h, -1)
    if not rows.identity:
        a = kernels.matmul(along_h, a)
    return a


def _along(taps_vector: Any, axis: int) -> Any:
    """A per-tap vector shaped to broadcast along `axis` of an (N, C, H, W) array."""
    return taps_vector.reshape((-1,) + (1,) * (3 - axis))


def _gather(xp: Any, a: Any, taps: Taps, axis: int) -> Any:
    if taps.identity:
        return a
    out = xp.take(a, xp.asarray(taps.index0), axis=axis)
    if taps.weight0 is None:
        return out
    out *= _along(xp.asarray(taps.weight0), axis)
    out += xp.take(a, xp.asarray(taps.index1), axis=axis) * _along(xp.asarray(taps.weight1),
                                                                    axis)
    return out


def _scatter(kernels: Any, grad: Any, taps: Taps, axis: int) -> Any:
    """The adjoint of `_gather`: each output's gradient added back to the input it read."""
    if taps.identity:
        return grad
    xp = kernels.xp
    shape = list(grad.shape)
    shape[axis] = taps.size
    out = xp.zeros(shape, grad.dtype)
    where = (slice(None),) * axis
    if taps.weight0 is None:
        kernels.scatter_add(out, (*where, xp.asarray(taps.index0)), grad)
        return out
    for index, weight in ((taps.index0, taps.weight0), (taps.index1, taps.weight1)):
        kernels.scatter_add(out, (*where, xp.asarray(index)),
                            grad * _along(xp.asarray(weight), axis))
    return out


class Linear(Function):
    """y = x W^T + b over the last dim of x; one node instead of a transpose, matmul and add.
    Leading dims are flattened into rows: one GEMM, where a batched matmul would loop."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        out = kernels_for(ctx.xp).matmul(x.reshape(-1, x.shape[-1]), weight.T)
        if bias is not None:
            out += bias
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        matmul = kernels_for(ctx.xp).matmul
        needs_x, needs_w, needs_b = ctx.needs_input_grad
        rows = grad.reshape(-1, grad.shape[-1])
        grad_x = matmul(rows, weight).reshape(x.shape) if needs_x else None
        grad_w = matmul(rows.T, x.reshape(-1, x.shape[-1])) if needs_w else None
        grad_b = rows.sum(axis=0) if needs_b else None
        return grad_x, grad_w, grad_b
