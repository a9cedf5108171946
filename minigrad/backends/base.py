"""The kernel interface every backend implements: arrays in, arrays out, no Tensors.

Only the heavy kernels live behind it: matmul, conv2d (forward and both gradients), and max and
average pooling (forward and backward). Everything else (elementwise math, reductions, indexing)
runs through the backend's array module `xp` (numpy or cupy), chosen from the arrays themselves.

Shapes and conventions are PyTorch's: NCHW activations, (K, C/groups, kH, kW) weights,
cross-correlation, output size floor((H + 2 pad - dilation (k - 1) - 1) / stride) + 1.
Kernels may return arrays whose memory is channels-last (an NCHW-shaped view of NHWC memory):
elementwise ops keep that layout, so a whole network can skip per-layer transposes.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

Pair = tuple[int, int]


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse instead of handing them back to the OS.

    glibc returns large blocks (32 MB and up, and any heap top past its trim threshold) to the
    OS when freed, so every new activation or column buffer page-faults on first touch: a
    75 MB buffer cost as long as the GEMM that fills it. The price is a resident size that stays
    at its peak. Set MINIGRAD_MALLOC_TUNING=0 to keep glibc's defaults. Returns whether applied.
    """
    if os.environ.get("MINIGRAD_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): leave the allocator alone
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    largest = 2**31 - 1  # mallopt takes a C int: a larger value would wrap (1 << 34 -> 0)
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and
                libc.mallopt(m_trim_threshold, largest))


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def window_index_dtype(kernel: Pair) -> str:
    """Max pooling records the argmax as an offset inside its window: one byte if it fits."""
    return "uint8" if kernel[0] * kernel[1] <= 256 else "int32"


class Backend:
    """The interface; `NumpyBackend` is the reference implementation of every method."""

    name: str
    xp: Any  # the array module: numpy or cupy
    # Whether `batch_norm_forward` / `batch_norm_backward` exist: compiled training-mode batch
    # norm over channels-last rows (M, C). ops/norm.py uses them then, else its array code.
    fused_batch_norm = False

    def matmul(self, a: Any, b: Any) -> Any:
        """Batched matrix product with NumPy's broadcasting rules."""
        raise NotImplementedError

    def relu(self, x: Any) -> Any:
        """max(x, 0); NaN stays NaN, as in PyTorch."""
        return self.xp.maximum(x, 0)

    def relu_backward(self, grad: Any, out: Any) -> Any:
        """The gradient where relu's output `out` is not <= 0 (positive, or NaN: PyTorch's
        rule), else 0."""
        return grad * ~(out <= 0)

    def channels_last(self, nchw: Any) -> Any:
        """The same values as an NCHW-shaped view of NHWC memory: free when already so laid out.

        Convolution kernels read channel vectors; converting once per op, not once per kernel,
        saves a copy of the input (forward and weight gradient) and of the output gradient.
        """
        return self.xp.ascontiguousarray(nchw.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    def conv2d_forward(self, x: Any, weight: Any, stride: Pair, padding: Pair, dilation: Pair,
                       groups: int) -> Any:
        """(N, C, H, W) * (K, C/groups, kH, kW) -> (N, K, OH, OW), without bias."""
        raise NotImplementedError

    def conv2d_backward_input(self, grad: Any, weight: Any, input_shape: tuple, stride: Pair,
                              padding: Pair, dilation: Pair, groups: int) -> Any:
        """d loss / d x from d loss / d out: a transposed convolution (col2im)."""
        raise NotImplementedError

    def conv2d_backward_weight(self, grad: Any, x: Any, weight_shape: tuple, stride: Pair,
                               padding: Pair, dilation: Pair, groups: int) -> Any:
        """d loss / d weight: grad (as a matrix) times the im2col columns of x."""
        raise NotImplementedError

    def conv2d_backward(self, grad: Any, x: Any, weight: Any, stride: Pair, padding: Pair,
                        dilation: Pair, groups: int, input_grad: bool = True,
                        weight_grad: bool = True) -> tuple[Any, Any]:
        """(d loss / d x, d loss / d weight), None where not asked for. A backend that can share
        work between the two (reading `grad` once) overrides this; Conv2d calls it."""
        geometry = (stride, padding, dilation, groups)
        return (self.conv2d_backward_input(grad, weight, x.shape, *geometry) if input_grad
                else None,
                self.conv2d_backward_weight(grad, x, weight.shape, *geometry) if weight_grad
                else None)

    def maxpool2d_forward(self, x: Any, kernel: Pair, stride: Pair,
                          padding: Pair) -> tuple[Any, Any]:
        """(max values, argmax offset inside each window); padding counts as -inf."""
        raise NotImplementedError

    def maxpool2d_backward(self, grad: Any, argmax: Any, input_shape: tuple, kernel: Pair,
                           stride: Pair, padding: Pair) -> Any:
        """Route each output gradient to its window's argmax (adding where windows overlap)."""
        raise NotImplementedError

    def avgpool2d_forward(self, x: Any, kernel: Pair, stride: Pair, padding: Pair) -> Any:
        """Window means; padding counts as zeros in the divisor (count_include_pad=True)."""
        raise NotImplementedError

    def avgpool2d_backward(self, grad: Any, input_shape: tuple, kernel: Pair, stride: Pair,
                           padding: Pair) -> Any:
        """Spread each output gradient evenly over its window."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<minigrad {self.name} backend>"
