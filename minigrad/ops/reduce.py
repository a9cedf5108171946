"""Reductions: sum, mean, var, amax/amin, logsumexp, softmax and log_softmax.

A reduction's backward spreads the output gradient back over the reduced dimensions:
`_spread` re-inserts them (when keepdim=False removed them) and broadcasts.
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple
from typing import Any

import numpy as np

from minigrad.autograd import Function, array_module, unscalar
from minigrad.ops.shape import gather, normalize_dim, normalize_dims
from minigrad.tensor import Tensor

MaxMin = namedtuple("MaxMin", ["values", "indices"])  # what max/min return along a dim


def reduced_dims(op: str, dim: Any, shape: tuple[int, ...],
                 empty_is_all: bool = True) -> tuple[int, ...] | None:
    """A reduction's `dim` -> the sorted non-negative dims to reduce, or None for all of them.

    None reduces every dim, and so does () where PyTorch's op does (sum, mean, var, amax, ...;
    not all/any, which reduce nothing over ()). A 0-d tensor takes dim 0 or -1 and reduces its
    one element (None, as NumPy has no axis 0 there).
    """
    if dim is None:
        return None
    dims = normalize_dims(op, dim, shape)
    if not shape or (empty_is_all and not dims):
        return None
    return tuple(sorted(dims))


def _one_dim(op: str, dim: Any, ndim: int) -> int | None:
    """A softmax-like op's one dim -> a non-negative axis (None for a 0-d tensor's dim 0)."""
    axis = normalize_dim(op, dim, ndim)
    return axis if ndim else None


def _spread(ctx, grad):
    """Broadcast a reduction's output gradient back over the input's shape."""
    if not ctx.keepdim and ctx.dims is not None:
        grad = ctx.xp.expand_dims(grad, ctx.dims)
    return ctx.xp.broadcast_to(grad, ctx.in_shape)


def _remember(ctx, a, dims, keepdim):
    ctx.in_shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim


def _count(shape, dims) -> int:
    """How many elements one output element of the reduction summarizes."""
    return math.prod(shape) if dims is None else math.prod(shape[d] for d in dims)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, dims=None, keepdim=False):
        _remember(ctx, a, dims, keepdim)
        return a.sum(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _spread(ctx, grad)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, dims=None, keepdim=False):
        _remember(ctx, a, dims, keepdim)
        return a.mean(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _spread(ctx, grad / _count(ctx.in_shape, ctx.dims))


class Var(Function):
    """sum((x - mean)^2) / (n - correction); d/dx = 2 (x - mean) / (n - correction)."""

    @staticmethod
    def forward(ctx, a, dims=None, keepdim=False, correction=1):
        _remember(ctx, a, dims, keepdim)
        centered = a - a.mean(axis=dims, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.divisor = builtins.max(0, _count(a.shape, dims) - correction)
        return (centered * centered).sum(axis=dims, keepdims=keepdim) / ctx.divisor

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        # n - correction <= 0: the forward is nan (0/0), and so is this gradient, as PyTorch
        return _spread(ctx, grad) * centered * (2 / ctx.divisor if ctx.divisor else math.inf)


class Extreme(Function):
    """amax/amin: ties share the gradient equally (as PyTorch's amax, amin and full max)."""

    name = "amax/amin"

    @staticmethod
    def forward(ctx, a, dims=None, keepdim=False, largest=True):
        _remember(ctx, a, dims, keepdim)
        out = (a.max if largest else a.min)(axis=dims, keepdims=True)
        ctx.save_for_backward(a == out)
        return out if keepdim else out.reshape(_reduced_shape(a.shape, dims))

    @staticmethod
    def backward(ctx, grad):
        (hits,) = ctx.saved_tensors
        count = hits.sum(axis=ctx.dims, keepdims=True)
        return _spread(ctx, grad) * hits / count


def _reduced_shape(shape, dims):
    return () if dims is None else tuple(n for i, n in enumerate(shape) if i not in dims)


def _max_kept(a: Any, axis: Any) -> Any:
    """The max along `axis`, dims kept: the shift that keeps exp from overflowing. An empty
    array has no max, and any shift will do (0, the empty sum)."""
    return a.max(axis=axis, keepdims=True) if a.size else a.sum(axis=axis, keepdims=True)


class LogSumExp(Function):
    """log(sum(exp(x))) shifted by the max, so logits of +-1000 neither overflow nor vanish."""

    @staticmethod
    def forward(ctx, a, dims, keepdim=False):
        xp = ctx.xp
        _remember(ctx, a, dims, keepdim)
        shift = _max_kept(a, dims)
        shift = xp.where(xp.isfinite(shift), shift, 0)
        out = xp.log(xp.exp(a - shift).sum(axis=dims, keepdims=True)) + shift
        ctx.save_for_backward(a, out)
        return out if keepdim else out.reshape(_reduced_shape(a.shape, dims))

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        return _spread(ctx, grad) * ctx.xp.exp(a - out)


class Softmax(Function):
    """exp(x - max) / sum; the VJP is s * (g - sum(g * s))."""

    @staticmethod
    def forward(ctx, a, dim):
        e = ctx.xp.exp(a - _max_kept(a, dim))
        out = e / e.sum(axis=dim, keepdims=True)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return out * (grad - (grad * out).sum(axis=ctx.dim, keepdims=True))


class LogSoftmax(Function):
    """x - logsumexp(x); the VJP is g - softmax * sum(g)."""

    @staticmethod
    def forward(ctx, a, dim):
        xp = ctx.xp
        shifted = a - _max_kept(a, dim)
        with np.errstate(divide="ignore"):  # log(0) only for an empty dim or all -inf: silent
            out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad - ctx.xp.exp(out) * grad.sum(axis=ctx.dim, keepdims=True)


class CumSum(Function):
    """Running sums along `dim`: each input element counts in every later output, so its
    gradient is the sum of the output gradients from its place to the end (a reversed
    cumsum)."""

    @staticmethod
    def forward(ctx, a, dim):
        ctx.dim = dim
        return ctx.xp.cumsum(a, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        return xp.flip(xp.cumsum(xp.flip(grad, ctx.dim), axis=ctx.dim), ctx.dim)


class VectorNorm(Function):
    """(sum |x|^p)^(1/p) over `dims`; p = inf / -inf: max / min |x|; p = 0: the count of
    non-zeros. The gradient is PyTorch's (`norm_backward`): sign(x) |x|^(p-1) / norm^(p-1),
    0 where the norm is 0; for +-inf the gradient is shared by the elements at the extreme."""

    name = "norm"

    @staticmethod
    def forward(ctx, a, dims, keepdim, p):
        xp = ctx.xp
        _remember(ctx, a, dims, keepdim)
        ctx.p = p
        size = xp.abs(a)
        if p == math.inf or p == -math.inf:
            out = (size.max if p > 0 else size.min)(axis=dims, keepdims=True)
        elif p == 0:
            out = (a != 0).sum(axis=dims, keepdims=True).astype(a.dtype)
        elif p == 1:
            out = size.sum(axis=dims, keepdims=True)
        elif p == 2:
            out = xp.sqrt((a * a).sum(axis=dims, keepdims=True))
        else:
            with np.errstate(divide="ignore"):  # 0 ** negative p: inf, and the norm 0
                out = (size ** p).sum(axis=dims, keepdims=True) ** (1 / p)
        ctx.save_for_backward(a, out)
        return out if keepdim else out.reshape(_reduced_shape(a.shape, dims))

    @staticmethod
    def backward(ctx, grad):
        a, norm = ctx.saved_tensors
        xp, p = ctx.xp, ctx.p
        if not ctx.keepdim and ctx.dims is not None:
            grad = xp.expand_dims(grad, ctx.dims)
        if p == 0:
            return xp.zeros_like(a)
        if p == 1:
            return xp.sign(a) * grad
        if p == math.inf or p == -math.inf:
            hits = xp.abs(a) == norm
            return xp.sign(a) * hits * (grad / hits.sum(axis=ctx.dims, keepdims=True))
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == 2:
                return grad * xp.where(norm == 0, 0, a / norm)
            if p < 1:  # |x|^(p-1) is infinite at 0, where the gradient is 0
                scaled = xp.where(a == 0, 0, xp.sign(a) * xp.abs(a) ** (p - 1))
                return scaled * grad * norm ** (1 - p)
            scale = xp.where(norm == 0, 0, grad / norm ** (p - 1))
            return xp.sign(a) * xp.abs(a) ** (p - 1) * scale


# ------------------------------------------------------------------------------ public functions


def sum(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return Sum.apply(a, dims=reduced_dims("sum", dim, a.shape), keepdim=keepdim)


def mean(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Mean.apply(a, dims=reduced_dims("mean", dim, a.shape), keepdim=keepdim)


def var(a: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: int | None = None) -> Tensor:
    """Variance with Bessel's correction by default (correction=1), as PyTorch."""
    return _variance("var", a, dim, unbiased, keepdim, correction)


def std(a: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: int | None = None) -> Tensor:
    return _variance("std", a, dim, unbiased, keepdim, correction).sqrt()


def _variance(op: str, a: Tensor, dim: Any, unbiased: bool | None, keepdim: bool,
              correction: int | None) -> Tensor:
    """var's arguments checked in the name of the op the user called (var or std)."""
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}: give unbiased or correction, not both (as PyTorch)")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims = reduced_dims(op, dim, a.shape)
    return Var.apply(a, dims=dims, keepdim=keepdim, correction=correction)


def amax(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Extreme.apply(a, dims=reduced_dims("amax", dim, a.shape), keepdim=keepdim)


def amin(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    dims = reduced_dims("amin", dim, a.shape)
    return Extreme.apply(a, dims=dims, keepdim=keepdim, largest=False)


def max(a: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """The largest element; along `dim`, (values, indices); with a tensor, `maximum`."""
    return _extreme("max", a, dim, keepdim)


def min(a: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """The smallest element; along `dim`, (values, indices); with a tensor, `minimum`."""
    return _extreme("min", a, dim, keepdim)


def _extreme(op: str, a: Tensor, dim: Any, keepdim: bool) -> Any:
    from minigrad.ops.elementwise import maximum, minimum

    if isinstance(dim, Tensor):
        return (maximum if op == "max" else minimum)(a, dim)
    if dim is None:
        return (amax if op == "max" else amin)(a)
    dim = normalize_dim(op, dim, a.ndim)
    indices = _arg_extreme(op, a, dim, keepdim=True, largest=op == "max")
    values = gather(a, dim, indices)  # the gradient goes to the chosen element, as PyTorch
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return MaxMin(values, indices)


def argmax(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _arg_extreme("argmax", a, dim, keepdim, largest=True)


def argmin(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _arg_extreme("argmin", a, dim, keepdim, largest=False)


def _arg_extreme(op: str, a: Tensor, dim: int | None, keepdim: bool, largest: bool) -> Tensor:
    axis = None if dim is None else _one_dim(op, dim, a.ndim)
    if a.array.size == 0 and (axis is None or a.shape[axis] == 0):
        raise ValueError(f"{op}: the tensor of shape {a.shape} is empty along the reduced dims")
    found = (a.array.argmax if largest else a.array.argmin)(axis=axis, keepdims=keepdim)
    return Tensor._wrap(array_module([a.array]).asarray(found, dtype="int64"))


def all(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    dims = reduced_dims("all", dim, a.shape, empty_is_all=False)
    return Tensor._wrap(unscalar(a.array.all(axis=dims, keepdims=keepdim)))


def any(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    dims = reduced_dims("any", dim, a.shape, empty_is_all=False)
    return Tensor._wrap(unscalar(a.array.any(axis=dims, keepdims=keepdim)))


def logsumexp(a: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    return LogSumExp.apply(a, dims=reduced_dims("logsumexp", dim, a.shape), keepdim=keepdim)


def softmax(a: Tensor, dim: int) -> Tensor:
    return Softmax.apply(a, dim=_one_dim("softmax", dim, a.ndim))


def log_softmax(a: Tensor, dim: int) -> Tensor:
    return LogSoftmax.apply(a, dim=_one_dim("log_softmax", dim, a.ndim))


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sums along `dim`. Integer and bool tensors sum in int64, as PyTorch; `dtype`
    casts the input first (differentiably)."""
    if dtype is not None:
        input = input.astype(dtype)
    elif input.dtype.kind in "biu":
        input = input.astype(np.int64)
    axis = normalize_dim("cumsum", dim, input.ndim)
    if input.ndim == 0:
        return CumSum.apply(input.reshape(1), dim=0).reshape(())
    return CumSum.apply(input, dim=axis)


def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False,
         out: None = None, dtype: Any = None) -> Tensor:
    """torch.norm: the vector p-norm over `dim` (every element when None), p a number (2, 1,
    inf, -inf, 0, or any other); 'fro' (the default) is the 2-norm over at most 2 dims.
    `dtype` casts the input first. The matrix norms ('nuc', matrix 1/2-norms) are not here,
    and neither is `out` (there for PyTorch's argument order)."""
    if out is not None:
        raise TypeError("norm: out= is not supported; use the returned tensor")
    if isinstance(p, str):
        if p != "fro":
            raise ValueError(f"norm: p={p!r} is not supported; give 'fro' or a number (the "
                             "vector p-norm)")
        if dim is not None and isinstance(dim, (tuple, list)) and len(dim) > 2:
            raise ValueError(f"norm: p='fro' takes at most 2 dims, got dim={tuple(dim)}")
        p = 2
    p = 2.0 if p is None else float(p)
    if input.dtype.kind != "f" or (dtype is not None and np.dtype(dtype).kind != "f"):
        raise TypeError(f"norm: expected a floating-point tensor and dtype, got {input.dtype} "
                        f"and dtype={dtype}; convert the input with .float() first")
    if dtype is not None:
        input = input.astype(dtype)
    dims = reduced_dims("norm", dim, input.shape)
    empty = input.array.size == 0 if dims is None else 0 in (input.shape[d] for d in dims)
    if empty and (p < 0 or math.isinf(p)):  # a min or max of nothing
        raise ValueError(f"norm: the {p} norm of nothing is undefined, and the tensor of shape "
                         f"{input.shape} is empty along the reduced dims")
    return VectorNorm.apply(input, dims=dims, keepdim=keepdim, p=p)
