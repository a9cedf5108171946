"""Direct convolution of 16-channel feature maps for the Numba backend (ResNet's first stage:
resnet20's 16 -> 16 3x3 convolutions at 28x28 or 32x32), forward and both gradients, float32,
stride 1, undilated, ungrouped, any kernel size and padding, on CPUs with AVX-512.

At 16 channels Winograd's tile transforms (winograd.py) read and write four times the
activations for GEMMs only 16 columns wide: the call is bound by memory. Alone on a quiet
machine it takes the time of this loop, which is bound by its multiply-adds; in a network,
where activations come from memory and the other core is busy too, it takes longer
(docs/performance.md). Here nothing is transformed. PIXELS consecutive output pixels of one
row, times 16 output channels, sit in PIXELS vector registers of 16 float32 lanes. For each tap
and input channel, one 16-wide weight row is loaded and multiplied, for every pixel of the
block, by that pixel's input value broadcast to 16 lanes: one fused multiply-add each. Each
weight row is used PIXELS times from a register, each input value 16 times, and the block
leaves the registers once.

- The input gradient is the same loop over the output gradient, with the kernel turned by 180
  degrees and its channel axes swapped, padded by kernel - 1 - padding.
- The weight gradient holds 16 input x 16 output channels of one tap in 16 registers while it
  runs over an image's pixels: input values broadcast, times output-gradient vectors. Each
  image's sums are added in float64, and the parts' sums in part order, so every run gives the
  same bits.

LLVM does not vectorise such 16-wide loops when Numba compiles them from Python (runtime alias
checks, trip counts too short for its cost model: a loop version ran ten times slower than
Winograd), so the register blocks are written in LLVM's vector IR through Numba intrinsics; the
loops around them are ordinary compiled Python. Each image is first copied into the interior of
a zero-bordered per-thread buffer, so no block reads outside it; where PIXELS does not divide a
row, its last block overlaps the one before (those pixels are computed twice, to the same bits).

Arrays in and out are NCHW-shaped views of channels-last (NHWC, C-contiguous) memory: the
backend converts its inputs before calling.
"""

from __future__ import annotations

import math

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from minigrad.backends.geometry import nhwc, output_hw, ranges
from minigrad.backends.numba_workers import Workers

# float32 lanes of one AVX-512 vector register.
LANES = 16
# Output pixels per register block: their 16-lane sums, a weight row and a broadcast value
# take 9 of the 32 vector registers, enough sums in flight to hide the multiply-add's latency.
# Rows of 28, 14 and 7 pixels (ResNet's three stages at 28x28) are whole blocks. (14 took the
# same time.)
PIXELS = 7
# The channel counts this path takes, in and out. With 32 or 64 Winograd's GEMMs are wide
# enough, and its 2.25x fewer multiply-adds win by 8-18% a call (docs/performance.md).
CHANNELS = (16,)


def _has_avx512() -> bool:
    try:
        return bool(llvm.get_host_cpu_features().get("avx512f", False))
    except RuntimeError:  # LLVM cannot read this CPU's features
        return False


# The blocks are sized for AVX-512's 32 registers of 16 lanes, the machine they were measured
# on. Elsewhere LLVM splits each vector in two (AVX2) or four (NEON) and the blocks may spill,
# so other CPUs keep Winograd (the kernels still compile and give the same numbers there).
AVX512 = _has_avx512()
# Parts per thread: a thread that starts late (another process on its core) takes fewer.
PARTS_PER_THREAD = 2


def fits(weight_shape: tuple, input_shape: tuple, output_shape: tuple, stride, padding,
         dilation, groups: int, *arrays) -> bool:
    """An AVX-512 CPU, stride 1, undilated, ungrouped, CHANNELS channels in and out, padding
    under the kernel size (so the input gradient is a convolution too), input and output rows
    of at least PIXELS pixels (the forward's blocks and the input gradient's), and every array
    float32."""
    k, c, kh, kw = weight_shape
    return (AVX512 and stride == dilation == (1, 1) and groups == 1 and c in CHANNELS
            and k in CHANNELS and padding[0] < kh and padding[1] < kw
            and min(input_shape[3], output_shape[3]) >= PIXELS
            and all(a.dtype == np.float32 for a in arrays))


class Direct:
    """The three convolutions on `workers`."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers

    def forward(self, x, weight, padding):
        n, _, h, w = x.shape
        k, _, kh, kw = weight.shape
        out = np.empty((n, *output_hw((h, w), (kh, kw), (1, 1), padding, (1, 1)), k), x.dtype)
        images, taps = nhwc(x), _taps(weight)
        padded = (h + 2 * padding[0], w + 2 * padding[1], images.shape[3])

        def part(span):
            _convolve(images, taps, out, self.workers.scratch(padded, x.dtype), *padding, *span)

        self._in_parts(part, n)
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad, x, weight, weight_shape, input_shape, padding):
        """(d x, d weight): d x unless `weight` is None, d weight unless `x` is None (each
        None where not computed). Both from one pass over the batch."""
        n, c, h, w = input_shape
        k, _, kh, kw = weight_shape
        oh, ow = grad.shape[2:]
        grads = nhwc(grad)
        images = nhwc(x) if x is not None else None
        flipped = None if weight is None else _taps(weight[:, :, ::-1, ::-1].swapaxes(0, 1))
        back = (kh - 1 - padding[0], kw - 1 - padding[1])
        grad_x = np.empty((n, h, w, c), grad.dtype) if weight is not None else None
        padded_grad = (oh + 2 * back[0], ow + 2 * back[1], k)
        padded_x = (h + 2 * padding[0], w + 2 * padding[1], c)
        grad_size = math.prod(padded_grad)

        def part(span):
            scratch = self.workers.scratch((grad_size + math.prod(padded_x),), grad.dtype)
            if flipped is not None:
                _convolve(grads, flipped, grad_x, scratch[:grad_size].reshape(padded_grad),
                          *back, *span)
            if images is None:
                return None
            sums = np.zeros((kh, kw, c, k))  # float64
            _weight_sums(images, grads, sums, scratch[grad_size:].reshape(padded_x), *padding,
                         *span)
            return sums

        sums = self._in_parts(part, n)
        grad_w = None if x is None else sum(sums).transpose(3, 2, 0, 1).astype(grad.dtype)
        return (None if grad_x is None else grad_x.transpose(0, 3, 1, 2)), grad_w

    def _in_parts(self, work, images: int) -> list:
        return self.workers.in_parts(
            work, ranges(images, min(images, PARTS_PER_THREAD * self.workers.count)))


def _taps(weight):
    """(K, C, kH, kW) -> (kH, kW, C, K): for each tap and input channel, a row of K weights."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


# ------------------------------------------------------------------------------ register blocks
# Arrays come in whole and flat, with element offsets; `at_*` is where a block starts in each.

_VECTOR = ir.VectorType(ir.FloatType(), LANES)
_ZEROS = ir.Constant(_VECTOR, [0.0] * LANES)


def _signature(literal, first, second, third):
    """A register block's: void(literal, three arrays each followed by an element offset, five
    sizes)."""
    return types.void(literal, first, types.intp, second, types.intp, third, types.intp,
                      *(types.intp,) * 5)


def _pointers_and_sizes(context, builder, signature, args):
    """The block's arguments as LLVM values: (array data pointer, offset) three times, then
    the five sizes."""
    arrays = [context.make_array(signature.args[i])(context, builder, args[i]).data
              for i in (1, 3, 5)]
    return arrays[0], args[2], arrays[1], args[4], arrays[2], args[6], *args[7:]


def _vector_at(builder, data, offset):
    """A pointer to the LANES floats at data[offset:]."""
    return builder.bitcast(builder.gep(data, [offset]), _VECTOR.as_pointer())


def _broadcast(builder, data, offset):
    """data[offset] in every lane."""
    one = builder.insert_element(ir.Constant(_VECTOR, ir.Undefined), builder.load(
        builder.gep(data, [offset])), ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(_VECTOR, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))


def _fma(builder):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VECTOR, [_VECTOR] * 3),
                                          f"llvm.fma.v{LANES}f32")


def _times(builder, value, constant: int):
    return builder.mul(value, ir.Constant(value.type, constant))


@intrinsic(prefer_literal=True)
def _output_block(typingctx, pixels, out, at_out, x, at_x, w, at_w, taps_h, taps_w, row, c, k):
    """out[at_out + p k + l] = sum over taps (i, j) and input channels ch of
    x[at_x + ((i row + j) + p) c + ch] * w[at_w + ((i taps_w + j) c + ch) k + l], for the block's
    pixels p < `pixels` (a literal) and lanes l < LANES: x is a padded image (rows `row` pixels
    long, c channels), w the (kH, kW, C, K) taps."""
    if not isinstance(pixels, types.IntegerLiteral):
        return None
    count = pixels.literal_value

    def codegen(context, builder, signature, args):
        out, at_out, x, at_x, w, at_w, taps_h, taps_w, row, c, k = _pointers_and_sizes(
            context, builder, signature, args)
        fma = _fma(builder)
        sums = [cgutils.alloca_once_value(builder, _ZEROS) for _ in range(count)]
        with cgutils.for_range(builder, taps_h) as i, cgutils.for_range(builder, taps_w) as j:
            tap_x = builder.add(at_x, builder.mul(builder.add(builder.mul(i.index, row),
                                                              j.index), c))
            tap_w = builder.add(at_w, builder.mul(builder.add(builder.mul(i.index, taps_w),
                                                              j.index), builder.mul(c, k)))
            with cgutils.for_range(builder, c) as ch:
                weights = builder.load(_vector_at(builder, w, builder.add(
                    tap_w, builder.mul(ch.index, k))), align=4)
                first = builder.add(tap_x, ch.index)
                for p, total in enumerate(sums):
                    value = _broadcast(builder, x, builder.add(first, _times(builder, c, p)))
                    builder.store(builder.call(fma, [value, weights, builder.load(total)]), total)
        for p, total in enumerate(sums):
            builder.store(builder.load(total), _vector_at(
                builder, out, builder.add(at_out, _times(builder, k, p))), align=4)
        return context.get_dummy_value()

    return _signature(pixels, out, x, w), codegen


@intrinsic(prefer_literal=True)
def _weight_block(typingctx, channels, sums, at_sums, x, at_x, grad, at_grad, rows, cols, row, c,
                  k):
    """sums[at_sums + ch k + l] += sum over r < rows, q < cols of
    x[at_x + (r row + q) c + ch] * grad[at_grad + (r cols + q) k + l], for ch < `channels` (a
    literal) and lanes l < LANES: one tap's gradient for a block of input channels, over an
    image whose output gradient has rows of `cols` pixels."""
    if not isinstance(channels, types.IntegerLiteral):
        return None
    count = channels.literal_value

    def codegen(context, builder, signature, args):
        sums, at_sums, x, at_x, grad, at_grad, rows, cols, row, c, k = _pointers_and_sizes(
            context, builder, signature, args)
        fma = _fma(builder)
        places = [_vector_at(builder, sums, builder.add(at_sums, _times(builder, k, ch)))
                  for ch in range(count)]
        totals = [cgutils.alloca_once_value(builder, builder.load(place, align=4))
                  for place in places]
        with cgutils.for_range(builder, rows) as r, cgutils.for_range(builder, cols) as q:
            pixel_grad = builder.add(at_grad, builder.mul(builder.add(builder.mul(r.index, cols),
                                                                      q.index), k))
            first = builder.add(at_x, builder.mul(builder.add(builder.mul(r.index, row),
                                                              q.index), c))
            grads = builder.load(_vector_at(builder, grad, pixel_grad), align=4)
            for ch, total in enumerate(totals):
                value = _broadcast(builder, x, builder.add(first, ir.Constant(first.type, ch)))
                builder.store(builder.call(fma, [value, grads, builder.load(total)]), total)
        for place, total in zip(places, totals):
            builder.store(builder.load(total), place, align=4)
        return context.get_dummy_value()

    return _signature(channels, sums, x, grad), codegen


# ------------------------------------------------------------------------------------ kernels
# Images are C-contiguous channels-last (N, H, W, C) arrays, taps (kH, kW, C, K), `padded` a
# per-thread (H + 2 ph, W + 2 pw, C) buffer.


@njit(cache=True, nogil=True)
def _convolve(images, taps, out, padded, ph, pw, start, stop):
    """out[b] = images[b] padded by (ph, pw), convolved with `taps`, for b in start..stop."""
    h, w, c = images.shape[1:]
    kh, kw, _, k = taps.shape
    oh, ow = out.shape[1:3]
    row = padded.shape[1]
    padded[:] = 0
    flat_out, flat_in, flat_taps = out.reshape(-1), padded.reshape(-1), taps.reshape(-1)
    for b in range(start, stop):
        padded[ph:ph + h, pw:pw + w] = images[b]
        for y in range(oh):
            for k0 in range(0, k, LANES):
                for block in range(0, ow, PIXELS):
                    x0 = min(block, ow - PIXELS)  # the last block ends at the row's end
                    _output_block(PIXELS, flat_out, ((b * oh + y) * ow + x0) * k + k0, flat_in,
                                  (y * row + x0) * c, flat_taps, k0, kh, kw, row, c, k)


@njit(cache=True, nogil=True)
def _weight_sums(images, grads, sums, padded, ph, pw, start, stop):
    """sums (kH, kW, C, K) += the weight gradient from images start..stop: each image's in
    float32 (registers), added in float64."""
    h, w, c = images.shape[1:]
    kh, kw = sums.shape[:2]
    oh, ow, k = grads.shape[1:]
    row = padded.shape[1]
    padded[:] = 0
    image_sums = np.empty(sums.shape, np.float32)
    flat_sums, flat_in, flat_grads = image_sums.reshape(-1), padded.reshape(-1), grads.reshape(-1)
    for b in range(start, stop):
        padded[ph:ph + h, pw:pw + w] = images[b]
        image_sums[:] = 0
        for i in range(kh):
            for j in range(kw):
                for c0 in range(0, c, LANES):
                    for k0 in range(0, k, LANES):
                        _weight_block(LANES, flat_sums, ((i * kw + j) * c + c0) * k + k0, flat_in,
                                      (i * row + j) * c + c0, flat_grads, b * oh * ow * k + k0,
                                      oh, ow, row, c, k)
        sums += image_sums
