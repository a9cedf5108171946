"""What every benchmark here shares: timing blocks, table printing, and the machine description.

Timings are medians of alternating blocks (library A, pause, library B, pause, ...) in one
process: the machine is shared and noisy, and alternating spreads passing load over both; the
pause lets one library's idle BLAS/OpenMP threads stop spinning before the other runs.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import minigrad as mg

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "NUMBA_NUM_THREADS")


def time_block(fn: Callable[[], Any], calls: int, warmup: int) -> list[float]:
    """Seconds per call of `fn` after `warmup` untimed calls; the garbage collector is off
    while timing (as in timeit), so a collection does not land inside one library's block."""
    for _ in range(warmup):
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
