"""Max pooling: 2x2 windows with stride 2, by hand with NumPy loops, then with F.max_pool2d.

    python examples/max_pool.py

The CNN article's pooling example: each 2x2 block of a 4x4 input keeps only its largest value,
so the output is 2x2, [[6, 4], [4, 8]].

The input is a reconstruction: the article itself could not be found, so this is a 4x4 array
chosen to give the article's printed result.
"""

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

X = np.array([[1, 3, 2, 4],
              [5, 6, 1, 2],
              [3, 2, 1, 0],
              [1, 4, 8, 2]], dtype=np.float32)


def max_pool2d(image: np.ndarray, pool_size: int = 2, stride: int = 2) -> np.ndarray:
    """The article's manual max pooling: the maximum of each window, with plain loops.

    A teaching example only; minigrad's max_pool2d does not use it.
    """
    out_h = (image.shape[0] - pool_size) // stride + 1
    out_w = (image.shape[1] - pool_size) // stride + 1
    out = np.zeros((out_h, out_w), dtype=image.dtype)
    for i in range(out_h):
        for j in range(out_w):
            r, c = i * stride, j * stride
            out[i, j] = np.max(image[r:r + pool_size, c:c + pool_size])
    return out


def pooled() -> np.ndarray:
    """The same pooling from minigrad: (H, W) becomes NCHW (1, 1, H, W) and back."""
    x = mg.tensor(X).reshape(1, 1, *X.shape)
    return F.max_pool2d(x, kernel_size=2, stride=2).numpy()[0, 0]


def main() -> None:
    result = pooled()
    np.testing.assert_array_equal(result, max_pool2d(X, pool_size=2, stride=2))
    print("Input:")
    print(X)
    print("Max pooled (2x2, stride 2):")
    print(result)


if __name__ == "__main__":
    main()
