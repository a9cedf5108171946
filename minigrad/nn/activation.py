"""Activation layers: each applies one elementwise (or along-a-dim) op of minigrad.ops."""

from __future__ import annotations

from collections.abc import Callable

from minigrad import ops
from minigrad.nn.module import Module
from minigrad.tensor import Tensor


class ReLU(Module):
    """max(0, x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise (stable for large |x|)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class SiLU(Module):
    """x * sigmoid(x), also called swish."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.silu(x)


class GELU(Module):
    """x * Phi(x); approximate='tanh' uses the tanh approximation of the normal CDF Phi."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return ops.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class _SoftmaxOverDim(Module):
    """Softmax and LogSoftmax: one function applied along `dim`."""

    _function: Callable[[Tensor, int], Tensor]

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return self._function(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxOverDim):
    """Probabilities along `dim` (stable: shifted by the max)."""

    _function = staticmethod(ops.softmax)


class LogSoftmax(_SoftmaxOverDim):
    """Log-probabilities along `dim`; pair it with NLLLoss, or use cross_entropy on logits."""

    _function = staticmethod(ops.log_softmax)
