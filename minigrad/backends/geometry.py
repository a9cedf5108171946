"""Shapes and index arithmetic that every backend shares: output sizes, ranges of a batch, the
matrix forms of convolution weights and gradients, the padded rows a kernel tap reads, and
channels-last memory as a contiguous (N, H, W, C) array.

The convolutions of all three backends agree on one column order, (groups, N*OH*OW,
kH*kW*C/groups), one row per output pixel with whole channel vectors per tap, so the weight and
gradient matrices below serve each of them.
"""

from __future__ import annotations

from typing import Any

Pair = tuple[int, int]


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """PyTorch's floor((size + 2 pad - dilation (kernel - 1) - 1) / stride) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def output_hw(hw: Pair, kernel: Pair, stride: Pair, padding: Pair,
              dilation: Pair = (1, 1)) -> Pair:
    """(OH, OW) of a convolution or pooling window over an (H, W) image."""
    return tuple(conv_output_size(hw[d], kernel[d], stride[d], padding[d], dilation[d])
                 for d in range(2))


def nhwc_shape(nchw_shape: tuple) -> tuple:
    n, c, *spatial = nchw_shape
    return (n, *spatial, c)


def nhwc(nchw: Any) -> Any:
    """The (N, H, W, C) C-contiguous array of an (N, C, H, W) one: free for a view of
    channels-last memory (what the Numba backend hands its conv paths), a copy otherwise."""
    out = nchw.transpose(0, 2, 3, 1)
    return out if out.flags.c_contiguous else out.copy()


def window_index_dtype(kernel: Pair) -> str:
    """Max pooling records the argmax as an offset inside its window: one byte if it fits."""
    return "uint8" if kernel[0] * kernel[1] <= 256 else "int32"


def ranges(total: int, count: int, offset: int = 0) -> list[tuple[int, int]]:
    """offset..offset+total cut into at most `count` consecutive (start, stop) ranges of
    near-equal size."""
    count = max(1, min(count, total))
    return [(offset + total * i // count, offset + total * (i + 1) // count) for i in range(count)]


def chunk_ranges(total: int, per_chunk: int, workers: int) -> list[tuple[int, int]]:
    """0..total cut into near-equal ranges of at most `per_chunk` (at least 1), as many as a
    multiple of `workers`, so that threads taking them one at a time finish together (three
    chunks on two threads would leave one thread twice the work)."""
    count = -(-total // max(1, per_chunk))
    return ranges(total, -(-count // workers) * workers)


def tap_slice(tap: int, dilation: int, stride: int, count: int) -> slice:
    """The padded-input rows (or columns) that kernel tap `tap` reads for `count` outputs."""
    start = tap * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def crop_hw(nhwc: Any, padding: Pair) -> Any:
    """An (N, H, W, C) array without its `padding` rows and columns."""
    return nhwc[:, padding[0]:nhwc.shape[1] - padding[0], padding[1]:nhwc.shape[2] - padding[1]]


def weight_rows(weight: Any, groups: int) -> Any:
    """(K, Cg, kH, kW) -> (groups, K/groups, kH*kW*Cg): one row per kernel, its taps in the
    im2col column order. Each kernel's (Cg, kH*kW) block is transposed on its own, which is
    free for 1x1 kernels and about 3x faster than a copy with K innermost; GEMMs take the
    rows' transpose as a view."""
    k, cg, kh, kw = weight.shape
    taps = weight.reshape(groups, k // groups, cg, kh * kw).swapaxes(2, 3)
    return taps.reshape(groups, k // groups, kh * kw * cg)


def weight_from_rows(rows: Any, weight_shape: tuple, groups: int) -> Any:
    """(groups, K/groups, kH*kW*Cg) -> (K, Cg, kH, kW): the inverse of `weight_rows`."""
    k, cg, kh, kw = weight_shape
    return rows.reshape(k, kh * kw, cg).swapaxes(1, 2).reshape(weight_shape)


def grad_matrix(grad: Any, groups: int) -> Any:
    """(N, K, OH, OW) -> (groups, N*OH*OW, K/groups); free when grad is channels-last."""
    n, k, oh, ow = grad.shape
    rows = grad.transpose(0, 2, 3, 1).reshape(n * oh * ow, groups, k // groups)
    return rows.transpose(1, 0, 2)


def groups_to_nchw(out: Any, nhwk: tuple) -> Any:
    """(groups, N*OH*OW, K/groups) -> an (N, K, OH, OW) view of channels-last memory."""
    groups = out.shape[0]
    rows = out[0] if groups == 1 else out.transpose(1, 0, 2)
    return rows.reshape(nhwk).transpose(0, 3, 1, 2)


def is_channels_last(x: Any) -> bool:
    """Whether (N, C, ...) data lies in memory as (N, ..., C), C-contiguous."""
    return x.transpose(0, *range(2, x.ndim), 1).flags.c_contiguous
