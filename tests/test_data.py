"""minigrad.data: datasets, the DataLoader's batches and order, and the image loaders.

The IDX loader is tested on small files written here (valid, gzipped, corrupt, truncated); the
real Fashion-MNIST files are checked too where Debian's dataset-fashion-mnist put them.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import skip_or_fail

import minigrad as mg
from minigrad.data import DataLoader, Dataset, Subset, TensorDataset, datasets
from minigrad.data.datasets import DatasetError, read_idx

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


# ------------------------------------------------------------------------------ datasets
class Squares(Dataset):
    """A dataset with only __len__ and __getitem__, as users write them."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return np.full(3, i * i, dtype=np.float32), i


def test_dataset_default_batch_stacks_the_samples():
    images, labels = Squares().__getitems__(np.array([4, 1]))
    np.testing.assert_array_equal(images, [[16, 16, 16], [1, 1, 1]])
    np.testing.assert_array_equal(labels, [4, 1])


def test_tensor_dataset_indexes_all_arrays_together():
    ds = TensorDataset(np.arange(10).reshape(5, 2), mg.tensor([0, 1, 2, 3, 4]))
    assert len(ds) == 5
    x, y = ds[3]
    np.testing.assert_array_equal(x, [6, 7])
    assert y == 3
    xs, ys = ds.__getitems__(np.array([4, 0]))
    np.testing.assert_array_equal(xs, [[8, 9], [0, 1]])
    np.testing.assert_array_equal(ys, [4, 0])


def test_tensor_dataset_refuses_different_lengths():
    with pytest.raises(ValueError, match=r"same first dimension.*\(5, 2\).*\(4,\)"):
        TensorDataset(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_subset_maps_indices_and_checks_them():
    ds = TensorDataset(np.arange(10) * 10)
    sub = Subset(ds, [7, 2, 5])
    assert len(sub) == 3
    assert sub[0][0] == 70
    np.testing.assert_array_equal(sub.__getitems__(np.array([2, 1]))[0], [50, 20])
    with pytest.raises(IndexError, match="Subset"):
        Subset(ds, [0, 10])


# ---------------------------------------------------------------------------- DataLoader
def loader_over(n: int, **kwargs) -> DataLoader:
    return DataLoader(TensorDataset(np.arange(n, dtype=np.float32), np.arange(n)), **kwargs)


@pytest.mark.parametrize(("n", "batch", "drop_last", "batches"),
                         [(10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (2, 5, False, 1)])
def test_loader_length_and_batch_sizes(n, batch, drop_last, batches):
    loader = loader_over(n, batch_size=batch, drop_last=drop_last)
    sizes = [len(y) for _, y in loader]
    assert len(loader) == len(sizes) == batches
    assert all(s == batch for s in sizes[:-1])
    assert sum(sizes) == (n // batch * batch if drop_last else n)


def test_loader_yields_tensors_on_the_current_backend():
    x, y = next(iter(loader_over(8, batch_size=4)))
    assert isinstance(x, mg.Tensor) and isinstance(y, mg.Tensor)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.shape == (4,) and not x.requires_grad


def test_loader_shuffles_every_sample_once_per_epoch_reproducibly():
    loader = loader_over(100, batch_size=7, shuffle=True, seed=3)
    epochs = [np.concatenate([y.numpy() for _, y in loader]) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(100))
    assert not np.array_equal(epochs[0], epochs[1])  # a new order each epoch
    again = loader_over(100, batch_size=7, shuffle=True, seed=3)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in again]), epochs[0])
    other_seed = loader_over(100, batch_size=7, shuffle=True, seed=4)
    assert not np.array_equal(other_seed.order(0), epochs[0])


def test_loader_without_shuffle_keeps_the_dataset_order():
    order = np.concatenate([y.numpy() for _, y in loader_over(10, batch_size=4)])
    np.testing.assert_array_equal(order, np.arange(10))


def test_loader_resumes_mid_epoch_with_the_same_batches():
    loader = loader_over(50, batch_size=8, shuffle=True, seed=0)
    whole = [y.numpy() for _, y in loader.batches(2)]
    tail = [y.numpy() for _, y in loader.batches(2, start=3)]
    assert len(tail) == len(whole) - 3
    for a, b in zip(whole[3:], tail):
        np.testing.assert_array_equal(a, b)
    loader.set_epoch(2)
    np.testing.assert_array_equal(next(iter(loader))[1].numpy(), whole[0])


def test_loader_seed_defaults_to_minigrads_generator():
    mg.manual_seed(11)
    a = loader_over(30, batch_size=30, shuffle=True)
    mg.manual_seed(11)
    b = loader_over(30, batch_size=30, shuffle=True)
    assert a.seed == b.seed
    np.testing.assert_array_equal(a.order(0), b.order(0))


def test_loader_fetches_a_batch_without_a_per_sample_loop(monkeypatch):
    def one_by_one(self, index):
        raise AssertionError("a batch must be fetched with one __getitems__ call")

    monkeypatch.setattr(TensorDataset, "__getitem__", one_by_one)
    assert sum(len(y) for _, y in loader_over(20, batch_size=6, shuffle=True, seed=0)) == 20


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_loader_refuses_a_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        loader_over(4, batch_size=batch_size)


def test_loader_refuses_an_empty_dataset():
    with pytest.raises(ValueError, match="empty"):
        DataLoader(TensorDataset(np.zeros((0, 2))), batch_size=2)


# ------------------------------------------------------------------------------ IDX files
def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    data = idx_bytes(array)
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_split(directory: Path, prefix: str, n: int, gz: bool = True, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / f"{prefix}-images-idx3-ubyte", images, gz)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trips(tmp_path, gz):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a", array, gz)), array)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda raw: b"\x00\x00\x0d\x01" + raw[4:], "not an IDX file of unsigned bytes"),
    (lambda raw: b"PK\x03\x04" + raw[4:], "magic number 504b0304"),
    (lambda raw: b"", "magic number missing"),
    (lambda raw: raw[:9], "truncated inside its header"),
    (lambda raw: raw[:-5], "header promises"),
    (lambda raw: raw + b"\x00", "header promises"),
])
def test_read_idx_refuses_foreign_and_truncated_files(tmp_path, damage, message):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(damage(idx_bytes(np.zeros((3, 4, 4), dtype=np.uint8))))
    with pytest.raises(DatasetError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_refuses_corrupt_and_truncated_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8).reshape(2, 10, 10)))
    truncated, corrupt = tmp_path / "t.gz", tmp_path / "c.gz"
    truncated.write_bytes(packed[: len(packed) // 2])
    corrupt.write_bytes(packed[:12] + bytes(b ^ 0xFF for b in packed[12:30]) + packed[30:])
    for path in (truncated, corrupt):
        with pytest.raises(DatasetError, match="corrupt or truncated"):
            read_idx(path)


# ----------------------------------------------------------------- Fashion-MNIST and MNIST
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_idx_files_and_normalises(tmp_path, gz):
    images, labels = write_split(tmp_path, "t10k", 7, gz)
    ds = datasets.fashion_mnist(tmp_path, train=False)
    assert len(ds) == 7 and ds.images.shape == (7, 1, 28, 28) and ds.images.dtype == np.float32
    np.testing.assert_array_equal(ds.targets, labels)
    assert ds.targets.dtype == np.int64
    np.testing.assert_allclose(ds.images[:, 0] * ds.std + ds.mean, images / 255, atol=1e-6)
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10


def test_mnist_has_digit_classes(tmp_path):
    write_split(tmp_path, "train", 3)
    ds = datasets.mnist(tmp_path)
    assert ds.classes == tuple("0123456789") and (ds.mean, ds.std) == (0.1307, 0.3081)


def test_idx_dataset_refuses_mismatched_files(tmp_path):
    write_split(tmp_path, "train", 5)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DatasetError, match="expected 5 labels"):
        datasets.fashion_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(5, 10, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"labels must lie in 0\.\.9, found 10"):
        datasets.fashion_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 32, 32), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"28x28.*\(5, 32, 32\)"):
        datasets.fashion_mnist(tmp_path)


def test_missing_files_name_every_place_looked_and_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(datasets, "SYSTEM_DATA", tmp_path / "system")
    with pytest.raises(FileNotFoundError) as error:
        datasets.fashion_mnist(train=False)
    message = str(error.value)
    assert "t10k-images-idx3-ubyte[.gz]" in message
    assert str(tmp_path / "data" / "fashion-mnist") in message
    assert str(tmp_path / "system" / "fashion-mnist") in message
    assert "apt-get install dataset-fashion-mnist" in message
    with pytest.raises(FileNotFoundError, match=f"looked in {tmp_path / 'nowhere'}\\. "):
        datasets.mnist(tmp_path / "nowhere")


def test_search_order_is_root_then_minigrad_data_then_system(tmp_path, monkeypatch):
    write_split(tmp_path / "data" / "fashion-mnist", "t10k", 2, seed=1)
    write_split(tmp_path / "system" / "fashion-mnist", "t10k", 3, seed=2)
    write_split(tmp_path / "root", "t10k", 4, seed=3)
    monkeypatch.setattr(datasets, "SYSTEM_DATA", tmp_path / "system")
    monkeypatch.delenv("MINIGRAD_DATA", raising=False)
    assert len(datasets.fashion_mnist(train=False)) == 3
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "data"))
    assert len(datasets.fashion_mnist(train=False)) == 2
    assert len(datasets.fashion_mnist(tmp_path / "root", train=False)) == 4


def test_real_fashion_mnist_files(monkeypatch):
    """Skips where Fashion-MNIST is not installed; fails so under CI=true (.ci/run installs it)."""
    if not REAL_FASHION.is_dir():
        skip_or_fail(f"Fashion-MNIST is not installed in {REAL_FASHION} "
                     "(apt-get install dataset-fashion-mnist)")
    monkeypatch.delenv("MINIGRAD_DATA", raising=False)
    assert datasets.SYSTEM_DATA / "fashion-mnist" == REAL_FASHION  # where the loader looks
    train, test = datasets.fashion_mnist(), datasets.fashion_mnist(train=False)
    assert (len(train), len(test)) == (60000, 10000)
    np.testing.assert_array_equal(np.bincount(train.targets), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(test.targets), np.full(10, 1000))
    # the published mean and std used for normalising are the training pixels' own
    assert abs(float(train.images.mean(dtype=np.float64))) < 1e-3
    assert abs(float(train.images.std(dtype=np.float64)) - 1) < 1e-3


# --------------------------------------------------------------------------------- digits
def test_digits_split_is_fixed_disjoint_and_normalised():
    try:
        import sklearn  # noqa: F401
    except ImportError as error:
        skip_or_fail(f"datasets.digits needs the demo extra (scikit-learn): {error}")
    train, test = datasets.digits(), datasets.digits(train=False)
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape == (1437, 1, 28, 28) and train.images.dtype == np.float32
    assert set(np.unique(test.targets)) == set(range(10))
    np.testing.assert_array_equal(datasets.digits(train=False).images, test.images)
    train_rows = {row.tobytes() for row in train.images}
    assert sum(row.tobytes() in train_rows for row in test.images) < 5  # a few exact duplicates
    assert abs(float(train.images.mean())) < 1e-5 and abs(float(train.images.std()) - 1) < 1e-4
    border = train.images[:, 0] * train.std + train.mean
    np.testing.assert_allclose(border[:, :4], 0, atol=1e-6)  # centred in 28x28 as MNIST is
