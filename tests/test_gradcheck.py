"""gradcheck itself (minigrad/testing/gradcheck.py): it must catch what it claims to.

Three parts: non-finite gradients on either side (never skipped), the wrong backwards users
actually write (each as a small Function, checked element-wise and in fast mode), and the fast
random-direction mode. Every failure is asserted on its message: which input, which element,
both values.
"""

import re

import numpy as np
import pytest
from hypothesis import given

import minigrad as mg
from minigrad.testing import GradcheckError, gradcheck
from minigrad.testing.strategies import arrays, shapes

NUMBER = r"(-?(?:inf|nan|[0-9.]+(?:e[-+]?[0-9]+)?))"


def leaf(values, requires_grad=True):
    return mg.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def failure(fn, inputs, **options) -> str:
    with pytest.raises(GradcheckError) as info:
        gradcheck(fn, inputs, **options)
    return str(info.value)


def values(message: str) -> tuple[float, float]:
    """The analytic and numeric values a failure message reports."""
    analytic = float(re.search(r"analytic (?:np\.float64\()?" + NUMBER, message).group(1))
    numeric = float(re.search(r"numeric (?:np\.float64\()?" + NUMBER, message).group(1))
    return analytic, numeric


def element(message: str) -> tuple[int, ...]:
    found = re.search(r"element \(([0-9, ]*)\)", message)
    return tuple(int(k) for k in found.group(1).split(",") if k.strip())


# ---------------------------------------------------------------------- non-finite gradients


class Elementwise(mg.autograd.Function):
    """f(x) elementwise with the derivative df(x) in backward; both given as keywords."""

    @staticmethod
    def forward(ctx, x, *, f, df):
        ctx.save_for_backward(x)
        ctx.df = df
        with np.errstate(all="ignore"):
            return f(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with np.errstate(all="ignore"):
            return grad * ctx.df(x)


def elementwise(f, df):
    """fn(c, x) = f(x) + c: input 0 is a constant, so a report about input 1 is the right one."""
    return lambda c, x: Elementwise.apply(x, f=f, df=df) + c


def at(value, *, where, otherwise):
    """`otherwise(x)` with `value` at the elements where `where(x)`."""
    return lambda t: np.where(where(t), value, otherwise(t))


EPS = 1e-6  # gradcheck's default; log at x = EPS has f(x - EPS) = log(0) = -inf
LOG, INV = np.log, (lambda t: 1 / t)

NON_FINITE_FAILURES = {
    # name: (f, df, x, the element reported, which side is non-finite, what analytic and
    # numeric are there, and whether fast mode sees it whatever the random direction)
    "numeric inf (log next to 0: f(x - eps) = -inf), analytic finite": (
        LOG, INV, [2.0, 3.0, EPS], (2,), "numeric gradient is non-finite", "finite", "inf",
        False),
    "numeric nan (log of a negative), analytic finite": (
        LOG, INV, [-1.0, 2.0], (0,), "numeric gradient is non-finite", "finite", "nan", True),
    "analytic nan (2 y / x at 0), numeric finite": (
        np.square, at(np.nan, where=lambda t: t == 0, otherwise=lambda t: 2 * t),
        [1.0, 0.0, -2.0], (1,), "analytic gradient is non-finite", "nan", "finite", True),
    "analytic inf, numeric finite": (
        np.square, at(np.inf, where=lambda t: t == 0, otherwise=lambda t: 2 * t),
        [1.0, -2.0, 0.0], (2,), "analytic gradient is non-finite", "inf", "finite", True),
    "analytic inf, numeric nan (exp overflows on both sides: inf - inf)": (
        np.exp, np.exp, [1000.0, 0.5], (0,), "both are non-finite", "inf", "nan", True),
    "analytic and numeric infinities of opposite sign": (
        LOG, at(-np.inf, where=lambda t: t == EPS, otherwise=INV), [2.0, EPS], (1,),
        "both are non-finite", "inf", "inf", False),
}
ROBUST_IN_FAST_MODE = {name: case for name, case in NON_FINITE_FAILURES.items() if case[-1]}


@pytest.mark.parametrize("case", NON_FINITE_FAILURES.values(), ids=NON_FINITE_FAILURES.keys())
def test_gradcheck_fails_on_a_non_finite_gradient_and_says_which_side(case):
    f, df, x, index, side, analytic_kind, numeric_kind, _ = case
    message = failure(elementwise(f, df), [leaf(np.zeros(len(x)), False), leaf(x)])
    assert side in message
    assert "input 1 " in message and element(message) == index
    analytic, numeric = values(message)
    for value, kind in ((analytic, analytic_kind), (numeric, numeric_kind)):
        if kind == "finite":
            assert np.isfinite(value)
        else:
            assert np.isnan(value) if kind == "nan" else np.isinf(value)
    if analytic_kind == numeric_kind == "inf":
        assert np.sign(analytic) == -np.sign(numeric)


def test_gradcheck_fails_when_every_numeric_entry_is_nan():
    """The old hole: nanmax of an all-NaN error is NaN, `NaN > tol` is False, and any
    backward at all passed. Here backward returns 123 for a function that is NaN everywhere."""
    fn = elementwise(LOG, lambda t: np.full_like(t, 123.0))
    message = failure(fn, [leaf([0.0, 0.0], False), leaf([-1.0, -2.0])])
    assert "numeric gradient is non-finite" in message
    assert "input 1 " in message and element(message) == (0,)
    assert np.isnan(values(message)[1])


def test_a_non_finite_output_is_named_where_it_makes_every_numeric_entry_non_finite():
    """One NaN output makes sum(u * f) NaN whichever element moves: the report is about the
    first element, and says which output element is the cause."""
    message = failure(elementwise(LOG, INV), [leaf([0.0, 0.0, 0.0], False),
                                              leaf([2.0, 3.0, -1.0])])
    assert "input 1 " in message and element(message) == (0,)
    assert "output 0 is nan at element (2,)" in message


@pytest.mark.parametrize("case", ROBUST_IN_FAST_MODE.values(), ids=ROBUST_IN_FAST_MODE.keys())
def test_fast_mode_fails_on_a_non_finite_gradient_too(case):
    f, df, x, *_ = case
    message = failure(elementwise(f, df), [leaf(np.zeros(len(x)), False), leaf(x)],
                      fast_mode=True)
    assert "non-finite" in message and "input 1 " in message


@pytest.mark.parametrize("fast_mode", [False, True], ids=["element-wise", "fast"])
def test_nan_on_both_sides_counts_as_agreement(fast_mode):
    """log of negatives is NaN, and a backward that says its derivative is NaN agrees."""
    df = at(np.nan, where=lambda t: t < 0, otherwise=INV)
    assert gradcheck(elementwise(LOG, df), [leaf([0.0, 0.0], False), leaf([-1.0, -3.0])],
                     fast_mode=fast_mode)


def test_the_same_infinity_on_both_sides_counts_as_agreement():
    """log at x = eps: f(x - eps) = log(0) = -inf, so the numeric gradient there is u * inf;
    a backward giving +inf there agrees (-inf does not: see the table above)."""
    df = at(np.inf, where=lambda t: t == EPS, otherwise=INV)
    assert gradcheck(elementwise(LOG, df), [leaf([0.0, 0.0], False), leaf([2.0, EPS])])


# ------------------------------------------------------------- the wrong backwards users write


class MatMul(mg.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad @ b.T, a.T @ grad


class TransposedMatMul(MatMul):
    """The gradient of b transposed: same shape when b is square, wrong values off the
    diagonal (a is non-square, so it can't be mistaken for a symmetric case)."""

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad @ b.T, (a.T @ grad).T


class Mul(mg.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad * a


class MissingGradMul(Mul):
    """Returns None for b, which requires grad."""

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, None


class DoubledGradMul(Mul):
    """The gradient of b twice too large."""

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, 2 * grad * a


class Cube(mg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


class ForgotTheSquareCube(Cube):
    """3 x instead of 3 x**2: right only at 0 and 1."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x


class Square(mg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x


class InPlaceReLU(mg.autograd.Function):
    """ReLU that clamps its input array in place in forward (and returns it)."""

    @staticmethod
    def forward(ctx, x):
        np.maximum(x, 0, out=x)
        ctx.save_for_backward(x > 0)
        return x

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask


class InPlaceBackwardSquare(Square):
    """Backward doubles the saved input in place (`x *= 2`) instead of computing 2 * x."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        x *= 2
        return grad * x


def wrong_backwards():
    """name: (fn, inputs, the wrong input, the wrong element or None for 'any off-diagonal')."""
    return {
        "missing gradient": (  # b's gradient is u * a: nonzero only at element 2
            MissingGradMul.apply, [leaf([0.0, 0.0, 0.5]), leaf([1.0, -2.0, 1.5])], 1, None),
        "transposed gradient": (
            TransposedMatMul.apply,
            [leaf([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]]),
             leaf([[1.0, 0.5, -2.0], [2.0, 1.5, 0.25], [-1.0, 3.0, 0.75]])], 1, None),
        "gradient twice too large": (
            DoubledGradMul.apply, [leaf([1.0, -2.0, 0.5]), leaf([3.0, 1.0, -1.0])], 1, None),
        "wrong second output": (  # 3 x == 3 x**2 at 0 and 1: wrong at element 2 only
            lambda w, x: (Square.apply(w), ForgotTheSquareCube.apply(x)),
            [leaf([1.0, 2.0]), leaf([1.0, 0.0, -2.0])], 1, (2,)),
        "input changed in place in forward": (
            lambda w, x: Mul.apply(w, InPlaceReLU.apply(x)),
            [leaf([1.0, 2.0, 3.0]), leaf([1.0, -2.0, 3.0])], 1, (1,)),
        "saved input changed in place in backward": (
            lambda w, x: Mul.apply(w, InPlaceBackwardSquare.apply(x)),
            [leaf([1.0, 2.0]), leaf([0.5, 1.5])], 1, (0,)),
    }


WRONG = list(wrong_backwards())


@pytest.mark.parametrize("name", WRONG)
def test_gradcheck_catches_a_wrong_backward_and_names_input_and_element(name):
    fn, inputs, wrong_input, wrong_element = wrong_backwards()[name]
    message = failure(fn, inputs)
    assert f"input {wrong_input} " in message
    index = element(message)
    if "in place" in name:
        when = "the forward pass" if "forward" in name else "backward"
        assert f"changed in place during {when}" in message
        assert index == wrong_element
        return
    analytic, numeric = values(message)
    assert abs(analytic - numeric) > 1e-3 * abs(numeric) + 1e-5
    if name == "missing gradient":
        assert "received no gradient" in message
        assert index == (2,) and analytic == 0.0 and numeric != 0.0
    elif name == "transposed gradient":
        assert len(index) == 2 and index[0] != index[1]  # the diagonal of a transpose is right
        grad = inputs[1].grad.numpy()  # gradcheck leaves backward's gradient on the input
        assert analytic == grad[index]
        assert numeric == pytest.approx(grad.T[index], rel=1e-6)
    elif name == "gradient twice too large":
        assert analytic == pytest.approx(2 * numeric, rel=1e-6)
    else:
        assert index == wrong_element


def test_the_wrong_second_output_is_what_fails():
    """Each output alone: the first checks out, the second does not (so the failure above is
    the second output's contribution, not an artefact of the pair)."""
    w, x = leaf([1.0, 2.0]), leaf([1.0, 0.0, -2.0])
    assert gradcheck(Square.apply, [w])
    assert gradcheck(Cube.apply, [x])
    with pytest.raises(GradcheckError, match=r"input 0 .*element \(2,\)"):
        gradcheck(ForgotTheSquareCube.apply, [x])


def test_the_right_backwards_pass():
    """The same ops with the right backward pass, in both modes: the failures above are the
    wrong backwards, not gradcheck being too strict."""
    a, b = leaf([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]]), leaf(np.arange(9.0).reshape(3, 3) - 4)
    for fast_mode in (False, True):
        assert gradcheck(MatMul.apply, [a, b], fast_mode=fast_mode)
        assert gradcheck(Mul.apply, [leaf([1.0, -2.0]), leaf([3.0, 1.0])], fast_mode=fast_mode)
        assert gradcheck(lambda w, x: (Square.apply(w), Cube.apply(x)),
                         [leaf([1.0, 2.0]), leaf([1.0, 0.0, -2.0])], fast_mode=fast_mode)


def test_gradcheck_does_not_report_an_unchanged_nan_input_as_changed():
    unused = leaf([1.0, np.nan])  # a NaN is unequal to itself, but unchanged
    assert gradcheck(lambda c, t: Square.apply(t), [unused, leaf([1.0, 2.0])])


def test_an_input_that_does_not_require_grad_may_change_in_place():
    """As batch norm's running statistics do in training mode."""
    def fn(x, running):
        running.array *= 0.9  # updated in place outside the graph, as a running mean is
        return Square.apply(x)

    assert gradcheck(fn, [leaf([1.0, 2.0]), leaf([1.0, 1.0], False)])


# -------------------------------------------------------------------------------- fast mode


@pytest.mark.parametrize("name", WRONG)
def test_fast_mode_catches_the_wrong_backwards_with_both_values_and_the_shapes(name):
    fn, inputs, wrong_input, _ = wrong_backwards()[name]
    message = failure(fn, inputs, fast_mode=True)
    assert f"input {wrong_input} " in message
    if "in place" in name:
        assert "changed in place" in message
        return
    shapes_ = ", ".join(str(t.shape) for t in inputs)
    assert f"input shapes: {shapes_}" in message
    analytic, numeric = values(message)
    assert abs(analytic - numeric) > 1e-3 * abs(numeric) + 1e-5
    if name == "missing gradient":
        assert "received no gradient" in message and analytic == 0.0
    if name == "gradient twice too large":
        assert analytic == pytest.approx(2 * numeric, rel=1e-6)


def test_fast_mode_calls_the_function_twice_per_input_whatever_its_size():
    calls = []

    def fn(a, b):
        calls.append(1)
        return MatMul.apply(a, b)

    rng = np.random.default_rng(0)
    a, b = leaf(rng.normal(size=(40, 30))), leaf(rng.normal(size=(30, 20)))
    assert gradcheck(fn, [a, b], fast_mode=True)
    assert len(calls) == 1 + 2 * 2  # one forward for backward, then +-eps along v per input


def test_fast_mode_leaves_the_inputs_as_they_were():
    a, b = leaf([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]]), leaf(np.ones((3, 2)))
    copies = a.numpy().copy(), b.numpy().copy()
    gradcheck(MatMul.apply, [a, b], fast_mode=True)
    for tensor, copy in zip((a, b), copies):
        np.testing.assert_array_equal(tensor.numpy(), copy)
    with pytest.raises(GradcheckError):
        gradcheck(TransposedMatMul.apply, [a, leaf(np.arange(9.0).reshape(3, 3))],
                  fast_mode=True)
    np.testing.assert_array_equal(a.numpy(), copies[0])


@pytest.mark.parametrize("fast_mode", [False, True], ids=["element-wise", "fast"])
def test_an_output_that_views_its_input_is_differenced_correctly(fast_mode):
    """x.T and x.reshape return views of x: f(x + eps) must be read before x moves again."""
    x = leaf([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
    assert gradcheck(lambda t: (t.T, t.reshape(3, 2)), [x], fast_mode=fast_mode)


@given(x=arrays(shapes(max_dims=3)))
def test_fast_mode_accepts_a_correct_function(x):
    assert gradcheck(Cube.apply, [leaf(x)], fast_mode=True)


def test_the_signature_stays_positional_compatible():
    """eps, atol, rtol, seed positionally, as before; fast_mode only by name (as PyTorch)."""
    x = leaf([1.0, -2.0, 0.5])
    assert gradcheck(Cube.apply, [x], 1e-6, 1e-5, 1e-3, 3)
    with pytest.raises(TypeError):
        gradcheck(Cube.apply, [x], 1e-6, 1e-5, 1e-3, 3, True)
