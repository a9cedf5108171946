"""Hypothesis strategies for testing ops: shapes, broadcasting, inputs off kinks, indices,
memory layouts, and convolutions big enough for the Numba backend's chunked kernels.

They *construct* valid cases rather than filter random ones, so tests stay fast and never
starve. Use them for your own Functions:

    @given(x=arrays(shapes()))
    def test_my_op(x):
        assert gradcheck(my_op, [mg.tensor(x, requires_grad=True)])

Every element of a drawn array is drawn (no background fill value: Hypothesis's default fills
most of a larger array with one repeated value, which hides transposition and reduction bugs);
arrays above `DRAWN_ELEMENTS` elements come from a drawn seed instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Arrays up to this many elements are drawn element by element (8 bytes of Hypothesis's 8 KiB
# budget each); larger ones, too big for finite differences anyway, from a drawn seed.
DRAWN_ELEMENTS = 512


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 4,
           empty: bool = False) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, small enough for element-by-element finite differences. `min_side=0`
    allows size-0 dims; `empty=True` puts at least one in (and at least one dim)."""
    if empty:
        return _with_a_zero(hnp.array_shapes(min_dims=max(1, min_dims),
                                             max_dims=max(1, max_dims), min_side=min_side,
                                             max_side=max_side))
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


@st.composite
def _with_a_zero(draw: st.DrawFn, base: st.SearchStrategy) -> tuple[int, ...]:
    shape = list(draw(base))
    shape[draw(st.integers(0, len(shape) - 1))] = 0
    return tuple(shape)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 4,
                         max_side: int = 4) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """`num_shapes` shapes that broadcast together (size-1 and missing dims included)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, max_side=max_side
    ).map(lambda result: result.input_shapes)


def matmul_shapes(max_batch_dims: int = 2, max_side: int = 4,
                  min_side: int = 1) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """Shape pairs for matmul: batched, broadcast, and 1-D operands as NumPy allows;
    `min_side=0` lets any side be 0, the inner one included (a product of zeros)."""
    return hnp.mutually_broadcastable_shapes(
        signature="(m?,n),(n,p?)->(m?,p?)", max_dims=max_batch_dims, min_side=min_side,
        max_side=max_side
    ).map(lambda result: result.input_shapes)


def _off_kinks(x: Any, kinks: Sequence[float], margin: float) -> Any:
    """Move x (a number or an array) out of the band [kink - margin, kink + margin] around
    every kink."""
    for kink in kinks:
        near = np.abs(x - kink) < margin
        x = np.where(near, kink + np.where(x >= kink, margin, -margin), x)
    return x


def _sized(draw: st.DrawFn, shape: Any) -> tuple[int, ...]:
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    return (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)


def _seeded(draw: st.DrawFn) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="array seed"))


def arrays(shape: Any, low: float = -3.0, high: float = 3.0, kinks: Sequence[float] = (),
           margin: float = 1e-2, dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Arrays with elements in [low, high], at least `margin` away from each kink; every
    element drawn (`shape` a shape or a strategy of shapes).

    Finite differences across a kink (relu or abs at 0, clamp at its bounds) measure the
    average of two slopes; keeping inputs off kinks makes the check exact.
    """
    return _arrays(shape, low, high, tuple(kinks), margin, dtype)


@st.composite
def _arrays(draw: st.DrawFn, shape: Any, low: float, high: float, kinks: tuple,
            margin: float, dtype: Any) -> np.ndarray:
    size_shape = _sized(draw, shape)
    if math.prod(size_shape) <= DRAWN_ELEMENTS:
        elements = st.floats(low, high, allow_nan=False, allow_infinity=False)
        x = draw(hnp.arrays(np.float64, size_shape, elements=elements, fill=st.nothing()))
    else:
        x = _seeded(draw).uniform(low, high, size_shape)
    if kinks:
        x = _off_kinks(x, kinks, margin)
    return np.asarray(x, dtype=np.float64).astype(dtype)


def distinct_arrays(shape: Any, spacing: float = 0.1,
                    dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Arrays whose elements all differ by at least spacing/2: no ties for max, min, sort."""
    return _distinct_arrays(shape, spacing, dtype)


@st.composite
def _distinct_arrays(draw: st.DrawFn, shape: Any, spacing: float, dtype: Any) -> np.ndarray:
    size_shape = _sized(draw, shape)
    n = math.prod(size_shape)
    if n <= DRAWN_ELEMENTS:
        order = np.array(draw(st.permutations(range(n))), dtype=np.float64)
        jitter = draw(hnp.arrays(np.float64, n, elements=st.floats(0, spacing / 2),
                                 fill=st.nothing()))
    else:
        rng = _seeded(draw)
        order, jitter = rng.permutation(n).astype(np.float64), rng.uniform(0, spacing / 2, n)
    values = (order - n / 2) * spacing + jitter
    return values.reshape(size_shape).astype(dtype)


# ------------------------------------------------------------------------------ memory layouts

LAYOUTS = ("contiguous", "transposed", "reversed", "sliced", "broadcast", "channels_last")


def layouts_for(shape: tuple[int, ...]) -> list[str]:
    """The layouts `as_layout` gives an array of `shape`, "contiguous" first."""
    ndim = len(shape)
    return ["contiguous", *(["transposed"] if ndim >= 2 else []),
            *(["reversed", "sliced"] if ndim >= 1 else []),
            *(["broadcast"] if ndim == 0 or 1 in shape else []),
            *(["channels_last"] if ndim >= 3 else [])]


def layouts(shape: tuple[int, ...]) -> st.SearchStrategy[str]:
    """A layout for an array of `shape` (see `as_layout`); shrinks to "contiguous"."""
    return st.sampled_from(layouts_for(shape))


def as_layout(x: Any, layout: str) -> Any:
    """x's values (same shape and dtype, new memory) in another memory layout, as views that
    upstream ops hand to an op:

    - "contiguous": a C-contiguous copy;
    - "transposed": Fortran order, the transposed-back view of a copy of x.T (2+ dims);
    - "reversed": negative strides in every dim, a reversed copy viewed [::-1] (1+ dims);
    - "sliced": every other element of a twice-as-long last dim (1+ dims);
    - "broadcast": stride 0 on every size-1 dim, read-only (as expand() gives; 0-d, or a
      size-1 dim);
    - "channels_last": (N, C, ...) values in (N, ..., C) memory, what convolutions return
      (3+ dims).

    Works on NumPy arrays, and on CuPy's but for the read-only flag.
    """
    if layout not in layouts_for(tuple(x.shape)):
        raise ValueError(f"as_layout: no {layout!r} layout for shape {tuple(x.shape)}; "
                         f"possible: {layouts_for(tuple(x.shape))}")
    ndim = x.ndim
    if layout == "contiguous":
        return x.copy()
    if layout == "transposed":
        return x.T.copy().T
    if layout == "reversed":
        backwards = (slice(None, None, -1),) * ndim
        return x[backwards].copy()[backwards]
    if layout == "sliced":
        return x.repeat(2, axis=-1)[..., ::2]
    if layout == "broadcast":
        squeezed = x.reshape(tuple(n for n in x.shape if n != 1)).copy()
        view = squeezed[tuple(None if n == 1 else slice(None) for n in x.shape) + (Ellipsis,)]
        return np.broadcast_to(view, view.shape) if isinstance(view, np.ndarray) else view
    last = (0, *range(2, ndim), 1)
    return x.transpose(last).copy().transpose(tuple(int(d) for d in np.argsort(last)))


# ------------------------------------------------------------------------------------ indexing


def indices(shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    """Index expressions for an array of `shape`: basic (ints, slices with steps, None,
    Ellipsis), integer arrays (repeats included), boolean masks, and basic and advanced
    indices mixed (`mixed_indices`)."""
    strategies = [hnp.basic_indices(shape, min_dims=0, allow_newaxis=True,
                                    allow_ellipsis=True)]
    if len(shape) >= 1 and shape[0] >= 1:
        strategies.append(hnp.integer_array_indices(shape, result_shape=shapes(1, 2, 1, 4)))
        strategies.append(hnp.arrays(np.bool_, shape, elements=st.booleans(),
                                     fill=st.nothing()))
    if len(shape) >= 1:
        strategies.append(mixed_indices(shape, ints_apart=True))
    return st.one_of(strategies)


def _slices(n: int) -> st.SearchStrategy[slice]:
    """Slices with a positive step (PyTorch has no negative ones), bounds in or out of range."""
    bound = st.none() | st.integers(-n - 1, n + 1)
    return st.builds(slice, bound, bound, st.none() | st.integers(1, 3))


@st.composite
def mixed_indices(draw: st.DrawFn, shape: tuple[int, ...],
                  ints_apart: bool = False) -> tuple:
    """Basic and advanced indices in one index, as PyTorch takes them: `x[:, [0, 2]]`,
    `x[mask, 1:]` with a partial boolean mask over some consecutive dims, `x[1:, [[0], [2]],
    [1, 0]]` with integer arrays that broadcast together (negative and repeated entries), beside
    slices, ints, None and a trailing Ellipsis.

    NumPy counts an int as an advanced index and PyTorch does not, so they place the advanced
    result dims differently when an int stands apart from the advanced ones (`x[0, :, [1, 2]]`
    is (2, 3) in NumPy, (3, 2) in PyTorch and minigrad, for x of shape (2, 3, 4)). Such ints
    are drawn only with `ints_apart=True`; otherwise NumPy and PyTorch agree on every index
    drawn.
    """
    ndim = len(shape)
    indexable = [d for d in range(ndim) if shape[d] >= 1]
    kind = draw(st.sampled_from(["mask", "arrays"] if indexable else ["mask"]))
    advanced: dict[int, Any] = {}  # first dim -> index entry
    covered: set[int] = set()
    if kind == "mask":
        width = draw(st.integers(1, ndim))
        start = draw(st.integers(0, ndim - width))
        advanced[start] = draw(hnp.arrays(np.bool_, shape[start:start + width],
                                          elements=st.booleans(), fill=st.nothing()))
        covered = set(range(start, start + width))
    else:
        dims = sorted(draw(st.lists(st.sampled_from(indexable), min_size=1,
                                    max_size=len(indexable), unique=True)))
        array_shapes = draw(hnp.mutually_broadcastable_shapes(
            num_shapes=len(dims), min_dims=1, max_dims=2, max_side=3)).input_shapes
        # half the time the first and last elements of the result are one element of x
        # (each array's last entry is its first), so that its gradient must add up
        repeat = draw(st.booleans())
        for d, array_shape in zip(dims, array_shapes):
            entry = draw(hnp.arrays(np.int64, array_shape, fill=st.nothing(),
                                    elements=st.integers(-shape[d], shape[d] - 1)))
            if repeat:
                entry.flat[-1] = entry.flat[0]
            advanced[d] = entry
        covered = set(dims)

    entries: list[Any] = []
    for d in range(ndim):
        if d in advanced:
            entries.append(advanced[d])
        elif d not in covered:
            choices = [_slices(shape[d])]
            if shape[d] >= 1:
                choices.append(st.integers(-shape[d], shape[d] - 1))
            entries.append(draw(st.one_of(choices)))
        if draw(st.integers(0, 5)) == 0:
            entries.append(None)
    if not ints_apart and _ints_stand_apart(entries):
        entries = [slice(None) if _is_int(e) else e for e in entries]
    # trailing whole dims are often left out, or written as an Ellipsis
    while (entries and isinstance(entries[-1], slice) and entries[-1] == slice(None)
           and draw(st.booleans())):
        entries.pop()
    if draw(st.booleans()):
        entries.append(Ellipsis)
    return tuple(entries)


def _is_int(entry: Any) -> bool:
    return isinstance(entry, (int, np.integer)) and not isinstance(entry, bool)


def _ints_stand_apart(entries: list) -> bool:
    """Whether NumPy (ints counted as advanced) and PyTorch (ints taken out first) disagree on
    whether the advanced indices are next to each other, and so on where their dims go."""
    def adjacent(positions: list[int]) -> bool:
        return not positions or positions[-1] - positions[0] + 1 == len(positions)

    numpy_view = [i for i, e in enumerate(entries) if isinstance(e, np.ndarray) or _is_int(e)]
    without_ints = [e for e in entries if not _is_int(e)]
    torch_view = [i for i, e in enumerate(without_ints) if isinstance(e, np.ndarray)]
    return adjacent(numpy_view) != adjacent(torch_view)


# -------------------------------------------------------------------------- convolution, pooling


@st.composite
def conv2d_cases(draw: st.DrawFn, max_batch: int = 2, max_channels: int = 4,
                 max_size: int = 7, min_batch: int = 1) -> dict:
    """A valid conv2d problem: shapes of x (N, C, H, W) and weight (K, C/groups, kH, kW), and
    stride, padding, dilation, groups (depthwise included). Built so the dilated kernel always
    fits the padded input; `min_batch=0` allows an empty batch."""
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
    return {"x": (draw(st.integers(min_batch, max_batch)), c, h, w),
            "weight": (k, c // groups, *kernel),
            "stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


@st.composite
def pool2d_cases(draw: st.DrawFn, max_batch: int = 2, max_channels: int = 3,
                 max_size: int = 7, min_batch: int = 1) -> dict:
    """A valid pooling problem: x's shape, kernel_size, stride and padding (at most half the
    kernel, as PyTorch requires), with the kernel fitting the padded input; `min_batch=0`
    allows an empty batch."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, kernel[d] // 2)) for d in range(2))
    h, w = (draw(st.integers(max(1, kernel[d] - 2 * padding[d]), max_size)) for d in range(2))
    shape = (draw(st.integers(min_batch, max_batch)), draw(st.integers(1, max_channels)), h, w)
    return {"x": shape, "kernel_size": kernel, "stride": stride, "padding": padding}


def _per_chunk_range(budget: int, unit: int, per_chunk: int) -> tuple[int, int]:
    """The (low, high) counts of `unit`-byte items per image for which `budget // (count *
    unit) == per_chunk`: a chunk of `budget` bytes then holds exactly `per_chunk` images."""
    return budget // ((per_chunk + 1) * unit) + 1, budget // (per_chunk * unit)


def _sides(draw: st.DrawFn, low: int, high: int) -> tuple[int, int]:
    """(a, b), either way round, with low <= a * b <= high and neither side more than about
    four times the square root of `high` (an image, not a line of pixels)."""
    longest = min(high - low + 1, math.isqrt(high))  # a * (high // a) > high - a >= low - 1
    a = draw(st.integers(max(1, longest // 4), longest))
    return (a, high // a) if draw(st.booleans()) else (high // a, a)


@st.composite
def chunked_conv2d_cases(draw: st.DrawFn, itemsize: int = 8, chunk_bytes: int = 4 << 20,
                         winograd_chunk_bytes: int = 1 << 20,
                         winograd: bool | None = None) -> dict:
    """conv2d problems (as `conv2d_cases`) big enough that the Numba backend cuts the batch into
    2 to 4 chunks of 1 to 3 images: im2col columns (N*OH*OW rows of kH*kW*C/groups elements of
    `itemsize` bytes) over `chunk_bytes` (numba_backend.CHUNK_BYTES), or, for the 3x3 stride-1
    convolutions with 8+ channels that run as Winograd (`winograd=True`; None draws either),
    transformed tiles (16 (C + K) per 2x2 output block) over `winograd_chunk_bytes`
    (winograd.CHUNK_BYTES). The dict adds "chunks", the forward's chunk count on one thread.

    Sides reach hundreds of pixels: far too big for finite differences, meant for comparisons
    with PyTorch or the NumPy reference, a few examples in `ci`, more under `thorough`."""
    per_chunk = draw(st.integers(1, 3), label="images per chunk")
    chunks = draw(st.integers(2, 4), label="chunks")
    n = draw(st.integers(per_chunk * (chunks - 1) + 1, per_chunk * chunks))
    if winograd is None:
        winograd = draw(st.booleans())
    if winograd:
        c, k = draw(st.integers(8, 12)), draw(st.integers(8, 12))
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        low, high = _per_chunk_range(winograd_chunk_bytes, 16 * (c + k) * itemsize, per_chunk)
        blocks = _sides(draw, low, high)  # 2x2 output blocks down and across
        out = [2 * b - draw(st.integers(0, 1)) for b in blocks]  # odd and even outputs
        h, w = (out[d] + 2 - 2 * padding[d] for d in range(2))
        return {"x": (n, c, h, w), "weight": (k, c, 3, 3), "stride": (1, 1),
                "padding": padding, "dilation": (1, 1), "groups": 1, "chunks": chunks}
    groups = draw(st.integers(1, 2))
    cg = draw(st.integers(4, 8))
    kernel = (draw(st.integers(2, 3)), draw(st.integers(2, 3)))
    stride = tuple(draw(st.sampled_from([(1, 1), (1, 2), (2, 1)])))
    dilation = tuple(draw(st.sampled_from([(1, 1), (2, 1), (1, 2)])))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    row_bytes = kernel[0] * kernel[1] * cg * itemsize
    low, high = _per_chunk_range(chunk_bytes, row_bytes, per_chunk)
    oh, ow = _sides(draw, low, high)
    # the input the output size needs, plus up to stride - 1 rows that floor() drops
    h, w = ((o - 1) * s + d * (kk - 1) + 1 - 2 * p + draw(st.integers(0, s - 1))
            for o, s, d, kk, p in zip((oh, ow), stride, dilation, kernel, padding))
    # K < 8 when ungrouped: never Winograd's
    k = groups * draw(st.integers(1, 4 if groups == 1 else 8))
    return {"x": (n, groups * cg, h, w), "weight": (k, cg, *kernel), "stride": stride,
            "padding": padding, "dilation": dilation, "groups": groups, "chunks": chunks}
