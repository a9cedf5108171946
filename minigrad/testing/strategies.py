"""Hypothesis strategies for testing ops: shapes, broadcasting, inputs off kinks, indices.

They *construct* valid cases rather than filter random ones, so tests stay fast and never
starve. Use them for your own Functions:

    @given(x=arrays(shapes()))
    def test_my_op(x):
        assert gradcheck(my_op, [mg.tensor(x, requires_grad=True)])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1,
           max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, small enough for element-by-element finite differences."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 4,
                         max_side: int = 4) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """`num_shapes` shapes that broadcast together (size-1 and missing dims included)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, max_side=max_side
    ).map(lambda result: result.input_shapes)


def matmul_shapes(max_batch_dims: int = 2,
                  max_side: int = 4) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """Shape pairs for matmul: batched, broadcast, and 1-D operands as NumPy allows."""
    return hnp.mutually_broadcastable_shapes(
        signature="(m?,n),(n,p?)->(m?,p?)", max_dims=max_batch_dims, max_side=max_side
    ).map(lambda result: result.input_shapes)


def _off_kinks(x: float, kinks: Sequence[float], margin: float) -> float:
    """Move x out of the band [kink - margin, kink + margin] around every kink."""
    for kink in kinks:
        if abs(x - kink) < margin:
            x = kink + (margin if x >= kink else -margin)
    return x


def arrays(shape: Any, low: float = -3.0, high: float = 3.0, kinks: Sequence[float] = (),
           margin: float = 1e-2, dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Arrays with elements in [low, high], at least `margin` away from each kink.

    Finite differences across a kink (relu or abs at 0, clamp at its bounds) measure the
    average of two slopes; keeping inputs off kinks makes the check exact.
    """
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kinks:
        elements = elements.map(lambda x: _off_kinks(x, kinks, margin))
    return hnp.arrays(np.float64, shape, elements=elements).map(lambda a: a.astype(dtype))


def distinct_arrays(shape: Any, spacing: float = 0.1,
                    dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Arrays whose elements all differ by at least spacing/2: no ties for max, min, sort."""

    def build(draw: st.DrawFn) -> np.ndarray:
        size_shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
        n = int(np.prod(size_shape))
        order = draw(st.permutations(range(n)))
        jitter = draw(hnp.arrays(np.float64, n, elements=st.floats(0, spacing / 2)))
        values = (np.array(order, dtype=np.float64) - n / 2) * spacing + jitter
        return values.reshape(size_shape).astype(dtype)

    return st.composite(build)()


def indices(shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    """Index expressions for an array of `shape`: basic (ints, slices with steps, None,
    Ellipsis), integer arrays (repeats included) and boolean masks."""
    strategies = [hnp.basic_indices(shape, min_dims=0, allow_newaxis=True,
                                    allow_ellipsis=True)]
    if len(shape) >= 1 and shape[0] >= 1:
        strategies.append(hnp.integer_array_indices(shape, result_shape=shapes(1, 2, 1, 4)))
        strategies.append(hnp.arrays(np.bool_, shape))
    return st.one_of(strategies)


@st.composite
def conv2d_cases(draw: st.DrawFn, max_batch: int = 2, max_channels: int = 4,
                 max_size: int = 7) -> dict:
    """A valid conv2d problem: shapes of x (N, C, H, W) and weight (K, C/groups, kH, kW), and
    stride, padding, dilation, groups (depthwise included). Built so the dilated kernel always
    fits the padded input."""
    groups = draw(st.integers(1, max_channels))
    c = groups * draw(st.integers(1, max(1, max_channels // groups)))
    k = groups * draw(st.integers(1, max(1, max_channels // groups)))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # the smallest input the dilated kernel fits in, once padded
    low = [max(1, dilation[d] * (kernel[d] - 1) + 1 - 2 * padding[d]) for d in range(2)]
    h, w = (draw(st.integers(low[d], max(low[d], max_size))) for d in range(2))
    return {"x": (draw(st.integers(1, max_batch)), c, h, w), "weight": (k, c // groups, *kernel),
            "stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


@st.composite
def pool2d_cases(draw: st.DrawFn, max_batch: int = 2, max_channels: int = 3,
                 max_size: int = 7) -> dict:
    """A valid pooling problem: x's shape, kernel_size, stride and padding (at most half the
    kernel, as PyTorch requires), with the kernel fitting the padded input."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, kernel[d] // 2)) for d in range(2))
    h, w = (draw(st.integers(max(1, kernel[d] - 2 * padding[d]), max_size)) for d in range(2))
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), h, w)
    return {"x": shape, "kernel_size": kernel, "stride": stride, "padding": padding}
