"""minigrad's heavy kernels on each backend against PyTorch (CPU or GPU): conv2d (depthwise too),
pooling, matmul, attention, transposed convolution, group norm, GELU, layer norm, interpolation.

Every case is one call a user makes, timed at the tensor level: leaves made with
`mg.tensor(..., requires_grad=True)`, the op through `minigrad.nn.functional` (or `@`), then
`.backward(upstream)` for the fwd+bwd rows, all inside `with mg.backend(name):`. PyTorch runs
the very same function (`torch.nn.functional`, `torch.from_numpy`). All float32:

  conv big      (N=32, C=64, 32x32) * (K=64, 3x3), padding 1, bias: forward; forward+backward
                (gradients for input, weight and bias); and forward+backward again with a
                channels-last input (an NCHW view of NHWC memory: what minigrad's kernels hand
                to the next layer inside a network, `memory_format=torch.channels_last` in
                PyTorch). The other rows get plain contiguous NCHW arrays, as a user passes them.
  conv small    (N=64, C=1, 28x28) * (K=32, 3x3), padding 0, bias: forward; forward+backward.
  conv 16ch     (N=64, C=16, 28x28) * (K=16, 3x3), padding 1, no bias, channels-last input:
                resnet20's first stage on Fashion-MNIST at batch 64: forward; forward+backward.
  conv depthwise  groups = C = K = 96, no bias (as in MobileNet and EfficientNet, where a
                batch norm follows): (N=32, 56x56) * (96, 1, 3x3), padding 1: forward;
                forward+backward; and forward+backward with a channels-last input, as inside a
                network; and (N=32, 56x56) * (96, 1, 5x5), stride 2, padding 2: forward+backward.
  max_pool2d    2x2, stride 2, on (64, 32, 26, 26): forward+backward.
  matmul        (1024 x 1024) @ (1024 x 1024): forward+backward (two more GEMMs).
  attention     multi-head self-attention at ViT-tiny size: 65 tokens of dim 192, 3 heads,
                batch 64 (F.multi_head_attention_forward, as nn.MultiheadAttention calls it,
                need_weights=False): forward+backward for the input and all four weights.
  conv_transpose2d  (32, 64, 16, 16) * (64, 32, 4, 4), stride 2, padding 1 -> (32, 32, 32, 32),
                bias: forward+backward (a decoder's 2x upsampling).
  group_norm    32 groups over (32, 256, 14, 14), weight and bias: forward+backward.
  gelu          the exact GELU of (64, 50, 256): forward+backward (the small ViT's MLP).
  layer_norm    over the last dim of (64, 50, 128), weight and bias: forward+backward.
  interpolate   bilinear 2x of (32, 64, 16, 16), align_corners=False: forward+backward.

Columns: numpy, numba, and cupy where `minigrad.backends.available()` says it runs here, plus
PyTorch when it is installed; the ratio is the best minigrad backend over PyTorch (> 1: slower).
Before timing, each case runs once per library, untimed (the JIT warmup, first-touch page faults),
and that run's output and gradients are checked against PyTorch (or the numpy backend without
it). Also printed: this machine's float32 GEMM rate (numpy sgemm, 1024^3 and 2048^3), the
GFLOP/s each conv row reaches as a share of it (2 N K C kH kW OH OW per forward, three times
that for forward+backward: a direct convolution's count, so an algorithm that multiplies less,
like the Numba backend's Winograd path for 3x3 stride-1 convolutions, can pass 100%), and
Numba's first-call cost per kernel, measured in fresh subprocesses: "cold compile" with an
empty on-disk cache (a new NUMBA_CACHE_DIR), then "cached load" from that same directory.
Steady-state times exclude both: `warmup()` and the untimed run come first.

`--device cuda` times minigrad's cupy backend alone (exit status 2 where it cannot run) against
PyTorch on the GPU (tensors moved with `.to("cuda")`, keeping their layout), with TF32 turned off
in PyTorch (cuDNN's convolutions default to it; CuPy's cuBLAS runs full float32). The Numba
probe and the numpy sgemm line give way to the GPU's name and versions and its float32 GEMM rate
(`cupy.matmul`, 4096^3, median of 10), the peak for the conv shares.

Run it from the repository root:

    .venv/bin/python benchmarks/kernels.py                 # full run, a few minutes
    .venv/bin/python benchmarks/kernels.py --quick         # smoke run, well under a minute
    .venv/bin/python benchmarks/kernels.py --only depthwise  # the cases whose name says so
    .venv/bin/python benchmarks/kernels.py --device cuda   # cupy against PyTorch CUDA

Libraries run with their default thread counts (printed at the top), in alternating blocks with
pauses between them, as in `autograd_overhead.py`, whose notes on threads apply here too; after
each pause a library runs untimed for a quarter of a second (bench_common.py says why).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from bench_common import (
    add_device_flag,
    minigrad_backends,
    print_gpu,
    print_machine,
    print_table,
    time_block,
    torch_on,
    warm_up_numba,
)

import minigrad as mg
import minigrad.nn.functional as mgF

SEED = 0
TOLERANCE = 1e-3  # max |diff| / max(1, max |reference|), over the output and every gradient
PROBE_FLAG = "--numba-first-calls"  # internal: the subprocess that times Numba's first calls


# ---------------------------------------------------------------------------- the cases
# A case makes named float32 arrays (the leaves, and "upstream", the gradient that backward
# starts from) and a forward function of (functional module, tensors) that both libraries share.

Arrays = dict[str, np.ndarray]


@dataclass
class Case:
    name: str
    make_arrays: Callable[[np.random.Generator], Arrays]
    forward: Callable[[Any, dict[str, Any]], Any]  # (F, tensors) -> the output tensor
    backward: bool  # also run out.backward(upstream)
    repeats: int  # timed calls per library in a full run, over all rounds
    flops: float = 0.0  # per call; only the conv cases report GFLOP/s


@dataclass(frozen=True)
class ConvShape:
    label: str
    n: int
    c: int
    size: int  # H = W
    k: int
    kernel: int
    padding: int
    stride: int = 1
    groups: int = 1
    bias: bool = True

    @property
    def out_size(self) -> int:
        return (self.size + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def forward_flops(self) -> float:
        return (2.0 * self.n * self.k * self.c // self.groups * self.kernel ** 2
                * self.out_size ** 2)

    def describe(self) -> str:
        geometry = f"padding {self.padding}"
        if self.stride > 1:
            geometry += f", stride {self.stride}"
        if self.groups > 1:
            geometry += f", groups {self.groups}"
        geometry += ", bias" if self.bias else ", no bias"
        return (f"conv {self.label}: input ({self.n}, {self.c}, {self.size}, {self.size}), "
                f"weight ({self.k}, {self.c // self.groups}, {self.kernel}, {self.kernel}), "
                f"{geometry} -> output ({self.n}, {self.k}, {self.out_size}, "
                f"{self.out_size}); {self.forward_flops / 1e9:.3f} GFLOP per forward")


BIG = ConvShape("big", n=32, c=64, size=32, k=64, kernel=3, padding=1)
SMALL = ConvShape("small", n=64, c=1, size=28, k=32, kernel=3, padding=0)
SIXTEEN = ConvShape("16ch", n=64, c=16, size=28, k=16, kernel=3, padding=1, bias=False)
DEPTHWISE = ConvShape("depthwise 3x3", n=32, c=96, size=56, k=96, kernel=3, padding=1, groups=96,
                      bias=False)
DEPTHWISE_5X5 = ConvShape("depthwise 5x5/2", n=32, c=96, size=56, k=96, kernel=5, padding=2,
                          stride=2, groups=96, bias=False)
# timed calls per library in a full run: PyTorch's strided depthwise backward takes seconds
REPEATS = {BIG: 20, SMALL: 40, SIXTEEN: 40, DEPTHWISE: 12, DEPTHWISE_5X5: 4}
POOL_INPUT = (64, 32, 26, 26)
MATMUL_SIZE = 1024


def channels_last(nchw: np.ndarray) -> np.ndarray:
    """The same values as an NCHW-shaped view of NHWC memory."""
    return np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def conv_case(shape: ConvShape, backward: bool, last: bool = False) -> Case:
    def make_arrays(rng: np.random.Generator) -> Arrays:
        fan_in = shape.c // shape.groups * shape.kernel ** 2
        x = rng.standard_normal((shape.n, shape.c, shape.size, shape.size), np.float32)
        upstream = rng.standard_normal((shape.n, shape.k, shape.out_size, shape.out_size),
                                       np.float32)
        layout = channels_last if last else np.ascontiguousarray
        arrays = {
            "x": layout(x),
            "weight": rng.standard_normal((shape.k, shape.c // shape.groups, shape.kernel,
                                           shape.kernel), np.float32) / np.float32(fan_in ** 0.5),
            "upstream": layout(upstream),  # a channels-last network hands back such gradients
        }
        if shape.bias:
            arrays["bias"] = rng.standard_normal(shape.k, np.float32)
        return arrays

    def forward(F: Any, t: dict[str, Any]) -> Any:
        return F.conv2d(t["x"], t["weight"], t.get("bias"), stride=shape.stride,
                        padding=shape.padding, groups=shape.groups)

    name = f"conv {shape.label} {'fwd+bwd' if backward else 'fwd'}"
    return Case(name + (", channels-last input" if last else ""), make_arrays, forward,
                backward, repeats=REPEATS[shape],
                flops=shape.forward_flops * (3 if backward else 1))


def max_pool_case() -> Case:
    n, c, h, w = POOL_INPUT

    def make_arrays(rng: np.random.Generator) -> Arrays:
        return {"x": rng.standard_normal(POOL_INPUT, np.float32),
                "upstream": rng.standard_normal((n, c, h // 2, w // 2), np.float32)}

    return Case(f"max_pool2d 2x2/2 {n}x{c}x{h}x{w} fwd+bwd", make_arrays,
                lambda F, t: F.max_pool2d(t["x"], 2, 2), backward=True, repeats=40)


def matmul_case() -> Case:
    size = MATMUL_SIZE

    def make_arrays(rng: np.random.Generator) -> Arrays:
        a, b, upstream = rng.standard_normal((3, size, size), np.float32)
        return {"a": a, "b": b, "upstream": upstream}

    return Case(f"matmul {size}^3 fwd+bwd", make_arrays, lambda F, t: t["a"] @ t["b"],
                backward=True, repeats=20)


def attention_case() -> Case:
    batch, tokens, dim, heads = 64, 65, 192, 3

    def make_arrays(rng: np.random.Generator) -> Arrays:
        scale = np.float32(dim ** -0.5)
        return {"x": rng.standard_normal((tokens, batch, dim), np.float32),
                "in_weight": rng.standard_normal((3 * dim, dim), np.float32) * scale,
                "in_bias": rng.standard_normal(3 * dim, np.float32),
                "out_weight": rng.standard_normal((dim, dim), np.float32) * scale,
                "out_bias": rng.standard_normal(dim, np.float32),
                "upstream": rng.standard_normal((tokens, batch, dim), np.float32)}

    def forward(F: Any, t: dict[str, Any]) -> Any:
        out, _ = F.multi_head_attention_forward(
            t["x"], t["x"], t["x"], dim, heads, t["in_weight"], t["in_bias"], None, None, False,
            0.0, t["out_weight"], t["out_bias"], need_weights=False)
        return out

    return Case(f"attention {batch}x{tokens}x{dim}, {heads} heads fwd+bwd", make_arrays, forward,
                backward=True, repeats=20)


def conv_transpose_case() -> Case:
    def make_arrays(rng: np.random.Generator) -> Arrays:
        return {"x": rng.standard_normal((32, 64, 16, 16), np.float32),
                "weight": rng.standard_normal((64, 32, 4, 4), np.float32) / np.float32(32),
                "bias": rng.standard_normal(32, np.float32),
                "upstream": rng.standard_normal((32, 32, 32, 32), np.float32)}

    return Case("conv_transpose2d 64->32, 16->32 fwd+bwd", make_arrays,
                lambda F, t: F.conv_transpose2d(t["x"], t["weight"], t["bias"], stride=2,
                                                padding=1), backward=True, repeats=20)


def group_norm_case() -> Case:
    shape = (32, 256, 14, 14)

    def make_arrays(rng: np.random.Generator) -> Arrays:
        return {"x": rng.standard_normal(shape, np.float32),
                "weight": rng.standard_normal(shape[1], np.float32),
                "bias": rng.standard_normal(shape[1], np.float32),
                "upstream": rng.standard_normal(shape, np.float32)}

    return Case("group_norm 32 groups, 32x256x14x14 fwd+bwd", make_arrays,
                lambda F, t: F.group_norm(t["x"], 32, t["weight"], t["bias"]), backward=True,
                repeats=30)


def gelu_case() -> Case:
    shape = (64, 50, 256)  # the small ViT's MLP activations at batch 64

    def make_arrays(rng: np.random.Generator) -> Arrays:
        return {"x": rng.standard_normal(shape, np.float32),
                "upstream": rng.standard_normal(shape, np.float32)}

    return Case("gelu 64x50x256 fwd+bwd", make_arrays, lambda F, t: F.gelu(t["x"]),
                backward=True, repeats=30)


def layer_norm_case() -> Case:
    shape = (64, 50, 128)  # the small ViT's tokens at batch 64

    def make_arrays(rng: np.random.Generator) -> Arrays:
        return {"x": rng.standard_normal(shape, np.float32),
                "weight": rng.standard_normal(shape[-1], np.float32),
                "bias": rng.standard_normal(shape[-1], np.float32),
                "upstream": rng.standard_normal(shape, np.float32)}

    return Case("layer_norm 64x50x128 fwd+bwd", make_arrays,
                lambda F, t: F.layer_norm(t["x"], shape[-1:], t["weight"], t["bias"]),
                backward=True, repeats=30)


def interpolate_case() -> Case:
    def make_arrays(rng: np.random.Generator) -> Arrays:
        return {"x": rng.standard_normal((32, 64, 16, 16), np.float32),
                "upstream": rng.standard_normal((32, 64, 32, 32), np.float32)}

    return Case("interpolate bilinear 2x, 32x64x16x16 fwd+bwd", make_arrays,
                lambda F, t: F.interpolate(t["x"], scale_factor=2, mode="bilinear",
                                           align_corners=False), backward=True, repeats=30)


def cases() -> list[Case]:
    return [
        conv_case(BIG, backward=False),
        conv_case(BIG, backward=True),
        conv_case(BIG, backward=True, last=True),
        conv_case(SMALL, backward=False),
        conv_case(SMALL, backward=True),
        conv_case(SIXTEEN, backward=False, last=True),
        conv_case(SIXTEEN, backward=True, last=True),
        conv_case(DEPTHWISE, backward=False),
        conv_case(DEPTHWISE, backward=True),
        conv_case(DEPTHWISE, backward=True, last=True),
        conv_case(DEPTHWISE_5X5, backward=True),
        max_pool_case(),
        matmul_case(),
        attention_case(),
        conv_transpose_case(),
        group_norm_case(),
        gelu_case(),
        layer_norm_case(),
        interpolate_case(),
    ]


# ---------------------------------------------------------------------------- the libraries


@dataclass
class Library:
    """What the shared case code needs from minigrad (on one backend) or from PyTorch."""

    name: str
    F: Any  # the functional module
    tensor: Callable[[np.ndarray, bool], Any]  # (array, requires_grad) -> a fresh tensor
    to_numpy: Callable[[Any], np.ndarray]
    context: Callable[[], contextlib.AbstractContextManager]  # entered to build and to time
    sync: Callable[[], None]  # waits for queued GPU work (cupy); a no-op on the CPU


def no_sync() -> None:
    pass


def gpu_array(a: np.ndarray) -> Any:
    """`a` on the GPU in its own memory layout: cupy.asarray copies an array that is neither C-
    nor F-contiguous (a channels-last view) to C order; mg.tensor then keeps the layout it gets."""
    import cupy

    if a.flags.c_contiguous or a.flags.f_contiguous:
        return cupy.asarray(a)
    axes = tuple(np.argsort(a.strides)[::-1].tolist())  # outermost in memory first
    back = tuple(np.argsort(axes).tolist())
    return cupy.asarray(np.ascontiguousarray(a.transpose(axes))).transpose(back)


def minigrad_library(backend: str) -> Library:
    sync, place = no_sync, lambda a: a
    if backend == "cupy":
        import cupy

        sync, place = cupy.cuda.Device().synchronize, gpu_array
    # mg.tensor copies its array with np.array, which keeps the memory layout (channels-last too)
    return Library(backend, mgF, lambda a, grad: mg.tensor(place(a), requires_grad=grad),
                   lambda t: np.asarray(t.numpy()), lambda: mg.backend(backend), sync)


def torch_library(torch: Any, device: str) -> Library:
    # np.array keeps the layout, from_numpy and .to(device) keep the strides: a channels-last
    # array becomes a torch.channels_last tensor, so both libraries start from the same layout.
    return Library("PyTorch", torch.nn.functional,
                   lambda a, grad: torch.from_numpy(np.array(a)).to(device).requires_grad_(grad),
                   lambda t: t.detach().cpu().numpy(), contextlib.nullcontext,
                   torch.cuda.synchronize if device == "cuda" else no_sync)


def import_torch() -> Any:
    """PyTorch, or None. Imported here, not at the top, so that the Numba first-call subprocess
    loads what a minigrad user loads and nothing more."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---------------------------------------------------------------------------- timing


def make_step(case: Case, library: Library, tensors: dict[str, Any]) -> Callable[[], Any]:
    """One call of the case: clear the leaves' gradients (as zero_grad(set_to_none=True) does),
    forward, and backward from the upstream gradient. Returns the output."""
    leaves = [t for name, t in tensors.items() if name != "upstream"]

    def step() -> Any:
        for leaf in leaves:
            leaf.grad = None
        out = case.forward(library.F, tensors)
        if case.backward:
            out.backward(tensors["upstream"])
        library.sync()
        return out

    return step


@dataclass
class Result:
    times: dict[str, list[float]]  # library -> seconds per call
    diffs: dict[str, float]  # library -> max scaled difference from the reference library


def run_case(case: Case, libraries: list[Library], rounds: int, repeats: int, pause: float,
             warmup: int) -> Result:
    """Build each library's tensors, run each once untimed (checking the results), then time
    alternating blocks: lib 1, pause, lib 2, pause, ... for `rounds` rounds."""
    arrays = case.make_arrays(np.random.default_rng(SEED))
    steps, outputs = {}, {}
    for library in libraries:
        with library.context():
            tensors = {name: library.tensor(a, name != "upstream") for name, a in arrays.items()}
            step = make_step(case, library, tensors)
            out = step()  # untimed: JIT compilation, first-touch page faults, and the check
            grads = [t.grad for name, t in tensors.items() if name != "upstream"]
            outputs[library.name] = [library.to_numpy(a)
                                     for a in [out, *(grads if case.backward else [])]]
            steps[library.name] = step
    reference = outputs[libraries[-1].name]  # PyTorch when installed, else the last backend
    diffs = {name: max(scaled_diff(a, b) for a, b in zip(arrays_, reference))
             for name, arrays_ in outputs.items()}
    del outputs, reference

    per_block = -(-repeats // rounds)  # rounded up
    times: dict[str, list[float]] = {library.name: [] for library in libraries}
    for _ in range(rounds):
        for library in libraries:
            time.sleep(pause)  # lets the other library's idle BLAS/OpenMP threads go to sleep
            with library.context():
                times[library.name] += time_block(steps[library.name], per_block, warmup)
    return Result(times, diffs)


def scaled_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def sgemm_gflops(size: int, repeats: int, warmup: int) -> float:
    """The median float32 GEMM rate of numpy (its BLAS) for size^3, into a preallocated out."""
    a, b = np.random.default_rng(SEED).standard_normal((2, size, size), np.float32)
    out = np.empty_like(a)
    times = time_block(lambda: np.matmul(a, b, out=out), repeats, warmup)
    return 2.0 * size ** 3 / statistics.median(times) / 1e9


def cupy_sgemm_gflops(size: int, repeats: int, warmup: int) -> float:
    """The same on the GPU: cupy.matmul (cuBLAS), synchronised after each call."""
    import cupy

    a, b = cupy.asarray(np.random.default_rng(SEED).standard_normal((2, size, size), np.float32))
    out = cupy.empty_like(a)
    sync = cupy.cuda.Device().synchronize

    def call() -> None:
        cupy.matmul(a, b, out=out)
        sync()

    return 2.0 * size ** 3 / statistics.median(time_block(call, repeats, warmup)) / 1e9


# ---------------------------------------------------------------------------- Numba first calls


def numba_first_calls() -> dict[str, float]:
    """Seconds for importing the Numba backend and for the first call of each of its kernels
    (float32, as `warmup()` runs them). Meant for a fresh process: see `time_numba_first_calls`.
    A stride-1 3x3 convolution with 8 channels takes the Winograd path, a stride-2 one im2col
    (NumPy's: only its input gradient compiles a kernel, col2im), one with groups = 8 and a
    (8, 1, 3, 3) weight the depthwise loops."""
    timings: dict[str, float] = {}

    def first(label: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = call()
        timings[label] = time.perf_counter() - start
        return result

    backend = first("import numba + minigrad's numba backend", lambda: mg.backends.load("numba"))
    x = np.ones((2, 8, 4, 4), np.float32)
    w = np.ones((8, 8, 3, 3), np.float32)
    one, two, zero = (1, 1), (2, 2), (0, 0)
    rows = first("_transpose_images (NCHW to channels-last)", lambda: backend.channels_last(x))
    first("_relu, _relu_backward", lambda: backend.relu_backward(rows, backend.relu(rows)))
    out = first("_input_spectra, _output_blocks (Winograd: 3x3 stride-1 forward)",
                lambda: backend.conv2d_forward(x, w, one, one, one, 1))
    first("its input gradient (the same kernels)",
          lambda: backend.conv2d_backward_input(out, w, x.shape, one, one, one, 1))
    first("_output_grad_spectra (its weight gradient)",
          lambda: backend.conv2d_backward_weight(out, x, w.shape, one, one, one, 1))
    out = backend.conv2d_forward(x, w, two, one, one, 1)
    first("_col2im (stride-2 input gradient)",
          lambda: backend.conv2d_backward_input(out, w, x.shape, two, one, one, 1))
    depthwise = (w[:, :1], one, one, one, 8)
    out = first("_forward_rows (depthwise forward)", lambda: backend.conv2d_forward(x, *depthwise))
    first("_backward_rows (depthwise, both gradients)",
          lambda: backend.conv2d_backward(out, x, *depthwise))
    pooled, argmax = first("_maxpool_forward", lambda: backend.maxpool2d_forward(x, two, two, zero))
    first("_maxpool_backward",
          lambda: backend.maxpool2d_backward(pooled, argmax, x.shape, two, two, zero))
    pooled = first("_avgpool_forward", lambda: backend.avgpool2d_forward(x, two, two, zero))
    first("_avgpool_backward", lambda: backend.avgpool2d_backward(pooled, x.shape, two, two, zero))
    mean, var = first("_batch_norm_sums", lambda: backend.batch_norm_stats(rows))
    normed = first("_batch_norm_apply",
                   lambda: backend.batch_norm_forward(rows, None, None, mean, var, 1e-5))
    first("_batch_norm_grad_sums, _batch_norm_grad_input", lambda: backend.batch_norm_backward(
        normed, rows, None, mean, var, 1e-5, True, (True, False, False)))
    first("erf (a compiled ufunc)", lambda: backend.erf(x))
    first("the native part functions (cfuncs, on their first large call)",
          lambda: [part.compile() for part in mg.backends.numba_backend.native_parts()])
    return timings


def time_numba_first_calls() -> dict[str, dict[str, float]] | str:
    """`numba_first_calls` in two fresh subprocesses sharing a new, empty NUMBA_CACHE_DIR: the
    first compiles every kernel ("cold compile"), the second loads them ("cached load").
    Returns {"cold compile": timings, "cached load": timings}, or why it could not."""
    runs = {}
    with tempfile.TemporaryDirectory(prefix="minigrad-numba-cache-") as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        for label in ("cold compile", "cached load"):
            done = subprocess.run([sys.executable, os.path.abspath(__file__), PROBE_FLAG],
                                  env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                return f"{label} subprocess failed ({done.returncode}): {done.stderr[-2000:]}"
            runs[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return runs


# ---------------------------------------------------------------------------- printing


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def print_times(results: dict[str, Result], names: list[str], backends: list[str]) -> None:
    has_torch = "PyTorch" in names
    header = ["case", *(f"{n} (ms)" for n in names)]
    if has_torch:
        header.append("best/PyTorch")
    rows = []
    for case, result in results.items():
        medians = {n: statistics.median(result.times[n]) for n in names}
        row = [case, *(ms(medians[n]) for n in names)]
        if has_torch:
            best = min(backends, key=medians.__getitem__)
            row.append(f"{medians[best] / medians['PyTorch']:.2f} ({best})")
        rows.append(row)
    print_table(header, rows)
    for case, result in results.items():
        spread = ", ".join(
            f"{n} n={len(t)} IQR {ms(np.quantile(t, 0.25))}-{ms(np.quantile(t, 0.75))}"
            for n, t in result.times.items())
        print(f"  {case}: {spread} ms")


def print_checks(results: dict[str, Result], names: list[str]) -> bool:
    reference = names[-1]
    ok = all(d <= TOLERANCE for r in results.values() for d in r.diffs.values())
    print(f"Agreement with {reference} (max |diff| / max(1, max |{reference}|) over the output "
          f"and every gradient; tolerance {TOLERANCE:g}): {'OK' if ok else 'MISMATCH'}")
    rows = [[case, *(f"{r.diffs[n]:.1e}" for n in names[:-1])] for case, r in results.items()]
    print_table(["case", *names[:-1]], rows)
    return ok


def print_conv_rates(results: dict[str, Result], case_list: list[Case], names: list[str],
                     peak: float) -> None:
    print(f"Conv GFLOP/s (median time; a direct convolution's multiply-adds, which Winograd "
          f"needs fewer of) and share of the sgemm peak ({peak:.1f} GFLOP/s):")
    rows = []
    for case in case_list:
        if case.flops:
            rates = {n: case.flops / statistics.median(results[case.name].times[n]) / 1e9
                     for n in names}
            rows.append([case.name, *(f"{rates[n]:.1f} ({rates[n] / peak:.0%})" for n in names)])
    print_table(["case", *names], rows)


def print_first_calls(runs: dict[str, dict[str, float]] | str) -> None:
    print("Numba first calls, each in a fresh process (s): cold compile = empty NUMBA_CACHE_DIR, "
          "cached load = the cache the cold run wrote")
    if isinstance(runs, str):
        print(f"  not measured: {runs}")
        return
    cold, cached = runs["cold compile"], runs["cached load"]
    rows = [[label, f"{cold[label]:.3f}", f"{cached.get(label, float('nan')):.3f}"]
            for label in cold]
    rows.append(["total", f"{sum(cold.values()):.3f}", f"{sum(cached.values()):.3f}"])
    print_table(["step", "cold compile", "cached load"], rows)


def print_environment(status: dict[str, str], backends: list[str], warmup_s: float) -> None:
    print_machine()
    for name, state in status.items():
        print(f"  backend {name}: {state}")
    if "numba" in backends:
        import numba

        print(f"numba {numba.__version__} (serial kernels); in-process warmup() took "
              f"{warmup_s:.3f} s (default cache)")


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a fast smoke run: few repeats, short pauses")
    add_device_flag(parser)
    parser.add_argument("--only", metavar="TEXT",
                        help="time only the cases whose name contains TEXT, e.g. depthwise")
    parser.add_argument(PROBE_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.numba_first_calls:  # the subprocess of time_numba_first_calls
        print(json.dumps(numba_first_calls()))
        return 0
    rounds, pause, warmup = (2, 0.1, 1) if args.quick else (4, 1.0, 1)

    cuda = args.device == "cuda"
    backends, status = minigrad_backends(args.device)  # cuda: cupy alone (numba is not timed)
    warmup_s = warm_up_numba(backends)
    installed = import_torch()  # before print_machine, which lists the thread pools it loads
    print_environment(status, backends, warmup_s)
    torch = torch_on(installed, args.device)  # None where it cannot run on the device
    if cuda:
        print_gpu()
    libraries = [minigrad_library(name) for name in backends]
    if torch is not None:
        libraries.append(torch_library(torch, args.device))
    names = [library.name for library in libraries]
    print()

    if "numba" in backends:
        print_first_calls(time_numba_first_calls())
        print()

    time.sleep(pause)
    if cuda:
        size, repeats = 4096, 10
        peak = cupy_sgemm_gflops(size, repeats, warmup=2)
        print(f"GPU float32 GEMM (cupy.matmul {size}^3 into a preallocated out, median of "
              f"{repeats}): {peak:.1f} GFLOP/s; peak for the shares below")
    else:
        sizes = {1024: 3 if args.quick else 10, 2048: 2 if args.quick else 5}
        rates = {size: sgemm_gflops(size, repeats, warmup=1) for size, repeats in sizes.items()}
        peak = max(rates.values())
        print("numpy float32 GEMM (median): "
              + ", ".join(f"{size}^3 {rate:.1f} GFLOP/s" for size, rate in rates.items())
              + f"; peak for the shares below: {peak:.1f} GFLOP/s")
    for shape in REPEATS:
        print(shape.describe())
    print()

    case_list = [case for case in cases() if args.only is None or args.only in case.name]
    results = {}
    for case in case_list:
        repeats = 2 if args.quick else case.repeats
        results[case.name] = run_case(case, libraries, rounds, repeats, pause, warmup)
    ok = print_checks(results, names) if len(names) > 1 else True
    print()
    print(f"Medians over {rounds} alternating rounds per library "
          f"({'quick smoke run' if args.quick else 'full run'}):")
    print_times(results, names, backends)
    print()
    print_conv_rates(results, case_list, names, peak)
    if torch is None:
        why = "is not installed" if installed is None else "cannot use CUDA here"
        print(f"Note: PyTorch {why}, so only minigrad's backends were timed.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
