"""The Numba backend: what Numba compiles, and when each compiled path is used.

- Convolutions: float32 16 -> 16 channel ones at stride 1 (ResNet's first stage) on AVX-512
  CPUs by a register-blocked direct loop (numba_direct.py); 3x3 stride-1 ones with 8 channels
  or more (nearly all of ResNet's others), forward and both gradients, by Winograd F(2x2, 3x3)
  (winograd.py); the others by im2col (NumPy's strided copy, which beat a compiled loop) and
  BLAS in cache-sized chunks of columns, with col2im a compiled loop that streams through the
  columns in memory order. Depthwise ones (one input channel per group, as in MobileNet and
  EfficientNet) by direct compiled loops over channel vectors, forward and both gradients in
  one pass (numba_depthwise.py).
- Pooling: compiled loops over channels-last memory, whole channel vectors at a time; the
  backward kernels are gathers (each input pixel sums its windows), so they need no zero-fill.
- ReLU, float32 sigmoid, tanh, SiLU and erf (vectorised: an exp of their own, XLA's float32 erf),
  the NCHW-to-channels-last transpose, float64 erf, and batch norm over channels-last rows (one
  pass for the statistics, one for the output, two for the backward): compiled loops.
- Group norm in the input's layout, C order (by rows, one per sample and group) or
  channels-last (by blocks, one per sample), each row or block in cache for all of its passes:
  compiled loops.
- Large 2-D matmuls split by rows.

Every convolution, pooling call and large matmul is cut into parts that the calling thread and
the worker threads take one at a time (numba_workers.py), and so is group norm on large
enough data. ReLU, batch norm and the float32 activations, passes of a few hundred
microseconds, go to the workers as native jobs, which they run without the GIL; small group
norms stay on the calling thread, where a hand-off would cost more than it saves.
Everything else is the reference's (numpy_backend.py). The loops are serial `@njit(cache=True,
nogil=True)` kernels: they compile on first use for each dtype (about a second each, cold) and
load from Numba's on-disk cache in later processes. `warmup()` compiles the float32 kernels.
MINIGRAD_NUM_THREADS sets the number of threads (default: the CPUs this process may use).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from minigrad.backends.geometry import (
    Pair,
    chunk_ranges,
    grad_matrix,
    groups_to_nchw,
    is_channels_last,
    nhwc_shape,
    output_hw,
    ranges,
    weight_from_rows,
    weight_rows,
    window_index_dtype,
)
from minigrad.backends.numpy_backend import NumpyBackend, _ChannelRows

try:
    from llvmlite import ir as llvm_ir
    from numba import njit, types, vectorize
    from numba.extending import intrinsic, register_jitable
except ImportError as error:  # numba is a dependency, but its wheels can lag behind NumPy's
    raise RuntimeError(f"numba backend: Numba cannot be imported ({error}); "
                       "pip install -U numba") from error

from minigrad.backends import numba_depthwise, numba_direct, numba_planes, winograd  # noqa: E402
from minigrad.backends.numba_workers import (  # noqa: E402
    NativePart,
    Workers,
    address,
    array_at,
    worker_count,
)

# im2col columns per GEMM: cache-sized, so the GEMM reads what im2col has just written.
CHUNK_BYTES = 4 << 20


class NumbaBackend(NumpyBackend):
    name = "numba"
    # A 2-D matmul splits over the threads from this many multiply-adds: below it the hand-off
    # costs more than the second core gains.
    SPLIT_MATMUL_FLOPS = 1 << 22

    def __init__(self, threads: int) -> None:
        self.workers = Workers(threads)
        self.winograd = winograd.Winograd(self.workers)
        self.depthwise = numba_depthwise.Depthwise(self.workers)
        self.planes = numba_planes.Planes(self.workers)
        self.direct = numba_direct.Direct(self.workers)

    # ---------------------------------------------------------------------------- elementwise
    def matmul(self, a, b):
        """Large 2-D products split by rows of `a` over the threads."""
        if a.ndim != 2 or b.ndim != 2:
            return np.matmul(a, b)
        if a.size * b.shape[-1] < self.SPLIT_MATMUL_FLOPS:
            with self.workers.one_blas_thread():
                return np.matmul(a, b)
        out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))

        def rows(span):
            np.matmul(a[span[0]:span[1]], b, out=out[span[0]:span[1]])

        self.workers.in_parts(rows, ranges(a.shape[0], self.workers.count))
        return out

    def relu(self, x):
        """Compiled for floating-point arrays; others get the reference's promotion."""
        out = np.empty_like(x)  # x's memory layout
        memory = _flat_memory(x, out) if x.dtype.kind == "f" else None
        if memory is None:
            return super().relu(x)
        self._in_native_parts(_relu, _relu_part, self._native_parts(memory[0]), *memory)
        return out

    def relu_backward(self, grad, out):
        """One pass and no temporary (the reference makes three, and two bool arrays)."""
        result = np.empty_like(out)
        memory = _flat_memory(grad, out, result)
        if memory is None:
            return super().relu_backward(grad, out)
        self._in_native_parts(_relu_backward, _relu_backward_part,
                              self._native_parts(memory[0]), *memory)
        return result

    # Short passes over float32 data (ReLU, batch norm, the activations below) go to the
    # threads as native jobs (numba_workers.py), in parts of NATIVE_PART_ELEMENTS: a hand-off
    # there costs a few microseconds. The number of parts depends on the size alone, not on
    # the number of threads, so partial sums add up the same on any machine. Other dtypes
    # (float64 for gradient checks) run in one part on the calling thread.
    NATIVE_PART_ELEMENTS = 1 << 16

    def _native_parts(self, first) -> int:
        """How many parts a native pass over `first` (1-D, or rows) takes."""
        if first.dtype != np.float32:
            return 1
        return max(1, min(len(first), first.size // self.NATIVE_PART_ELEMENTS))

    def _in_native_parts(self, kernel, part_function, parts: int, *arguments) -> None:
        """kernel(*arguments, part, parts) for every part: by part_function on the threads
        (arrays as addresses, then the first array's length and width) for float32 data."""
        first = arguments[0]
        if parts == 1:
            kernel(*arguments, 0, 1)
            return
        self.workers.in_native_parts(
            part_function, parts,
            *[address(a) if isinstance(a, np.ndarray) else int(a) for a in arguments],
            len(first), first.shape[1] if first.ndim == 2 else 1)

    # Sigmoid, tanh, SiLU, GELU and erf: compiled float32 loops that LLVM vectorises (an exp of
    # our own, since Numba's calls libm's scalar one), on the threads as native jobs. Other
    # dtypes (float64 for gradient checks) get the reference (erf: libm's).
    def sigmoid(self, x):
        out = self._float32_loop(_sigmoid32, _sigmoid32_part, x)
        return super().sigmoid(x) if out is None else out

    def tanh(self, x):
        out = self._float32_loop(_tanh32, _tanh32_part, x)
        return super().tanh(x) if out is None else out

    def silu(self, x):
        out = self._float32_loop(_silu32, _silu32_part, x)
        return super().silu(x) if out is None else out

    def silu_backward(self, grad, x):
        out = self._float32_loop(_silu_backward32, _silu_backward32_part, grad, x)
        return super().silu_backward(grad, x) if out is None else out

    def _float32_loop(self, kernel, part_function, *inputs):
        """kernel(*flat inputs, flat out, part, parts) over float32 inputs that share one
        memory layout, which the result gets too; None for other inputs."""
        out = _empty_apart(inputs[-1], *inputs)
        memory = _flat_memory(*inputs, out) if out.dtype == np.float32 else None
        if memory is None:
            return None
        self._in_native_parts(kernel, part_function, self._native_parts(memory[0]), *memory)
        return out

    def gelu(self, x):
        out = self._float32_loop(_gelu32, _gelu32_part, x)
        return super().gelu(x) if out is None else out

    def gelu_backward(self, grad, x):
        out = self._float32_loop(_gelu_backward32, _gelu_backward32_part, grad, x)
        return super().gelu_backward(grad, x) if out is None else out

    def erf(self, x):
        """float32: a compiled vectorised loop over the threads (XLA's and Eigen's float32
        approximation, within 3.3e-7 relative); float64: libm's erf per element."""
        out = self._float32_loop(_erf32, _erf32_part, x)
        return _erf(x) if out is None else out

    def channels_last(self, nchw):
        """Each thread transposes its own images with a compiled loop (NumPy's transposing
        copy runs on one core, at about a third of the speed)."""
        if is_channels_last(nchw):
            return nchw
        out = np.empty(nhwc_shape(nchw.shape), nchw.dtype)

        def images(span):
            _fill_nhwc(nchw[span[0]:span[1]], out[span[0]:span[1]])

        self.workers.in_parts(images, ranges(len(nchw), self.workers.count))
        return out.transpose(0, 3, 1, 2)

    # -------------------------------------------------------------------------------- conv2d
    def conv2d_forward(self, x, weight, stride, padding, dilation, groups):
        x = self.channels_last(x)
        out_shape = (len(x), len(weight), *output_hw(x.shape[2:], weight.shape[2:], stride,
                                                     padding, dilation))
        if numba_direct.fits(weight.shape, x.shape, out_shape, stride, padding, dilation, groups,
                             x, weight):
            return self.direct.forward(x, weight, padding)
        if winograd.fits(weight.shape, stride, dilation, groups, out_shape):
            return self.winograd.forward(x, weight, padding)
        if numba_depthwise.fits(weight.shape, x.shape[1], groups, x, weight):
            return self.depthwise.forward(x, weight, stride, padding, dilation)
        if numba_planes.fits(weight.shape, x.shape, stride, dilation, groups, x, weight):
            return self.planes.forward(x, weight, padding)
        k, _, kh, kw = weight.shape
        windows, pad = self._windows(x, (kh, kw), stride, padding, dilation, groups)
        n, oh, ow = windows.shape[1:4]
        weights = weight_rows(weight, groups).swapaxes(1, 2)
        out = np.empty((groups, n * oh * ow, k // groups), x.dtype)

        def product(images):
            rows, cols = self._columns(windows, pad, images)
            np.matmul(cols, weights, out=out[:, rows])

        self.workers.in_parts(product, self._chunks(windows))
        return groups_to_nchw(out, (n, oh, ow, k))

    def conv2d_backward_input(self, grad, weight, input_shape, stride, padding, dilation, groups):
        grad = self.channels_last(grad)
        if numba_direct.fits(weight.shape, input_shape, grad.shape, stride, padding, dilation,
                             groups, grad, weight):
            return self.direct.backward(grad, None, weight, weight.shape, input_shape,
                                        padding)[0]
        if winograd.backward_fits(weight.shape, stride, padding, dilation, groups, grad.shape):
            return self.winograd.backward_input(grad, weight, padding)
        if numba_depthwise.fits(weight.shape, input_shape[1], groups, grad, weight):
            return self.depthwise.backward(grad, None, weight, weight.shape, input_shape, stride,
                                           padding, dilation)[0]
        if numba_planes.fits(weight.shape, input_shape, stride, dilation, groups, grad,
                             weight):
            return self.planes.backward(grad, None, weight, weight.shape, input_shape,
                                        padding)[0]
        n, c, h, w = input_shape
        k, _, kh, kw = weight.shape
        pixels = grad.shape[2] * grad.shape[3]
        rows = grad_matrix(grad, groups)
        weights = weight_rows(weight, groups)
        grad_x = np.empty((n, h, w, c), grad.dtype)
        oh, ow = grad.shape[2:]

        def column_gradients(images):
            """One GEMM for the column gradients of a thread's images, then col2im."""
            start, stop = images
            cols = self.workers.scratch((groups, (stop - start) * pixels) + weights.shape[2:],
                                        grad.dtype)
            np.matmul(rows[:, start * pixels:stop * pixels], weights, out=cols)
            _col2im(cols, grad_x[start:stop], oh, ow, kh, kw, *stride, *padding, *dilation)

        self.workers.in_parts(column_gradients, ranges(n, self.workers.count))
        return grad_x.transpose(0, 3, 1, 2)

    def conv2d_backward_weight(self, grad, x, weight_shape, stride, padding, dilation, groups):
        grad, x = self.channels_last(grad), self.channels_last(x)
        if numba_direct.fits(weight_shape, x.shape, grad.shape, stride, padding, dilation, groups,
                             grad, x):
            return self.direct.backward(grad, x, None, weight_shape, x.shape, padding)[1]
        if winograd.fits(weight_shape, stride, dilation, groups, grad.shape):
            return self.winograd.backward_weight(grad, x, padding)
        if numba_depthwise.fits(weight_shape, x.shape[1], groups, grad, x):
            return self.depthwise.backward(grad, x, None, weight_shape, x.shape, stride, padding,
                                           dilation)[1]
        if numba_planes.fits(weight_shape, x.shape, stride, dilation, groups, grad, x):
            return self.planes.backward(grad, x, None, weight_shape, x.shape, padding)[1]
        windows, pad = self._windows(x, weight_shape[2:], stride, padding, dilation, groups)
        rows = grad_matrix(grad, groups)

        def partial_sum(images):
            span, cols = self._columns(windows, pad, images)
            return np.matmul(rows[:, span].swapaxes(1, 2), cols)

        grad_w = sum(self.workers.in_parts(partial_sum, self._chunks(windows)))  # chunk order
        return weight_from_rows(grad_w, weight_shape, groups)

    def conv2d_backward(self, grad, x, weight, stride, padding, dilation, groups,
                        input_grad=True, weight_grad=True):
        """Winograd's two gradients in one pass over the batch (winograd.py), and the
        depthwise ones (numba_depthwise.py). The inputs are made channels-last here, once for
        both gradients (free when they already are)."""
        grad = self.channels_last(grad)
        x = self.channels_last(x) if weight_grad else x
        if (input_grad or weight_grad) and numba_direct.fits(
                weight.shape, x.shape, grad.shape, stride, padding, dilation, groups, grad, x,
                weight):
            return self.direct.backward(grad, x if weight_grad else None,
                                        weight if input_grad else None, weight.shape, x.shape,
                                        padding)
        if input_grad and weight_grad and winograd.backward_fits(weight.shape, stride, padding,
                                                                 dilation, groups, grad.shape):
            return self.winograd.backward(grad, x, weight, padding)
        if (input_grad or weight_grad) and numba_depthwise.fits(weight.shape, x.shape[1], groups,
                                                                grad, x, weight):
            return self.depthwise.backward(grad, x if weight_grad else None,
                                           weight if input_grad else None, weight.shape, x.shape,
                                           stride, padding, dilation)
        if (input_grad or weight_grad) and numba_planes.fits(weight.shape, x.shape, stride,
                                                             dilation, groups, grad, x, weight):
            return self.planes.backward(grad, x if weight_grad else None,
                                        weight if input_grad else None, weight.shape, x.shape,
                                        padding)
        return super().conv2d_backward(grad, x, weight, stride, padding, dilation, groups,
                                       input_grad, weight_grad)

    def _windows(self, x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
                 groups: int):
        """(view, pad): a (groups, N, OH, OW, kH, kW, C/groups) strided view of every window
        of x padded into a scratch buffer (channels-last, so each window row is whole channel
        vectors), and `pad(start, stop)`, which writes images start..stop into that buffer:
        each thread pads its own chunk, and im2col reads it back from cache."""
        n, c, h, w = x.shape
        oh, ow = output_hw((h, w), kernel, stride, padding, dilation)
        padded, pad = self._padded(x.transpose(0, 2, 3, 1), padding)
        sn, sh, sw, sc = padded.strides
        cg = c // groups
        view = np.lib.stride_tricks.as_strided(
            padded, shape=(groups, n, oh, ow, kernel[0], kernel[1], cg),
            strides=(cg * sc, sn, sh * stride[0], sw * stride[1], sh * dilation[0],
                     sw * dilation[1], sc))
        return view, pad

    def _padded(self, nhwc, padding: Pair):
        """(buffer, pad): a zero-padded scratch copy of `nhwc` (or `nhwc` itself, unpadded),
        and `pad(start, stop)`, which writes images start..stop into it."""
        (ph, pw), (n, h, w, c) = padding, nhwc.shape
        if padding == (0, 0):
            return nhwc, lambda start, stop: None
        out = self.workers.scratch((n, h + 2 * ph, w + 2 * pw, c), nhwc.dtype)

        def pad(start: int, stop: int) -> None:
            images = out[start:stop]
            images[:, :ph] = 0
            images[:, ph + h:] = 0
            images[:, ph:ph + h, :pw] = 0
            images[:, ph:ph + h, pw + w:] = 0
            images[:, ph:ph + h, pw:pw + w] = nhwc[start:stop]

        return out, pad

    def _chunks(self, windows) -> list[tuple[int, int]]:
        """The batch cut into image ranges whose im2col columns take at most CHUNK_BYTES."""
        n, oh, ow = windows.shape[1:4]
        row_bytes = math.prod(windows.shape[4:]) * windows.dtype.itemsize
        return chunk_ranges(n, CHUNK_BYTES // max(1, oh * ow * row_bytes), self.workers.count)

    def _columns(self, windows, pad, images: tuple[int, int]):
        """(row span, im2col columns) for an image range, padded first by `pad`: columns
        (groups, rows, kH*kW*C/groups) in a per-thread scratch buffer that the thread's next
        chunk overwrites."""
        groups, n, oh, ow = windows.shape[:4]
        start, stop = images
        pad(start, stop)
        chunk = windows[:, start:stop]
        cols = self.workers.scratch(
            (groups, (stop - start) * oh * ow, math.prod(windows.shape[4:])), windows.dtype)
        np.copyto(cols.reshape(chunk.shape), chunk)
        return slice(start * oh * ow, stop * oh * ow), cols

    # ------------------------------------------------------------------------------- pooling
    def maxpool2d_forward(self, x, kernel, stride, padding):
        out, argmax = _pooled_like(x.shape, kernel, stride, padding, x.dtype,
                                   window_index_dtype(kernel))
        if _two_by_two(kernel, stride, padding):
            self._over_images(_maxpool2x2_forward, [x], [out, argmax])
        else:
            self._over_images(_maxpool_forward, [x], [out, argmax], *kernel, *stride, *padding)
        return out.transpose(0, 3, 1, 2), argmax.transpose(0, 3, 1, 2)

    def maxpool2d_backward(self, grad, argmax, input_shape, kernel, stride, padding):
        out = np.empty(nhwc_shape(input_shape), grad.dtype)
        if _two_by_two(kernel, stride, padding):
            self._over_images(_maxpool2x2_backward, [grad, argmax], [out])
        else:
            self._over_images(_maxpool_backward, [grad, argmax], [out], *kernel, *stride,
                              *padding)
        return out.transpose(0, 3, 1, 2)

    def avgpool2d_forward(self, x, kernel, stride, padding):
        out = _pooled_like(x.shape, kernel, stride, padding, x.dtype)[0]
        self._over_images(_avgpool_forward, [x], [out], *kernel, *stride, *padding)
        return out.transpose(0, 3, 1, 2)

    def avgpool2d_backward(self, grad, input_shape, kernel, stride, padding):
        out = np.empty(nhwc_shape(input_shape), grad.dtype)
        self._over_images(_avgpool_backward, [grad], [out], *kernel, *stride, *padding)
        return out.transpose(0, 3, 1, 2)

    def _over_images(self, kernel, inputs, outputs, *geometry):
        """kernel(inputs..., outputs..., *geometry) on each thread's range of images: NCHW
        inputs as channels-last copies of that range (made by the thread, free when they are
        channels-last already), outputs as slices of (N, H, W, C) arrays."""

        def images(span):
            start, stop = span
            kernel(*[_nhwc(a[start:stop]) for a in inputs], *[a[start:stop] for a in outputs],
                   *geometry)

        self.workers.in_parts(images, ranges(len(outputs[0]), self.workers.count))

    # ------------------------------------------------------------------------- normalisation
    # Compiled over channels-last memory seen as rows of k channel vectors (the reference's
    # _ChannelRows, narrower: KERNEL_ROW_WIDTH), per-channel vectors tiled to match; other
    # layouts get the reference.
    def batch_norm_stats(self, x):
        """Per-channel mean and biased variance in float64, in one pass: the sums of d and d^2
        for d = x - shift, the shift being the first pixel's values. E[d^2] - E[d]^2 cancels
        only as far as the mean lies from that shift, a few standard deviations: a few of
        float64's 53 bits, where E[x^2] - E[x]^2 would lose the lot for data far from 0."""
        if x.size == 0 or not is_channels_last(x):
            return super().batch_norm_stats(x)
        layout = _kernel_rows(x)
        rows = layout.view(x)
        shift = rows[0, :x.shape[1]].astype(np.float64)
        parts = self._native_parts(rows)
        sums = np.zeros((parts, 2, rows.shape[1]))
        self._in_native_parts(_batch_norm_sums, _batch_norm_sums_part, parts, rows,
                              layout.spread(shift), sums)
        mean, square = sums.sum(0).reshape(2, layout.k, -1).sum(1) / layout.count
        return shift + mean, np.maximum(square - mean * mean, 0)

    def batch_norm_forward(self, x, weight, bias, mean, var, eps):
        if not is_channels_last(x):
            return super().batch_norm_forward(x, weight, bias, mean, var, eps)
        alpha, beta = self._batch_norm_affine(weight, bias, mean, var, eps)
        layout = _kernel_rows(x)
        rows = layout.view(x)
        out = np.empty_like(rows)
        self._in_native_parts(_batch_norm_apply, _batch_norm_apply_part, self._native_parts(rows),
                              rows, *_spread(layout, x.dtype, alpha, beta), out)
        return layout.unview(out)

    def batch_norm_backward(self, grad, x, weight, mean, var, eps, training, needs, reduce=None):
        """Training mode: two compiled passes, the sums of grad and grad * xhat (float64),
        then d x = scale * (grad - mean(grad) - xhat * mean(grad * xhat))."""
        if not (training and is_channels_last(x)):
            return super().batch_norm_backward(grad, x, weight, mean, var, eps, training, needs,
                                               reduce)
        invstd = 1 / np.sqrt(var.astype(np.float64) + eps)
        scale = invstd if weight is None else invstd * weight
        layout = _kernel_rows(x)
        rows, grads = layout.view(x), np.ascontiguousarray(layout.view(grad))
        mean, invstd = _spread(layout, x.dtype, mean, invstd)
        parts = self._native_parts(rows) if grads.dtype == rows.dtype else 1
        lane_sums = np.zeros((parts, 2, rows.shape[1]))
        self._in_native_parts(_batch_norm_grad_sums, _batch_norm_grad_sums_part, parts, grads,
                              rows, mean, invstd, lane_sums)
        sums = lane_sums.sum(0).reshape(2, layout.k, -1).sum(1)
        totals, count = sums, layout.count
        if reduce is not None:
            totals, count = reduce(sums.copy(), count)
        needs_x, needs_w, needs_b = needs
        grad_x = None
        if needs_x:
            grad_x = np.empty_like(rows)
            self._in_native_parts(_batch_norm_grad_input, _batch_norm_grad_input_part, parts,
                                  grads, rows, mean, invstd,
                                  *_spread(layout, x.dtype, scale, totals[0] / count,
                                           totals[1] / -count), grad_x)
            grad_x = layout.unview(grad_x)
        return grad_x, sums[1] if needs_w else None, sums[0] if needs_b else None

    # Group norm, compiled in x's memory layout: C order as rows (N * G, C/G, S), one per
    # sample and group, each in cache for all of its passes; channels-last (what the conv layers
    # return) as blocks (N, S, C), one per sample, the inner loops along whole channel vectors.
    # Any other layout is copied into C order. Parts of the rows or samples go to the threads
    # from SPLIT_NORM_ELEMENTS on: below it the hand-off (0.1 to 0.2 ms on a shared 2-core VM,
    # where two threads ran these kernels only about 1.3 times as fast as one) costs more.
    SPLIT_NORM_ELEMENTS = 1 << 20

    def group_norm_forward(self, x, weight, bias, num_groups, eps):
        """Per row or block: the mean and the biased variance by two passes (no cancellation),
        then (x - mean) * (invstd * weight) + bias in one."""
        if x.size == 0 or x.dtype not in (np.float32, np.float64):
            return super().group_norm_forward(x, weight, bias, num_groups, eps)
        n, channels = x.shape[:2]
        weight, bias = _channel_vectors(weight, bias, channels, x.dtype)
        mean, invstd = np.empty((n, num_groups)), np.empty((n, num_groups))
        eps = float(eps)  # one compiled signature
        if _per_sample(x):
            blocks = _rows(x).reshape(n, -1, channels)
            out = np.empty_like(blocks)
            self._norm_parts(_group_norm_forward_nhwc, n, x.size, blocks, weight, bias,
                             num_groups, eps, out, mean, invstd)
            return _unrows(out, x.shape), mean, invstd
        rows = np.ascontiguousarray(x).reshape(n * num_groups, channels // num_groups, -1)
        out = np.empty_like(rows)
        self._norm_parts(_group_norm_forward, len(rows), x.size, rows, weight, bias, num_groups,
                         eps, out, mean.reshape(-1), invstd.reshape(-1))
        return out.reshape(x.shape), mean, invstd

    def group_norm_backward(self, grad, x, weight, mean, invstd, num_groups, needs):
        """Per row or block: the sums of grad and grad * xhat per channel in one pass, then,
        if needed, d x in a second. `grad` is brought to x's layout (free when it
        is in it already, as when both come from conv layers)."""
        if x.size == 0 or x.dtype not in (np.float32, np.float64):
            return super().group_norm_backward(grad, x, weight, mean, invstd, num_groups, needs)
        n, channels = x.shape[:2]
        needs_x, needs_w, needs_b = needs
        weight, _ = _channel_vectors(weight, None, channels, x.dtype)
        grad = grad.astype(x.dtype, copy=False)
        sums = np.empty((2, n, channels))  # sum(grad), sum(grad * xhat) per sample and channel
        if _per_sample(x):
            blocks = _rows(x).reshape(n, -1, channels)
            grad_x = np.empty_like(blocks) if needs_x else None
            self._norm_parts(_group_norm_backward_nhwc, n, x.size, self._blocks(grad), blocks,
                             weight, num_groups, mean, invstd, grad_x, sums)
            grad_x = _unrows(grad_x, x.shape) if needs_x else None
        else:
            rows = np.ascontiguousarray(x).reshape(n * num_groups, channels // num_groups, -1)
            grad_x = np.empty_like(rows) if needs_x else None
            self._norm_parts(_group_norm_backward, len(rows), x.size,
                             np.ascontiguousarray(grad).reshape(rows.shape), rows, weight,
                             num_groups, mean.reshape(-1), invstd.reshape(-1), grad_x, sums)
            grad_x = grad_x.reshape(x.shape) if needs_x else None
        return (grad_x, sums[1].sum(axis=0).astype(x.dtype) if needs_w else None,
                sums[0].sum(axis=0).astype(x.dtype) if needs_b else None)

    # Layer norm of C-order data as rows (M, D), D the normalised size (what linear layers and
    # attention return): a row's statistics and affine map in one compiled kernel, the
    # backward's row sums and d x in another. The weight and bias gradients sum the rows in
    # float64 per part of LAYER_NORM_ROWS rows, then the parts in order: the same bits
    # whatever the number of threads. Other layouts and dtypes: the reference.
    LAYER_NORM_ROWS = 256

    def layer_norm_forward(self, x, weight, bias, ndim, eps):
        if not _compiled_rows(x):
            return super().layer_norm_forward(x, weight, bias, ndim, eps)
        rows = x.reshape(-1, math.prod(x.shape[x.ndim - ndim:]))
        weight, bias = _channel_vectors(_flat(weight), _flat(bias), rows.shape[1], x.dtype)
        out = _empty_apart(rows, rows)
        mean, invstd = np.empty(len(rows), x.dtype), np.empty(len(rows), x.dtype)
        self._norm_parts(_layer_norm_forward, len(rows), x.size, rows, weight, bias,
                         float(eps), out, mean, invstd)
        kept = x.shape[:x.ndim - ndim] + (1,) * ndim
        return out.reshape(x.shape), mean.reshape(kept), invstd.reshape(kept)

    def layer_norm_backward(self, grad, x, weight, mean, invstd, ndim, needs):
        if not _compiled_rows(x):
            return super().layer_norm_backward(grad, x, weight, mean, invstd, ndim, needs)
        needs_x, needs_w, needs_b = needs
        normalized = x.shape[x.ndim - ndim:]
        rows = x.reshape(-1, math.prod(normalized))
        grads = np.ascontiguousarray(grad, x.dtype).reshape(rows.shape)
        weight, _ = _channel_vectors(_flat(weight), None, rows.shape[1], x.dtype)
        per_part = self.LAYER_NORM_ROWS
        sums = np.zeros((-(-len(rows) // per_part), 2, rows.shape[1]))
        grad_x = _empty_apart(rows, grads, rows) if needs_x else None
        # whole parts to each thread
        spans = [(per_part * a, min(per_part * b, len(rows)))
                 for a, b in ranges(len(sums), 1 if x.size < self.SPLIT_NORM_ELEMENTS
                                    else 4 * self.workers.count)]
        mean, invstd = _flat(mean), _flat(invstd)
        self.workers.in_parts(
            lambda span: _layer_norm_backward(grads, rows, weight, mean, invstd, grad_x, sums,
                                              per_part, *span), spans)
        sums = sums.sum(axis=0).astype(x.dtype)
        return (grad_x.reshape(x.shape) if needs_x else None,
                sums[1].reshape(normalized) if needs_w else None,
                sums[0].reshape(normalized) if needs_b else None)

    def _norm_parts(self, kernel, count: int, size: int, *args) -> None:
        """kernel(*args, start, stop) over `count` rows or samples of `size` elements in all:
        on the calling thread alone for small data, else in parts for the threads (a few per
        thread, so that a thread slowed by another process takes fewer)."""
        parts = 1 if size < self.SPLIT_NORM_ELEMENTS else min(count, 4 * self.workers.count)
        self.workers.in_parts(lambda span: kernel(*args, *span), ranges(count, parts))

    def _blocks(self, a):
        """(N, S, C) blocks of (N, C, ...) a's values in channels-last memory: free when a is
        channels-last already, one compiled transpose for other 4-D data."""
        if a.ndim == 4:
            a = self.channels_last(a)
        return np.ascontiguousarray(_rows(a)).reshape(a.shape[0], -1, a.shape[1])

    def warmup(self) -> None:
        """Compile (or load from the cache) the float32 kernels on a tiny problem, and the
        native part functions."""
        for part in native_parts():
            part.compile()
        x = np.ones((1, 8, 4, 4), np.float32)
        w = np.ones((8, 8, 3, 3), np.float32)
        self.channels_last(x)
        self.relu_backward(x, self.relu(x))
        self.silu_backward(x, self.silu(self.sigmoid(self.tanh(x))))
        self.erf(x)
        self.gelu_backward(x, self.gelu(x))
        for stride in (1, 1), (2, 2):  # Winograd's kernels, then im2col's
            out = self.conv2d_forward(x, w, stride, (1, 1), (1, 1), 1)
            self.conv2d_backward_input(out, w, x.shape, stride, (1, 1), (1, 1), 1)
            self.conv2d_backward_weight(out, x, w.shape, stride, (1, 1), (1, 1), 1)
        depthwise = (w[:, :1], (1, 1), (1, 1), (1, 1), 8)  # the weight and geometry
        out = self.conv2d_forward(x, *depthwise)
        for wanted in (True, True), (True, False), (False, True):  # each kernel of the backward
            self.conv2d_backward(out, x, *depthwise, *wanted)
        sixteen = np.ones((16, 16, 1, 3), np.float32)  # the direct path's (on any CPU)
        rows = self.channels_last(np.ones((1, 16, 1, numba_direct.PIXELS), np.float32))
        out = self.direct.forward(rows, sixteen, (0, 1))
        self.direct.backward(out, rows, sixteen, sixteen.shape, rows.shape, (0, 1))
        planes = (w[:2, :1], (1, 1), (1, 1), (1, 1), 1)  # few input channels
        out = self.conv2d_forward(x[:, :1], *planes)
        for wanted in (True, True), (True, False), (False, True):
            self.conv2d_backward(out, x[:, :1], *planes, *wanted)
        for window in ((2, 2), (3, 3)):  # 2x2 at stride 2 has kernels of its own
            pooled, argmax = self.maxpool2d_forward(x, window, (2, 2), (0, 0))
            self.maxpool2d_backward(pooled, argmax, x.shape, window, (2, 2), (0, 0))
        pooled = self.avgpool2d_forward(x, (2, 2), (2, 2), (0, 0))
        self.avgpool2d_backward(pooled, x.shape, (2, 2), (2, 2), (0, 0))
        x = self.channels_last(x)
        mean, var = self.batch_norm_stats(x)
        out = self.batch_norm_forward(x, None, None, mean, var, 1e-5)
        self.batch_norm_backward(out, x, None, mean, var, 1e-5, True, (True, True, True))
        rows = np.ascontiguousarray(x).reshape(4, -1)
        out, mean, invstd = self.layer_norm_forward(rows, None, None, 1, 1e-5)
        for needs in (True, True, True), (False, True, True):
            self.layer_norm_backward(out, rows, None, mean, invstd, 1, needs)
        for images in x, np.ascontiguousarray(x):  # channels-last blocks, then C-order rows
            out, mean, invstd = self.group_norm_forward(images, None, None, 2, 1e-5)
            for needs in (True, True, True), (False, True, True):
                self.group_norm_backward(out, images, None, mean, invstd, 2, needs)


def native_parts() -> list[NativePart]:
    return [value for value in globals().values() if isinstance(value, NativePart)]


def create() -> NumbaBackend:
    return NumbaBackend(worker_count())


def _channel_vectors(weight, bias, channels, dtype):
    """A group norm's weight and bias as contiguous (C,) vectors of x's dtype (one compiled
    signature): ones and zeros for None."""
    weight = np.ones(channels, dtype) if weight is None else np.ascontiguousarray(weight, dtype)
    bias = np.zeros(channels, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    return weight, bias


def _compiled_rows(x) -> bool:
    """Whether layer norm takes x as compiled rows: C-order float32/float64 data."""
    return x.size > 0 and x.dtype in (np.float32, np.float64) and x.flags.c_contiguous


def _flat(a):
    """A parameter or statistic as a 1-D vector (None stays None)."""
    return None if a is None else a.reshape(-1)


def _per_sample(x) -> bool:
    """Whether group norm takes x as channels-last blocks (N, S, C): for channels-last memory,
    and for C-order data without spatial extent (the same memory), whose C-order rows would
    hold one value per channel."""
    spatial = x.size // (x.shape[0] * x.shape[1])
    return is_channels_last(x) and (spatial == 1 or not x.flags.c_contiguous)


def _rows(x):
    """Channels-last (N, C, ...) memory as C-contiguous rows (M, C) of channel vectors."""
    return x.transpose(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


# Batch norm's compiled loops run along a row as vectors only when it holds a few vectors' worth
# of values: one pixel's 16 channels (ResNet's first stage) left them scalar.
KERNEL_ROW_WIDTH = 64


def _kernel_rows(x):
    return _ChannelRows(np, x.shape, KERNEL_ROW_WIDTH)


def _spread(layout, dtype, *vectors):
    """Per-channel vectors tiled to the rows' width, in x's dtype."""
    return [layout.spread(np.asarray(v, dtype)) for v in vectors]


def _unrows(rows, nchw_shape):
    """The inverse of `_rows`: rows (M, C) as an (N, C, ...) view of channels-last memory."""
    ndim = len(nchw_shape)
    return rows.reshape(nhwc_shape(nchw_shape)).transpose(0, ndim - 1, *range(1, ndim - 1))


# 4K aliasing: a load whose address agrees in its low 12 bits with an earlier store still in
# flight waits for that store, as if the two overlapped. Same-size arrays allocated one after
# another often start a few bytes apart modulo 4 KB, so a loop writing out[i] from x[i] stalls
# on every vector. The float32 loops and layer norm therefore place their outputs _APART bytes
# away; ReLU and batch norm gained nothing from it (docs/performance.md, "4K aliasing").
_PAGE = 4096
_APART = 256


def _empty_apart(like, *inputs):
    """An empty array of `like`'s shape, dtype and memory order (as np.empty_like) whose first
    element lies at least _APART bytes away, modulo 4 KB, from each input's."""
    out = np.empty_like(like)
    if like.nbytes < _PAGE:  # NumPy scalars too
        return out
    starts = [a.ctypes.data for a in inputs]
    if _apart(out.ctypes.data, starts):
        return out
    strides = out.strides  # empty_like's dense strides in like's memory order
    del out
    buffer = np.empty(like.nbytes + _PAGE, np.uint8)
    shift = next((shift for shift in range(0, _PAGE, _APART)
                  if _apart(buffer.ctypes.data + shift, starts)), 0)
    return np.ndarray(like.shape, like.dtype, buffer, shift, strides)


def _apart(address, starts):
    """Whether `address` lies at least _APART bytes away, modulo 4 KB, from each of `starts`."""
    return all(_APART <= (address - start) % _PAGE <= _PAGE - _APART for start in starts)


def _flat_memory(*arrays):
    """1-D views of arrays that lay out their elements in the same order in memory (C order,
    channels-last, any order), matching element for element; None if they do not."""
    if any(a.shape != arrays[0].shape or a.dtype != arrays[0].dtype for a in arrays):
        return None
    outermost_first = np.argsort(arrays[0].strides, kind="stable")[::-1]
    views = [a.transpose(outermost_first) for a in arrays]
    if not all(view.flags.c_contiguous for view in views):
        return None
    return [view.reshape(-1) for view in views]


def _nhwc(nchw):
    """The (N, H, W, C) C-contiguous array of an NCHW one: free for channels-last memory (what
    the kernels return), one compiled copy otherwise."""
    nhwc = nchw.transpose(0, 2, 3, 1)
    if nhwc.flags.c_contiguous:
        return nhwc
    out = np.empty(nhwc.shape, nchw.dtype)
    _fill_nhwc(nchw, out)
    return out


def _fill_nhwc(nchw, out):
    """out (N, H, W, C) = nchw's values, compiled for C-contiguous NCHW, NumPy's copy else."""
    if not nchw.flags.c_contiguous:
        np.copyto(out, nchw.transpose(0, 2, 3, 1))
        return
    n, c, h, w = nchw.shape
    _transpose_images(nchw.reshape(n, c, h * w), out.reshape(n, h * w, c))


def _pooled_like(nchw_shape, kernel, stride, padding, dtype, index_dtype=None):
    """Empty channels-last (N, OH, OW, C) pooling results (and argmax offsets)."""
    n, c, h, w = nchw_shape
    oh, ow = output_hw((h, w), kernel, stride, padding)
    out = np.empty((n, oh, ow, c), dtype)
    return out, None if index_dtype is None else np.empty(out.shape, index_dtype)


@functools.cache
def _compiled_erf():
    return vectorize(["float32(float32)", "float64(float64)"], cache=True)(_scalar_erf)


def _erf(x):
    return _compiled_erf()(x)


def _scalar_erf(x):
    return math.erf(x)


# ------------------------------------------------------------------------------------ kernels
# Arguments are C-contiguous channels-last (N, H, W, C) arrays, rows (M, C) of channel vectors
# or flat vectors, and plain ints; the innermost loops run over channels, so they read and
# write contiguous memory.


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose bits are the int32 `bits` (LLVM's bitcast; vectorises)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.FloatType())
    return types.float32(types.int32), codegen


@register_jitable(inline="always")
def _exp32(z):
    """e^z for float32 without a branch, so that loops calling it vectorise: z = n ln 2 + r,
    |r| <= ln 2 / 2, e^r by Cephes expf's polynomial, 2^n built from its exponent bits (within
    2 ulp; n = 128 gives inf, n = -127 gives 0, NaN stays NaN)."""
    z = z if not z < np.float32(-88.0) else np.float32(-88.0)  # "not <": NaN passes
    z = z if not z > np.float32(89.0) else np.float32(89.0)
    n = np.floor(z * np.float32(1.4426950408889634) + np.float32(0.5))
    r = z - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)  # ln 2 in two parts
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    n = n if n == n else np.float32(0.0)  # NaN's exponent: any, p is NaN already
    return p * _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))


# The passes that go to the threads as native jobs (the float32 loops below, ReLU, batch norm):
# kernel(*arrays, part, parts) takes its part of the rows (of the elements, for 1-D arrays); a
# part function of the same name + "_part" finds its float32 arrays at the addresses its
# arguments give, then the count and the width.
# The loops run over slices from 0: from a part's first index, which might be negative as far
# as LLVM knows, every access would check for negative indices and none would vectorise (ten
# times slower).

@register_jitable
def _part_of(a, part, parts):
    """Rows count * part // parts up to the next part's of a (count = len(a))."""
    return a[len(a) * part // parts:len(a) * (part + 1) // parts]


# error_model="numpy": a float division by zero gives inf instead of raising, which lets LLVM
# vectorise the loops below (the check for zero kept them scalar); "contract" lets it fuse
# multiply-adds.
@register_jitable(inline="always")
def _erf32_of(v):
    """erf in float32 as XLA and Eigen compute it: x P(x^2) / Q(x^2) with x clamped to
    [-4, 4] (beyond, erf is 1 in float32); NaN passes the clamps, -0 keeps its sign."""
    f32 = np.float32
    v = v if not v > f32(4.0) else f32(4.0)
    v = v if not v < f32(-4.0) else f32(-4.0)
    v2 = v * v
    p = v2 * f32(-2.72614225801306e-10) + f32(2.77068142495902e-08)
    p = v2 * p + f32(-2.10102402082508e-06)
    p = v2 * p + f32(-5.69250639462346e-05)
    p = v2 * p + f32(-7.34990630326855e-04)
    p = v2 * p + f32(-2.95459980854025e-03)
    p = v2 * p + f32(-1.60960333262415e-02)
    q = v2 * f32(-1.45660718464996e-05) + f32(-2.13374055278905e-04)
    q = v2 * q + f32(-1.68282697438203e-03)
    q = v2 * q + f32(-7.37332916720468e-03)
    q = v2 * q + f32(-1.42647390514189e-02)
    return v * p / q


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _erf32(x, out, part, parts):
    x, out = _part_of(x, part, parts), _part_of(out, part, parts)
    for i in range(x.size):
        out[i] = _erf32_of(x[i])


# GELU in one pass each way, where the reference's NumPy expression makes five passes forward and
# nine backward over the activations (a ViT's MLP: 64 x 50 x 256 values a layer). No "contract":
# with fused multiply-adds the backward's vector and scalar loops (LLVM picks one at run time
# from where the arrays lie) rounded differently, so the same step gave other bits.
@njit(cache=True, nogil=True, error_model="numpy")
def _gelu32(x, out, part, parts):
    f32 = np.float32
    x, out = _part_of(x, part, parts), _part_of(out, part, parts)
    for i in range(x.size):
        v = x[i]
        out[i] = f32(0.5) * v * (f32(1.0) + _erf32_of(v * f32(0.7071067811865476)))


@njit(cache=True, nogil=True, error_model="numpy")
def _gelu_backward32(grad, x, out, part, parts):
    f32 = np.float32
    grad, x = _part_of(grad, part, parts), _part_of(x, part, parts)
    out = _part_of(out, part, parts)
    for i in range(x.size):
        v = x[i]
        cdf = f32(0.5) * (f32(1.0) + _erf32_of(v * f32(0.7071067811865476)))
        pdf = _exp32(f32(-0.5) * v * v) * f32(0.3989422804014327)
        out[i] = grad[i] * (cdf + v * pdf)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _sigmoid32(x, out, part, parts):
    x, out = _part_of(x, part, parts), _part_of(out, part, parts)
    for i in range(x.size):
        out[i] = np.float32(1.0) / (np.float32(1.0) + _exp32(-x[i]))


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _tanh32(x, out, part, parts):
    """tanh in float32 as Cephes' tanhf: an odd polynomial below |x| = 0.625, where
    1 - 2 / (e^2|x| + 1) would cancel, that formula above it (e^2|x| = inf gives 1), both
    computed and one selected, so the loop has no branch; -0 and NaN pass as they are."""
    f32 = np.float32
    x, out = _part_of(x, part, parts), _part_of(out, part, parts)
    for i in range(x.size):
        v = x[i]
        a = abs(v)
        z = v * v
        p = z * f32(-5.70498872745e-3) + f32(2.06390887954e-2)
        p = p * z + f32(-5.37397155531e-2)
        p = p * z + f32(1.33314422036e-1)
        p = p * z + f32(-3.33332819422e-1)
        small = v * (f32(1.0) + p * z)  # v times: -0 stays -0
        large = f32(1.0) - f32(2.0) / (_exp32(a + a) + f32(1.0))
        large = large if v > f32(0.0) else -large
        out[i] = small if not a >= f32(0.625) else large  # "not >=": NaN takes the odd branch


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _silu32(x, out, part, parts):
    x, out = _part_of(x, part, parts), _part_of(out, part, parts)
    for i in range(x.size):
        out[i] = x[i] / (np.float32(1.0) + _exp32(-x[i]))


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _silu_backward32(grad, x, out, part, parts):
    grad, x = _part_of(grad, part, parts), _part_of(x, part, parts)
    out = _part_of(out, part, parts)
    for i in range(x.size):
        s = np.float32(1.0) / (np.float32(1.0) + _exp32(-x[i]))
        out[i] = grad[i] * s * (np.float32(1.0) + x[i] * (np.float32(1.0) - s))


@NativePart
def _erf32_part(arguments, part, parts):
    n = arguments[2]
    _erf32(array_at(arguments[0], n, np.float32), array_at(arguments[1], n, np.float32),
           part, parts)


@NativePart
def _gelu32_part(arguments, part, parts):
    n = arguments[2]
    _gelu32(array_at(arguments[0], n, np.float32), array_at(arguments[1], n, np.float32),
            part, parts)


@NativePart
def _sigmoid32_part(arguments, part, parts):
    n = arguments[2]
    _sigmoid32(array_at(arguments[0], n, np.float32), array_at(arguments[1], n, np.float32),
               part, parts)


@NativePart
def _tanh32_part(arguments, part, parts):
    n = arguments[2]
    _tanh32(array_at(arguments[0], n, np.float32), array_at(arguments[1], n, np.float32),
            part, parts)


@NativePart
def _silu32_part(arguments, part, parts):
    n = arguments[2]
    _silu32(array_at(arguments[0], n, np.float32), array_at(arguments[1], n, np.float32),
            part, parts)


@NativePart
def _gelu_backward32_part(arguments, part, parts):
    n = arguments[3]
    _gelu_backward32(array_at(arguments[0], n, np.float32),
                     array_at(arguments[1], n, np.float32),
                     array_at(arguments[2], n, np.float32), part, parts)


@NativePart
def _silu_backward32_part(arguments, part, parts):
    n = arguments[3]
    _silu_backward32(array_at(arguments[0], n, np.float32),
                     array_at(arguments[1], n, np.float32),
                     array_at(arguments[2], n, np.float32), part, parts)


@njit(cache=True, nogil=True)
def _relu(x, out, part, parts):
    x, out = _part_of(x, part, parts), _part_of(out, part, parts)
    for i in range(x.size):
        out[i] = 0 if x[i] <= 0 else x[i]  # NaN is not <= 0: it stays NaN, as in PyTorch


@NativePart
def _relu_part(arguments, part, parts):
    n = arguments[2]
    _relu(array_at(arguments[0], n, np.float32), array_at(arguments[1], n, np.float32),
          part, parts)


@njit(cache=True, nogil=True)
def _relu_backward(grad, out, result, part, parts):
    grad, out = _part_of(grad, part, parts), _part_of(out, part, parts)
    result = _part_of(result, part, parts)
    for i in range(grad.size):
        result[i] = 0 if out[i] <= 0 else grad[i]


@NativePart
def _relu_backward_part(arguments, part, parts):
    n = arguments[3]
    _relu_backward(array_at(arguments[0], n, np.float32), array_at(arguments[1], n, np.float32),
                   array_at(arguments[2], n, np.float32), part, parts)


@njit(cache=True, nogil=True)
def _transpose_images(x, out, tile=32):
    """out[b] = x[b].T. Row by row of `out` (reading a column of x) unless x's rows are a
    multiple of 256 bytes long: then the column's elements fall into the same few cache sets
    and evict each other, and tile x tile blocks are faster."""
    n, rows, cols = x.shape
    for b in range(n):
        if cols % 64:
            for col in range(cols):
                for r in range(rows):
                    out[b, col, r] = x[b, r, col]
            continue
        for r0 in range(0, rows, tile):
            for c0 in range(0, cols, tile):
                for r in range(r0, min(rows, r0 + tile)):
                    for col in range(c0, min(cols, c0 + tile)):
                        out[b, col, r] = x[b, r, col]


@njit(cache=True, nogil=True)
def _col2im(cols, out, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw):
    n, h, w, c = out.shape
    groups = cols.shape[0]
    cg = c // groups
    out[:] = 0
    for row in range(n * oh):  # streams through the columns once, in memory order
        b = row // oh
        y = row - b * oh
        for xo in range(ow):
            r = row * ow + xo
            for i in range(kh):
                hi = y * sh - ph + i * dh
                if hi < 0 or hi >= h:
                    continue
                for j in range(kw):
                    wj = xo * sw - pw + j * dw
                    if wj < 0 or wj >= w:
                        continue
                    base = (i * kw + j) * cg
                    for g in range(groups):
                        for ch in range(cg):
                            out[b, hi, wj, g * cg + ch] += cols[g, r, base + ch]


@register_jitable
def _max_step(value, best, index, k):
    """(best, index) after comparing `value`, at window offset k, with them: a larger value
    or a NaN takes over, so ties keep the first and NaNs the last, as in PyTorch."""
    take = (value > best) | (value != value)
    return (value if take else best), (k if take else index)


@njit(cache=True, nogil=True)
def _maxpool_forward(x, out, argmax, kh, kw, sh, sw, ph, pw):
    """Whole channel vectors at a time, with selects and no branches, so that LLVM vectorises
    them: a conditional store, or int8 argmax lanes beside float32 ones, kept it scalar."""
    n, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    index = np.empty(c, np.int32)  # the window's argmax, widened to the values' lane width
    for row in range(n * oh):
        b = row // oh
        y = row - b * oh
        for xo in range(ow):
            best = out[b, y, xo]
            best[:] = -np.inf
            index[:] = 0
            for i in range(kh):
                hi = y * sh - ph + i
                if hi < 0 or hi >= h:
                    continue
                for j in range(kw):
                    wj = xo * sw - pw + j
                    if wj < 0 or wj >= w:
                        continue
                    values, k = x[b, hi, wj], i * kw + j
                    for ch in range(c):
                        best[ch], index[ch] = _max_step(values[ch], best[ch], index[ch], k)
            argmax[b, y, xo] = index


def _two_by_two(kernel, stride, padding) -> bool:
    """The commonest max pool (VGG's, SimpleCNN's): 2x2 windows side by side, unpadded."""
    return tuple(kernel) == tuple(stride) == (2, 2) and tuple(padding) == (0, 0)


@njit(cache=True, nogil=True)
def _maxpool2x2_forward(x, out, argmax):
    """`_maxpool_forward` for 2x2 windows at stride 2: the four values of a window in one
    pass over the channels, compared in the same order by the same rule, so the same bits.
    The general kernel enters a channel loop seven times per output pixel, which at 32 or 64
    channels costs more than the comparisons."""
    n, _, _, c = x.shape
    _, oh, ow, _ = out.shape
    index = np.empty(c, np.int32)
    for b in range(n):
        for y in range(oh):
            top, bottom = x[b, 2 * y], x[b, 2 * y + 1]
            for xo in range(ow):
                v0, v1 = top[2 * xo], top[2 * xo + 1]
                v2, v3 = bottom[2 * xo], bottom[2 * xo + 1]
                best = out[b, y, xo]
                for ch in range(c):
                    m, k = v0[ch], np.int32(0)  # what the first comparison, with -inf, leaves
                    m, k = _max_step(v1[ch], m, k, np.int32(1))
                    m, k = _max_step(v2[ch], m, k, np.int32(2))
                    best[ch], index[ch] = _max_step(v3[ch], m, k, np.int32(3))
                argmax[b, y, xo] = index


@njit(cache=True, nogil=True)
def _maxpool2x2_backward(grad, argmax, out):
    """`_maxpool_backward` for 2x2 windows at stride 2: each input pixel lies in one window
    at most (none past an odd edge)."""
    n, h, w, c = out.shape
    _, oh, ow, _ = grad.shape
    zero = np.zeros(1, out.dtype)[0]
    for b in range(n):
        for hi in range(h):
            y = hi // 2
            if y >= oh:
                out[b, hi] = 0
                continue
            k = 2 * (hi - 2 * y)  # the window offset of this row's left pixels
            for xo in range(ow):
                g, taken = grad[b, y, xo], argmax[b, y, xo]
                left, right = out[b, hi, 2 * xo], out[b, hi, 2 * xo + 1]
                for ch in range(c):
                    left[ch] = g[ch] if taken[ch] == k else zero
                    right[ch] = g[ch] if taken[ch] == k + 1 else zero
            out[b, hi, 2 * ow:] = 0


@register_jitable
def _windows_over(pixel, kernel, stride, pad, count):
    """(first, stop): the windows along one axis that contain input `pixel`. (Compiled into
    its callers, so it is not a kernel of its own.)"""
    return max(0, (pixel + pad - kernel) // stride + 1), min(count, (pixel + pad) // stride + 1)


@njit(cache=True, nogil=True)
def _maxpool_backward(grad, argmax, out, kh, kw, sh, sw, ph, pw):
    """A gather: each input pixel sums the gradients of the windows whose maximum it is, so
    `out` needs no zero-fill and the workers' images never overlap."""
    n, h, w, c = out.shape
    _, oh, ow, _ = grad.shape
    for b in range(n):
        for hi in range(h):
            y_first, y_stop = _windows_over(hi, kh, sh, ph, oh)
            for wj in range(w):
                x_first, x_stop = _windows_over(wj, kw, sw, pw, ow)
                for ch in range(c):
                    out[b, hi, wj, ch] = 0
                for y in range(y_first, y_stop):
                    for xo in range(x_first, x_stop):
                        k = (hi + ph - y * sh) * kw + wj + pw - xo * sw
                        for ch in range(c):
                            if argmax[b, y, xo, ch] == k:
                                out[b, hi, wj, ch] += grad[b, y, xo, ch]


@njit(cache=True, nogil=True)
def _avgpool_forward(x, out, kh, kw, sh, sw, ph, pw):
    n, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    scale = 1.0 / (kh * kw)
    for b in range(n):
        for y in range(oh):
            for xo in range(ow):
                for ch in range(c):
                    out[b, y, xo, ch] = 0
                for hi in range(max(0, y * sh - ph), min(h, y * sh - ph + kh)):
                    for wj in range(max(0, xo * sw - pw), min(w, xo * sw - pw + kw)):
                        for ch in range(c):
                            out[b, y, xo, ch] += x[b, hi, wj, ch]
                for ch in range(c):
                    out[b, y, xo, ch] *= scale


@njit(cache=True, nogil=True)
def _avgpool_backward(grad, out, kh, kw, sh, sw, ph, pw):
    """A gather, like `_maxpool_backward`: each input pixel sums its windows' shares."""
    n, h, w, c = out.shape
    _, oh, ow, _ = grad.shape
    scale = 1.0 / (kh * kw)
    for b in range(n):
        for hi in range(h):
            y_first, y_stop = _windows_over(hi, kh, sh, ph, oh)
            for wj in range(w):
                x_first, x_stop = _windows_over(wj, kw, sw, pw, ow)
                for ch in range(c):
                    out[b, hi, wj, ch] = 0
                for y in range(y_first, y_stop):
                    for xo in range(x_first, x_stop):
                        for ch in range(c):
                            out[b, hi, wj, ch] += grad[b, y, xo, ch]
                for ch in range(c):
                    out[b, hi, wj, ch] *= scale


# Batch norm over rows (M, width) of channel vectors; sums in float64, one row of partial sums
# per part, which the caller adds up in order. The sums build up in arrays of the kernel's own:
# LLVM cannot tell that an argument does not overlap the rows, so it would store every partial
# sum back to memory on every row.

@njit(cache=True, nogil=True)
def _batch_norm_sums(rows, shift, sums, part, parts):
    """sums[part] = the per-column sums of d and of d * d, d = rows - shift in float64 (exact
    for float32 rows)."""
    rows = _part_of(rows, part, parts)
    total, squares = np.zeros(rows.shape[1]), np.zeros(rows.shape[1])
    for r in range(len(rows)):
        for j in range(rows.shape[1]):
            d = np.float64(rows[r, j]) - shift[j]
            total[j] += d
            squares[j] += d * d
    sums[part, 0], sums[part, 1] = total, squares


@NativePart
def _batch_norm_sums_part(arguments, part, parts):
    m, width = arguments[3], arguments[4]
    _batch_norm_sums(array_at(arguments[0], (m, width), np.float32),
                     array_at(arguments[1], width, np.float64),
                     array_at(arguments[2], (parts, 2, width), np.float64), part, parts)


@njit(cache=True, nogil=True)
def _batch_norm_apply(rows, alpha, beta, out, part, parts):
    rows, out = _part_of(rows, part, parts), _part_of(out, part, parts)
    for r in range(len(rows)):
        for ch in range(rows.shape[1]):
            out[r, ch] = rows[r, ch] * alpha[ch] + beta[ch]


@NativePart
def _batch_norm_apply_part(arguments, part, parts):
    m, width = arguments[4], arguments[5]
    _batch_norm_apply(array_at(arguments[0], (m, width), np.float32),
                      array_at(arguments[1], width, np.float32),
                      array_at(arguments[2], width, np.float32),
                      array_at(arguments[3], (m, width), np.float32), part, parts)


@njit(cache=True, nogil=True)
def _batch_norm_grad_sums(grad, rows, mean, invstd, sums, part, parts):
    """sums[part] = the per-column sums of grad and of grad * xhat."""
    grad, rows = _part_of(grad, part, parts), _part_of(rows, part, parts)
    total, products = np.zeros(rows.shape[1]), np.zeros(rows.shape[1])
    for r in range(len(rows)):
        for ch in range(rows.shape[1]):
            g = grad[r, ch]
            total[ch] += g
            products[ch] += g * ((rows[r, ch] - mean[ch]) * invstd[ch])
    sums[part, 0], sums[part, 1] = total, products


@NativePart
def _batch_norm_grad_sums_part(arguments, part, parts):
    m, width = arguments[5], arguments[6]
    _batch_norm_grad_sums(array_at(arguments[0], (m, width), np.float32),
                          array_at(arguments[1], (m, width), np.float32),
                          array_at(arguments[2], width, np.float32),
                          array_at(arguments[3], width, np.float32),
                          array_at(arguments[4], (parts, 2, width), np.float64), part, parts)


@njit(cache=True, nogil=True)
def _batch_norm_grad_input(grad, rows, mean, invstd, scale, mean_grad, minus_mean_grad_xhat,
                           out, part, parts):
    """d x = (grad - mean(grad) - xhat * mean(grad * xhat)) * scale, the means given."""
    grad, rows = _part_of(grad, part, parts), _part_of(rows, part, parts)
    out = _part_of(out, part, parts)
    for r in range(len(rows)):
        for ch in range(rows.shape[1]):
            xhat = (rows[r, ch] - mean[ch]) * invstd[ch]
            out[r, ch] = (xhat * minus_mean_grad_xhat[ch] + grad[r, ch] - mean_grad[ch]) * scale[ch]


@NativePart
def _batch_norm_grad_input_part(arguments, part, parts):
    m, width = arguments[8], arguments[9]
    _batch_norm_grad_input(
        array_at(arguments[0], (m, width), np.float32),
        array_at(arguments[1], (m, width), np.float32),
        array_at(arguments[2], width, np.float32), array_at(arguments[3], width, np.float32),
        array_at(arguments[4], width, np.float32), array_at(arguments[5], width, np.float32),
        array_at(arguments[6], width, np.float32),
        array_at(arguments[7], (m, width), np.float32), part, parts)


# Group norm. C order: x as rows (N * G, C/G, S), one per sample and group, S the spatial size;
# channels-last: x as blocks (N, S, C), one per sample. Every sum (the statistics, the
# per-channel sums of the backward) adds in float64 partial sums taken in x's dtype over at most
# 256 values of a row's channel (spread over the vector lanes) or 64 pixels of a block's
# channels: a handful of roundings per value, as in NumPy's pairwise sum, and twice the values
# per vector register of float64 sums (1.5 times as fast here). Elementwise passes run in x's
# dtype. The row kernels are compiled with fastmath "reassoc", so that their sums vectorise
# (reordered, as a pairwise sum would be); it may also reorder the three terms of d x's sum, but
# never splits x - mean (reassociation does not distribute products), so nothing cancels.

_PARTIAL = 256  # values per partial sum along a row's channel
_PARTIAL_PIXELS = 64  # pixels per partial sum of a block's channels


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _group_norm_forward(rows, weight, bias, groups, eps, out, mean, invstd, start, stop):
    """Rows start..stop of (N * G, C/G, S) x (each in cache for all three passes): the mean and
    the biased variance by two passes (no cancellation), then (x - mean) * (invstd * weight)
    + bias. A channel's S values are summed in a head of S % 256 values, then blocks of 256."""
    per_group, size = rows.shape[1], rows.shape[2]
    count = per_group * size
    head = size % _PARTIAL
    same = rows.dtype.type
    for r in range(start, stop):
        total = 0.0
        for c in range(per_group):
            part = same(0)
            for k in range(head):
                part += rows[r, c, k]
            total += part
            for block in range(head, size, _PARTIAL):
                part = same(0)
                for k in range(_PARTIAL):
                    part += rows[r, c, block + k]
                total += part
        m = total / count
        centre = same(m)
        squares = 0.0
        for c in range(per_group):
            part = same(0)
            for k in range(head):
                d = rows[r, c, k] - centre
                part += d * d
            squares += part
            for block in range(head, size, _PARTIAL):
                part = same(0)
                for k in range(_PARTIAL):
                    d = rows[r, c, block + k] - centre
                    part += d * d
                squares += part
        istd = 1.0 / np.sqrt(squares / count + eps)
        mean[r], invstd[r] = m, istd
        first = (r % groups) * per_group
        for c in range(per_group):
            scale, shift = same(istd * weight[first + c]), bias[first + c]
            for k in range(size):
                out[r, c, k] = (rows[r, c, k] - centre) * scale + shift


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _group_norm_backward(grad, rows, weight, groups, mean, invstd, out, sums, start, stop):
    """Rows start..stop of (N * G, C/G, S) x: per channel, sum(grad) and sum(grad * xhat)
    (into `sums`, (2, N, C)); then, unless `out` is None, d x = (w invstd) grad
    - (x - mean) invstd^2 mean(w grad xhat) - invstd mean(w grad), the means over the row."""
    per_group, size = rows.shape[1], rows.shape[2]
    count = per_group * size
    head = size % _PARTIAL
    same = rows.dtype.type
    for r in range(start, stop):
        n, first = r // groups, (r % groups) * per_group
        m, istd = mean[r], invstd[r]
        centre = same(m)
        sum_wg = 0.0
        sum_wgx = 0.0
        for c in range(per_group):
            part_g, part_gx = same(0), same(0)
            for k in range(head):
                part_g += grad[r, c, k]
                part_gx += grad[r, c, k] * (rows[r, c, k] - centre)
            sum_g, sum_gx = np.float64(part_g), np.float64(part_gx)
            for block in range(head, size, _PARTIAL):
                part_g, part_gx = same(0), same(0)
                for k in range(_PARTIAL):
                    part_g += grad[r, c, block + k]
                    part_gx += grad[r, c, block + k] * (rows[r, c, block + k] - centre)
                sum_g += part_g
                sum_gx += part_gx
            sums[0, n, first + c], sums[1, n, first + c] = sum_g, sum_gx * istd
            sum_wg += weight[first + c] * sum_g
            sum_wgx += weight[first + c] * sum_gx * istd
        if out is None:
            continue
        through_var = same(istd * istd * sum_wgx / count)
        through_mean = same(istd * sum_wg / count)
        for c in range(per_group):
            scale = same(weight[first + c] * istd)
            for k in range(size):
                out[r, c, k] = (scale * grad[r, c, k] - (rows[r, c, k] - centre) * through_var
                                - through_mean)


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _layer_norm_forward(rows, weight, bias, eps, out, mean, invstd, start, stop):
    """Rows start..stop of (M, D) x: the mean and the biased variance by two passes (sums as
    group norm's), then (x - mean) * invstd * weight + bias, with mean and invstd rounded to
    x's dtype first, as the reference does."""
    size = rows.shape[1]
    head = size % _PARTIAL
    same = rows.dtype.type
    for r in range(start, stop):
        part = same(0)
        for k in range(head):
            part += rows[r, k]
        total = np.float64(part)
        for block in range(head, size, _PARTIAL):
            part = same(0)
            for k in range(_PARTIAL):
                part += rows[r, block + k]
            total += part
        centre = same(total / size)
        part = same(0)
        for k in range(head):
            d = rows[r, k] - centre
            part += d * d
        squares = np.float64(part)
        for block in range(head, size, _PARTIAL):
            part = same(0)
            for k in range(_PARTIAL):
                d = rows[r, block + k] - centre
                part += d * d
            squares += part
        scale = same(1.0 / np.sqrt(squares / size + eps))
        mean[r], invstd[r] = centre, scale
        for k in range(size):
            out[r, k] = (rows[r, k] - centre) * scale * weight[k] + bias[k]


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _layer_norm_backward(grad, rows, weight, mean, invstd, out, sums, per_part, start, stop):
    """Rows start..stop of (M, D) x: sum(grad) and sum(grad * xhat) per column into the row's
    part of `sums` ((parts, 2, D), float64); then, unless `out` is None, d x = invstd (w grad
    - mean(w grad) - xhat mean(w grad xhat)), the means over the row."""
    size = rows.shape[1]
    same = rows.dtype.type
    for r in range(start, stop):
        part = r // per_part
        centre, scale = mean[r], invstd[r]
        sum_wg = 0.0
        sum_wgx = 0.0
        for k in range(size):
            g = grad[r, k]
            xhat = (rows[r, k] - centre) * scale
            sums[part, 0, k] += g
            sums[part, 1, k] += g * xhat
            wg = g * weight[k]
            sum_wg += wg
            sum_wgx += wg * xhat
        if out is None:
            continue
        through_mean, through_var = same(sum_wg / size), same(sum_wgx / size)
        for k in range(size):
            xhat = (rows[r, k] - centre) * scale
            out[r, k] = (grad[r, k] * weight[k] - through_mean - xhat * through_var) * scale


@njit(cache=True, nogil=True)
def _group_norm_forward_nhwc(blocks, weight, bias, groups, eps, out, mean, invstd, start, stop):
    """Samples start..stop of blocks (N, S, C): per-channel sums of x, then of (x - mean)^2,
    each gathered per group; then (x - mean) * (invstd * weight) + bias."""
    _, size, channels = blocks.shape
    per_group = channels // groups
    count = size * per_group
    same = blocks.dtype.type
    sums = np.empty(channels)
    part = np.empty(channels, blocks.dtype)
    centre = np.empty(channels, blocks.dtype)  # each channel's group mean
    scale = np.empty(channels, blocks.dtype)
    for n in range(start, stop):
        sums[:] = 0
        for pixels in range(0, size, _PARTIAL_PIXELS):
            part[:] = 0
            for s in range(pixels, min(pixels + _PARTIAL_PIXELS, size)):
                for ch in range(channels):
                    part[ch] += blocks[n, s, ch]
            sums += part
        for j in range(groups):
            group = slice(j * per_group, (j + 1) * per_group)
            mean[n, j] = sums[group].sum() / count
            centre[group] = same(mean[n, j])
        sums[:] = 0
        for pixels in range(0, size, _PARTIAL_PIXELS):
            part[:] = 0
            for s in range(pixels, min(pixels + _PARTIAL_PIXELS, size)):
                for ch in range(channels):
                    d = blocks[n, s, ch] - centre[ch]
                    part[ch] += d * d
            sums += part
        for j in range(groups):
            group = slice(j * per_group, (j + 1) * per_group)
            invstd[n, j] = 1.0 / np.sqrt(sums[group].sum() / count + eps)
            for ch in range(j * per_group, (j + 1) * per_group):
                scale[ch] = same(invstd[n, j] * weight[ch])
        for s in range(size):
            for ch in range(channels):
                out[n, s, ch] = (blocks[n, s, ch] - centre[ch]) * scale[ch] + bias[ch]


@njit(cache=True, nogil=True)
def _group_norm_backward_nhwc(grad, blocks, weight, groups, mean, invstd, out, sums, start,
                              stop):
    """Samples start..stop of blocks (N, S, C): per channel, sum(grad) and sum(grad * xhat)
    (into `sums`, (2, N, C)); then, unless `out` is None, d x as `_group_norm_backward`'s."""
    _, size, channels = blocks.shape
    per_group = channels // groups
    count = size * per_group
    same = blocks.dtype.type
    centre = np.empty(channels, blocks.dtype)
    part_g = np.empty(channels, blocks.dtype)
    part_gx = np.empty(channels, blocks.dtype)
    scale = np.empty(channels, blocks.dtype)
    through_var = np.empty(channels, blocks.dtype)
    through_mean = np.empty(channels, blocks.dtype)
    for n in range(start, stop):
        sum_g, sum_gx = sums[0, n], sums[1, n]
        for j in range(groups):
            centre[j * per_group:(j + 1) * per_group] = same(mean[n, j])
        sum_g[:] = 0
        sum_gx[:] = 0
        for pixels in range(0, size, _PARTIAL_PIXELS):
            part_g[:] = 0
            part_gx[:] = 0
            for s in range(pixels, min(pixels + _PARTIAL_PIXELS, size)):
                for ch in range(channels):
                    part_g[ch] += grad[n, s, ch]
                    part_gx[ch] += grad[n, s, ch] * (blocks[n, s, ch] - centre[ch])
            sum_g += part_g
            sum_gx += part_gx
        for j in range(groups):
            istd = invstd[n, j]
            sum_wg = 0.0
            sum_wgx = 0.0
            for ch in range(j * per_group, (j + 1) * per_group):
                sum_gx[ch] *= istd
                sum_wg += weight[ch] * sum_g[ch]
                sum_wgx += weight[ch] * sum_gx[ch]
            for ch in range(j * per_group, (j + 1) * per_group):
                scale[ch] = same(weight[ch] * istd)
                through_var[ch] = same(istd * istd * sum_wgx / count)
                through_mean[ch] = same(istd * sum_wg / count)
        if out is None:
            continue
        for s in range(size):
            for ch in range(channels):
                out[n, s, ch] = (scale[ch] * grad[n, s, ch] - (blocks[n, s, ch] - centre[ch])
                                 * through_var[ch] - through_mean[ch])
