"""`DataLoader`: batches of a dataset as minigrad tensors, shuffled reproducibly.

The order of epoch `e` is a permutation drawn from `numpy.random.default_rng([seed, e])`: it
depends on nothing but the seed and the epoch number, so a run resumed at epoch 7, batch 12
(`loader.batches(7, start=12)`) sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigrad.data.dataset import Dataset
from minigrad.data.sampler import DistributedSampler
from minigrad.factories import from_numpy
from minigrad.random import generator
from minigrad.tensor import Tensor


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size`; each pass is the next epoch.

    Each batch is a tuple of tensors on the current backend (one per field of the samples:
    images, labels). `seed=None` draws a seed from `mg.manual_seed`'s generator, so a seeded
    script stays reproducible; `set_epoch(e)` chooses which epoch's order the next pass uses.

    `transform(images, rng)` (a `minigrad.data.transforms` pipeline, say) is applied to each
    batch's images (the first field) as a whole; `rng` is a NumPy Generator seeded by (seed,
    epoch, batch number), so random augmentation is reproducible and a resumed epoch repeats it.

    `sampler` (any sized iterable of indices; its `set_epoch(e)`, when it has one, is called
    before each epoch) replaces the shuffled or plain order. With a `DistributedSampler`, a
    rank's batch b is its rows of batch b of all ranks (`global_order`), augmented as that
    whole batch: N ranks at batch B / N see exactly one process's batches of B, crops and
    flips included.

    `num_workers` and `pin_memory` are accepted so PyTorch code runs as written; they change
    nothing: a batch is one vectorised gather from the dataset's arrays, in this process.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None, *,
                 transform: Callable[..., np.ndarray] | None = None, num_workers: int = 0,
                 pin_memory: bool = False, sampler: Any = None) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got "
                             f"{num_workers!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, "
                             f"got {batch_size!r}")
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        self.sampler = sampler
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(generator().integers(2**63)) if seed is None else int(seed)
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {transform!r}")
        self.transform = transform
        self.num_workers, self.pin_memory = num_workers, bool(pin_memory)
        self.epoch = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        samples = len(self.dataset) if self.sampler is None else len(self.sampler)
        full, rest = divmod(samples, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of `epoch`, in the order they are served."""
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        if not self.shuffle:
            return np.arange(len(self.dataset))
        return np.random.default_rng([self.seed, int(epoch)]).permutation(len(self.dataset))

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, ...]]:
        """The batches of `epoch` from batch number `start` on."""
        epoch, order = int(epoch), self.order(epoch)
        # A rank augments the whole batch of all ranks and keeps its rows (every num_replicas-th
        # from its rank on, as the sampler deals them): the draws depend on the batch alone.
        share = None
        if isinstance(self.sampler, DistributedSampler) and self.transform is not None:
            share = self.sampler.global_order(epoch), self.sampler.num_replicas, self.sampler.rank
        for b in range(start, len(self)):
            if share is None:
                fields = list(self.dataset.__getitems__(
                    order[b * self.batch_size:(b + 1) * self.batch_size]))
            else:
                everyone, ranks, rank = share
                fields = list(self.dataset.__getitems__(
                    everyone[b * self.batch_size * ranks:(b + 1) * self.batch_size * ranks]))
            if self.transform is not None:
                fields[0] = self.transform(fields[0], np.random.default_rng([self.seed, epoch, b]))
            if share is not None:
                fields = [f[rank::ranks] for f in fields]
            yield tuple(from_numpy(np.ascontiguousarray(f)) for f in fields)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self.batches(epoch)

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}"
                + ("" if self.sampler is None else f", sampler={self.sampler!r}")
                + ("" if self.transform is None else f", transform={self.transform!r}") + ")")
