"""Corners the op tables' strategies do not reach, against PyTorch, forward and backward.

- Size-0 dims: reductions over empty dims (PyTorch's 0, nan, or an error naming the op), cat
  with empty tensors, matmul with inner size 0 (zeros), conv2d and pooling on an empty batch,
  softmax beside and over an empty dim.
- Basic and advanced indices mixed (`x[:, [0, 2]]`, `x[mask, 1:]`, partial boolean masks),
  with the inputs and the upstream gradient in drawn memory layouts.
- Problems big enough for the Numba backend's chunked and threaded kernels: convolutions whose
  im2col columns or Winograd tiles span several chunks, long matmuls split by rows, pooling over
  many images. Far too big for finite differences; a few examples under the `ci` profile, a
  tenth of the profile's examples under `thorough`.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_table import DTYPES, SEEDS, assert_matches_pytorch, compare_with_pytorch, on

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.backends.geometry import chunk_ranges, output_hw
from minigrad.testing.strategies import (
    arrays,
    as_layout,
    chunked_conv2d_cases,
    conv2d_cases,
    distinct_arrays,
    layouts,
    matmul_shapes,
    mixed_indices,
    pool2d_cases,
    shapes,
)

TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 1e-5}}
# empty reductions warn (mean of nothing, var with no degrees of freedom) on both sides
quiet = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")

# The big problems: each costs tens of milliseconds, so a tenth of the profile's examples.
BIG_EXAMPLES = max(2, settings.default.max_examples // 10)


def run_both(torch, fn, inputs: list[np.ndarray], seed: int, backend: str | None = None,
             params: dict | None = None, pytorch_may_raise: bool = False):
    """fn(lib, *tensors, **params) forward and backward (the same random upstream gradient)
    in PyTorch and in minigrad: (ours, theirs, out, expected). With `pytorch_may_raise`, where
    PyTorch raises, minigrad must raise too: then ("error", theirs_error, ours_error)."""
    params = params or {}
    theirs = [torch.tensor(x, requires_grad=True) for x in inputs]
    try:
        expected = fn(torch, *theirs, **params)
    except (IndexError, RuntimeError, ValueError) as error:
        if not pytorch_may_raise:
            raise
        with on(backend), pytest.raises((IndexError, RuntimeError, ValueError)) as ours_error:
            fn(mg, *[mg.tensor(x, requires_grad=True) for x in inputs], **params)
        return "error", error, ours_error.value
    upstream = np.random.default_rng(seed).standard_normal(tuple(expected.shape))
    expected.backward(torch.tensor(upstream.astype(inputs[0].dtype)))
    with on(backend):
        ours = [mg.tensor(x, requires_grad=True) for x in inputs]
        out = fn(mg, *ours, **params)
        out.backward(upstream.astype(inputs[0].dtype))
    return ours, theirs, out, expected


# -------------------------------------------------------------------------------- size-0 dims


@st.composite
def empty_reductions(draw):
    """An array with a size-0 dim, and a dim argument: None, one dim or several, the empty
    one often among them."""
    shape = draw(shapes(min_dims=1, max_dims=3, empty=True))
    dims = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape),
                         unique=True))
    dim = draw(st.sampled_from([None, dims[0] - len(shape), tuple(dims)]))
    return np.zeros(shape), {"dim": dim, "keepdim": draw(st.booleans())}


REDUCTIONS = {
    "sum": lambda lib, a, dim, keepdim: a.sum(dim=dim, keepdim=keepdim),
    "mean": lambda lib, a, dim, keepdim: a.mean(dim=dim, keepdim=keepdim),
    "amax": lambda lib, a, dim, keepdim: a.amax() if dim is None
    else a.amax(dim=dim, keepdim=keepdim),
    "amin": lambda lib, a, dim, keepdim: lib.amin(a) if dim is None
    else lib.amin(a, dim=dim, keepdim=keepdim),
    "max_dim": lambda lib, a, dim, keepdim: a.max(dim=dim if isinstance(dim, int) else -1,
                                                  keepdim=keepdim).values,
    # var's backward over an empty dim fails (test_var_backward_over_an_empty_dim)
    "var_forward_only": lambda lib, a, dim, keepdim: a.detach().var(dim=dim, keepdim=keepdim)
    + 0 * a.sum(),
}


@quiet
@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@given(data=st.data())
def test_reductions_over_empty_dims_match_pytorch(torch, op, data):
    """sum over nothing is 0 and mean nan, as in PyTorch; amax, amin and max over an empty dim
    raise (PyTorch's IndexError or RuntimeError), minigrad's error naming the op."""
    x, params = data.draw(empty_reductions(), label="x, params")
    result = run_both(torch, REDUCTIONS[op], [x], data.draw(SEEDS, label="seed"),
                      params=params, pytorch_may_raise=True)
    if result[0] == "error":
        _, theirs, ours = result
        assert op.split("_")[0] in str(ours), (str(theirs), str(ours))
        assert str(x.shape) in str(ours) or "empty" in str(ours), str(ours)
        return
    ours, theirs, out, expected = result
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])


@quiet
def test_var_backward_over_an_empty_dim(torch):
    result = run_both(torch, lambda lib, a: a.var(dim=1), [np.zeros((2, 0, 3))], seed=0)
    assert_matches_pytorch(*result[2:], *result[:2], TOLERANCE["float64"])


@quiet
def test_logsumexp_over_an_empty_dim_is_minus_infinity(torch):
    result = run_both(torch, lambda lib, a: a.logsumexp(dim=1), [np.zeros((2, 0, 3))], seed=0)
    assert result[0] != "error"
    ours, theirs, out, expected = result
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])
    np.testing.assert_array_equal(out.numpy(), -np.inf)


@st.composite
def empty_beside(draw):
    """A shape with a size-0 dim, and another dim that is not empty."""
    shape = list(draw(shapes(min_dims=2, max_dims=4, max_side=3)))
    empty, other = draw(st.permutations(range(len(shape))))[:2]
    shape[empty] = 0
    return tuple(shape), other - draw(st.sampled_from([0, len(shape)]))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_beside_an_empty_dim_is_empty(torch, op, data):
    shape, dim = data.draw(empty_beside(), label="shape, dim")
    ours, theirs, out, expected = run_both(torch, lambda lib, a: getattr(a, op)(dim),
                                           [np.zeros(shape)], data.draw(SEEDS, label="seed"))
    assert out.shape == shape
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_over_an_empty_dim_is_empty(torch, op):
    result = run_both(torch, lambda lib, a: getattr(a, op)(1), [np.zeros((2, 0, 3))], seed=0)
    assert result[0] != "error", f"PyTorch: {result[1]}; minigrad: {result[2]}"
    ours, theirs, out, expected = result
    assert out.shape == (2, 0, 3)
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])


@st.composite
def cat_with_empty(draw):
    """2-4 parts equal except along `dim`, at least one of them 0 long there (all of them,
    sometimes); other dims may be 0 too."""
    shape = list(draw(shapes(min_dims=1, max_dims=3, min_side=0, max_side=3)))
    dim = draw(st.integers(0, len(shape) - 1))
    count = draw(st.integers(2, 4))
    empty = draw(st.integers(0, count - 1))
    parts = []
    for i in range(count):
        shape[dim] = 0 if i == empty else draw(st.integers(0, 3))
        parts.append(draw(arrays(tuple(shape))))
    return parts, dim - draw(st.sampled_from([0, len(shape)]))


@given(data=st.data())
def test_cat_with_an_empty_tensor_matches_pytorch(torch, data):
    parts, dim = data.draw(cat_with_empty(), label="parts, dim")
    ours, theirs, out, expected = run_both(torch, lambda lib, *ts: lib.cat(ts, dim=dim), parts,
                                           data.draw(SEEDS, label="seed"))
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])


def test_cat_skips_one_dim_empty_tensors_as_pytorch_does(torch):
    parts = [np.arange(6.0).reshape(2, 3), np.zeros(0), np.ones((1, 3))]
    ours, theirs, out, expected = run_both(torch, lambda lib, *ts: lib.cat(ts, dim=0), parts, 0)
    assert out.shape == (3, 3)
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])


@st.composite
def empty_inner_matmuls(draw):
    """matmul operands whose contracted dim is 0 (other sides may be 0 too)."""
    shape_a, shape_b = draw(matmul_shapes(min_side=0))
    shape_a = (*shape_a[:-1], 0)
    shape_b = (0,) if len(shape_b) == 1 else (*shape_b[:-2], 0, shape_b[-1])
    return draw(arrays(shape_a)), draw(arrays(shape_b))


@given(data=st.data())
def test_matmul_with_inner_size_0_gives_zeros(torch, backend, data):
    a, b = data.draw(empty_inner_matmuls(), label="a, b")
    ours, theirs, out, expected = run_both(torch, lambda lib, x, y: x @ y, [a, b],
                                           data.draw(SEEDS, label="seed"), backend)
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])
    assert not np.any(out.numpy())  # the empty sum, as PyTorch's zeros


@given(data=st.data())
def test_matmul_with_size_0_sides_matches_pytorch(torch, backend, data):
    shape_a, shape_b = data.draw(matmul_shapes(min_side=0), label="shapes")
    inputs = [data.draw(arrays(shape_a), label="a"), data.draw(arrays(shape_b), label="b")]
    ours, theirs, out, expected = run_both(torch, lambda lib, x, y: x @ y, inputs,
                                           data.draw(SEEDS, label="seed"), backend)
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])


def functional(lib):
    return lib.nn.functional


@given(data=st.data())
def test_conv2d_with_batch_0_matches_pytorch(torch, backend, data):
    """An empty output, an empty input gradient, zero weight and bias gradients."""
    case = data.draw(conv2d_cases(min_batch=0, max_batch=0), label="case")
    params = {key: case[key] for key in ("stride", "padding", "dilation", "groups")}
    inputs = [np.zeros(case["x"]), data.draw(arrays(case["weight"]), label="weight"),
              data.draw(arrays(case["weight"][:1]), label="bias")]
    ours, theirs, out, expected = run_both(
        torch, lambda lib, x, w, b: functional(lib).conv2d(x, w, b, **params), inputs,
        data.draw(SEEDS, label="seed"), backend)
    assert out.shape[0] == 0
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])
    assert not np.any(ours[1].grad.numpy()) and not np.any(ours[2].grad.numpy())


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@given(data=st.data())
def test_pooling_with_batch_0_matches_pytorch(torch, backend, op, data):
    case = data.draw(pool2d_cases(min_batch=0, max_batch=0), label="case")
    shape = case.pop("x")
    ours, theirs, out, expected = run_both(
        torch, lambda lib, x: getattr(functional(lib), op)(x, **case), [np.zeros(shape)],
        data.draw(SEEDS, label="seed"), backend)
    assert out.shape[0] == 0
    assert_matches_pytorch(out, expected, ours, theirs, TOLERANCE["float64"])


# ------------------------------------------------------------------ basic and advanced indexing


@st.composite
def mixed_indexing(draw):
    shape = draw(shapes(min_dims=1, max_dims=4, min_side=0, max_side=4))
    return draw(arrays(shape)), draw(mixed_indices(shape, ints_apart=True))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_mixed_basic_and_advanced_indexing_matches_pytorch(torch, backend, dtype, data):
    """Integer arrays (broadcast together, negative and repeated entries: the gradient adds
    up) or a partial boolean mask, beside slices, ints, None and Ellipsis; minigrad's inputs
    and upstream gradient also in drawn layouts."""
    x, index = data.draw(mixed_indexing(), label="x, index")
    x = x.astype(dtype)
    seed = data.draw(SEEDS, label="seed")
    layout = data.draw(layouts(x.shape), label="layout")
    compare_with_pytorch(torch, lambda lib, a: a[index], (mg, torch), [x], {}, seed,
                         TOLERANCE[dtype], backend,
                         layouts=(layout, lambda shape: data.draw(layouts(shape))))


def index_cases():
    mask_2d = np.array([[True, False, True, True], [False, False, True, False],
                        [True, True, False, False]])
    mask_1d = np.array([False, True, True])
    return {
        "slice, array": (slice(None), [0, 2]),
        "slice, repeated array": (slice(None), [2, 0, 2, -2]),
        "slice, arrays repeating a pair": (slice(1, None), np.array([[0], [2]]), [1, -3]),
        "array, slice, array (dims first)": ([0, 1, 1], slice(None), [3, -1, 0]),
        "ellipsis, array": (Ellipsis, [1, 0, 1]),
        "slice, 2-d array, slice": (slice(1, None), np.array([[0], [2]]), slice(None, 3, 2)),
        "int beside array": (1, [2, 0, 2]),
        "mask over the first two dims": (mask_2d[:2, :3],),
        "mask, slice": (mask_1d[:2], slice(1, None)),
        "slice, mask over the last two": (slice(None), mask_2d),
        "none, mask": (None, np.array([True, False])),
        "array, mask": ([1, 0], mask_2d[:, 0]),
    }


@pytest.mark.parametrize("name", sorted(index_cases()))
def test_named_mixed_indices_match_pytorch(torch, backend, name):
    index = tuple(np.array(i) if isinstance(i, list) else i for i in index_cases()[name])
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    compare_with_pytorch(torch, lambda lib, a: a[index], (mg, torch), [x], {}, 1,
                         TOLERANCE["float64"], backend,
                         layouts=("transposed", "reversed"))


@given(data=st.data())
def test_mixed_indices_are_ones_numpy_and_pytorch_agree_on(torch, data):
    """Unless `ints_apart=True`, the drawn indices give NumPy's result shape in PyTorch too."""
    shape = data.draw(shapes(min_dims=1, max_dims=4, min_side=0), label="shape")
    index = data.draw(mixed_indices(shape), label="index")
    assert np.empty(shape)[index].shape == tuple(torch.empty(shape)[index].shape)


@pytest.mark.parametrize("index", [(0, slice(None), np.array([1, 2])),
                                   (slice(None), np.array([0, 2, 2]), slice(None), -1),
                                   (1, None, np.array([[0], [2]]))],
                         ids=["int, slice, array", "slice, array, slice, int", "int, None, array"])
def test_ints_apart_from_integer_arrays_place_dims_as_pytorch_does(torch, index):
    shape = (2, 3, 4, 3) if len(index) == 4 else (2, 3, 4)
    x = np.random.default_rng(0).standard_normal(shape)
    compare_with_pytorch(torch, lambda lib, a: a[index], (mg, torch), [x], {}, 0,
                         TOLERANCE["float64"])


# ------------------------------------------------------------------- chunked and threaded kernels


# Rounding bounds per unit of the summed magnitudes (a few ulps of the sum of |terms|).
ROUNDING = {"float64": 2.0**-46, "float32": 2.0**-17}


def compare_big(torch, fn, inputs: list[np.ndarray], dtype: str, seed: int, backend: str):
    """fn(F, *tensors) forward and backward in minigrad (inputs in `dtype`) and in PyTorch
    (float64 on the same values, so the oracle adds no rounding of its own).

    Sums of up to hundreds of thousands of terms, added in another order: each result may be
    off by a few ulps of the sum of its terms' magnitudes, which PyTorch computes as the same
    function of |inputs| and |upstream gradient| (fn is linear in each input, or a max). A
    skipped, doubled or misplaced chunk is off by whole terms."""
    inputs = [x.astype(dtype) for x in inputs]

    def pytorch(values, gradient=None):
        tensors = [torch.tensor(x.astype(np.float64), requires_grad=True) for x in values]
        out = fn(torch.nn.functional, *tensors)
        grad = (np.random.default_rng(seed).standard_normal(tuple(out.shape)).astype(dtype)
                if gradient is None else gradient)
        out.backward(torch.tensor(grad.astype(np.float64)))
        return out.detach().numpy(), [t.grad.numpy() for t in tensors], grad

    expected, expected_grads, upstream = pytorch(inputs)
    bound, bound_grads, _ = pytorch([np.abs(x) for x in inputs], np.abs(upstream))
    with mg.backend(backend):
        ours = [mg.tensor(x, requires_grad=True) for x in inputs]
        out = fn(F, *ours)
        out.backward(upstream)
    assert out.shape == expected.shape and out.dtype == np.dtype(dtype)
    for what, actual, wanted, magnitude in [
            ("output", out.numpy(), expected, bound),
            *[(f"gradient of input {i}", a.grad.numpy(), g, b)
              for i, (a, g, b) in enumerate(zip(ours, expected_grads, bound_grads))]]:
        assert actual.shape == wanted.shape and actual.dtype == np.dtype(dtype), what
        error = np.abs(actual - wanted) - ROUNDING[dtype] * (np.abs(magnitude) + 1)
        assert error.max(initial=0) <= 0, (
            f"{what}: off by {np.abs(actual - wanted).max()} at "
            f"{np.unravel_index(error.argmax(), error.shape)}, beyond rounding")


@pytest.fixture(scope="module")
def chunk_bytes():
    """The Numba backend's chunk sizes: (im2col columns, Winograd tiles)."""
    from minigrad.backends import numba_backend, winograd  # numba: a dependency, no skip

    return numba_backend.CHUNK_BYTES, winograd.CHUNK_BYTES


@settings(max_examples=BIG_EXAMPLES)
@pytest.mark.parametrize("path", ["im2col", "winograd"])
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_chunked_convolutions_match_pytorch(torch, backend, chunk_bytes, path, dtype, data):
    """Batches cut into 2-4 chunks of 1-3 images (the last one short), taken by the worker
    threads: every chunk's output, input gradient and share of the weight gradient."""
    itemsize = np.dtype(dtype).itemsize
    case = data.draw(chunked_conv2d_cases(itemsize, *chunk_bytes, winograd=path == "winograd"),
                     label="case")
    n, c, h, w = case["x"]
    k, cg, kh, kw = case["weight"]
    geometry = {key: case[key] for key in ("stride", "padding", "dilation", "groups")}
    oh, ow = output_hw((h, w), (kh, kw), case["stride"], case["padding"], case["dilation"])
    if path == "winograd":
        per_chunk = chunk_bytes[1] // (-(-oh // 2) * -(-ow // 2) * 16 * (c + k) * itemsize)
    else:
        per_chunk = chunk_bytes[0] // (oh * ow * kh * kw * cg * itemsize)
    assert len(chunk_ranges(n, per_chunk, 1)) == case["chunks"] >= 2
    inputs = [data.draw(arrays(case["x"]), label="x"),
              data.draw(arrays(case["weight"]), label="weight"),
              data.draw(arrays((k,)), label="bias")]
    compare_big(torch, lambda F, x, w, b: F.conv2d(x, w, b, **geometry), inputs, dtype,
                data.draw(SEEDS, label="seed"), backend)


@st.composite
def long_matmuls(draw, flops: int):
    """(m, n) @ (n, p) with m n p >= `flops`: split by rows over the Numba backend's threads,
    its gradients too."""
    n, p = draw(st.integers(32, 160)), draw(st.integers(32, 160))
    m = -(-flops // (n * p)) + draw(st.integers(0, 64))
    return draw(arrays((m, n))), draw(arrays((n, p)))


@settings(max_examples=BIG_EXAMPLES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_long_matmuls_match_pytorch(torch, backend, dtype, data):
    from minigrad.backends.numba_backend import NumbaBackend

    a, b = data.draw(long_matmuls(NumbaBackend.SPLIT_MATMUL_FLOPS), label="a, b")
    assert a.size * b.shape[1] >= NumbaBackend.SPLIT_MATMUL_FLOPS
    compare_big(torch, lambda F, x, y: x @ y, [a, b], dtype, data.draw(SEEDS, label="seed"),
                backend)


@settings(max_examples=BIG_EXAMPLES)
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@given(data=st.data())
def test_pooling_over_many_images_matches_pytorch(torch, backend, op, data):
    """Many large images, split over the threads (max pooling on tie-free values)."""
    case = data.draw(pool2d_cases(max_batch=9, max_channels=8, max_size=48), label="case")
    shape = case.pop("x")
    x = data.draw(distinct_arrays(shape) if op == "max_pool2d" else arrays(shape), label="x")
    compare_big(torch, lambda F, t: getattr(F, op)(t, **case), [x], "float64",
                data.draw(SEEDS, label="seed"), backend)


# ----------------------------------------------------------------------- the strategies' claims


def share_of_commonest_value(strategy, examples: int = 100) -> float:
    """The mean share of an array's commonest value, over `examples` arrays of 9+ elements
    that a fixed-seed run of Hypothesis draws."""
    shares = []

    @settings(max_examples=examples, derandomize=True, database=None)
    @given(x=strategy)
    def collect(x):
        if x.size >= 9:
            shares.append(np.unique(x, return_counts=True)[1].max() / x.size)

    collect()
    return float(np.mean(shares))


def test_arrays_are_not_mostly_one_value():
    """Every element drawn: Hypothesis's default background fill left most elements of most
    arrays equal (a mean share of about 0.8), which hides transpositions and wrong reductions."""
    assert share_of_commonest_value(arrays(shapes(min_dims=2, min_side=3))) < 0.3
    assert share_of_commonest_value(arrays(shapes(min_dims=2, min_side=3), kinks=(0,))) < 0.3


@given(data=st.data())
def test_layouts_keep_values_and_change_strides(data):
    shape = data.draw(shapes(min_side=0), label="shape")
    x = data.draw(arrays(shape), label="x")
    layout = data.draw(layouts(shape), label="layout")
    view = as_layout(x, layout)
    assert view.shape == x.shape and view.dtype == x.dtype
    np.testing.assert_array_equal(view, x)
    assert not np.shares_memory(view, x)
    if layout == "reversed" and x.size > 1:
        assert any(s < 0 for s, n in zip(view.strides, shape) if n > 1)
    if layout == "broadcast":
        assert not view.flags.writeable
        assert all(s == 0 for s, n in zip(view.strides, shape) if n == 1)
    if layout in ("transposed", "sliced", "channels_last") and x.size > 1:
        moved = [n for n in shape if n > 1]
        if layout == "sliced" or len(moved) >= 2:
            assert not view.flags.c_contiguous, (layout, view.strides)
