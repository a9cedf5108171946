"""`minigrad.utils.data`: torch.utils.data's names for minigrad's data loading, and random_split.

The classes are minigrad.data's own (tested in test_data.py); here: that PyTorch-style code
reaches them, and random_split's lengths, fractions and errors against PyTorch's.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.data
from minigrad.utils import data


def test_names_are_minigrad_datas_classes(torch):
    for name in ["Dataset", "TensorDataset", "DataLoader", "Subset"]:
        assert getattr(data, name) is getattr(minigrad.data, name)
        assert hasattr(torch.utils.data, name)
    assert sorted(data.__all__) == ["DataLoader", "Dataset", "Subset", "TensorDataset",
                                    "random_split"]
    assert "utils" in mg.__all__ and mg.utils.data is data


def test_utils_is_an_attribute_right_after_import():
    code = ("import minigrad as torch; "
            "print(torch.utils.data.DataLoader.__name__, torch.utils.data.random_split.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["DataLoader", "random_split"]


def test_pytorch_style_loop():
    import minigrad as torch

    torch.manual_seed(0)
    x, y = torch.randn(10, 3), torch.arange(10)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4,
                                         shuffle=True)
    batches = list(loader)
    assert [len(yb.numpy()) for _, yb in batches] == [4, 4, 2]
    seen = np.concatenate([yb.numpy() for _, yb in batches])
    assert sorted(seen) == list(range(10)) and list(seen) != list(range(10))
    for xb, yb in batches:
        assert isinstance(xb, torch.Tensor) and xb.shape[1:] == (3,)
        np.testing.assert_array_equal(xb.numpy(), x.numpy()[yb.numpy()])


class Squares(data.Dataset):
    """A map-style dataset written as for PyTorch: subclass Dataset, define len and getitem."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.float32(i), np.int64(i * i)


def test_a_subclassed_dataset_and_a_subset():
    loader = data.DataLoader(data.Subset(Squares(), [6, 2, 3]), batch_size=2)
    (a, b), (c, d) = list(loader)
    assert a.numpy().tolist() == [6.0, 2.0] and b.numpy().tolist() == [36, 4]
    assert c.numpy().tolist() == [3.0] and d.numpy().tolist() == [9]


# ------------------------------------------------------------------------------ random_split
@pytest.mark.parametrize(("n", "lengths"), [
    (10, [3, 7]),
    (10, [0.3, 0.7]),
    (11, [0.5, 0.5]),               # remainder goes to the first split
    (30, [0.3, 0.3, 0.4]),
    (7, [0.1, 0.1, 0.1, 0.7]),      # several leftovers, round robin
    (5, [5]),
])
def test_random_split_lengths_equal_torchs(torch, n, lengths):
    ours = data.random_split(data.TensorDataset(np.arange(n)), lengths)
    theirs = torch.utils.data.random_split(range(n), lengths)
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    indices = np.concatenate([s.indices for s in ours])
    assert sorted(indices.tolist()) == list(range(n))  # disjoint, and together everything
    assert all(isinstance(s, data.Subset) for s in ours)


@given(n=st.integers(1, 200), fractions=st.lists(st.integers(1, 20), min_size=1, max_size=6))
def test_random_split_drawn_fractions_equal_torchs(torch, n, fractions):
    lengths = [f / sum(fractions) for f in fractions]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "length of split at index i is 0", from both
        ours = [len(s) for s in data.random_split(list(range(n)), lengths)]
        theirs = [len(s) for s in torch.utils.data.random_split(range(n), lengths)]
    assert ours == theirs and sum(ours) == n


def test_random_split_is_reproducible_with_the_seed_or_a_generator():
    ds = data.TensorDataset(np.arange(20))
    mg.manual_seed(4)
    first = [s.indices.tolist() for s in data.random_split(ds, [0.5, 0.5])]
    mg.manual_seed(4)
    again = [s.indices.tolist() for s in data.random_split(ds, [0.5, 0.5])]
    assert first == again and first[0] != list(range(10))
    gen_split = data.random_split(ds, [10, 10], generator=np.random.default_rng(1))
    assert [s.indices.tolist() for s in gen_split] == [
        s.indices.tolist() for s in data.random_split(ds, [10, 10],
                                                      generator=np.random.default_rng(1))]
    train, _ = data.random_split(ds, [15, 5])
    (batch,) = next(iter(data.DataLoader(train, batch_size=15)))
    assert sorted(batch.numpy().tolist()) == sorted(train.indices.tolist())


def test_random_split_warns_of_an_empty_split(torch):
    with pytest.warns(UserWarning, match="random_split: length of split at index 1 is 0"):
        data.random_split(list(range(2)), [0.9, 0.1])
    with pytest.warns(UserWarning, match="index 1 is 0"):
        torch.utils.data.random_split(range(2), [0.9, 0.1])


@pytest.mark.parametrize(("lengths", "message"), [
    ([3, 3], r"random_split: sum of input lengths \(6\) does not equal the length of the input "
             r"dataset \(5\)"),
    ([0.5, 0.4], "sum of input lengths"),
    ([1.5, -0.5], "random_split: fraction at index 0 is not between 0 and 1, got 1.5"),
])
def test_random_split_bad_lengths_raise_like_torch(torch, lengths, message):
    with pytest.raises(ValueError, match=message):
        data.random_split(list(range(5)), lengths)
    with pytest.raises(ValueError):
        torch.utils.data.random_split(range(5), lengths)
