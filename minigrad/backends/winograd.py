"""Winograd F(2x2, 3x3) for the Numba backend: 3x3 stride-1 convolutions, forward and both
gradients, with 2.25x fewer multiply-adds than im2col's GEMM (Lavin and Gray, 2015).

Each 2x2 block of outputs comes from its 4x4 input tile d: the tiles become B^T d B, the
kernels g become G g G^T, the 16 spectra multiply as 16 GEMMs of (tiles, C) by (C, K), and
A^T (product) A is the output block. The input gradient of a 3x3 stride-1 convolution is
itself one (of the output gradient, with the kernel turned by 180 degrees, its channel axes
swapped, padded by 2 - padding), and the weight gradient is the transposed algorithm: the
gradient of the 16 spectra is a sum over tiles of (input spectra) x (A g A^T of the output
gradient's tiles), folded back by G^T . G. The tile transforms are compiled loops; the workers
take a few images at a time, so the transformed tiles are read back from cache.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit
from numba.extending import register_jitable

from minigrad.backends.geometry import chunk_ranges, nhwc
from minigrad.backends.numba_workers import Workers

# Below this many channels either way, the 16 GEMMs are too thin to pay for the transforms.
MIN_CHANNELS = 8
# Each call transforms every kernel (about 16 x 9 multiply-adds and a 16-value copy per channel
# pair), and each 2x2 output tile saves 20 multiply-adds per channel pair against im2col: below
# one tile per two channels (small batches of small images: ResNet's last stage at batch 1 has
# 16 tiles for 512 channels) im2col is faster.
TILES_PER_CHANNEL = 0.5
# The transformed tiles and products of the images one worker takes at a time: kept in cache.
CHUNK_BYTES = 1 << 20


def fits(weight_shape: tuple, stride, dilation, groups: int, output_shape: tuple) -> bool:
    """3x3, stride 1, undilated, ungrouped, at least MIN_CHANNELS channels both ways, and enough
    2x2 tiles in the (N, K, OH, OW) output to pay for transforming the kernels."""
    channels = min(weight_shape[:2])
    tiles = output_shape[0] * _tiles(*output_shape[2:])
    return (tuple(weight_shape[2:]) == (3, 3) and stride == dilation == (1, 1) and groups == 1
            and channels >= MIN_CHANNELS and tiles >= TILES_PER_CHANNEL * channels)


def backward_fits(weight_shape: tuple, stride, padding, dilation, groups: int,
                  output_shape: tuple) -> bool:
    """The input gradient as a Winograd convolution needs its padding 2 - p >= 0."""
    return fits(weight_shape, stride, dilation, groups, output_shape) and max(padding) <= 2


class Winograd:
    """The three convolutions on `workers`. Arrays in and out are NCHW-shaped views of
    channels-last (NHWC, C-contiguous) memory."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers

    def forward(self, x, weight, padding):
        # (16, C, K) in its own memory: matmul with the transposed view took longer
        with self.workers.one_blas_thread():
            spectra = np.ascontiguousarray(kernel_spectra(weight).transpose(0, 2, 1))
        return self._convolve(x, spectra, padding)

    def backward_input(self, grad, weight, padding):
        return self._convolve(grad, self._flipped_spectra(weight), _back_padding(padding))

    def backward_weight(self, grad, x, padding):
        chunks = self._chunks(len(x), _tiles(*grad.shape[2:]), x.shape[1] + grad.shape[1],
                              x.dtype)
        return self._kernel_grad(self.workers.in_parts(
            functools.partial(self._weight_grad_chunk, grad, x, padding), chunks))

    def backward(self, grad, x, weight, padding):
        """Both gradients in one pass over the batch: each chunk of `grad` is read once for
        the two, and the workers are handed work once, not twice."""
        flipped, back_padding = self._flipped_spectra(weight), _back_padding(padding)
        n, c, h, w = x.shape
        grad_x = np.empty((n, h, w, c), grad.dtype)

        def chunk(images):
            self._convolve_chunk(grad, flipped, back_padding, grad_x, images)
            return self._weight_grad_chunk(grad, x, padding, images)

        tiles_per_image = max(_tiles(h, w), _tiles(*grad.shape[2:]))
        chunks = self._chunks(n, tiles_per_image, c + grad.shape[1], x.dtype)
        sums = self.workers.in_parts(chunk, chunks)
        return grad_x.transpose(0, 3, 1, 2), self._kernel_grad(sums)

    def _convolve(self, x, spectra, padding):
        """x (N, C, H, W) convolved with the kernels whose transforms are `spectra` (16, C, K)."""
        n, c, h, w = x.shape
        k = spectra.shape[2]
        out = np.empty((n, h + 2 * padding[0] - 2, w + 2 * padding[1] - 2, k), x.dtype)
        chunks = self._chunks(n, _tiles(*out.shape[1:3]), c + k, x.dtype)
        self.workers.in_parts(functools.partial(self._convolve_chunk, x, spectra, padding, out),
                              chunks)
        return out.transpose(0, 3, 1, 2)

    def _convolve_chunk(self, x, kernel_spectra, padding, out, images):
        """Images start..stop of `_convolve`: their tiles' spectra, 16 GEMMs, the output
        blocks written into `out` (N, OH, OW, K)."""
        start, stop = images
        oh, ow, k = out.shape[1:]
        spectra, products = self._scratch(stop - start, _tiles(oh, ow), x.shape[1], k, x.dtype)
        _input_spectra(nhwc(x[start:stop]), spectra, *padding, -(-ow // 2))
        np.matmul(spectra, kernel_spectra.astype(x.dtype, copy=False), out=products)
        _output_blocks(products, out[start:stop])

    def _weight_grad_chunk(self, grad, x, padding, images):
        """The (16, K, C) gradient of the transformed kernels from images start..stop."""
        start, stop = images
        spectra, grads = self._scratch(stop - start, _tiles(*grad.shape[2:]), x.shape[1],
                                       grad.shape[1], x.dtype)
        _input_spectra(nhwc(x[start:stop]), spectra, *padding, -(-grad.shape[3] // 2))
        _output_grad_spectra(nhwc(grad[start:stop]), grads)
        return np.matmul(grads.transpose(0, 2, 1), spectra)

    def _flipped_spectra(self, weight):
        """(16, K, C): the transformed kernels of the input gradient (K in, C out)."""
        with self.workers.one_blas_thread():
            return kernel_spectra(weight, flipped=True)

    def _kernel_grad(self, chunk_sums):
        """(K, C, 3, 3) from the chunks' (16, K, C) sums, added in chunk order (whichever
        thread ran each), so every run gives the same bits."""
        with self.workers.one_blas_thread():
            return kernel_grad(sum(chunk_sums))

    def _chunks(self, n, tiles_per_image, channels, dtype):
        """The batch cut into image ranges whose transformed tiles and products (`channels`
        of them per tile, in and out) fit in CHUNK_BYTES."""
        tile_bytes = 16 * channels * np.dtype(dtype).itemsize
        return chunk_ranges(n, CHUNK_BYTES // (tiles_per_image * tile_bytes), self.workers.count)

    def _scratch(self, images, tiles_per_image, c, k, dtype):
        """(16, tiles, c) and (16, tiles, k) arrays for a chunk of images, in one per-thread
        scratch buffer."""
        tiles = images * tiles_per_image
        buffer = self.workers.scratch((16 * tiles * (c + k),), dtype)
        return (buffer[:16 * tiles * c].reshape(16, tiles, c),
                buffer[16 * tiles * c:].reshape(16, tiles, k))


def _back_padding(padding):
    return (2 - padding[0], 2 - padding[1])


def _tiles(oh, ow) -> int:
    """2x2 blocks per image of an OH x OW output (cut at odd edges)."""
    return -(-oh // 2) * -(-ow // 2)


# G g G^T is linear in g's 9 taps: row ab of _GG holds G[a, i] G[b, j] for each tap ij. Its
# entries are products of 0, 1/2 and 1, exact in every float type. B^T and A^T are written out
# in the compiled transforms below.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GG = np.einsum("ai,bj->abij", _G, _G).reshape(16, 9)


def kernel_spectra(weight, flipped=False):
    """(K, C, 3, 3) -> (16, K, C): G g G^T for every kernel g, or for g turned by 180 degrees
    (its 9 taps reversed), as one small GEMM straight from the weight's memory."""
    k, c = weight.shape[:2]
    gg = _GG[:, ::-1] if flipped else _GG
    return (gg.astype(weight.dtype) @ weight.reshape(k * c, 9).T).reshape(16, k, c)


def kernel_grad(spectra):
    """(16, K, C) -> (K, C, 3, 3): G^T m G for every channel pair, the adjoint of
    `kernel_spectra`."""
    _, k, c = spectra.shape
    taps = spectra.reshape(16, k * c).T @ _GG.astype(spectra.dtype)  # (k*c, 9)
    return taps.reshape(k, c, 3, 3)


# ------------------------------------------------------------------------------------ kernels
# Arguments are C-contiguous channels-last (N, H, W, C) arrays and plain ints; the innermost
# loops run over channels, so they read and write contiguous memory.


@register_jitable
def _image_row(x, b, row, zeros):
    """Row `row` of image b of x (N, H, W, C) as one flat vector; `zeros` outside the image."""
    return (x[b, row] if 0 <= row < x.shape[1] else zeros).reshape(-1)


@njit(cache=True, nogil=True)
def _input_spectra(x, spectra, ph, pw, tiles_across):
    """spectra[:, tile] = B^T d B for each 4x4 tile d of x (N, H, W, C) padded by (ph, pw):
    tile (y, x) of an image starts at row 2y - ph, column 2x - pw.

    A row of tiles at a time, in two passes whose loops LLVM vectorises: B^T down the four
    input rows, over their whole width, then B along each tile's columns. The innermost loops
    index with the loop variable alone and touch at most eight arrays: a loop that combined
    all 16 values of a tile was left scalar."""
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
def _output_grad_spectra(grad, spectra):
    """spectra[:, tile] = A g A^T for each 2x2 block g of grad (N, OH, OW, K), zero past odd
    edges: the gradient of the tile products that `_output_blocks` folds with A^T . A.
    Two vectorised passes per row of tiles, as `_input_spectra`."""
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
def _output_blocks(products, out):
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


