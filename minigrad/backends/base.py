"""The kernel interface: every kernel an op may call, each with its contract. Arrays in, arrays
out, no Tensors.

`NumpyBackend` (numpy_backend.py) is the reference: it implements every kernel, plainly. A
faster backend subclasses it and replaces kernels; it never adds one that ops must probe for.
Elementwise math that needs no kernel (add, exp, sum, reshape...) runs in the ops through the
backend's array module `xp` (numpy or cupy), chosen from the arrays themselves.

Shapes and conventions are PyTorch's: NCHW activations, (K, C/groups, kH, kW) weights,
cross-correlation, output size floor((H + 2 pad - dilation (k - 1) - 1) / stride) + 1.
Inputs may be laid out in memory in any order; a kernel converts what it needs itself. Kernels
may return arrays whose memory is channels-last (an NCHW-shaped view of NHWC memory):
elementwise ops keep that layout, so a whole network can skip per-layer transposes. Per-channel
statistics (mean, var) are float64 vectors of length C.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minigrad.backends.geometry import Pair

Array = Any


class Backend:
    """The declared kernels; `NumpyBackend` implements every one."""

    name: str
    xp: Any  # the array module: numpy or cupy

    # ----------------------------------------------------------------------- elementwise
    def matmul(self, a: Array, b: Array) -> Array:
        """Batched matrix product with NumPy's broadcasting rules."""
        raise NotImplementedError

    def relu(self, x: Array) -> Array:
        """max(x, 0) in x's memory layout; NaN stays NaN, as in PyTorch."""
        raise NotImplementedError

    def relu_backward(self, grad: Array, out: Array) -> Array:
        """`grad` where relu's output `out` is not <= 0 (positive, or NaN: PyTorch's rule),
        else 0."""
        raise NotImplementedError

    def sigmoid(self, x: Array) -> Array:
        """1 / (1 + e^-x) of a floating-point array, in x's memory layout; an e^-x that
        overflows gives 0, and NaN stays NaN."""
        raise NotImplementedError

    def tanh(self, x: Array) -> Array:
        """tanh of a floating-point array, in x's memory layout: float32 within 2e-7 relative
        of the exact value (float64 within 1 ulp); -0 keeps its sign, NaN stays NaN."""
        raise NotImplementedError

    def silu(self, x: Array) -> Array:
        """x sigmoid(x), in x's memory layout."""
        raise NotImplementedError

    def silu_backward(self, grad: Array, x: Array) -> Array:
        """grad s (1 + x (1 - s)) with s = sigmoid(x): recomputed here, so SiLU keeps only x."""
        raise NotImplementedError

    def gelu(self, x: Array) -> Array:
        """x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, the exact GELU, in x's memory layout."""
        raise NotImplementedError

    def gelu_backward(self, grad: Array, x: Array) -> Array:
        """grad (Phi(x) + x phi(x)), phi the normal density: recomputed from x alone."""
        raise NotImplementedError

    def erf(self, x: Array) -> Array:
        """The error function of a float32/float64 array: float64 within 1 ulp of the exact
        value, float32 within 1e-6 relative (plus 1e-7 absolute) of it."""
        raise NotImplementedError

    def scatter_add(self, target: Array, index: Any, values: Array) -> None:
        """target[index] += values in place, adding every repeat of a repeated index."""
        raise NotImplementedError

    def channels_last(self, nchw: Array) -> Array:
        """The same values as an NCHW-shaped view of NHWC memory; free when already so."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------- conv2d
    def conv2d_forward(self, x: Array, weight: Array, stride: Pair, padding: Pair,
                       dilation: Pair, groups: int) -> Array:
        """(N, C, H, W) * (K, C/groups, kH, kW) -> (N, K, OH, OW), without bias."""
        raise NotImplementedError

    def conv2d_backward_input(self, grad: Array, weight: Array, input_shape: tuple,
                              stride: Pair, padding: Pair, dilation: Pair, groups: int) -> Array:
        """d loss / d x from d loss / d out: the transposed convolution."""
        raise NotImplementedError

    def conv2d_backward_weight(self, grad: Array, x: Array, weight_shape: tuple, stride: Pair,
                               padding: Pair, dilation: Pair, groups: int) -> Array:
        """d loss / d weight: the correlation of x with the output gradient."""
        raise NotImplementedError

    def conv2d_backward(self, grad: Array, x: Array, weight: Array, stride: Pair,
                        padding: Pair, dilation: Pair, groups: int, input_grad: bool = True,
                        weight_grad: bool = True) -> tuple[Array | None, Array | None]:
        """(d loss / d x, d loss / d weight), None where not asked for: what Conv2d calls, so
        a backend can share work between the two (read `grad` once)."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------- pooling
    def maxpool2d_forward(self, x: Array, kernel: Pair, stride: Pair,
                          padding: Pair) -> tuple[Array, Array]:
        """(window maxima, the offset i * kW + j of each maximum inside its window: the first
        on ties; a NaN wins, the last NaN, as in PyTorch); padding counts as -inf."""
        raise NotImplementedError

    def maxpool2d_backward(self, grad: Array, argmax: Array, input_shape: tuple, kernel: Pair,
                           stride: Pair, padding: Pair) -> Array:
        """Each output gradient routed to its window's argmax, added where windows overlap."""
        raise NotImplementedError

    def avgpool2d_forward(self, x: Array, kernel: Pair, stride: Pair, padding: Pair) -> Array:
        """Window means; padding counts as zeros in the divisor (count_include_pad=True)."""
        raise NotImplementedError

    def avgpool2d_backward(self, grad: Array, input_shape: tuple, kernel: Pair, stride: Pair,
                           padding: Pair) -> Array:
        """Each output gradient spread evenly over its window."""
        raise NotImplementedError

    # ---------------------------------------------------------------------- normalisation
    def batch_norm_stats(self, x: Array) -> tuple[Array, Array]:
        """Per-channel (dim 1) mean and biased variance of (N, C, ...) x, float64 (C,)."""
        raise NotImplementedError

    def batch_norm_forward(self, x: Array, weight: Array | None, bias: Array | None,
                           mean: Array, var: Array, eps: float) -> Array:
        """(x - mean) / sqrt(var + eps) * weight + bias per channel, in x's memory layout;
        weight and bias None mean 1 and 0."""
        raise NotImplementedError

    def batch_norm_backward(self, grad: Array, x: Array, weight: Array | None, mean: Array,
                            var: Array, eps: float, training: bool,
                            needs: tuple[bool, bool, bool],
                            reduce: Callable[[Any, int], tuple[Any, int]] | None = None
                            ) -> tuple[Array | None, ...]:
        """(d x, d weight, d bias) of `batch_norm_forward`, None where `needs` says so. When
        `training`, mean and var are the batch's statistics and d x goes through them too,
        by the per-channel float64 sums of grad and grad * xhat over the `count` values of
        each channel. `reduce(sums, count)`, when given, maps those (2, C) sums and the count to
        their totals over every process's batch (SyncBatchNorm), which d x then uses; d weight
        and d bias stay this call's own sums."""
        raise NotImplementedError

    def layer_norm_forward(self, x: Array, weight: Array | None, bias: Array | None,
                           ndim: int, eps: float) -> tuple[Array, Array, Array]:
        """(out, mean, invstd): each sample normalised over its last `ndim` dims (biased
        variance), then weight * xhat + bias; mean and invstd in x's dtype, dims kept."""
        raise NotImplementedError

    def layer_norm_backward(self, grad: Array, x: Array, weight: Array | None, mean: Array,
                            invstd: Array, ndim: int, needs: tuple[bool, bool, bool]
                            ) -> tuple[Array | None, ...]:
        """(d x, d weight, d bias) of `layer_norm_forward` in x's dtype, None where `needs` says
        so."""
        raise NotImplementedError

    def group_norm_forward(self, x: Array, weight: Array | None, bias: Array | None,
                           num_groups: int, eps: float) -> tuple[Array, Array, Array]:
        """(out, mean, invstd): each sample's num_groups groups of C / num_groups channels of
        (N, C, ...) x normalised over their channels and other dims (biased variance), then a
        per-channel weight * xhat + bias (None: 1 and 0); mean and invstd float64 (N, G)."""
        raise NotImplementedError

    def group_norm_backward(self, grad: Array, x: Array, weight: Array | None, mean: Array,
                            invstd: Array, num_groups: int, needs: tuple[bool, bool, bool]
                            ) -> tuple[Array | None, ...]:
        """(d x, d weight, d bias) of `group_norm_forward`, None where `needs` says so."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<minigrad {self.name} backend>"
