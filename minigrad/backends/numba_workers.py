"""The Numba backend's threads: the calling thread and one worker per further core take the
parts of a kernel call one at a time, each running BLAS on a single thread.

The compiled kernels are `nogil` and NumPy's copies and BLAS release the GIL too, so plain
Python threads run in parallel. Serial kernels on worker threads beat Numba's `parallel=True`
here (docs/performance.md has the measurements): cached parallel kernels ran slower than fresh
ones, and OpenBLAS's own threads, handing off inside every GEMM, took the cores from the
workers, so every GEMM runs on one BLAS thread while the workers run.

Hand-offs spin before they sleep. A thread blocked on a lock or an event lets its CPU halt, and
on a virtual machine waking a halted CPU takes 50-100 us, twice per kernel call (the worker's
start, the caller's return): a ResNet-20 step makes about 45 such calls. So a worker waits for
its next part, and the caller for the workers, by reading a flag in compiled code that holds no
GIL, for SPIN_SECONDS, yielding the CPU now and then to any other thread that wants it, and
only then sleeps on an event, which the other side sets when it sees the sleeper's flag.

A part handed over as Python still needs the GIL on the worker, and waiting for the GIL blocks
(about 30 us a call). So short passes (ReLU, batch norm, the float32 activations) go as
native jobs: a compiled part function (a `cfunc`, see `PART`) and its arguments as int64s,
array addresses among them, which a worker runs from inside its compiled spin loop, never
leaving it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable
from threadpoolctl import ThreadpoolController

# The flags: one row of a cache line's int64s per thread, so that the spinning reads of one
# thread never share a line with another's writes. GO counts the calls handed to that worker,
# DONE the calls it has finished; ASLEEP and WAITING say that the worker, or the caller waiting
# for it, sleeps on its event.
_ROW = 8
_GO, _DONE, _ASLEEP, _WAITING = range(4)

# A native job, in one int64 array shared with the workers: the part function's address (0 for
# a Python part), the number of parts, the next part nobody has taken (on a cache line of its
# own: every thread adds to it) and the part function's arguments.
_FUNCTION, _PARTS, _NEXT, _ARGUMENTS = 0, 1, _ROW, 2 * _ROW
_MAX_ARGUMENTS = 4 * _ROW

# The signature of a native part function: (its arguments, the part, the number of parts).
PART = types.void(types.CPointer(types.int64), types.int64, types.int64)


@intrinsic
def _atomic_load(typingctx, flags, index):
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(builder.gep(array.data, [args[1]]), "seq_cst", 8)
    return types.int64(flags, types.intp), codegen


@intrinsic
def _atomic_store(typingctx, flags, index, value):
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        builder.store_atomic(args[2], builder.gep(array.data, [args[1]]), "seq_cst", 8)
        return context.get_dummy_value()
    return types.void(flags, types.intp, types.int64), codegen


# The CPU's spin-wait hint (x86's pause, Arm's yield), an LLVM intrinsic: it keeps a spinning
# thread from taking issue slots from a hyperthread sibling and from ordering its loads
# speculatively.
_SPIN_HINT = {"x86_64": ("llvm.x86.sse2.pause", ()), "amd64": ("llvm.x86.sse2.pause", ()),
              "aarch64": ("llvm.aarch64.hint", (1,)), "arm64": ("llvm.aarch64.hint", (1,))
              }.get(platform.machine().lower())


@intrinsic
def _spin_hint(typingctx):
    def codegen(context, builder, signature, args):
        if _SPIN_HINT:
            name, operands = _SPIN_HINT
            hint = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(32)] * len(operands)),
                name)
            builder.call(hint, [ir.Constant(ir.IntType(32), value) for value in operands])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def _fetch_add(typingctx, flags, index, value):
    """flags[index] += value, atomically; the value before."""
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", builder.gep(array.data, [args[1]]), args[2], "seq_cst")
    return types.int64(flags, types.intp, types.int64), codegen


@intrinsic
def _call_part(typingctx, address, job, part, parts):
    """The part function at `address` called with job's arguments."""
    def codegen(context, builder, signature, args):
        int64 = ir.IntType(64)
        function = builder.inttoptr(args[0], ir.FunctionType(
            ir.VoidType(), [int64.as_pointer(), int64, int64]).as_pointer())
        array = context.make_array(signature.args[1])(context, builder, args[1])
        builder.call(function, [builder.gep(array.data, [ir.Constant(int64, _ARGUMENTS)]),
                                args[2], args[3]])
        return context.get_dummy_value()
    return types.void(address, job, part, parts), codegen


@intrinsic
def _pointer(typingctx, address, dtype):
    pointer = types.CPointer(dtype.dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))
    return pointer(address, dtype), codegen


@register_jitable
def array_at(address, shape, dtype):
    """Inside a part function: the C-contiguous array of `shape` and `dtype` (a NumPy scalar
    type) at `address`."""
    return carray(_pointer(address, dtype), shape)


@njit(cache=True, nogil=True)
def _take_parts(job):
    """Runs the job's parts nobody has taken yet, one at a time."""
    parts = job[_PARTS]
    while True:
        part = _fetch_add(job, _NEXT, 1)
        if part >= parts:
            return
        _call_part(job[_FUNCTION], job, part, parts)


# What a worker's compiled loop hands back to Python.
_SLEEP, _RUN_PYTHON, _WAKE_CALLER = range(3)


@njit(cache=True, nogil=True)
def _serve_native(flags, row, finished, spins, job):
    """A worker's wait for its next call, running native jobs as they come without leaving
    compiled code: (the calls finished, what Python should do next)."""
    while _spin_while(flags, row + _GO, finished, spins):
        if _atomic_load(job, _FUNCTION) == 0:
            return finished, _RUN_PYTHON
        _take_parts(job)
        finished += 1
        _atomic_store(flags, row + _DONE, finished)
        if _atomic_load(flags, row + _WAITING):
            return finished, _WAKE_CALLER
    return finished, _SLEEP


@njit(cache=True, nogil=True)
def _load(flags, index):
    return _atomic_load(flags, index)


@njit(cache=True, nogil=True)
def _store(flags, index, value):
    _atomic_store(flags, index, value)


# sched_yield(2) every YIELD_EVERY turns of a spin: free, unless another thread waits for this
# CPU (another process, when the cores are shared), which then runs instead of the spinner.
_YIELD_EVERY = 64
_HAS_SCHED_YIELD = os.name == "posix"


@intrinsic
def _sched_yield(typingctx):
    def codegen(context, builder, signature, args):
        if _HAS_SCHED_YIELD:
            builder.call(cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield"), [])
        return context.get_dummy_value()
    return types.void(), codegen


@njit(cache=True, nogil=True)
def _spin_while(flags, index, value, spins):
    """Reads flags[index] up to `spins` times while it equals `value`; True once it differs."""
    for turn in range(spins):
        if _atomic_load(flags, index) != value:
            return True
        if turn % _YIELD_EVERY == _YIELD_EVERY - 1:
            _sched_yield()
        else:
            _spin_hint()
    return False


class NativePart:
    """A part function for `in_native_parts` (decorate it): a `cfunc` of signature PART,
    compiled, or loaded from Numba's on-disk cache, on its first use (Numba compiles a plain
    cfunc where it is defined, which would slow down every import of the backend)."""

    def __init__(self, function: Callable) -> None:
        self.__wrapped__ = function
        self._compiled: Any = None
        self._lock = threading.Lock()

    def compile(self) -> Any:
        with self._lock:
            if self._compiled is None:
                self._compiled = cfunc(PART, cache=True)(self.__wrapped__)
        return self._compiled

    @property
    def address(self) -> int:
        return (self._compiled or self.compile()).address


class Workers:
    """`count` threads (the caller included) for the parts of one kernel call, and per-thread
    scratch buffers for what lives only inside such a part."""

    # How long a worker spins for its next part, and the caller for the workers, before
    # sleeping: most kernel calls of a training step come less than that apart. (With 2 ms,
    # two test processes sharing two cores ran the suite 45% slower; with 0.5 ms and the
    # spinners yielding, as fast as with blocking threads.)
    SPIN_SECONDS = 0.0005

    def __init__(self, count: int) -> None:
        self.count = count
        self._blas = ThreadpoolController().select(user_api="blas").lib_controllers
        self._buffers: OrderedDict[tuple, Any] = OrderedDict()
        self._buffers_lock = threading.Lock()
        self._flags = np.zeros(count * _ROW, np.int64)
        # Per worker, the event it sleeps on and the one its caller sleeps on (one event for
        # both would let the caller's clear() swallow the worker's wake-up).
        self._worker_wakes = [threading.Event() for _ in range(count)]
        self._caller_wakes = [threading.Event() for _ in range(count)]
        self._calling = threading.Lock()  # one call at a time has the workers
        self._task: Callable[[], None] | None = None
        self._job = np.zeros(_ARGUMENTS + _MAX_ARGUMENTS, np.int64)
        self._errors: list[BaseException] = []
        self._pid: int | None = None  # the process that started the workers (not a fork)
        self._spins = 1

    def in_parts(self, work: Callable[[Any], Any], parts: list) -> list:
        """[work(part) for part in parts] on the calling thread and the workers at once, each
        taking the next part nobody has taken yet, so a worker that wakes late takes fewer
        parts instead of finishing last. Results come back in the order of `parts`; a
        worker's error is raised once every part has stopped (they share the outputs). A call
        made while another has the workers (from a part, or another thread) runs its parts on
        its own thread."""
        if self.count < 2 or len(parts) < 2 or not self._calling.acquire(blocking=False):
            return [work(part) for part in parts]
        try:
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
                self._task = take_parts
                self._job[_FUNCTION] = 0
                self._run(take_parts, len(parts))
            return results
        finally:
            self._calling.release()

    def in_native_parts(self, function: Any, parts: int, *arguments: int) -> None:
        """function(arguments, part, parts) for part in 0..parts-1, a compiled part function
        (a NativePart, or a `cfunc` of signature PART) with int64 arguments (array addresses
        from `address`), on the calling thread and the workers at once. The workers run it
        from their compiled loop without taking the GIL. A part function cannot raise: it gets
        checked input."""
        if len(arguments) > _MAX_ARGUMENTS:
            raise ValueError(f"in_native_parts: at most {_MAX_ARGUMENTS} arguments, "
                             f"got {len(arguments)}")
        shared = self.count >= 2 and parts >= 2 and self._calling.acquire(blocking=False)
        job = self._job if shared else np.zeros(_ARGUMENTS + len(arguments), np.int64)
        try:
            job[_FUNCTION], job[_PARTS], job[_NEXT] = function.address, parts, 0
            job[_ARGUMENTS:_ARGUMENTS + len(arguments)] = arguments
            if shared:
                self._run(lambda: _take_parts(job), parts)
            else:
                _take_parts(job)
        finally:
            if shared:
                self._calling.release()

    def _run(self, take_parts: Callable[[], None], parts: int) -> None:
        """Hands the call prepared in _task or _job to the workers, takes parts itself, and
        waits for every worker to finish; then raises a worker's error, if any."""
        if self._pid != os.getpid():
            self._start()
        helpers = range(1, min(self.count, parts))
        for worker in helpers:
            row = worker * _ROW
            self._signal(row + _GO, _load(self._flags, row + _GO) + 1, row + _ASLEEP,
                         self._worker_wakes[worker])
        try:
            take_parts()
        finally:
            for worker in helpers:
                row = worker * _ROW
                handed = _load(self._flags, row + _GO)
                while (done := _load(self._flags, row + _DONE)) != handed:
                    self._wait_while(row + _DONE, done, row + _WAITING,
                                     self._caller_wakes[worker])
            # taken even when the caller's own part raised, so no error of this call is left
            # for the next
            self._task, (errors, self._errors) = None, (self._errors, [])
        if errors:
            raise errors[0]

    def _start(self) -> None:
        """The worker threads, on the first call in this process (a forked child has none),
        and the spin count that takes about SPIN_SECONDS here."""
        self._pid = os.getpid()
        self._flags[:] = 0
        trial = 100_000
        _spin_while(self._flags, 0, 0, 1)  # compiled (or loaded from the cache) first
        start = time.perf_counter()
        _spin_while(self._flags, 0, 0, trial)
        self._spins = max(1, int(trial * self.SPIN_SECONDS / (time.perf_counter() - start)))
        for worker in range(1, self.count):
            threading.Thread(target=self._serve, args=(worker,), daemon=True,
                             name=f"minigrad-numba-{worker}").start()

    def _serve(self, worker: int) -> None:
        row = worker * _ROW
        finished = 0
        while True:
            finished, next_step = _serve_native(self._flags, row, finished, self._spins,
                                                self._job)
            if next_step == _WAKE_CALLER:
                self._caller_wakes[worker].set()
            elif next_step == _RUN_PYTHON:
                try:
                    self._task()
                except BaseException as error:  # noqa: BLE001 - raised by the caller
                    self._errors.append(error)
                finished += 1
                self._signal(row + _DONE, finished, row + _WAITING, self._caller_wakes[worker])
            else:
                self._sleep_while(row + _GO, finished, row + _ASLEEP, self._worker_wakes[worker])

    def _wait_while(self, index: int, value: int, asleep: int, event: threading.Event) -> None:
        """Until flags[index] differs from `value`: spin, then sleep on `event`, having said so
        in flags[asleep]."""
        while not _spin_while(self._flags, index, value, self._spins):
            self._sleep_while(index, value, asleep, event)

    def _sleep_while(self, index: int, value: int, asleep: int, event: threading.Event) -> None:
        """Sleeps on `event` if flags[index] still equals `value`, having said so in
        flags[asleep]."""
        event.clear()
        _store(self._flags, asleep, 1)
        if _load(self._flags, index) == value:  # after the flag: a signal cannot slip between
            event.wait()
        _store(self._flags, asleep, 0)

    def _signal(self, index: int, value: int, asleep: int, event: threading.Event) -> None:
        """flags[index] = value, and a wake-up if the other side sleeps."""
        _store(self._flags, index, value)
        if _load(self._flags, asleep):
            event.set()

    @contextlib.contextmanager
    def one_blas_thread(self) -> Iterator[None]:
        """OpenBLAS on one thread inside the block: for the workers' GEMMs, and for the small
        products between kernel calls, after which OpenBLAS's idle threads would spin and take
        the cores from the workers. Set directly (threadpoolctl's `limit` costs several times
        more, and this runs about a hundred times a step)."""
        if self.count < 2:
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


def address(array: np.ndarray) -> int:
    """Where a C-contiguous array's first element lies, for a native part's arguments."""
    if not array.flags.c_contiguous:
        raise ValueError(f"native part: arrays must be C-contiguous, got strides "
                         f"{array.strides} for shape {array.shape}")
    return array.__array_interface__["data"][0]


def worker_count() -> int:
    """MINIGRAD_NUM_THREADS, else the CPUs this process may run on."""
    setting = os.environ.get("MINIGRAD_NUM_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"numba backend: MINIGRAD_NUM_THREADS must be a positive integer, "
                             f"got {setting!r}")
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
