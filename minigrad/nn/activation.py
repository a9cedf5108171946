"""Activations: the functions of minigrad.nn.functional that take PyTorch's extra arguments
(`inplace`, slopes, ...), and the layers, each applying one elementwise (or along-a-dim) op of
minigrad.ops.

`inplace=True` is accepted wherever PyTorch has it, and gives the same values, but minigrad
never overwrites or aliases the input: the result is always a new tensor. (Writing into the
input would destroy what the input's own backward needs; PyTorch checks that with version
counters, minigrad simply does not do it.) Code written for PyTorch, `nn.ReLU(inplace=True)`
included, runs unchanged; only code that relies on the input itself changing needs
`x = F.relu(x)`.
"""

from __future__ import annotations

from collections.abc import Callable

from minigrad import ops
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

# ----------------------------------------------------------------------------------- functions


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(0, x), elementwise; the gradient at 0 is 0. `inplace` computes out of place."""
    return ops.relu(input)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (swish). `inplace` computes out of place."""
    return ops.silu(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x; the slope at 0 is negative_slope (PyTorch's)."""
    return ops.leaky_relu(input, negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1); the slope at 0 is alpha (PyTorch's)."""
    return ops.elu(input, alpha)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6; slopes 0 at -3 and 1 at 3 (PyTorch's)."""
    return ops.hardswish(input)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6; slope 0 at -3 and at 3 (PyTorch's)."""
    return ops.hardsigmoid(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, or x where beta * x > threshold (PyTorch's rule);
    stable for any x."""
    return ops.softplus(input, beta, threshold)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)); stable for any x."""
    return ops.mish(input)


# -------------------------------------------------------------------------------------- layers


class _Inplace(Module):
    """A layer with PyTorch's `inplace` flag: kept and shown as PyTorch shows it, but the
    computation is always out of place (see the module's docstring)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    """max(0, x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return relu(x, self.inplace)


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise (stable for large |x|)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class SiLU(_Inplace):
    """x * sigmoid(x), also called swish."""

    def forward(self, x: Tensor) -> Tensor:
        return silu(x, self.inplace)


class GELU(Module):
    """x * Phi(x); approximate='tanh' uses the tanh approximation of the normal CDF Phi."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return ops.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: Tensor) -> Tensor:
        return leaky_relu(x, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{', inplace=True' if self.inplace else ''}"


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1): smooth, negative values saturate at -alpha."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return elu(x, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{', inplace=True' if self.inplace else ''}"


class Hardswish(_Inplace):
    """x * relu6(x + 3) / 6, a cheap piecewise swish (MobileNetV3)."""

    def forward(self, x: Tensor) -> Tensor:
        return hardswish(x, self.inplace)

    def extra_repr(self) -> str:
        return ""  # PyTorch shows no inplace flag for this one


class Hardsigmoid(_Inplace):
    """relu6(x + 3) / 6, a cheap piecewise sigmoid."""

    def forward(self, x: Tensor) -> Tensor:
        return hardsigmoid(x, self.inplace)

    def extra_repr(self) -> str:
        return ""  # PyTorch shows no inplace flag for this one


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, a smooth ReLU; linear where beta * x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Mish(_Inplace):
    """x * tanh(softplus(x))."""

    def forward(self, x: Tensor) -> Tensor:
        return mish(x, self.inplace)


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
