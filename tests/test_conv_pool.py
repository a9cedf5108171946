"""conv2d, pooling and linear: gradients, PyTorch, backend kernels, bad input, semantics.

Each functional case is one `OpCase` (tests/op_table.py, the harness the op tables share):
`fn(F, *tensors, **params)` written once against the functional API, so it runs with
`F=minigrad.nn.functional` and `F=torch.nn.functional`, plus a strategy that draws
`(float64 arrays, params)`. Those cases run on every backend (the `backend` fixture of
conftest.py; cupy where a GPU is present). The kernel tests below call the backends directly
(arrays in, arrays out) and compare each one with the NumPy reference, channels-last views
included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from helpers import BACKENDS, backend_under_test, raises_saying, winograd_batch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from op_table import DTYPES, OpCase, op_tests

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.backends import load, winograd
from minigrad.testing.strategies import (
    arrays,
    conv2d_cases,
    distinct_arrays,
    matmul_shapes,
    pool2d_cases,
    shapes,
)

PYTORCH_TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10},
                     "float32": {"rtol": 1e-4, "atol": 1e-4}}
KERNEL_TOLERANCE = {"float64": {"rtol": 1e-12, "atol": 1e-12},
                    "float32": {"rtol": 1e-5, "atol": 1e-5}}


# ----------------------------------------------------------------------------- input strategies


@st.composite
def conv_inputs(draw, bias: bool):
    case = draw(conv2d_cases())
    inputs = [draw(arrays(case["x"])), draw(arrays(case["weight"]))]
    if bias:
        inputs.append(draw(arrays((case["weight"][0],))))
    params = {key: case[key] for key in ("stride", "padding", "dilation", "groups")}
    return tuple(inputs), params


@st.composite
def pool_inputs(draw, distinct: bool):
    """Max pooling gets tie-free inputs, so finite differences never straddle a tie."""
    params = draw(pool2d_cases())
    shape = params.pop("x")
    return (draw(distinct_arrays(shape) if distinct else arrays(shape)),), params


@st.composite
def winograd_cases(draw) -> dict:
    """3x3 stride-1 convolutions with channels enough for the Numba backend's Winograd path
    (conv2d_cases almost never draws one): padding 0-2 per side, odd and even outputs."""
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h, w = (draw(st.integers(max(1, 3 - 2 * p), 5)) for p in padding)
    c, k = draw(st.integers(8, 9)), draw(st.integers(8, 9))
    out_hw = (h + 2 * padding[0] - 2, w + 2 * padding[1] - 2)
    n = max(draw(st.integers(1, 2)), winograd_batch(min(c, k), out_hw))
    case = {"x": (n, c, h, w), "weight": (k, c, 3, 3), "stride": (1, 1),
            "padding": padding, "dilation": (1, 1), "groups": 1}
    assert winograd.fits(case["weight"], case["stride"], case["dilation"], case["groups"],
                         (n, k, *out_hw))
    return case



@st.composite
def winograd_inputs(draw):
    case = draw(winograd_cases())
    inputs = (draw(arrays(case["x"])), draw(arrays(case["weight"])),
              draw(arrays((case["weight"][0],))))
    return inputs, {"padding": case["padding"]}


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def adaptive_inputs(draw):
    """Output 1 (global pooling), a common divisor, or a pair of divisors (None keeps a side)."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    kind = draw(st.sampled_from(["one", "common", "pair"]))
    if kind == "one":
        size = 1
    elif kind == "common":
        size = draw(st.sampled_from(sorted(set(_divisors(h)) & set(_divisors(w)))))
    else:
        size = tuple(draw(st.sampled_from([*_divisors(side), None])) for side in (h, w))
    return (draw(arrays((n, c, h, w))),), {"output_size": size}


@st.composite
def linear_inputs(draw, bias: bool):
    """x of any rank >= 1: (..., in_features), weight (out_features, in_features)."""
    batch = draw(shapes(min_dims=0, max_dims=2, max_side=3))
    features_in, features_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    inputs = [draw(arrays((*batch, features_in))), draw(arrays((features_out, features_in)))]
    if bias:
        inputs.append(draw(arrays((features_out,))))
    return tuple(inputs), {}


# ---------------------------------------------------------------------------------- the table

# fn(F, *tensors, **params), F being minigrad's or torch's functional
CASES = [
    OpCase("conv2d_bias", lambda F, x, w, b, **p: F.conv2d(x, w, b, **p), conv_inputs(bias=True)),
    OpCase("conv2d_no_bias", lambda F, x, w, **p: F.conv2d(x, w, **p), conv_inputs(bias=False)),
    # 8+ channels: a random direction (the kernel tests compare every element with the
    # reference, and the PyTorch test every element with PyTorch's)
    OpCase("conv2d_3x3_stride_1", lambda F, x, w, b, **p: F.conv2d(x, w, b, **p),
           winograd_inputs(), gradcheck_options={"fast_mode": True}),
    OpCase("max_pool2d", lambda F, x, **p: F.max_pool2d(x, **p), pool_inputs(distinct=True)),
    OpCase("avg_pool2d", lambda F, x, **p: F.avg_pool2d(x, **p), pool_inputs(distinct=False)),
    OpCase("adaptive_avg_pool2d", lambda F, x, **p: F.adaptive_avg_pool2d(x, **p),
           adaptive_inputs()),
    OpCase("linear_bias", lambda F, x, w, b: F.linear(x, w, b), linear_inputs(bias=True)),
    OpCase("linear_no_bias", lambda F, x, w: F.linear(x, w), linear_inputs(bias=False)),
]


# ---------------------------------------------------------------- gradients and the PyTorch oracle


(test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
 test_no_graph_under_no_grad) = op_tests(CASES, F, lambda torch: torch.nn.functional,
                                         PYTORCH_TOLERANCE, gradient_backend="backend")


# ------------------------------------------------------------------- kernels, backend by backend

# (backend, layout) pairs compared with the NumPy reference on plain NCHW arrays. Layouts:
# "nchw" (C-contiguous) and "channels_last" (an NCHW-shaped view of NHWC memory, what kernels
# return). numpy on nchw would be compared with itself, so it is left out.
# "cupy-on-cpu" is the CuPy backend with its CUDA kernels compiled for the CPU (cuda_on_cpu.py),
# so CI, which has no GPU, still checks every kernel's index arithmetic.
KERNEL_TARGETS = [("numba", "nchw"), ("numba", "channels_last"), ("numpy", "channels_last"),
                  ("cupy", "nchw"), ("cupy", "channels_last"),
                  ("cupy-on-cpu", "nchw"), ("cupy-on-cpu", "channels_last")]


@pytest.fixture(scope="module", params=KERNEL_TARGETS, ids=["-".join(t) for t in KERNEL_TARGETS])
def target(request):
    """(backend, layout) for the conv and pooling kernel tests."""
    name, layout = request.param
    return backend_under_test(name), layout


def put(backend, array: np.ndarray, layout: str = "nchw") -> Any:
    """`array` on the backend's device, in `layout` (4-D arrays only; others stay as they are)."""
    xp = backend.xp
    out = xp.asarray(array)
    if layout == "channels_last" and out.ndim == 4:
        out = xp.ascontiguousarray(out.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return out


def host(array: Any) -> np.ndarray:
    return array if isinstance(array, np.ndarray) else array.get()


def assert_same(actual: Any, expected: np.ndarray, dtype: str, exact: bool = False) -> None:
    actual = host(actual)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    if exact:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, **KERNEL_TOLERANCE[dtype])


def test_channels_last_inputs_really_are_views_of_nhwc_memory():
    x = put(load("numpy"), np.zeros((2, 3, 4, 5)), "channels_last")
    assert x.shape == (2, 3, 4, 5) and not x.flags.c_contiguous
    assert x.transpose(0, 2, 3, 1).flags.c_contiguous


def assert_close_to_scale(actual: Any, expected: np.ndarray, dtype: str) -> None:
    """For Numba's Winograd path: its sums run in another order than im2col's GEMMs, so float32
    results may differ by a few ulps of the largest term; the tolerance scales with it."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    tolerance = KERNEL_TOLERANCE[dtype]["atol"] * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(host(actual), expected, rtol=0, atol=tolerance)


# Any convolution, and the 3x3 stride-1 ones with 8+ channels (Numba's Winograd path), which
# conv2d_cases almost never draws.
CONV_KERNEL_CASES = {"any": (conv2d_cases(), assert_same),
                     "3x3-stride-1": (winograd_cases(), assert_close_to_scale)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cases", sorted(CONV_KERNEL_CASES))
@given(data=st.data())
def test_conv2d_kernels_match_numpy(target, cases, dtype, data):
    backend, layout = target
    strategy, check = CONV_KERNEL_CASES[cases]
    reference = load("numpy")
    case = data.draw(strategy, label="case")
    geometry = (case["stride"], case["padding"], case["dilation"], case["groups"])
    x = data.draw(arrays(case["x"], dtype=dtype), label="x")
    weight = data.draw(arrays(case["weight"], dtype=dtype), label="weight")

    expected = reference.conv2d_forward(x, weight, *geometry)
    out = backend.conv2d_forward(put(backend, x, layout), put(backend, weight), *geometry)
    check(out, expected, dtype)

    grad = data.draw(arrays(expected.shape, dtype=dtype), label="grad")
    expected_x = reference.conv2d_backward_input(grad, weight, x.shape, *geometry)
    grad_x = backend.conv2d_backward_input(put(backend, grad, layout), put(backend, weight),
                                           x.shape, *geometry)
    check(grad_x, expected_x, dtype)

    expected_w = reference.conv2d_backward_weight(grad, x, weight.shape, *geometry)
    grad_w = backend.conv2d_backward_weight(put(backend, grad, layout), put(backend, x, layout),
                                            weight.shape, *geometry)
    check(grad_w, expected_w, dtype)

    # both at once (Numba's Winograd path shares one pass over the batch), and each alone
    for wanted in [(True, True), (True, False), (False, True)]:
        both = backend.conv2d_backward(put(backend, grad, layout), put(backend, x, layout),
                                       put(backend, weight), *geometry, *wanted)
        for gradient, expected, asked in zip(both, (expected_x, expected_w), wanted):
            if asked:
                check(gradient, expected, dtype)
            else:
                assert gradient is None


@st.composite
def tie_heavy_arrays(draw, shape, dtype):
    """Few distinct values, so windows tie: every backend must pick the first maximum."""
    values = st.integers(-2, 2).map(float)
    return draw(hnp.arrays(np.float64, shape, elements=values)).astype(dtype)


@st.composite
def special_values(draw, shape, dtype):
    """Tie-heavy values with NaNs and infinities among them: the cases where the order of the
    comparisons decides the argmax."""
    values = st.sampled_from([-2.0, 0.0, 0.0, 1.0, 2.0, np.nan, np.inf, -np.inf])
    return draw(hnp.arrays(np.float64, shape, elements=values)).astype(dtype)


def check_maxpool_kernels(target, dtype, data, shape, geometry, exact_grad):
    """The backend's max-pool values, argmax and gradient against the reference's, on inputs
    full of ties, NaNs and infinities, or on distinct values."""
    backend, layout = target
    reference = load("numpy")
    x = data.draw(st.one_of(special_values(shape, dtype), tie_heavy_arrays(shape, dtype),
                            distinct_arrays(shape, dtype=dtype)), label="x")

    expected, expected_argmax = reference.maxpool2d_forward(x, *geometry)
    out, argmax = backend.maxpool2d_forward(put(backend, x, layout), *geometry)
    assert_same(out, expected, dtype, exact=True)
    assert_same(argmax, expected_argmax, dtype, exact=True)

    grad = data.draw(arrays(expected.shape, dtype=dtype), label="grad")
    expected = reference.maxpool2d_backward(grad, expected_argmax, x.shape, *geometry)
    grad_x = backend.maxpool2d_backward(put(backend, grad, layout),
                                        put(backend, expected_argmax, layout), x.shape, *geometry)
    assert_same(grad_x, expected, dtype, exact=exact_grad)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_maxpool_kernels_match_numpy(target, dtype, data):
    params = data.draw(pool2d_cases(), label="case")
    geometry = (params["kernel_size"], params["stride"], params["padding"])
    check_maxpool_kernels(target, dtype, data, params["x"], geometry, exact_grad=False)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_maxpool_2x2_kernels_match_numpy(target, dtype, data):
    """2x2 windows at stride 2 take their own kernels on Numba (the general case's draws
    rarely hit them): odd edges dropped, each input in one window at most, so the gradient
    is exact."""
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 19)),
             data.draw(st.integers(2, 9)), data.draw(st.integers(2, 9)))
    check_maxpool_kernels(target, dtype, data, shape, ((2, 2), (2, 2), (0, 0)), exact_grad=True)


@pytest.mark.parametrize("kernel", [(16, 16), (17, 16)], ids=["uint8-argmax", "int32-argmax"])
def test_maxpool_kernels_match_numpy_for_large_windows(target, kernel):
    """Argmax offsets are one byte up to 256 window entries, int32 above."""
    backend, layout = target
    reference = load("numpy")
    x = np.random.default_rng(1).standard_normal((2, 3, 20, 19))
    geometry = (kernel, (2, 3), (8, 8))

    expected, expected_argmax = reference.maxpool2d_forward(x, *geometry)
    assert expected_argmax.dtype == (np.uint8 if kernel == (16, 16) else np.int32)
    assert expected_argmax.max() >= 200  # offsets far into the window occur
    out, argmax = backend.maxpool2d_forward(put(backend, x, layout), *geometry)
    assert_same(out, expected, "float64", exact=True)
    assert_same(argmax, expected_argmax, "float64", exact=True)

    grad = np.random.default_rng(2).standard_normal(expected.shape)
    expected = reference.maxpool2d_backward(grad, expected_argmax, x.shape, *geometry)
    grad_x = backend.maxpool2d_backward(put(backend, grad, layout),
                                        put(backend, expected_argmax, layout), x.shape, *geometry)
    assert_same(grad_x, expected, "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_avgpool_kernels_match_numpy(target, dtype, data):
    backend, layout = target
    reference = load("numpy")
    params = data.draw(pool2d_cases(), label="case")
    geometry = (params["kernel_size"], params["stride"], params["padding"])
    x = data.draw(arrays(params["x"], dtype=dtype), label="x")

    expected = reference.avgpool2d_forward(x, *geometry)
    assert_same(backend.avgpool2d_forward(put(backend, x, layout), *geometry), expected, dtype)

    grad = data.draw(arrays(expected.shape, dtype=dtype), label="grad")
    expected = reference.avgpool2d_backward(grad, x.shape, *geometry)
    grad_x = backend.avgpool2d_backward(put(backend, grad, layout), x.shape, *geometry)
    assert_same(grad_x, expected, dtype)


@pytest.fixture(scope="module", params=[name for name in BACKENDS if name != "numpy"])
def matmul_backend(request):
    """Every backend's kernels but the NumPy reference's, which the test compares them with."""
    return backend_under_test(request.param)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_matmul_kernel_matches_numpy(matmul_backend, dtype, data):
    backend = matmul_backend
    shape_a, shape_b = data.draw(matmul_shapes(), label="shapes")
    a = data.draw(arrays(shape_a, dtype=dtype), label="a")
    b = data.draw(arrays(shape_b, dtype=dtype), label="b")
    expected = np.asarray(load("numpy").matmul(a, b))
    assert_same(backend.xp.asarray(backend.matmul(put(backend, a), put(backend, b))),
                expected, dtype)


# ------------------------------------------------------------------------------------ bad input


@dataclass(frozen=True)
class Zeros:
    """A tensor argument, built when the call runs (not at import)."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def make(self) -> mg.Tensor:
        return mg.zeros(*self.shape, dtype=self.dtype)


def bad(op: str, what: str, error: type, args: list, details: list[str], **kwargs: Any):
    """F.<op>(*args, **kwargs) must raise `error` naming the op and containing `details`."""
    return pytest.param(op, error, args, kwargs, details, id=f"{op}-{what}")


POOLS = ["max_pool2d", "avg_pool2d"]
X = Zeros((2, 3, 5, 5))

BAD_CALLS = [
    bad("conv2d", "channel-mismatch", ValueError, [X, Zeros((4, 2, 3, 3))],
        ["(2, 3, 5, 5)", "(4, 2, 3, 3)"]),
    bad("conv2d", "groups-not-dividing-channels", ValueError, [X, Zeros((4, 1, 3, 3))],
        ["groups=2", "(2, 3, 5, 5)", "(4, 1, 3, 3)"], groups=2),
    bad("conv2d", "kernel-larger-than-padded-input", ValueError, [X, Zeros((4, 3, 4, 6))],
        ["(2, 3, 5, 5)", "(4, 6)", "(1, 0)"], padding=(1, 0)),
    bad("conv2d", "dilated-kernel-larger-than-input", ValueError, [X, Zeros((4, 3, 3, 3))],
        ["(2, 3, 5, 5)", "(3, 3)"], dilation=3),
    bad("conv2d", "3d-input", ValueError, [Zeros((3, 5, 5)), Zeros((4, 3, 3, 3))],
        ["(3, 5, 5)"]),
    bad("conv2d", "dtype-mismatch", TypeError, [X, Zeros((4, 3, 3, 3), "float64")],
        ["float32", "float64"]),
    bad("conv2d", "bias-dtype-mismatch", TypeError,
        [X, Zeros((4, 3, 3, 3)), Zeros((4,), "float64")], ["float32", "float64"]),
    *[bad(op, "3d-input", ValueError, [Zeros((3, 5, 5)), 2], ["(3, 5, 5)"])
      for op in [*POOLS, "adaptive_avg_pool2d"]],
    *[bad(op, "padding-over-half-kernel", ValueError, [X, 3], ["(2, 2)", "(3, 3)"], padding=2)
      for op in POOLS],
    *[bad(op, "kernel-larger-than-padded-input", ValueError, [X, 8], ["(2, 3, 5, 5)", "(8, 8)"],
          padding=1) for op in POOLS],
    bad("linear", "in-features-mismatch", ValueError, [Zeros((2, 3)), Zeros((4, 5))],
        ["(2, 3)", "(4, 5)"]),
]


@pytest.mark.parametrize(("op", "error", "args", "kwargs", "details"), BAD_CALLS)
def test_bad_input_is_rejected_with_a_clear_message(op, error, args, kwargs, details):
    args = [a.make() if isinstance(a, Zeros) else a for a in args]
    with raises_saying(error, details, starts=f"{op}:"):
        getattr(F, op)(*args, **kwargs)


# --------------------------------------------------------------------- semantics against PyTorch


def compare_with_torch(torch, fn, x: np.ndarray, backend: str) -> mg.Tensor:
    """fn(F, tensor) on `backend` and in PyTorch: same values (NaN included), same gradient."""
    theirs = torch.tensor(x, requires_grad=True)
    expected = fn(torch.nn.functional, theirs)
    upstream = np.random.default_rng(3).standard_normal(tuple(expected.shape))
    expected.backward(torch.tensor(upstream))
    with mg.backend(backend):
        ours = mg.tensor(x, requires_grad=True)
        out = fn(F, ours)
        out.backward(upstream)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-12)
    return out


def test_max_pool_padding_acts_as_minus_infinity(torch, backend):
    x = -1.0 - np.random.default_rng(0).random((2, 3, 5, 6))  # all in [-2, -1)
    out = compare_with_torch(torch, lambda F, t: F.max_pool2d(t, 3, stride=2, padding=1),
                             x, backend)
    assert out.shape == (2, 3, 3, 3)
    assert np.all(out.numpy() < -1.0 + 1e-12)  # never the zero that padding with zeros gives


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(("size", "kernel", "stride", "expected"),
                         [((7, 8), 2, 2, (3, 4)), ((7, 9), 3, 2, (3, 4)), ((5, 5), 2, 3, (2, 2))])
def test_pool_output_size_rounds_down(torch, backend, op, size, kernel, stride, expected):
    x = np.random.default_rng(0).standard_normal((1, 2, *size))
    out = compare_with_torch(torch, lambda F, t: getattr(F, op)(t, kernel, stride=stride),
                             x, backend)
    assert out.shape[2:] == expected


def test_avg_pool_counts_padding_in_its_divisor(torch, backend):
    x = np.ones((1, 1, 3, 3))
    out = compare_with_torch(torch, lambda F, t: F.avg_pool2d(t, 3, stride=1, padding=1),
                             x, backend)
    np.testing.assert_allclose(out.numpy()[0, 0], [[4 / 9, 6 / 9, 4 / 9],
                                                   [6 / 9, 1.0, 6 / 9],
                                                   [4 / 9, 6 / 9, 4 / 9]], rtol=1e-12)


def test_max_pool_propagates_nan_like_pytorch(torch, backend):
    x = np.array([[[[1.0, np.nan, 0.0, 5.0],
                    [3.0, 2.0, 4.0, -1.0]]]])
    out = compare_with_torch(torch, lambda F, t: F.max_pool2d(t, 2), x, backend)
    np.testing.assert_array_equal(out.numpy(), [[[[np.nan, 5.0]]]])
