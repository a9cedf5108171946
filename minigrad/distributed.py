"""Many processes, one training run: MPI collectives with torch.distributed's names.

minigrad builds no transport of its own: it uses MPI (through mpi4py, the `dist` extra), the
engine clusters already run. Start N copies of a script with `mpiexec -n N python script.py`
(on one machine, or many with a hostfile); in each, `init_process_group()` joins MPI's world
and the collectives below act on tensors in place:

    import minigrad.distributed as dist
    dist.init_process_group()
    t = mg.tensor([dist.get_rank() + 1.0])
    dist.all_reduce(t, op=dist.ReduceOp.SUM)       # 1 + 2 + ... + N on every rank

Tensors on a GPU (the cupy backend) are staged through host memory: MPI builds that pip
installs are not CUDA-aware.

A rank that fails must not leave the others waiting forever inside a collective (MPI's
default): once a process group is initialised, an uncaught exception (Ctrl-C included) on
any rank prints its traceback there and aborts the whole job (`MPI_Abort`), so `mpiexec` ends
with a non-zero status within seconds.
"""

from __future__ import annotations

import enum
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.autograd import array_module
from minigrad.tensor import Tensor

_world: Any = None  # the communicator once init_process_group() has run
ABORT_GRACE_SECONDS = 2.0  # how long ranks wait for rank 0 to report an error they all raised
REPORT_SECONDS = 0.5  # how long a rank that reported an error waits before it ends the job


class MismatchError(RuntimeError):
    """Raised alike on every rank when the ranks disagree (different models, different
    hyper-parameters): printed once, by rank 0."""


class ReduceOp(enum.Enum):
    """How all_reduce combines the ranks' values (AVG: the sum divided by the world size)."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise RuntimeError("minigrad.distributed needs mpi4py and an MPI library: pip install "
                           "'minigrad[dist]' (mpi4py and the mpich wheel, which brings mpiexec)"
                           ) from error
    return MPI


def init_process_group(backend: str = "mpi", **kwargs: Any) -> None:
    """Join MPI's world: rank and world size come from MPI (`mpiexec -n N`; one process alone
    is a world of 1). `backend` may be "mpi" only; torch's other arguments (init_method,
    world_size, rank) are accepted when they agree with MPI."""
    global _world
    if backend != "mpi":
        raise ValueError(f"init_process_group: minigrad's only backend is 'mpi', got {backend!r}")
    if _world is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process group "
                           "twice!")
    comm = _mpi().COMM_WORLD
    for name, actual in (("world_size", comm.Get_size()), ("rank", comm.Get_rank())):
        given = kwargs.pop(name, None)
        if given not in (None, -1) and given != actual:
            raise ValueError(f"init_process_group: {name}={given} but MPI says {actual} "
                             "(ranks and sizes come from mpiexec)")
    kwargs.pop("init_method", None)
    if kwargs:
        raise TypeError(f"init_process_group: unexpected arguments {sorted(kwargs)}")
    _world = comm.Dup()
    _abort_on_uncaught_exceptions()


def is_available() -> bool:
    """Whether mpi4py (and so an MPI library) can be imported."""
    try:
        _mpi()
    except RuntimeError:
        return False
    return True


def is_initialized() -> bool:
    return _world is not None


def destroy_process_group() -> None:
    """Leave the process group (the communicator is freed; MPI itself stays up)."""
    global _world
    if _world is not None:
        _world.Free()
        _world = None
        sys.excepthook = sys.__excepthook__


def _group(op: str) -> Any:
    if _world is None:
        raise RuntimeError(f"{op}: Default process group has not been initialized, please make "
                           "sure to call init_process_group.")
    return _world


def get_rank() -> int:
    return _group("get_rank").Get_rank()


def get_world_size() -> int:
    return _group("get_world_size").Get_size()


def local_world_size() -> int:
    """How many ranks of the job run on this machine (they share its cores)."""
    comm = _group("local_world_size")
    local = comm.Split_type(_mpi().COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def barrier() -> None:
    """Wait until every rank has reached this call."""
    _group("barrier").Barrier()


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM) -> None:
    """Combine `tensor` over all ranks, in place: every rank ends with the same values."""
    comm = _group("all_reduce")
    _check_tensor("all_reduce", tensor)
    if not isinstance(op, ReduceOp):
        raise ValueError(f"all_reduce: op must be a ReduceOp (SUM, AVG or MAX), got {op!r}")
    host = to_host(tensor.array)
    MPI = _mpi()
    comm.Allreduce(MPI.IN_PLACE, host, op=MPI.MAX if op is ReduceOp.MAX else MPI.SUM)
    if op is ReduceOp.AVG:
        host /= host.dtype.type(comm.Get_size())
    _store(tensor, host)


def broadcast(tensor: Tensor, src: int = 0) -> None:
    """Overwrite `tensor` on every rank with rank `src`'s, in place."""
    comm = _group("broadcast")
    _check_tensor("broadcast", tensor)
    _check_rank("broadcast", src, comm)
    host = to_host(tensor.array)
    comm.Bcast(host, root=src)
    _store(tensor, host)


def all_gather(tensor_list: list[Tensor], tensor: Tensor) -> None:
    """Fill tensor_list[r] with rank r's `tensor` (the same shape and dtype on every rank)."""
    comm = _group("all_gather")
    _check_tensor("all_gather", tensor)
    size = comm.Get_size()
    if len(tensor_list) != size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors for a world "
                         f"of {size} ranks")
    for out in tensor_list:
        if out.shape != tensor.shape or out.dtype != tensor.dtype:
            raise ValueError(f"all_gather: every output must be {tensor.shape} {tensor.dtype} "
                             f"like the input, got {out.shape} {out.dtype}")
    for out, part in zip(tensor_list, all_gather_array(to_host(tensor.array))):
        _store(out, part)


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's picklable `obj`, in rank order (for small things: checks, metrics)."""
    return _group("all_gather_object").allgather(obj)


# ------------------------------------------------------------------------------ arrays
def all_reduce_arrays(arrays: Sequence[Any], average: bool = False) -> None:
    """Sum (or average) NumPy arrays over all ranks, in place, one Allreduce each: for
    DistributedDataParallel's flat buckets and SyncBatchNorm's statistics."""
    comm = _group("all_reduce")
    MPI = _mpi()
    for array in arrays:
        comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
        if average:
            array /= array.dtype.type(comm.Get_size())


def all_gather_array(array: np.ndarray) -> np.ndarray:
    """(world size, *array.shape): every rank's NumPy array, in rank order."""
    comm = _group("all_gather")
    local = np.ascontiguousarray(array)
    gathered = np.empty((comm.Get_size(), *local.shape), local.dtype)
    comm.Allgather(local, gathered)
    return gathered


def broadcast_array(array: np.ndarray, src: int = 0) -> None:
    """Overwrite a NumPy array on every rank with rank `src`'s, in place."""
    _group("broadcast").Bcast(array, root=src)


def _check_tensor(op: str, tensor: Any) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a minigrad Tensor, got {type(tensor).__name__}")


def _check_rank(op: str, rank: Any, comm: Any) -> None:
    if not isinstance(rank, (int, np.integer)) or not 0 <= rank < comm.Get_size():
        raise ValueError(f"{op}: src must be a rank in [0, {comm.Get_size()}), got {rank!r}")


def to_host(array: Any) -> np.ndarray:
    """A C-contiguous NumPy copy of an array of any backend (MPI sends from host memory)."""
    xp = array_module([array])
    if xp is np:
        return np.array(array, order="C", copy=True)
    return xp.asnumpy(array)


def _store(tensor: Tensor, host: np.ndarray) -> None:
    """Write `host` into the tensor's own memory (on its device), in place."""
    xp = array_module([tensor.array])
    tensor.array[...] = host if xp is np else xp.asarray(host)


# ------------------------------------------------------------------------------ faults
def _abort_on_uncaught_exceptions() -> None:
    """An uncaught exception on this rank ends the job: the other ranks may be blocked in a
    collective that will never complete."""

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        abort(error.with_traceback(tb), 130 if issubclass(kind, KeyboardInterrupt) else 1)

    sys.excepthook = hook


def abort(error: BaseException, code: int = 1, message: str | None = None) -> None:
    """Report `error` on this rank and end every rank of the job now, with exit status `code`:
    its traceback, or `message` instead. What every rank raised alike (a Ctrl-C, which reaches
    them all; a MismatchError) is reported by rank 0 alone: the others give it a moment to
    print before they end the job. Never returns."""
    rank, size = get_rank(), get_world_size()
    everywhere = isinstance(error, (KeyboardInterrupt, MismatchError))
    report = ""
    if rank == 0 and isinstance(error, KeyboardInterrupt):
        report = f"minigrad.distributed: interrupted, ending all {size} ranks\n"
    elif message is not None and (rank == 0 or not everywhere):
        report = message + ("" if everywhere else f" (rank {rank} of {size})") + "\n"
    elif rank == 0 or not everywhere:
        report = (f"minigrad.distributed: rank {rank} of {size} failed, ending the job\n"
                  + "".join(traceback.format_exception(type(error), error, error.__traceback__)))
    # One write, then a moment for the launcher to forward it: Abort tears the job down at
    # once, and a report written line by line was seen cut off halfway on a busy machine.
    sys.stderr.write(report)
    sys.stderr.flush()
    if report:
        time.sleep(REPORT_SECONDS)
    if everywhere and rank != 0:
        time.sleep(ABORT_GRACE_SECONDS)
    _mpi().COMM_WORLD.Abort(code)
    os._exit(code)  # should mpiexec already be tearing the job down
