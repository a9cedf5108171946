"""Elementwise ops: arithmetic, activations, comparisons.

Binary ops never think about broadcasting: the engine sums each gradient back to its input's
shape. Arguments that are not Tensors (Python numbers, arrays) are constants: NumPy's promotion
rules apply to them (a Python float keeps a float32 tensor float32).
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from minigrad.autograd import (
    DeviceError,
    Function,
    array_module,
    beside,
    describe,
    op_error,
    unscalar,
)
from minigrad.backends import kernels_for
from minigrad.tensor import Tensor

# ---------------------------------------------------------------------------------- arithmetic


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad if ctx.needs_input_grad[1] else None


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return (grad * b if ctx.needs_input_grad[0] else None,
                grad * a if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = a / b
        ctx.save_for_backward(b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        b, out = ctx.saved_tensors
        grad_a = grad / b
        return grad_a, -grad_a * out if ctx.needs_input_grad[1] else None


class Pow(Function):
    """d(a^b)/da = b a^(b-1), taken as 0 where b == 0 (even at a == 0); d(a^b)/db = a^b log(a),
    taken as 0 where a == 0 and b >= 0 (the limit), -inf times the gradient where a == 0 and
    b < 0. The same choices as PyTorch."""

    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        xp = ctx.xp
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                grad_a = grad * b * a ** (b - 1)
                # b is a number for `t ** 2`: cupy.where wants an array condition
                grad_a = (xp.where(b == 0, 0, grad_a) if hasattr(b, "shape")
                          else xp.zeros_like(grad_a) if b == 0 else grad_a)
            if ctx.needs_input_grad[1]:
                # a is a number for `2.5 ** t`
                at_zero = (a == 0) & (b >= 0)
                grad_b = xp.where(at_zero, 0, grad * out * xp.log(a))
        return grad_a, grad_b


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pick(Function):
    """maximum/minimum: the gradient goes to the chosen input; ties share it (as PyTorch)."""

    name = "maximum/minimum"

    @staticmethod
    def forward(ctx, a, b, largest=True):
        ctx.save_for_backward(a, b)
        ctx.largest = largest
        return (ctx.xp.maximum if largest else ctx.xp.minimum)(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        share_a = ((a > b) if ctx.largest else (a < b)) + 0.5 * (a == b)
        return grad * share_a, grad * (1 - share_a)


class Clamp(Function):
    """min(max(x, low), high) with number or tensor bounds. d/dx passes where low <= x <= high,
    bounds included; a tensor bound gets the gradient where it is the result: low where
    x < low < high, high where x > high or where the bounds cross (high < low). PyTorch's
    rule: a tie at a bound goes to x, not shared as maximum/minimum would share it."""

    @staticmethod
    def forward(ctx, a, low, high):
        ctx.save_for_backward(a, low, high)
        return ctx.xp.clip(a, low, high)

    @staticmethod
    def backward(ctx, grad):
        a, low, high = ctx.saved_tensors
        xp = ctx.xp
        inside = xp.ones(a.shape, dtype=bool)
        if low is not None:
            inside = inside & (a >= low)
        if high is not None:
            inside = inside & (a <= high)
        grad_low = grad_high = None
        if ctx.needs_input_grad[1]:
            below = a < low
            grad_low = xp.where(below if high is None else below & (low < high), grad, 0)
        if ctx.needs_input_grad[2]:
            above = a > high
            grad_high = xp.where(above if low is None else above | (high < low), grad, 0)
        return xp.where(inside, grad, 0), grad_low, grad_high


class Where(Function):
    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.save_for_backward(condition)
        return ctx.xp.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        xp = ctx.xp
        return None, xp.where(condition, grad, 0), xp.where(condition, 0, grad)


class Cast(Function):
    """A dtype change; its gradient flows back in the input's dtype (the engine casts it)."""

    @staticmethod
    def forward(ctx, a, dtype):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


# --------------------------------------------------------------------------------- math & act.


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.xp.exp(a)
        ctx.save_for_backward(out)  # d exp = exp: keep the output, not the input
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.xp.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Abs(Function):
    """The derivative at 0 is taken as 0 (sign(0) = 0), as PyTorch."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.xp.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * ctx.xp.sign(a)


class Sin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.xp.sin(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * ctx.xp.cos(a)


class Cos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.xp.cos(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return -grad * ctx.xp.sin(a)


class Relu(Function):
    """max(x, 0), and its gradient where the output is positive (or NaN): backend kernels."""

    @staticmethod
    def forward(ctx, a):
        ctx.kernels = kernels_for(ctx.xp)
        out = ctx.kernels.relu(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return ctx.kernels.relu_backward(grad, out)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        out = kernels_for(ctx.xp).sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = kernels_for(ctx.xp).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


class Silu(Function):
    """x sigmoid(x); its derivative is s (1 + x (1 - s)): backend kernels."""

    @staticmethod
    def forward(ctx, a):
        ctx.kernels = kernels_for(ctx.xp)
        ctx.save_for_backward(a)
        return ctx.kernels.silu(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return ctx.kernels.silu_backward(grad, a)


class LeakyRelu(Function):
    """x where x > 0, else negative_slope * x. The slope at 0 is negative_slope: PyTorch's
    backward tests x > 0."""

    @staticmethod
    def forward(ctx, a, negative_slope=0.01):
        ctx.save_for_backward(a)
        ctx.negative_slope = negative_slope
        return ctx.xp.where(a > 0, a, a * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return ctx.xp.where(a > 0, grad, grad * ctx.negative_slope)


class Elu(Function):
    """x where x > 0, else alpha (e^x - 1), by expm1 (exact near 0) of min(x, 0) (no overflow
    at +1000). d/dx = alpha e^x where x <= 0: alpha at 0, PyTorch's choice."""

    @staticmethod
    def forward(ctx, a, alpha=1.0):
        xp = ctx.xp
        ctx.save_for_backward(a)
        ctx.alpha = alpha
        return xp.where(a <= 0, alpha * xp.expm1(xp.minimum(a, 0)), a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        xp = ctx.xp
        return xp.where(a <= 0, grad * (ctx.alpha * xp.exp(xp.minimum(a, 0))), grad)


class Hardswish(Function):
    """x relu6(x + 3) / 6: 0 below -3, x above 3, x (x + 3) / 6 between. d/dx = x/3 + 1/2
    on (-3, 3); at the kinks PyTorch takes the outer slopes' side as it tests x <= -3 and
    x < 3: 0 at -3 and 1 at 3."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * ctx.xp.clip(a + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        xp = ctx.xp
        return xp.where(a <= -3, 0, xp.where(a < 3, grad * (a / 3 + 0.5), grad))


class Hardsigmoid(Function):
    """relu6(x + 3) / 6; d/dx = 1/6 strictly inside (-3, 3), 0 elsewhere, the kinks
    included (PyTorch's choice). The slope is PyTorch's constant 1.0f / 6.0f, a float32 even
    for float64 data (1/6 within 3e-8), so float64 gradients match PyTorch's to the last bit."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.xp.clip(a + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        slope = grad.dtype.type(np.float32(1 / 6))
        return ctx.xp.where((a > -3) & (a < 3), grad * slope, 0)


def _softplus(xp, z):
    """log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|), exp only ever sees -|z|."""
    return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))


class Softplus(Function):
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch's rule, for
    speed and to stay linear); d/dx = sigmoid(beta x) below the threshold, 1 above."""

    @staticmethod
    def forward(ctx, a, beta=1.0, threshold=20.0):
        z = a * beta
        ctx.save_for_backward(z)
        ctx.threshold = threshold
        return ctx.xp.where(z > threshold, a, _softplus(ctx.xp, z) / beta)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return ctx.xp.where(z > ctx.threshold, grad, grad * kernels_for(ctx.xp).sigmoid(z))


class Mish(Function):
    """x tanh(softplus(x)) (no threshold, as PyTorch); with t = tanh(softplus(x)) the
    derivative is t + x sigmoid(x) (1 - t^2), since d softplus = sigmoid."""

    @staticmethod
    def forward(ctx, a):
        t = ctx.xp.tanh(_softplus(ctx.xp, a))
        ctx.save_for_backward(a, t)
        return a * t

    @staticmethod
    def backward(ctx, grad):
        a, t = ctx.saved_tensors
        return grad * (t + a * kernels_for(ctx.xp).sigmoid(a) * (1 - t * t))


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class Gelu(Function):
    """x Phi(x) with the exact normal CDF (erf), or PyTorch's tanh approximation."""

    @staticmethod
    def forward(ctx, a, approximate="none"):
        xp = ctx.xp
        ctx.save_for_backward(a)
        ctx.approximate = approximate
        if approximate == "tanh":
            return 0.5 * a * (1 + xp.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a**3)))
        return kernels_for(xp).gelu(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        xp = ctx.xp
        if ctx.approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a**3))
            slope = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return grad * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * slope)
        return kernels_for(xp).gelu_backward(grad, a)


# ------------------------------------------------------------------------------ public functions


def add(a: Any, b: Any) -> Tensor:
    return Add.apply(a, b)


def sub(a: Any, b: Any) -> Tensor:
    return Sub.apply(a, b)


def mul(a: Any, b: Any) -> Tensor:
    return Mul.apply(a, b)


def div(a: Any, b: Any) -> Tensor:
    return Div.apply(a, b)


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - PyTorch's name
    return Pow.apply(a, b)


def neg(a: Tensor) -> Tensor:
    return Neg.apply(a)


def exp(a: Tensor) -> Tensor:
    return Exp.apply(a)


def log(a: Tensor) -> Tensor:
    return Log.apply(a)


def sqrt(a: Tensor) -> Tensor:
    return Sqrt.apply(a)


def abs(a: Tensor) -> Tensor:  # noqa: A001 - PyTorch's name
    return Abs.apply(a)


def sin(a: Tensor) -> Tensor:
    return Sin.apply(a)


def cos(a: Tensor) -> Tensor:
    return Cos.apply(a)


def relu(a: Tensor) -> Tensor:
    return Relu.apply(a)


def sigmoid(a: Tensor) -> Tensor:
    return Sigmoid.apply(a)


def tanh(a: Tensor) -> Tensor:
    return Tanh.apply(a)


def silu(a: Tensor) -> Tensor:
    return Silu.apply(a)


def _floating(name: str, a: Tensor) -> None:
    """The activations below are defined for floating-point input only (as in PyTorch)."""
    if not isinstance(a, Tensor) or a.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point tensor, got {describe(a)}")


def leaky_relu(a: Tensor, negative_slope: float = 0.01) -> Tensor:
    _floating("leaky_relu", a)
    return LeakyRelu.apply(a, negative_slope=float(negative_slope))


def elu(a: Tensor, alpha: float = 1.0) -> Tensor:
    _floating("elu", a)
    return Elu.apply(a, alpha=float(alpha))


def hardswish(a: Tensor) -> Tensor:
    _floating("hardswish", a)
    return Hardswish.apply(a)


def hardsigmoid(a: Tensor) -> Tensor:
    _floating("hardsigmoid", a)
    return Hardsigmoid.apply(a)


def softplus(a: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    _floating("softplus", a)
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero (the result is divided by it)")
    return Softplus.apply(a, beta=float(beta), threshold=float(threshold))


def mish(a: Tensor) -> Tensor:
    _floating("mish", a)
    return Mish.apply(a)


def gelu(a: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(a, approximate=approximate)


def maximum(a: Any, b: Any) -> Tensor:
    return Pick.apply(a, b)


def minimum(a: Any, b: Any) -> Tensor:
    return Pick.apply(a, b, largest=False)


def clamp(a: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max]; either bound may be a number or a tensor (broadcast)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(a, min, max)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elements of `a` where `condition` is True, else of `b`; gradients flow to both."""
    cond = condition.array if isinstance(condition, Tensor) else condition
    if getattr(cond, "dtype", None) != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {describe(condition)}")
    return Where.apply(cond, a, b)


_COMPARISONS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
                "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def compare(name: str, a: Tensor, b: Any) -> Tensor:
    """An elementwise comparison: a bool tensor outside the graph."""
    try:
        return Tensor._wrap(unscalar(_COMPARISONS[name](a.array, operand(a, b))))
    except (ValueError, TypeError, DeviceError) as error:
        raise op_error(name, error, (a, b)) from None


def operand(target: Tensor, value: Any) -> Any:
    """`value`'s data for an operation on `target`'s: a tensor must be on the same device
    (DeviceError otherwise); a NumPy constant beside GPU data goes to the GPU, as a number."""
    if isinstance(value, Tensor):
        array_module([target.array, value.array])
        return value.array
    return beside(target.array, value)
