"""Matrix multiplication with NumPy's rules: batched, broadcast, and 1-D operands."""

from __future__ import annotations

from typing import Any

from minigrad.autograd import Function
from minigrad.backends import kernels_for
from minigrad.tensor import Tensor


class Matmul(Function):
    """C = A @ B, so dA = dC @ B^T and dB = A^T @ dC over the last two dims.

    A 1-D operand is treated as a row (A) or column (B) and that dim is dropped from C, as
    NumPy does; backward restores it so the engine can sum broadcast batch dims away.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        ctx.matmul = kernels_for(ctx.xp).matmul
        return ctx.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        xp = ctx.xp
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b.ndim == 1:  # restore C's dropped column dim, then its dropped row dim
            grad = xp.expand_dims(grad, -1)
        if a.ndim == 1:
            grad = xp.expand_dims(grad, -2)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = ctx.matmul(grad, b2.swapaxes(-1, -2))
            grad_a = grad_a[..., 0, :] if a.ndim == 1 else grad_a
        if ctx.needs_input_grad[1]:
            grad_b = ctx.matmul(a2.swapaxes(-1, -2), grad)
            grad_b = grad_b[..., 0] if b.ndim == 1 else grad_b
        return grad_a, grad_b


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product; checks shapes first so a mismatch names both of them."""
    a_shape, b_shape = getattr(a, "shape", ()), getattr(b, "shape", ())
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                         f"{tuple(a_shape)} and {tuple(b_shape)}")
    inner_a = a_shape[-1]
    inner_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if inner_a != inner_b:
        raise ValueError(f"matmul: shapes {tuple(a_shape)} and {tuple(b_shape)} do not align: "
                         f"{inner_a} (last dim of the first) != {inner_b} (the second's rows)")
    return Matmul.apply(a, b)
