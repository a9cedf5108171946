"""`torch.utils.data`'s names for minigrad's data loading (which lives in `minigrad.data`).

    import minigrad as torch
    ds = torch.utils.data.TensorDataset(x, y)
    train, val = torch.utils.data.random_split(ds, [0.8, 0.2])
    for xb, yb in torch.utils.data.DataLoader(train, batch_size=32, shuffle=True):
        ...

`Dataset`, `TensorDataset`, `Subset` and `DataLoader` are the classes of `minigrad.data` (see
there: batches come back as minigrad tensors, shuffling is seeded by `mg.manual_seed`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from minigrad.data import DataLoader, Dataset, Subset, TensorDataset
from minigrad.random import generator as default_generator

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "random_split"]


def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 generator: np.random.Generator | None = None) -> list[Subset]:
    """Split `dataset` at random into non-overlapping `Subset`s of the given lengths.

    `lengths` are sample counts adding up to `len(dataset)`, or fractions adding up to 1: each
    fraction gets `floor(fraction * len)` samples and what is left over goes one by one to the
    first subsets (PyTorch's rule). The permutation comes from `generator` (a NumPy Generator)
    or minigrad's own, so `mg.manual_seed` makes the split reproducible; it is not the split
    PyTorch would draw.
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1, "
                                 f"got {frac!r}")
        counts = [math.floor(n * frac) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
        for i, length in enumerate(lengths):
            if length == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0. This might "
                              "result in an empty dataset.", stacklevel=2)
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal "
                         f"the length of the input dataset ({n})")
    order = (generator or default_generator()).permutation(n)
    ends = np.cumsum(lengths)
    return [Subset(dataset, order[end - length:end]) for length, end in zip(lengths, ends)]
