"""Image transforms with torchvision's names, for whole batches: `RandomCrop`,
`RandomHorizontalFlip`, `RandomErasing`, `Normalize`, `Resize`, `Compose`.

    from minigrad.data import DataLoader, transforms
    augment = transforms.Compose([transforms.RandomCrop(28, padding=4),
                                  transforms.RandomHorizontalFlip()])
    loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=0, transform=augment)

torchvision's transforms take one image at a time; these take a batch, a float NumPy array
(N, C, H, W), and return a new one. The random ones draw a choice per image (a crop offset, a
coin) all at once from `rng`, a NumPy Generator: `DataLoader` passes one seeded by (seed,
epoch, batch), so a resumed run draws exactly the crops and flips an uninterrupted run would;
called without one, they draw from `mg.manual_seed`'s generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad.nn.arguments import pair
from minigrad.random import generator

__all__ = ["Compose", "Normalize", "RandomCrop", "RandomErasing", "RandomHorizontalFlip",
           "Resize"]

Transform = Callable[..., np.ndarray]


def _size(op: str, size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from torchvision's `size`: an int, or a one- or two-element sequence."""
    if not isinstance(size, (int, np.integer)) and len(size) == 1:
        size = size[0]
    return pair(op, "size", int(size) if isinstance(size, np.integer) else size, 1)


def _batch(name: str, images: Any) -> np.ndarray:
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype.kind != "f":
        raise TypeError(f"{name}: expected a float NumPy batch (N, C, H, W), got "
                        f"{getattr(images, 'dtype', type(images).__name__)} of shape "
                        f"{getattr(images, 'shape', None)}")
    return images


class Compose:
    """The transforms one after another, each given the same `rng`."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, images: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        for transform in self.transforms:
            images = transform(images, rng)
        return images

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class RandomCrop:
    """A `size` crop of each image at an offset drawn uniformly, after padding every side by
    `padding` (an int; (left/right, top/bottom); or (left, top, right, bottom), as
    torchvision). `padding_mode` is "constant" (with `fill`), "edge", "reflect" or
    "symmetric". `pad_if_needed` pads images smaller than `size` up to it.

    The fill is a value of the batch as given: for normalised images, black is -mean/std, not 0.
    """

    MODES = ("constant", "edge", "reflect", "symmetric")

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: float = 0.0,
                 padding_mode: str = "constant") -> None:
        self.size = _size("RandomCrop", size)
        self.padding = _padding(padding)
        if padding_mode not in self.MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {self.MODES}, got "
                             f"{padding_mode!r}")
        self.pad_if_needed, self.fill, self.padding_mode = pad_if_needed, fill, padding_mode

    def __call__(self, images: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        images = _batch("RandomCrop", images)
        left, top, right, bottom = self.padding
        (th, tw), (h, w) = self.size, images.shape[2:]
        if self.pad_if_needed:
            extra_h = max(0, th - (h + top + bottom))  # on both sides, as torchvision
            extra_w = max(0, tw - (w + left + right))
            top, bottom = top + extra_h, bottom + extra_h
            left, right = left + extra_w, right + extra_w
        padded_h, padded_w = h + top + bottom, w + left + right
        if padded_h < th or padded_w < tw:
            raise ValueError(f"RandomCrop: a {th}x{tw} crop needs images of at least that "
                             f"size after padding, got {padded_h}x{padded_w} from "
                             f"{tuple(images.shape)} (pad_if_needed=True pads up to it)")
        widths = ((0, 0), (0, 0), (top, bottom), (left, right))
        options = {"constant_values": self.fill} if self.padding_mode == "constant" else {}
        padded = np.pad(images, widths, mode=self.padding_mode, **options)
        rng = rng or generator()
        n = len(images)
        tops = rng.integers(0, padded_h - th + 1, n)
        lefts = rng.integers(0, padded_w - tw + 1, n)
        windows = np.lib.stride_tricks.sliding_window_view(padded, (th, tw), axis=(2, 3))
        return windows[np.arange(n), :, tops, lefts]  # (N, C, th, tw): one gather

    def __repr__(self) -> str:
        return (f"RandomCrop(size={self.size}, padding={self.padding}, "
                f"pad_if_needed={self.pad_if_needed}, fill={self.fill}, "
                f"padding_mode={self.padding_mode})")


def _padding(padding: int | Sequence[int] | None) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from torchvision's forms."""
    if padding is None:
        return 0, 0, 0, 0
    sides = (padding,) if isinstance(padding, (int, np.integer)) else tuple(padding)
    if len(sides) not in (1, 2, 4) or not all(isinstance(s, (int, np.integer)) and s >= 0
                                              for s in sides):
        raise ValueError(f"RandomCrop: padding must be a non-negative int or a sequence of 1, "
                         f"2 or 4 of them, got {padding!r}")
    if len(sides) == 1:
        return (int(sides[0]),) * 4
    if len(sides) == 2:
        return int(sides[0]), int(sides[1]), int(sides[0]), int(sides[1])
    return tuple(int(s) for s in sides)  # type: ignore[return-value]


class RandomHorizontalFlip:
    """Each image mirrored left to right with probability `p`."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p!r}")
        self.p = p

    def __call__(self, images: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        images = _batch("RandomHorizontalFlip", images)
        flip = (rng or generator()).random(len(images)) < self.p
        return np.where(flip[:, None, None, None], images[..., ::-1], images)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomErasing:
    """Random erasing (Zhong et al., 2017), as torchvision's: with probability `p`, one
    rectangle of each image is set to `value` (a number, one per channel, or "random": a
    standard normal draw per pixel). Its area is a share of the image drawn uniformly from
    `scale`, its aspect ratio (height / width) log-uniformly from `ratio`, its sides rounded to
    whole pixels; of up to 10 such draws the first that fits inside the image (height and width
    smaller than the image's) is taken at a uniform position, and an image with none is left as
    it is. torchvision erases after `Normalize`, where the default 0 is the mean.
    """

    ATTEMPTS = 10

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.33),
                 ratio: Sequence[float] = (0.3, 3.3), value: float | str | Sequence[float] = 0.0,
                 inplace: bool = False) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing: p must be in [0, 1], got {p!r}")
        if len(scale) != 2 or not 0.0 <= scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"RandomErasing: scale must be (min, max) with 0 <= min <= max "
                             f"<= 1, got {scale!r}")
        if len(ratio) != 2 or not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomErasing: ratio must be (min, max) with 0 < min <= max, "
                             f"got {ratio!r}")
        if isinstance(value, str) and value != "random":
            raise ValueError(f"RandomErasing: value must be a number, a sequence of them or "
                             f"'random', got {value!r}")
        self.p, self.scale, self.ratio = p, tuple(scale), tuple(ratio)
        self.value, self.inplace = value, inplace

    def __call__(self, images: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        images = _batch("RandomErasing", images)
        n, c, h, w = images.shape
        values = None if isinstance(self.value, str) else np.atleast_1d(
            np.asarray(self.value, images.dtype))
        if values is not None and (values.ndim != 1 or len(values) not in (1, c)):
            raise ValueError(f"RandomErasing: value needs 1 or {c} numbers for images of {c} "
                             f"channels, got {self.value!r}")
        rng = rng or generator()
        erase = rng.random(n) < self.p
        # every image's 10 attempts at once; the first that fits is the one torchvision takes
        areas = h * w * rng.uniform(*self.scale, (n, self.ATTEMPTS))
        aspects = np.exp(rng.uniform(*np.log(self.ratio), (n, self.ATTEMPTS)))
        heights = np.rint(np.sqrt(areas * aspects)).astype(np.int64)  # rounds half to even,
        widths = np.rint(np.sqrt(areas / aspects)).astype(np.int64)  # as Python's round
        fits = (heights < h) & (widths < w)
        first = fits.argmax(axis=1)
        every = np.arange(n)
        erase &= fits[every, first]
        heights = np.where(erase, heights[every, first], 0)
        widths = np.where(erase, widths[every, first], 0)
        tops = rng.integers(0, h - heights + 1)
        lefts = rng.integers(0, w - widths + 1)
        rows, cols = np.arange(h), np.arange(w)
        inside = (((rows >= tops[:, None]) & (rows < (tops + heights)[:, None]))[:, :, None]
                  & ((cols >= lefts[:, None]) & (cols < (lefts + widths)[:, None]))[:, None, :])
        out = images if self.inplace else images.copy()
        fill = (rng.standard_normal(images.shape).astype(images.dtype) if values is None
                else np.broadcast_to(values[None, :, None, None], images.shape))
        np.copyto(out, fill, where=inside[:, None])
        return out

    def __repr__(self) -> str:
        return (f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, "
                f"value={self.value!r}, inplace={self.inplace})")


class Normalize:
    """(image - mean) / std per channel; `mean` and `std` one value or one per channel."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1 or np.any(self.std == 0):
            raise ValueError(f"Normalize: mean and std must be numbers or 1-D sequences, std "
                             f"non-zero; got mean={mean!r}, std={std!r}")

    def __call__(self, images: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        images = _batch("Normalize", images)
        channels = images.shape[1]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise ValueError(f"Normalize: {len(values)} {name} values for images of "
                                 f"{channels} channels")
        mean = self.mean.astype(images.dtype)[None, :, None, None]
        std = self.std.astype(images.dtype)[None, :, None, None]
        return (images - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Resize:
    """Each image resized to `size` (an int: the shorter side, keeping the aspect ratio; or
    (height, width)) by bilinear interpolation; shrinking averages over the source pixels
    each output pixel covers (`antialias=True`, torchvision's default for tensors).

    Each axis is one matrix product with a (new, old) matrix of interpolation weights, the
    same weights as PyTorch's `interpolate(mode="bilinear", antialias=True)`."""

    def __init__(self, size: int | Sequence[int], antialias: bool = True) -> None:
        checked = _size("Resize", size)  # an int stays one: the shorter side
        self.size = checked[0] if isinstance(size, (int, np.integer)) else checked
        self.antialias = antialias

    def __call__(self, images: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        images = _batch("Resize", images)
        h, w = images.shape[2:]
        if isinstance(self.size, tuple):
            new_h, new_w = self.size
        elif h <= w:
            new_h, new_w = int(self.size), int(self.size * w / h)
        else:
            new_h, new_w = int(self.size * h / w), int(self.size)
        rows = _bilinear_weights(h, new_h, self.antialias).astype(images.dtype)
        cols = _bilinear_weights(w, new_w, self.antialias).astype(images.dtype)
        return np.matmul(np.matmul(rows, images), cols.T)

    def __repr__(self) -> str:
        return f"Resize(size={self.size}, antialias={self.antialias})"


def _bilinear_weights(old: int, new: int, antialias: bool) -> np.ndarray:
    """(new, old): output pixel i's weights on the input pixels. Its centre falls at input
    coordinate (i + 0.5) * old / new; a triangle filter of half-width `support` (1, or the
    scale when shrinking with antialias) weighs the pixels around it, renormalised where it
    runs off the edge."""
    scale = old / new
    support = max(scale, 1.0) if antialias else 1.0
    centres = (np.arange(new) + 0.5) * scale
    pixels = np.arange(old) + 0.5
    weights = np.clip(1 - np.abs(pixels[None, :] - centres[:, None]) / support, 0, None)
    return weights / weights.sum(axis=1, keepdims=True)
