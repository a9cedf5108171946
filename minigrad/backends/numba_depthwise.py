"""Depthwise convolution for the Numba backend: one input channel per group (groups == C, weight
(C*m, 1, kH, kW), m the channel multiplier), as in MobileNet and EfficientNet, forward and both
gradients, any stride, padding and dilation.

im2col runs such a convolution as one GEMM per channel, each (pixels, kH*kW) by (kH*kW, m):
thousands of products too thin for BLAS. Here it is a direct loop over channels-last memory
instead: each output pixel sums its kH*kW taps, and the innermost loop runs along the channel
vector of a pixel, whose weights differ per channel, so LLVM vectorises it.

- **Forward.** Each output pixel is a sum over its taps of an input channel vector times that
  tap's weight vector, accumulated in a small vector that stays in cache.
- **Both gradients in one pass.** A gather over input pixels: each input pixel visits the output
  pixels that read it (for stride > 1, only the taps that land on an output; which output each
  tap of each pixel row and column lands on is tabled once per call, so the pixel loops divide
  nothing) and, with the same loaded output-gradient vector, adds to its own input gradient and
  to that tap's weight gradient. No zero-fill, no atomics, and rows of different threads never
  overlap. The weight gradient is summed per input row in the input's dtype (at most W terms),
  then in float64.
- **Multiplier m > 1.** Output channel k reads input channel k // m, so the input is repeated
  m times along its channels first (and its gradient summed back over the m copies): the same
  loops then serve every multiplier. MobileNet and EfficientNet use m = 1.
- **Threads.** Output rows (forward) or input rows (backward) are cut into parts that the
  threads take one at a time (numba_workers.py); the weight gradient's float64 partial sums come
  back per part and are added in part order, so every run gives the same bits. Small problems
  stay on the calling thread, where a hand-off would cost more than it saves.
- **When.** Every float32 or float64 depthwise convolution with at least MIN_CHANNELS (3)
  channels; with fewer, im2col's one or two GEMMs are as fast (a convolution of a one-channel
  image is "depthwise" too). Winograd never applies to grouped convolutions, so the two never
  compete.

Arrays in and out are NCHW-shaped views of channels-last (NHWC, C-contiguous) memory: the
backend converts its inputs before calling (free when they already are).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import register_jitable

from minigrad.backends.geometry import nhwc, output_hw, ranges
from minigrad.backends.numba_workers import Workers

# Below this many multiply-adds (about 0.5-1 ms on one core) a call stays on the calling
# thread: a hand-off to a worker costs 0.1-0.2 ms, and much more when the other core is busy.
SPLIT_MACS = 1 << 22
# With fewer input channels im2col's few GEMMs were as fast or faster (fwd+bwd of 64 images of
# 28x28: 1 channel x 32 0.6x the time of these loops, 2 x 16 0.7x, 2 x 2 0.8x; 3 x 1 1.3x).
MIN_CHANNELS = 3
# Parts per thread: a thread that starts late (another process on its core) takes fewer.
PARTS_PER_THREAD = 4


def fits(weight_shape: tuple, in_channels: int, groups: int, *arrays) -> bool:
    """One input channel per group (weight (C*m, 1, kH, kW), groups == C), at least
    MIN_CHANNELS of them, and every array float32 or every array float64."""
    dtypes = {a.dtype for a in arrays}
    return (weight_shape[1] == 1 and groups == in_channels >= MIN_CHANNELS
            and len(dtypes) == 1 and dtypes.pop() in (np.float32, np.float64))


class Depthwise:
    """Depthwise convolutions on `workers`. Arrays in and out are NCHW-shaped views of
    channels-last memory."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers

    def forward(self, x, weight, stride, padding, dilation):
        n, c, h, w = x.shape
        k, _, kh, kw = weight.shape
        oh, ow = output_hw((h, w), (kh, kw), stride, padding, dilation)
        images, taps = _spread(x, k // c), _taps(weight)
        out = np.empty((n, oh, ow, k), x.dtype)

        def rows(span):
            _forward_rows(images, taps, out, *stride, *padding, *dilation, *span)

        self._in_parts(rows, n * oh, out.size * kh * kw)
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad, x, weight, weight_shape, input_shape, stride, padding, dilation):
        """(d x, d weight): d x unless `weight` is None, d weight unless `x` is None (each
        None where not computed)."""
        n, c, h, w = input_shape
        k, _, kh, kw = weight_shape
        input_grad, weight_grad = weight is not None, x is not None
        grad_rows = nhwc(grad)
        images = _spread(x, k // c) if weight_grad else None
        taps = _taps(weight) if input_grad else None
        grad_x = np.empty((n, h, w, k), grad.dtype) if input_grad else None

        def rows(span):
            sums = np.zeros((kh, kw, k)) if weight_grad else None  # float64
            _backward_rows(grad_rows, images, taps, grad_x, sums, h, w, kh, kw, *stride,
                           *padding, *dilation, *span)
            return sums

        work = grad.size * kh * kw * (input_grad + weight_grad)
        sums = self._in_parts(rows, n * h, work)
        if input_grad:
            if k > c:  # the gradient of each repeated input channel, summed over its copies
                grad_x = grad_x.reshape(n, h, w, c, k // c).sum(axis=4)
            grad_x = grad_x.transpose(0, 3, 1, 2)
        grad_w = None
        if weight_grad:  # the parts' sums in part order, whichever thread ran each
            total = sum(sums).astype(grad.dtype)
            grad_w = np.ascontiguousarray(total.transpose(2, 0, 1)).reshape(k, 1, kh, kw)
        return grad_x, grad_w

    def _in_parts(self, work, rows: int, macs: int) -> list:
        parts = 1 if macs < SPLIT_MACS else PARTS_PER_THREAD * self.workers.count
        return self.workers.in_parts(work, ranges(rows, parts))


def _spread(x, multiplier: int):
    """(N, H, W, C*m): x's channels-last memory, each channel repeated m times in a row, so
    that output channel k reads input channel k."""
    images = nhwc(x)
    return images if multiplier == 1 else np.repeat(images, multiplier, axis=3)


def _taps(weight):
    """(C*m, 1, kH, kW) -> (kH, kW, C*m): one contiguous weight vector per tap."""
    k, _, kh, kw = weight.shape
    return np.ascontiguousarray(weight.reshape(k, kh, kw).transpose(1, 2, 0))


# ------------------------------------------------------------------------------------ kernels
# Arguments are C-contiguous channels-last (N, H, W, C) arrays, (kH, kW, C) tap vectors and
# plain ints; the innermost loops run over channels, so they read and write contiguous memory.


@register_jitable
def _readers(size, count, kernel, stride, pad, dilation):
    """(size, kernel) ints along one axis: the output that reads input `p` through tap `t`,
    or -1 where none does (off the output, or between strides). Tabled once per call, so the
    loops over pixels divide nothing. (Compiled into its callers, not a kernel of its own.)"""
    readers = np.full((size, kernel), -1, np.int64)
    for p in range(size):
        for t in range(kernel):
            at = p + pad - t * dilation  # output * stride
            if at >= 0 and at % stride == 0 and at // stride < count:
                readers[p, t] = at // stride
    return readers


@njit(cache=True, nogil=True)
def _forward_rows(x, taps, out, sh, sw, ph, pw, dh, dw, start, stop):
    """Output rows start..stop of the N * OH rows: each pixel's channel vector sums its taps'
    input vectors times their weight vectors, in a vector that stays in cache."""
    _, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    kh, kw = taps.shape[0], taps.shape[1]
    total = np.empty(c, x.dtype)
    for row in range(start, stop):
        b = row // oh
        y = row - b * oh
        for xo in range(ow):
            total[:] = 0
            for i in range(kh):
                hi = y * sh - ph + i * dh
                if hi < 0 or hi >= h:
                    continue
                for j in range(kw):
                    wj = xo * sw - pw + j * dw
                    if wj < 0 or wj >= w:
                        continue
                    pixel, tap = x[b, hi, wj], taps[i, j]
                    for ch in range(c):
                        total[ch] += pixel[ch] * tap[ch]
            result = out[b, y, xo]
            for ch in range(c):
                result[ch] = total[ch]


@njit(cache=True, nogil=True)
def _backward_rows(grad, x, taps, grad_x, sums, h, w, kh, kw, sh, sw, ph, pw, dh, dw, start,
                   stop):
    """Input rows start..stop of the N * H rows, a gather: each input pixel visits the output
    pixels that read it, and adds g * tap over their gradient vectors g to its own gradient
    (into `grad_x`, unless None), then g * pixel to each tap's gradient (into the float64
    `sums` (kH, kW, C), unless None; `x` may be None then). Numba compiles each combination
    of Nones on its own, without the branches. Two loops over the taps, one accumulator each,
    took two thirds of the time of one loop feeding both (the gradient vectors come back from
    cache the second time)."""
    _, oh, ow, c = grad.shape
    reader_rows, reader_cols = _readers(h, oh, kh, sh, ph, dh), _readers(w, ow, kw, sw, pw, dw)
    total = np.empty(c, grad.dtype)
    row_sums = np.empty((kh, kw, c), grad.dtype)  # one input row's terms, then added in float64
    for row in range(start, stop):
        b = row // h
        y = row - b * h
        row_sums[:] = 0
        for xi in range(w):
            if grad_x is not None:
                total[:] = 0
                for i in range(kh):
                    yo = reader_rows[y, i]
                    if yo < 0:
                        continue
                    for j in range(kw):
                        xo = reader_cols[xi, j]
                        if xo < 0:
                            continue
                        g, tap = grad[b, yo, xo], taps[i, j]
                        for ch in range(c):
                            total[ch] += g[ch] * tap[ch]
                result = grad_x[b, y, xi]
                for ch in range(c):
                    result[ch] = total[ch]
            if sums is not None:
                pixel = x[b, y, xi]
                for i in range(kh):
                    yo = reader_rows[y, i]
                    if yo < 0:
                        continue
                    for j in range(kw):
                        xo = reader_cols[xi, j]
                        if xo < 0:
                            continue
                        g, tap_sum = grad[b, yo, xo], row_sums[i, j]
                        for ch in range(c):
                            tap_sum[ch] += g[ch] * pixel[ch]
        if sums is not None:
            for i in range(kh):
                for j in range(kw):
                    for ch in range(c):
                        sums[i, j, ch] += row_sums[i, j, ch]
