"""Selecting by index and by position: index_select, masked_fill, tril/triu, sort, argsort, topk.

Their backward sends each output element's gradient back to the input element it came from:
a scatter-add for index_select (an index may repeat), the kept places for masked_fill and
tril/triu, and a gather's backward for sort and topk, whose values are gathered from the input
along the sorted indices (indices are int64 tensors outside the graph).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from minigrad.autograd import Function, array_module, describe
from minigrad.backends import kernels_for
from minigrad.ops.shape import _integer, normalize_dim, reshape
from minigrad.tensor import Tensor

# What sort and topk return, with the names of torch.return_types.sort and .topk
SortResult = namedtuple("sort", ["values", "indices"])
TopKResult = namedtuple("topk", ["values", "indices"])


class IndexSelect(Function):
    """out = a.take(index, axis=dim); backward adds each gradient slice at its index."""

    @staticmethod
    def forward(ctx, a, index, dim):
        ctx.in_shape, ctx.dim = a.shape, dim
        ctx.save_for_backward(index)
        return ctx.xp.take(a, index, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        full = ctx.xp.zeros(ctx.in_shape, dtype=grad.dtype)
        kernels_for(ctx.xp).scatter_add(full, (slice(None),) * ctx.dim + (index,), grad)
        return full, None


class MaskedFill(Function):
    """`value` where `mask` is True, `a` elsewhere (the two broadcast together). The filled
    places get no gradient to `a`; `value` (a 0-d tensor) gets the sum of theirs."""

    @staticmethod
    def forward(ctx, a, mask, value):
        xp = ctx.xp
        ctx.save_for_backward(mask)
        return xp.where(mask, xp.asarray(value).astype(a.dtype), a)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        xp = ctx.xp
        grad_value = xp.where(mask, grad, 0).sum() if ctx.needs_input_grad[2] else None
        return xp.where(mask, 0, grad), None, grad_value


class Triangle(Function):
    """tril/triu: the lower (upper) triangle of the last two dims, from `diagonal` on, kept and
    the rest zeroed; the gradient is kept in the same places."""

    name = "tril/triu"

    @staticmethod
    def forward(ctx, a, diagonal, upper):
        xp = ctx.xp
        rows, cols = a.shape[-2:]
        keep = xp.tri(rows, cols, diagonal - 1 if upper else diagonal, dtype=bool)
        ctx.keep = ~keep if upper else keep
        return xp.where(ctx.keep, a, xp.zeros((), dtype=a.dtype))

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.where(ctx.keep, grad, 0)


class TakeSorted(Function):
    """values = a's elements at `indices` along `dim`, for indices that never repeat along it
    (a sort, a top-k): backward puts each gradient back in its element's place."""

    name = "sort/topk"

    @staticmethod
    def forward(ctx, a, indices, dim):
        ctx.in_shape, ctx.dim = a.shape, dim
        ctx.save_for_backward(indices)
        return ctx.xp.take_along_axis(a, indices, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        xp = ctx.xp
        full = xp.zeros(ctx.in_shape, dtype=grad.dtype)
        # open-grid positions of every element of `indices` (cupy.indices has no `sparse=`)
        places = [xp.arange(n).reshape([n if d == i else 1 for d in range(indices.ndim)])
                  for i, n in enumerate(indices.shape)]
        places[ctx.dim] = indices
        full[tuple(places)] = grad
        return full, None


# ------------------------------------------------------------------------------ public functions


def _index_array(op: str, index: Any) -> Any:
    """The integer array inside an index argument (a tensor, or a list as a convenience)."""
    array = index.array if isinstance(index, Tensor) else np.asarray(index)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor (int64 or int32), got "
                        f"{describe(array)}")
    return array


def index_select(input: Tensor, dim: int, index: Any) -> Tensor:
    """The entries of `input` at `index` (a 1-D integer tensor) along `dim`, as torch."""
    index = _index_array("index_select", index)
    dim = normalize_dim("index_select", dim, input.ndim)
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be a vector (1-D or 0-d), got shape "
                         f"{tuple(index.shape)}")
    size = input.shape[dim] if input.ndim else 1
    if input.ndim == 0 and index.size != 1:
        raise ValueError(f"index_select: the index into a 0-d tensor must have one value, got "
                         f"{index.size}")
    if index.size and not bool(((index >= 0) & (index < size)).all()):
        raise IndexError(f"index_select: index out of range for dim {dim} of size {size} "
                         f"(tensor of shape {input.shape}): got values from "
                         f"{int(index.min())} to {int(index.max())}")
    index = index.reshape(-1).astype(np.int64, copy=False)
    if input.ndim == 0:  # a scalar is selected from as the 1-element vector it holds
        return reshape(IndexSelect.apply(reshape(input, (1,)), index, dim=0), ())
    return IndexSelect.apply(input, index, dim=dim)


def masked_fill(input: Tensor, mask: Any, value: Any) -> Tensor:
    """`input` with `value` where the bool `mask` (broadcast with `input`) is True. `value` is
    a number or a 0-d tensor, cast to input's dtype; a 0-d tensor value gets a gradient."""
    mask_array = mask.array if isinstance(mask, Tensor) else np.asarray(mask)
    if mask_array.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {describe(mask_array)}")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got a tensor of "
                         f"shape {value.shape}")
    try:
        np.broadcast_shapes(input.shape, tuple(mask_array.shape))
    except ValueError:
        raise ValueError(f"masked_fill: the mask of shape {tuple(mask_array.shape)} does not "
                         f"broadcast with the input of shape {input.shape}") from None
    return MaskedFill.apply(input, mask_array, value)


def _triangle(op: str, input: Tensor, diagonal: int, upper: bool) -> Tensor:
    diagonal = _integer(op, "diagonal", diagonal)
    if input.ndim < 2:
        raise ValueError(f"{op}: input must have at least 2 dimensions, got shape {input.shape}")
    return Triangle.apply(input, diagonal=diagonal, upper=upper)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (j - i <= diagonal), zeros above it."""
    return _triangle("tril", input, diagonal, upper=False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (j - i >= diagonal), zeros below it."""
    return _triangle("triu", input, diagonal, upper=True)


def _stable_order(array: Any, axis: int, descending: bool) -> Any:
    """Indices that sort `array` along `axis`, equal elements in their original order (the
    order of torch's stable=True), NaN counted as the largest, as PyTorch. Descending: the
    ascending stable order of the reversed array, reversed back, which keeps ties in order."""
    xp = array_module([array])
    if not descending:
        return xp.argsort(array, axis=axis, kind="stable")
    n = array.shape[axis]
    reverse = xp.argsort(xp.flip(array, axis), axis=axis, kind="stable")
    return n - 1 - xp.flip(reverse, axis)


def _sorted_along(op: str, input: Tensor, dim: int, descending: bool) -> tuple[int, Any]:
    """(axis, int64 indices that sort `input` along it); a 0-d tensor sorts as a 1-vector."""
    axis = normalize_dim(op, dim, input.ndim)
    array = input.array.reshape(1) if input.ndim == 0 else input.array
    indices = _stable_order(array, axis, descending).astype(np.int64, copy=False)
    return axis, indices


def sort(input: Tensor, dim: int = -1, descending: bool = False, *,
         stable: bool = False) -> SortResult:
    """(values, indices) of `input` sorted along `dim`. Ties keep their original order
    whether or not `stable` is asked for (PyTorch's stable=True order); NaN sorts as the
    largest. The values are differentiable (gathered from `input`); indices are int64."""
    axis, indices = _sorted_along("sort", input, dim, descending)
    return _gathered(input, axis, indices, SortResult)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, *,
            stable: bool = False) -> Tensor:
    """The int64 indices that sort `input` along `dim` (sort's second result)."""
    _, indices = _sorted_along("argsort", input, dim, descending)
    return Tensor._wrap(indices.reshape(input.shape))


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True,
         sorted: bool = True) -> TopKResult:
    """(values, indices) of the k largest (`largest=False`: smallest) elements along `dim`,
    largest first (smallest first). minigrad always returns them sorted, and equal elements
    in their original order (PyTorch leaves the order of ties unspecified); NaN is the largest.
    """
    k = _integer("topk", "k", k)
    axis = normalize_dim("topk", dim, input.ndim)
    size = input.shape[axis] if input.ndim else 1
    if not 0 <= k <= size:
        raise ValueError(f"topk: k ({k}) is out of range for dim {axis} of size {size} (tensor "
                         f"of shape {input.shape})")
    _, indices = _sorted_along("topk", input, dim, descending=largest)
    if input.ndim:  # a copy: the view would keep the whole sort's indices alive
        indices = indices[(slice(None),) * axis + (slice(0, k),)].copy()
    return _gathered(input, axis, indices, TopKResult)


def _gathered(input: Tensor, axis: int, indices: Any, result: type) -> Any:
    """(values taken at `indices` along `axis`, the indices as a tensor), as `result`."""
    if input.ndim == 0:
        values = TakeSorted.apply(reshape(input, (1,)), indices.reshape(1), dim=0)
        return result(reshape(values, ()), Tensor._wrap(indices.reshape(())))
    return result(TakeSorted.apply(input, indices, dim=axis), Tensor._wrap(indices))
