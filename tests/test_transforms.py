"""minigrad.data.transforms: batch transforms with torchvision's names, checked against
torchvision's and PyTorch's per-image functions, and reproducible through the DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import zoo
from helpers import raises_saying

import minigrad as mg
from minigrad.data import DataLoader, TensorDataset, transforms


def batch(n: int = 6, c: int = 2, h: int = 7, w: int = 9, seed: int = 0) -> np.ndarray:
    """Distinct values, so that every crop of a padded image identifies its offset."""
    return np.random.default_rng(seed).permutation(n * c * h * w).reshape(n, c, h, w).astype(
        np.float32) / (n * c * h * w)


def torchvision_functional(torch):
    zoo.torchvision_models()  # imports torchvision without its compiled operators
    from torchvision.transforms import functional

    return functional


# ------------------------------------------------------------------------------- RandomCrop
@pytest.mark.parametrize("padding, mode", [(2, "constant"), ((1, 3), "edge"),
                                           ((0, 1, 2, 3), "reflect"), (3, "symmetric")])
def test_random_crop_is_torchvisions_crop_of_its_padding_at_one_drawn_offset(torch, padding,
                                                                            mode):
    """Each image is torchvision's F.crop(F.pad(image)) at the offset the generator drew, the
    offsets uniform: the same generator state gives the same draws as two integer vectors."""
    tf = torchvision_functional(torch)
    images = batch()
    crop = transforms.RandomCrop((7, 8), padding=padding, fill=-0.5, padding_mode=mode)
    out = crop(images, np.random.default_rng(5))
    assert out.shape == (6, 2, 7, 8) and out.dtype == np.float32
    draws = np.random.default_rng(5)
    left, top, right, bottom = crop.padding
    tops = draws.integers(0, 7 + top + bottom - 7 + 1, 6)
    lefts = draws.integers(0, 9 + left + right - 8 + 1, 6)
    for image, mine, t, lft in zip(images, out, tops, lefts, strict=True):
        padded = tf.pad(torch.from_numpy(image), list(crop.padding), fill=-0.5,
                        padding_mode=mode)
        np.testing.assert_array_equal(mine, tf.crop(padded, int(t), int(lft), 7, 8).numpy())


def test_random_crop_offsets_cover_every_position_evenly():
    """Padding 1 around 4x4 images: 9 offsets (top, left) in {0, 1, 2}^2, and the crop's
    pixel (1, 1) is the image's pixel (top, left), whose value 4 top + left names the offset."""
    images = np.broadcast_to(np.arange(16, dtype=np.float32).reshape(4, 4), (9000, 1, 4, 4))
    out = transforms.RandomCrop(4, padding=1, fill=-1)(np.ascontiguousarray(images),
                                                       np.random.default_rng(0))
    value = out[:, 0, 1, 1].astype(int)
    offsets = np.bincount(3 * (value // 4) + value % 4, minlength=9)
    assert len(offsets) == 9 and np.all(np.abs(offsets / 9000 - 1 / 9) < 0.015), offsets


def test_random_crop_pads_if_needed_and_refuses_a_crop_larger_than_the_padded_image():
    images = batch(h=5, w=5)
    out = transforms.RandomCrop(8, pad_if_needed=True)(images, np.random.default_rng(0))
    assert out.shape == (6, 2, 8, 8)
    with raises_saying(ValueError, "RandomCrop: a 8x8 crop needs images of at least that size "
                                   "after padding, got 7x7"):
        transforms.RandomCrop(8, padding=1)(images, np.random.default_rng(0))
    with raises_saying(ValueError, "padding_mode must be one of"):
        transforms.RandomCrop(4, padding_mode="wrap")
    with raises_saying(ValueError, "padding must be a non-negative int"):
        transforms.RandomCrop(4, padding=(1, 2, 3))
    with raises_saying(TypeError, "RandomCrop: expected a float NumPy batch (N, C, H, W)"):
        transforms.RandomCrop(4)(np.zeros((3, 4, 4)))


# ---------------------------------------------------------------------- RandomHorizontalFlip
def test_horizontal_flip_mirrors_a_drawn_share_of_the_images():
    images = batch(n=1000, c=1, h=2, w=3)
    out = transforms.RandomHorizontalFlip(0.3)(images, np.random.default_rng(1))
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, images)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert np.all(flipped ^ kept)
    assert abs(flipped.mean() - 0.3) < 0.05
    assert np.array_equal(flipped, np.random.default_rng(1).random(1000) < 0.3)
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(0.0)(images), images)
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(1.0)(images),
                                  images[..., ::-1])
    with raises_saying(ValueError, "p must be in [0, 1], got 1.5"):
        transforms.RandomHorizontalFlip(1.5)


# ----------------------------------------------------------------------------- RandomErasing
def erased_boxes(images: np.ndarray, out: np.ndarray) -> list[tuple[int, int, int, int] | None]:
    """(top, left, height, width) of the one rectangle where each output differs from its
    image, checked to be a full rectangle across all channels; None where none does."""
    boxes = []
    for changed in out != images:
        where = changed.any(axis=0)
        if not where.any():
            boxes.append(None)
            continue
        rows, cols = np.flatnonzero(where.any(axis=1)), np.flatnonzero(where.any(axis=0))
        top, left = rows[0], cols[0]
        height, width = rows[-1] - top + 1, cols[-1] - left + 1
        assert where[top:top + height, left:left + width].all() and where.sum() == height * width
        assert changed[:, where].all()
        boxes.append((int(top), int(left), int(height), int(width)))
    return boxes


def test_random_erasing_draws_torchvisions_rectangles(torch):
    """The heights, widths and positions of the rectangles, and how often none of the 10
    attempts fits, follow torchvision's get_params: 20,000 draws each on 6x40 images, where
    a tall draw often fails to fit; total variation distance under 0.03 for each."""
    zoo.torchvision_models()
    from torchvision.transforms import RandomErasing

    n, h, w = 20000, 6, 40
    images = np.ones((n, 1, h, w), np.float32)
    erasing = transforms.RandomErasing(p=1.0, scale=(0.02, 0.4), ratio=(0.3, 3.3), value=-1.0)
    mine = [box[2:] + (box[0], box[1]) if box else (0, 0, -1, -1)
            for box in erased_boxes(images, erasing(images, np.random.default_rng(0)))]
    torch.manual_seed(0)
    image = torch.ones(1, h, w)
    theirs = []
    for _ in range(n):
        top, left, height, width, v = RandomErasing.get_params(image, scale=(0.02, 0.4),
                                                               ratio=(0.3, 3.3), value=[-1.0])
        theirs.append((height, width, top, left) if v is not image else (0, 0, -1, -1))
    mine, theirs = np.array(mine), np.array(theirs)
    assert 0.005 < np.mean(theirs[:, 0] == 0) < 0.5  # images left alone: some
    for column in range(4):  # height, width, top, left
        values = np.union1d(mine[:, column], theirs[:, column])
        share = [np.mean(mine[:, column] == v) for v in values]
        their_share = [np.mean(theirs[:, column] == v) for v in values]
        assert 0.5 * np.abs(np.subtract(share, their_share)).sum() < 0.03, column


def test_random_erasing_fills_one_rectangle_per_chosen_image():
    images = batch(n=400, c=3, h=10, w=12)
    erasing = transforms.RandomErasing(p=0.4, value=(-1.0, -2.0, -3.0))
    out = erasing(images, np.random.default_rng(2))
    boxes = erased_boxes(images, out)
    chosen = np.array([box is not None for box in boxes])
    assert np.array_equal(chosen, np.random.default_rng(2).random(400) < 0.4)  # its first draw
    for result, box in zip(out, boxes, strict=True):
        if box is not None:
            top, left, height, width = box
            assert 0.02 * 120 - 4 < height * width < 0.33 * 120 + 6  # the area, to rounding
            for channel, value in enumerate((-1.0, -2.0, -3.0)):
                assert np.all(result[channel, top:top + height, left:left + width] == value)
    assert out.dtype == np.float32 and not np.shares_memory(out, images)
    noisy = transforms.RandomErasing(p=1.0, value="random")(images, np.random.default_rng(3))
    drawn = noisy[noisy != images]
    assert len(drawn) > 400 * 3 * 2 and abs(drawn.mean()) < 0.05 and abs(drawn.std() - 1) < 0.05
    in_place = images.copy()
    same = transforms.RandomErasing(p=1.0, inplace=True)(in_place, np.random.default_rng(4))
    assert same is in_place and not np.array_equal(in_place, images)
    np.testing.assert_array_equal(transforms.RandomErasing(p=0.0)(images), images)


def test_random_erasing_refuses_bad_arguments():
    with raises_saying(ValueError, "RandomErasing: p must be in [0, 1], got 2"):
        transforms.RandomErasing(p=2)
    with raises_saying(ValueError, "RandomErasing: scale must be (min, max) with 0 <= min <= "
                                   "max <= 1, got (0.5, 0.1)"):
        transforms.RandomErasing(scale=(0.5, 0.1))
    with raises_saying(ValueError, "RandomErasing: ratio must be (min, max) with 0 < min"):
        transforms.RandomErasing(ratio=(0.0, 1.0))
    with raises_saying(ValueError, "value must be a number, a sequence of them or 'random', "
                                   "got 'noise'"):
        transforms.RandomErasing(value="noise")
    with raises_saying(ValueError, "RandomErasing: value needs 1 or 2 numbers for images of 2 "
                                   "channels, got (1.0, 2.0, 3.0)"):
        transforms.RandomErasing(value=(1.0, 2.0, 3.0))(batch())
    with raises_saying(TypeError, "RandomErasing: expected a float NumPy batch"):
        transforms.RandomErasing()(np.zeros((2, 3, 4, 5), np.uint8))


# --------------------------------------------------------------------------------- Normalize
def test_normalize_matches_torchvision_per_channel(torch):
    tf = torchvision_functional(torch)
    images = batch(c=3)
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    out = transforms.Normalize(mean, std)(images)
    for image, mine in zip(images, out, strict=True):
        np.testing.assert_allclose(mine, tf.normalize(torch.from_numpy(image), mean, std).numpy(),
                                   rtol=1e-6, atol=1e-7)
    assert out.dtype == np.float32
    np.testing.assert_allclose(transforms.Normalize(0.5, 2.0)(images), (images - 0.5) / 2.0,
                               rtol=1e-6)
    with raises_saying(ValueError, "Normalize: 2 mean values for images of 3 channels"):
        transforms.Normalize([0.1, 0.2], [1.0])(images)
    with raises_saying(ValueError, "std non-zero"):
        transforms.Normalize(0.0, 0.0)


# ------------------------------------------------------------------------------------ Resize
@pytest.mark.parametrize("size", [(32, 32), (14, 14), (20, 37), (28, 11)])
@pytest.mark.parametrize("antialias", [True, False])
def test_resize_matches_pytorch_bilinear_interpolation(torch, size, antialias):
    """The same weights as PyTorch's interpolate, to float64's rounding; float32 batches stay
    float32 (PyTorch's float32 weights differ from ours by about 1e-5 relative)."""
    images = np.random.default_rng(0).standard_normal((3, 2, 28, 28))
    out = transforms.Resize(size, antialias=antialias)(images)
    expected = torch.nn.functional.interpolate(torch.from_numpy(images), size=size,
                                               mode="bilinear", align_corners=False,
                                               antialias=antialias).numpy()
    assert out.shape == expected.shape == (3, 2, *size)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    single = transforms.Resize(size, antialias=antialias)(images.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, expected, rtol=0, atol=1e-5)


def test_resize_of_an_int_scales_the_shorter_side():
    assert transforms.Resize(14)(batch(h=28, w=42)).shape == (6, 2, 14, 21)
    assert transforms.Resize(10)(batch(h=30, w=20)).shape == (6, 2, 15, 10)
    with raises_saying(ValueError, "Resize: size must be an int >= 1 or a pair of them, got "
                                   "(0, 3)"):
        transforms.Resize((0, 3))
    with raises_saying(ValueError, "RandomCrop: size must be an int >= 1 or a pair of them"):
        transforms.RandomCrop(0)


# ----------------------------------------------------------------- Compose, and the loader
def test_compose_applies_each_transform_with_the_same_generator():
    images = batch()
    steps = [transforms.RandomCrop(7, padding=2), transforms.RandomHorizontalFlip()]
    out = transforms.Compose(steps)(images, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(out, steps[1](steps[0](images, rng), rng))
    assert "RandomCrop(size=(7, 7)" in repr(transforms.Compose(steps))


def test_loader_augments_each_batch_reproducibly_and_resumes_mid_epoch():
    """The batches of an epoch are the same on every pass and from any starting batch (what
    the CLI's resume relies on); another epoch draws other crops."""
    images, labels = batch(n=40), np.arange(40)
    augment = transforms.Compose([transforms.RandomCrop((7, 9), padding=3),
                                  transforms.RandomHorizontalFlip()])
    loader = DataLoader(TensorDataset(images, labels), batch_size=8, shuffle=True, seed=4,
                        transform=augment)
    first = [(x.numpy(), y.numpy()) for x, y in loader.batches(2)]
    again = [(x.numpy(), y.numpy()) for x, y in loader.batches(2)]
    resumed = [(x.numpy(), y.numpy()) for x, y in loader.batches(2, start=3)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    for a, b in zip(first[3:], resumed, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    plain = [x.numpy() for x, _ in DataLoader(TensorDataset(images, labels), batch_size=8,
                                              shuffle=True, seed=4).batches(2)]
    assert not all(np.array_equal(a[0], p) for a, p in zip(first, plain))
    other_epoch = [x.numpy() for x, _ in loader.batches(3)]
    assert not all(np.array_equal(a[0], o) for a, o in zip(first, other_epoch))
    assert isinstance(first[0][0], np.ndarray) and first[0][0].shape == (8, 2, 7, 9)
    with raises_saying(TypeError, "DataLoader: transform must be callable"):
        DataLoader(TensorDataset(images, labels), transform="flip")


def test_transforms_without_a_generator_draw_from_manual_seed():
    images = batch()
    mg.manual_seed(11)
    a = transforms.RandomCrop(7, padding=2)(images)
    mg.manual_seed(11)
    np.testing.assert_array_equal(a, transforms.RandomCrop(7, padding=2)(images))
