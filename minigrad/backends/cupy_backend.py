"""The GPU backend: im2col, col2im and pooling as CUDA kernels, every GEMM in cuBLAS.

The convolution is the reference's (one GEMM over im2col columns, `cupy.matmul`), with the
columns built and folded back by the kernels below; pooling is one kernel each way. Every
kernel takes its inputs with their own strides (plain NCHW or channels-last views alike) and
writes channels-last (NHWC) memory, which it hands back as an NCHW-shaped view, as the CPU
backends do. One thread computes one output element, and the backward kernels are gathers
(each input pixel sums the taps that read it), so they need no atomics and no zero-fill, and
their sums come out in the same order on every run.

The kernels are CUDA C compiled by NVRTC on first use for each dtype (`cupy.RawModule`), and
cached on disk by CuPy, so a later process loads them in milliseconds. CuPy is optional:
`pip install -e .[cuda13]` (or `[cuda12]`).
"""

from __future__ import annotations

from typing import Any

import numpy

from minigrad.backends.geometry import (
    grad_matrix,
    groups_to_nchw,
    output_hw,
    weight_from_rows,
    weight_rows,
    window_index_dtype,
)
from minigrad.backends.numpy_backend import NumpyBackend

# Threads per block; the grid-stride loops let a capped grid cover any size.
THREADS = 256
MAX_BLOCKS = 1 << 16

C_TYPES = {"float32": "float", "float64": "double", "uint8": "unsigned char", "int32": "int"}

# `T` is the float type, `I` the argmax type; the Python side prepends both typedefs. Every
# integer argument is a `long long` (the Python side passes numpy.int64), so sizes past 2**31
# elements index correctly.
KERNELS = r"""
typedef long long i64;

#define FOR_EACH(idx, total) \
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < (total); \
         idx += (i64)blockDim.x * gridDim.x)

/* The output index `*o` (< outputs) whose window reads input position `pos` at the tap
   `offset` into the window, if there is one: pos = o * stride - pad + offset. */
__device__ __forceinline__ bool reads(i64 pos, i64 pad, i64 offset, i64 stride, i64 outputs,
                                      i64* o) {
    i64 t = pos + pad - offset;
    if (t < 0 || t % stride != 0) return false;
    *o = t / stride;
    return *o < outputs;
}

/* cols (groups, N*OH*OW, kH*kW*Cg): one row per output pixel, whole channel runs per tap. */
extern "C" __global__ void im2col(
        const T* x, T* cols, i64 n, i64 c, i64 h, i64 w, i64 sn, i64 sc, i64 sh, i64 sw,
        i64 oh, i64 ow, i64 kh, i64 kw, i64 strh, i64 strw, i64 padh, i64 padw,
        i64 dilh, i64 dilw, i64 groups) {
    i64 cg = c / groups;
    FOR_EACH(idx, groups * n * oh * ow * kh * kw * cg) {
        i64 t = idx;
        i64 ch = t % cg; t /= cg;
        i64 j = t % kw; t /= kw;
        i64 i = t % kh; t /= kh;
        i64 ox = t % ow; t /= ow;
        i64 oy = t % oh; t /= oh;
        i64 b = t % n;
        i64 g = t / n;
        i64 y = oy * strh - padh + i * dilh;
        i64 xx = ox * strw - padw + j * dilw;
        bool inside = y >= 0 && y < h && xx >= 0 && xx < w;
        cols[idx] = inside ? x[b * sn + (g * cg + ch) * sc + y * sh + xx * sw] : (T)0;
    }
}

/* out (N, H, W, C) = the adjoint of im2col: each pixel sums the column entries read from it. */
extern "C" __global__ void col2im(
        const T* cols, T* out, i64 n, i64 c, i64 h, i64 w, i64 oh, i64 ow, i64 kh, i64 kw,
        i64 strh, i64 strw, i64 padh, i64 padw, i64 dilh, i64 dilw, i64 groups) {
    i64 cg = c / groups;
    FOR_EACH(idx, n * h * w * c) {
        i64 ch = idx % c, t = idx / c;
        i64 xx = t % w; t /= w;
        i64 y = t % h;
        i64 b = t / h;
        i64 g = ch / cg;
        const T* rows = cols + (g * n + b) * oh * ow * kh * kw * cg + (ch - g * cg);
        T sum = 0;
        for (i64 i = 0; i < kh; ++i) {
            i64 oy;
            if (!reads(y, padh, i * dilh, strh, oh, &oy)) continue;
            for (i64 j = 0; j < kw; ++j) {
                i64 ox;
                if (!reads(xx, padw, j * dilw, strw, ow, &ox)) continue;
                sum += rows[((oy * ow + ox) * kh * kw + i * kw + j) * cg];
            }
        }
        out[idx] = sum;
    }
}

/* out, argmax (N, OH, OW, C): the window's maximum and its offset i * kW + j (the first one
   on ties; a NaN wins, the last NaN, as in PyTorch), padding as -inf (`lowest`). */
extern "C" __global__ void maxpool_forward(
        const T* x, T* out, I* argmax, T lowest, i64 n, i64 c, i64 h, i64 w,
        i64 sn, i64 sc, i64 sh, i64 sw, i64 oh, i64 ow, i64 kh, i64 kw,
        i64 strh, i64 strw, i64 padh, i64 padw) {
    FOR_EACH(idx, n * oh * ow * c) {
        i64 ch = idx % c, t = idx / c;
        i64 ox = t % ow; t /= ow;
        i64 oy = t % oh;
        i64 b = t / oh;
        const T* image = x + b * sn + ch * sc;
        T best = lowest;
        i64 arg = 0;
        for (i64 i = 0; i < kh; ++i) {
            i64 y = oy * strh - padh + i;
            if (y < 0 || y >= h) continue;
            for (i64 j = 0; j < kw; ++j) {
                i64 xx = ox * strw - padw + j;
                if (xx < 0 || xx >= w) continue;
                T v = image[y * sh + xx * sw];
                if (v > best || v != v) {
                    best = v;
                    arg = i * kw + j;
                }
            }
        }
        out[idx] = best;
        argmax[idx] = (I)arg;
    }
}

/* out (N, H, W, C): each pixel sums the gradients of the windows whose argmax it is. */
extern "C" __global__ void maxpool_backward(
        const T* grad, const I* argmax, T* out, i64 n, i64 c, i64 h, i64 w,
        i64 gsn, i64 gsc, i64 gsh, i64 gsw, i64 asn, i64 asc, i64 ash, i64 asw,
        i64 oh, i64 ow, i64 kh, i64 kw, i64 strh, i64 strw, i64 padh, i64 padw) {
    FOR_EACH(idx, n * h * w * c) {
        i64 ch = idx % c, t = idx / c;
        i64 xx = t % w; t /= w;
        i64 y = t % h;
        i64 b = t / h;
        T sum = 0;
        for (i64 i = 0; i < kh; ++i) {
            i64 oy;
            if (!reads(y, padh, i, strh, oh, &oy)) continue;
            for (i64 j = 0; j < kw; ++j) {
                i64 ox;
                if (!reads(xx, padw, j, strw, ow, &ox)) continue;
                if ((i64)argmax[b * asn + ch * asc + oy * ash + ox * asw] == i * kw + j)
                    sum += grad[b * gsn + ch * gsc + oy * gsh + ox * gsw];
            }
        }
        out[idx] = sum;
    }
}

/* out (N, OH, OW, C): window means, padding counted as zeros (count_include_pad). */
extern "C" __global__ void avgpool_forward(
        const T* x, T* out, i64 n, i64 c, i64 h, i64 w, i64 sn, i64 sc, i64 sh, i64 sw,
        i64 oh, i64 ow, i64 kh, i64 kw, i64 strh, i64 strw, i64 padh, i64 padw) {
    FOR_EACH(idx, n * oh * ow * c) {
        i64 ch = idx % c, t = idx / c;
        i64 ox = t % ow; t /= ow;
        i64 oy = t % oh;
        i64 b = t / oh;
        const T* image = x + b * sn + ch * sc;
        T sum = 0;
        for (i64 i = 0; i < kh; ++i) {
            i64 y = oy * strh - padh + i;
            if (y < 0 || y >= h) continue;
            for (i64 j = 0; j < kw; ++j) {
                i64 xx = ox * strw - padw + j;
                if (xx >= 0 && xx < w) sum += image[y * sh + xx * sw];
            }
        }
        out[idx] = sum / (T)(kh * kw);
    }
}

/* out (N, H, W, C): each pixel gets 1 / (kH kW) of the gradient of every window it is in. */
extern "C" __global__ void avgpool_backward(
        const T* grad, T* out, i64 n, i64 c, i64 h, i64 w, i64 gsn, i64 gsc, i64 gsh, i64 gsw,
        i64 oh, i64 ow, i64 kh, i64 kw, i64 strh, i64 strw, i64 padh, i64 padw) {
    FOR_EACH(idx, n * h * w * c) {
        i64 ch = idx % c, t = idx / c;
        i64 xx = t % w; t /= w;
        i64 y = t % h;
        i64 b = t / h;
        T sum = 0;
        for (i64 i = 0; i < kh; ++i) {
            i64 oy;
            if (!reads(y, padh, i, strh, oh, &oy)) continue;
            for (i64 j = 0; j < kw; ++j) {
                i64 ox;
                if (reads(xx, padw, j, strw, ow, &ox))
                    sum += grad[b * gsn + ch * gsc + oy * gsh + ox * gsw] / (T)(kh * kw);
            }
        }
        out[idx] = sum;
    }
}
"""


class CupyBackend(NumpyBackend):
    """The reference's array code on CuPy arrays, with these kernels replaced."""

    name = "cupy"

    def __init__(self, cupy: Any) -> None:
        self.xp = cupy
        self._modules: dict[tuple[str, str], Any] = {}

    def erf(self, x):
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)

    def scatter_add(self, target, index, values):
        import cupyx

        cupyx.scatter_add(target, index, values)

    # -------------------------------------------------------------------------------- conv2d
    def conv2d_forward(self, x, weight, stride, padding, dilation, groups):
        k, _, kh, kw = weight.shape
        n, _, h, w = x.shape
        cols = self._im2col(x, (kh, kw), stride, padding, dilation, groups)
        out = self.xp.matmul(cols, weight_rows(weight, groups).swapaxes(1, 2))
        oh, ow = output_hw((h, w), (kh, kw), stride, padding, dilation)
        return groups_to_nchw(out, (n, oh, ow, k))

    def conv2d_backward_input(self, grad, weight, input_shape, stride, padding, dilation, groups):
        n, c, h, w = input_shape
        kh, kw = weight.shape[2:]
        weights = weight_rows(weight, groups)
        cols = self.xp.ascontiguousarray(self.xp.matmul(grad_matrix(grad, groups), weights))
        out = self.xp.empty((n, h, w, c), grad.dtype)
        self._launch("col2im", out.size, grad.dtype, cols, out, n, c, h, w, *grad.shape[2:],
                     kh, kw, *stride, *padding, *dilation, groups)
        return out.transpose(0, 3, 1, 2)

    def conv2d_backward_weight(self, grad, x, weight_shape, stride, padding, dilation, groups):
        cols = self._im2col(x, weight_shape[2:], stride, padding, dilation, groups)
        grad_w = self.xp.matmul(grad_matrix(grad, groups).swapaxes(1, 2), cols)
        return weight_from_rows(grad_w, weight_shape, groups)

    def _im2col(self, x, kernel, stride, padding, dilation, groups):
        """(groups, N*OH*OW, kH*kW*C/groups) columns, the padding folded into the kernel."""
        n, c, h, w = x.shape
        oh, ow = output_hw((h, w), kernel, stride, padding, dilation)
        cols = self.xp.empty((groups, n * oh * ow, kernel[0] * kernel[1] * (c // groups)),
                             x.dtype)
        self._launch("im2col", cols.size, x.dtype, x, cols, n, c, h, w, *_strides(x), oh, ow,
                     *kernel, *stride, *padding, *dilation, groups)
        return cols

    # ------------------------------------------------------------------------------- pooling
    def maxpool2d_forward(self, x, kernel, stride, padding):
        out = self._pooled(x, kernel, stride, padding)
        index = window_index_dtype(kernel)
        argmax = self.xp.empty(out.shape, index)
        lowest = numpy.dtype(x.dtype).type(-numpy.inf)
        self._launch("maxpool_forward", out.size, x.dtype, x, out, argmax, lowest, *x.shape,
                     *_strides(x), *out.shape[1:3], *kernel, *stride, *padding, index=index)
        return out.transpose(0, 3, 1, 2), argmax.transpose(0, 3, 1, 2)

    def maxpool2d_backward(self, grad, argmax, input_shape, kernel, stride, padding):
        out = self._pixels(input_shape, grad.dtype)
        self._launch("maxpool_backward", out.size, grad.dtype, grad, argmax, out, *input_shape,
                     *_strides(grad), *_strides(argmax), *grad.shape[2:], *kernel, *stride,
                     *padding, index=str(argmax.dtype))
        return out.transpose(0, 3, 1, 2)

    def avgpool2d_forward(self, x, kernel, stride, padding):
        out = self._pooled(x, kernel, stride, padding)
        self._launch("avgpool_forward", out.size, x.dtype, x, out, *x.shape, *_strides(x),
                     *out.shape[1:3], *kernel, *stride, *padding)
        return out.transpose(0, 3, 1, 2)

    def avgpool2d_backward(self, grad, input_shape, kernel, stride, padding):
        out = self._pixels(input_shape, grad.dtype)
        self._launch("avgpool_backward", out.size, grad.dtype, grad, out, *input_shape,
                     *_strides(grad), *grad.shape[2:], *kernel, *stride, *padding)
        return out.transpose(0, 3, 1, 2)

    def _pooled(self, x, kernel, stride, padding):
        """An empty (N, OH, OW, C) array for the pooled output of x."""
        n, c, h, w = x.shape
        oh, ow = output_hw((h, w), kernel, stride, padding, (1, 1))
        return self.xp.empty((n, oh, ow, c), x.dtype)

    def _pixels(self, nchw_shape, dtype):
        """An empty (N, H, W, C) array for the input gradient."""
        n, c, h, w = nchw_shape
        return self.xp.empty((n, h, w, c), dtype)

    # ------------------------------------------------------------------------------ kernels
    def _launch(self, name: str, total: int, dtype, *args, index: str = "uint8") -> None:
        """Run kernel `name` for `total` output elements; ints are passed as int64."""
        if total == 0:
            return
        kernel = self._module(str(numpy.dtype(dtype)), index).get_function(name)
        blocks = min(-(-total // THREADS), MAX_BLOCKS)
        kernel((blocks,), (THREADS,), tuple(numpy.int64(a) if isinstance(a, int) else a
                                            for a in args))

    def _module(self, dtype: str, index: str) -> Any:
        """The kernels compiled for float type `dtype` and argmax type `index` (NVRTC compiles
        on first use; CuPy caches the binary on disk)."""
        key = (dtype, index)
        if key not in self._modules:
            if dtype not in ("float32", "float64"):
                raise TypeError(f"cupy backend: kernels run on float32 or float64 arrays, "
                                f"got {dtype}")
            source = f"typedef {C_TYPES[dtype]} T;\ntypedef {C_TYPES[index]} I;\n{KERNELS}"
            self._modules[key] = self.xp.RawModule(code=source)
        return self._modules[key]


def _strides(array) -> tuple[int, ...]:
    """Strides in elements (CuPy and NumPy give bytes)."""
    return tuple(s // array.itemsize for s in array.strides)


def create() -> CupyBackend:
    """Import CuPy and check for a GPU, saying which one is missing if either is."""
    try:
        import cupy
    except ImportError as error:
        raise RuntimeError(
            "cupy backend: CuPy is not installed; install the extra matching your CUDA, "
            "pip install -e .[cuda13] (or .[cuda12])") from error
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA raises its own error types when no driver is present
        raise RuntimeError(f"cupy backend: CuPy is installed but no CUDA GPU is usable here "
                           f"({type(error).__name__}: {error})") from error
    if count == 0:
        raise RuntimeError("cupy backend: CuPy is installed but no CUDA GPU is visible")
    return CupyBackend(cupy)
