"""The reference backend: every kernel of the interface, written plainly in array code.

A convolution is im2col (a strided view of every window of the padded input, copied into
columns) and one GEMM; its input gradient folds the column gradients back tap by tap (col2im).
Columns are channels-last, (groups, N*OH*OW, kH*kW*C/groups), so each row reads whole channel
vectors, and results come back as NCHW views of NHWC memory. Pooling works on strided window
views. The code uses only the array module `xp`, so the CuPy backend inherits what it does not
replace. Faster backends are checked against this one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from minigrad.backends.base import Backend
from minigrad.backends.geometry import (
    Pair,
    crop_hw,
    grad_matrix,
    groups_to_nchw,
    is_channels_last,
    output_hw,
    tap_slice,
    weight_from_rows,
    weight_rows,
    window_index_dtype,
)


class NumpyBackend(Backend):
    name = "numpy"
    xp = numpy

    # ---------------------------------------------------------------------------- elementwise
    def matmul(self, a, b):
        return self.xp.matmul(a, b)

    def relu(self, x):
        return self.xp.maximum(x, 0)

    def relu_backward(self, grad, out):
        return grad * ~(out <= 0)

    def sigmoid(self, x):
        with numpy.errstate(over="ignore"):  # e^-x = inf: 1 / inf = 0, exactly the limit
            return 1 / (1 + self.xp.exp(-x))

    def tanh(self, x):
        return self.xp.tanh(x)

    def silu(self, x):
        with numpy.errstate(invalid="ignore"):  # -inf * 0: NaN, as in PyTorch
            return x * self.sigmoid(x)

    def silu_backward(self, grad, x):
        s = self.sigmoid(x)
        with numpy.errstate(invalid="ignore"):
            return grad * s * (1 + x * (1 - s))

    def gelu(self, x):
        with numpy.errstate(invalid="ignore"):  # -inf * 0: NaN, as in PyTorch
            return 0.5 * x * (1 + self.erf(x * (1 / math.sqrt(2))))

    def gelu_backward(self, grad, x):
        cdf = 0.5 * (1 + self.erf(x * (1 / math.sqrt(2))))
        pdf = self.xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        with numpy.errstate(invalid="ignore"):
            return grad * (cdf + x * pdf)

    def erf(self, x):
        return _erf(self.xp, x.astype(numpy.float64)).astype(x.dtype, copy=False)

    def scatter_add(self, target, index, values):
        self.xp.add.at(target, index, values)

    def channels_last(self, nchw):
        return self.xp.ascontiguousarray(nchw.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    # -------------------------------------------------------------------------------- conv2d
    def conv2d_forward(self, x, weight, stride, padding, dilation, groups):
        k, _, kh, kw = weight.shape
        cols = self._im2col(x, (kh, kw), stride, padding, dilation, groups)
        n, oh, ow = len(x), *output_hw(x.shape[2:], (kh, kw), stride, padding, dilation)
        out = self.xp.matmul(cols, weight_rows(weight, groups).swapaxes(1, 2))
        return groups_to_nchw(out, (n, oh, ow, k))

    def conv2d_backward_input(self, grad, weight, input_shape, stride, padding, dilation, groups):
        n, c, h, w = input_shape
        cols = self.xp.matmul(grad_matrix(grad, groups), weight_rows(weight, groups))
        return self._col2im(cols, (n, h, w, c), weight.shape[2:], stride, padding,
                            dilation).transpose(0, 3, 1, 2)

    def conv2d_backward_weight(self, grad, x, weight_shape, stride, padding, dilation, groups):
        cols = self._im2col(x, weight_shape[2:], stride, padding, dilation, groups)
        grad_w = self.xp.matmul(grad_matrix(grad, groups).swapaxes(1, 2), cols)
        return weight_from_rows(grad_w, weight_shape, groups)

    def conv2d_backward(self, grad, x, weight, stride, padding, dilation, groups,
                        input_grad=True, weight_grad=True):
        geometry = (stride, padding, dilation, groups)
        return (self.conv2d_backward_input(grad, weight, x.shape, *geometry) if input_grad
                else None,
                self.conv2d_backward_weight(grad, x, weight.shape, *geometry) if weight_grad
                else None)

    def _im2col(self, x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, groups: int):
        """(groups, N*OH*OW, kH*kW*C/groups): one row per output pixel, holding its window of
        the zero-padded input, tap by tap, each tap a whole channel vector of its group."""
        n, c, h, w = x.shape
        (ph, pw), cg = padding, c // groups
        oh, ow = output_hw((h, w), kernel, stride, padding, dilation)
        padded = self.xp.pad(x.transpose(0, 2, 3, 1), ((0, 0), (ph, ph), (pw, pw), (0, 0)))
        sn, sh, sw, sc = padded.strides
        windows = self.xp.lib.stride_tricks.as_strided(
            padded, shape=(groups, n, oh, ow, kernel[0], kernel[1], cg),
            strides=(cg * sc, sn, sh * stride[0], sw * stride[1], sh * dilation[0],
                     sw * dilation[1], sc))
        return windows.reshape(groups, n * oh * ow, kernel[0] * kernel[1] * cg)

    def _col2im(self, cols, nhwc_shape, kernel: Pair, stride: Pair, padding: Pair,
                dilation: Pair):
        """The adjoint of im2col: an (N, H, W, C) array with every column entry added back to
        the pixel it was read from (one strided add per kernel tap)."""
        n, h, w, c = nhwc_shape
        oh, ow = output_hw((h, w), kernel, stride, padding, dilation)
        groups = cols.shape[0]
        taps = cols.reshape(groups, n, oh, ow, kernel[0], kernel[1], c // groups)
        padded = self.xp.zeros((n, h + 2 * padding[0], w + 2 * padding[1], c), cols.dtype)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                tap = taps[:, :, :, :, i, j, :].transpose(1, 2, 3, 0, 4).reshape(n, oh, ow, c)
                padded[:, tap_slice(i, dilation[0], stride[0], oh),
                       tap_slice(j, dilation[1], stride[1], ow)] += tap
        return crop_hw(padded, padding)

    # ------------------------------------------------------------------------------- pooling
    def maxpool2d_forward(self, x, kernel, stride, padding):
        windows = self._pool_windows(x, kernel, stride, padding, -self.xp.inf)
        flat = windows.reshape(windows.shape[:4] + (kernel[0] * kernel[1],))
        # the first maximum, or, as in PyTorch, the last NaN (argmax would give the first)
        nan = self.xp.isnan(flat)
        last_nan = flat.shape[-1] - 1 - nan[..., ::-1].argmax(axis=-1)
        argmax = self.xp.where(nan.any(axis=-1), last_nan, flat.argmax(axis=-1))
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
        (ph, pw), (h, w) = padding, x.shape[2:]
        oh, ow = output_hw((h, w), kernel, stride, padding)
        padded = self.xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
        sn, sc, sh, sw = padded.strides
        return self.xp.lib.stride_tricks.as_strided(
            padded, shape=(*x.shape[:2], oh, ow, kernel[0], kernel[1]),
            strides=(sn, sc, sh * stride[0], sw * stride[1], sh, sw))

    def _scatter_taps(self, tap_grad, grad, input_shape, kernel, stride, padding):
        """Add `tap_grad(i, j)` (an (N, C, OH, OW) array) at each window's (i, j) pixel."""
        n, c, h, w = input_shape
        oh, ow = grad.shape[2:]
        padded = self.xp.zeros((n, h + 2 * padding[0], w + 2 * padding[1], c), dtype=grad.dtype)
        nchw = padded.transpose(0, 3, 1, 2)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                nchw[:, :, tap_slice(i, 1, stride[0], oh),
                     tap_slice(j, 1, stride[1], ow)] += tap_grad(i, j)
        return crop_hw(padded, padding).transpose(0, 3, 1, 2)

    # ------------------------------------------------------------------------- normalisation
    def batch_norm_stats(self, x):
        layout = _channel_layout(self.xp, x)
        mean, var = _moments(layout, layout.view(x))
        return layout.gather(mean), layout.gather(var)

    def batch_norm_forward(self, x, weight, bias, mean, var, eps):
        """x * alpha + beta with per-channel alpha = weight * invstd and beta = bias - mean *
        alpha, computed in float64: two passes over x."""
        layout = _channel_layout(self.xp, x)
        alpha, beta = self._batch_norm_affine(weight, bias, mean, var, eps)
        out = layout.view(x) * layout.spread(alpha.astype(x.dtype))
        out += layout.spread(beta.astype(x.dtype))
        return layout.unview(out)

    def _batch_norm_affine(self, weight, bias, mean, var, eps):
        """Per-channel (alpha, beta) in float64 with x * alpha + beta = (x - mean) * invstd *
        weight + bias."""
        alpha = 1 / self.xp.sqrt(var.astype(numpy.float64) + eps)
        if weight is not None:
            alpha = alpha * weight.astype(numpy.float64)
        beta = -mean.astype(numpy.float64) * alpha
        if bias is not None:
            beta += bias.astype(numpy.float64)
        return alpha, beta

    def batch_norm_backward(self, grad, x, weight, mean, var, eps, training, needs, reduce=None):
        needs_x, needs_w, needs_b = needs
        layout = _channel_layout(self.xp, x)
        mean = layout.spread(mean.astype(x.dtype))
        invstd = layout.spread((1 / self.xp.sqrt(var.astype(numpy.float64) + eps)).astype(x.dtype))
        rows, grad = layout.view(x), layout.view(grad)
        scale = invstd if weight is None else invstd * layout.spread(weight)
        if not training and not (needs_w or needs_b):
            return layout.unview(_scaled(self.xp, rows, grad, scale)), None, None
        xhat = _normalize(rows, mean, invstd)
        sums = _grad_sums(layout, grad, xhat)
        totals, count = sums, layout.count
        if training and reduce is not None:
            totals, count = reduce(self.xp.stack(sums), count)
        grad_x = None
        if needs_x:
            grad_x = layout.unview(
                _through_statistics(xhat, grad, totals, count, scale) if training
                else _scaled(self.xp, rows, grad, scale))
        return (grad_x, layout.gather(sums[1]) if needs_w else None,
                layout.gather(sums[0]) if needs_b else None)

    def layer_norm_forward(self, x, weight, bias, ndim, eps):
        layout = _Axes(x.shape, tuple(range(x.ndim - ndim, x.ndim)))
        mean, var = _moments(layout, x)
        mean, invstd = mean.astype(x.dtype), (1 / self.xp.sqrt(var + eps)).astype(x.dtype)
        out = _normalize(x, mean, invstd)
        if weight is not None:
            out *= weight
        if bias is not None:
            out += bias
        return out, mean, invstd

    def layer_norm_backward(self, grad, x, weight, mean, invstd, ndim, needs):
        """d x goes through the per-sample statistics, with the upstream gradient scaled by
        weight first; d weight and d bias are sums over the samples (in float64, then x's
        dtype)."""
        needs_x, needs_w, needs_b = needs
        layout = _Axes(x.shape, tuple(range(x.ndim - ndim, x.ndim)))
        per_sample = _Axes(x.shape, tuple(range(x.ndim - ndim)))
        xhat = _normalize(x, mean, invstd)
        normalized_shape = x.shape[x.ndim - ndim:]
        grad_w = grad_b = grad_x = None
        if needs_w:
            grad_w = per_sample.sum64(grad * xhat).reshape(normalized_shape).astype(x.dtype)
        if needs_b:
            grad_b = per_sample.sum64(grad).reshape(normalized_shape).astype(x.dtype)
        if needs_x:
            grad_xhat = grad if weight is None else grad * weight
            sums = _grad_sums(layout, grad_xhat, xhat)
            grad_x = _through_statistics(xhat, grad_xhat, sums, layout.count, invstd)
        return grad_x, grad_w, grad_b

    def group_norm_forward(self, x, weight, bias, num_groups, eps):
        """Layer norm (no affine) of x seen as (N, G, C/G * prod(*)), then the per-channel
        affine map, in place on the fresh xhat."""
        n = x.shape[0]
        with numpy.errstate(invalid="ignore", divide="ignore"):  # groups of 0 elements: NaN
            xhat, mean, invstd = self.layer_norm_forward(
                x.reshape(n, num_groups, x.size // max(n * num_groups, 1)), None, None, 1, eps)
        out = xhat.reshape(x.shape)
        if weight is not None:
            out *= _per_channel(weight, x.ndim)
        if bias is not None:
            out += _per_channel(bias, x.ndim)
        return (out, mean.reshape(n, num_groups).astype(numpy.float64),
                invstd.reshape(n, num_groups).astype(numpy.float64))

    def group_norm_backward(self, grad, x, weight, mean, invstd, num_groups, needs):
        """Two sums per (sample, channel) over the other dims, S = sum(grad) and
        T = sum(grad * xhat), give d bias and d weight (summed over the batch) and, weighted
        by the channel weights and summed over each group, both means of the gradient through
        the group statistics: d x = invstd * (w grad - mean(w grad) - xhat * mean(w grad
        xhat)), assembled without another full-size reduction (as PyTorch's CPU kernel).
        xhat stays (x - mean) * invstd, never x * invstd - mean * invstd, whose two large
        terms would cancel for data far from zero."""
        xp, dtype = self.xp, x.dtype
        n, channels = x.shape[:2]
        per_group = channels // num_groups
        count = x.size // max(n * num_groups, 1)
        rows = (n, channels, count // max(per_group, 1))  # (N, C, prod(*))
        # x - mean: xhat / invstd, fresh, (N, G, count)
        centered = x.reshape(n, num_groups, count) - mean[:, :, None].astype(dtype)
        grad_rows, centered_rows = grad.reshape(rows), centered.reshape(rows)
        # S and T / invstd: a pairwise sum and a BLAS dot along each row, in x's dtype (PyTorch
        # sums float32 in float32 too), then float64
        sum_grad = grad_rows.sum(axis=2).astype(numpy.float64)
        dots = xp.matmul(grad_rows[:, :, None, :], centered_rows[:, :, :, None])
        istd = xp.repeat(invstd, per_group, axis=1)  # (N, C)
        sum_grad_xhat = dots.reshape(n, channels).astype(numpy.float64) * istd
        needs_x, needs_w, needs_b = needs
        grad_w = sum_grad_xhat.sum(axis=0).astype(dtype) if needs_w else None
        grad_b = sum_grad.sum(axis=0).astype(dtype) if needs_b else None
        if not needs_x:
            return None, grad_w, grad_b
        w = xp.ones(channels) if weight is None else weight.astype(numpy.float64)
        # the group means of w grad and of w grad xhat, (N, G, 1)
        by_group = (n, num_groups, per_group)
        mean_g = (sum_grad * w).reshape(by_group).sum(axis=2, keepdims=True) / count
        mean_gx = (sum_grad_xhat * w).reshape(by_group).sum(axis=2, keepdims=True) / count
        group_istd = invstd[:, :, None]
        # d x = (w invstd) grad - (x - mean) invstd^2 mean_gx - invstd mean_g
        grad_x = grad_rows * (w * istd)[:, :, None].astype(dtype)
        centered *= (-group_istd * group_istd * mean_gx).astype(dtype)
        centered -= (group_istd * mean_g).astype(dtype)
        grad_x += centered.reshape(rows)
        return grad_x.reshape(x.shape), grad_w, grad_b


def _per_channel(vector: Any, ndim: int) -> Any:
    """A (C,) vector shaped (C, 1, ...) to broadcast along dim 1 of an ndim-D array."""
    return vector.reshape(-1, *(1,) * (ndim - 2))


def create() -> NumpyBackend:
    return NumpyBackend()


# ----------------------------------------------------------------------------- normalisation
# Statistics and every reduction of a backward are accumulated in float64 and cast back (as
# PyTorch does on the CPU): a float32 sum down the batch of channels-last data adds one row at
# a time and drifts. Full-size arithmetic stays in the input's dtype, and every full-size
# result is made from the input (`x - mean`, `xhat * c`) and then updated in place, so it keeps
# the input's memory layout.

ROW_WIDTH = 1024  # elements per row when channels-last data is seen as rows of channel vectors


class _Axes:
    """Sums over `axes` of arrays used as they are, dims kept so the sums broadcast back.
    Per-channel (C,) vectors are spread to the kept shape (1, C, 1, ...) and gathered back."""

    def __init__(self, shape: tuple[int, ...], axes: tuple[int, ...]) -> None:
        self.axes = axes
        self.count = math.prod(shape[a] for a in axes)
        self.kept = tuple(1 if d in axes else n for d, n in enumerate(shape))

    def view(self, a: Any) -> Any:
        return a

    def unview(self, a: Any) -> Any:
        return a

    def sum64(self, a: Any) -> Any:
        return a.sum(axis=self.axes, dtype=numpy.float64, keepdims=True)

    def spread(self, vector: Any) -> Any:
        return vector.reshape(self.kept)

    def gather(self, stat: Any) -> Any:
        return stat.reshape(-1)


class _ChannelRows:
    """Channels-last memory (N, *spatial, C) seen as rows of k whole channel vectors (free: no
    copy). NumPy's inner loops run along the innermost memory dim, which for channels-last data
    is C, often only 16 long; rows of k * C ~ ROW_WIDTH elements, with every per-channel vector
    tiled k times to match, sum several times faster. (The Numba backend's compiled passes
    take narrower rows: `row_width`.)"""

    def __init__(self, xp: Any, shape: tuple[int, ...], row_width: int = ROW_WIDTH) -> None:
        self.xp, self.channels = xp, shape[1]
        self.count = math.prod(shape) // self.channels
        self.k = _largest_divisor(self.count, max(1, row_width // self.channels))
        self.nhwc_shape = (shape[0], *shape[2:], self.channels)
        self.to_nchw = (0, len(shape) - 1, *range(1, len(shape) - 1))

    def view(self, a: Any) -> Any:
        """The rows; free for channels-last memory, a copy into it for any other layout."""
        return a.transpose(0, *range(2, a.ndim), 1).reshape(-1, self.k * self.channels)

    def unview(self, rows: Any) -> Any:
        return rows.reshape(self.nhwc_shape).transpose(self.to_nchw)

    def sum64(self, rows: Any) -> Any:
        per_channel = rows.sum(axis=0, dtype=numpy.float64).reshape(self.k, self.channels)
        return self.spread(per_channel.sum(axis=0))

    def spread(self, vector: Any) -> Any:
        return self.xp.tile(vector, self.k)

    def gather(self, stat: Any) -> Any:
        return stat[:self.channels]


def _largest_divisor(n: int, limit: int) -> int:
    """The largest k <= limit dividing n (1 for an empty batch)."""
    return next((k for k in range(min(n, limit), 0, -1) if n % k == 0), 1)


def _channel_layout(xp: Any, x: Any) -> _Axes | _ChannelRows:
    """How to take per-channel statistics of (N, C, ...) data: over rows of channel vectors
    when its memory is channels-last ((N, C) included), else over dims 0, 2, 3, ..."""
    if is_channels_last(x):
        return _ChannelRows(xp, x.shape)
    return _Axes(x.shape, (0, *range(2, x.ndim)))


def _moments(layout: _Axes | _ChannelRows, x: Any) -> tuple[Any, Any]:
    """Mean and biased variance in float64, by two passes (no E[x^2] - E[x]^2 cancellation).
    The centred copy is in x's dtype; squaring it in place saves a buffer."""
    mean = layout.sum64(x) / layout.count
    centered = x - mean.astype(x.dtype, copy=False)
    centered *= centered
    return mean, layout.sum64(centered) / layout.count


def _normalize(x: Any, mean: Any, invstd: Any) -> Any:
    """xhat = (x - mean) * invstd, as a fresh array in x's memory layout."""
    xhat = x - mean
    xhat *= invstd
    return xhat


def _grad_sums(layout: _Axes | _ChannelRows, grad: Any, xhat: Any) -> tuple[Any, Any]:
    """sum(grad) and sum(grad * xhat) in float64: the bias and weight gradients of the affine
    map after a normalisation, and the two terms of `_through_statistics`."""
    return layout.sum64(grad), layout.sum64(grad * xhat)


def _through_statistics(xhat: Any, grad: Any, sums: tuple[Any, Any], count: int,
                        scale: Any) -> Any:
    """d loss / d x when xhat = (x - mean(x)) * invstd(x) and grad = d loss / d xhat:
    scale * (grad - mean(grad) - xhat * mean(grad * xhat)), the means over the normalised dims:
    the two mean terms are the gradient through the mean and through the variance. Overwrites
    xhat, a fresh array in x's layout."""
    sum_grad, sum_grad_xhat = sums
    dx = xhat
    dx *= (sum_grad_xhat / -count).astype(xhat.dtype)
    dx += grad
    dx -= (sum_grad / count).astype(xhat.dtype)
    dx *= scale
    return dx


def _scaled(xp: Any, x: Any, grad: Any, scale: Any) -> Any:
    """grad * scale (eval mode's d/dx: the statistics are constants), in x's memory layout."""
    return xp.multiply(grad, scale, out=xp.empty_like(x))


# ------------------------------------------------------------------------------------- erf
# Sun's fdlibm erf (s_erf.c, freely distributable), vectorised: rational approximations on
# four intervals of |x|, each within 1 ulp. NumPy itself has no erf.

_ERX = 8.45062911510467529297e-01
_EFX = 1.28379167095512586316e-01
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05)
_QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
       1.32494738004321644526e-04, -3.96022827877536812320e-06)
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03)
_QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
       1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02)
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
       -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
       -8.12874355063065934246e+01, -9.81432934416914548592e+00)
_SA = (1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
       6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
       6.57024977031928170135e+00, -6.04244152148580987438e-02)
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
       -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
       -4.83519191608651397019e+02)
_SB = (1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
       3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
       -2.24409524465858183362e+01)


def _poly(coefficients: tuple, z: Any) -> Any:
    """c0 + c1 z + c2 z^2 + ... by Horner's rule."""
    result = coefficients[-1]
    for c in coefficients[-2::-1]:
        result = result * z + c
    return result


def _erf(xp: Any, x: Any) -> Any:
    """erf of a float64 array."""
    a = xp.abs(x)
    with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = x * x
        small = x + x * (_poly(_PP, z) / _poly(_QQ, z))  # |x| < 0.84375
        s = a - 1
        near_one = _ERX + _poly(_PA, s) / _poly(_QA, s)  # 0.84375 <= |x| < 1.25
        s = 1 / z
        ratio = xp.where(a < 1 / 0.35, _poly(_RA, s) / _poly(_SA, s),  # 1.25 <= |x| < 6
                         _poly(_RB, s) / _poly(_SB, s))
        head = (a.view(xp.int64) & ~0xFFFFFFFF).view(xp.float64)  # a, low 32 bits cleared
        tail = xp.exp(-head * head - 0.5625) * xp.exp((head - a) * (head + a) + ratio) / a
        large = 1 - tail
    magnitude = xp.where(a < 1.25, near_one, xp.where(a >= 6, 1.0, large))  # NaN stays NaN
    return xp.where(a < 0.84375, small, xp.copysign(magnitude, x))
