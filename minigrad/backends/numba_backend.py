"""The Numba backend: col2im, Winograd's transforms, pooling, ReLU and batch norm as JIT-compiled
loops, the GEMMs in BLAS, and every convolution, pooling call and large matmul split over
worker threads that each run BLAS on one thread.

3x3 stride-1 convolutions with 8 channels or more (nearly all of ResNet-20's), forward and both
gradients, run as Winograd F(2x2, 3x3): `_winograd` says how. The others are the reference
convolution (`NumpyBackend`: im2col by a strided copy, one GEMM per cache-sized chunk of
columns). The calling thread and one worker thread per further core take the chunks one at a
time (`in_parts`). Each copies its columns and multiplies them itself, with OpenBLAS limited to
one thread for the call: measured on the 2-core VM this was built on, OpenBLAS's own
threads hand off inside every GEMM, and for long stretches those hand-offs cost milliseconds
(ResNet-20's first-stage conv forward: 14-16 ms against 3.5-4 ms in the fast stretches; a
ResNet-20 training step 390-420 ms against 200-215). One hand-off per kernel call instead keeps
the 2-core speed-up in both stretches (that conv: 3-4.5 ms throughout). The small GEMMs between
kernel calls run on one BLAS thread too (`one_blas_thread`). NumPy's copies, BLAS and the
`nogil` Numba kernels all release the GIL, so Python threads do run in parallel. Handing work
to a worker and back costs 70-160 us here, so kernels of a few hundred microseconds (batch
norm, ReLU) stay on the calling thread: batch norm on two workers took 0.55 ms against 0.33.

col2im is a compiled loop that streams through the columns in memory order, adding each entry
to the pixel it came from with the padding folded in: 3-10x faster than NumPy's tap-by-tap adds,
and 3x faster than gathering each pixel's taps, which jumps between column rows; the workers
take disjoint images. im2col stays NumPy's strided copy, which beat a compiled loop for every
shape measured. Pooling runs over channels-last memory, whole channel vectors at a time, with
the argmax kept as a one-byte offset inside its window; its backward kernels are gathers (each
input pixel sums its windows), so they need no zero-filled output, and every pooling kernel
runs on the workers, each on its own images (max pool 2x2/2 forward+backward on
(64, 32, 26, 26): 3.3 ms on one thread with a scatter, 1.3 ms so). NCHW input is transposed to
channels-last by a compiled tiled loop on the workers (NumPy's transposing copy ran at a third
of the speed on one core).

The loops are serial Numba, not `prange`: measured here (numba 0.68), `parallel=True` kernels
loaded from the on-disk cache ran 1.3-4x slower than freshly compiled ones (numba issue #8085),
and slower than the serial loop; a parallel kernel without the cache costs about 8 s of
compilation in every new process. Serial loops also start no Numba threads to spin against the
workers.

Kernels compile on first use for each dtype (about a second each, cold) and are cached on disk
(`cache=True`), so a later process loads them in milliseconds. `warmup()` compiles the float32
kernels up front. MINIGRAD_NUM_THREADS sets the number of workers (default: the CPUs this
process may run on; 1 runs everything in the calling thread with BLAS's own threading).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
from threadpoolctl import ThreadpoolController

from minigrad.backends.base import window_index_dtype
from minigrad.backends.numpy_backend import NumpyBackend, _chunk_ranges, _output_hw, _ranges

try:
    from numba import njit
    from numba.extending import register_jitable
except ImportError as error:  # numba is a dependency, but its wheels can lag behind NumPy's
    raise RuntimeError(f"numba backend: Numba cannot be imported ({error}); "
                       "pip install -U numba") from error


class NumbaBackend(NumpyBackend):
    """im2col is NumPy's: its strided copy beat a compiled loop for every shape measured."""

    name = "numba"
    # A matmul splits over the workers from this many multiply-adds: below it the hand-off
    # costs more than the second core gains.
    SPLIT_MATMUL_FLOPS = 1 << 22

    def __init__(self, workers: int) -> None:
        super().__init__()
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers - 1, "minigrad-numba") if workers > 1 else None
        self._blas = ThreadpoolController().select(user_api="blas").lib_controllers

    @contextlib.contextmanager
    def one_blas_thread(self):
        """OpenBLAS on one thread, for the workers' GEMMs and for the small products between
        them: after a call on several threads, OpenBLAS's idle threads spin for a while and
        take the cores from the workers (a ResNet-20 step took 190 ms against 125 while the
        Winograd kernel transforms, a few tens of microseconds, ran on two BLAS threads).
        Set directly, not with threadpoolctl's `limit`: 3.5 us against 8-14, about 100
        times a step."""
        if self._pool is None:
            yield
            return
        before = [blas.num_threads for blas in self._blas]
        for blas in self._blas:
            blas.set_num_threads(1)
        try:
            yield
        finally:
            for blas, threads in zip(self._blas, before):
                blas.set_num_threads(threads)

    def in_parts(self, work, parts):
        """[work(part) for part in parts] on the calling thread and the workers at once, each
        taking the next part that nobody has taken yet: a worker that wakes late (tens of
        microseconds here, up to milliseconds) then takes fewer parts instead of finishing
        last. With one part per thread, ResNet-20's kernel calls waited 11 ms a step (of 88)
        on the later thread. The results come back in the order of `parts`."""
        if self._pool is None or len(parts) < 2:
            return [work(part) for part in parts]
        results = [None] * len(parts)
        untaken = iter(range(len(parts)))
        lock = threading.Lock()

        def take_parts():
            while True:
                with lock:
                    index = next(untaken, None)
                if index is None:
                    return
                results[index] = work(parts[index])

        with self.one_blas_thread():
            helpers = min(self.workers, len(parts)) - 1
            others = [self._pool.submit(take_parts) for _ in range(helpers)]
            try:
                take_parts()
            finally:  # an error here still waits: the others write into the same outputs
                wait(others)
            for future in others:
                future.result()  # a worker's error
        return results

    def matmul(self, a, b):
        """Large 2-D products split by rows of `a` over the workers."""
        if a.ndim != 2 or b.ndim != 2:
            return np.matmul(a, b)
        if a.size * b.shape[-1] < self.SPLIT_MATMUL_FLOPS:
            with self.one_blas_thread():
                return np.matmul(a, b)
        out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))

        def rows(span):
            np.matmul(a[span[0]:span[1]], b, out=out[span[0]:span[1]])

        self.in_parts(rows, _ranges(a.shape[0], self.workers))
        return out

    def conv2d_forward(self, x, weight, stride, padding, dilation, groups):
        if _winograd_fits(weight.shape, stride, dilation, groups):
            # (16, C, K) in its own memory: NumPy's matmul took 1.2-1.4x longer with the
            # transposed view as its second operand
            with self.one_blas_thread():
                spectra = np.ascontiguousarray(_winograd_kernels(weight).transpose(0, 2, 1))
            return self._winograd(x, spectra, padding)
        return super().conv2d_forward(x, weight, stride, padding, dilation, groups)

    def conv2d_backward_input(self, grad, weight, input_shape, stride, padding, dilation, groups):
        """For a 3x3 stride-1 convolution the input gradient is itself one: of the output
        gradient with the kernel flipped and its channel axes swapped, padded by 2 - padding."""
        if _winograd_backward_fits(weight.shape, stride, padding, dilation, groups):
            return self._winograd(grad, self._flipped_spectra(weight), _back_padding(padding))
        return super().conv2d_backward_input(grad, weight, input_shape, stride, padding,
                                             dilation, groups)

    def conv2d_backward_weight(self, grad, x, weight_shape, stride, padding, dilation, groups):
        """Winograd's transposition for 3x3 stride-1 convolutions: the gradient of the 16
        transformed kernels is a sum over tiles of (input spectra) x (A g A^T, the output
        gradient's tiles), 16 GEMMs whose inner dimension is the tile count, then G^T . G."""
        if not _winograd_fits(weight_shape, stride, dilation, groups):
            return super().conv2d_backward_weight(grad, x, weight_shape, stride, padding,
                                                  dilation, groups)
        chunks = self._winograd_chunks(len(x), _tiles(*grad.shape[2:]), x.shape[1] + grad.shape[1],
                                       x.dtype)
        return self._kernel_grad(self.in_parts(
            functools.partial(self._weight_grad_chunk, grad, x, padding), chunks))

    def conv2d_backward(self, grad, x, weight, stride, padding, dilation, groups,
                        input_grad=True, weight_grad=True):
        """Both Winograd gradients in one pass over the batch: each chunk of `grad` is read
        once for the two, and the workers are handed work once, not twice (a hand-off costs
        tens of microseconds here)."""
        if not (input_grad and weight_grad
                and _winograd_backward_fits(weight.shape, stride, padding, dilation, groups)):
            return super().conv2d_backward(grad, x, weight, stride, padding, dilation, groups,
                                           input_grad, weight_grad)
        flipped, back_padding = self._flipped_spectra(weight), _back_padding(padding)
        grad_x = np.empty(_nhwc_shape(x.shape), grad.dtype)

        def chunk(images):
            self._winograd_chunk(grad, flipped, back_padding, grad_x, images)
            return self._weight_grad_chunk(grad, x, padding, images)

        tiles_per_image = max(_tiles(*x.shape[2:]), _tiles(*grad.shape[2:]))
        chunks = self._winograd_chunks(len(x), tiles_per_image, x.shape[1] + grad.shape[1],
                                       x.dtype)
        sums = self.in_parts(chunk, chunks)
        return grad_x.transpose(0, 3, 1, 2), self._kernel_grad(sums)

    def _winograd(self, x, kernel_spectra, padding):
        """A 3x3 stride-1 convolution by Winograd's F(2x2, 3x3) (Lavin and Gray, 2015): each 2x2
        block of outputs from its 4x4 input tile with 16 multiplications per channel pair
        instead of 36. The tiles' transforms are compiled loops; the products are 16 GEMMs of
        (tiles, C) by (C, K), run on the workers a few images at a time so that the transformed
        tiles are read back from cache. The GEMMs do 2.25x fewer multiply-adds than im2col's;
        with the transforms, a ResNet-20 training step took 105 ms against 122 (batch 32).
        `kernel_spectra`: (16, C, K), G g G^T of every kernel g (`_winograd_kernels`)."""
        n, c, h, w = x.shape
        k = kernel_spectra.shape[2]
        out = np.empty((n, h + 2 * padding[0] - 2, w + 2 * padding[1] - 2, k), x.dtype)
        chunks = self._winograd_chunks(n, _tiles(*out.shape[1:3]), c + k, x.dtype)
        self.in_parts(functools.partial(self._winograd_chunk, x, kernel_spectra, padding, out),
                      chunks)
        return out.transpose(0, 3, 1, 2)

    def _winograd_chunk(self, x, kernel_spectra, padding, out, images):
        """Images start..stop of `_winograd`: their tiles' spectra, 16 GEMMs, the output
        blocks written into `out` (N, OH, OW, K)."""
        start, stop = images
        oh, ow, k = out.shape[1:]
        spectra, products = self._winograd_scratch(stop - start, _tiles(oh, ow), x.shape[1], k,
                                                   x.dtype)
        _winograd_input(_nhwc(x[start:stop]), spectra, *padding, -(-ow // 2))
        np.matmul(spectra, kernel_spectra.astype(x.dtype, copy=False), out=products)
        _winograd_output(products, out[start:stop])

    def _weight_grad_chunk(self, grad, x, padding, images):
        """The (16, K, C) gradient of the transformed kernels from images start..stop."""
        start, stop = images
        spectra, grads = self._winograd_scratch(stop - start, _tiles(*grad.shape[2:]), x.shape[1],
                                                grad.shape[1], x.dtype)
        _winograd_input(_nhwc(x[start:stop]), spectra, *padding, -(-grad.shape[3] // 2))
        _winograd_output_grad(_nhwc(grad[start:stop]), grads)
        return np.matmul(grads.transpose(0, 2, 1), spectra)

    def _flipped_spectra(self, weight):
        """(16, K, C): the transformed kernels of the input gradient (K in, C out)."""
        with self.one_blas_thread():
            return _winograd_kernels(weight, flipped=True)

    def _kernel_grad(self, chunk_sums):
        """(K, C, 3, 3) from the chunks' (16, K, C) sums, added in chunk order (whichever
        thread ran each), so every run gives the same bits."""
        with self.one_blas_thread():
            return _winograd_kernel_grad(sum(chunk_sums))

    def _winograd_chunks(self, n, tiles_per_image, channels, dtype):
        """The batch cut into image ranges whose transformed tiles and products (`channels`
        of them per tile, in and out) fit in WINOGRAD_CHUNK_BYTES, so they stay in cache."""
        tile_bytes = 16 * channels * np.dtype(dtype).itemsize
        return _chunk_ranges(n, WINOGRAD_CHUNK_BYTES // (tiles_per_image * tile_bytes),
                             self.workers)

    def _winograd_scratch(self, images, tiles_per_image, c, k, dtype):
        """(16, tiles, c) and (16, tiles, k) arrays for a chunk of images, in one per-thread
        scratch buffer."""
        tiles = images * tiles_per_image
        buffer = self.scratch((16 * tiles * (c + k),), dtype)
        return (buffer[:16 * tiles * c].reshape(16, tiles, c),
                buffer[16 * tiles * c:].reshape(16, tiles, k))

    def relu(self, x):
        """Compiled for floating-point arrays; others get the reference's promotion (a bool
        array comes back as integers there)."""
        out = np.empty_like(x)  # x's memory layout
        memory = _flat_memory(x, out) if x.dtype.kind == "f" else None
        if memory is None:
            return super().relu(x)
        _relu(*memory)
        return out

    def relu_backward(self, grad, out):
        """One pass and no temporary: NumPy's grad * ~(out <= 0) makes three, and two bool
        arrays."""
        result = np.empty_like(out)
        memory = _flat_memory(grad, out, result)
        if memory is None:
            return super().relu_backward(grad, out)
        _relu_backward(*memory)
        return result

    def channels_last(self, nchw):
        """The workers transpose their own images with a compiled loop: NumPy's transposing
        copy ran on one core at about a third of the speed (big conv input: 6.0 ms, against
        1.7 ms so)."""
        if nchw.transpose(0, 2, 3, 1).flags.c_contiguous:
            return nchw
        out = np.empty(_nhwc_shape(nchw.shape), nchw.dtype)

        def images(span):
            _fill_nhwc(nchw[span[0]:span[1]], out[span[0]:span[1]])

        self.in_parts(images, _ranges(len(nchw), self.workers))
        return out.transpose(0, 3, 1, 2)

    def col2im(self, cols, out, kernel, stride, padding, dilation):
        oh, ow = _output_hw(out.shape[1:3], kernel, stride, padding, dilation)
        _col2im(np.ascontiguousarray(cols), out, oh, ow, *kernel, *stride, *padding, *dilation)

    def maxpool2d_forward(self, x, kernel, stride, padding):
        out, argmax = _pooled_like(x.shape, kernel, stride, padding, x.dtype,
                                   window_index_dtype(kernel))
        self._over_images(_maxpool_forward, [x], [out, argmax], *kernel, *stride, *padding)
        return out.transpose(0, 3, 1, 2), argmax.transpose(0, 3, 1, 2)

    def maxpool2d_backward(self, grad, argmax, input_shape, kernel, stride, padding):
        out = np.empty(_nhwc_shape(input_shape), grad.dtype)
        self._over_images(_maxpool_backward, [grad, argmax], [out], *kernel, *stride, *padding)
        return out.transpose(0, 3, 1, 2)

    def avgpool2d_forward(self, x, kernel, stride, padding):
        out = _pooled_like(x.shape, kernel, stride, padding, x.dtype)[0]
        self._over_images(_avgpool_forward, [x], [out], *kernel, *stride, *padding)
        return out.transpose(0, 3, 1, 2)

    def avgpool2d_backward(self, grad, input_shape, kernel, stride, padding):
        out = np.empty(_nhwc_shape(input_shape), grad.dtype)
        self._over_images(_avgpool_backward, [grad], [out], *kernel, *stride, *padding)
        return out.transpose(0, 3, 1, 2)

    def _over_images(self, kernel, inputs, outputs, *geometry):
        """kernel(inputs..., outputs..., *geometry) on each worker's range of images: NCHW
        inputs as channels-last copies of that range (made by the worker, free when they are
        channels-last already), outputs as slices of (N, H, W, C) arrays."""

        def images(span):
            start, stop = span
            kernel(*[_nhwc(a[start:stop]) for a in inputs], *[a[start:stop] for a in outputs],
                   *geometry)

        self.in_parts(images, _ranges(len(outputs[0]), self.workers))

    # ---------------------------------------------------------------------------- batch norm
    fused_batch_norm = True

    def batch_norm_forward(self, rows, weight, bias, eps):
        """Training-mode batch norm of channels-last rows (M, C): (out, mean, var), the
        statistics in float64. Two compiled passes for the statistics and one for the output,
        against the NumPy path's five passes and three temporaries (ops/norm.py)."""
        channels = rows.shape[1]
        weight = np.ones(channels, rows.dtype) if weight is None else weight
        bias = np.zeros(channels, rows.dtype) if bias is None else bias
        out = np.empty_like(rows)
        mean, var = _batch_norm_forward(rows, weight, bias, eps, out)
        return out, mean, var

    def batch_norm_backward(self, grad, rows, mean, invstd, scale):
        """(d loss / d x, sum(grad), sum(grad * xhat)) in two passes, xhat recomputed."""
        out = np.empty_like(rows)
        sum_grad, sum_grad_xhat = _batch_norm_backward(grad, rows, mean, invstd, scale, out)
        return out, sum_grad, sum_grad_xhat

    def warmup(self) -> None:
        """Compile (or load from the cache) the float32 kernels on a tiny problem."""
        x = np.ones((1, 8, 4, 4), np.float32)
        w = np.ones((8, 8, 3, 3), np.float32)
        self.channels_last(x)
        self.relu_backward(x, self.relu(x))
        for stride in (1, 1), (2, 2):  # Winograd's kernels, then im2col's
            out = self.conv2d_forward(x, w, stride, (1, 1), (1, 1), 1)
            self.conv2d_backward_input(out, w, x.shape, stride, (1, 1), (1, 1), 1)
            self.conv2d_backward_weight(out, x, w.shape, stride, (1, 1), (1, 1), 1)
        pooled, argmax = self.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0))
        self.maxpool2d_backward(pooled, argmax, x.shape, (2, 2), (2, 2), (0, 0))
        pooled = self.avgpool2d_forward(x, (2, 2), (2, 2), (0, 0))
        self.avgpool2d_backward(pooled, x.shape, (2, 2), (2, 2), (0, 0))
        rows = x.reshape(-1, 8)
        out, mean, var = self.batch_norm_forward(rows, None, None, 1e-5)
        vector = mean.astype(np.float32)
        self.batch_norm_backward(out, rows, vector, vector, vector)


def create() -> NumbaBackend:
    return NumbaBackend(worker_count())


def worker_count() -> int:
    """MINIGRAD_NUM_THREADS, else the CPUs this process may run on."""
    setting = os.environ.get("MINIGRAD_NUM_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"numba backend: MINIGRAD_NUM_THREADS must be a positive integer, "
                             f"got {setting!r}")
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
    the kernels return), one copy otherwise (a per-image loop over plain NCHW memory, one
    channel at a time, ran 18x slower than this copy plus the channel-vectorised kernel)."""
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


def _nhwc_shape(nchw_shape):
    n, c, h, w = nchw_shape
    return (n, h, w, c)


def _pooled_like(nchw_shape, kernel, stride, padding, dtype, index_dtype=None):
    """Empty channels-last (N, OH, OW, C) pooling results (and argmax offsets)."""
    n, c, h, w = nchw_shape
    oh, ow = _output_hw((h, w), kernel, stride, padding, (1, 1))
    out = np.empty((n, oh, ow, c), dtype)
    return out, None if index_dtype is None else np.empty(out.shape, index_dtype)


def _winograd_fits(weight_shape, stride, dilation, groups) -> bool:
    """3x3, stride 1, undilated, ungrouped, and enough channels both ways: with fewer, the
    16 GEMMs are too thin to pay for the transforms (SimpleCNN's 1-channel first conv took
    3x longer; its 32-to-64 second conv the same either way)."""
    return (tuple(weight_shape[2:]) == (3, 3) and stride == dilation == (1, 1) and groups == 1
            and min(weight_shape[:2]) >= WINOGRAD_MIN_CHANNELS)


WINOGRAD_MIN_CHANNELS = 8


def _winograd_backward_fits(weight_shape, stride, padding, dilation, groups) -> bool:
    """The input gradient as a Winograd convolution needs padding 2 - p >= 0."""
    return _winograd_fits(weight_shape, stride, dilation, groups) and max(padding) <= 2


def _back_padding(padding):
    return (2 - padding[0], 2 - padding[1])


def _tiles(oh, ow) -> int:
    """2x2 blocks per image of an OH x OW Winograd output (cut at odd edges)."""
    return -(-oh // 2) * -(-ow // 2)


# Winograd F(2x2, 3x3): input tiles d (4x4) become B^T d B, kernels g (3x3) become G g G^T, and
# A^T (their product) A is the 2x2 output block. B^T and A^T are written out in the kernels.
# G g G^T is linear in g's 9 taps: row ab of _WINOGRAD_GG holds G[a, i] G[b, j] for each tap ij.
# Its entries are products of 0, 1/2 and 1, exact in every float type.
_WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_WINOGRAD_GG = np.einsum("ai,bj->abij", _WINOGRAD_G, _WINOGRAD_G).reshape(16, 9)


def _winograd_kernels(weight, flipped=False):
    """(K, C, 3, 3) -> (16, K, C): G g G^T for every kernel g, or for g turned by 180 degrees
    (its 9 taps reversed), as one small GEMM straight from the weight's memory. (Transposing
    a 64x64x3x3 weight first took 150 us, six times the GEMM.)"""
    k, c = weight.shape[:2]
    gg = _WINOGRAD_GG[:, ::-1] if flipped else _WINOGRAD_GG
    return (gg.astype(weight.dtype) @ weight.reshape(k * c, 9).T).reshape(16, k, c)


def _winograd_kernel_grad(spectra):
    """(16, K, C) -> (K, C, 3, 3): G^T m G for every channel pair, the adjoint of
    `_winograd_kernels`."""
    _, k, c = spectra.shape
    taps = spectra.reshape(16, k * c).T @ _WINOGRAD_GG.astype(spectra.dtype)  # (k*c, 9)
    return taps.reshape(k, c, 3, 3)


# The transformed tiles and products of a chunk of images that `_winograd` works on at a time.
WINOGRAD_CHUNK_BYTES = 1 << 20


# ------------------------------------------------------------------------------------ kernels
# Arguments are C-contiguous channels-last (N, H, W, C) arrays and plain ints; the innermost
# loops run over channels, so they read and write contiguous memory.


@njit(cache=True, nogil=True)
def _relu(x, out):
    for i in range(x.size):
        out[i] = 0 if x[i] <= 0 else x[i]  # NaN is not <= 0: it stays NaN, as in PyTorch


@njit(cache=True, nogil=True)
def _relu_backward(grad, out, result):
    for i in range(grad.size):
        result[i] = 0 if out[i] <= 0 else grad[i]


@njit(cache=True, nogil=True)
def _transpose_images(x, out, tile=32):
    """out[b] = x[b].T. Row by row of `out` (reading a column of x) unless x's rows are a
    multiple of 256 bytes long: then the column's elements fall into the same few cache sets
    and evict each other, and tile x tile blocks are faster (a 64x1024 image: 1.8 against
    6.0 ms for 32; a 32x676 one: 0.4 against 1.0)."""
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


@register_jitable
def _image_row(x, b, row, zeros):
    """Row `row` of image b of x (N, H, W, C) as one flat vector; `zeros` outside the image."""
    return (x[b, row] if 0 <= row < x.shape[1] else zeros).reshape(-1)


@njit(cache=True, nogil=True)
def _winograd_input(x, spectra, ph, pw, tiles_across):
    """spectra[:, tile] = B^T d B for each 4x4 tile d of x (N, H, W, C) padded by (ph, pw):
    tile (y, x) of an image starts at row 2y - ph, column 2x - pw.

    A row of tiles at a time, in two passes whose loops LLVM vectorises: B^T down the four
    input rows, over their whole width, then B along each tile's columns. The innermost loops
    index with the loop variable alone and touch at most eight arrays: a loop that combined
    all 16 values of a tile was left scalar (16 channels took 2.2x longer)."""
    n, h, w, c = x.shape
    tiles_down = spectra.shape[1] // (n * tiles_across)
    zeros = np.zeros((w, c), x.dtype)  # the rows above and below the image
    rows = np.zeros((4, 2 * tiles_across + 2, c), x.dtype)  # B^T d; its margins stay zero
    width = min(w, rows.shape[1] - pw) * c
    r0, r1 = rows[0].reshape(-1)[pw * c:], rows[1].reshape(-1)[pw * c:]
    r2, r3 = rows[2].reshape(-1)[pw * c:], rows[3].reshape(-1)[pw * c:]
    for b in range(n):
        for ty in range(tiles_down):
            top = 2 * ty - ph
            d0, d1 = _image_row(x, b, top, zeros), _image_row(x, b, top + 1, zeros)
            d2, d3 = _image_row(x, b, top + 2, zeros), _image_row(x, b, top + 3, zeros)
            for f in range(width):  # B^T d
                r0[f] = d0[f] - d2[f]
                r1[f] = d1[f] + d2[f]
                r2[f] = d2[f] - d1[f]
                r3[f] = d1[f] - d3[f]
            first = (b * tiles_down + ty) * tiles_across
            for i in range(4):  # (B^T d) B
                for tx in range(tiles_across):
                    for ch in range(c):
                        e0, e1 = rows[i, 2 * tx, ch], rows[i, 2 * tx + 1, ch]
                        e2, e3 = rows[i, 2 * tx + 2, ch], rows[i, 2 * tx + 3, ch]
                        spectra[4 * i, first + tx, ch] = e0 - e2
                        spectra[4 * i + 1, first + tx, ch] = e1 + e2
                        spectra[4 * i + 2, first + tx, ch] = e2 - e1
                        spectra[4 * i + 3, first + tx, ch] = e1 - e3


@njit(cache=True, nogil=True)
def _winograd_output_grad(grad, spectra):
    """spectra[:, tile] = A g A^T for each 2x2 block g of grad (N, OH, OW, K), zero past odd
    edges: the gradient of the tile products that `_winograd_output` folds with A^T . A.
    Two vectorised passes per row of tiles, as `_winograd_input`."""
    n, oh, ow, k = grad.shape
    tiles_across = (ow + 1) // 2
    tiles_down = (oh + 1) // 2
    zeros = np.zeros((ow, k), grad.dtype)  # the row below an odd-height image
    rows = np.zeros((4, 2 * tiles_across, k), grad.dtype)  # A g; its margin stays zero
    r0, r1 = rows[0].reshape(-1), rows[1].reshape(-1)
    r2, r3 = rows[2].reshape(-1), rows[3].reshape(-1)
    for b in range(n):
        for ty in range(tiles_down):
            g0 = _image_row(grad, b, 2 * ty, zeros)
            g1 = _image_row(grad, b, 2 * ty + 1, zeros)
            for f in range(ow * k):  # A g
                r0[f] = g0[f]
                r1[f] = g0[f] + g1[f]
                r2[f] = g0[f] - g1[f]
                r3[f] = -g1[f]
            first = (b * tiles_down + ty) * tiles_across
            for i in range(4):  # (A g) A^T
                for tx in range(tiles_across):
                    for ch in range(k):
                        left, right = rows[i, 2 * tx, ch], rows[i, 2 * tx + 1, ch]
                        spectra[4 * i, first + tx, ch] = left
                        spectra[4 * i + 1, first + tx, ch] = left + right
                        spectra[4 * i + 2, first + tx, ch] = left - right
                        spectra[4 * i + 3, first + tx, ch] = -right


@njit(cache=True, nogil=True)
def _winograd_output(products, out):
    """out's 2x2 block of each tile = A^T m A, m its 4x4 products (cut at odd edges)."""
    n, oh, ow, k = out.shape
    tiles_across = (ow + 1) // 2
    tiles_down = (oh + 1) // 2
    half = np.empty((2, 4, k), products.dtype)
    for b in range(n):
        for ty in range(tiles_down):
            for tx in range(tiles_across):
                tile = (b * tiles_down + ty) * tiles_across + tx
                for j in range(4):  # A^T m
                    for ch in range(k):
                        m1 = products[4 + j, tile, ch]
                        m2 = products[8 + j, tile, ch]
                        half[0, j, ch] = products[j, tile, ch] + m1 + m2
                        half[1, j, ch] = m1 - m2 - products[12 + j, tile, ch]
                for i in range(2):  # (A^T m) A
                    y = 2 * ty + i
                    if y >= oh:
                        continue
                    for ch in range(k):
                        out[b, y, 2 * tx, ch] = half[i, 0, ch] + half[i, 1, ch] + half[i, 2, ch]
                    if 2 * tx + 1 < ow:
                        for ch in range(k):
                            right = half[i, 1, ch] - half[i, 2, ch] - half[i, 3, ch]
                            out[b, y, 2 * tx + 1, ch] = right


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


@njit(cache=True, nogil=True)
def _maxpool_forward(x, out, argmax, kh, kw, sh, sw, ph, pw):
    n, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    for row in range(n * oh):
        b = row // oh
        y = row - b * oh
        for xo in range(ow):
            for ch in range(c):
                out[b, y, xo, ch] = -np.inf
                argmax[b, y, xo, ch] = 0
            for i in range(kh):
                hi = y * sh - ph + i
                if hi < 0 or hi >= h:
                    continue
                for j in range(kw):
                    wj = xo * sw - pw + j
                    if wj < 0 or wj >= w:
                        continue
                    for ch in range(c):  # whole channel vectors at a time
                        value = x[b, hi, wj, ch]
                        if value > out[b, y, xo, ch] or np.isnan(value):  # NaN wins (PyTorch)
                            out[b, y, xo, ch] = value
                            argmax[b, y, xo, ch] = i * kw + j


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


@njit(cache=True, nogil=True)
def _batch_norm_forward(rows, weight, bias, eps, out):
    """Per-channel mean and biased variance in float64 (two passes: no cancellation), then
    out = x * alpha + beta with alpha = weight * invstd, beta = bias - mean * alpha."""
    m, c = rows.shape
    mean = np.zeros(c)
    var = np.zeros(c)
    for r in range(m):
        for ch in range(c):
            mean[ch] += rows[r, ch]
    mean /= m
    for r in range(m):
        for ch in range(c):
            d = rows[r, ch] - mean[ch]
            var[ch] += d * d
    var /= m
    alpha = np.empty(c, rows.dtype)
    beta = np.empty(c, rows.dtype)
    for ch in range(c):
        a = weight[ch] / np.sqrt(var[ch] + eps)
        alpha[ch] = a
        beta[ch] = bias[ch] - mean[ch] * a
    for r in range(m):
        for ch in range(c):
            out[r, ch] = rows[r, ch] * alpha[ch] + beta[ch]
    return mean, var


@njit(cache=True, nogil=True)
def _batch_norm_backward(grad, rows, mean, invstd, scale, out):
    """ops/norm.py's `_grad_sums` and `_through_statistics` in two passes: the sums of grad
    and grad * xhat (float64), then scale * (grad - mean(grad) - xhat * mean(grad * xhat))."""
    m, c = rows.shape
    sum_grad = np.zeros(c)
    sum_grad_xhat = np.zeros(c)
    for r in range(m):
        for ch in range(c):
            g = grad[r, ch]
            sum_grad[ch] += g
            sum_grad_xhat[ch] += g * ((rows[r, ch] - mean[ch]) * invstd[ch])
    mean_grad = (sum_grad / m).astype(rows.dtype)
    minus_mean_grad_xhat = (sum_grad_xhat / -m).astype(rows.dtype)
    for r in range(m):
        for ch in range(c):
            xhat = (rows[r, ch] - mean[ch]) * invstd[ch]
            out[r, ch] = (xhat * minus_mean_grad_xhat[ch] + grad[r, ch] - mean_grad[ch]) * scale[ch]
    return sum_grad, sum_grad_xhat
