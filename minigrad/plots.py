"""PNG pictures of a training run: loss/accuracy curves and the confusion matrix.

matplotlib is imported only here and only when a picture is drawn (the `demo` extra), so the
core never needs it. Each file is written atomically, like checkpoints.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.serialization import write_atomically


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or an ImportError saying what to install."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("drawing PNGs needs matplotlib: pip install 'minigrad[demo]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: str | os.PathLike) -> None:
    """Render `figure` to PNG in memory, write it atomically, and free it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(figure)
    write_atomically(path, lambda file: file.write(buffer.getvalue()))


def plot_curves(history: Sequence[dict[str, float]], path: str | os.PathLike,
                title: str = "") -> None:
    """Loss and accuracy per epoch, train and test, side by side."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    figure, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for split, style in (("train", "-o"), ("test", "-s")):
        loss_ax.plot(epochs, [h[f"{split}_loss"] for h in history], style, label=split)
        acc_ax.plot(epochs, [100 * h[f"{split}_accuracy"] for h in history], style, label=split)
    for ax, name in ((loss_ax, "cross-entropy loss"), (acc_ax, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    save_figure(figure, path)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | os.PathLike,
                   title: str = "") -> None:
    """Confusion matrix (rows: true class, columns: predicted), counts written in each cell."""
    plt = pyplot()
    n = len(classes)
    figure, ax = plt.subplots(figsize=(1.0 + 0.62 * n, 0.6 + 0.55 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if count > threshold else "black")
    ax.set_title(title or "confusion matrix (test set)")
    save_figure(figure, path)


def image_grid(figure: Any, images: Sequence[np.ndarray] | np.ndarray, columns: int | None = None,
               titles: Sequence[str] | None = None, title: str = "", signed: bool = False,
               annotate: bool = False) -> list[Any]:
    """Draw 2-D arrays as grey images in a grid on `figure` (a Figure or a SubFigure).

    Filters and feature maps are easiest to compare as pictures, one small panel each. Every
    image gets its own grey scale, so weak filters stay visible next to strong ones. With
    `signed`, the scale is symmetric about zero (mid-grey = 0, white positive, black negative),
    so a filter's sign pattern (an edge detector's dark-to-bright step) can be read off.
    `annotate` writes each pixel's value in it (for tiny images such as the 5x5 Sobel example).
    Returns the axes, one per image.
    """
    images = [np.asarray(image, dtype=np.float64) for image in images]
    columns = min(columns or len(images), len(images))
    rows = -(-len(images) // columns)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i >= len(images):
            ax.set_axis_off()
            continue
        ax.set_xticks([])  # no ticks, but keep the frame: a white filter is still visible
        ax.set_yticks([])
        image = images[i]
        bound = float(np.abs(image).max()) or 1.0
        low, high = (-bound, bound) if signed else (float(image.min()), float(image.max()))
        if high <= low:  # a constant image: show it as mid-grey, not as an error
            low, high = low - 1.0, high + 1.0
        ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
        if annotate:
            middle = (low + high) / 2
            for (r, c), value in np.ndenumerate(image):
                ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=9,
                        color="black" if value > middle else "white")
    if title:
        figure.suptitle(title)
    return list(axes[:len(images)])
