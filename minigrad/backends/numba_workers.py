"""The Numba backend's threads: the calling thread and one worker per further core take the
parts of a kernel call one at a time, each running BLAS on a single thread.

The compiled kernels are `nogil` and NumPy's copies and BLAS release the GIL too, so plain
Python threads run in parallel. Serial kernels on worker threads beat Numba's `parallel=True`
here (docs/performance.md has the measurements): cached parallel kernels ran slower than fresh
ones, and OpenBLAS's own threads, handing off inside every GEMM, took the cores from the
workers, so every GEMM runs on one BLAS thread while the workers run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController


class Workers:
    """`count` threads (the caller included) for the parts of one kernel call, and per-thread
    scratch buffers for what lives only inside such a part."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool = ThreadPoolExecutor(count - 1, "minigrad-numba") if count > 1 else None
        self._blas = ThreadpoolController().select(user_api="blas").lib_controllers
        self._buffers: OrderedDict[tuple, Any] = OrderedDict()
        self._buffers_lock = threading.Lock()

    def in_parts(self, work: Callable[[Any], Any], parts: list) -> list:
        """[work(part) for part in parts] on the calling thread and the workers at once, each
        taking the next part nobody has taken yet, so a worker that wakes late takes fewer
        parts instead of finishing last. Results come back in the order of `parts`; a
        worker's error is raised once every part has stopped (they share the outputs)."""
        if self._pool is None or len(parts) < 2:
            return [work(part) for part in parts]
        results = [None] * len(parts)
        untaken = iter(range(len(parts)))
        lock = threading.Lock()

        def take_parts() -> None:
            while True:
                with lock:
                    index = next(untaken, None)
                if index is None:
                    return
                results[index] = work(parts[index])

        with self.one_blas_thread():
            others = [self._pool.submit(take_parts)
                      for _ in range(min(self.count, len(parts)) - 1)]
            try:
                take_parts()
            finally:
                wait(others)
            for future in others:
                future.result()
        return results

    @contextlib.contextmanager
    def one_blas_thread(self) -> Iterator[None]:
        """OpenBLAS on one thread inside the block: for the workers' GEMMs, and for the small
        products between kernel calls, after which OpenBLAS's idle threads would spin and take
        the cores from the workers. Set directly (threadpoolctl's `limit` costs several times
        more, and this runs about a hundred times a step)."""
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

    def scratch(self, shape: tuple, dtype: Any) -> np.ndarray:
        """A reusable buffer for an array that lives only inside one part (im2col columns,
        Winograd's tiles): a fresh one of 10-100 MB page-faults on every first touch. The few
        most recent shapes are kept, per thread, so two threads never share one."""
        key = (threading.get_ident(), tuple(shape), np.dtype(dtype))
        with self._buffers_lock:
            buffer = self._buffers.pop(key, None)
            if buffer is None:
                buffer = np.empty(shape, dtype)
                while len(self._buffers) >= 32:
                    self._buffers.popitem(last=False)
            self._buffers[key] = buffer
        return buffer


def worker_count() -> int:
    """MINIGRAD_NUM_THREADS, else the CPUs this process may run on."""
    setting = os.environ.get("MINIGRAD_NUM_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"numba backend: MINIGRAD_NUM_THREADS must be a positive integer, "
                             f"got {setting!r}")
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
