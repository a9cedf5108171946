"""Argument checks the layers share: sizes given as an int or a pair, 4-D inputs, kernels that
fit, and optional parameters of the right shape and dtype. Each names the function it checks for."""

from __future__ import annotations

from typing import Any

from minigrad.autograd import describe
from minigrad.backends.geometry import conv_output_size
from minigrad.tensor import Tensor

IntOrPair = int | tuple[int, int]


def pair(op: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or a pair of them, "
                         f"got {value!r}")
    return pair


def check_4d(op: str, x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def check_fits(op: str, x: Tensor, kernel, stride, padding, dilation, extra: str = "") -> None:
    """The (dilated) kernel must fit inside the padded input: at least one output pixel."""
    for d in range(2):
        if conv_output_size(x.shape[2 + d], kernel[d], stride[d], padding[d], dilation[d]) < 1:
            raise ValueError(
                f"{op}: kernel {kernel} (dilation {dilation}) is larger than the padded input: "
                f"input {x.shape} with padding {padding}{extra}")


def check_param(op: str, name: str, value: Tensor | None, shape: tuple[int, ...],
                 input: Tensor) -> None:
    """An optional weight, bias or running statistic must have `shape` (and, for weight and
    bias, the input's dtype)."""
    if value is None:
        return
    if not isinstance(value, Tensor) or value.shape != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)} for input "
                         f"{input.shape}, got {describe(value)}")
    if name in ("weight", "bias") and value.dtype != input.dtype:
        raise TypeError(f"{op}: {name} must have the input's dtype {input.dtype}, got "
                        f"{describe(value)}")
