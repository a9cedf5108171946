"""`DistributedDataParallel`: one model trained by N processes, each on its share of every batch.

As `torch.nn.parallel.DistributedDataParallel`, over minigrad.distributed's MPI world:

- at construction every rank must hold the same model (parameter and buffer names, shapes,
  dtypes; refused otherwise, on every rank, naming the difference); rank 0's parameters and
  buffers are then copied to all;
- in training, each forward first copies rank 0's buffers to all (`broadcast_buffers`), as
  PyTorch does, so BatchNorm's running statistics stay one set (SyncBatchNorm keeps them equal
  anyway);
- after `backward()` every gradient is averaged over the ranks, in flat buckets of about
  `bucket_cap_mb` (a few Allreduces per step, not one per parameter), taken in one fixed order
  (the parameters reversed, as their gradients arrive), so every rank gets the same bits and
  the optimizers stay in lockstep. With the loss a mean over each rank's B / N samples, the
  averaged gradient is the gradient of the mean over all B;
- `no_sync()` skips the averaging: gradients accumulate locally until the first backward after
  it, which averages the sums.

The averaging runs when backward has filled every gradient (a post-accumulate hook on each
parameter queues it, `minigrad.autograd.queue_callback`). A parameter without a gradient on
every rank keeps none; one with a gradient on some ranks only counts zeros for the others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from minigrad import autograd, distributed
from minigrad.autograd import array_module
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

BUCKET_CAP_MB = 25  # PyTorch's default


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training over the process group (see the module
    docstring). PyTorch's device and graph arguments are accepted and change nothing here."""

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None,
                 dim: int = 0, broadcast_buffers: bool = True, process_group: Any = None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False) -> None:
        super().__init__()
        if not distributed.is_initialized():
            raise RuntimeError("DistributedDataParallel: Default process group has not been "
                               "initialized, please make sure to call init_process_group.")
        if process_group is not None:
            raise ValueError("DistributedDataParallel: only the default process group (MPI's "
                             "world) is supported")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.require_backward_grad_sync = True
        _check_same_model(module)
        self._params = [p for p in module.parameters() if p.requires_grad]
        for tensor in [*module.parameters(), *module.buffers()]:
            distributed.broadcast(tensor, src=0)
        cap = (BUCKET_CAP_MB if bucket_cap_mb is None else bucket_cap_mb) * 2**20
        self._buckets = _buckets(self._params, cap)
        self._queued = False
        for param in self._params:
            param.register_post_accumulate_grad_hook(self._grad_ready)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self.training and self.broadcast_buffers:
            for bucket in _buckets(list(self.module.buffers()), float("inf")):
                flat = _flatten([b.array for b in bucket], bucket[0].dtype)
                distributed.broadcast_array(flat, src=0)
                _unflatten(flat, [b.array for b in bucket])
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside, backward accumulates gradients without averaging them over the ranks."""
        before, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    def _grad_ready(self, param: Tensor) -> None:
        if self.require_backward_grad_sync and not self._queued:
            self._queued = True
            autograd.queue_callback(self._average_gradients)

    def _average_gradients(self) -> None:
        """Every gradient averaged over the ranks, bucket by bucket, in place."""
        self._queued = False
        has_grad = np.array([p.grad is not None for p in self._params], dtype=np.int64)
        distributed.all_reduce_arrays([has_grad])
        present = {id(p) for p, n in zip(self._params, has_grad) if n}
        for bucket in self._buckets:
            bucket = [p for p in bucket if id(p) in present]
            if not bucket:
                continue
            grads = [None if p.grad is None else p.grad.array for p in bucket]
            flat = _flatten(grads, bucket[0].dtype, shapes=[p.shape for p in bucket])
            distributed.all_reduce_arrays([flat], average=True)
            for p in bucket:
                if p.grad is None:
                    p.grad = Tensor._wrap(array_module([p.array]).zeros_like(p.array))
            _unflatten(flat, [p.grad.array for p in bucket])


def _check_same_model(module: Module) -> None:
    """Refuse, on every rank alike, a world whose ranks hold different models."""
    mine = [f"{kind} {name!r} {tuple(t.shape)} {t.dtype}"
            + (" (frozen)" if kind == "parameter" and not t.requires_grad else "")
            for kind, named in (("parameter", module.named_parameters()),
                                ("buffer", module.named_buffers()))
            for name, t in named]
    everyone = distributed.all_gather_object(mine)
    for rank, theirs in enumerate(everyone):
        if theirs == everyone[0]:
            continue
        ours, differs = next(((a, b) for a, b in zip(everyone[0], theirs) if a != b),
                             (f"{len(everyone[0])} tensors", f"{len(theirs)} tensors"))
        raise distributed.MismatchError(
            f"DistributedDataParallel: rank {rank} holds a different model than rank 0: "
            f"{differs} where rank 0 has {ours} (every rank must build the same model)")


def _buckets(tensors: list[Tensor], cap_bytes: float) -> list[list[Tensor]]:
    """The tensors in reverse order, cut into runs of one dtype of at most cap_bytes (a larger
    tensor alone)."""
    buckets: list[list[Tensor]] = []
    size = 0.0
    for t in reversed(tensors):
        nbytes = t.array.size * t.array.dtype.itemsize
        if not buckets or buckets[-1][0].dtype != t.dtype or size + nbytes > cap_bytes:
            buckets.append([])
            size = 0.0
        buckets[-1].append(t)
        size += nbytes
    return buckets


def _flatten(arrays: list[Any], dtype: Any, shapes: list[tuple] | None = None) -> np.ndarray:
    """One host vector of the arrays' values in logical (C) order; None counts as zeros."""
    parts = [np.zeros(int(np.prod(shape)), dtype) if a is None
             else distributed.to_host(a).reshape(-1)
             for a, shape in zip(arrays, shapes or [a.shape for a in arrays])]
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def _unflatten(flat: np.ndarray, targets: list[Any]) -> None:
    """Write consecutive pieces of `flat` into the `targets` arrays, in place."""
    offset = 0
    for target in targets:
        piece = flat[offset:offset + target.size].reshape(target.shape)
        xp = array_module([target])
        target[...] = piece if xp is np else xp.asarray(piece)
        offset += target.size
