"""Convolution: `conv2d` (PyTorch's cross-correlation over NCHW) and the `Conv2d` layer."""

from __future__ import annotations

from minigrad.nn.arguments import IntOrPair, check_4d, check_fits, pair
from minigrad.nn.linear import empty_parameter, reset_weight_and_bias
from minigrad.nn.module import Module
from minigrad.ops.nn import Conv2d as Conv2dOp
from minigrad.tensor import Tensor


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
           padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) with (K, C/groups, kH, kW), plus bias (K,)."""
    stride = pair("conv2d", "stride", stride, 1)
    padding = pair("conv2d", "padding", padding, 0)
    dilation = pair("conv2d", "dilation", dilation, 1)
    check_4d("conv2d", x)
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
    check_fits("conv2d", x, weight.shape[2:], stride, padding, dilation)
    return Conv2dOp.apply(x, weight, bias, stride, padding, dilation, groups)


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
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = pair("Conv2d", "stride", stride, 1)
        self.padding = pair("Conv2d", "padding", padding, 0)
        self.dilation = pair("Conv2d", "dilation", dilation, 1)
        self.weight = empty_parameter(out_channels, in_channels // groups, *self.kernel_size)
        self.register_parameter("bias", empty_parameter(out_channels) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
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
