"""The Tensor API: construction, factories, attributes, comparisons, in-place updates, and what
happens on bad input (errors that name the op and the shapes involved)."""

import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.testing.strategies import broadcastable_shapes


def _compact(text):
    return text.replace(" ", "")


def assert_mentions(error, *parts):
    """The error message contains each part (shapes compared without spaces)."""
    message = str(error)
    for part in parts:
        wanted = str(part)
        assert _compact(wanted) in _compact(message), f"{wanted!r} not in {message!r}"


# ----------------------------------------------------------------------------- mg.tensor


@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, np.float32),
        ([1.0, 2.0], np.float32),
        ([[1, 2.5], [3, 4]], np.float32),
        (np.array([1.0, 2.0]), np.float64),
        (np.array([1.0, 2.0], dtype=np.float32), np.float32),
        (np.array([1, 2], dtype=np.int32), np.int32),
        (np.float64(2.0), np.float64),
        (3, np.int64),
        ([1, 2, 3], np.int64),
        (True, np.bool_),
        ([True, False], np.bool_),
    ],
    ids=["float", "float-list", "mixed-list", "f64-array", "f32-array", "i32-array",
         "f64-scalar", "int", "int-list", "bool", "bool-list"],
)
def test_tensor_infers_dtype_like_pytorch(data, dtype):
    t = mg.tensor(data)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


@pytest.mark.parametrize(
    "data, dtype",
    [([1, 2], mg.float32), (np.array([1.5, 2.5]), mg.float32), ([1.5], mg.float64),
     ([1.0, 0.0], mg.bool_), (2.7, mg.int64)],
)
def test_tensor_dtype_argument_overrides_inference(data, dtype):
    t = mg.tensor(data, dtype=dtype)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(dtype))


@pytest.mark.parametrize("name, numpy_dtype",
                         [("float32", np.float32), ("float64", np.float64), ("int64", np.int64)])
def test_dtype_names_are_numpy_dtypes(name, numpy_dtype):
    dtype = getattr(mg, name)
    assert isinstance(dtype, np.dtype)
    assert dtype == np.dtype(numpy_dtype)


def test_tensor_copies_a_numpy_array():
    source = np.array([1.0, 2.0, 3.0])
    t = mg.tensor(source)
    source[0] = 100.0
    assert t.tolist() == [1.0, 2.0, 3.0]
    assert not np.shares_memory(t.numpy(), source)


def test_tensor_copies_another_tensor_and_leaves_its_graph():
    source = mg.tensor([1.0, 2.0], requires_grad=True)
    t = mg.tensor(source)
    with mg.no_grad():
        source += 10.0
    assert t.tolist() == [1.0, 2.0]
    assert not t.requires_grad and t.is_leaf


def test_tensor_copies_a_list():
    source = [1.0, 2.0]
    t = mg.tensor(source)
    source[0] = 5.0
    assert t.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("data", ["abc", None, [[1, 2], [3]]], ids=["str", "None", "ragged"])
def test_tensor_rejects_non_numeric_data_with_a_named_error(data):
    with pytest.raises(TypeError) as info:
        mg.tensor(data)
    assert_mentions(info.value, "tensor")


# ----------------------------------------------------------------------------------- factories

SHAPE_FACTORIES = {
    "zeros": mg.zeros,
    "ones": mg.ones,
    "empty": mg.empty,
    "rand": mg.rand,
    "randn": mg.randn,
}


@pytest.mark.parametrize("name", sorted(SHAPE_FACTORIES))
@pytest.mark.parametrize(
    "args, shape",
    [((2, 3), (2, 3)), (((2, 3),), (2, 3)), (([2, 3],), (2, 3)), ((4,), (4,)),
     (((),), ()), ((2, 0, 1), (2, 0, 1))],
    ids=["varargs", "tuple", "list", "1-d", "0-d", "empty"],
)
def test_factories_accept_varargs_and_a_sequence_as_shape(name, args, shape):
    t = SHAPE_FACTORIES[name](*args)
    assert t.shape == shape
    assert isinstance(t.shape, tuple)
    assert t.dtype == mg.float32
    assert not t.requires_grad and t.is_leaf and t.grad is None


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: mg.zeros(2, 3), np.zeros((2, 3))),
        (lambda: mg.ones((2, 3)), np.ones((2, 3))),
        (lambda: mg.full((2, 3), 1.5), np.full((2, 3), 1.5)),
        (lambda: mg.zeros_like(mg.ones(2, 3)), np.zeros((2, 3))),
        (lambda: mg.ones_like(mg.zeros(2, 3)), np.ones((2, 3))),
        (lambda: mg.arange(5), np.arange(5)),
        (lambda: mg.arange(2, 11, 3), np.arange(2, 11, 3)),
        (lambda: mg.arange(0.0, 1.0, 0.25), np.arange(0.0, 1.0, 0.25)),
        (lambda: mg.linspace(0, 1, 5), np.linspace(0, 1, 5)),
        (lambda: mg.eye(3), np.eye(3)),
        (lambda: mg.eye(2, 3), np.eye(2, 3)),
    ],
    ids=["zeros", "ones", "full", "zeros_like", "ones_like", "arange", "arange-step",
         "arange-float", "linspace", "eye", "eye-rect"],
)
def test_factory_values_match_numpy(make, expected):
    t = make()
    assert t.shape == expected.shape
    np.testing.assert_array_equal(t.numpy(), expected.astype(t.dtype))


@pytest.mark.parametrize(
    "make, dtype",
    [
        (lambda: mg.zeros(2), np.float32),
        (lambda: mg.ones(2), np.float32),
        (lambda: mg.empty(2), np.float32),
        (lambda: mg.rand(2), np.float32),
        (lambda: mg.randn(2), np.float32),
        (lambda: mg.eye(2), np.float32),
        (lambda: mg.linspace(0, 1, 3), np.float32),
        (lambda: mg.arange(5), np.int64),
        (lambda: mg.arange(1, 5, 2), np.int64),
        (lambda: mg.arange(5.0), np.float32),
        (lambda: mg.arange(0, 1, 0.5), np.float32),
        (lambda: mg.full((2,), 3), np.int64),
        (lambda: mg.full((2,), 3.0), np.float32),
        (lambda: mg.full((2,), True), np.bool_),
        (lambda: mg.randint(10, (3,)), np.int64),
        (lambda: mg.zeros_like(mg.tensor([1, 2])), np.int64),
        (lambda: mg.ones_like(mg.zeros(2, dtype=mg.float64)), np.float64),
    ],
    ids=["zeros", "ones", "empty", "rand", "randn", "eye", "linspace", "arange-int",
         "arange-int-step", "arange-float", "arange-float-step", "full-int", "full-float",
         "full-bool", "randint", "zeros_like-int", "ones_like-f64"],
)
def test_factory_default_dtypes(make, dtype):
    assert make().dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    "make, dtype",
    [
        (lambda d: mg.zeros(2, 3, dtype=d), mg.float64),
        (lambda d: mg.zeros(2, 3, dtype=d), mg.int64),
        (lambda d: mg.ones((2, 3), dtype=d), mg.float64),
        (lambda d: mg.ones((2, 3), dtype=d), mg.int64),
        (lambda d: mg.empty(2, dtype=d), mg.float64),
        (lambda d: mg.full((2,), 1, dtype=d), mg.float64),
        (lambda d: mg.full((2,), 1.5, dtype=d), mg.float64),
        (lambda d: mg.zeros_like(mg.ones(2), dtype=d), mg.int64),
        (lambda d: mg.ones_like(mg.ones(2), dtype=d), mg.float64),
        (lambda d: mg.arange(4, dtype=d), mg.float64),
        (lambda d: mg.arange(4.0, dtype=d), mg.int64),
        (lambda d: mg.linspace(0, 1, 4, dtype=d), mg.float64),
        (lambda d: mg.eye(3, dtype=d), mg.int64),
        (lambda d: mg.rand(3, dtype=d), mg.float64),
        (lambda d: mg.randn(3, dtype=d), mg.float64),
    ],
)
def test_factory_dtype_argument(make, dtype):
    assert make(dtype).dtype == dtype


@pytest.mark.parametrize(
    "make",
    [
        lambda: mg.zeros(2, 3, requires_grad=True),
        lambda: mg.ones(2, requires_grad=True),
        lambda: mg.empty(2, requires_grad=True),
        lambda: mg.full((2,), 1.5, requires_grad=True),
        lambda: mg.zeros_like(mg.ones(2), requires_grad=True),
        lambda: mg.ones_like(mg.ones(2), requires_grad=True),
        lambda: mg.arange(0.0, 3.0, requires_grad=True),
        lambda: mg.linspace(0, 1, 3, requires_grad=True),
        lambda: mg.eye(2, requires_grad=True),
        lambda: mg.rand(2, requires_grad=True),
        lambda: mg.randn(2, dtype=mg.float64, requires_grad=True),
        lambda: mg.tensor([1.0], requires_grad=True),
    ],
)
def test_factory_requires_grad_makes_a_leaf_that_requires_grad(make):
    t = make()
    assert t.requires_grad
    assert t.is_leaf and t.grad_fn is None and t.grad is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: mg.zeros(2, dtype=mg.int64, requires_grad=True),
        lambda: mg.ones(2, dtype=mg.int64, requires_grad=True),
        lambda: mg.empty(2, dtype=mg.bool_, requires_grad=True),
        lambda: mg.full((2,), 3, requires_grad=True),
        lambda: mg.arange(5, requires_grad=True),
        lambda: mg.eye(2, dtype=mg.int64, requires_grad=True),
        lambda: mg.randint(5, (2,), requires_grad=True),
        lambda: mg.zeros_like(mg.tensor([1, 2]), requires_grad=True),
        lambda: mg.tensor([1, 2], requires_grad=True),
        lambda: mg.tensor([True], requires_grad=True),
    ],
    ids=["zeros", "ones", "empty-bool", "full-int", "arange-int", "eye", "randint",
         "zeros_like", "tensor-int", "tensor-bool"],
)
def test_requires_grad_on_a_non_float_dtype_raises(make):
    with pytest.raises(RuntimeError, match="floating"):
        make()


@pytest.mark.parametrize(
    "name, make",
    [
        ("zeros", lambda: mg.zeros(-1)),
        ("ones", lambda: mg.ones(2, -3)),
        ("empty", lambda: mg.empty((-1, 2))),
        ("full", lambda: mg.full((2, -1), 1.0)),
        ("rand", lambda: mg.rand(-2)),
        ("randn", lambda: mg.randn(2, -1)),
        ("randint", lambda: mg.randint(5, (-1,))),
        ("eye", lambda: mg.eye(-1)),
        ("linspace", lambda: mg.linspace(0, 1, -1)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_negative_size_raises_value_error_naming_the_factory(name, make):
    with pytest.raises(ValueError) as info:
        make()
    assert_mentions(info.value, name)


@pytest.mark.parametrize("args", [(3, 10, (2000,)), (10, (2000,))], ids=["low-high", "high"])
def test_randint_draws_in_the_half_open_range(args):
    mg.manual_seed(0)
    low, high = (0, args[0]) if len(args) == 2 else args[:2]
    values = mg.randint(*args).numpy()
    assert values.shape == (2000,)
    assert values.min() == low and values.max() == high - 1


def test_rand_is_uniform_on_the_unit_interval():
    mg.manual_seed(0)
    values = mg.rand(10_000).numpy()
    assert values.min() >= 0.0 and values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.02


def test_randn_is_standard_normal():
    mg.manual_seed(0)
    values = mg.randn(10_000, dtype=mg.float64).numpy()
    assert abs(values.mean()) < 0.05
    assert abs(values.std() - 1.0) < 0.05


DRAWS = {
    "rand": lambda: mg.rand(5),
    "randn": lambda: mg.randn(2, 3),
    "randint": lambda: mg.randint(0, 1_000_000, (5,)),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_manual_seed_makes_draws_reproducible(name):
    mg.manual_seed(123)
    first = DRAWS[name]().numpy()
    mg.manual_seed(123)
    second = DRAWS[name]().numpy()
    mg.manual_seed(124)
    other = DRAWS[name]().numpy()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


# ---------------------------------------------------------------------- attributes and methods


def test_shape_dtype_ndim_numel_and_size():
    t = mg.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and type(t.shape) is tuple
    assert t.dtype == mg.float32
    assert t.ndim == 3
    assert t.numel() == 24 and isinstance(t.numel(), int)
    assert t.size() == (2, 3, 4)


def test_zero_dim_tensor_attributes():
    t = mg.tensor(2.5)
    assert t.shape == () and t.ndim == 0 and t.numel() == 1


@pytest.mark.parametrize("dim", [-3, -2, -1, 0, 1, 2])
def test_size_of_one_dim_accepts_negative_dims(dim):
    assert mg.zeros(2, 3, 4).size(dim) == (2, 3, 4)[dim]


@pytest.mark.parametrize("dim", [3, -4])
def test_size_of_an_out_of_range_dim_raises_index_error(dim):
    with pytest.raises(IndexError) as info:
        mg.zeros(2, 3, 4).size(dim)
    assert_mentions(info.value, "size")


@pytest.mark.parametrize(
    "data, dtype, expected",
    [(2.5, None, 2.5), ([[7]], None, 7), (True, None, True), (1.25, mg.float64, 1.25)],
)
def test_item_returns_a_python_number(data, dtype, expected):
    value = mg.tensor(data, dtype=dtype).item()
    assert value == expected and type(value) is type(expected)


def test_item_on_a_multi_element_tensor_raises():
    with pytest.raises(ValueError) as info:
        mg.ones(2, 3).item()
    assert_mentions(info.value, "item", (2, 3))


def test_numpy_works_on_a_tensor_that_requires_grad():
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    array = t.numpy()
    assert isinstance(array, np.ndarray) and array.dtype == np.float32
    np.testing.assert_array_equal(array, [1.0, 2.0])


def test_numpy_array_function_converts_a_tensor():
    np.testing.assert_array_equal(np.asarray(mg.tensor([[1, 2], [3, 4]])), [[1, 2], [3, 4]])


@pytest.mark.parametrize("data", [[[1.5, 2.0], [3.0, 4.0]], [1, 2, 3], 2.5, [True, False]])
def test_tolist_round_trips_python_data(data):
    assert mg.tensor(data).tolist() == data


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 3, 4)])
def test_T_reverses_all_dims(shape):
    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    np.testing.assert_array_equal(mg.tensor(array).T.numpy(), array.T)


def test_detach_shares_data_and_leaves_the_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    for source in (x, y):
        d = source.detach()
        assert not d.requires_grad and d.is_leaf and d.grad_fn is None
        assert d.array is source.array
    d = x.detach()
    d += 1.0  # allowed: d does not require grad; x sees the change
    assert x.tolist() == [2.0, 3.0]


def test_leaf_and_non_leaf_attributes():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    assert x.is_leaf and x.grad_fn is None and x.grad is None
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad


def test_requires_grad_underscore_sets_the_flag_and_returns_self():
    t = mg.ones(2)
    assert t.requires_grad_() is t
    assert t.requires_grad
    assert t.requires_grad_(False) is t
    assert not t.requires_grad


def test_requires_grad_underscore_on_an_int_tensor_raises():
    with pytest.raises(RuntimeError, match="floating"):
        mg.tensor([1, 2]).requires_grad_()


def test_a_non_leaf_cannot_stop_requiring_grad():
    y = mg.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


@pytest.mark.parametrize(
    "convert, dtype",
    [
        (lambda t: t.astype(mg.float64), np.float64),
        (lambda t: t.astype(np.int64), np.int64),
        (lambda t: t.float(), np.float32),
        (lambda t: t.double(), np.float64),
        (lambda t: t.long(), np.int64),
    ],
    ids=["astype-f64", "astype-i64", "float", "double", "long"],
)
def test_dtype_conversions_match_numpy_astype(convert, dtype):
    values = np.array([1.5, -1.7, 2.0, -0.2])
    out = convert(mg.tensor(values, dtype=mg.float64))
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out.numpy(), values.astype(dtype))


def test_float_conversion_of_a_requires_grad_tensor_stays_in_the_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    assert x.double().requires_grad and not x.double().is_leaf
    assert not x.long().requires_grad


def test_len_and_iter_go_over_the_first_dim():
    array = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    t = mg.tensor(array)
    assert len(t) == 3
    rows = list(t)
    assert len(rows) == 3
    for row, expected in zip(rows, array):
        assert isinstance(row, mg.Tensor)
        np.testing.assert_array_equal(row.numpy(), expected)


@pytest.mark.parametrize("use", [len, iter], ids=["len", "iter"])
def test_len_and_iter_of_a_0d_tensor_raise_type_error(use):
    with pytest.raises(TypeError):
        use(mg.tensor(1.0))


@pytest.mark.parametrize(
    "data, convert, expected",
    [([0.0], bool, False), ([[3.0]], bool, True), (2.5, float, 2.5), ([2.7], int, 2),
     (-2.7, int, -2), (4, float, 4.0)],
)
def test_python_scalar_conversions_of_one_element_tensors(data, convert, expected):
    value = convert(mg.tensor(data))
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("convert", [bool, float, int])
def test_python_scalar_conversion_of_a_multi_element_tensor_raises(convert):
    with pytest.raises(ValueError):
        convert(mg.tensor([1.0, 2.0]))


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.tensor([1.0, 2.0]),
        lambda m: m.tensor([1.0, 2.0], requires_grad=True),
        lambda m: m.tensor([1, 2]),
        lambda m: m.tensor([True, False]),
        lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]]),
        lambda m: m.tensor(3.0),
        lambda m: m.ones(3).sum(),
        lambda m: m.tensor(1.0) < 2.0,
        lambda m: m.ones(3).all(),
    ],
    ids=["float", "requires-grad", "int", "bool", "matrix", "0d", "0d-sum", "0d-comparison",
         "0d-all"],
)
def test_repr_matches_pytorch(make, torch):
    assert repr(make(mg)) == repr(make(torch))


def test_repr_shows_dtype_for_float64():
    assert repr(mg.tensor([1.0, 2.0], dtype=mg.float64)) == "tensor([1., 2.], dtype=float64)"


def test_repr_shows_grad_fn_for_non_leaves():
    y = mg.tensor([1.0, 2.0], requires_grad=True) * 2
    text = repr(y)
    assert text.startswith("tensor([2., 4.]")
    assert "grad_fn=<Mul" in text
    assert "requires_grad" not in text


# ------------------------------------------------------------------------------- comparisons

COMPARISONS = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]


def _small_ints(shape):
    """Few distinct values, so comparisons see plenty of ties."""
    return hnp.arrays(np.float32, shape, elements=st.integers(-2, 2).map(float))


@pytest.mark.parametrize("compare", COMPARISONS, ids=lambda f: f.__name__)
@given(shape_pair=broadcastable_shapes(2, min_dims=0, max_dims=3), data=st.data())
def test_comparisons_match_numpy_and_build_no_graph(compare, shape_pair, data):
    a = data.draw(_small_ints(shape_pair[0]), label="a")
    b = data.draw(_small_ints(shape_pair[1]), label="b")
    out = compare(mg.tensor(a, requires_grad=True), mg.tensor(b))
    assert isinstance(out, mg.Tensor)
    assert not out.requires_grad and out.grad_fn is None
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out.numpy(), compare(a, b))


@pytest.mark.parametrize("compare", COMPARISONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("other", [0.0, 1, np.float32(1.0)], ids=["float", "int", "np-scalar"])
def test_comparisons_with_a_scalar(compare, other):
    a = np.array([-1.0, 0.0, 1.0, 2.0], dtype=np.float32)
    out = compare(mg.tensor(a, requires_grad=True), other)
    assert not out.requires_grad and out.grad_fn is None
    np.testing.assert_array_equal(out.numpy(), compare(a, other))


REDUCTIONS = [
    ("argmax", lambda t, **kw: t.argmax(**kw), np.argmax),
    ("argmin", lambda t, **kw: t.argmin(**kw), np.argmin),
    ("all", lambda t, **kw: t.all(**kw), np.all),
    ("any", lambda t, **kw: t.any(**kw), np.any),
]


@pytest.mark.parametrize("name, method, reference", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
@pytest.mark.parametrize("kwargs", [{}, {"dim": 0}, {"dim": -1}, {"dim": 1, "keepdim": True}],
                         ids=["all-dims", "dim0", "dim-1", "keepdim"])
def test_arg_and_logical_reductions_match_numpy_and_build_no_graph(name, method, reference,
                                                                   kwargs):
    array = np.array([[0.5, -1.0, 3.0], [0.0, 2.0, -4.0]], dtype=np.float32)
    source = mg.tensor(array, requires_grad=True)
    out = method(source, **kwargs)
    np_kwargs = {"axis": kwargs.get("dim"), "keepdims": kwargs.get("keepdim", False)}
    expected = np.asarray(reference(array, **np_kwargs))
    assert not out.requires_grad and out.grad_fn is None
    assert out.shape == expected.shape
    assert out.dtype == (np.int64 if name.startswith("arg") else np.bool_)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_tensors_are_hashable_by_identity():
    a, b = mg.tensor([1.0, 2.0]), mg.tensor([1.0, 2.0])
    assert len({a, b}) == 2
    lookup = {a: "a", b: "b"}
    assert lookup[a] == "a" and lookup[b] == "b"
    assert hash(a) == object.__hash__(a)


# ---------------------------------------------------------------------------- in-place updates

START = [1.0, 2.0, 4.0]

IN_PLACE = [
    ("+=", lambda t: operator.iadd(t, 2.0), [3.0, 4.0, 6.0]),
    ("-=", lambda t: operator.isub(t, mg.tensor([1.0, 1.0, 1.0])), [0.0, 1.0, 3.0]),
    ("*=", lambda t: operator.imul(t, 3.0), [3.0, 6.0, 12.0]),
    ("/=", lambda t: operator.itruediv(t, 2.0), [0.5, 1.0, 2.0]),
    ("add_", lambda t: t.add_(mg.tensor([1.0, 2.0, 3.0])), [2.0, 4.0, 7.0]),
    ("sub_", lambda t: t.sub_(1.0), [0.0, 1.0, 3.0]),
    ("mul_", lambda t: t.mul_(mg.tensor(2.0)), [2.0, 4.0, 8.0]),
    ("div_", lambda t: t.div_(4.0), [0.25, 0.5, 1.0]),
    ("copy_", lambda t: t.copy_(mg.tensor([7.0, 8.0, 9.0])), [7.0, 8.0, 9.0]),
    ("fill_", lambda t: t.fill_(5.0), [5.0, 5.0, 5.0]),
    ("zero_", lambda t: t.zero_(), [0.0, 0.0, 0.0]),
    ("setitem-int", lambda t: t.__setitem__(1, 9.0), [1.0, 9.0, 4.0]),
    ("setitem-slice", lambda t: t.__setitem__(slice(0, 2), mg.tensor([5.0, 6.0])),
     [5.0, 6.0, 4.0]),
    ("setitem-mask", lambda t: t.__setitem__(mg.tensor([True, False, True]), 0.0),
     [0.0, 2.0, 0.0]),
]
IN_PLACE_IDS = [case[0] for case in IN_PLACE]
RETURNS_SELF = [case for case in IN_PLACE if not case[0].startswith("setitem")]


@pytest.mark.parametrize("name, update, expected", IN_PLACE, ids=IN_PLACE_IDS)
def test_in_place_update_of_a_plain_tensor(name, update, expected):
    t = mg.tensor(START)
    buffer = t.array
    update(t)
    assert t.tolist() == expected
    assert t.array is buffer  # really in place, not a rebinding to a new array


@pytest.mark.parametrize("name, update, expected", IN_PLACE, ids=IN_PLACE_IDS)
def test_in_place_update_of_a_requires_grad_leaf_under_no_grad(name, update, expected):
    t = mg.tensor(START, requires_grad=True)
    with mg.no_grad():
        update(t)
    assert t.tolist() == expected
    assert t.requires_grad and t.is_leaf and t.grad_fn is None


@pytest.mark.parametrize("name, update, expected", IN_PLACE, ids=IN_PLACE_IDS)
def test_in_place_update_of_a_requires_grad_leaf_with_grad_enabled_raises(name, update,
                                                                         expected):
    """As PyTorch: backward accumulates into a leaf, so the graph cannot change it in place
    (a non-leaf can: tests/test_versions_and_hooks.py)."""
    t = mg.tensor(START, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad.*no_grad"):
        update(t)
    assert t.tolist() == START


@pytest.mark.parametrize("name, update, expected", RETURNS_SELF,
                         ids=[case[0] for case in RETURNS_SELF])
def test_in_place_update_returns_the_same_object(name, update, expected):
    t = mg.tensor(START)
    assert update(t) is t


def test_augmented_assignment_keeps_the_parameter_object():
    params = [mg.tensor([1.0, 2.0], requires_grad=True)]
    (params[0] * params[0]).sum().backward()
    with mg.no_grad():
        for p in params:
            p -= 0.25 * p.grad
    assert params[0].tolist() == [0.5, 1.0]
    assert params[0].requires_grad and params[0].is_leaf


def test_in_place_update_on_an_int_tensor_keeps_int_dtype():
    t = mg.tensor([1, 2, 3])
    t += 1
    t *= 2
    assert t.dtype == mg.int64 and t.tolist() == [4, 6, 8]


# ----------------------------------------------------------------------------------- bad input

BAD_INPUT = [
    ("add", lambda: mg.ones(2, 3) + mg.ones(4, 5), ValueError, [(2, 3), (4, 5)]),
    ("sub", lambda: mg.ones(2, 3) - mg.ones(4, 5), ValueError, [(2, 3), (4, 5)]),
    ("mul", lambda: mg.ones(2, 3) * mg.ones(4, 5), ValueError, [(2, 3), (4, 5)]),
    ("div", lambda: mg.ones(2, 3) / mg.ones(4, 5), ValueError, [(2, 3), (4, 5)]),
    ("maximum", lambda: mg.maximum(mg.ones(2, 3), mg.ones(4, 5)), ValueError,
     [(2, 3), (4, 5)]),
    ("eq", lambda: mg.ones(2, 3) == mg.ones(4, 5), ValueError, [(2, 3), (4, 5)]),
    ("matmul", lambda: mg.ones(2, 3) @ mg.ones(4, 5), ValueError, [(2, 3), (4, 5)]),
    ("cat", lambda: mg.cat([mg.ones(2, 3), mg.ones(2, 4)], dim=0), ValueError,
     [(2, 3), (2, 4)]),
    ("stack", lambda: mg.stack([mg.ones(2, 3), mg.ones(3, 2)]), ValueError, [(2, 3), (3, 2)]),
    ("reshape", lambda: mg.ones(2, 3).reshape(4, 5), ValueError, [(2, 3), (4, 5)]),
    ("expand", lambda: mg.ones(2, 3).expand(4, 5), ValueError, [(2, 3), (4, 5)]),
    ("permute", lambda: mg.ones(2, 3, 4).permute(0, 0, 1), ValueError, [(2, 3, 4)]),
    ("index", lambda: mg.ones(2, 3)[5], IndexError, [(2, 3)]),
    ("index", lambda: mg.ones(2, 3)[0, 7], IndexError, [(2, 3)]),
    ("setitem", lambda: mg.ones(2, 3).__setitem__(5, 1.0), IndexError, [(2, 3)]),
    ("setitem", lambda: mg.ones(2, 3).__setitem__(0, mg.ones(5)), ValueError, [(2, 3), (5,)]),
    ("add_", lambda: mg.ones(2, 3).add_(mg.ones(4, 5)), ValueError, [(2, 3), (4, 5)]),
    ("copy_", lambda: mg.ones(2, 3).copy_(mg.ones(4, 5)), ValueError, [(2, 3), (4, 5)]),
    ("where", lambda: mg.where(mg.ones(3), mg.ones(3), mg.zeros(3)), (TypeError, ValueError),
     []),
    ("gather", lambda: mg.ones(2, 3).gather(1, mg.zeros(2, 3)), (TypeError, ValueError), []),
]


@pytest.mark.parametrize("name, fail, error, mentioned", BAD_INPUT,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_INPUT)])
def test_bad_input_error_names_the_op_and_the_shapes(name, fail, error, mentioned):
    with pytest.raises(error) as info:
        fail()
    assert_mentions(info.value, name, *mentioned)


OUT_OF_RANGE_DIM = [
    ("sum", lambda t: t.sum(2)),
    ("mean", lambda t: t.mean(-3)),
    ("var", lambda t: t.var(2)),
    ("amax", lambda t: t.amax(2)),
    ("max", lambda t: t.max(2)),
    ("argmax", lambda t: t.argmax(2)),
    ("all", lambda t: t.all(2)),
    ("logsumexp", lambda t: t.logsumexp(2)),
    ("softmax", lambda t: t.softmax(2)),
    ("log_softmax", lambda t: t.log_softmax(-3)),
    ("transpose", lambda t: t.transpose(0, 2)),
    ("permute", lambda t: t.permute(0, 2)),
    ("squeeze", lambda t: t.squeeze(2)),
    ("unsqueeze", lambda t: t.unsqueeze(3)),
    ("flatten", lambda t: t.flatten(0, 2)),
    ("gather", lambda t: t.gather(2, mg.zeros(2, 3, dtype=mg.int64))),
    ("cat", lambda t: mg.cat([t, t], dim=2)),
    ("stack", lambda t: mg.stack([t, t], dim=3)),
    ("size", lambda t: t.size(-3)),
]


@pytest.mark.parametrize("name, fail", OUT_OF_RANGE_DIM, ids=[c[0] for c in OUT_OF_RANGE_DIM])
def test_out_of_range_dim_raises_index_error_naming_the_op(name, fail):
    with pytest.raises(IndexError) as info:
        fail(mg.ones(2, 3))
    assert_mentions(info.value, name)


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "left, right, dtype",
    [
        (lambda: mg.ones(2), lambda: np.ones(2), np.float64),
        (lambda: mg.ones(2), lambda: mg.ones(2, dtype=mg.float64), np.float64),
        (lambda: mg.ones(2), lambda: 2.5, np.float32),
        (lambda: mg.ones(2), lambda: 3, np.float32),
        (lambda: mg.ones(2, dtype=mg.float64), lambda: 2.5, np.float64),
        (lambda: mg.tensor([1, 2]), lambda: 2.5, np.float64),
        (lambda: mg.tensor([1, 2]), lambda: mg.ones(2), np.float64),
        (lambda: np.ones(2), lambda: mg.ones(2), np.float64),
        (lambda: 2.5, lambda: mg.ones(2), np.float32),
    ],
    ids=["f32+f64-array", "f32+f64", "f32+pyfloat", "f32+pyint", "f64+pyfloat",
         "i64+pyfloat", "i64+f32", "f64-array+f32", "pyfloat+f32"],
)
def test_mixed_dtypes_follow_numpy_promotion(op, left, right, dtype):
    a, b = left(), right()
    out = op(a, b)
    assert isinstance(out, mg.Tensor)
    expected = op(np.asarray(a) if isinstance(a, mg.Tensor) else a,
                  np.asarray(b) if isinstance(b, mg.Tensor) else b)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_int_tensor_plus_int_stays_int64():
    out = mg.tensor([1, 2]) + 3
    assert out.dtype == mg.int64 and out.tolist() == [4, 5]



def test_from_numpy_shares_memory_and_refuses_other_inputs():
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    with mg.backend("numpy"):  # on the cupy backend from_numpy copies to the GPU
        t = mg.from_numpy(array)
    assert t.dtype == np.float64 and t.shape == (2, 3) and not t.requires_grad
    array[0, 0] = 42
    assert t.numpy()[0, 0] == 42
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        mg.from_numpy([1.0, 2.0])
    with pytest.raises(TypeError, match="from_numpy: unsupported dtype <U1"):
        mg.from_numpy(np.array(["a"]))
