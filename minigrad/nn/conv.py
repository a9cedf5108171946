"""Convolution: `conv2d` (PyTorch's cross-correlation over NCHW) and the `Conv2d` layer, and
its transpose, `conv_transpose2d` and `ConvTranspose2d` (conv2d's gradient with respect to its
input, the learned upsampling of decoders and GANs)."""

from __future__ import annotations

from typing import Any

from minigrad.nn.arguments import IntOrPair, check_4d, check_fits, pair
from minigrad.nn.linear import empty_parameter, reset_weight_and_bias
from minigrad.nn.module import Module
from minigrad.ops import pad
from minigrad.ops.nn import Conv2d as Conv2dOp
from minigrad.ops.nn import ConvTranspose2d as ConvTranspose2dOp
from minigrad.tensor import Tensor

PADDING_STRINGS = ("same", "valid")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# PyTorch's messages show these as sets: the same text every run here
STRINGS_TEXT, MODES_TEXT = "{'same', 'valid'}", "{'zeros', 'reflect', 'replicate', 'circular'}"


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
           padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) with (K, C/groups, kH, kW), plus bias (K,).
    padding="valid" is no padding; "same" pads so the output has the input's size (stride 1
    only), the odd pixel of an even total on the bottom and right, as PyTorch."""
    stride = pair("conv2d", "stride", stride, 1)
    dilation = pair("conv2d", "dilation", dilation, 1)
    check_4d("conv2d", x)
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (K, C/groups, kH, kW), got {weight.shape}")
    if isinstance(padding, str):
        x, padding = _padding_string(x, weight.shape[2:], stride, padding, dilation)
    padding = pair("conv2d", "padding", padding, 0)
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
    _check_dtypes("conv2d", x, weight, bias)
    check_fits("conv2d", x, weight.shape[2:], stride, padding, dilation)
    return Conv2dOp.apply(x, weight, bias, stride, padding, dilation, groups)


def _padding_string(x: Tensor, kernel: tuple, stride: tuple, padding: str,
                    dilation: tuple) -> tuple[Tensor, tuple[int, int]]:
    """(x, padding) for padding="valid" or "same": "same" pads dilation (k - 1) in all, half
    on each side, and an odd pixel left over goes on the bottom or right, padded into x."""
    if padding not in PADDING_STRINGS:
        raise ValueError(f"conv2d: invalid padding string {padding!r}, should be one of "
                         f"{STRINGS_TEXT}")
    if padding == "valid":
        return x, (0, 0)
    if stride != (1, 1):
        raise ValueError(f"conv2d: padding='same' is not supported for strided convolutions, "
                         f"got stride={stride}")
    before, after = same_padding(kernel, dilation)
    extra = (after[0] - before[0], after[1] - before[1])
    if extra != (0, 0):
        x = pad(x, (0, extra[1], 0, extra[0]))
    return x, before


def same_padding(kernel: tuple, dilation: tuple) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, left), (bottom, right)) of padding="same": dilation (k - 1) per dim, the
    larger half after."""
    total = [dilation[d] * (kernel[d] - 1) for d in range(2)]
    return (total[0] // 2, total[1] // 2), (total[0] - total[0] // 2, total[1] - total[1] // 2)


def _check_dtypes(op: str, x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"{op}: input, weight and bias must share a dtype, got {x.dtype}, "
                        f"{weight.dtype}" + ("" if bias is None else f", {bias.dtype}"))


def _check_groups(layer: str, in_channels: int, out_channels: int, groups: int) -> None:
    if not isinstance(groups, int) or groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(f"{layer}: groups={groups} must be a positive integer dividing "
                         f"in_channels ({in_channels}) and out_channels ({out_channels})")


class Conv2d(Module):
    """2-D cross-correlation over (N, C, H, W); weight (out, in/groups, kH, kW). padding is
    an int, a pair, "valid" or "same"; padding_mode "zeros", or "reflect", "replicate" or
    "circular" (the input padded by F.pad, then convolved unpadded, as PyTorch)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair | str = 0, dilation: IntOrPair = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros") -> None:
        super().__init__()
        _check_groups("Conv2d", in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = pair("Conv2d", "stride", stride, 1)
        self.dilation = pair("Conv2d", "dilation", dilation, 1)
        if isinstance(padding, str):
            if padding not in PADDING_STRINGS:
                raise ValueError(f"Conv2d: invalid padding string {padding!r}, should be one "
                                 f"of {STRINGS_TEXT}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"Conv2d: padding='same' is not supported for strided "
                                 f"convolutions, got stride={self.stride}")
            self.padding: tuple[int, int] | str = padding
            before, after = (same_padding(self.kernel_size, self.dilation) if padding == "same"
                             else ((0, 0), (0, 0)))
        else:
            self.padding = before = after = pair("Conv2d", "padding", padding, 0)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {MODES_TEXT}, "
                             f"but got padding_mode={padding_mode!r}")
        self.padding_mode = padding_mode
        # F.pad's widths for the padding modes other than zeros: last dim first, as PyTorch
        self._reversed_padding_repeated_twice = [before[1], after[1], before[0], after[0]]
        self.weight = empty_parameter(out_channels, in_channels // groups, *self.kernel_size)
        self.register_parameter("bias", empty_parameter(out_channels) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.padding_mode != "zeros":
            check_4d("Conv2d", x)
            x = pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)

    def extra_repr(self) -> str:
        return _conv_repr(self)


def _conv_repr(layer: Any) -> str:
    """Only the settings that differ from their defaults, as PyTorch prints them (a padding
    string bare: padding=same)."""
    text = (f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, "
            f"stride={layer.stride}")
    if layer.padding != (0, 0):
        text += f", padding={layer.padding}"
    if layer.dilation != (1, 1):
        text += f", dilation={layer.dilation}"
    if getattr(layer, "output_padding", (0, 0)) != (0, 0):
        text += f", output_padding={layer.output_padding}"
    if layer.groups != 1:
        text += f", groups={layer.groups}"
    if layer.bias is None:
        text += ", bias=False"
    if layer.padding_mode != "zeros":
        text += f", padding_mode={layer.padding_mode}"
    return text


# --------------------------------------------------------------------------------- transposed


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int,
                               output_padding: int, dilation: int) -> int:
    """PyTorch's (size - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1:
    the input size of the conv2d whose input gradient this is."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: IntOrPair = 1, padding: IntOrPair = 0,
                     output_padding: IntOrPair = 0, groups: int = 1,
                     dilation: IntOrPair = 1) -> Tensor:
    """The transposed convolution of (N, in, H, W) with weight (in, out/groups, kH, kW), plus
    bias (out,): conv2d's gradient with respect to its input. `output_padding` (smaller than
    the stride or the dilation) adds rows and columns on the bottom and right, to pick one of
    the input sizes that a strided conv2d maps to the same output size."""
    op = "conv_transpose2d"
    stride = pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    output_padding = pair(op, "output_padding", output_padding, 0)
    dilation = pair(op, "dilation", dilation, 1)
    check_4d(op, input)
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D (in_channels, out_channels/groups, kH, kW), "
                         f"got {weight.shape}")
    c = weight.shape[0]
    if not isinstance(groups, int) or groups < 1 or c % groups:
        raise ValueError(f"{op}: groups={groups} must be a positive integer dividing the "
                         f"input channels ({c}); input {input.shape}, weight {weight.shape}")
    if input.shape[1] != c:
        raise ValueError(f"{op}: input {input.shape} has {input.shape[1]} channels but weight "
                         f"{weight.shape} (in_channels, out_channels/groups, kH, kW) expects {c}")
    out_channels = weight.shape[1] * groups
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},), got {bias.shape}")
    _check_dtypes(op, input, weight, bias)
    if not all(output_padding[d] < stride[d] or output_padding[d] < dilation[d]
               for d in range(2)):
        raise ValueError(f"{op}: output padding must be smaller than either stride or "
                         f"dilation, got output_padding={output_padding}, stride={stride}, "
                         f"dilation={dilation}")
    out_hw = tuple(conv_transpose_output_size(input.shape[2 + d], weight.shape[2 + d],
                                              stride[d], padding[d], output_padding[d],
                                              dilation[d]) for d in range(2))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output would be {out_hw} for input {input.shape}, weight "
                         f"{weight.shape}, stride {stride}, padding {padding}, output_padding "
                         f"{output_padding}, dilation {dilation}: too small")
    return ConvTranspose2dOp.apply(input, weight, bias, stride, padding, output_padding,
                                   dilation, groups)


class ConvTranspose2d(Module):
    """The transposed 2-D convolution over (N, C, H, W), as PyTorch's: weight (in,
    out/groups, kH, kW), output size (H - 1) stride - 2 padding + dilation (kH - 1) +
    output_padding + 1. `forward(x, output_size)` picks the output_padding that gives
    output_size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair = 0, output_padding: IntOrPair = 0,
                 groups: int = 1, bias: bool = True, dilation: IntOrPair = 1,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f'ConvTranspose2d: only "zeros" padding mode is supported, got '
                             f"padding_mode={padding_mode!r}")
        _check_groups("ConvTranspose2d", in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair("ConvTranspose2d", "kernel_size", kernel_size, 1)
        self.stride = pair("ConvTranspose2d", "stride", stride, 1)
        self.padding = pair("ConvTranspose2d", "padding", padding, 0)
        self.output_padding = pair("ConvTranspose2d", "output_padding", output_padding, 0)
        self.dilation = pair("ConvTranspose2d", "dilation", dilation, 1)
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = [self.padding[1], self.padding[1],
                                                 self.padding[0], self.padding[0]]
        # PyTorch's shape: kaiming_uniform_'s fan_in is then (out/groups) kH kW
        self.weight = empty_parameter(in_channels, out_channels // groups, *self.kernel_size)
        self.register_parameter("bias", empty_parameter(out_channels) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        output_padding = (self.output_padding if output_size is None
                          else self._output_padding(input, output_size))
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                output_padding, self.groups, self.dilation)

    def _output_padding(self, input: Tensor, output_size: Any) -> tuple[int, int]:
        """The output_padding that makes the output (H, W) = output_size (its last two
        entries; (N, C, H, W) works too): each must lie between the size without
        output_padding and that plus stride - 1."""
        check_4d("ConvTranspose2d", input)
        sizes = tuple(output_size)
        if len(sizes) == 4:
            sizes = sizes[2:]
        if len(sizes) != 2:
            raise ValueError(f"ConvTranspose2d: for 4D input, output_size must have 2 or 4 "
                             f"elements (got {len(sizes)})")
        smallest = [conv_transpose_output_size(input.shape[2 + d], self.kernel_size[d],
                                               self.stride[d], self.padding[d], 0,
                                               self.dilation[d]) for d in range(2)]
        largest = [smallest[d] + self.stride[d] - 1 for d in range(2)]
        if not all(smallest[d] <= sizes[d] <= largest[d] for d in range(2)):
            raise ValueError(f"ConvTranspose2d: requested an output size of {output_size}, but "
                             f"valid sizes range from {smallest} to {largest} (for an input "
                             f"of {input.shape[2:]})")
        return sizes[0] - smallest[0], sizes[1] - smallest[1]

    def extra_repr(self) -> str:
        return _conv_repr(self)
