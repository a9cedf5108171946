"""Every differentiable op, two ways: Hypothesis + gradcheck, and against PyTorch.

Each case is one `OpCase` (tests/op_table.py, the harness the op tables share): a function
`fn(lib, *inputs, **params)` written once against the PyTorch-shaped API, so the same code runs
with `lib=minigrad` and `lib=torch`, and a strategy that draws `(inputs, params)`: float64
arrays (off kinks where the op has them) and the op's parameters (dims, keepdim, bounds,
indices). The gradient checks run on the active backend; the PyTorch comparison on every
backend, since relu, gelu (erf), matmul and indexing (scatter_add) call backend kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import raises_saying
from hypothesis import assume
from hypothesis import strategies as st
from op_table import OpCase, op_tests

import minigrad as mg
from minigrad.testing.strategies import (
    arrays,
    broadcastable_shapes,
    distinct_arrays,
    indices,
    matmul_shapes,
    shapes,
)

PYTORCH_TOLERANCE = {"float64": {"rtol": 1e-7, "atol": 1e-9},
                     "float32": {"rtol": 2e-4, "atol": 1e-5}}


# ----------------------------------------------------------------------------- input strategies


@st.composite
def unary(draw, low=-3.0, high=3.0, kinks=(), shape=None, **params):
    """One array, plus params drawn from the strategies given as keyword arguments."""
    shape = draw(shapes()) if shape is None else shape
    x = draw(arrays(shape, low, high, kinks))
    return (x,), {k: draw(v) for k, v in params.items()}


@st.composite
def broadcast_pair(draw, low=-3.0, high=3.0, kinks_b=()):
    shape_a, shape_b = draw(broadcastable_shapes())
    return (draw(arrays(shape_a, low, high)), draw(arrays(shape_b, low, high, kinks_b))), {}


@st.composite
def distinct_pair(draw):
    """Two broadcastable arrays with no value in common (maximum/minimum tie-free)."""
    shape_a, shape_b = draw(broadcastable_shapes())
    size_a = int(np.prod(shape_a))
    values = draw(distinct_arrays((size_a + int(np.prod(shape_b)),)))
    return (values[:size_a].reshape(shape_a), values[size_a:].reshape(shape_b)), {}


@st.composite
def dims_of(draw, ndim, allow_none=True, allow_tuple=True):
    """A dim argument: None, an int (possibly negative) or a tuple of distinct dims."""
    options = ["int"] if ndim else []
    options += ["none"] if allow_none or not ndim else []
    options += ["tuple"] if allow_tuple and ndim else []
    kind = draw(st.sampled_from(options))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                               unique=True)))


@st.composite
def reduction(draw, distinct=False, dim_required=False, allow_tuple=True):
    shape = draw(shapes(min_dims=1 if dim_required else 0))
    x = draw(distinct_arrays(shape) if distinct else arrays(shape))
    dim = draw(dims_of(len(shape), allow_none=not dim_required, allow_tuple=allow_tuple))
    return (x,), {"dim": dim, "keepdim": draw(st.booleans())}


@st.composite
def variance(draw, min_count=1, unbiased=False):
    """Inputs for var/std: the correction never reaches the count (no division by zero), and
    for std at least two distinct values (its derivative is infinite at zero variance).
    `correction=` any of 0, 1, 2 and 0.5 below the count, or `unbiased=` True (correction 1)
    or False (correction 0)."""
    (x,), params = draw(reduction(distinct=True))
    dims = range(x.ndim) if params["dim"] is None else np.atleast_1d(params["dim"])
    count = int(np.prod([x.shape[d] for d in dims]))
    assume(count >= min_count)
    if unbiased:
        params["unbiased"] = draw(st.booleans()) if count > 1 else False
    else:
        params["correction"] = draw(st.sampled_from([c for c in (0, 1, 2, 0.5) if c < count]))
    return (x,), params


@st.composite
def along_dim(draw, distinct=False):
    """An array of >= 1 dim and one dim of it (softmax, max along a dim, ...)."""
    shape = draw(shapes(min_dims=1))
    x = draw(distinct_arrays(shape) if distinct else arrays(shape))
    return (x,), {"dim": draw(st.integers(-len(shape), len(shape) - 1))}


@st.composite
def matmul_pair(draw):
    shape_a, shape_b = draw(matmul_shapes())
    return (draw(arrays(shape_a)), draw(arrays(shape_b))), {}


@st.composite
def reshaped(draw):
    shape = draw(shapes())
    new_shape = list(draw(st.permutations(shape)))
    if new_shape and draw(st.booleans()):
        new_shape[draw(st.integers(0, len(new_shape) - 1))] = -1
    return (draw(arrays(shape)),), {"shape": tuple(new_shape)}


@st.composite
def permuted(draw):
    shape = draw(shapes())
    return (draw(arrays(shape)),), {"dims": tuple(draw(st.permutations(range(len(shape)))))}


@st.composite
def two_dims(draw, min_dims=1):
    shape = draw(shapes(min_dims=min_dims))
    n = len(shape)
    return (draw(arrays(shape)),), {"dim0": draw(st.integers(-n, n - 1)),
                                    "dim1": draw(st.integers(-n, n - 1))}


@st.composite
def flattened(draw):
    shape = draw(shapes(min_dims=1))
    n = len(shape)
    start = draw(st.integers(0, n - 1))
    return (draw(arrays(shape)),), {"start_dim": start, "end_dim": draw(st.integers(start, n - 1))}


@st.composite
def expanded(draw):
    """A shape with size-1 dims, and a target that stretches them and adds leading dims."""
    shape = draw(shapes(max_side=3))
    target = [draw(st.integers(1, 3)) if n == 1 else n for n in shape]
    target = [draw(st.sampled_from([n, -1])) for n in target]
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    return (draw(arrays(shape)),), {"sizes": tuple(lead + target)}


@st.composite
def indexed(draw):
    """Indices PyTorch accepts too: negative slice steps (NumPy only) are replaced by 1."""
    shape = draw(shapes(min_dims=1))
    index = draw(indices(shape))
    if isinstance(index, (slice, tuple)):
        parts = index if isinstance(index, tuple) else (index,)
        parts = tuple(slice(p.start, p.stop) if isinstance(p, slice) and (p.step or 1) < 0
                      else p for p in parts)
        index = parts if isinstance(index, tuple) else parts[0]
    return (draw(arrays(shape)),), {"index": index}


@st.composite
def reverse_sliced(draw):
    """Slices with negative steps in every dim, as NumPy allows (PyTorch does not)."""
    shape = draw(shapes(min_dims=1))
    index = tuple(slice(draw(st.one_of(st.none(), st.integers(-n, n - 1))), None,
                        draw(st.integers(-3, -1))) for n in shape)
    return (draw(arrays(shape)),), {"index": index}


@st.composite
def gathered(draw):
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(0, len(shape) - 1))
    index_shape = tuple(draw(st.integers(1, n)) for n in shape)
    index = draw(st.lists(st.integers(0, shape[dim] - 1), min_size=int(np.prod(index_shape)),
                          max_size=int(np.prod(index_shape))))
    return (draw(arrays(shape)),), {"dim": dim,
                                    "index": np.array(index, dtype=np.int64).reshape(index_shape)}


@st.composite
def joined(draw, same_shape=False):
    """2-4 arrays equal except along `dim` (cat) or fully equal (stack)."""
    shape = list(draw(shapes(min_dims=1)))
    dim = draw(st.integers(0, len(shape) - 1))
    parts = []
    for _ in range(draw(st.integers(2, 4))):
        if not same_shape:
            shape[dim] = draw(st.integers(1, 3))
        parts.append(draw(arrays(tuple(shape))))
    return tuple(parts), {"dim": draw(st.integers(-len(shape), len(shape) - 1)) if same_shape
                          else dim}


@st.composite
def clamped(draw):
    low, high = sorted(draw(st.lists(st.floats(-2, 2), min_size=2, max_size=2)))
    low, high = (low, high + 0.5)
    which = draw(st.sampled_from(["both", "min", "max"]))
    x = draw(arrays(draw(shapes()), kinks=(low, high), margin=0.05))
    return (x,), {"min": None if which == "max" else low, "max": None if which == "min" else high}


@st.composite
def clamped_by_tensors(draw):
    """x and tensor bounds that broadcast with it: a min, a max or both, no two values equal
    (off clamp's kinks). Both bounds in random order, so min > max in some places, where
    PyTorch's clamp gives max. With both bounds x has the broadcast shape: PyTorch's backward
    fails when the bounds broadcast x ("output with shape [3] doesn't match the broadcast
    shape [2, 3]"), which minigrad does not."""
    which = draw(st.sampled_from(["min", "max", "both"]))
    shapes_ = draw(broadcastable_shapes(num_shapes=3 if which == "both" else 2))
    if which == "both":
        shapes_ = (np.broadcast_shapes(*shapes_), *shapes_[1:])
    sizes = [int(np.prod(shape)) for shape in shapes_]
    values = draw(distinct_arrays((sum(sizes),)))
    parts = np.split(values, np.cumsum(sizes)[:-1])
    return tuple(part.reshape(shape) for part, shape in zip(parts, shapes_)), {"which": which}


def clamp_by_tensors(lib, a, *bounds, which):
    if which == "both":
        return a.clamp(*bounds)
    return lib.clamp(a, **{which: bounds[0]})


@st.composite
def chosen(draw):
    shape_c, shape_a, shape_b = draw(broadcastable_shapes(num_shapes=3))
    condition = draw(arrays(shape_c)) > 0
    return (draw(arrays(shape_a)), draw(arrays(shape_b))), {"condition": condition}


@st.composite
def padded(draw):
    shape = draw(shapes(min_dims=1))
    n_pairs = draw(st.integers(1, len(shape)))
    pad = tuple(draw(st.lists(st.integers(0, 2), min_size=2 * n_pairs, max_size=2 * n_pairs)))
    return (draw(arrays(shape)),), {"pad": pad, "value": draw(st.floats(-1, 1))}


@st.composite
def padded_from_input(draw):
    """Reflect, replicate or circular padding of the last k = 1..3 dims of a (k+1)- or
    (k+2)-dim input, within each mode's limit (reflect: < size; circular: <= size)."""
    k = draw(st.integers(1, 3))
    shape = draw(shapes(min_dims=k + 1, max_dims=k + 2, min_side=1, max_side=4))
    mode = draw(st.sampled_from(["reflect", "replicate", "circular"]))
    pad = []
    for n in shape[::-1][:k]:
        limit = {"reflect": n - 1, "replicate": 3, "circular": n}[mode]
        pad += draw(st.lists(st.integers(0, limit), min_size=2, max_size=2))
    return (draw(arrays(shape)),), {"pad": tuple(pad), "mode": mode}


@st.composite
def cropped(draw):
    """Pads of F.pad that may be negative (PyTorch crops there), at most the dim's size in
    all, so a dim may end up empty but never below zero."""
    shape = draw(shapes(min_dims=1))
    pad = []
    for n in shape[::-1][:draw(st.integers(1, len(shape)))]:  # pairs start from the last dim
        before = draw(st.integers(-n, 2))
        pad += [before, draw(st.integers(-(n + min(before, 0)), 2))]
    return (draw(arrays(shape)),), {"pad": tuple(pad), "value": draw(st.floats(-1, 1))}


@st.composite
def powered(draw):
    shape_a, shape_b = draw(broadcastable_shapes())
    return (draw(arrays(shape_a, 0.2, 3.0)), draw(arrays(shape_b, -2.0, 2.0))), {}


# ---------------------------------------------------------------------------------- the table

positive = {"low": 0.1, "high": 4.0}
exponent = st.sampled_from([-1.5, -1, 0.5, 2, 3])

CASES = [
    # arithmetic, with broadcasting
    OpCase("add", lambda lib, a, b: a + b, broadcast_pair()),
    OpCase("sub", lambda lib, a, b: a - b, broadcast_pair()),
    OpCase("mul", lambda lib, a, b: a * b, broadcast_pair()),
    OpCase("div", lambda lib, a, b: a / b, broadcast_pair(kinks_b=(0,))),
    OpCase("pow", lambda lib, a, b: a**b, powered()),
    OpCase("pow_scalar", lambda lib, a, p: a**p, unary(**positive, p=exponent)),
    OpCase("rpow", lambda lib, a: 2.5**a, unary()),
    OpCase("scalar_arithmetic", lambda lib, a: (3 - a) * 1.5 / 2 + 1 - 2 / (a + 4), unary()),
    OpCase("matmul", lambda lib, a, b: a @ b, matmul_pair()),
    OpCase("maximum", lambda lib, a, b: lib.maximum(a, b), distinct_pair()),
    OpCase("minimum", lambda lib, a, b: lib.minimum(a, b), distinct_pair()),
    OpCase("where", lambda lib, a, b, condition: lib.where(lib.tensor(condition), a, b),
           chosen()),
    OpCase("clamp", lambda lib, a, **bounds: a.clamp(**bounds), clamped()),
    OpCase("clamp_tensors", clamp_by_tensors, clamped_by_tensors()),
    OpCase("max_tensor", lambda lib, a, b: lib.max(a, b), distinct_pair()),
    OpCase("min_tensor", lambda lib, a, b: a.min(b), distinct_pair()),
    # elementwise math and activations
    OpCase("neg", lambda lib, a: -a, unary()),
    OpCase("exp", lambda lib, a: a.exp(), unary()),
    OpCase("log", lambda lib, a: a.log(), unary(**positive)),
    OpCase("sqrt", lambda lib, a: a.sqrt(), unary(**positive)),
    OpCase("abs", lambda lib, a: a.abs(), unary(kinks=(0,))),
    OpCase("sin", lambda lib, a: a.sin(), unary()),
    OpCase("cos", lambda lib, a: a.cos(), unary()),
    OpCase("relu", lambda lib, a: a.relu(), unary(kinks=(0,))),
    OpCase("sigmoid", lambda lib, a: a.sigmoid(), unary(-6, 6)),
    OpCase("tanh", lambda lib, a: a.tanh(), unary()),
    OpCase("gelu", lambda lib, a, approximate: lib.nn.functional.gelu(a, approximate=approximate),
           unary(approximate=st.sampled_from(["none", "tanh"]))),
    OpCase("silu", lambda lib, a: lib.nn.functional.silu(a), unary()),
    OpCase("cast", lambda lib, a: a.float().double() * 3, unary(),
           gradcheck_options={"eps": 1e-2, "atol": 1e-4}),
    # reductions
    OpCase("sum", lambda lib, a, dim, keepdim: a.sum(dim=dim, keepdim=keepdim), reduction()),
    OpCase("mean", lambda lib, a, dim, keepdim: a.mean(dim=dim, keepdim=keepdim), reduction()),
    OpCase("var", lambda lib, a, **p: a.var(**p), variance()),
    OpCase("std", lambda lib, a, **p: a.std(**p), variance(min_count=2)),
    OpCase("var_unbiased", lambda lib, a, **p: a.var(**p), variance(unbiased=True)),
    OpCase("std_unbiased", lambda lib, a, **p: lib.std(a, **p),
           variance(min_count=2, unbiased=True)),
    OpCase("amax", lambda lib, a, **p: a.amax(**p), reduction(distinct=True)),
    OpCase("amin", lambda lib, a, **p: lib.amin(a, **p), reduction(distinct=True)),
    OpCase("max_all", lambda lib, a: a.max(), distinct_arrays(shapes()).map(lambda x: ((x,), {}))),
    OpCase("max_dim", lambda lib, a, dim: a.max(dim=dim).values, along_dim(distinct=True)),
    OpCase("min_dim", lambda lib, a, dim: lib.min(a, dim, keepdim=True).values,
           along_dim(distinct=True)),
    OpCase("logsumexp", lambda lib, a, **p: a.logsumexp(**p), reduction(dim_required=True)),
    OpCase("softmax", lambda lib, a, dim: a.softmax(dim), along_dim()),
    OpCase("log_softmax", lambda lib, a, dim: a.log_softmax(dim=dim), along_dim()),
    # shape and indexing
    OpCase("reshape", lambda lib, a, shape: a.reshape(shape), reshaped()),
    OpCase("view", lambda lib, a, shape: a.view(shape), reshaped()),
    OpCase("flatten", lambda lib, a, **p: a.flatten(**p), flattened()),
    OpCase("transpose", lambda lib, a, dim0, dim1: a.transpose(dim0, dim1), two_dims()),
    OpCase("T", lambda lib, a: a.T, unary(shape=shapes(min_dims=2, max_dims=2))),
    OpCase("permute", lambda lib, a, dims: a.permute(dims), permuted()),
    OpCase("squeeze", lambda lib, a, dim: a.squeeze(dim), along_dim()),
    OpCase("squeeze_all", lambda lib, a: a.squeeze(),
           unary(shape=shapes(max_side=2))),
    OpCase("unsqueeze", lambda lib, a, dim: a.unsqueeze(dim),
           unary(shape=(2, 3), dim=st.integers(-3, 2))),
    OpCase("expand", lambda lib, a, sizes: a.expand(sizes), expanded()),
    OpCase("index", lambda lib, a, index: a[index], indexed()),
    OpCase("index_negative_step", lambda lib, a, index: a[index], reverse_sliced(),
           pytorch=False),
    OpCase("gather", lambda lib, a, dim, index: a.gather(dim, lib.tensor(index)), gathered()),
    OpCase("cat", lambda lib, *parts, dim: lib.cat(parts, dim=dim), joined()),
    OpCase("stack", lambda lib, *parts, dim: lib.stack(parts, dim=dim), joined(same_shape=True)),
    OpCase("pad", lambda lib, a, pad, value: lib.nn.functional.pad(a, pad, value=value), padded()),
    OpCase("pad_negative", lambda lib, a, pad, value: lib.nn.functional.pad(a, pad, value=value),
           cropped()),
    OpCase("pad_from_input", lambda lib, a, pad, mode: lib.nn.functional.pad(a, pad, mode=mode),
           padded_from_input()),
]

CASE_IDS = [case.name for case in CASES]


def test_every_case_has_a_unique_name():
    assert len(set(CASE_IDS)) == len(CASE_IDS)


# ---------------------------------------------------------------------------------- the tests


(test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
 test_no_graph_under_no_grad) = op_tests(CASES, mg, lambda torch: torch, PYTORCH_TOLERANCE)


# ------------------------------------------------------------------------ numerical stability


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("scale", [1000.0, -1000.0])
def test_stable_at_extreme_logits(torch, op, scale):
    logits = np.array([[1.0, 0.0, -1.0], [2.0, 2.0, -3.0]]) * scale
    ours = mg.tensor(logits, requires_grad=True)
    theirs = torch.tensor(logits, requires_grad=True)
    out, expected = getattr(ours, op)(1), getattr(theirs, op)(1)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    assert np.all(np.isfinite(ours.grad.numpy()))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), atol=1e-12)


def test_sigmoid_is_stable_at_extremes():
    x = mg.tensor([-1000.0, 0.0, 1000.0], requires_grad=True)
    y = x.sigmoid()
    y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.25, 0.0])


def test_repeated_indices_accumulate(torch):
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_max_along_dim_returns_values_and_indices():
    x = mg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = x.max(dim=1)
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert indices.dtype == np.int64 and not indices.requires_grad
    assert mg.max(x, mg.zeros(2, 3)).shape == (2, 3)  # with a tensor: elementwise maximum


# ---------------------------------------------------------------------------------- bad arguments


def test_clamp_without_bounds_raises_as_pytorch(torch):
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max'"):
        torch.tensor(x).clamp()
    calls = [lambda t: t.clamp(), lambda t: t.clip(None, None), lambda t: mg.clamp(t),
             lambda t: mg.clamp(t, min=None, max=None)]
    for call in calls:
        with pytest.raises(ValueError, match="^clamp: at least one of min and max must be given"):
            call(mg.tensor(x, requires_grad=True))


@pytest.mark.parametrize("approximate", ["foo", "Tanh", "", None])
def test_gelu_refuses_an_unknown_approximation_as_pytorch(torch, approximate):
    x = np.linspace(-2, 2, 5)
    with pytest.raises((RuntimeError, TypeError)):
        torch.nn.functional.gelu(torch.tensor(x), approximate=approximate)
    calls = [lambda t: mg.nn.functional.gelu(t, approximate=approximate),
             lambda t: mg.nn.GELU(approximate=approximate)(t)]
    for call in calls:
        with pytest.raises(ValueError) as info:
            call(mg.tensor(x, requires_grad=True))
        message = str(info.value)
        assert message.startswith("gelu:") and repr(approximate) in message, message
        assert "'none'" in message and "'tanh'" in message, message


@pytest.mark.parametrize(("shape", "pad", "mode", "details"), [
    ((2, 3), (1,), "constant", ["even", "(1,)"]),
    ((2, 3), (1, 1, 1), "constant", ["even", "(1, 1, 1)"]),
    ((2, 3), (1, 1, 1, 1, 1, 1), "constant", ["3 pairs", "(2, 3)", "one pair per dim"]),
    ((3,), (0, 0, 0, 0), "constant", ["2 pairs", "(3,)", "one pair per dim"]),
    ((2, 3), (-2, -2), "constant", ["dim 1", "size 3", "(-2, -2)", "-1"]),
    ((2, 3), (1, -4), "constant", ["dim 1", "size 3", "(1, -4)", "-1"]),
    ((2, 3), (-4, 2), "constant", ["dim 1", "size 3", "(-4, 2)", "-1"]),
    ((2, 3), (0, 0, -1, -2), "constant", ["dim 0", "size 2", "(0, 0, -1, -2)", "-1"]),
    ((2, 3), (1, 1), "foo", ["'foo'", "'constant'"]),
    ((2, 3), (3, 0), "reflect", ["'reflect'", "0 to 2", "dim 1", "size 3"]),
    ((2, 3), (0, 4), "circular", ["'circular'", "0 to 3", "dim 1", "size 3"]),
    ((2, 3, 4, 5), (1, 1), "reflect", ["'reflect'", "k + 1 or k + 2", "(2, 3, 4, 5)"]),
], ids=["1-value", "odd-length", "more-pairs-than-dims", "more-pairs-than-dims-1d",
        "crop-beyond-both-ends", "crop-beyond-the-end", "crop-beyond-the-start",
        "crop-beyond-a-leading-dim", "unknown-mode", "reflect-too-wide", "circular-too-wide",
        "reflect-too-many-dims"])
def test_pad_refuses_bad_padding_with_a_clear_message(torch, shape, pad, mode, details):
    """Calls PyTorch refuses as well: each error names pad and says what was wrong."""
    x = np.zeros(shape)
    with pytest.raises((RuntimeError, NotImplementedError)):
        torch.nn.functional.pad(torch.tensor(x), pad, mode=mode)
    with raises_saying(ValueError, details, starts="pad:"):
        mg.nn.functional.pad(mg.tensor(x, requires_grad=True), pad, mode=mode)


@pytest.mark.parametrize("op", ["var", "std"])
def test_unbiased_and_correction_together_are_refused_as_pytorch(torch, op):
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(TypeError):
        getattr(torch.tensor(x), op)(0, unbiased=True, correction=1)
    with pytest.raises(TypeError, match=f"{op}: give unbiased or correction, not both"):
        getattr(mg.tensor(x), op)(0, unbiased=True, correction=1)


def test_pad_from_the_input_does_not_crop():
    """PyTorch crops with a negative replicate or circular width; minigrad refuses, naming it."""
    with raises_saying(ValueError, ["'replicate'", "dim 1", "(-1, 1)"], starts="pad:"):
        mg.nn.functional.pad(mg.zeros(2, 3), (-1, 1), mode="replicate")
