"""Dropout: the functions and the layers. Dropout zeroes single elements, Dropout2d whole
channels (feature maps).

`inplace=True` is accepted as PyTorch has it and gives the same values, but the result is always
a new tensor: minigrad never overwrites the input (see minigrad.nn.activation).
"""

from __future__ import annotations

import warnings

import numpy as np

from minigrad.autograd import array_module, describe
from minigrad.nn.module import Module
from minigrad.random import generator
from minigrad.tensor import Tensor


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p),
    so the expected activation is unchanged and evaluation needs no rescaling.

    The mask is drawn on the host from minigrad's one generator (then moved to the input's
    device), so `mg.manual_seed` gives the same mask on every backend.
    """
    return _dropout("dropout", input, p, training, input.shape)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Channel-wise dropout of (N, C, H, W): zero each whole channel input[n, c] with
    probability p and scale the rest by 1/(1-p); masks from minigrad's generator, as dropout.

    As PyTorch 2.13, a 3-D input is taken as (N, C, L), not as an unbatched (C, H, W): each
    input[n, c] row is dropped whole, with PyTorch's warning about it; other inputs of 2 or
    more dims (deprecated, warned about) drop input[n, c, ...] slices too.
    """
    if input.ndim < 2:
        raise ValueError(f"dropout2d: expected an input (N, C, ...) of at least 2 dims, got "
                         f"{describe(input)}")
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2)
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2)
    return _dropout("dropout2d", input, p, training,
                    (*input.shape[:2], *(1,) * (input.ndim - 2)))


def _dropout(name: str, input: Tensor, p: float, training: bool,
             mask_shape: tuple[int, ...]) -> Tensor:
    """input * mask / (1 - p), the mask of `mask_shape` (broadcast over the rest) keeping
    each entry with probability 1 - p."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: p must be in [0, 1], got {p!r}")
    if not training or p == 0 or input.numel() == 0:  # the input itself, as PyTorch
        return input
    if p == 1:
        return input * 0.0
    keep = generator().random(mask_shape, dtype=np.float32) >= p
    mask = keep.astype(input.dtype) / (1 - p)
    return input * array_module([input.array]).asarray(mask)


class _DropoutNd(Module):
    """p and PyTorch's inplace flag (shown, but the computation is out of place)."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be a probability between 0 and 1, "
                             f"got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """In training, zero each element with probability p and scale the rest by 1/(1-p), so
    eval (the identity) sees the same expected activations."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """In training, zero each whole channel x[n, c] of (N, C, H, W) with probability p and scale
    the rest by 1/(1-p); the identity in eval. For convolutional features, whose neighbouring
    pixels are correlated, so that dropping single pixels regularises little."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout2d(x, self.p, self.training, self.inplace)
