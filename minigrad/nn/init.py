"""Weight initialisation, as `torch.nn.init`: each function fills a tensor in place and returns it.

Values are drawn on the host from `minigrad.random.generator()`, so `mg.manual_seed(n)` makes a
freshly built model the same on every run and every backend, and are written under `no_grad`
(parameters require grad, and filling them is not part of any graph).
"""

from __future__ import annotations

import math

import numpy as np

from minigrad.autograd import no_grad
from minigrad.random import generator as default_generator
from minigrad.tensor import Tensor

_GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3,
          "relu": math.sqrt(2.0), "selu": 3.0 / 4}


def _fill(tensor: Tensor, values: np.ndarray | float) -> Tensor:
    with no_grad():
        return tensor.copy_(values)  # cast to the tensor's dtype


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with U(a, b)."""
    return _fill(tensor, default_generator().uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with N(mean, std^2)."""
    return _fill(tensor, default_generator().normal(mean, std, tensor.shape))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: np.random.Generator | None = None) -> Tensor:
    """Fill with N(mean, std^2) truncated to [a, b]: draws outside the bounds are redrawn.

    `a` and `b` are values, not numbers of stds (with std=0.02, the default [-2, 2] truncates
    nothing): PyTorch's semantics. Sampled as PyTorch 2.13 does, by rejection: from the normal
    itself when [a, b] holds more than 30% of its mass, otherwise uniformly on [a, b], each
    draw kept with probability pdf(x) / (the largest pdf on [a, b]). Both give exactly the
    truncated normal. `generator` is a NumPy Generator; by default minigrad's.
    """
    if not std > 0:
        raise ValueError(f"trunc_normal_: std must be positive, got {std!r}")
    if not a <= b:
        raise ValueError(f"trunc_normal_: the bounds need a <= b, got a={a!r}, b={b!r}")
    rng = default_generator() if generator is None else generator
    n = tensor.numel()
    mass = _normal_cdf((b - mean) / std) - _normal_cdf((a - mean) / std)
    if mass > 0.3:
        values = rng.normal(mean, std, n)
        outside = np.flatnonzero((values < a) | (values > b))
        while outside.size:  # each round keeps >30% of what is left
            values[outside] = rng.normal(mean, std, outside.size)
            outside = outside[(values[outside] < a) | (values[outside] > b)]
    else:
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"trunc_normal_: [{a}, {b}] holds {mass:.3g} of the normal's mass; "
                             "for so little, both bounds must be finite")
        mode = min(max(mean, a), b)  # where the pdf peaks on [a, b]
        values = np.empty(n)
        pending = np.arange(n)
        while pending.size:
            x = rng.uniform(a, b, pending.size)
            keep = rng.random(pending.size) < np.exp(
                -0.5 * ((x - mean) / std) ** 2 + 0.5 * ((mode - mean) / std) ** 2)
            values[pending[keep]] = x[keep]
            pending = pending[~keep]
    return _fill(tensor, values.reshape(tensor.shape))


def _normal_cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _fill(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1.0)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance steady through `nonlinearity`."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected "
                         f"one of {sorted([*_GAINS, 'leaky_relu'])}")
    return _GAINS[nonlinearity]


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """Inputs and outputs feeding one unit: (in, out) of a Linear weight (out, in), times
    kH*kW for a conv weight (out, in/groups, kH, kW)."""
    if tensor.ndim < 2:
        raise ValueError(f"fan_in_and_fan_out: needs a tensor of at least 2 dims, got shape "
                         f"{tensor.shape}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """He et al. (2015): U(-b, b) with b = gain * sqrt(3 / fan), so the std is gain/sqrt(fan)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """He et al. (2015): N(0, gain^2 / fan)."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot & Bengio (2010): U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


__all__ = ["calculate_gain", "constant_", "fan_in_and_fan_out", "kaiming_normal_",
           "kaiming_uniform_", "normal_", "ones_", "trunc_normal_", "uniform_",
           "xavier_uniform_", "zeros_"]
