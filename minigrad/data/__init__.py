"""Datasets and batches: `Dataset`, `TensorDataset`, `DataLoader`, and real images in `datasets`.

    from minigrad.data import DataLoader, datasets
    train = datasets.digits(train=True)            # 1,437 real 8x8 digits as 1x28x28, no download
    for images, labels in DataLoader(train, batch_size=64, shuffle=True, seed=0):
        ...                                          # minigrad tensors on the current backend
"""

from minigrad.data import datasets, transforms
from minigrad.data.dataset import Dataset, Subset, TensorDataset
from minigrad.data.loader import DataLoader
from minigrad.data.sampler import DistributedSampler

__all__ = ["DataLoader", "Dataset", "DistributedSampler", "Subset", "TensorDataset", "datasets",
           "transforms"]
