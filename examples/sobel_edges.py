"""Find a vertical edge with a Sobel filter: by hand with NumPy loops, then with F.conv2d.

    python examples/sobel_edges.py [--out sobel_edges.png]

The CNN article's first example: slide a 3x3 Sobel-x kernel over a 5x5 "step" image (dark on
the left, bright on the right) with padding 1. The feature map is large where the brightness
rises (the edge), zero over flat regions, and negative at the right border, where the zero
padding makes the image drop back to dark.

The inputs are reconstructions: the article itself could not be found, so the image and kernel
are the classic textbook ones (0s in the two left columns, 1s in the three right ones; the
Sobel-x kernel [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]).

It also saves the input and the feature map side by side as a PNG (`--out`, default
sobel_edges.png in the current directory), each pixel's value written in it; without matplotlib
it prints the numbers only.
"""

import argparse
import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

IMAGE = np.array([[0, 0, 1, 1, 1]] * 5, dtype=np.float32)
SOBEL_X = np.array([[-1, 0, 1],
                    [-2, 0, 2],
                    [-1, 0, 1]], dtype=np.float32)


def convolve2d(image: np.ndarray, kernel: np.ndarray, padding: int = 0) -> np.ndarray:
    """The article's manual convolution: plain loops over a zero-padded 2-D image.

    Like every deep-learning "convolution" it is a cross-correlation: the kernel is not flipped.
    A teaching example only; minigrad's conv2d does not use it.
    """
    image = np.pad(image, padding)
    kh, kw = kernel.shape
    out_h, out_w = image.shape[0] - kh + 1, image.shape[1] - kw + 1
    out = np.zeros((out_h, out_w), dtype=image.dtype)
    for i in range(out_h):
        for j in range(out_w):
            out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
    return out


def sobel_feature_map() -> np.ndarray:
    """The same feature map from minigrad: (H, W) becomes NCHW (1, 1, H, W) and back."""
    x = mg.tensor(IMAGE).reshape(1, 1, *IMAGE.shape)
    weight = mg.tensor(SOBEL_X).reshape(1, 1, *SOBEL_X.shape)
    return F.conv2d(x, weight, padding=1).numpy()[0, 0]


def save_picture(feature_map: np.ndarray, path: str) -> None:
    """Input and feature map side by side; the map's grey scale is centred on zero."""
    from minigrad import plots

    figure = plots.pyplot().figure(figsize=(7, 3.6), layout="constrained")
    left, right = figure.subfigures(1, 2)
    plots.image_grid(left, [IMAGE], titles=["input: a vertical step"], annotate=True)
    plots.image_grid(right, [feature_map], titles=["Sobel-x feature map, padding 1 (grey = 0)"],
                     signed=True, annotate=True)
    plots.save_figure(figure, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A vertical edge found by a Sobel filter.")
    parser.add_argument("--out", default="sobel_edges.png", help="where to save the PNG")
    args = parser.parse_args(argv)
    feature_map = sobel_feature_map()
    np.testing.assert_array_equal(feature_map, convolve2d(IMAGE, SOBEL_X, padding=1))
    print("Input image:")
    print(IMAGE)
    print("Feature map (Sobel-x, padding 1):")
    print(feature_map)
    try:
        save_picture(feature_map, args.out)
    except ImportError as error:  # matplotlib missing: the numbers above are the result
        print(f"sobel_edges: no PNG: {error}", file=sys.stderr)
        return
    print(f"Saved {args.out}")


if __name__ == "__main__":
    main()
