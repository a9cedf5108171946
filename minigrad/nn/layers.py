"""The layers of `torch.nn`, with PyTorch's arguments, parameter layouts, names and reprs.

Each layer holds its parameters and calls `minigrad.nn.functional` in `forward`; the math and
the gradients live there and in `minigrad.ops`. Parameters are float32 and initialised as in
PyTorch, from the generator `mg.manual_seed` seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

import minigrad.nn.functional as F
from minigrad import factories
from minigrad.nn import init
from minigrad.nn.functional import _pair
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor

IntOrPair = int | tuple[int, int]


def _reset_weight_and_bias(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for Linear and Conv2d. kaiming_uniform_(a=sqrt(5)) works out to
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias gets the same bound."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


def _empty_parameter(*shape: int) -> Parameter:
    """Uninitialised float32 storage; `reset_parameters` fills it."""
    return Parameter(factories.empty(*shape))


# ------------------------------------------------------------------------------------ learnable


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty_parameter(out_features, in_features)
        self.register_parameter("bias", _empty_parameter(out_features) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_weight_and_bias(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Conv2d(Module):
    """2-D cross-correlation over (N, C, H, W); weight (out, in/groups, kH, kW)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair = 0, dilation: IntOrPair = 1,
                 groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels ({in_channels}) "
                             f"and out_channels ({out_channels})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = _pair("Conv2d", "stride", stride, 1)
        self.padding = _pair("Conv2d", "padding", padding, 0)
        self.dilation = _pair("Conv2d", "dilation", dilation, 1)
        self.weight = _empty_parameter(out_channels, in_channels // groups, *self.kernel_size)
        self.register_parameter("bias", _empty_parameter(out_channels) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_weight_and_bias(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        """Only the settings that differ from their defaults, as PyTorch prints them."""
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


# -------------------------------------------------------------------------------- normalization


class _AffineNorm(Module):
    """A normalisation, then an optional learned elementwise weight and bias. They start at
    ones and zeros, so a fresh layer is a plain normalisation."""

    def _add_affine(self, shape: tuple[int, ...], affine: bool, bias: bool) -> None:
        self.register_parameter("weight", _empty_parameter(*shape) if affine else None)
        self.register_parameter("bias", _empty_parameter(*shape) if affine and bias else None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)


class _BatchNorm(_AffineNorm):
    """Normalise each channel (dim 1) by the batch's statistics in training, by the running
    estimates in eval. The running variance is the unbiased one, as PyTorch keeps it."""

    _input_dims: tuple[int, ...]
    _optional_buffers = ("num_batches_tracked",)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self._add_affine((num_features,), affine, bias)
        if track_running_stats:
            self.register_buffer("running_mean", factories.zeros(num_features))
            self.register_buffer("running_var", factories.ones(num_features))
            self.register_buffer("num_batches_tracked", factories.tensor(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        super().reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._input_dims:
            dims = " or ".join(map(str, self._input_dims))
            raise ValueError(f"{type(self).__name__}: expected a {dims}-D input (N, C, ...), "
                             f"got shape {x.shape}")
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
        # The running estimates are read in eval and updated in training, if tracked at all.
        tracked = not self.training or self.track_running_stats
        running = (self.running_mean, self.running_var) if tracked else (None, None)
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(x, *running, self.weight, self.bias, use_batch_stats,
                            self._momentum(), self.eps)

    def _momentum(self) -> float:
        """momentum=None means a cumulative average: each batch weighs 1/(batches seen)."""
        if self.momentum is not None:
            return self.momentum
        return 1.0 / max(int(self.num_batches_tracked), 1) if self.track_running_stats else 0.0

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs."""

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel."""

    _input_dims = (4,)


class LayerNorm(_AffineNorm):
    """Normalise over the last dims (`normalized_shape`) of each sample, in training and eval."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape, self.eps = tuple(shape), eps
        self.elementwise_affine = elementwise_affine
        self._add_affine(self.normalized_shape, elementwise_affine, bias)
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1-p), so
    eval (the identity) sees the same expected activations."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability between 0 and 1, got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"


# -------------------------------------------------------------------------------------- pooling


class _Pool2d(Module):
    """Pooling over (N, C, H, W) windows; the stride defaults to the kernel size."""

    _pool: Callable[..., Tensor]

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0) -> None:
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride

    def forward(self, x: Tensor) -> Tensor:
        return self._pool(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """The maximum of each window (padding is -inf)."""

    _pool = staticmethod(F.max_pool2d)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", dilation=1, ceil_mode=False"  # the only ones supported


class AvgPool2d(_Pool2d):
    """The mean of each window (padding counts as zeros, PyTorch's count_include_pad=True)."""

    _pool = staticmethod(F.avg_pool2d)


class AdaptiveAvgPool2d(Module):
    """Average-pool to a fixed output size (1 for global average pooling)."""

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Flatten(Module):
    """Merge dims start_dim..end_dim into one: by default (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# ---------------------------------------------------------------------------------- activations


class ReLU(Module):
    """max(0, x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise (stable for large |x|)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class SiLU(Module):
    """x * sigmoid(x), also called swish."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class GELU(Module):
    """x * Phi(x); approximate='tanh' uses the tanh approximation of the normal CDF Phi."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

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

    _function = staticmethod(F.softmax)


class LogSoftmax(_SoftmaxOverDim):
    """Log-probabilities along `dim`; pair it with NLLLoss, or use cross_entropy on logits."""

    _function = staticmethod(F.log_softmax)
