"""Max pooling: 2x2 windows with stride 2, by hand with NumPy loops, then with F.max_pool2d.

    python examples/max_pool.py

The CNN article's pooling example, with its input: each 2x2 block of the 4x4 feature map
[[1, 3, 2, 4], [5, 6, 1, 2], [3, 2, 8, 1], [4, 1, 3, 7]] keeps only its largest value, which
halves both height and width. As the article's code does, it prints

    Original shape: (4, 4)
    After max pool: (2, 2)
    [[6. 4.]
     [4. 8.]]

(the article's comment writes the result as [[6, 4], [4, 8]]; its code prints floats, because
the output array starts as np.zeros). The pooling is computed twice, by the article's own loops
(`max_pool2d`) and by minigrad's F.max_pool2d, and the two are checked to agree.
"""

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

FEATURE_MAP = np.array([
    [1, 3, 2, 4],
    [5, 6, 1, 2],
    [3, 2, 8, 1],
    [4, 1, 3, 7],
])


def max_pool2d(feature_map: np.ndarray, pool_size: int = 2, stride: int = 2) -> np.ndarray:
    """The article's manual 2-D max pooling: the maximum of each window, with plain loops.
    A teaching example only; minigrad's max_pool2d does not use it."""
    height, width = feature_map.shape
    out_height = (height - pool_size) // stride + 1
    out_width = (width - pool_size) // stride + 1
    output = np.zeros((out_height, out_width))
    for i in range(out_height):
        for j in range(out_width):
            region = feature_map[i * stride:i * stride + pool_size,
                                 j * stride:j * stride + pool_size]
            output[i, j] = np.max(region)
    return output


def pooled() -> np.ndarray:
    """The same pooling from minigrad: (H, W) becomes NCHW (1, 1, H, W) and back, in float64
    (the dtype of the article's output)."""
    x = mg.tensor(FEATURE_MAP.astype(np.float64)).reshape(1, 1, *FEATURE_MAP.shape)
    return F.max_pool2d(x, kernel_size=2, stride=2).numpy()[0, 0]


def main() -> None:
    result = pooled()
    np.testing.assert_array_equal(result, max_pool2d(FEATURE_MAP, pool_size=2, stride=2))
    print("Original shape:", FEATURE_MAP.shape)
    print("After max pool:", result.shape)
    print(result)


if __name__ == "__main__":
    main()
