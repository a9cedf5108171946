"""Real labelled images: scikit-learn's digits (no download), Fashion-MNIST and MNIST (IDX files).

Every dataset comes back as an `ImageDataset`: float32 images of shape (N, 1, 28, 28),
normalised with the training set's mean and std, int64 labels, and the class names.

Fashion-MNIST and MNIST are read from the standard IDX files (`.gz` or not), looked for in
`root` if given, else in `$MINIGRAD_DATA/<name>`, else in `/usr/share/datasets/<name>` (where
Debian's `dataset-fashion-mnist` package puts Fashion-MNIST). Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from minigrad.data.dataset import TensorDataset

__all__ = ["DatasetError", "ImageDataset", "digits", "fashion_mnist", "mnist", "read_idx",
           "resized"]

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
SYSTEM_DATA = Path("/usr/share/datasets")
IMAGE_SIZE = 28


class DatasetError(ValueError):
    """A dataset file exists but is not what it should be (corrupt, truncated, foreign)."""


class ImageDataset(TensorDataset):
    """Images (N, 1, H, W) float32 (28x28 unless `resized`), normalised, and labels (N,) int64,
    with their class names.

    `mean` and `std` are what was subtracted and divided: `image * std + mean` is back in [0, 1].
    """

    def __init__(self, images: np.ndarray, targets: np.ndarray, classes: tuple[str, ...],
                 name: str, mean: float, std: float) -> None:
        super().__init__(images, targets)
        self.classes, self.name, self.mean, self.std = classes, name, mean, std

    @property
    def images(self) -> np.ndarray:
        return self.arrays[0]

    @property
    def targets(self) -> np.ndarray:
        return self.arrays[1]

    def __repr__(self) -> str:
        side = "x".join(str(d) for d in self.images.shape[1:])
        return (f"ImageDataset({self.name}, {len(self)} images of {side}, "
                f"{len(self.classes)} classes)")


def resized(dataset: ImageDataset, side: int, chunk: int = 4096) -> ImageDataset:
    """The same dataset with its images resized to side x side (bilinear, antialiased when
    shrinking: `transforms.Resize`), in chunks of `chunk` images. Resizing is linear and its
    weights sum to 1, so normalising before or after gives the same images: mean and std
    carry over."""
    from minigrad.data.transforms import Resize

    resize = Resize((side, side))
    images = np.concatenate([resize(dataset.images[i:i + chunk])
                             for i in range(0, len(dataset), chunk)])
    return ImageDataset(images, dataset.targets, dataset.classes, dataset.name, dataset.mean,
                        dataset.std)


def _normalised(pixels: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(N, H, W) intensities in [0, 1] -> (N, 1, H, W) float32 with zero mean, unit std."""
    return ((pixels.astype(np.float32) - np.float32(mean)) / np.float32(std))[:, None]


# ------------------------------------------------------------------------------- digits
DIGITS_TEST_SIZE = 360


def digits(train: bool = True) -> ImageDataset:
    """scikit-learn's 1,797 handwritten digits (8x8, 16 grey levels) as 1x28x28 images.

    Each image is resized to 20x20 by bilinear interpolation and centred in 28x28, as MNIST's
    digits are. The split is fixed: a seeded shuffle puts 1,437 images in train, 360 in test.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("datasets.digits needs scikit-learn, which carries the images (no "
                          "download): pip install 'minigrad[demo]'") from None
    bunch = load_digits()
    resize = _bilinear_matrix(8, 20)
    small = bunch.images / 16.0
    pixels = np.zeros((len(small), IMAGE_SIZE, IMAGE_SIZE))
    pixels[:, 4:24, 4:24] = np.clip(resize @ small @ resize.T, 0.0, 1.0)
    order = np.random.default_rng(0).permutation(len(pixels))
    train_idx, test_idx = order[DIGITS_TEST_SIZE:], order[:DIGITS_TEST_SIZE]
    mean, std = float(pixels[train_idx].mean()), float(pixels[train_idx].std())
    idx = train_idx if train else test_idx
    return ImageDataset(_normalised(pixels[idx], mean, std), bunch.target[idx].astype(np.int64),
                        DIGIT_CLASSES, "digits", mean, std)


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """R (n_out, n_in) with R @ image @ R.T the bilinear resize (pixel centres aligned)."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = centres - low
    matrix = np.zeros((n_out, n_in))
    matrix[np.arange(n_out), low] += 1 - frac
    matrix[np.arange(n_out), high] += frac
    return matrix


# ------------------------------------------------------------------- MNIST-style IDX files
# Mean and std of each training set's pixels in [0, 1] (the usual constants; a test recomputes
# Fashion-MNIST's from the files), so loading the test split needs no pass over the training one.
_IDX_DATASETS = {
    "fashion-mnist": {"classes": FASHION_CLASSES, "mean": 0.2860, "std": 0.3530,
                      "how": "install Debian's package: apt-get install dataset-fashion-mnist "
                             "(or get the files from github.com/zalandoresearch/fashion-mnist)"},
    "mnist": {"classes": DIGIT_CLASSES, "mean": 0.1307, "std": 0.3081,
              "how": "get the four files from yann.lecun.com/exdb/mnist (or a mirror)"},
}


def fashion_mnist(root: str | os.PathLike | None = None, train: bool = True) -> ImageDataset:
    """Zalando's Fashion-MNIST: 60,000 train / 10,000 test 28x28 photos of clothes, 10 classes."""
    return _idx_dataset("fashion-mnist", root, train)


def mnist(root: str | os.PathLike | None = None, train: bool = True) -> ImageDataset:
    """LeCun's MNIST: 60,000 train / 10,000 test 28x28 handwritten digits."""
    return _idx_dataset("mnist", root, train)


def _idx_dataset(name: str, root: str | os.PathLike | None, train: bool) -> ImageDataset:
    info = _IDX_DATASETS[name]
    prefix = "train" if train else "t10k"
    images_path, labels_path = _find_files(name, root, [f"{prefix}-images-idx3-ubyte",
                                                        f"{prefix}-labels-idx1-ubyte"])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DatasetError(f"{images_path}: expected images of 28x28, the file holds an array "
                           f"of shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{labels_path}: expected {len(images)} labels (one per image in "
                           f"{images_path.name}), the file holds an array of shape {labels.shape}")
    if len(labels) and labels.max() >= len(info["classes"]):
        raise DatasetError(f"{labels_path}: labels must lie in 0..{len(info['classes']) - 1}, "
                           f"found {labels.max()}")
    return ImageDataset(_normalised(images / np.float32(255), info["mean"], info["std"]),
                        labels.astype(np.int64), info["classes"], name, info["mean"], info["std"])


def _search_dirs(name: str, root: str | os.PathLike | None) -> list[Path]:
    if root is not None:
        return [Path(root)]
    dirs = [Path(os.environ["MINIGRAD_DATA"]) / name] if os.environ.get("MINIGRAD_DATA") else []
    return [*dirs, SYSTEM_DATA / name]


def _find_files(name: str, root: str | os.PathLike | None, stems: list[str]) -> list[Path]:
    """The first directory that has every file (each as `<stem>.gz` or `<stem>`)."""
    dirs = _search_dirs(name, root)
    for directory in dirs:
        found = [_either(directory / stem) for stem in stems]
        if all(found):
            return found
    looked = ", ".join(str(d) for d in dirs)
    raise FileNotFoundError(
        f"{name}: {' and '.join(s + '[.gz]' for s in stems)} not found; looked in {looked}. "
        f"To get them, {_IDX_DATASETS[name]['how']}, and put them in $MINIGRAD_DATA/{name} "
        f"or pass root= (--data-dir on the command line)")


def _either(stem: Path) -> Path | None:
    for path in (stem.with_name(stem.name + ".gz"), stem):
        if path.is_file():
            return path
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The uint8 array in an IDX file (gzipped or not), its header and length checked."""
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: cannot be read ({error}); the file is corrupt or "
                           "truncated: fetch it again") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or not 1 <= raw[3] <= 4:
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes (magic number "
                           f"{raw[:4].hex() or 'missing'}, expected 0000080N with N = 1..4)")
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated inside its header ({len(raw)} bytes)")
    shape = struct.unpack(f">{raw[3]}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DatasetError(f"{path}: {len(raw)} bytes, but its header promises {expected} "
                           f"(shape {shape}); the file is truncated or corrupt: fetch it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
