"""Properties of the backward engine (minigrad/autograd.py): deep graphs, accumulation, freeing
the graph, grad mode, user-defined Functions, broadcasting, aliasing and dtypes."""

import gc
import re
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.testing import GradcheckError, gradcheck
from minigrad.testing.strategies import arrays, broadcastable_shapes, shapes

# --------------------------------------------------------------------------------- deep graphs

CHAIN_LENGTH = 100_000


@pytest.mark.parametrize(
    "step, expected_grad",
    [(lambda y: y + 1.0, 1.0), (lambda y: y * 1.0000001, 1.0000001**CHAIN_LENGTH)],
    ids=["add", "mul"],
)
def test_a_chain_of_100k_ops_backpropagates_without_recursion(step, expected_grad):
    x = mg.tensor(1.0, dtype=mg.float64, requires_grad=True)
    y = x
    for _ in range(CHAIN_LENGTH):
        y = step(y)
    y.backward()
    assert x.grad.shape == ()
    np.testing.assert_allclose(x.grad.numpy(), expected_grad, rtol=1e-9)


# -------------------------------------------------------------------- accumulation and freeing


def test_grad_accumulates_across_backward_calls():
    x = mg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 3.0)


def test_accumulation_adds_into_the_existing_grad_tensor():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 2.0).sum().backward()
    first = x.grad
    (x * 5.0).sum().backward()
    assert x.grad is first
    assert first.tolist() == [7.0, 7.0]


def test_retain_graph_allows_a_second_backward():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 3 * x.numpy() ** 2)


@pytest.mark.parametrize("make", [lambda x: (x * x).sum(), lambda x: x.exp().mean(),
                                  lambda x: (x + 1.0).sum()], ids=["mul", "exp", "add"])
def test_second_backward_without_retain_graph_raises(make):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    loss = make(x)
    loss.backward()
    first = x.grad.numpy().copy()
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), first)


@pytest.mark.parametrize("retain_graph", [False, True])
def test_backward_releases_saved_arrays_unless_retain_graph(retain_graph):
    x = mg.randn(100_000, requires_grad=True)
    hidden = x.exp()
    probe = weakref.ref(hidden.array)
    loss = (hidden * hidden).sum()
    del hidden
    gc.collect()
    assert probe() is not None  # the graph keeps exp's output for backward
    loss.backward(retain_graph=retain_graph)
    gc.collect()
    assert (probe() is not None) == retain_graph
    assert (loss.grad_fn.parents == ()) != retain_graph  # the node let go of its inputs


def test_non_leaf_tensors_get_no_grad_and_constants_stay_untouched():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    constant = mg.tensor([3.0, 4.0])
    hidden = x * constant
    hidden.sum().backward()
    assert hidden.grad is None
    assert constant.grad is None
    assert x.grad.tolist() == [3.0, 4.0]


# ---------------------------------------------------------------------------- backward() errors


def test_backward_of_a_non_scalar_without_gradient_raises():
    y = mg.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()


@pytest.mark.parametrize("gradient_shape", [(3, 2), (6,), (1, 2, 3), ()])
def test_backward_with_a_gradient_of_the_wrong_shape_raises(gradient_shape):
    y = mg.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(ValueError) as info:
        y.backward(gradient=np.ones(gradient_shape, dtype=np.float32))
    message = str(info.value).replace(" ", "")
    assert str((2, 3)).replace(" ", "") in message
    assert str(gradient_shape).replace(" ", "") in message


def test_backward_with_an_explicit_gradient_weights_the_result():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).backward(gradient=mg.tensor([1.0, 0.0, -2.0]))
    assert x.grad.tolist() == [2.0, 0.0, -12.0]


@pytest.mark.parametrize("make", [lambda: mg.ones(3).sum(), lambda: mg.ones(3, requires_grad=True)
                                  .detach().sum()], ids=["constant", "detached"])
def test_backward_on_a_tensor_that_does_not_require_grad_raises(make):
    with pytest.raises(RuntimeError, match="require"):
        make().backward()


def test_backward_on_an_int_tensor_says_only_floats_have_gradients():
    with pytest.raises(RuntimeError, match="floating"):
        mg.tensor([1, 2, 3]).sum().backward()


# ------------------------------------------------------------------------------------ grad mode


def test_no_grad_context_builds_no_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = (x * 2).exp().sum()
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf


def test_no_grad_decorator_builds_no_graph():
    seen = []

    @mg.no_grad()
    def double(t):
        seen.append(mg.is_grad_enabled())
        return t * 2

    y = double(mg.tensor([1.0], requires_grad=True))
    assert seen == [False]
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert double.__name__ == "double"


def test_grad_mode_nests():
    outer = mg.no_grad()
    with outer:
        with mg.no_grad():
            assert not mg.is_grad_enabled()
        assert not mg.is_grad_enabled()
        with mg.enable_grad():
            assert mg.is_grad_enabled()
            with outer:  # the same instance entered again
                assert not mg.is_grad_enabled()
            assert mg.is_grad_enabled()
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


def test_enable_grad_records_a_graph_inside_no_grad():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad(), mg.enable_grad():
        y = (x * x).sum()
    assert y.requires_grad and y.grad_fn is not None
    y.backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_enable_grad_decorator_inside_no_grad():
    @mg.enable_grad()
    def square(t):
        return t * t

    x = mg.tensor([3.0], requires_grad=True)
    with mg.no_grad():
        y = square(x)
        assert not mg.is_grad_enabled()
    assert y.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [6.0]


def _enter_as_context(mode, body):
    with mode():
        body()


def _enter_as_decorator(mode, body):
    mode()(body)()


@pytest.mark.parametrize("mode", [mg.no_grad, mg.enable_grad], ids=["no_grad", "enable_grad"])
@pytest.mark.parametrize("enter", [_enter_as_context, _enter_as_decorator],
                         ids=["context", "decorator"])
@pytest.mark.parametrize("start", [True, False], ids=["from-enabled", "from-disabled"])
def test_grad_mode_is_restored_after_an_exception(mode, enter, start):
    def fail():
        raise KeyError("boom")

    with mg.set_grad_enabled(start):
        with pytest.raises(KeyError):
            enter(mode, fail)
        assert mg.is_grad_enabled() is start
    assert mg.is_grad_enabled()


# ------------------------------------------------------------------------- autograd.Function


class Cube(mg.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a**3

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return 3 * a * a * grad


class WrongAtOneCube(Cube):
    """Cube whose backward doubles the gradient of element 1 only."""

    @staticmethod
    def backward(ctx, grad):
        out = Cube.backward(ctx, grad).copy()
        out[1] *= 2
        return out


class ScaledProduct(mg.autograd.Function):
    """factor * a * b + offset, recording what forward and backward were given."""

    calls: list = []

    @staticmethod
    def forward(ctx, a, b, factor, *, offset=0.0):
        ScaledProduct.calls.append(("forward", type(a), type(b), factor, offset))
        ctx.save_for_backward(a, b)
        ctx.factor = factor
        return factor * a * b + offset

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ScaledProduct.calls.append(("backward", ctx.needs_input_grad))
        return (grad * ctx.factor * b if ctx.needs_input_grad[0] else None,
                grad * ctx.factor * a if ctx.needs_input_grad[1] else None,
                None)


def test_custom_function_forward_and_backward():
    x = mg.tensor([1.0, -2.0, 0.5], requires_grad=True)
    y = Cube.apply(x)
    assert y.grad_fn is not None and y.requires_grad
    np.testing.assert_allclose(y.numpy(), x.numpy() ** 3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.numpy() ** 2)


def test_custom_function_under_no_grad_builds_no_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        y = Cube.apply(x)
    assert not y.requires_grad and y.grad_fn is None


@given(x=arrays(shapes(max_dims=3)))
def test_gradcheck_accepts_a_correct_custom_function(x):
    assert gradcheck(Cube.apply, [mg.tensor(x, requires_grad=True)])


def test_gradcheck_reports_a_wrong_backward_with_input_element_and_both_values():
    weight = mg.tensor([0.5, 1.5, -1.0], dtype=mg.float64, requires_grad=True)
    x = mg.tensor([1.0, 2.0, -1.5], dtype=mg.float64, requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda w, t: w * WrongAtOneCube.apply(t), [weight, x])
    message = str(info.value)
    assert "input 1" in message
    assert "(1,)" in message
    number = r"(?:np\.float64\()?([-+0-9.e]+)"
    analytic = float(re.search("analytic " + number, message).group(1))
    numeric = float(re.search("numeric " + number, message).group(1))
    assert numeric != 0.0
    assert analytic == pytest.approx(2 * numeric, rel=1e-4)


def test_gradcheck_refuses_float32_inputs():
    with pytest.raises(ValueError, match="float"):
        gradcheck(Cube.apply, [mg.tensor([1.0, 2.0], requires_grad=True)])


@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True)])
def test_custom_function_gets_needs_input_grad_and_non_tensor_args(needs):
    a = mg.tensor([1.0, 2.0], requires_grad=needs[0])
    b = mg.tensor([3.0, -1.0], requires_grad=needs[1])
    ScaledProduct.calls.clear()
    y = ScaledProduct.apply(a, b, 2.0, offset=10.0)
    np.testing.assert_allclose(y.numpy(), 2.0 * a.numpy() * b.numpy() + 10.0)
    y.sum().backward()
    arrays = type(a.array)  # forward gets the arrays themselves: numpy, or cupy on the GPU
    assert ScaledProduct.calls == [("forward", arrays, arrays, 2.0, 10.0),
                                   ("backward", needs + (False,))]
    for tensor, other, needed in ((a, b, needs[0]), (b, a, needs[1])):
        if needed:
            np.testing.assert_allclose(tensor.grad.numpy(), 2.0 * other.numpy())
        else:
            assert tensor.grad is None


def test_gradcheck_of_a_custom_function_with_constant_args():
    a = mg.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=mg.float64, requires_grad=True)
    b = mg.tensor([[3.0, -1.0], [2.0, 0.25]], dtype=mg.float64, requires_grad=True)
    assert gradcheck(lambda p, q: ScaledProduct.apply(p, q, -1.5, offset=2.0), [a, b])


def test_custom_function_returning_the_wrong_number_of_grads_raises():
    class TwoGrads(mg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2, grad

    with pytest.raises(RuntimeError, match="2 gradients"):
        TwoGrads.apply(mg.tensor([1.0], requires_grad=True)).sum().backward()


# -------------------------------------------------------------------------------- broadcasting


@pytest.mark.parametrize("op", ["add", "mul", "sub", "div"])
@given(shape_pair=broadcastable_shapes(2, min_dims=0, max_dims=3), data=st.data())
def test_broadcast_gradients_are_summed_to_each_input_shape(op, shape_pair, data, torch):
    a = data.draw(arrays(shape_pair[0], low=0.5, high=2.0), label="a")
    b = data.draw(arrays(shape_pair[1], low=0.5, high=2.0), label="b")
    x, y = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)
    getattr(mg, op)(x, y).sum().backward()
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    getattr(torch, op)(tx, ty).sum().backward()
    for mine, theirs in ((x, tx), (y, ty)):
        assert mine.grad.shape == mine.shape
        assert isinstance(mine.grad.numpy(), np.ndarray)
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((), (2, 3)), ((2, 3), ()), ((1,), ()), ((), ())],
    ids=["col-row", "vector-batch", "0d-matrix", "matrix-0d", "1-0d", "0d-0d"],
)
def test_broadcast_mul_gradients_match_analytic_sums(shape_a, shape_b):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=shape_a), rng.normal(size=shape_b)
    x = mg.tensor(a, requires_grad=True)
    y = mg.tensor(b, requires_grad=True)
    (x * y).sum().backward()
    out_shape = np.broadcast_shapes(shape_a, shape_b)
    # d sum(a*b) / da[i] = sum of b over the copies that a[i] was broadcast against
    expected_a = _sum_to(np.broadcast_to(b, out_shape), shape_a)
    expected_b = _sum_to(np.broadcast_to(a, out_shape), shape_b)
    for tensor, expected in ((x, expected_a), (y, expected_b)):
        grad = tensor.grad.numpy()
        assert isinstance(grad, np.ndarray) and grad.shape == tensor.shape
        np.testing.assert_allclose(grad, expected)


def _sum_to(array, shape):
    """Sum `array` down to `shape` with plain NumPy: over added and stretched axes."""
    padded = (1,) * (array.ndim - len(shape)) + tuple(shape)
    stretched = tuple(i for i, n in enumerate(padded) if n == 1)
    return array.sum(axis=stretched, keepdims=True).reshape(shape)


@pytest.mark.parametrize(
    "make", [lambda x: x * x, lambda x: x.exp(), lambda x: x * mg.ones(2, 3), lambda x: x + 1.0,
             lambda x: (x * mg.tensor([1.0, 2.0])).sum()],
    ids=["square", "exp", "times-matrix", "plus-constant", "broadcast-sum"],
)
def test_grad_of_a_0d_leaf_is_a_0d_array_tensor(make):
    x = mg.tensor(2.0, requires_grad=True)
    make(x).sum().backward()
    assert x.grad.shape == ()
    assert isinstance(x.grad.numpy(), np.ndarray)
    assert x.grad.dtype == mg.float32
    assert repr(x.grad).startswith("tensor(")


# ------------------------------------------------------------------------ aliasing and mutation


def test_gradients_of_two_inputs_of_add_do_not_alias():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = mg.tensor([3.0, 4.0], requires_grad=True)
    (x + y).backward(gradient=np.array([1.0, 1.0], dtype=np.float32))
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
    x.grad.numpy()[0] = 100.0
    assert y.grad.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("order", ["view first", "array first"])
def test_leaves_given_views_of_one_gradient_do_not_alias(order):
    """Views are handed to leaves uncopied (kernels return channels-last views): only while
    no other leaf holds the memory they view."""
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = mg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    z = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    terms = [x.T.reshape(4), y, z.reshape(4)]
    out = sum(terms if order == "view first" else terms[::-1])
    out.backward(gradient=np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))
    grads = [x.grad.numpy(), y.grad.numpy(), z.grad.numpy()]
    assert not any(np.shares_memory(a, b) for i, a in enumerate(grads) for b in grads[i + 1:])
    assert x.grad.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert z.grad.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    "op",
    [lambda x: x, lambda x: x + 0.0, lambda x: x.reshape(2, 2), lambda x: x.T,
     lambda x: x[...], lambda x: x.expand(2, 2), lambda x: x * 1.0],
    ids=["leaf", "add", "reshape", "T", "index", "expand", "mul"],
)
def test_grad_does_not_alias_the_user_supplied_gradient(op):
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    gradient = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    op(x).backward(gradient=gradient)
    np.testing.assert_array_equal(gradient, [[1.0, 2.0], [3.0, 4.0]])  # not written into
    assert not np.shares_memory(x.grad.numpy(), gradient)
    gradient[...] = 7.0
    assert x.grad.tolist() != [[7.0, 7.0], [7.0, 7.0]]


def test_backward_does_not_mutate_the_user_supplied_gradient_on_accumulation():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    gradient = np.array([1.0, -1.0], dtype=np.float32)
    for _ in range(2):
        (x * 3.0).backward(gradient=gradient)
    np.testing.assert_array_equal(gradient, [1.0, -1.0])
    assert x.grad.tolist() == [6.0, -6.0]


def test_grad_does_not_alias_the_leaf_data():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    x.backward(gradient=x.detach())
    assert not np.shares_memory(x.grad.numpy(), x.numpy())


FORWARD_BACKWARD_OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0),
    "mul-sum": lambda a, b: (a * b).sum(-1),
    "exp-softmax": lambda a, b: (a.exp() * b).softmax(-1),
    "index": lambda a, b: a[..., :1] * b,
    "relu-max": lambda a, b: mg.maximum(a.relu(), b),
}


@pytest.mark.parametrize("name", sorted(FORWARD_BACKWARD_OPS))
@given(shape=shapes(min_dims=1, max_dims=3), data=st.data())
def test_forward_and_backward_do_not_mutate_inputs(name, shape, data):
    a = data.draw(arrays(shape), label="a")
    b = data.draw(arrays(shape), label="b")
    x = mg.tensor(a, requires_grad=True)
    y = mg.tensor(b, requires_grad=True)
    out = FORWARD_BACKWARD_OPS[name](x, y)
    gradient = np.ones(out.shape)
    out.backward(gradient=gradient)
    np.testing.assert_array_equal(x.numpy(), a)
    np.testing.assert_array_equal(y.numpy(), b)
    np.testing.assert_array_equal(gradient, np.ones(out.shape))
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())


# ---------------------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("leaf_dtype", [mg.float32, mg.float64])
@pytest.mark.parametrize(
    "combine",
    [
        lambda x: x * np.array([1.0, 2.0, 3.0]),
        lambda x: x * mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64),
        lambda x: x * mg.tensor([1.0, 2.0, 3.0], dtype=mg.float32),
        lambda x: x * 2.5,
        lambda x: x * mg.tensor([1, 2, 3]),
        lambda x: x.double() * 2,
        lambda x: x.float() * 2,
        lambda x: (x + mg.tensor([[1.0], [2.0]], dtype=mg.float64)).sum(0),
    ],
    ids=["np-f64", "f64-tensor", "f32-tensor", "pyfloat", "int-tensor", "double", "float",
         "broadcast-f64"],
)
def test_gradient_dtype_equals_the_leaf_dtype(leaf_dtype, combine):
    x = mg.tensor([1.0, 2.0, 3.0], dtype=leaf_dtype, requires_grad=True)
    combine(x).sum().backward()
    assert x.grad.dtype == leaf_dtype
    assert x.grad.shape == x.shape


@pytest.mark.parametrize(
    "use, expected",
    [
        (lambda x: x[mg.tensor([0, 2, 2])], [1.0, 0.0, 2.0]),
        (lambda x: mg.tensor([1, 2, 3]) * x, [1.0, 2.0, 3.0]),
        (lambda x: x / mg.tensor([1, 2, 4]), [1.0, 0.5, 0.25]),
        (lambda x: x + mg.tensor([10, 20, 30]), [1.0, 1.0, 1.0]),
        (lambda x: x * (x > 1.5), [0.0, 1.0, 1.0]),
        (lambda x: x[mg.tensor([True, False, True])], [1.0, 0.0, 1.0]),
        (lambda x: x.gather(0, mg.tensor([2, 2, 0])), [1.0, 0.0, 2.0]),
        (lambda x: mg.where(mg.tensor([True, False, True]), x, mg.tensor([7, 8, 9])),
         [1.0, 0.0, 1.0]),
        (lambda x: x[mg.tensor(1)], [0.0, 1.0, 0.0]),
    ],
    ids=["int-index", "int-times-float", "float-over-int", "float-plus-int", "bool-mask-mul",
         "bool-index", "gather", "where-int-other", "0d-int-index"],
)
def test_integer_and_bool_tensors_mixed_with_float_ones_backpropagate(use, expected):
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    use(x).sum().backward()
    assert x.grad.dtype == mg.float32
    np.testing.assert_allclose(x.grad.numpy(), expected)


# ----------------------------------------------------------------------- shared subexpressions


def test_diamond_graph_gradient_matches_the_analytic_value():
    values = np.array([0.5, -1.0, 2.0])
    x = mg.tensor(values, requires_grad=True)
    y = x * x
    z = y + y * y  # x^2 + x^4
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * values + 4 * values**3)


def _shared_graph(lib, x, w):
    """x and intermediates reused along paths of different lengths and shapes."""
    a = (x * w).exp()
    b = a * x
    c = lib.matmul(b, w.T)
    d = (a + b).sum(-1, keepdim=True) * c
    return (d + a.mean() * b).sum() + (c * c).mean()


@given(data=st.data())
def test_shared_subexpressions_match_pytorch(data, torch):
    x_values = data.draw(arrays((3, 4), low=-1.0, high=1.0), label="x")
    w_values = data.draw(arrays((1, 4), low=-1.0, high=1.0), label="w")
    x, w = mg.tensor(x_values, requires_grad=True), mg.tensor(w_values, requires_grad=True)
    _shared_graph(mg, x, w).backward()
    tx = torch.tensor(x_values, requires_grad=True)
    tw = torch.tensor(w_values, requires_grad=True)
    _shared_graph(torch, tx, tw).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_the_same_tensor_used_twice_in_one_op():
    x = mg.tensor([1.0, 3.0], requires_grad=True)
    (x * x + x / x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())
