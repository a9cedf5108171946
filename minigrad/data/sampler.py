"""`DistributedSampler`: each rank's share of a dataset, for data-parallel training.

As `torch.utils.data.distributed.DistributedSampler`: every rank draws the same permutation of
the dataset for the epoch (from the seed and the epoch number, as `DataLoader` shuffles),
pads it by repeating its first indices to a multiple of the world size (or, with
`drop_last=True`, cuts the remainder), and takes every `num_replicas`-th index from its rank
on. So batch b of a `DataLoader(dataset, batch_size=B // N, sampler=...)` on each of N ranks
holds, together, the indices of batch b of a one-process `DataLoader(dataset, B,
shuffle=True)` with the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import numpy as np


class DistributedSampler:
    """The indices of rank `rank`'s share of `dataset` for the current epoch (`set_epoch`).
    `num_replicas` and `rank` default to the process group's world size and rank."""

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from minigrad import distributed

            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        if not isinstance(num_replicas, (int, np.integer)) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, got "
                             f"{num_replicas!r}")
        if not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: Invalid rank {rank}, rank should be in the "
                             f"interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % self.num_replicas:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use epoch `epoch`'s permutation from the next pass on (call it on every rank)."""
        self.epoch = int(epoch)

    def global_order(self, epoch: int) -> np.ndarray:
        """All ranks' indices of `epoch`, `total_size` of them: rank r takes [r::num_replicas]."""
        n = len(self.dataset)
        order = (np.random.default_rng([self.seed, int(epoch)]).permutation(n) if self.shuffle
                 else np.arange(n))
        if self.total_size <= n:
            return order[:self.total_size]
        return np.resize(order, self.total_size)  # repeats from the start, as PyTorch pads

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_order(self.epoch)[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"DistributedSampler(rank {self.rank} of {self.num_replicas}, "
                f"{self.num_samples} samples, shuffle={self.shuffle}, seed={self.seed}, "
                f"drop_last={self.drop_last})")
