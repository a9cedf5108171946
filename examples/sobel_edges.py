"""Find a horizontal edge with a Sobel filter: by hand with NumPy loops, then with F.conv2d.

    python examples/sobel_edges.py [--out sobel_edges.png]

The CNN article's convolution example, with its inputs: a 5x5 image whose two top rows are 0
and three bottom rows are 1 (a horizontal edge between rows 1 and 2), and the 3x3 kernel the
article calls `sobel_x`, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]], slid over it with padding 1.
The kernel subtracts the row above from the row below, so it responds to horizontal edges:
it is the kernel usually called Sobel-y (the article's comment, "Sobel horizontal edge
detector", says what it does; only its name is unusual). As in the article, it prints

    Feature map (edge detection):
    [[ 0  0  0  0  0]
     [ 3  4  4  4  3]
     [ 3  4  4  4  3]
     [ 0  0  0  0  0]
     [-3 -4 -4 -4 -3]]

Rows 1 and 2 straddle the edge (dark above, bright below): 4, and 3 at the borders, where the
zero padding leaves out a kernel column. Row 3 lies inside the bright region: 0. Row 4 is
negative because below the image the zero padding is dark again: an edge the other way.

The feature map is computed twice, by the article's own loops (`convolve2d`) and by minigrad's
F.conv2d, and the two are checked to agree. It also saves the input and the feature map side
by side as a PNG (`--out`, default sobel_edges.png in the current directory), each pixel's
value written in it; without matplotlib it prints the numbers only.
"""

import argparse
import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

# The article's image: a horizontal edge between rows 1 and 2.
IMAGE = np.array([
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [1, 1, 1, 1, 1],  # horizontal edge here
    [1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1],
], dtype=float)

# The article's name for it. It responds to HORIZONTAL edges (row below minus row above):
# what textbooks usually call Sobel-y; their Sobel-x is its transpose, for vertical edges.
SOBEL_X = np.array([
    [-1, -2, -1],
    [0, 0, 0],
    [1, 2, 1],
])


def convolve2d(image: np.ndarray, kernel: np.ndarray, stride: int = 1,
               padding: int = 0) -> np.ndarray:
    """The article's manual 2-D convolution (single channel): plain loops over a zero-padded
    image. Like every deep-learning "convolution" it is a cross-correlation: the kernel is not
    flipped. A teaching example only; minigrad's conv2d does not use it."""
    if padding > 0:
        image = np.pad(image, padding, mode="constant")
    height, width = image.shape
    k_height, k_width = kernel.shape
    out_height = (height - k_height) // stride + 1
    out_width = (width - k_width) // stride + 1
    output = np.zeros((out_height, out_width))
    for i in range(out_height):
        for j in range(out_width):
            region = image[i * stride:i * stride + k_height, j * stride:j * stride + k_width]
            output[i, j] = np.sum(region * kernel)
    return output


def sobel_feature_map() -> np.ndarray:
    """The same feature map from minigrad: (H, W) becomes NCHW (1, 1, H, W) and back. The
    article's kernel is an integer array; conv2d wants the image's dtype (float64)."""
    x = mg.tensor(IMAGE).reshape(1, 1, *IMAGE.shape)
    weight = mg.tensor(SOBEL_X.astype(IMAGE.dtype)).reshape(1, 1, *SOBEL_X.shape)
    return F.conv2d(x, weight, padding=1).numpy()[0, 0]


def save_picture(feature_map: np.ndarray, path: str) -> None:
    """Input and feature map side by side; the map's grey scale is centred on zero."""
    from minigrad import plots

    figure = plots.pyplot().figure(figsize=(7, 3.6), layout="constrained")
    left, right = figure.subfigures(1, 2)
    plots.image_grid(left, [IMAGE], titles=["input: a horizontal edge"], annotate=True)
    plots.image_grid(right, [feature_map], titles=["sobel_x feature map, padding 1 (grey = 0)"],
                     signed=True, annotate=True)
    plots.save_figure(figure, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A horizontal edge found by a Sobel filter.")
    parser.add_argument("--out", default="sobel_edges.png", help="where to save the PNG")
    args = parser.parse_args(argv)
    feature_map = sobel_feature_map()
    np.testing.assert_array_equal(feature_map, convolve2d(IMAGE, SOBEL_X, padding=1))
    print("Feature map (edge detection):")
    print(feature_map.astype(int))
    try:
        save_picture(feature_map, args.out)
    except ImportError as error:  # matplotlib missing: the numbers above are the result
        print(f"sobel_edges: no PNG: {error}", file=sys.stderr)
        return
    print(f"Saved {args.out}")


if __name__ == "__main__":
    main()
