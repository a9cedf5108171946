"""Dropout: the function and the layer."""

from __future__ import annotations

import numpy as np

from minigrad.autograd import array_module
from minigrad.nn.module import Module
from minigrad.random import generator
from minigrad.tensor import Tensor


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p),
    so the expected activation is unchanged and evaluation needs no rescaling.

    The mask is drawn on the host from minigrad's one generator (then moved to the input's
    device), so `mg.manual_seed` gives the same mask on every backend.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p!r}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    keep = generator().random(input.shape, dtype=np.float32) >= p
    mask = keep.astype(input.dtype) / (1 - p)
    return input * array_module([input.array]).asarray(mask)


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1-p), so
    eval (the identity) sees the same expected activations."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability between 0 and 1, got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"
