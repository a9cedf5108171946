"""Stateless neural-network functions, as `torch.nn.functional` (imported as F).

Semantics are PyTorch's: NCHW, cross-correlation, floor output sizes, max pooling pads with -inf,
average pooling counts padding in its divisor. Arguments are checked here, before any kernel
runs, so a mistake names the function and the shapes involved.
"""

from __future__ import annotations

from typing import Any

from minigrad.backends.base import conv_output_size
from minigrad.ops import gelu, log_softmax, pad, relu, sigmoid, silu, softmax, tanh
from minigrad.ops.nn import AvgPool2d, Conv2d, Linear, MaxPool2d
from minigrad.tensor import Tensor

IntOrPair = int | tuple[int, int]


def _pair(op: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or a pair of them, "
                         f"got {value!r}")
    return pair


def _check_4d(op: str, x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def _check_fits(op: str, x: Tensor, kernel, stride, padding, dilation, extra: str = "") -> None:
    """The (dilated) kernel must fit inside the padded input: at least one output pixel."""
    for d in range(2):
        if conv_output_size(x.shape[2 + d], kernel[d], stride[d], padding[d], dilation[d]) < 1:
            raise ValueError(
                f"{op}: kernel {kernel} (dilation {dilation}) is larger than the padded input: "
                f"input {x.shape} with padding {padding}{extra}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
           padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) with (K, C/groups, kH, kW), plus bias (K,)."""
    stride = _pair("conv2d", "stride", stride, 1)
    padding = _pair("conv2d", "padding", padding, 0)
    dilation = _pair("conv2d", "dilation", dilation, 1)
    _check_4d("conv2d", x)
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (K, C/groups, kH, kW), got {weight.shape}")
    k, cg = weight.shape[:2]
    if not isinstance(groups, int) or groups < 1 or x.shape[1] % groups or k % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both the input channels "
                         f"({x.shape[1]}) and the output channels ({k}); input {x.shape}, "
                         f"weight {weight.shape}")
    if x.shape[1] != cg * groups:
        raise ValueError(f"conv2d: input {x.shape} has {x.shape[1]} channels but weight "
                         f"{weight.shape} with groups={groups} expects {cg * groups}")
    if bias is not None and bias.shape != (k,):
        raise ValueError(f"conv2d: bias must have shape ({k},), got {bias.shape}")
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"conv2d: input, weight and bias must share a dtype, got {x.dtype}, "
                        f"{weight.dtype}" + ("" if bias is None else f", {bias.dtype}"))
    _check_fits("conv2d", x, weight.shape[2:], stride, padding, dilation)
    return Conv2d.apply(x, weight, bias, stride, padding, dilation, groups)


def _pool_args(op: str, x: Tensor, kernel_size, stride, padding):
    kernel = _pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair(op, "stride", stride, 1)
    padding = _pair(op, "padding", padding, 0)
    _check_4d(op, x)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half of kernel_size {kernel}")
    _check_fits(op, x, kernel, stride, padding, (1, 1))
    return kernel, stride, padding


def max_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0) -> Tensor:
    """Maximum over each window; stride defaults to the kernel size; padding is -inf."""
    return MaxPool2d.apply(x, *_pool_args("max_pool2d", x, kernel_size, stride, padding))


def avg_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0) -> Tensor:
    """Mean over each window (padding counts as zeros, count_include_pad=True)."""
    return AvgPool2d.apply(x, *_pool_args("avg_pool2d", x, kernel_size, stride, padding))


def adaptive_avg_pool2d(x: Tensor, output_size: IntOrPair) -> Tensor:
    """Average-pool to a fixed (OH, OW): output 1 (global pooling) or sizes dividing H and W."""
    _check_4d("adaptive_avg_pool2d", x)
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    size = tuple(x.shape[2 + d] if s is None else s for d, s in enumerate(size))
    if size == (1, 1):
        return x.mean(dim=(2, 3), keepdim=True)
    h, w = x.shape[2:]
    if len(size) != 2 or min(size) < 1 or h % size[0] or w % size[1]:
        raise ValueError(f"adaptive_avg_pool2d: output size {output_size} must be 1 or divide "
                         f"the input size {(h, w)} (input {x.shape})")
    kernel = (h // size[0], w // size[1])
    return AvgPool2d.apply(x, kernel, kernel, (0, 0))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x W^T + b with W of shape (out_features, in_features), as PyTorch."""
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input {x.shape} needs a last dim equal to the weight's "
                         f"in_features; weight {weight.shape} is (out_features, in_features)")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return Linear.apply(x, weight, bias)


__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "conv2d", "gelu", "linear", "log_softmax",
           "max_pool2d", "pad", "relu", "sigmoid", "silu", "softmax", "tanh"]
