"""PyTorch's choices at ties and kinks, compared on the points themselves.

The op tables keep their inputs off kinks and ties, where finite differences are exact, and
reuse those inputs for the PyTorch comparison; so the points where PyTorch has to choose (relu
and abs at 0, clamp at its bounds, maximum/minimum/amax/max(dim) and max pooling at ties, pow
at base 0 and at negative bases) are never compared there. Here they are, and only they: the
inputs are integer-valued floats from a small range (ties are frequent) with the kink or tie
placed explicitly, so every example hits one. Each comparison runs forward and backward with a
random upstream gradient (no finite differences), in float64 and float32, on every backend,
and compares values, indices (exactly) and every input gradient, NaN and inf where they are
PyTorch's result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from op_table import DTYPES, SEEDS

import minigrad as mg
import minigrad.nn.functional as F

TOLERANCE = {"float64": {"rtol": 1e-12, "atol": 1e-12},
             "float32": {"rtol": 1e-6, "atol": 1e-6}}

# The examples are small already, and a failure names its inputs and every element that
# differs; shrinking one took 10-45 s per failing test here, so a failure reports the first
# example that fails and costs no more time than a pass.
NO_SHRINKING = settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])


# ----------------------------------------------------------------------------- the comparison


def compare(torch: Any, fn: Callable[..., Any], libraries: tuple[Any, Any],
            inputs: Sequence[np.ndarray], seed: int, backend: str) -> None:
    """`fn(lib, *tensors)` forward and backward with minigrad on `backend` and with PyTorch, on
    `inputs` cast to float64 and to float32, one random upstream gradient (from `seed`) for
    both. `fn` returns a tensor, or (values, indices) as max/min along a dim do: then the
    indices must be equal and the gradient flows back from the values. Every mismatch is
    reported, not just the first: the value, the indices and each input's gradient, in each
    dtype, with the elements that differ."""
    problems = []
    for dtype in DTYPES:
        problems += _differences(torch, fn, libraries, inputs, seed, backend, dtype)
    assert not problems, (f"minigrad ({backend}) differs from PyTorch on inputs\n"
                          + "\n".join(map(repr, inputs)) + "\n" + "\n".join(problems))


def _differences(torch: Any, fn: Callable[..., Any], libraries: tuple[Any, Any],
                 inputs: Sequence[np.ndarray], seed: int, backend: str,
                 dtype: str) -> list[str]:
    inputs = [np.asarray(x, dtype=dtype) for x in inputs]
    ours_lib, theirs_lib = libraries
    theirs = [torch.tensor(x, requires_grad=True) for x in inputs]
    expected = fn(theirs_lib, *theirs)
    expected_values = expected[0] if isinstance(expected, tuple) else expected
    upstream = np.random.default_rng(seed).standard_normal(tuple(expected_values.shape))
    upstream = upstream.astype(dtype)
    expected_values.backward(torch.tensor(upstream))
    with mg.backend(backend):
        ours = [mg.tensor(x, requires_grad=True) for x in inputs]
        out = fn(ours_lib, *ours)
        values = out[0] if isinstance(out, tuple) else out
        values.backward(upstream)

    problems = [_mismatch("value", values.numpy(), expected_values.detach().numpy(), dtype)]
    if isinstance(expected, tuple):
        problems.append(_mismatch("indices", out[1].numpy(), expected[1].numpy(), "int64"))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a.grad is None:
            problems.append(f"gradient of input {i}: None, PyTorch's {b.grad.numpy()}")
        else:
            problems.append(_mismatch(f"gradient of input {i}", a.grad.numpy(),
                                      b.grad.numpy(), dtype))
    return [f"{dtype} {p}" for p in problems if p]


def _mismatch(what: str, ours: np.ndarray, theirs: np.ndarray, dtype: str) -> str:
    """'' where `ours` equals PyTorch's `theirs` in shape, dtype and values (within dtype's
    tolerance; exactly for indices; NaN equal to NaN, inf to the same inf), else what differs."""
    if ours.shape != theirs.shape or ours.dtype != theirs.dtype:
        return f"{what}: {ours.dtype}{ours.shape}, PyTorch's {theirs.dtype}{theirs.shape}"
    if dtype == "int64":
        wrong = ours != theirs
    else:
        wrong = ~np.isclose(ours, theirs, **TOLERANCE[dtype], equal_nan=True)
    if not wrong.any():
        return ""
    where = np.argwhere(wrong)[:8]
    shown = ", ".join(f"{tuple(int(i) for i in at)}: {ours[tuple(at)]!r} vs "
                      f"{theirs[tuple(at)]!r}" for at in where)
    return f"{what}: {int(wrong.sum())} of {wrong.size} differ (ours vs PyTorch's) at {shown}"


# ---------------------------------------------------------------------------------- the inputs


def small_shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1,
                 max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


@st.composite
def placed(draw, shape: tuple[int, ...], values: Sequence[float],
           at: Sequence[float] = ()) -> np.ndarray:
    """A float64 array of `shape` drawn from `values` (a small set: ties are frequent), with
    every value of `at` placed at a drawn position of its own (as many as fit)."""
    x = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from(list(values)))).copy()
    positions = draw(st.permutations(range(x.size)))
    flat = x.reshape(-1)
    for position, value in zip(positions, at):
        flat[position] = value
    return x


def tie(draw: Callable[..., Any], a: np.ndarray, b: np.ndarray) -> None:
    """Make `b` equal to `a` at one element of their broadcast result (in place), drawn with
    `draw` (a `data.draw`)."""
    shape = np.broadcast_shapes(a.shape, b.shape)
    if not shape or math.prod(shape) == 0:
        b[...] = a
        return
    at = [draw(st.integers(0, n - 1), label="tie at") for n in shape]

    def index(x):
        own = at[len(shape) - x.ndim:]
        return tuple(i if n > 1 else 0 for i, n in zip(own, x.shape))

    b[index(b)] = a[index(a)]


INTS = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
FEW = [-1.0, 0.0, 1.0]  # so that maxima tie often


# ---------------------------------------------------------------------------- relu and abs at 0


@pytest.mark.parametrize("op", ["relu", "abs"])
@NO_SHRINKING
@given(data=st.data())
def test_relu_and_abs_at_zero_and_minus_zero(torch, backend, op, data):
    """relu and abs pass no gradient at 0 nor at -0.0 (PyTorch: relu's mask is out > 0, abs's
    derivative is sgn(x) = 0)."""
    shape = data.draw(small_shapes(min_side=2), label="shape")
    x = data.draw(placed(shape, [-2.0, -1.0, -0.0, 0.0, 1.0, 2.0], at=(0.0, -0.0)), label="x")
    fn = {"relu": lambda lib, t: lib.relu(t), "abs": lambda lib, t: t.abs()}[op]
    compare(torch, fn, (mg, torch), [x], data.draw(SEEDS, label="seed"), backend)


# ------------------------------------------------------------------------------ clamp at bounds

BOUNDS = ["min", "max", "both", "crossed"]  # crossed: min > max, where the result is max


@st.composite
def scalar_bounds(draw, bounds: str) -> tuple[float | None, float | None]:
    low = draw(st.sampled_from(INTS[:-1])) if bounds != "max" else None
    high = draw(st.sampled_from(INTS[1:])) if bounds != "min" else None
    if bounds == "both":
        high = draw(st.sampled_from([v for v in INTS if v >= low]))  # min == max included
    if bounds == "crossed":
        high = draw(st.sampled_from([v for v in INTS if v < low] or [low - 1]))
    return low, high


@pytest.mark.parametrize("bounds", BOUNDS)
@NO_SHRINKING
@given(data=st.data())
def test_clamp_at_scalar_bounds(torch, backend, bounds, data):
    """The gradient passes where min <= x <= max, both bounds included; with min > max every
    element is max and nothing passes."""
    low, high = data.draw(scalar_bounds(bounds), label="min, max")
    shape = data.draw(small_shapes(), label="shape")
    at = [v for v in (low, high) if v is not None]
    x = data.draw(placed(shape, INTS, at=at), label="x")

    def fn(lib, t):
        return t.clamp(min=low, max=high)

    compare(torch, fn, (mg, torch), [x], data.draw(SEEDS, label="seed"), backend)


@pytest.mark.parametrize("bounds", BOUNDS)
@NO_SHRINKING
@given(data=st.data())
def test_clamp_at_tensor_bounds(torch, backend, bounds, data):
    """Tensor bounds, gradients to x and to the bounds. PyTorch: x's gradient passes where
    min <= x <= max (ties included, all of it); min's where x < min < max; max's where x > max
    or max < min. Ties between x and a bound are placed in every example."""
    shape = data.draw(small_shapes(), label="shape")
    x = data.draw(placed(shape, INTS), label="x")
    low = data.draw(placed(shape, INTS), label="min") if bounds != "max" else None
    high = data.draw(placed(shape, INTS), label="max") if bounds != "min" else None
    if bounds == "crossed":
        high = low - data.draw(placed(shape, [1.0, 2.0]), label="min - max")
    for bound in (low, high):
        if bound is not None:
            tie(data.draw, bound, x)  # x equal to each bound somewhere
    names = [name for name, b in (("min", low), ("max", high)) if b is not None]

    def fn(lib, t, *bound_tensors):
        return t.clamp(**dict(zip(names, bound_tensors)))

    inputs = [x] + [b for b in (low, high) if b is not None]
    compare(torch, fn, (mg, torch), inputs, data.draw(SEEDS, label="seed"), backend)


# --------------------------------------------------------------------- maximum and minimum ties


@pytest.mark.parametrize("op", ["maximum", "minimum"])
@NO_SHRINKING
@given(data=st.data())
def test_maximum_and_minimum_split_ties_evenly(torch, backend, op, data):
    """Where the two inputs are equal each gets half the gradient (broadcast inputs sum their
    halves); a tie is placed in every example."""
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
                       label="shapes").input_shapes
    a = data.draw(placed(shapes[0], FEW), label="a")
    b = data.draw(placed(shapes[1], FEW), label="b")
    tie(data.draw, a, b)

    def fn(lib, s, t):
        return getattr(lib, op)(s, t)

    compare(torch, fn, (mg, torch), [a, b], data.draw(SEEDS, label="seed"), backend)


# ------------------------------------------------------------------------ amax, amin, max, min


@st.composite
def reduced_dims(draw, ndim: int) -> tuple[int, ...]:
    """A set of dims to reduce, () meaning all of them (as PyTorch's amax reads it)."""
    dims = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(d - ndim if draw(st.booleans()) else d for d in dims)


@pytest.mark.parametrize("op", ["amax", "amin", "max()", "min()"])
@NO_SHRINKING
@given(data=st.data())
def test_amax_and_amin_split_ties_evenly(torch, backend, op, data):
    """amax, amin and the full max()/min() give each of k tied extremes 1/k of the gradient.
    The extreme is placed twice in every example, so the full reduction always ties."""
    shape = data.draw(small_shapes(min_side=2), label="shape")
    extreme = 1.0 if op in ("amax", "max()") else -1.0
    x = data.draw(placed(shape, FEW, at=(extreme, extreme)), label="x")
    dims = data.draw(reduced_dims(len(shape)), label="dims")
    keepdim = data.draw(st.booleans(), label="keepdim")

    def fn(lib, t):
        if op.endswith("()"):
            return getattr(t, op[:-2])()
        return getattr(lib, op)(t, dim=dims, keepdim=keepdim)

    compare(torch, fn, (mg, torch), [x], data.draw(SEEDS, label="seed"), backend)


@pytest.mark.parametrize("op", ["max", "min"])
@NO_SHRINKING
@given(data=st.data())
def test_max_and_min_along_a_dim_pick_the_first_tie(torch, backend, op, data):
    """max/min(dim) return (values, indices); at ties PyTorch's CPU kernels return the first
    index, and the whole gradient goes to that element. A tie of the extreme is placed along
    the reduced dim in every example (on the first line through it)."""
    shape = data.draw(small_shapes(min_side=2), label="shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = data.draw(placed(shape, FEW), label="x")
    extreme = 1.0 if op == "max" else -1.0
    line = [0] * len(shape)
    line[dim] = slice(None)
    x[tuple(line)][data.draw(st.permutations(range(shape[dim])), label="tie")[:2]] = extreme
    keepdim = data.draw(st.booleans(), label="keepdim")

    def fn(lib, t):
        return getattr(t, op)(dim=dim, keepdim=keepdim)

    compare(torch, fn, (mg, torch), [x], data.draw(SEEDS, label="seed"), backend)


# ---------------------------------------------------------------------------- max pooling ties

WINDOWS = ["overlapping", "disjoint"]  # stride < kernel; stride >= kernel


@st.composite
def pool_geometry(draw, windows: str) -> dict[str, Any]:
    """x's shape, kernel_size, stride and padding (at most half the kernel) with the windows
    `windows` along both axes. Kernels of 2 or 3 and sides of 2 or more, and the first window
    (top left) holds at least 2 pixels of x, so that it can hold a tie: a kernel of 2 with a
    padding of 1 along both axes would leave it 1, so that draw keeps the padding on one axis."""
    kernel = (draw(st.integers(2, 3)), draw(st.integers(2, 3)))
    stride = tuple(draw({"overlapping": st.integers(1, k - 1),
                         "disjoint": st.integers(k, k + 2)}[windows]) for k in kernel)
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    if all(k - p < 2 for k, p in zip(kernel, padding)):
        padding = (0, padding[1])
    size = tuple(draw(st.integers(max(2, k - 2 * p), 6)) for k, p in zip(kernel, padding))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *size)
    return {"x": shape, "kernel_size": kernel, "stride": stride, "padding": padding}


def first_window(params: dict[str, Any]) -> tuple[slice, slice]:
    """The part of the first pooling window (top left) inside x: 2 pixels or more."""
    (kh, kw), (ph, pw) = params["kernel_size"], params["padding"]
    return slice(0, kh - ph), slice(0, kw - pw)


@pytest.mark.parametrize("windows", WINDOWS)
@NO_SHRINKING
@given(data=st.data())
def test_max_pool_ties_pick_the_first_maximum(torch, backend, windows, data):
    """Where a window's maximum ties, the gradient goes to the first one in the window's
    row-major order; overlapping windows add up their gradients. The first window always
    holds a tie (its whole part inside x is set to one value)."""
    params = data.draw(pool_geometry(windows), label="geometry")
    shape = params.pop("x")
    x = data.draw(placed(shape, FEW), label="x")
    rows, cols = first_window(params)
    x[0, 0, rows, cols] = 1.0

    def fn(F, t):
        return F.max_pool2d(t, **params)

    compare(torch, fn, (F, torch.nn.functional), [x], data.draw(SEEDS, label="seed"),
            backend)


@pytest.mark.parametrize("windows", WINDOWS)
@NO_SHRINKING
@given(data=st.data())
def test_relu_then_max_pool_routes_the_gradient_like_pytorch(torch, backend, windows,
                                                             data):
    """max_pool2d(relu(x)): relu turns every non-positive value into a 0, so windows without a
    positive value are all ties. The gradient that reaches relu's output is observed through
    a zero tensor added to it (a probe, the second input): it must go to the same element
    as in PyTorch, and x's gradient must match too. The first window is all non-positive."""
    params = data.draw(pool_geometry(windows), label="geometry")
    shape = params.pop("x")
    x = data.draw(placed(shape, [-2.0, -1.0, -0.0, 0.0, 1.0]), label="x")
    rows, cols = first_window(params)
    x[0, 0, rows, cols] = np.minimum(x[0, 0, rows, cols], 0.0)
    probe = np.zeros(shape)

    def fn(F, t, zero):
        return F.max_pool2d(F.relu(t) + zero, **params)

    compare(torch, fn, (F, torch.nn.functional), [x, probe],
            data.draw(SEEDS, label="seed"), backend)


# ---------------------------------------------------------------------- pow at 0 and below 0

# 0 and negative integers (where only integral exponents give a real power), and some others
BASES = np.array([[0.0, -1.0, -2.0, 0.0], [-3.0, 0.0, 1.0, 2.0]])
EXPONENTS = [0.0, 0, 1.0, 2, 3.0, -1, -2.0, 0.5, 1.5, -0.5, -1.5]


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("exponent", EXPONENTS, ids=repr)
def test_pow_with_a_scalar_exponent_at_zero_and_negative_bases(torch, backend, exponent):
    """x ** e at x = 0: 1 for e = 0 with gradient 0 (PyTorch masks e == 0), inf for e < 0 with
    gradient -inf, 0 for e > 0 with gradient e * 0 ** (e - 1) (inf for 0 < e < 1); at x < 0,
    real powers and gradients for integral e, NaN for fractional e."""
    def fn(lib, t):
        return t ** exponent

    compare(torch, fn, (mg, torch), [BASES], 0, backend)


# bases 0, -1, -2, -3, 1, 2 (rows) against every exponent (columns), as two same-shaped tensors
PAIRS = np.meshgrid([0.0, -1.0, -2.0, -3.0, 1.0, 2.0],
                    [0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, 1.5, -0.5, -1.5], indexing="ij")


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_pow_of_two_tensors_at_zero_and_negative_bases(torch, backend):
    """base ** exponent, both tensors: values and both gradients as PyTorch. PyTorch: the
    base's gradient is 0 where the exponent is 0 (also at base 0), the exponent's gradient
    is base ** e * log(base), taken as 0 where base == 0 and e >= 0 (so -inf at base 0 with
    e < 0, NaN at negative bases)."""
    def fn(lib, base, exponent):
        return base ** exponent

    compare(torch, fn, (mg, torch), list(PAIRS), 1, backend)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("base", [0.0, -2.0, 2.0])
def test_pow_of_a_scalar_base_at_zero_and_below(torch, backend, base):
    """number ** tensor: the exponent's gradient is base ** e * log(base), taken as 0 where
    base == 0 and e >= 0 (so -inf for e < 0), NaN for a negative base (as PyTorch)."""
    exponents = PAIRS[1][0].reshape(2, 5)

    def fn(lib, exponent):
        return base ** exponent

    compare(torch, fn, (mg, torch), [exponents], 2, backend)
