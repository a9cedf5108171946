"""Pooling over NCHW windows: max, average and adaptive average, functions and layers.

Semantics are PyTorch's: floor output sizes, max pooling pads with -inf, average pooling counts
padding in its divisor.
"""

from __future__ import annotations

from collections.abc import Callable

from minigrad.nn.arguments import IntOrPair, check_4d, check_fits, pair
from minigrad.nn.module import Module
from minigrad.ops.nn import AvgPool2d as AvgPool2dOp
from minigrad.ops.nn import MaxPool2d as MaxPool2dOp
from minigrad.tensor import Tensor


def _pool_args(op: str, x: Tensor, kernel_size, stride, padding):
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    check_4d(op, x)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half of kernel_size {kernel}")
    check_fits(op, x, kernel, stride, padding, (1, 1))
    return kernel, stride, padding


def max_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0) -> Tensor:
    """Maximum over each window; stride defaults to the kernel size; padding is -inf."""
    return MaxPool2dOp.apply(x, *_pool_args("max_pool2d", x, kernel_size, stride, padding))


def avg_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0) -> Tensor:
    """Mean over each window (padding counts as zeros, count_include_pad=True)."""
    return AvgPool2dOp.apply(x, *_pool_args("avg_pool2d", x, kernel_size, stride, padding))


def adaptive_avg_pool2d(x: Tensor, output_size: IntOrPair) -> Tensor:
    """Average-pool to a fixed (OH, OW): output 1 (global pooling) or sizes dividing H and W."""
    check_4d("adaptive_avg_pool2d", x)
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    size = tuple(x.shape[2 + d] if s is None else s for d, s in enumerate(size))
    if size == (1, 1):
        return x.mean(dim=(2, 3), keepdim=True)
    h, w = x.shape[2:]
    if len(size) != 2 or min(size) < 1 or h % size[0] or w % size[1]:
        raise ValueError(f"adaptive_avg_pool2d: output size {output_size} must be 1 or divide "
                         f"the input size {(h, w)} (input {x.shape})")
    kernel = (h // size[0], w // size[1])
    return AvgPool2dOp.apply(x, kernel, kernel, (0, 0))


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

    _pool = staticmethod(max_pool2d)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", dilation=1, ceil_mode=False"  # the only ones supported


class AvgPool2d(_Pool2d):
    """The mean of each window (padding counts as zeros, PyTorch's count_include_pad=True)."""

    _pool = staticmethod(avg_pool2d)


class AdaptiveAvgPool2d(Module):
    """Average-pool to a fixed output size (1 for global average pooling)."""

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
