"""The reference backend: strided window views plus one GEMM per convolution (BLAS does the work).

Convolutions work in channels-last order: the im2col columns are (N*OH*OW, kH*kW*C), so each
column row reads whole channel vectors, and results come back as NCHW views of NHWC memory.
Gradients for the input are scattered back tap by tap (kH*kW strided adds over the whole batch),
never with Python loops over pixels. The CuPy backend shares the layouts (the column order, the
weight and gradient matrices below) and builds and folds its columns with CUDA kernels instead.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy

from minigrad.backends.base import Backend, Pair, conv_output_size, window_index_dtype


class NumpyBackend(Backend):
    name = "numpy"
    xp = numpy

    # How many parts the conv kernels split a batch into; `in_parts` runs them. The reference
    # runs one part at a time; the Numba backend runs parts on worker threads.
    workers = 1

    def __init__(self) -> None:
        self._buffers: OrderedDict[tuple, Any] = OrderedDict()
        self._buffers_lock = threading.Lock()

    def scratch(self, shape: tuple, dtype: Any) -> Any:
        """A reusable buffer for arrays that live only inside one kernel call (im2col columns).

        Columns are 10-100 MB: a fresh array of that size page-faults on every first touch, which
        cost as much as the copy itself. The few most recent shapes are kept, per thread, so
        worker threads never share one.
        """
        key = (threading.get_ident(), tuple(shape), numpy.dtype(dtype))
        with self._buffers_lock:
            buffer = self._buffers.pop(key, None)
            if buffer is None:
                buffer = self.xp.empty(shape, dtype)
                while len(self._buffers) >= 32:
                    self._buffers.popitem(last=False)
            self._buffers[key] = buffer
        return buffer

    def in_parts(self, work: Callable[[Any], Any], parts: list) -> list:
        """[work(part) for part in parts]: independent pieces of one kernel call (disjoint
        output rows or images). Here one after the other; the Numba backend runs them at once."""
        return [work(part) for part in parts]

    def matmul(self, a: Any, b: Any) -> Any:
        return self.xp.matmul(a, b)

    # -------------------------------------------------------------------------------- conv2d
    def conv2d_forward(self, x, weight, stride, padding, dilation, groups):
        k, _, kh, kw = weight.shape
        windows, pad = self.windows(x, (kh, kw), stride, padding, dilation, groups)
        n, oh, ow = windows.shape[1:4]
        weights = _weight_matrix(weight, groups)
        out = self.xp.empty((groups, n * oh * ow, k // groups), x.dtype)

        def product(images):
            rows, cols = self._columns(windows, pad, images)
            self.xp.matmul(cols, weights, out=out[:, rows])

        self.in_parts(product, self._chunks(windows))
        return _groups_to_nchw(self.xp, out, (n, oh, ow, k))

    def conv2d_backward_input(self, grad, weight, input_shape, stride, padding, dilation, groups):
        """One GEMM for the column gradients of each part of the batch (grad times the
        weights), then col2im. Cache-sized chunks, as in the forward, measured slower: 31 ms
        against 19 on the big conv, 9.7 against 6.2 on ResNet-20's first stage (4 MB chunks).
        So was a stride-1 input gradient run as a convolution with the flipped kernel, except
        on 16-channel layers: 5.1 against 2.2 ms for SimpleCNN's second conv."""
        n, c, h, w = input_shape
        k, _, kh, kw = weight.shape
        pixels = grad.shape[2] * grad.shape[3]
        rows = _grad_matrix(grad, groups)
        weight_t = _weight_matrix(weight, groups).swapaxes(1, 2)
        grad_x = self.xp.empty((n, h, w, c), grad.dtype)

        def column_gradients(images):
            start, stop = images
            cols = self.scratch((groups, (stop - start) * pixels) + weight_t.shape[2:], grad.dtype)
            self.xp.matmul(rows[:, start * pixels:stop * pixels], weight_t, out=cols)
            self.col2im(cols, grad_x[start:stop], (kh, kw), stride, padding, dilation)

        self.in_parts(column_gradients, _ranges(n, self.workers))
        return grad_x.transpose(0, 3, 1, 2)

    def conv2d_backward_weight(self, grad, x, weight_shape, stride, padding, dilation, groups):
        kh, kw = weight_shape[2:]
        windows, pad = self.windows(x, (kh, kw), stride, padding, dilation, groups)
        rows = _grad_matrix(grad, groups)

        def partial_sum(images):
            span, cols = self._columns(windows, pad, images)
            return self.xp.matmul(cols.swapaxes(1, 2), rows[:, span])

        grad_w = sum(self.in_parts(partial_sum, self._chunks(windows)))  # in chunk order
        return _weight_from_matrix(grad_w, weight_shape, groups)

    def windows(self, x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, groups: int):
        """(view, pad): a (groups, N, OH, OW, kH, kW, C/groups) strided view of every window of
        x padded into a scratch buffer (channels-last, so each window row is whole channel
        vectors), and `pad(start, stop)`, which writes images start..stop into that buffer.
        `_columns` pads chunk by chunk, so each worker pads its own images and im2col
        reads them from cache: padding the whole batch up front took 7% of a ResNet-20 step,
        on one core."""
        n, c, h, w = x.shape
        oh, ow = _output_hw((h, w), kernel, stride, padding, dilation)
        padded, pad = self._padded(x.transpose(0, 2, 3, 1), padding, 0)  # NHWC
        sn, sh, sw, sc = padded.strides
        cg = c // groups
        view = self.xp.lib.stride_tricks.as_strided(
            padded,
            shape=(groups, n, oh, ow, kernel[0], kernel[1], cg),
            strides=(cg * sc, sn, sh * stride[0], sw * stride[1], sh * dilation[0],
                     sw * dilation[1], sc),
        )
        return view, pad

    def _chunks(self, windows) -> list[tuple[int, int]]:
        """The batch cut into consecutive image ranges whose im2col columns take at most about
        CHUNK_BYTES; the Numba backend's workers take them one at a time."""
        n, oh, ow = windows.shape[1:4]
        row_bytes = math.prod(windows.shape[4:]) * windows.dtype.itemsize
        return _chunk_ranges(n, CHUNK_BYTES // max(1, oh * ow * row_bytes), self.workers)

    def _columns(self, windows, pad, images: tuple[int, int]):
        """(row span, im2col columns) for an image range, padded first by `pad`: columns
        (groups, rows, kH*kW*C/groups), one row per output pixel, in a per-thread scratch
        buffer that the thread's next chunk overwrites."""
        groups, n, oh, ow = windows.shape[:4]
        start, stop = images
        pad(start, stop)
        chunk = windows[:, start:stop]
        cols = self.scratch((groups, (stop - start) * oh * ow, math.prod(windows.shape[4:])),
                            windows.dtype)
        self.xp.copyto(cols.reshape(chunk.shape), chunk)
        return slice(start * oh * ow, stop * oh * ow), cols

    def col2im(self, cols, out, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair):
        """The adjoint of im2col: `out` (N, H, W, C) gets every column entry added back to the
        pixel it was read from (kH*kW strided adds over the chunk, one per kernel tap)."""
        xp = self.xp
        n, h, w, c = out.shape
        oh, ow = _output_hw((h, w), kernel, stride, padding, dilation)
        groups = cols.shape[0]
        taps = cols.reshape(groups, n, oh, ow, kernel[0], kernel[1], c // groups)
        padded = xp.zeros((n, h + 2 * padding[0], w + 2 * padding[1], c), dtype=cols.dtype)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                tap = taps[:, :, :, :, i, j, :].transpose(1, 2, 3, 0, 4).reshape(n, oh, ow, c)
                padded[:, _tap_slice(i, dilation[0], stride[0], oh),
                       _tap_slice(j, dilation[1], stride[1], ow)] += tap
        out[...] = _crop_hw(padded, padding)

    def _padded(self, nhwc, padding: Pair, fill) -> tuple[Any, Callable[[int, int], None]]:
        """(buffer, pad): a scratch buffer (used at once by the caller) for `nhwc` with
        `padding` rows and columns of `fill` around H and W, and `pad(start, stop)`, which
        writes images start..stop into it. np.pad allocated and walked the array in Python."""
        (ph, pw), (n, h, w, c) = padding, nhwc.shape
        if padding == (0, 0):
            return nhwc, lambda start, stop: None
        out = self.scratch((n, h + 2 * ph, w + 2 * pw, c), nhwc.dtype)

        def pad(start: int, stop: int) -> None:
            images = out[start:stop]
            images[:, :ph] = fill
            images[:, ph + h:] = fill
            images[:, ph:ph + h, :pw] = fill
            images[:, ph:ph + h, pw + w:] = fill
            images[:, ph:ph + h, pw:pw + w] = nhwc[start:stop]

        return out, pad

    # ------------------------------------------------------------------------------- pooling
    def maxpool2d_forward(self, x, kernel, stride, padding):
        windows = self._pool_windows(x, kernel, stride, padding, -self.xp.inf)
        flat = windows.reshape(windows.shape[:4] + (-1,))
        argmax = flat.argmax(axis=-1)
        out = self.xp.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
        return out, argmax.astype(window_index_dtype(kernel))

    def maxpool2d_backward(self, grad, argmax, input_shape, kernel, stride, padding):
        def tap_grad(i, j):
            return grad * (argmax == i * kernel[1] + j)

        return self._scatter_taps(tap_grad, grad, input_shape, kernel, stride, padding)

    def avgpool2d_forward(self, x, kernel, stride, padding):
        return self._pool_windows(x, kernel, stride, padding, 0).mean(axis=(4, 5))

    def avgpool2d_backward(self, grad, input_shape, kernel, stride, padding):
        share = grad / (kernel[0] * kernel[1])
        return self._scatter_taps(lambda i, j: share, grad, input_shape, kernel, stride, padding)

    def _pool_windows(self, x, kernel, stride, padding, fill):
        """A (N, C, OH, OW, kH, kW) view of the windows over x padded with `fill`."""
        n, c, h, w = x.shape
        oh, ow = _output_hw((h, w), kernel, stride, padding, (1, 1))
        padded, pad = self._padded(x.transpose(0, 2, 3, 1), padding, fill)
        pad(0, n)
        padded = padded.transpose(0, 3, 1, 2)
        sn, sc, sh, sw = padded.strides
        return self.xp.lib.stride_tricks.as_strided(
            padded, shape=(n, c, oh, ow, kernel[0], kernel[1]),
            strides=(sn, sc, sh * stride[0], sw * stride[1], sh, sw))

    def _scatter_taps(self, tap_grad, grad, input_shape, kernel, stride, padding):
        """Add `tap_grad(i, j)` (an (N, C, OH, OW) array) at each window's (i, j) pixel."""
        n, c, h, w = input_shape
        oh, ow = grad.shape[2:]
        padded = self.xp.zeros((n, h + 2 * padding[0], w + 2 * padding[1], c), dtype=grad.dtype)
        nchw = padded.transpose(0, 3, 1, 2)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                nchw[:, :, _tap_slice(i, 1, stride[0], oh),
                     _tap_slice(j, 1, stride[1], ow)] += tap_grad(i, j)
        return _crop_hw(padded, padding).transpose(0, 3, 1, 2)


# ------------------------------------------------------------------------------------- helpers


def _output_hw(hw, kernel, stride, padding, dilation) -> tuple[int, int]:
    return tuple(conv_output_size(hw[d], kernel[d], stride[d], padding[d], dilation[d])
                 for d in range(2))


# im2col columns per GEMM: measured best at 2-5 MB (cache-sized). One GEMM over all the columns
# of a batch (75 MB for a 32x64x32x32 conv) streams them from memory twice, writing then
# reading; in cache-sized chunks the GEMM reads what im2col just wrote: the big conv's forward
# went from 23 to 14 ms.
CHUNK_BYTES = 4 << 20


def _ranges(total: int, count: int, offset: int = 0) -> list[tuple[int, int]]:
    """offset..offset+total cut into at most `count` consecutive (start, stop) ranges of
    near-equal size."""
    count = max(1, min(count, total))
    return [(offset + total * i // count, offset + total * (i + 1) // count) for i in range(count)]


def _chunk_ranges(total: int, per_chunk: int, workers: int) -> list[tuple[int, int]]:
    """0..total cut into near-equal ranges of at most `per_chunk` (at least 1), as many as a
    multiple of `workers`, so that threads taking them one at a time finish together (three
    chunks on two threads would leave one thread twice the work)."""
    count = -(-total // max(1, per_chunk))
    return _ranges(total, -(-count // workers) * workers)


def _tap_slice(tap: int, dilation: int, stride: int, count: int) -> slice:
    """The padded-input rows (or columns) that kernel tap `tap` reads for `count` outputs."""
    start = tap * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def _crop_hw(nhwc, padding: Pair):
    return nhwc[:, padding[0]:nhwc.shape[1] - padding[0], padding[1]:nhwc.shape[2] - padding[1]]


def _weight_matrix(weight, groups):
    """(K, Cg, kH, kW) -> (groups, kH*kW*Cg, K/groups), matching the im2col column order."""
    k, cg, kh, kw = weight.shape
    per_group = weight.reshape(groups, k // groups, cg, kh, kw).transpose(0, 3, 4, 2, 1)
    return per_group.reshape(groups, kh * kw * cg, k // groups)


def _weight_from_matrix(matrix, weight_shape, groups):
    """(groups, kH*kW*Cg, K/groups) -> (K, Cg, kH, kW): the inverse of `_weight_matrix`."""
    k, cg, kh, kw = weight_shape
    per_group = matrix.reshape(groups, kh, kw, cg, k // groups).transpose(0, 4, 3, 1, 2)
    return per_group.reshape(weight_shape)


def _grad_matrix(grad, groups):
    """(N, K, OH, OW) -> (groups, N*OH*OW, K/groups); free when grad is channels-last."""
    n, k, oh, ow = grad.shape
    rows = grad.transpose(0, 2, 3, 1).reshape(n * oh * ow, groups, k // groups)
    return rows.transpose(1, 0, 2)


def _groups_to_nchw(xp, out, nhwk):
    """(groups, N*OH*OW, K/groups) -> an (N, K, OH, OW) view of channels-last memory."""
    groups = out.shape[0]
    rows = out[0] if groups == 1 else out.transpose(1, 0, 2)
    return rows.reshape(nhwk).transpose(0, 3, 1, 2)


def create() -> NumpyBackend:
    return NumpyBackend()
