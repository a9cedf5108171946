"""Direct convolution of images with few input channels for the Numba backend (LeNet-5's first
convolution, the greyscale stems of the small-image forms), forward and both gradients, any
kernel size and padding, stride 1, undilated, ungrouped.

im2col turns a one-channel 28x28 image and a 5x5 kernel into 784 columns of 25 values, for a
GEMM with only 6 to 64 output columns: more copying than arithmetic, in products too thin for
BLAS. Here each image is copied once into C zero-padded planes, each flattened into one vector
of (H + 2 ph) x Wp values (Wp = W + 2 pw, plus kW - 1 zeros at the end). Output pixel (y, x)
sits at p = y Wp + x of a flattened output plane, and tap (i, j) of every output pixel reads the
input plane at p + i Wp + j: so the whole convolution is, per output channel, input channel and
kernel row, one long pass over the output plane adding that row's kW taps times shifted input
planes,

    out[k, p] += sum over j of w[k, c, i, j] * planes[c, p + i Wp + j]      for p in 0 .. OH Wp

whose contiguous loop LLVM vectorises. The kW - 1 columns past each output row's OW are
computed and thrown away (4 of 32 for LeNet-5's first convolution). The same loop over the
output gradient's planes (zero in those columns) with the kernel turned by 180 degrees gives
the input gradient, and the weight gradient is a dot product of an output gradient plane and a
shifted input plane per channel pair and tap, summed per image in the input's dtype, then in
float64. Planes longer than BLOCK values go in blocks of BLOCK output positions, so the planes
being added to stay in cache.

The workers (numba_workers.py) take the batch a few images at a time; the weight gradient's
float64 sums come back per part and are added in part order, so every run gives the same bits.

Arrays in and out are NCHW-shaped views of channels-last (NHWC, C-contiguous) memory: the
backend converts its inputs before calling (free for one-channel images, which are both).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import register_jitable

from minigrad.backends.geometry import nhwc, output_hw, ranges
from minigrad.backends.numba_workers import Workers

# The most input channels, and pixels per image, this path takes. With more channels, or larger
# images, im2col's GEMMs are deep or long enough for BLAS to win (docs/performance.md).
MAX_IN_CHANNELS = 4
MAX_PIXELS = 64 * 64
# Output positions per block: 4 KB of float32 output plane, kept in L1 while it is added to.
BLOCK = 1024
# Below this many multiply-adds (about 0.5 ms on one core) a call stays on the calling thread.
SPLIT_MACS = 1 << 22
# Parts per thread: a thread that starts late (another process on its core) takes fewer.
PARTS_PER_THREAD = 2


def fits(weight_shape: tuple, input_shape: tuple, stride, dilation, groups: int,
         *arrays) -> bool:
    """Stride 1, undilated, ungrouped, an (N, C, H, W) input of at most MAX_IN_CHANNELS
    channels and MAX_PIXELS pixels (so the forward and its gradients take the same path), a
    kernel larger than 1x1 (whose im2col is the image itself: one plain GEMM), and every array
    float32 or every array float64."""
    dtypes = {a.dtype for a in arrays}
    return (stride == dilation == (1, 1) and groups == 1 and input_shape[1] <= MAX_IN_CHANNELS
            and input_shape[2] * input_shape[3] <= MAX_PIXELS
            and weight_shape[2] * weight_shape[3] > 1
            and len(dtypes) == 1 and dtypes.pop() in (np.float32, np.float64))


class Planes:
    """The three convolutions on `workers`."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers

    def forward(self, x, weight, padding):
        n, c, h, w = x.shape
        k, _, kh, kw = weight.shape
        oh, ow = output_hw((h, w), (kh, kw), (1, 1), padding, (1, 1))
        out = np.empty((n, oh, ow, k), x.dtype)
        images, weight = nhwc(x), np.ascontiguousarray(weight)

        def part(span):
            _planes_forward(images, weight, out, *padding, *span)

        self._in_parts(part, n, out.size * c * kh * kw)
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad, x, weight, weight_shape, input_shape, padding):
        """(d x, d weight): d x unless `weight` is None, d weight unless `x` is None (each
        None where not computed)."""
        n, c, h, w = input_shape
        k, _, kh, kw = weight_shape
        grads = nhwc(grad)
        images = nhwc(x) if x is not None else None
        weight = np.ascontiguousarray(weight) if weight is not None else None
        grad_x = np.empty((n, h, w, c), grad.dtype) if weight is not None else None

        def part(span):
            sums = np.zeros(weight_shape) if x is not None else None  # float64
            _planes_backward(grads, images, weight, grad_x, sums, c, h, w, kh, kw, *padding, *span)
            return sums

        work = grad.size * c * kh * kw * ((x is not None) + (weight is not None))
        sums = self._in_parts(part, n, work)
        grad_w = None if x is None else sum(sums).astype(grad.dtype)  # in part order
        return (None if grad_x is None else grad_x.transpose(0, 3, 1, 2)), grad_w

    def _in_parts(self, work, images: int, macs: int) -> list:
        parts = 1 if macs < SPLIT_MACS else PARTS_PER_THREAD * self.workers.count
        return self.workers.in_parts(work, ranges(images, min(parts, images)))


# ------------------------------------------------------------------------------------ kernels
# Images are C-contiguous channels-last (N, H, W, C) arrays, weights (K, C, kH, kW); planes are
# (channels, flattened plane) arrays, so every innermost loop runs along one plane.


@register_jitable
def _to_planes(images, b, planes, ph, pw, wp):
    """Image b of images (N, H, W, C) into the interior of `planes` (C, ...), rows Wp apart
    from (ph, pw) on; the margins are left as they are (zero). (Compiled into its callers.)"""
    _, h, w, c = images.shape
    for y in range(h):
        row = (y + ph) * wp + pw
        for x in range(w):
            for ch in range(c):
                planes[ch, row + x] = images[b, y, x, ch]


@register_jitable
def _add_taps(acc, row, taps):
    """acc[p] += sum over j of taps[j] * row[p + j]: one kernel row's taps in one pass over acc.
    Written out for rows of 3 and 5 taps, so the loop over p is innermost and vectorises with
    the accumulator loaded and stored once for the row, not once per tap."""
    if len(taps) == 3:
        t0, t1, t2 = taps[0], taps[1], taps[2]
        for p in range(len(acc)):
            acc[p] += t0 * row[p] + t1 * row[p + 1] + t2 * row[p + 2]
    elif len(taps) == 5:
        t0, t1, t2, t3, t4 = taps[0], taps[1], taps[2], taps[3], taps[4]
        for p in range(len(acc)):
            acc[p] += (t0 * row[p] + t1 * row[p + 1] + t2 * row[p + 2] + t3 * row[p + 3]
                       + t4 * row[p + 4])
    else:
        for j in range(len(taps)):
            tap = taps[j]
            for p in range(len(acc)):
                acc[p] += tap * row[p + j]


@register_jitable
def _dot_taps(g, row, sums):
    """sums[j] += sum over p of g[p] * row[p + j], every tap of a kernel row in one pass over g
    (written out for 3 and 5 taps, as `_add_taps`)."""
    if len(sums) == 3:
        s0, s1, s2 = sums[0], sums[1], sums[2]
        for p in range(len(g)):
            s0 += g[p] * row[p]
            s1 += g[p] * row[p + 1]
            s2 += g[p] * row[p + 2]
        sums[0], sums[1], sums[2] = s0, s1, s2
    elif len(sums) == 5:
        s0, s1, s2, s3, s4 = sums[0], sums[1], sums[2], sums[3], sums[4]
        for p in range(len(g)):
            s0 += g[p] * row[p]
            s1 += g[p] * row[p + 1]
            s2 += g[p] * row[p + 2]
            s3 += g[p] * row[p + 3]
            s4 += g[p] * row[p + 4]
        sums[0], sums[1], sums[2], sums[3], sums[4] = s0, s1, s2, s3, s4
    else:
        for j in range(len(sums)):
            dot = sums[j]
            for p in range(len(g)):
                dot += g[p] * row[p + j]
            sums[j] = dot


@njit(cache=True, nogil=True, fastmath={"contract"})
def _planes_forward(images, weight, out, ph, pw, start, stop):
    """Images start..stop of out (N, OH, OW, K) = images (N, H, W, C) convolved with weight."""
    _, h, w, c = images.shape
    _, oh, ow, k = out.shape
    kh, kw = weight.shape[2], weight.shape[3]
    wp = w + 2 * pw
    span = oh * wp  # output positions, the kW - 1 past each row's end included
    planes = np.zeros((c, (h + 2 * ph) * wp + kw - 1), images.dtype)
    total = np.empty((k, span), images.dtype)
    for b in range(start, stop):
        _to_planes(images, b, planes, ph, pw, wp)
        for first in range(0, span, BLOCK):
            last = min(first + BLOCK, span)
            for o in range(k):
                acc = total[o, first:last]
                acc[:] = 0
                for ch in range(c):
                    for i in range(kh):
                        row = planes[ch, first + i * wp:last + i * wp + kw - 1]
                        _add_taps(acc, row, weight[o, ch, i])
        for y in range(oh):
            for x in range(ow):
                for o in range(k):
                    out[b, y, x, o] = total[o, y * wp + x]


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
def _planes_backward(grads, images, weight, grad_x, sums, c, h, w, kh, kw, ph, pw, start, stop):
    """Images start..stop: d x into grad_x (N, H, W, C) unless it is None, and the weight
    gradient added into the float64 `sums` (K, C, kH, kW) unless it is None (`images` may be
    None then). Numba compiles each combination of Nones on its own. fastmath "reassoc" lets
    the weight gradient's dot products vectorise (summed in another order, as a pairwise sum
    would be).

    d x is the output gradient correlated with the kernels turned by 180 degrees: input plane
    position q gets w[o, c, i, j] * g[o, q - i Wp - j], so the output gradient's planes start
    after a margin of (kH - 1) Wp + kW - 1 zeros, and d x's rows come out whole, one block of
    positions at a time, each written once."""
    _, oh, ow, k = grads.shape
    wp = w + 2 * pw
    span = oh * wp
    margin = (kh - 1) * wp + kw - 1
    # the output gradient, zero past each row's OW (where no output is) and around
    gplanes = np.zeros((k, margin + (h + 2 * ph) * wp + kw - 1), grads.dtype)
    planes = np.zeros((c, (h + 2 * ph) * wp + kw - 1), grads.dtype)  # margins stay zero
    dplanes = np.empty((c, h * wp), grads.dtype)  # d x's rows, their margins included
    flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1]) if weight is not None else None
    row_sums = np.zeros(kw, grads.dtype)
    for b in range(start, stop):
        for y in range(oh):
            for x in range(ow):
                for o in range(k):
                    gplanes[o, margin + y * wp + x] = grads[b, y, x, o]
        if sums is not None:
            _to_planes(images, b, planes, ph, pw, wp)
            for o in range(k):
                g = gplanes[o, margin:margin + span]
                for ch in range(c):
                    for i in range(kh):
                        row_sums[:] = 0
                        _dot_taps(g, planes[ch, i * wp:i * wp + span + kw - 1], row_sums)
                        for j in range(kw):
                            sums[o, ch, i, j] += row_sums[j]
        if grad_x is not None:
            for first in range(0, h * wp, BLOCK):
                last = min(first + BLOCK, h * wp)
                q0 = ph * wp + first  # the block's first position in the padded plane
                for ch in range(c):
                    acc = dplanes[ch, first:last]
                    acc[:] = 0
                    for o in range(k):
                        for i in range(kh):
                            # tap (kh-1-i', kw-1-j) of the turned kernel reads g at q - i Wp - j
                            at = margin + q0 - (kh - 1 - i) * wp - (kw - 1)
                            _add_taps(acc, gplanes[o, at:at + last - first + kw - 1],
                                      flipped[o, ch, i])
            for y in range(h):
                for x in range(w):
                    for ch in range(c):
                        grad_x[b, y, x, ch] = dplanes[ch, y * wp + pw + x]
