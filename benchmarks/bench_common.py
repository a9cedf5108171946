"""What every benchmark here shares: timing blocks, table printing, the machine description, and
the --device flag (cpu: minigrad's backends and PyTorch CPU; cuda: the cupy backend, PyTorch CUDA).

Timings are medians of alternating blocks (library A, pause, library B, pause, ...) in one
process: the machine is shared and noisy, and alternating spreads passing load over both; the
pause lets one library's idle BLAS/OpenMP threads stop spinning before the other runs.
After the pause each library runs untimed for WARM_S seconds before its timed calls: on this
VM a worker thread woken after a pause starts late for a while (the idle vCPU is slow to wake:
a Numba max-pool step took 2.6 ms for the first ~80 ms of calls after a 0.5 s pause and 1.5 ms
afterwards, against a steady 2.5 ms on one thread). A training loop never pauses, so both
libraries are timed warm, in steady state.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import minigrad as mg

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "NUMBA_NUM_THREADS")
DEVICES = ("cpu", "cuda")
WARM_S = 0.25


def time_block(fn: Callable[[], Any], calls: int, warmup: int,
               warm_s: float = WARM_S) -> list[float]:
    """Seconds per call of `fn` after `warmup` untimed calls, then more until `warm_s` seconds
    have passed; the garbage collector is off while timing (as in timeit), so a collection does
    not land inside one library's block."""
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
    while time.perf_counter() - start < warm_s:
        fn()
    gc.collect()
    gc.disable()
    try:
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times


def warm_up_numba(backends: Sequence[str]) -> float:
    """Compile (or load from the cache) Numba's kernels before anything is timed; seconds."""
    if "numba" not in backends:
        return 0.0
    start = time.perf_counter()
    mg.backends.load("numba").warmup()
    return time.perf_counter() - start


def quantile(values: list[float], q: float) -> float:
    return float(np.quantile(values, q))


def print_table(header: Sequence[str], rows: list[Sequence[str]]) -> None:
    """First column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for first, *cells in rows:
        print(" | ".join([first.ljust(widths[0])]
                         + [c.rjust(w) for c, w in zip(cells, widths[1:])]))


def blas_name() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # the layout of show_config is not a stable API
        return "unknown"


def print_torch(torch: Any) -> None:
    """PyTorch's version and threads, or that it is missing (minigrad is then timed alone)."""
    if torch is None:
        print("torch: not installed -- timing minigrad alone (pip install -e '.[oracle]')")
        return
    print(f"torch {torch.__version__}: {torch.get_num_threads()} intra-op threads, "
          f"{torch.get_num_interop_threads()} inter-op threads (defaults)")


def add_device_flag(parser: Any) -> None:
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="cpu (default): each minigrad backend that runs here against "
                             "PyTorch CPU; cuda: minigrad's cupy backend against PyTorch on the "
                             "GPU")


def minigrad_backends(device: str) -> tuple[list[str], dict[str, str]]:
    """The minigrad backends to time on `device`, and every backend's status. cpu: each one that
    runs here; cuda: cupy alone, and where it cannot run, a one-line error and exit status 2."""
    status = mg.backends.available()
    if device == "cpu":
        return [name for name in mg.backends.NAMES if status[name] == "ok"], status
    if status["cupy"] != "ok":
        print("--device cuda: minigrad's cupy backend cannot run here: "
              + " ".join(status["cupy"].split()), file=sys.stderr)
        raise SystemExit(2)
    return ["cupy"], status


def torch_on(torch: Any, device: str) -> Any:
    """Prints PyTorch's version and settings; returns `torch`, or None where it is missing or
    has no CUDA under --device cuda (minigrad is then timed alone). On cuda it turns TF32 off
    first: cuDNN's convolutions use it by default, CuPy's cuBLAS runs full float32, and TF32 would
    skew both the 1e-3 agreement checks and the timings. cudnn.benchmark is left as it is."""
    if torch is None or device == "cpu":
        print_torch(torch)
        return torch
    if not torch.cuda.is_available():
        print(f"torch {torch.__version__} (CUDA build: {torch.version.cuda}): "
              "torch.cuda.is_available() is False -- timing minigrad alone")
        return None
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    cudnn.allow_tf32 = False
    matmul.allow_tf32 = False
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {cudnn.version()}) on "
          f"{torch.cuda.get_device_name()}")
    print(f"  TF32 turned off: torch.backends.cudnn.allow_tf32 = {cudnn.allow_tf32}, "
          f"torch.backends.cuda.matmul.allow_tf32 = {matmul.allow_tf32}; "
          f"torch.backends.cudnn.benchmark = {cudnn.benchmark} (left as it is)")
    return torch


def print_gpu() -> None:
    """The GPU, CuPy's version and CUDA's (runtime and driver), and CUPY_TF32 (unset: cuBLAS
    runs full float32)."""
    import cupy

    def version(v: int) -> str:
        return f"{v // 1000}.{v % 1000 // 10}"

    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(0)
    print(f"GPU 0: {props['name'].decode()}, {props['totalGlobalMem'] / 2**30:.0f} GiB; "
          f"cupy {cupy.__version__}, CUDA runtime {version(runtime.runtimeGetVersion())}, "
          f"driver {version(runtime.driverGetVersion())}; "
          f"CUPY_TF32={os.environ.get('CUPY_TF32', 'unset')}")


def print_machine() -> None:
    """Python, NumPy's BLAS, thread variables and the malloc setting: what the numbers depend on."""
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} logical CPUs")
    print(f"numpy {np.__version__} (BLAS: {blas_name()}), minigrad {mg.__version__}")
    env = {k: os.environ[k] for k in THREAD_ENV_VARS if k in os.environ}
    print(f"thread environment variables: {env or 'none set'}")
    tuned = os.environ.get("MINIGRAD_MALLOC_TUNING", "1") != "0"
    print("malloc: " + ("freed memory kept in glibc's heap (minigrad's keep_freed_memory; it "
                        "applies to PyTorch too, same process)" if tuned else "glibc defaults"))
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            print(f"threadpoolctl: {pool['user_api']}/{pool['internal_api']} "
                  f"{pool['num_threads']} threads ({os.path.basename(pool['filepath'])})")
