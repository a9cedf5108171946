"""Resizing images: `interpolate` (PyTorch's F.interpolate over (N, C, H, W)) and the
`Upsample` layers.

Each axis is resampled on its own (`minigrad.ops.nn.Taps`: which input pixels each output
reads, and with what weight), by PyTorch's index rules, so results match its CPU kernels:

- nearest: output i reads input floor(i * scale), nearest-exact floor((i + 1/2) * scale),
  scale = 1 / scale_factor where a scale factor is given (and recompute_scale_factor is not
  True), else in / out, rounded as PyTorch's CPU kernels round it (`_nearest`);
- bilinear: output i sits at source position scale (i + 1/2) - 1/2 (clamped at 0), or
  i (in - 1) / (out - 1) with align_corners=True, and mixes the two pixels around it;
- area: adaptive average pooling to the output size.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np

from minigrad.nn.module import Module
from minigrad.nn.pooling import adaptive_avg_pool2d
from minigrad.ops.nn import Resample2d, Taps
from minigrad.tensor import Tensor

MODES = ("nearest", "nearest-exact", "bilinear", "area")
UNSUPPORTED_MODES = ("linear", "bicubic", "trilinear", "lanczos")
SUPPORTED = ("supported: 4-D (N, C, H, W) inputs, modes 'nearest', 'nearest-exact', "
             "'bilinear', 'area'")


def interpolate(input: Tensor, size: Any = None, scale_factor: Any = None,
                mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize (N, C, H, W) to `size` (an int or (H, W)) or by `scale_factor` (a number or a
    pair: the output is floor(H * scale_factor)), as PyTorch's F.interpolate."""
    op = "interpolate"
    if mode not in MODES:
        raise ValueError(f"{op}: mode {mode!r} is not supported; {SUPPORTED}"
                         + (" (PyTorch's 'linear', 'bicubic', 'trilinear' and 'lanczos' are "
                            "not implemented)" if mode in UNSUPPORTED_MODES else ""))
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners option can only be set with the "
                             f"interpolating modes: linear | bilinear | bicubic | trilinear, "
                             f"got mode={mode!r}")
    elif align_corners is None:
        align_corners = False
    if not isinstance(input, Tensor) or input.ndim != 4:
        shape = input.shape if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got {shape}; {SUPPORTED}")
    if antialias:
        raise ValueError(f"{op}: antialias=True is not supported")
    in_hw = input.shape[2:]
    out_hw, scales = _output_size(input, size, scale_factor, recompute_scale_factor,
                                  force_recompute=mode == "area")
    if min(out_hw) < 1:
        raise ValueError(f"{op}: input and output sizes should be greater than 0, but got "
                         f"input (H: {in_hw[0]}, W: {in_hw[1]}) output (H: {out_hw[0]}, W: "
                         f"{out_hw[1]})")
    if mode == "area":
        return adaptive_avg_pool2d(input, out_hw)
    if mode == "bilinear" and input.dtype.kind != "f":
        raise TypeError(f"{op}: bilinear interpolation needs a floating-point input, got "
                        f"{input.dtype}")
    dtype, small = input.dtype.str, out_hw[0] + out_hw[1] <= 128
    rows, cols = (_taps(in_hw[d], out_hw[d], scales[d], mode, align_corners, dtype, small)
                  for d in range(2))
    return Resample2d.apply(input, rows=rows, cols=cols)


def _output_size(input: Tensor, size: Any, scale_factor: Any, recompute: bool | None,
                 force_recompute: bool) -> tuple[tuple[int, int], tuple]:
    """((OH, OW), the scale per axis that the index rules use, None where they use in/out),
    with PyTorch's checks and messages."""
    op, in_hw = "interpolate", input.shape[2:]
    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError(f"{op}: either size or scale_factor should be defined")
    if size is not None:
        if recompute:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an "
                             f"explicit size.")
        sizes = _two(op, "size", size, in_hw)
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sizes):
            raise TypeError(f"{op}: expected size to be one of int or Tuple[int, int], but got "
                            f"size with types {[type(s) for s in sizes]}")
        return (int(sizes[0]), int(sizes[1])), (None, None)
    factors = _two(op, "scale_factor", scale_factor, in_hw)
    if not all(isinstance(f, numbers.Real) and not isinstance(f, bool) for f in factors):
        raise TypeError(f"{op}: scale_factor must be a number or a pair of numbers, got "
                        f"{scale_factor!r}")
    factors = tuple(float(f) for f in factors)
    # PyTorch truncates the product (a float64) to an integer
    out_hw = tuple(int(in_hw[d] * factors[d]) for d in range(2))
    keep = not (recompute or force_recompute)
    return out_hw, factors if keep else (None, None)


def _two(op: str, name: str, value: Any, in_hw: tuple) -> tuple:
    if not isinstance(value, (list, tuple)):
        return value, value
    if len(value) != 2:
        what = "output size" if name == "size" else "scale_factor of shape"
        raise ValueError(f"{op}: input and {name} must have the same number of spatial "
                         f"dimensions, but got input with spatial dimensions of {list(in_hw)} "
                         f"and {what} {value}. Please provide input tensor in (N, C, H, W) "
                         f"format and {name} in (h, w) format.")
    return tuple(value)


@functools.lru_cache(maxsize=512)
def _taps(in_size: int, out_size: int, scale: float | None, mode: str,
          align_corners: bool | None, dtype: str, small: bool) -> Taps:
    """One axis's taps by PyTorch's rules (the module docstring's list). `small`: the output
    has OH + OW <= 128, where PyTorch's forward takes its other kernel (see _nearest)."""
    if mode == "bilinear":
        return _linear_taps(in_size, out_size, scale, align_corners, np.dtype(dtype))
    exact = mode == "nearest-exact"
    # PyTorch's backward always picks sources the way its small-output forward does
    backward = _nearest(in_size, out_size, scale, exact)
    forward = backward if small else _nearest(in_size, out_size, scale, exact, np.dtype(dtype))
    identity = bool((forward == np.arange(out_size)).all() and out_size == in_size)
    return Taps(in_size, _frozen(forward), identity=identity,
                grad_index=None if forward is backward else _frozen(backward))


def _nearest(in_size: int, out_size: int, scale: float | None, exact: bool,
             dtype: np.dtype | None = None) -> np.ndarray:
    """The source pixel of each output, as one of PyTorch's two CPU kernels picks it.

    dtype None: the kernel for outputs with OH + OW <= 128 (and PyTorch's backward), in
    float32: floorf(i * scale), or for nearest-exact floorf((i + 0.5) * scale) with the
    product in double; nearest copies when out = in and halves the index when out = 2 in.
    Else the other kernel, in float64 for float64 inputs and float32 for the rest: i * scale,
    or for nearest-exact max(scale (i + 0.5) - 0.5, 0) + 0.5, rounded to float32 and floored.
    The two differ where i * in / out is a whole number that one rounding falls short of."""
    index = np.arange(out_size)
    if dtype is None:
        if not exact and out_size == in_size:
            return index
        if not exact and out_size == 2 * in_size:
            return index // 2
        ratio = _ratio(np.float32, in_size, out_size, scale)
        source = (index.astype(np.float32) * ratio if not exact
                  else ((index + 0.5) * np.float64(ratio)).astype(np.float32))
    else:
        real = np.float64 if dtype == np.float64 else np.float32
        ratio = _ratio(real, in_size, out_size, scale)
        source = index.astype(real) * ratio
        if exact:  # scale (i + 0.5) - 0.5 is one fused multiply-add in PyTorch's build:
            # rounded once, which float64 arithmetic reproduces for float32 (for float64 the
            # second rounding never moved a floor in any size we tried)
            fused = np.float64(ratio) * (index + 0.5) - 0.5
            source = np.maximum(fused.astype(real), real(0)) + real(0.5)
        source = source.astype(np.float32)
    return np.minimum(np.floor(source).astype(np.int64), in_size - 1)


def _linear_taps(in_size: int, out_size: int, scale: float | None, align_corners: bool,
                 dtype: np.dtype) -> Taps:
    """Source position per output, in the input's dtype as PyTorch's CPU kernel: i0 its
    floor, i1 the next pixel (the same at the last), weights 1 - frac and frac."""
    if out_size == in_size:  # PyTorch copies, whatever the scale factor says
        index = _frozen(np.arange(out_size))
        return Taps(in_size, index, _frozen(np.ones(out_size, dtype)), index,
                    _frozen(np.zeros(out_size, dtype)), identity=True)
    real = dtype.type
    position = np.arange(out_size).astype(dtype)
    if align_corners:
        ratio = real(in_size - 1) / real(out_size - 1) if out_size > 1 else real(0)
        source = ratio * position
    else:
        ratio = _ratio(real, in_size, out_size, scale)
        source = np.maximum(ratio * (position + real(0.5)) - real(0.5), real(0))
    index0 = source.astype(np.int64)  # floor: source >= 0
    index1 = index0 + (index0 < in_size - 1)
    weight1 = np.clip(source - index0.astype(dtype), real(0), real(1))
    return Taps(in_size, _frozen(index0), _frozen(real(1) - weight1), _frozen(index1),
                _frozen(weight1))


def _ratio(real: type, in_size: int, out_size: int, scale: float | None) -> Any:
    """Input pixels per output pixel: 1 / scale_factor where one is used, else in / out."""
    if scale is not None and scale > 0:
        return real(1.0 / scale)
    return real(in_size) / real(out_size)


def _frozen(array: np.ndarray) -> np.ndarray:
    """Cached taps are shared between calls: read-only, so no caller changes them."""
    array.setflags(write=False)
    return array


class Upsample(Module):
    """`interpolate` as a layer: to `size`, or by `scale_factor`, with `mode` and
    `align_corners` as F.interpolate."""

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor: Any = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        return info + ", mode=" + repr(self.mode)


class UpsamplingNearest2d(Upsample):
    """Upsample with mode='nearest' (PyTorch keeps it for old code)."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Upsample with mode='bilinear' and align_corners=True (PyTorch keeps it for old code)."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
