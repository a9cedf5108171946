"""The activations of minigrad.nn.functional and their layers: leaky_relu, elu, hardswish,
hardsigmoid, softplus, mish, and the `inplace=` flag of relu and silu.

Each function is one `OpCase` (tests/op_table.py) written once against the PyTorch-shaped API
(`lib.nn.functional`), gradient-checked in float64 on inputs off its kinks and compared with
PyTorch forward and backward in float64 and float32, on both host backends and on drawn memory
layouts. The kinks themselves (where finite differences would average two slopes) are compared
with PyTorch exactly, on the kink points; so are the extremes (+-1000), where the stable
formulas must stay finite. The layers run through the layer table (tests/layer_table.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st
from layer_table import LayerCase, layer_tests
from op_table import DTYPES, OpCase, op_tests

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.testing.strategies import arrays, shapes

PYTORCH_TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10},
                     "float32": {"rtol": 1e-5, "atol": 1e-5}}


# ----------------------------------------------------------------------------- input strategies


@st.composite
def unary(draw, low=-4.0, high=4.0, kinks=(), **params):
    """One array in [low, high] off `kinks`, and params drawn from the keyword strategies.
    A kink may depend on the params: `kinks` is then a function of them."""
    params = {name: draw(value) for name, value in params.items()}
    kinks = kinks(**params) if callable(kinks) else kinks
    return (draw(arrays(shapes(), low, high, kinks)),), params


def functional(name):
    """fn(lib, x, **params) = lib.nn.functional.<name>(x, **params). With inplace=True the
    function gets `x * 1`: PyTorch refuses to overwrite a leaf that requires grad."""

    def fn(lib, x, **params):
        return getattr(lib.nn.functional, name)(x * 1 if params.get("inplace") else x, **params)

    return fn


def after_a_copy(lib, layer, x):
    """A layer with inplace=True gets `x * 1`: PyTorch refuses to overwrite a leaf that
    requires grad."""
    return layer(x * 1)


SLOPES = st.sampled_from([0.01, 0.2, 1.5, -0.5])
ALPHAS = st.sampled_from([1.0, 0.5, 2.0])
BETAS = st.sampled_from([1.0, 2.0, 0.5, -1.0])
THRESHOLDS = st.sampled_from([20.0, 1.0, 2.5])
INPLACE = st.booleans()

CASES = [
    OpCase("leaky_relu", functional("leaky_relu"), unary(kinks=(0.0,), negative_slope=SLOPES)),
    # PyTorch's in-place backward refuses negative slopes (minigrad, out of place, takes them)
    OpCase("leaky_relu_inplace", functional("leaky_relu"),
           unary(kinks=(0.0,), negative_slope=st.sampled_from([0.01, 0.2, 1.5]),
                 inplace=st.just(True))),
    OpCase("elu", functional("elu"), unary(kinks=(0.0,), alpha=ALPHAS, inplace=INPLACE)),
    OpCase("hardswish", functional("hardswish"),
           unary(-5.0, 5.0, kinks=(-3.0, 3.0), inplace=INPLACE)),
    OpCase("hardsigmoid", functional("hardsigmoid"),
           unary(-5.0, 5.0, kinks=(-3.0, 3.0), inplace=INPLACE)),
    # softplus jumps (by at most log1p(e^-threshold) / beta) where beta * x crosses threshold
    OpCase("softplus", functional("softplus"),
           unary(-6.0, 6.0, kinks=lambda beta, threshold: (threshold / beta,), beta=BETAS,
                 threshold=THRESHOLDS)),
    OpCase("mish", functional("mish"), unary(-6.0, 6.0, inplace=INPLACE)),
    OpCase("relu_inplace", functional("relu"), unary(kinks=(0.0,), inplace=INPLACE)),
    OpCase("silu_inplace", functional("silu"), unary(inplace=INPLACE)),
]


# ---------------------------------------------------------------- gradients and the PyTorch oracle


(test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
 test_no_graph_under_no_grad) = op_tests(CASES, mg, lambda torch: torch, PYTORCH_TOLERANCE,
                                         backend="host_backend")


# ------------------------------------------------------------------------ kinks and extremes


def compare_exactly(torch, fn, values, backend, dtype, tolerance=0.0):
    """fn(lib, x) forward and backward (a random upstream gradient) on exactly these values,
    minigrad on `backend` against PyTorch: equal within `tolerance` (relative and absolute),
    infinities and NaN where PyTorch has them."""
    x = np.asarray(values, dtype=dtype)
    upstream = np.random.default_rng(0).uniform(0.5, 2.0, x.shape).astype(dtype)
    theirs = torch.tensor(x, requires_grad=True)
    expected = fn(torch, theirs)
    expected.backward(torch.tensor(upstream))
    with mg.backend(backend):
        ours = mg.tensor(x, requires_grad=True)
        out = fn(mg, ours)
        out.backward(upstream)
    assert out.dtype == np.dtype(dtype) and ours.grad.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=tolerance,
                               atol=tolerance, err_msg=f"values at {values}")
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=tolerance,
                               atol=tolerance, err_msg=f"gradients at {values}")
    return out, ours.grad


KINKS = [
    pytest.param(functional("leaky_relu"), {"negative_slope": 0.2}, [0.0, -0.0, 1.0, -1.0],
                 id="leaky_relu-0"),
    pytest.param(functional("leaky_relu"), {"negative_slope": -0.5}, [0.0, -0.0],
                 id="leaky_relu-negative-slope-0"),
    pytest.param(functional("leaky_relu"), {}, [0.0, -0.0], id="leaky_relu-default-0"),
    pytest.param(functional("elu"), {}, [0.0, -0.0, 1e-300, -1e-300], id="elu-0"),
    pytest.param(functional("elu"), {"alpha": 2.5}, [0.0, -0.0], id="elu-alpha-0"),
    pytest.param(functional("hardswish"), {}, [-3.0, 3.0, 0.0, -3.5, 3.5], id="hardswish-3"),
    pytest.param(functional("hardsigmoid"), {}, [-3.0, 3.0, 0.0, -3.5, 3.5],
                 id="hardsigmoid-3"),
    # beta * x == threshold takes the log branch, just above it x itself (PyTorch's rule)
    pytest.param(functional("softplus"), {"beta": 2.0, "threshold": 10.0},
                 [5.0, np.nextafter(5.0, 6.0), 4.0, 6.0], id="softplus-threshold"),
    pytest.param(functional("softplus"), {}, [20.0, 20.5, 19.5], id="softplus-default-threshold"),
    pytest.param(functional("relu"), {"inplace": True}, [0.0, -0.0], id="relu-inplace-0"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("fn", "params", "values"), KINKS)
def test_slopes_at_the_kinks_are_pytorchs(torch, host_backend, dtype, fn, params, values):
    """Exactly at the kinks: PyTorch's one-sided choice of slope (leaky_relu's slope at 0 is
    negative_slope, elu's alpha, hardswish's 0 at -3 and 1 at 3, hardsigmoid's 0 at both)."""
    compare_exactly(torch, lambda lib, x: fn(lib, x, **params), values, host_backend, dtype,
                    tolerance=1e-7 if dtype == "float32" else 1e-15)


def test_kink_slopes_are_the_documented_ones():
    """The same choices as numbers (so a change on PyTorch's side shows here too)."""
    x = mg.tensor([-3.0, 0.0, 3.0], dtype=mg.float64, requires_grad=True)
    for fn, slopes in [(lambda x: F.leaky_relu(x, 0.1), [0.1, 0.1, 1.0]),
                       (lambda x: F.elu(x, 2.0), [2 * np.exp(-3.0), 2.0, 1.0]),
                       (F.hardswish, [0.0, 0.5, 1.0]),
                       (F.hardsigmoid, [0.0, float(np.float32(1 / 6)), 0.0])]:
        x.grad = None
        fn(x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), slopes, rtol=1e-15)


EXTREMES = [-1000.0, -100.0, -30.0, -20.0, 0.0, 20.0, 30.0, 100.0, 1000.0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "params"), [
    ("softplus", {}), ("softplus", {"beta": 0.5, "threshold": 5.0}),
    ("softplus", {"beta": -1.0}), ("mish", {}), ("elu", {}), ("elu", {"alpha": 0.3}),
    ("leaky_relu", {}), ("hardswish", {}), ("hardsigmoid", {})])
def test_extremes_are_finite_and_pytorchs(torch, host_backend, dtype, name, params):
    """At +-1000 (and around softplus's threshold) every value and gradient is finite and
    PyTorch's: the stable formulas never overflow an exp, and never divide inf by inf."""
    out, grad = compare_exactly(torch, lambda lib, x: functional(name)(lib, x, **params),
                                EXTREMES, host_backend, dtype,
                                tolerance=1e-6 if dtype == "float32" else 1e-13)
    assert np.isfinite(out.numpy()).all() and np.isfinite(grad.numpy()).all()


def test_softplus_stays_finite_beyond_where_pytorchs_overflows():
    """With a threshold above exp's range PyTorch's log1p(exp(beta x)) overflows to inf (and
    its gradient to NaN); the stable form max(z, 0) + log1p(exp(-|z|)) gives x."""
    x = mg.tensor([800.0, 1000.0, -1000.0], dtype=mg.float64, requires_grad=True)
    out = F.softplus(x, threshold=1e4)
    out.sum().backward()
    np.testing.assert_array_equal(out.numpy(), [800.0, 1000.0, 0.0])
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 0.0])


# --------------------------------------------------------------------------------- inplace


@pytest.mark.parametrize("name", ["relu", "silu", "leaky_relu", "elu", "hardswish",
                                  "hardsigmoid", "mish"])
def test_inplace_computes_out_of_place(torch, name):
    """inplace=True gives PyTorch's values, in a new tensor: the input keeps its values and
    its own gradient."""
    values = np.linspace(-4, 4, 12).reshape(3, 4)
    x = mg.tensor(values, requires_grad=True)
    out = getattr(F, name)(x * 1.0, inplace=True)
    out.backward(np.ones((3, 4)))
    expected = getattr(torch.nn.functional, name)(torch.tensor(values), inplace=False)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12, atol=1e-15)
    y = mg.tensor(values)
    assert getattr(F, name)(y, inplace=True) is not y
    np.testing.assert_array_equal(y.numpy(), values)
    assert x.grad is not None and x.grad.shape == (3, 4)


# -------------------------------------------------------------------------- errors and reprs


@pytest.mark.parametrize("name", ["leaky_relu", "elu", "hardswish", "hardsigmoid", "softplus",
                                  "mish"])
def test_integer_input_is_rejected(name):
    with pytest.raises(TypeError, match=rf"^{name}: expected a floating-point tensor, got "
                                        r"\(3,\) int64"):
        getattr(F, name)(mg.tensor([1, 2, 3]))


def test_softplus_refuses_beta_0():
    with pytest.raises(ValueError, match="softplus: beta must be non-zero"):
        F.softplus(mg.zeros(3), beta=0)


REPRS = [
    lambda nn: nn.ReLU(), lambda nn: nn.ReLU(inplace=True), lambda nn: nn.ReLU(True),
    lambda nn: nn.SiLU(inplace=True), lambda nn: nn.LeakyReLU(),
    lambda nn: nn.LeakyReLU(0.2, True), lambda nn: nn.LeakyReLU(negative_slope=1),
    lambda nn: nn.ELU(), lambda nn: nn.ELU(alpha=0.5, inplace=True), lambda nn: nn.Hardswish(),
    lambda nn: nn.Hardswish(inplace=True), lambda nn: nn.Hardsigmoid(True),
    lambda nn: nn.Softplus(), lambda nn: nn.Softplus(beta=2, threshold=10),
    lambda nn: nn.Mish(), lambda nn: nn.Mish(inplace=True),
    lambda nn: nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.1), nn.Mish(), nn.ELU()),
]


@pytest.mark.parametrize("build", REPRS)
def test_repr_attributes_and_state_are_pytorchs(torch, build):
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name in ("inplace", "negative_slope", "alpha", "beta", "threshold"):
        assert getattr(ours, name, None) == getattr(theirs, name, None), name


def test_defaults_are_pytorchs(torch):
    import inspect

    for name in ["relu", "silu", "leaky_relu", "elu", "hardswish", "hardsigmoid", "mish"]:
        ours = inspect.signature(getattr(F, name)).parameters
        theirs = inspect.signature(getattr(torch.nn.functional, name)).parameters
        assert [(p.name, p.default) for p in ours.values()] == [
            (p.name, p.default) for p in theirs.values()], name
    # F.softplus is a builtin in PyTorch (no signature): its documented defaults
    softplus = inspect.signature(F.softplus).parameters
    assert [(p.name, p.default) for p in softplus.values()] == [
        ("input", inspect.Parameter.empty), ("beta", 1.0), ("threshold", 20.0)]


# ---------------------------------------------------------------------------- the layer table

LAYERS = [
    LayerCase("relu_inplace", lambda nn: nn.ReLU(inplace=True), (3, 4), kinks=(0.0,),
              call=after_a_copy),
    LayerCase("silu_inplace", lambda nn: nn.SiLU(inplace=True), (3, 4), call=after_a_copy),
    LayerCase("leaky_relu", lambda nn: nn.LeakyReLU(), (3, 4), kinks=(0.0,)),
    LayerCase("leaky_relu_inplace", lambda nn: nn.LeakyReLU(0.2, inplace=True), (2, 3, 2),
              kinks=(0.0,), call=after_a_copy),
    LayerCase("elu", lambda nn: nn.ELU(), (3, 4), kinks=(0.0,)),
    LayerCase("elu_alpha_inplace", lambda nn: nn.ELU(alpha=0.5, inplace=True), (3, 4),
              kinks=(0.0,), call=after_a_copy),
    LayerCase("hardswish", lambda nn: nn.Hardswish(), (4, 5), kinks=(-3.0, 3.0)),
    LayerCase("hardsigmoid", lambda nn: nn.Hardsigmoid(), (4, 5), kinks=(-3.0, 3.0)),
    LayerCase("softplus", lambda nn: nn.Softplus(), (3, 4)),
    LayerCase("softplus_threshold", lambda nn: nn.Softplus(beta=2.0, threshold=1.0), (3, 4),
              kinks=(0.5,)),
    LayerCase("mish", lambda nn: nn.Mish(), (3, 4)),
    LayerCase("mish_inplace", lambda nn: nn.Mish(inplace=True), (3, 4), call=after_a_copy),
]
test_layer_gradients, test_layer_against_pytorch, test_layer_builds_no_graph = layer_tests(
    LAYERS)
