"""`Dataset` (anything with `len` and `[i]`) and `TensorDataset` (arrays indexed together).

A batch is fetched with one call, `dataset.__getitems__(indices)`, as in PyTorch. The default
asks for the samples one by one and stacks them; `TensorDataset` answers with one fancy index per
array, so a batch costs a few array copies, not a Python loop over its samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.tensor import Tensor


class Dataset:
    """A map-style dataset: subclasses define `__len__` and `__getitem__(i)` -> a sample tuple."""

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __getitems__(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """The samples at `indices` stacked field by field (one array per tuple position)."""
        samples = [self[int(i)] for i in indices]
        if not isinstance(samples[0], (tuple, list)):
            return (np.stack([np.asarray(s) for s in samples]),)
        return tuple(np.stack([np.asarray(field) for field in fields]) for fields in zip(*samples))


class TensorDataset(Dataset):
    """Samples are the i-th rows of equally long arrays (or tensors), e.g. images and labels."""

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset: needs at least one array")
        self.arrays = tuple(_host(a) for a in arrays)
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: all arrays must have the same first dimension, got "
                             f"shapes {[a.shape for a in self.arrays]}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)

    def __getitems__(self, indices: np.ndarray | Sequence[int]) -> tuple[np.ndarray, ...]:
        return tuple(a[indices] for a in self.arrays)


class Subset(Dataset):
    """The samples of `dataset` at `indices` (e.g. `Subset(train, range(1000))` for a quick run)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [-{n}, {n}) for a dataset of {n} "
                             f"samples, got {self.indices.min()}..{self.indices.max()}")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def __getitems__(self, indices: np.ndarray | Sequence[int]) -> tuple[np.ndarray, ...]:
        return self.dataset.__getitems__(self.indices[np.asarray(indices, dtype=np.int64)])


def _host(array: Any) -> np.ndarray:
    """Datasets live in host memory; each batch goes to the backend's device when it is drawn."""
    if isinstance(array, Tensor):
        return array.numpy()
    array = np.asarray(array)
    if array.ndim == 0:
        raise ValueError("TensorDataset: arrays need a first (sample) dimension, got a scalar")
    return array
