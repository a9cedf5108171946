"""Embeddings: `embedding` and `Embedding`, a table of learned vectors looked up by index.

The lookup is one op (`Lookup`): forward takes rows of the weight, backward adds each output
row's gradient into the row it came from (an index used twice gets both). The row at
`padding_idx` gets no gradient, so it stays what it is (zeros, in a fresh `Embedding`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import factories
from minigrad.autograd import Function, describe, no_grad
from minigrad.backends import kernels_for
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor


class Lookup(Function):
    """out[..., :] = weight[index[...], :]. d/dweight scatters the output gradient back to the
    rows that were read, adding where an index repeats; the padding row gets none."""

    name = "embedding"

    @staticmethod
    def forward(ctx, weight, index, padding_idx):
        ctx.save_for_backward(index)
        ctx.weight_shape, ctx.padding_idx = weight.shape, padding_idx
        return ctx.xp.take(weight, index, axis=0)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        full = ctx.xp.zeros(ctx.weight_shape, dtype=grad.dtype)
        rows = grad.reshape(-1, ctx.weight_shape[1])
        kernels_for(ctx.xp).scatter_add(full, index.reshape(-1), rows)
        if ctx.padding_idx is not None:
            full[ctx.padding_idx] = 0
        return full, None, None


def _padding_index(op: str, padding_idx: int | None, num_embeddings: int) -> int | None:
    """PyTorch's rule: padding_idx in [-num_embeddings, num_embeddings), negative ones counting
    from the end; returned in [0, num_embeddings)."""
    if padding_idx is None:
        return None
    if (isinstance(padding_idx, (bool, np.bool_)) or not hasattr(type(padding_idx), "__index__")
            or not -num_embeddings <= padding_idx < num_embeddings):
        raise ValueError(f"{op}: padding_idx must be an int within num_embeddings, in "
                         f"[{-num_embeddings}, {num_embeddings - 1}], got {padding_idx!r}")
    return int(padding_idx) % num_embeddings


def _unsupported(op: str, max_norm: Any, scale_grad_by_freq: bool, sparse: bool) -> None:
    """The options minigrad does not implement: renormalising rows in place (max_norm),
    frequency-scaled and sparse gradients. Refused rather than silently ignored."""
    for name, value, default in (("max_norm", max_norm, None),
                                 ("scale_grad_by_freq", scale_grad_by_freq, False),
                                 ("sparse", sparse, False)):
        if value is not default and value != default:
            raise NotImplementedError(f"{op}: {name}={value!r} is not supported; only "
                                      f"{name}={default!r}")


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` (num_embeddings, embedding_dim) picked by the integer tensor `input`:
    the result has shape input.shape + (embedding_dim,). The row at `padding_idx` gets no
    gradient. Indices must be in [0, num_embeddings), as in PyTorch (no negative indexing)."""
    _unsupported("embedding", max_norm, scale_grad_by_freq, sparse)
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"embedding: weight must be a 2-D tensor (num_embeddings, "
                         f"embedding_dim), got {describe(weight)}")
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        raise TypeError(f"embedding: input must be an integer tensor of indices (int64 or "
                        f"int32), got {describe(input)}")
    padding_idx = _padding_index("embedding", padding_idx, weight.shape[0])
    index = input.array
    if index.size:
        low, high = int(index.min()), int(index.max())  # one device sync, before any kernel
        if low < 0 or high >= weight.shape[0]:
            bad = low if low < 0 else high
            raise IndexError(f"embedding: index {bad} is out of range for a weight of "
                             f"{weight.shape[0]} rows (valid indices: 0 to "
                             f"{weight.shape[0] - 1}); input {describe(input)}")
    return Lookup.apply(weight, index, padding_idx)


class Embedding(Module):
    """A lookup table of num_embeddings vectors of size embedding_dim, initialised N(0, 1) (the
    padding_idx row zeros); `Embedding(10, 3)(indices)` has shape indices.shape + (3,)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Any = None, _freeze: bool = False) -> None:
        super().__init__()
        _unsupported("Embedding", max_norm, scale_grad_by_freq, sparse)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = _padding_index("Embedding", padding_idx, num_embeddings)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(factories.empty(num_embeddings, embedding_dim),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {tuple(_weight.shape)}, "
                                 f"expected ({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        return text

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True,
                        padding_idx: int | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding holding a copy of `embeddings` (2-D); frozen (no gradient) by default."""
        if len(getattr(embeddings, "shape", ())) != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got "
                             f"{describe(embeddings)}")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)
