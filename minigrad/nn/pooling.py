"""Pooling over NCHW windows: max, average, adaptive average and adaptive max, functions and
layers, with PyTorch's arguments and semantics.

Output sizes round down, or up with ceil_mode (where the last window must still start inside
the input or its left padding). Max pooling pads with -inf; average pooling sums the window with
padding as zeros and divides by the window's size clipped to the padded input
(count_include_pad=True), by its real elements only (count_include_pad=False) or by
divisor_override. Adaptive pooling gives output i the rows floor(i H / OH) to ceil((i+1) H / OH).

The backends' kernels pool fixed windows with symmetric padding and floor sizes; the rest is
built around them: ceil_mode pads the far sides a little more, divisors other than the kernel's
size are a constant scale per output, and max pooling that needs positions (dilation,
return_indices, adaptive windows) finds them and the maxima without a graph, then hands both to
`MaxPoolAt`, which routes the gradient.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from minigrad.autograd import array_module
from minigrad.backends import kernels_for
from minigrad.nn.arguments import IntOrPair, check_4d, pair
from minigrad.nn.module import Module
from minigrad.ops.nn import AvgPool2d as AvgPool2dOp
from minigrad.ops.nn import MaxPool2d as MaxPool2dOp
from minigrad.ops.pooling import AdaptiveAvgPool2d as AdaptiveAvgPool2dOp
from minigrad.ops.pooling import MaxPoolAt
from minigrad.ops.shape import pad
from minigrad.tensor import Tensor

Pair = tuple[int, int]
SizePair = int | None | tuple[int | None, int | None]

# ------------------------------------------------------------------------------ window geometry


def pooled_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                ceil_mode: bool) -> int:
    """PyTorch's output size: (size + 2 padding - dilation (kernel - 1) - 1) / stride + 1
    rounded down, or up with ceil_mode unless the last window would start past the input and
    its left padding (it would hold right padding only)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _every_window_reads_input(size: int, kernel: int, stride: int, padding: int,
                              dilation: int, out: int) -> bool:
    """Whether each of the `out` windows has a tap inside the input (a dilated window can
    straddle a small input, its taps all in the padding)."""
    taps = np.arange(out)[:, None] * stride - padding + np.arange(kernel) * dilation
    return bool(((taps >= 0) & (taps < size)).any(axis=1).all())


class _Geometry:
    """The checked arguments of one max or average pooling call and the sizes they give."""

    def __init__(self, op: str, x: Tensor, kernel_size, stride, padding, dilation,
                 ceil_mode: bool) -> None:
        self.kernel = pair(op, "kernel_size", kernel_size, 1)
        self.stride = self.kernel if stride is None else pair(op, "stride", stride, 1)
        self.padding = pair(op, "padding", padding, 0)
        self.dilation = pair(op, "dilation", dilation, 1)
        check_4d(op, x)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel)):
            raise ValueError(f"{op}: padding {self.padding} must be at most half of kernel_size "
                             f"{self.kernel}")
        self.in_hw = x.shape[2:]
        self.out_hw = tuple(pooled_size(self.in_hw[d], self.kernel[d], self.stride[d],
                                        self.padding[d], self.dilation[d], ceil_mode)
                            for d in range(2))
        if min(self.out_hw) < 1:
            raise ValueError(f"{op}: kernel {self.kernel} (dilation {self.dilation}) is larger "
                             f"than the padded input: input {x.shape} with padding "
                             f"{self.padding}")
        if self.dilation != (1, 1) and not all(
                _every_window_reads_input(*args) for args in zip(
                    self.in_hw, self.kernel, self.stride, self.padding, self.dilation,
                    self.out_hw)):
            raise ValueError(f"{op}: with dilation {self.dilation} some windows read padding "
                             f"only (input {x.shape}, kernel {self.kernel}, padding "
                             f"{self.padding}); PyTorch gives -inf and indices outside the "
                             f"input there, which is not supported")
        # ceil_mode's last window may run past the right (bottom) padding: pad that much more
        self.extra = tuple(max(0, (self.out_hw[d] - 1) * self.stride[d]
                               + self.dilation[d] * (self.kernel[d] - 1) + 1
                               - self.in_hw[d] - 2 * self.padding[d]) for d in range(2))

    def pad_extra(self, x: Tensor, value: float) -> Tensor:
        """x with the extra bottom rows and right columns the last windows reach (a graph op)."""
        return pad(x, (0, self.extra[1], 0, self.extra[0]), value=value) if any(self.extra) else x


def _check_bool(op: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be a bool, got {value!r}")


# -------------------------------------------------------------------------------- max pooling


def max_pool2d(input: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    """The maximum of each window (padding is -inf); with return_indices, (values, indices),
    the indices flat positions in each (H, W) plane of the input (int64), as PyTorch."""
    _check_bool("max_pool2d", "ceil_mode", ceil_mode)
    g = _Geometry("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    if g.dilation == (1, 1) and not return_indices:  # the backend's kernel does it all
        return MaxPool2dOp.apply(g.pad_extra(input, -math.inf), g.kernel, g.stride, g.padding)
    index, maxima = _max_positions(input.array, g)
    values = MaxPoolAt.apply(input, index, maxima)
    return (values, Tensor._wrap(index)) if return_indices else values


def _max_positions(array: Any, g: _Geometry) -> Any:
    """The flat (H, W) position of each window's maximum, int64 (N, C, OH, OW), and the
    maxima. No graph: `MaxPoolAt` makes them differentiable."""
    xp = array_module([array])
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
    (oh, ow), (eh, ew) = g.out_hw, g.extra
    if g.dilation == (1, 1):  # the kernel's argmax, the offset in the window (its first maximum)
        padded = array if not any(g.extra) else xp.pad(
            array, ((0, 0), (0, 0), (0, eh), (0, ew)), constant_values=-math.inf)
        maxima, tap = kernels_for(xp).maxpool2d_forward(padded, g.kernel, g.stride, g.padding)
        tap = tap.astype(np.int64)
        rows = xp.arange(oh, dtype=np.int64)[:, None] * sh - ph + tap // kw
        cols = xp.arange(ow, dtype=np.int64) * sw - pw + tap % kw
        # A window of -inf gives its first element, padding where the window starts there;
        # PyTorch's index is then the window's first input element: clip to the input.
        return xp.maximum(rows, 0) * g.in_hw[1] + xp.maximum(cols, 0), maxima
    padded = xp.pad(array, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)),
                    constant_values=-math.inf)
    # Start from -inf at each window's first input tap (PyTorch's index for a window of -inf;
    # every window has one, _Geometry checks) and let the taps, -inf padding included, compete.
    first = [_first_input_tap(*args) for args in zip(g.in_hw, g.kernel, g.stride, g.padding,
                                                      g.dilation, g.out_hw)]
    which = xp.empty((*array.shape[:2], oh, ow), _tap_dtype(kh * kw))
    which[...] = xp.asarray(first[0][:, None] * kw + first[1])
    best = xp.full(which.shape, -math.inf, array.dtype)
    taps = (padded[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            for i in range(kh) for j in range(kw))
    which = _running_max(xp, best, which, taps)
    i = which // kw  # the tap's row and column in the window, in the small integer type
    j = which - i * kw
    rows = xp.arange(oh, dtype=np.int64)[:, None] * sh - ph + i.astype(np.int64) * dh
    cols = xp.arange(ow, dtype=np.int64) * sw - pw + j.astype(np.int64) * dw
    return rows * g.in_hw[1] + cols, best


def _first_input_tap(size: int, kernel: int, stride: int, padding: int, dilation: int,
                     out: int) -> np.ndarray:
    """For each of the `out` windows, the first of its taps that falls inside the input."""
    taps = np.arange(out)[:, None] * stride - padding + np.arange(kernel) * dilation
    return ((taps >= 0) & (taps < size)).argmax(axis=1)


def _tap_dtype(taps: int) -> Any:
    """The smallest integer type that numbers `taps` taps: the running maximum updates its tap
    numbers with arithmetic over them, several times faster on bytes than on int64."""
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if taps <= np.iinfo(t).max)


def _running_max(xp: Any, best: Any, which: Any, taps: Any, start: int = 0) -> Any:
    """Tap number `start + k` of `taps` replaces the running maximum `best` (updated in place)
    where it is larger or NaN, PyTorch's rule: the first maximum wins a tie, the last NaN is
    taken. `which` (updated in place) holds the winning tap numbers, and is returned."""
    for k, values in enumerate(taps, start):
        wins = values > best
        wins |= xp.isnan(values)
        xp.maximum(best, values, out=best)  # NaN stays: only a later NaN replaces it
        which -= wins * (which - which.dtype.type(k))  # k where it wins, without branches
    return which


class MaxPool2d(Module):
    """The maximum of each window (padding is -inf); the stride defaults to the kernel size."""

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor) -> Any:
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


# ---------------------------------------------------------------------------- average pooling


def avg_pool2d(input: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """The mean of each window: its sum (padding as zeros) over the window's size clipped to
    the padded input, over its input elements only (count_include_pad=False), or over
    divisor_override."""
    _check_bool("avg_pool2d", "ceil_mode", ceil_mode)
    _check_bool("avg_pool2d", "count_include_pad", count_include_pad)
    if divisor_override is not None and (not isinstance(divisor_override, int)
                                         or isinstance(divisor_override, bool)):
        raise TypeError(f"avg_pool2d: divisor_override must be an int or None, got "
                        f"{divisor_override!r}")
    if divisor_override == 0:
        raise ValueError("avg_pool2d: divisor_override must not be 0")
    g = _Geometry("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    # the kernel divides each window's sum by kH * kW; `scale` turns that into the divisor
    out = AvgPool2dOp.apply(g.pad_extra(input, 0.0), g.kernel, g.stride, g.padding)
    scale = _avg_scale(g.in_hw, g.kernel, g.stride, g.padding, g.out_hw, count_include_pad,
                       divisor_override, str(input.dtype))
    return out if scale is None else out * scale


@functools.lru_cache(maxsize=256)
def _avg_scale(in_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair,
               count_include_pad: bool, divisor_override: int | None, dtype: str) -> Any:
    """kH kW / divisor for each output (OH, OW), or None where that is 1 everywhere (floor
    sizes counting the padding: the kernel's own mean). A constant, once per geometry."""
    sizes = []
    for d in range(2):
        start = np.arange(out_hw[d]) * stride[d] - padding[d]
        end = np.minimum(start + kernel[d], in_hw[d] + padding[d])  # clipped to the padding
        inside = np.minimum(end, in_hw[d]) - np.maximum(start, 0)  # the input elements
        sizes.append(end - start if count_include_pad else inside)
    divisor = (np.outer(*sizes) if divisor_override is None
               else np.full(out_hw, divisor_override))
    if np.all(divisor == kernel[0] * kernel[1]):
        return None
    scale = (kernel[0] * kernel[1] / divisor).astype(dtype)
    scale.flags.writeable = False
    return scale


class AvgPool2d(Module):
    """The mean of each window (see `avg_pool2d`); the stride defaults to the kernel size."""

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


# --------------------------------------------------------------------------- adaptive pooling


def _adaptive_size(op: str, x: Tensor, output_size: SizePair) -> Pair:
    """(OH, OW) from an int or a pair (None keeps that side of the input)."""
    size = (output_size, output_size) if not isinstance(output_size, (tuple, list)) \
        else tuple(output_size)
    if len(size) != 2 or not all(s is None or (isinstance(s, int) and not isinstance(s, bool)
                                               and s >= 0) for s in size):
        raise ValueError(f"{op}: output_size must be an int >= 0, None or a pair of them, "
                         f"got {output_size!r}")
    check_4d(op, x)
    if 0 in x.shape[1:]:
        raise ValueError(f"{op}: input {x.shape} is empty in a dim other than the batch")
    return tuple(x.shape[2 + d] if s is None else s for d, s in enumerate(size))


def _adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Output i pools input rows start[i] = floor(i size / out) to end[i] = ceil((i+1) size / out)
    (exclusive), as PyTorch."""
    i = np.arange(out)
    return i * size // out, -(-(i + 1) * size // out)


def _divides(in_hw: Pair, out_hw: Pair) -> bool:
    """Whether the windows are the fixed kernel in/out at stride in/out (the kernels' case)."""
    return all(o > 0 and n % o == 0 for n, o in zip(in_hw, out_hw))


@functools.lru_cache(maxsize=256)
def _averaging_matrix(size: int, out: int, dtype: str) -> np.ndarray:
    """(out, size): row i averages output i's window."""
    start, end = _adaptive_windows(size, out)
    inside = (np.arange(size) >= start[:, None]) & (np.arange(size) < end[:, None])
    matrix = (inside / (end - start)[:, None]).astype(dtype)
    matrix.flags.writeable = False
    return matrix


def adaptive_avg_pool2d(input: Tensor, output_size: SizePair) -> Tensor:
    """Average-pool to (OH, OW): output i averages input rows floor(i H / OH) to
    ceil((i+1) H / OH), and the same for columns."""
    out_hw = _adaptive_size("adaptive_avg_pool2d", input, output_size)
    in_hw = input.shape[2:]
    if out_hw == (1, 1):  # global average pooling
        return input.mean(dim=(2, 3), keepdim=True)
    if _divides(in_hw, out_hw):
        kernel = (in_hw[0] // out_hw[0], in_hw[1] // out_hw[1])
        return AvgPool2dOp.apply(input, kernel, kernel, (0, 0))
    dtype = str(input.dtype)
    return AdaptiveAvgPool2dOp.apply(input, _averaging_matrix(in_hw[0], out_hw[0], dtype),
                                     _averaging_matrix(in_hw[1], out_hw[1], dtype))


def adaptive_max_pool2d(input: Tensor, output_size: SizePair, return_indices: bool = False) -> Any:
    """Max-pool to (OH, OW) over adaptive_avg_pool2d's windows; with return_indices,
    (values, indices) as max_pool2d."""
    out_hw = _adaptive_size("adaptive_max_pool2d", input, output_size)
    in_hw = input.shape[2:]
    if _divides(in_hw, out_hw) and not return_indices:
        kernel = (in_hw[0] // out_hw[0], in_hw[1] // out_hw[1])
        return MaxPool2dOp.apply(input, kernel, kernel, (0, 0))
    index, maxima = _adaptive_max_positions(input.array, out_hw)
    values = MaxPoolAt.apply(input, index, maxima)
    return (values, Tensor._wrap(index)) if return_indices else values


@functools.lru_cache(maxsize=256)
def _window_taps(size: int, out: int) -> np.ndarray:
    """(out, longest window): the rows of each output's window, the last one repeated to fill
    the shorter windows (a repeat never changes the maximum, nor which comes first)."""
    start, end = _adaptive_windows(size, out)
    longest = int((end - start).max(initial=1))
    taps = np.minimum(start[:, None] + np.arange(longest), end[:, None] - 1)
    taps.flags.writeable = False
    return taps


def _adaptive_max_positions(array: Any, out_hw: Pair) -> Any:
    """The flat (H, W) position of each adaptive window's maximum, int64 (N, C, OH, OW), and
    the maxima: tap (i, j) of every window at once. Channels-last, so that each gather copies
    whole channel vectors (free for channels-last inputs; along W in NCHW it would go element
    by element)."""
    xp = array_module([array])
    h, w = array.shape[2:]
    rows, cols = (xp.asarray(_window_taps(n, o)) for n, o in zip((h, w), out_hw))
    kh, kw = rows.shape[1], cols.shape[1]
    nhwc = xp.ascontiguousarray(array.transpose(0, 2, 3, 1))
    by_row = [xp.take(nhwc, rows[:, i], axis=1) for i in range(kh)]  # (N, OH, W, C) each
    taps = (xp.take(by_row[i], cols[:, j], axis=2) for i in range(kh) for j in range(kw))
    best = next(taps).copy()  # tap (0, 0), each window's first element
    which = _running_max(xp, best, xp.zeros(best.shape, _tap_dtype(kh * kw)), taps, start=1)
    i = which // kw  # the tap's row and column in the window, in the small integer type
    j = which - i * kw
    # rows[oh, i] and cols[ow, j], by arithmetic (a gather from the tables is slower)
    row = xp.minimum(rows[:, :1, None] + i, rows[:, -1:, None])
    col = xp.minimum(cols[:, :1] + j, cols[:, -1:])
    return (row * w + col).transpose(0, 3, 1, 2), best.transpose(0, 3, 1, 2)


class AdaptiveAvgPool2d(Module):
    """Average-pool to a fixed output size (1 for global average pooling)."""

    def __init__(self, output_size: SizePair) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max-pool to a fixed output size; with return_indices, (values, indices)."""

    def __init__(self, output_size: SizePair, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
