"""Pooling with all of PyTorch's arguments: max_pool2d (ceil_mode, dilation, return_indices),
avg_pool2d (ceil_mode, count_include_pad, divisor_override), adaptive_avg_pool2d to any size,
adaptive_max_pool2d; functions and layers.

The op table (tests/op_table.py) draws geometries of every kind: gradients against finite
differences in float64 (tie-free inputs for max), forward and backward against PyTorch in
float32 and float64 on both host backends, inputs and upstream gradients in drawn memory
layouts. Then the indices and ties against PyTorch, windows of -inf, the layer table, reprs,
errors, empty batches, the stand-in GPU (cuda_on_cpu.py) and the Kronecker-free path of
adaptive average pooling.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from helpers import skip_or_fail
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from layer_table import LayerCase, layer_tests
from op_table import DTYPES, OpCase, check_against_pytorch, check_gradient, op_tests, over

import minigrad as mg
import minigrad.nn.functional as F
import minigrad.ops.pooling
from minigrad import nn
from minigrad.testing.strategies import arrays, distinct_arrays

PYTORCH_TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10},
                     "float32": {"rtol": 1e-5, "atol": 1e-5}}


# ------------------------------------------------------------------------- geometry, as PyTorch


def torch_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """pooling_output_shape of PyTorch's aten/src/ATen/native/Pool.h, written out again."""
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def windows_read_input(size, kernel, stride, padding, dilation, out):
    """Whether every window has a tap inside the input (dilated ones may not: PyTorch then
    gives -inf and indices outside the input, which minigrad refuses)."""
    return all(any(0 <= o * stride - padding + t * dilation < size for t in range(kernel))
               for o in range(out))


@st.composite
def pool_geometry(draw, dilation: bool, max_size: int = 7):
    """kernel_size, stride, padding (at most half the kernel), ceil_mode (and dilation) and an
    (H, W) with at least one output, sides drawn independently (often different)."""
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
    default_stride = draw(st.booleans())  # stride=None: the kernel size
    stride = kernel if default_stride else tuple(draw(st.integers(1, 3)) for _ in range(2))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilations = tuple(draw(st.integers(1, 2)) for _ in range(2)) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    hw = tuple(draw(st.integers(1, max_size)) for _ in range(2))
    for d in range(2):
        out = torch_output_size(hw[d], kernel[d], stride[d], padding[d], dilations[d], ceil_mode)
        assume(out >= 1)
        assume(windows_read_input(hw[d], kernel[d], stride[d], padding[d], dilations[d], out))
    params = {"kernel_size": kernel, "stride": None if default_stride else stride,
              "padding": padding, "ceil_mode": ceil_mode}
    if dilation:
        params["dilation"] = dilations
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *hw)
    return shape, params


@st.composite
def max_pool_inputs(draw):
    shape, params = draw(pool_geometry(dilation=True))
    return (draw(distinct_arrays(shape)),), params


@st.composite
def avg_pool_inputs(draw):
    shape, params = draw(pool_geometry(dilation=False))
    params["count_include_pad"] = draw(st.booleans())
    params["divisor_override"] = draw(st.sampled_from([None, None, 1, 4, -3]))
    return (draw(arrays(shape)),), params


@st.composite
def adaptive_sizes(draw, max_size: int = 9):
    """(H, W) and an output size: an int, a pair, None for a side; often not dividing the
    input, sometimes dividing it (the kernels' path), sometimes larger than it."""
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))

    def side(n):
        return draw(st.one_of(st.integers(1, max_size + 2),
                              st.sampled_from([d for d in range(1, n + 1) if n % d == 0]),
                              st.none()))

    size = draw(st.one_of(st.integers(1, max_size), st.tuples(st.just(side(h)),
                                                               st.just(side(w)))))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), size


@st.composite
def adaptive_inputs(draw, distinct: bool):
    shape, size = draw(adaptive_sizes())
    return (draw(distinct_arrays(shape) if distinct else arrays(shape)),), {"output_size": size}


# ---------------------------------------------------------------------------------- the table

# fn(F, *tensors, **params), F being minigrad's or torch's functional
CASES = [
    OpCase("max_pool2d", lambda F, x, **p: F.max_pool2d(x, **p), max_pool_inputs()),
    OpCase("max_pool2d_return_indices",
           lambda F, x, **p: F.max_pool2d(x, **p, return_indices=True)[0], max_pool_inputs()),
    OpCase("avg_pool2d", lambda F, x, **p: F.avg_pool2d(x, **p), avg_pool_inputs()),
    OpCase("adaptive_avg_pool2d", lambda F, x, **p: F.adaptive_avg_pool2d(x, **p),
           adaptive_inputs(distinct=False)),
    OpCase("adaptive_max_pool2d", lambda F, x, **p: F.adaptive_max_pool2d(x, **p),
           adaptive_inputs(distinct=True)),
    OpCase("adaptive_max_pool2d_return_indices",
           lambda F, x, **p: F.adaptive_max_pool2d(x, **p, return_indices=True)[0],
           adaptive_inputs(distinct=True)),
]


# The gradient check: the math, on the default backend; both host backends meet PyTorch
(test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
 test_no_graph_under_no_grad) = op_tests(CASES, F, lambda torch: torch.nn.functional,
                                         PYTORCH_TOLERANCE, backend="host_backend")


@given(data=st.data())
def test_adaptive_avg_pool_without_the_kronecker_product(torch, host_backend, data):
    """Large inputs average rows and columns one after the other instead of in one product:
    that path, forced on small ones."""
    case = CASES[3]
    assert case.name == "adaptive_avg_pool2d"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(minigrad.ops.pooling, "KRON_LIMIT", 0)
        check_gradient(case, data, F, host_backend)
        for dtype in DTYPES:
            check_against_pytorch(torch, case, data, dtype, (F, torch.nn.functional),
                                  PYTORCH_TOLERANCE, host_backend)


def test_adaptive_avg_pool_of_a_large_image_matches_pytorch(torch, host_backend):
    """40x40 to 9x11 takes the row-then-column path on its own (no monkeypatch)."""
    assert minigrad.ops.pooling.KRON_LIMIT < 40 * 40 * 9 * 11
    x = np.random.default_rng(0).standard_normal((2, 3, 40, 40))
    compare(torch, lambda F, t: F.adaptive_avg_pool2d(t, (9, 11)), x, host_backend)


# --------------------------------------------------------------- indices and ties, as PyTorch


def compare(torch, fn, x: np.ndarray, backend: str, indices: bool = False):
    """fn(F, tensor) on `backend` and in PyTorch: the same values (-inf and NaN included), the
    same input gradient, and with `indices` (fn returns (values, indices)) the same indices."""
    theirs = torch.tensor(x, requires_grad=True)
    expected = fn(torch.nn.functional, theirs)
    values = expected[0] if indices else expected
    upstream = np.random.default_rng(3).standard_normal(tuple(values.shape)).astype(x.dtype)
    values.backward(torch.tensor(upstream))
    with mg.backend(backend):
        ours = mg.tensor(x, requires_grad=True)
        out = fn(F, ours)
        (out[0] if indices else out).backward(upstream)
    tolerance = PYTORCH_TOLERANCE[str(x.dtype)]
    if indices:
        assert out[1].dtype == np.int64 and not out[1].requires_grad
        np.testing.assert_array_equal(out[1].numpy(), expected[1].numpy())
        out, expected = out[0], expected[0]
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **tolerance)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), **tolerance)
    return out


@given(case=pool_geometry(dilation=True), seed=st.integers(0, 2**16))
def test_max_pool_indices_match_pytorch(torch, host_backend, case, seed):
    shape, params = case
    x = np.random.default_rng(seed).standard_normal(shape)
    compare(torch, lambda F, t: F.max_pool2d(t, **params, return_indices=True), x, host_backend,
            indices=True)


@given(case=adaptive_sizes(), seed=st.integers(0, 2**16))
def test_adaptive_max_pool_indices_match_pytorch(torch, host_backend, case, seed):
    shape, size = case
    x = np.random.default_rng(seed).standard_normal(shape)
    compare(torch, lambda F, t: F.adaptive_max_pool2d(t, size, return_indices=True), x,
            host_backend, indices=True)


TIED = [
    pytest.param(lambda F, t: F.max_pool2d(t, 3, 2, 1, return_indices=True), id="max_pool2d"),
    pytest.param(lambda F, t: F.max_pool2d(t, 2, 1, 1, ceil_mode=True, return_indices=True),
                 id="max_pool2d_ceil"),
    pytest.param(lambda F, t: F.max_pool2d(t, (2, 3), 1, 1, dilation=2, return_indices=True),
                 id="max_pool2d_dilated"),
    pytest.param(lambda F, t: F.adaptive_max_pool2d(t, (3, 4), return_indices=True),
                 id="adaptive_max_pool2d"),
    pytest.param(lambda F, t: F.adaptive_max_pool2d(t, (2, 4), return_indices=True),
                 id="adaptive_max_pool2d_dividing"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", TIED)
def test_ties_pick_the_first_maximum_as_pytorch(torch, host_backend, fn, dtype):
    """Values from {0, 1, 2} tie in most windows: PyTorch takes the first maximum in row-major
    order within the window, and so does minigrad, for the value, the index and the gradient
    (windows that overlap share their maxima, and their gradients add up)."""
    x = np.random.default_rng(0).integers(0, 3, (2, 3, 5, 8)).astype(dtype)
    compare(torch, fn, x, host_backend, indices=True)
    compare(torch, lambda F, t: fn(F, t)[0], x, host_backend)  # the paths without indices


@pytest.mark.parametrize("fn", [
    lambda F, t: F.adaptive_max_pool2d(t, (1, 2), return_indices=True),
    lambda F, t: F.max_pool2d(t, (12, 11), 3, 2, dilation=2, return_indices=True),
], ids=["adaptive", "dilated"])
def test_windows_of_more_than_127_taps_match_pytorch(torch, host_backend, fn):
    """Tap numbers are counted in the smallest integer type that holds them: 240 and 132 taps
    need int16."""
    x = np.random.default_rng(0).standard_normal((1, 2, 20, 23))
    compare(torch, fn, x, host_backend, indices=True)


def test_ties_without_indices_pick_the_first_maximum(torch, host_backend):
    x = np.zeros((1, 2, 6, 7))
    compare(torch, lambda F, t: F.max_pool2d(t, 3, 2, 1, dilation=2), x, host_backend)
    compare(torch, lambda F, t: F.adaptive_max_pool2d(t, (4, 5)), x, host_backend)


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_windows_of_minus_infinity_index_their_first_input_element(torch, host_backend,
                                                                   ceil_mode, dilation):
    """A window of -inf values and -inf padding: PyTorch's index is the first input element
    of the window (with dilation, the first tap inside the input), not a padding position."""
    x = np.full((1, 2, 4, 5), -np.inf)
    x[0, 1, 2:, 3:] = 1.0
    out = compare(torch, lambda F, t: F.max_pool2d(t, 3, 2, 1, dilation, ceil_mode,
                                                   return_indices=True), x, host_backend,
                  indices=True)
    assert np.isneginf(out.numpy()[0, 0]).all()


def test_nan_wins_as_in_pytorch(torch, host_backend):
    """NaN propagates; where a window holds several, PyTorch's index is the last NaN, and
    minigrad's in every max pooling: adaptive, dilated, and the fixed-window kernels (2x2
    at stride 2 has its own on Numba), so the gradient goes where PyTorch sends it."""
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 7))
    x[0, 0, 1, 1] = x[0, 0, 2, 3] = x[0, 1, 4, 5] = np.nan
    x[0, 1, 0:2, 0:2] = np.nan  # a window of NaNs alone
    x[0, 1, 2, 3] = x[0, 1, 3, 2] = np.nan
    for fn in (lambda F, t: F.adaptive_max_pool2d(t, (2, 3), return_indices=True),
               lambda F, t: F.max_pool2d(t, 3, 1, 1, dilation=2, return_indices=True),
               lambda F, t: F.max_pool2d(t, 2, return_indices=True),
               lambda F, t: F.max_pool2d(t, 3, 2, 1, return_indices=True)):
        theirs = fn(torch.nn.functional, torch.tensor(x))
        with mg.backend(host_backend):
            ours = fn(F, mg.tensor(x))
        np.testing.assert_array_equal(ours[0].numpy(), theirs[0].numpy())
        np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())


def test_max_pool_pads_with_minus_infinity_in_ceil_mode(torch, host_backend):
    """The extra columns ceil_mode adds count as -inf, never as the zero padding would be."""
    x = -1.0 - np.random.default_rng(0).random((1, 2, 5, 5))  # all in [-2, -1)
    out = compare(torch, lambda F, t: F.max_pool2d(t, 2, ceil_mode=True), x, host_backend)
    assert out.shape == (1, 2, 3, 3) and (out.numpy() < -1.0 + 1e-12).all()


# ------------------------------------------------------------------- divisors and output sizes


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "floor", "ceil"), [
    (5, 2, 2, 0, 2, 3),  # a half window at the end
    (6, 2, 2, 0, 3, 3),  # fits exactly: no extra window
    (5, 3, 3, 1, 2, 2),  # the extra window would start in the right padding: dropped
    (6, 3, 2, 1, 3, 4),
    (5, 6, 2, 0, 0, 1),  # a kernel larger than the input still gives one window
])
def test_output_sizes_round_as_pytorch(torch, size, kernel, stride, padding, floor, ceil):
    x = np.random.default_rng(0).standard_normal((1, 1, size, size))
    for ceil_mode, expected in ((False, floor), (True, ceil)):
        if not expected:
            for op in ("max_pool2d", "avg_pool2d"):
                with pytest.raises(RuntimeError, match="Output size is too small"):
                    getattr(torch.nn.functional, op)(torch.tensor(x), kernel, stride, padding,
                                                     ceil_mode=ceil_mode)
                with pytest.raises(ValueError, match="larger than the padded input"):
                    getattr(F, op)(mg.tensor(x), kernel, stride, padding, ceil_mode=ceil_mode)
        else:
            theirs = torch.nn.functional.avg_pool2d(torch.tensor(x), kernel, stride, padding,
                                                    ceil_mode)
            assert theirs.shape[2] == expected
            assert F.max_pool2d(mg.tensor(x), kernel, stride, padding,
                                ceil_mode=ceil_mode).shape[2:] == (expected, expected)
            assert F.avg_pool2d(mg.tensor(x), kernel, stride, padding,
                                ceil_mode).shape[2:] == (expected, expected)


@pytest.mark.parametrize(("count_include_pad", "divisor_override", "expected"), [
    (True, None, [[4 / 9, 6 / 9, 2 / 6], [6 / 9, 1, 3 / 6], [2 / 6, 3 / 6, 1 / 4]]),
    (False, None, [[1, 1, 1], [1, 1, 1], [1, 1, 1]]),
    (True, 2, [[2, 3, 1], [3, 4.5, 1.5], [1, 1.5, 0.5]]),
])
def test_avg_pool_divisors_as_pytorch(torch, host_backend, count_include_pad,
                                      divisor_override, expected):
    """Ones 4x4, kernel 3, stride 2, padding 1, ceil_mode: the last window (rows 3 to 5) runs
    past the padding (row 4). The divisor counts the window clipped to input and padding (2
    rows there, count_include_pad), the input elements only (1 row), or is divisor_override."""
    x = np.ones((1, 1, 4, 4))
    out = compare(torch, lambda F, t: F.avg_pool2d(t, 3, 2, 1, True, count_include_pad,
                                                   divisor_override), x, host_backend)
    np.testing.assert_allclose(out.numpy()[0, 0], expected, rtol=1e-12)


def test_adaptive_windows_overlap_as_pytorch(torch, host_backend):
    """5 columns to 3: windows [0, 2), [1, 4), [3, 5), PyTorch's floor/ceil rule."""
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    out = compare(torch, lambda F, t: F.adaptive_avg_pool2d(t, (1, 3)), x, host_backend)
    np.testing.assert_allclose(out.numpy().ravel(), [0.5, 2.0, 3.5], rtol=1e-12)
    out = compare(torch, lambda F, t: F.adaptive_max_pool2d(t, (None, 3)), -x, host_backend)
    np.testing.assert_array_equal(out.numpy().ravel(), [0.0, -1.0, -3.0])


@pytest.mark.parametrize("fn", [
    lambda F, t: F.max_pool2d(t, 2, ceil_mode=True),
    lambda F, t: F.max_pool2d(t, 2, 1, 1, dilation=2, return_indices=True)[0],
    lambda F, t: F.avg_pool2d(t, 2, ceil_mode=True, count_include_pad=False),
    lambda F, t: F.adaptive_avg_pool2d(t, (2, 3)),
    lambda F, t: F.adaptive_max_pool2d(t, (2, 3)),
    lambda F, t: F.adaptive_max_pool2d(t, 1, return_indices=True)[0],
], ids=["max", "max-dilated", "avg", "adaptive-avg", "adaptive-max", "adaptive-max-indices"])
def test_an_empty_batch_pools_to_an_empty_batch(torch, host_backend, fn):
    compare(torch, fn, np.zeros((0, 3, 5, 5)), host_backend)


def test_adaptive_pooling_to_an_empty_output(torch, host_backend):
    """Output size 0 gives an empty output as PyTorch (whose backward then refuses; minigrad's
    gives the zero gradient)."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    for name, size in (("adaptive_avg_pool2d", (0, 2)), ("adaptive_max_pool2d", (3, 0))):
        expected = getattr(torch.nn.functional, name)(torch.tensor(x), size)
        with mg.backend(host_backend):
            ours = mg.tensor(x, requires_grad=True)
            out = getattr(F, name)(ours, size)
            out.sum().backward()
        assert out.shape == tuple(expected.shape)
        np.testing.assert_array_equal(ours.grad.numpy(), np.zeros_like(x))


# ------------------------------------------------------------------------------------- layers

LAYERS = [
    LayerCase("max_pool2d_ceil_mode", lambda nn: nn.MaxPool2d(3, stride=2, ceil_mode=True),
              (1, 2, 6, 5), distinct=True),
    LayerCase("max_pool2d_padded_ceil_mode",
              lambda nn: nn.MaxPool2d((2, 3), stride=(2, 2), padding=1, ceil_mode=True),
              (1, 2, 5, 6), distinct=True),
    LayerCase("max_pool2d_dilated", lambda nn: nn.MaxPool2d(2, stride=1, padding=1, dilation=2),
              (1, 2, 5, 6), distinct=True),
    LayerCase("max_pool2d_return_indices",
              lambda nn: nn.MaxPool2d(3, stride=2, return_indices=True, ceil_mode=True),
              (1, 2, 6, 6), distinct=True, call=lambda lib, layer, x: layer(x)[0]),
    LayerCase("avg_pool2d_count_include_pad_false",
              lambda nn: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
              (1, 2, 5, 6)),
    LayerCase("avg_pool2d_ceil_mode",
              lambda nn: nn.AvgPool2d((3, 2), stride=2, padding=1, ceil_mode=True),
              (1, 2, 6, 5)),
    LayerCase("avg_pool2d_divisor_override",
              lambda nn: nn.AvgPool2d(2, ceil_mode=True, divisor_override=3), (1, 2, 5, 5)),
    LayerCase("adaptive_avg_pool2d_3x5_on_7x11", lambda nn: nn.AdaptiveAvgPool2d((3, 5)),
              (1, 1, 7, 11)),
    LayerCase("adaptive_avg_pool2d_keep_width", lambda nn: nn.AdaptiveAvgPool2d((4, None)),
              (1, 2, 5, 3)),
    LayerCase("adaptive_max_pool2d_3x5_on_7x11", lambda nn: nn.AdaptiveMaxPool2d((3, 5)),
              (1, 1, 7, 11), distinct=True),
    LayerCase("adaptive_max_pool2d_dividing", lambda nn: nn.AdaptiveMaxPool2d(2),
              (1, 2, 4, 6), distinct=True),
    LayerCase("adaptive_max_pool2d_return_indices",
              lambda nn: nn.AdaptiveMaxPool2d((2, 3), return_indices=True), (1, 2, 5, 4),
              distinct=True, call=lambda lib, layer, x: layer(x)[0]),
]

test_layer_gradients, test_layer_against_pytorch, test_layer_builds_no_graph = layer_tests(LAYERS)


@pytest.mark.parametrize("build", [
    lambda nn: nn.MaxPool2d(3, stride=2, return_indices=True, ceil_mode=True),
    lambda nn: nn.AdaptiveMaxPool2d((2, None), return_indices=True),
], ids=["MaxPool2d", "AdaptiveMaxPool2d"])
def test_layers_return_indices_as_pytorch(torch, build):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    values, indices = build(nn)(mg.tensor(x))
    their_values, their_indices = build(torch.nn)(torch.tensor(x))
    np.testing.assert_array_equal(values.numpy(), their_values.numpy())
    np.testing.assert_array_equal(indices.numpy(), their_indices.numpy())


REPRS = [
    lambda nn: nn.MaxPool2d(2),
    lambda nn: nn.MaxPool2d((2, 3), stride=1, padding=(1, 0), dilation=2, ceil_mode=True,
                            return_indices=True),
    lambda nn: nn.MaxPool2d(3, 2, 1, 1, False, True),
    lambda nn: nn.AvgPool2d(2),
    lambda nn: nn.AvgPool2d(3, 2, 1, True, False, 5),
    lambda nn: nn.AvgPool2d((2, 3), stride=(1, 2), padding=(1, 0)),
    lambda nn: nn.AdaptiveAvgPool2d(1),
    lambda nn: nn.AdaptiveAvgPool2d((3, None)),
    lambda nn: nn.AdaptiveMaxPool2d(3),
    lambda nn: nn.AdaptiveMaxPool2d((None, 2), return_indices=True),
]


@pytest.mark.parametrize("build", REPRS)
def test_repr_attributes_and_state_as_pytorch(torch, build):
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices",
             "count_include_pad", "divisor_override", "output_size")
    for name in names:
        assert getattr(ours, name, None) == getattr(theirs, name, None), name
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []


# PyTorch's functions are built-ins or dispatch wrappers without a signature: its docs'
FUNCTIONAL_SIGNATURES = {
    "max_pool2d": [("input", None), ("kernel_size", None), ("stride", None), ("padding", 0),
                   ("dilation", 1), ("ceil_mode", False), ("return_indices", False)],
    "avg_pool2d": [("input", None), ("kernel_size", None), ("stride", None), ("padding", 0),
                   ("ceil_mode", False), ("count_include_pad", True),
                   ("divisor_override", None)],
    "adaptive_avg_pool2d": [("input", None), ("output_size", None)],
    "adaptive_max_pool2d": [("input", None), ("output_size", None), ("return_indices", False)],
}


def test_signatures_as_pytorch(torch):
    for name, expected in FUNCTIONAL_SIGNATURES.items():
        ours = inspect.signature(getattr(F, name)).parameters.values()
        assert [(p.name, None if p.default is p.empty else p.default) for p in ours] == \
            expected, name
    for name in ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        ours = inspect.signature(getattr(nn, name)).parameters
        theirs = inspect.signature(getattr(torch.nn, name)).parameters
        assert [(p.name, p.default) for p in ours.values()] == \
            [(p.name, p.default) for p in theirs.values()], name


# ------------------------------------------------------------------------------------- errors

X = np.zeros((2, 3, 5, 5), np.float32)

BAD_CALLS = [
    ("max_pool2d", ValueError, [X, 3], dict(padding=2), r"padding \(2, 2\) must be at most "
     r"half of kernel_size \(3, 3\)"),
    ("avg_pool2d", ValueError, [X, 3], dict(padding=2), r"padding \(2, 2\) must be at most"),
    ("max_pool2d", ValueError, [X, 8], dict(padding=1), r"kernel \(8, 8\).*larger than the "
     r"padded input: input \(2, 3, 5, 5\)"),
    ("avg_pool2d", ValueError, [X, 8], dict(stride=1, ceil_mode=True),
     r"larger than the padded input"),
    ("max_pool2d", ValueError, [X, 3], dict(dilation=3), r"larger than the padded input"),
    ("max_pool2d", ValueError, [X[:, :, :1], 2], dict(stride=1, padding=1, dilation=2),
     r"dilation \(2, 2\) some windows read padding only .*\(2, 3, 1, 5\)"),
    ("max_pool2d", ValueError, [X, 2], dict(dilation=0), r"dilation must be an int >= 1"),
    ("max_pool2d", ValueError, [X, 2], dict(stride=0), r"stride must be an int >= 1"),
    ("avg_pool2d", ValueError, [X, (2, 2, 2)], {}, r"kernel_size must be an int >= 1 or a pair"),
    ("max_pool2d", ValueError, [X[0], 2], {}, r"expected a 4-D input .*\(3, 5, 5\)"),
    ("max_pool2d", TypeError, [X, 2], dict(ceil_mode=None), r"ceil_mode must be a bool"),
    ("avg_pool2d", TypeError, [X, 2], dict(count_include_pad="no"),
     r"count_include_pad must be a bool"),
    ("avg_pool2d", ValueError, [X, 2], dict(divisor_override=0),
     r"divisor_override must not be 0"),
    ("avg_pool2d", TypeError, [X, 2], dict(divisor_override=1.5),
     r"divisor_override must be an int or None, got 1.5"),
    ("adaptive_avg_pool2d", ValueError, [X, -1], {}, r"output_size must be an int >= 0, None "
     r"or a pair of them, got -1"),
    ("adaptive_max_pool2d", ValueError, [X, (1, 2, 3)], {}, r"got \(1, 2, 3\)"),
    ("adaptive_avg_pool2d", ValueError, [X, 2.0], {}, r"got 2.0"),
    ("adaptive_avg_pool2d", ValueError, [X[0], 2], {}, r"expected a 4-D input .*\(3, 5, 5\)"),
    ("adaptive_max_pool2d", ValueError, [X[:, :, :0], 2], {},
     r"input \(2, 3, 0, 5\) is empty in a dim other than the batch"),
]


@pytest.mark.parametrize(("op", "error", "args", "kwargs", "match"), BAD_CALLS,
                         ids=[f"{c[0]}-{c[4][:24]}" for c in BAD_CALLS])
def test_bad_input_is_rejected_with_a_clear_message(op, error, args, kwargs, match):
    args = [mg.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    with pytest.raises(error, match=f"^{op}: .*{match}"):
        getattr(F, op)(*args, **kwargs)


# --------------------------------------------------------------------------- the stand-in GPU


@pytest.fixture(scope="module")
def gpu():
    """cuda_on_cpu's stand-in installed as minigrad's cupy backend (see test_cupy_on_cpu.py):
    the array code above (pads, strided windows, gathers, scatter_add, kron) on CuPy's API."""
    import cuda_on_cpu

    if cuda_on_cpu.compiler() is None:
        skip_or_fail("no C++ compiler (c++, g++ or clang++ on PATH) to build the CUDA kernels "
                     "for the CPU")
    with cuda_on_cpu.installed():
        yield "cupy"


def stays_on_the_gpu(case: OpCase) -> OpCase:
    """`case` checking that its minigrad side runs on the stand-in (inputs and output)."""

    def fn(lib, *tensors, **params):
        import cuda_on_cpu

        out = case.fn(lib, *tensors, **params)
        if isinstance(out, mg.Tensor):
            assert all(type(t.array) is cuda_on_cpu.ndarray for t in (out, *tensors))
        return out

    return dataclasses.replace(case, fn=fn)


@pytest.mark.parametrize("dtype", DTYPES)
@over([stays_on_the_gpu(case) for case in CASES])
@settings(max_examples=5)
@given(data=st.data())
def test_match_pytorch_on_the_stand_in_gpu(torch, gpu, case, dtype, data):
    check_against_pytorch(torch, case, data, dtype, (F, torch.nn.functional), PYTORCH_TOLERANCE,
                          gpu)


def test_indices_on_the_stand_in_gpu(torch, gpu):
    x = np.random.default_rng(0).integers(0, 3, (2, 3, 5, 8)).astype(np.float64)
    for fn in TIED:
        compare(torch, fn.values[0], x, gpu, indices=True)
