"""Dim arguments, negative and positive, against PyTorch: every op and method that takes a dim.

Each case is swept over every valid dim argument (each dim, each pair, each permutation, each
set of dims, spelled with positive and negative dims) on tensors of 0 to 4 dims, and must give
PyTorch's outputs and, for a random upstream gradient, PyTorch's input gradient. A dim just
outside the valid range must raise IndexError, as in PyTorch, with a message naming the op, the
dim and the range.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import minigrad as mg

TOLERANCE = {"rtol": 1e-10, "atol": 1e-10}
SHAPES = [(), (4,), (1, 3), (2, 1, 3, 2)]  # 0-d to 4-d, with size-1 dims for squeeze

Shape = tuple[int, ...]


# ------------------------------------------------------------------------------ dim arguments
# A case's `valid(shape)` lists every valid argument tuple. The valid dims are [-n, n-1] with
# n = ndim, ndim + 1 for ops that add a dim (unsqueeze, stack), and n = 1 for a 0-d tensor
# (PyTorch takes dim 0 and -1 there).


def span(ndim: int, extra: int = 0) -> int:
    return max(ndim + extra, 1)


def one(shape: Shape) -> list[tuple]:
    n = span(len(shape))
    return [(d,) for d in range(-n, n)]


def one_new(shape: Shape) -> list[tuple]:
    n = span(len(shape), extra=1)
    return [(d,) for d in range(-n, n)]


def pairs(shape: Shape) -> list[tuple]:
    return [a + b for a, b in itertools.product(one(shape), repeat=2)]


def ordered_pairs(shape: Shape) -> list[tuple]:
    n = span(len(shape))
    return [(a, b) for a, b in pairs(shape) if a % n <= b % n]


def spellings(dims: tuple[int, ...], n: int) -> list[tuple[int, ...]]:
    """Distinct dims written all positive, all negative, and mixed both ways."""
    written = [dims, tuple(d - n for d in dims)]
    written += [tuple(d - n if i % 2 == k else d for i, d in enumerate(dims)) for k in (0, 1)]
    return list(dict.fromkeys(written))


def permutations(shape: Shape) -> list[tuple]:
    n = len(shape)
    return [(p,) for perm in itertools.permutations(range(n)) for p in spellings(perm, n)]


def subsets(shape: Shape) -> list[tuple]:
    """Tuples of distinct dims, () included (which reduces every dim in sum, mean, ...)."""
    n = span(len(shape))
    chosen = [c for k in range(n + 1) for c in itertools.combinations(range(n), k)]
    return [(s,) for c in chosen for s in spellings(c, n)]


def reducing_several(valid: Callable) -> Callable:
    """Only arguments that reduce more than one element: var/std of one element divide by
    n - 1 = 0, and std's gradient at zero variance is 0/0; neither is about dims."""
    def usable(shape: Shape) -> list[tuple]:
        def count(dims):
            dims = range(len(shape)) if dims == () else (dims,) if isinstance(dims, int) else dims
            return math.prod(shape[d] for d in dims) if shape else 1
        return [args for args in valid(shape) if count(args[0]) > 1]
    return usable


def nonempty_subsets(shape: Shape) -> list[tuple]:
    return [args for args in subsets(shape) if args != ((),)]


@dataclass(frozen=True)
class Case:
    id: str
    op: str  # the op the error messages must name
    call: Callable  # (library, x, *args) -> a tensor, a tuple of tensors, or an int
    valid: Callable[[Shape], list[tuple]]
    # the args with one out-of-range dim `d` put in, for a tensor of `ndim` dims
    bad: Callable[[int, int], tuple] = field(default=lambda d, ndim: (d,))
    extra: int = 0  # 1 where the valid range is [-ndim-1, ndim]
    min_ndim: int = 0


def forms(op: str, valid: Callable, suffix: str = "", on: Callable = lambda x: x, kw=None,
          **options) -> list[Case]:
    """`x.op(*args, **kw)` and `lib.op(x, *args, **kw)`, x being `on(input)`."""
    kw = kw or {}
    label = f"{op}{suffix}{'-keepdim' if kw else ''}"
    return [
        Case(f"{label}-method", op, lambda lib, x, *a: getattr(on(x), op)(*a, **kw), valid,
             **options),
        Case(f"{label}-function", op, lambda lib, x, *a: getattr(lib, op)(on(x), *a, **kw),
             valid, **options),
    ]


def reductions(op: str, valid: Callable, suffix: str = "", **options) -> list[Case]:
    """Both forms, and keepdim=True in one of them (alternating, to keep the sweep short)."""
    keep = forms(op, valid, suffix=suffix, kw={"keepdim": True}, **options)
    return forms(op, valid, suffix=suffix, **options) + [keep[len(suffix) % 2]]


def set_bad(d, ndim):
    return ((0, d),)


def perm_bad(d, ndim):
    return ((d,) + tuple(range(1, ndim)),)


def functional(lib):
    return lib.nn.functional


def gather_index(lib, x, dim):
    """Indices along `dim`, with repeats (so the gradient adds up), of the shape of `x`."""
    n = x.shape[dim] if -x.ndim <= dim < x.ndim else 1  # 1 for 0-d, and for a bad dim
    return lib.tensor((np.arange(math.prod(x.shape)).reshape(tuple(x.shape)) * 7) % n)


def first_along(x, dim):
    """x's first slice along `dim`, kept as a size-1 dim: to cat unequal sizes along `dim`."""
    return x[(slice(None),) * (dim % x.ndim) + (slice(0, 1),)]


def positive(x):
    return x > 0


CASES: list[Case] = [
    *[case for op in ("sum", "mean", "amax", "amin")
      for case in reductions(op, one) + reductions(op, subsets, "-dims", bad=set_bad)],
    *reductions("logsumexp", one),
    # PyTorch's logsumexp over () fails ("output with shape [] doesn't match ... [1, 1]")
    *reductions("logsumexp", nonempty_subsets, "-dims", bad=set_bad),
    *[case for op in ("var", "std")
      for case in reductions(op, reducing_several(one))
      # () has its own test below: PyTorch's var over () reduces every dim, but its backward
      # divides by 0 as if it reduced none
      + reductions(op, reducing_several(nonempty_subsets), "-dims", bad=set_bad)],
    *[case for op in ("max", "min", "argmax", "argmin") for case in reductions(op, one)],
    *[case for op in ("all", "any")
      for case in reductions(op, one, on=positive)
      + reductions(op, subsets, "-dims", on=positive, bad=set_bad)],
    *forms("softmax", one), *forms("log_softmax", one),
    Case("F.softmax", "softmax", lambda lib, x, d: functional(lib).softmax(x, dim=d), one),
    Case("F.log_softmax", "log_softmax", lambda lib, x, d: functional(lib).log_softmax(x, d),
         one),
    Case("nn.Softmax", "softmax", lambda lib, x, d: lib.nn.Softmax(d)(x), one),
    Case("nn.LogSoftmax", "log_softmax", lambda lib, x, d: lib.nn.LogSoftmax(dim=d)(x), one),
    *forms("flatten", ordered_pairs, bad=lambda d, ndim: (0, d)),
    Case("nn.Flatten", "flatten", lambda lib, x, a, b: lib.nn.Flatten(a, b)(x), ordered_pairs,
         bad=lambda d, ndim: (d, -1)),
    *forms("transpose", pairs, bad=lambda d, ndim: (d, 0)),
    *forms("permute", permutations, bad=perm_bad, min_ndim=1),
    Case("permute-varargs", "permute", lambda lib, x, dims: x.permute(*dims), permutations,
         bad=perm_bad, min_ndim=1),
    *forms("squeeze", one), *forms("squeeze", subsets, "-dims", bad=set_bad),
    *forms("unsqueeze", one_new, extra=1),
    Case("gather-method", "gather", lambda lib, x, d: x.gather(d, gather_index(lib, x, d)), one),
    Case("gather-function", "gather",
         lambda lib, x, d: lib.gather(x, d, gather_index(lib, x, d)), one),
    Case("cat", "cat", lambda lib, x, d: lib.cat([x, 2 * x, first_along(x, d)], d), one,
         min_ndim=1),
    Case("cat-tuple", "cat", lambda lib, x, d: lib.cat((x, -x), dim=d), one, min_ndim=1),
    Case("stack", "stack", lambda lib, x, d: lib.stack([x, 2 * x, -x], d), one_new, extra=1),
    Case("stack-tuple", "stack", lambda lib, x, d: lib.stack((x, x), dim=d), one_new, extra=1),
    # size takes no dim of a 0-d tensor: PyTorch does not wrap a scalar here
    Case("size", "size", lambda lib, x, d: x.size(d), one, min_ndim=1),
    # splitting, rolling, selecting, sorting, cumsum and norm (tests/test_tensor_methods.py)
    Case("chunk-method", "chunk", lambda lib, x, d: x.chunk(2, d), one, min_ndim=1),
    Case("chunk-function", "chunk", lambda lib, x, d: lib.chunk(x, 3, dim=d), one, min_ndim=1),
    Case("split-method", "split", lambda lib, x, d: x.split(1, d), one, min_ndim=1),
    Case("split-function", "split", lambda lib, x, d: lib.split(x, 2, dim=d), one, min_ndim=1),
    *forms("unbind", one, min_ndim=1),
    *forms("flip", subsets, "-dims", bad=set_bad),
    Case("roll-method", "roll", lambda lib, x, d: x.roll(1, d), one, min_ndim=1),
    Case("roll-function", "roll", lambda lib, x, d: lib.roll(x, (2, -1), (d, -1)), one,
         min_ndim=1),
    Case("index_select-method", "index_select",
         lambda lib, x, d: x.index_select(d, lib.tensor([0, 0] if x.ndim else [0])), one),
    Case("index_select-function", "index_select",
         lambda lib, x, d: lib.index_select(x, d, lib.tensor([0])), one),
    *forms("cumsum", one),
    *forms("sort", one), *forms("argsort", one),
    Case("sort-descending", "sort", lambda lib, x, d: lib.sort(x, d, descending=True), one),
    Case("topk-method", "topk", lambda lib, x, d: x.topk(1, d), one),
    Case("topk-function", "topk", lambda lib, x, d: lib.topk(x, 1, dim=d, largest=False), one),
    Case("norm-method", "norm", lambda lib, x, d: x.norm(dim=d), one),
    Case("norm-function", "norm", lambda lib, x, d: lib.norm(x, 2, d, keepdim=True), one),
    Case("norm-dims", "norm", lambda lib, x, d: x.norm(p=3, dim=d), subsets, bad=set_bad),
]

BY_CASE = [pytest.param(case, id=case.id) for case in CASES]


def shapes_for(case: Case) -> list[Shape]:
    return [shape for shape in SHAPES if len(shape) >= case.min_ndim]


# ------------------------------------------------------------------------------ the oracle


def _is_float(out) -> bool:
    return str(getattr(out, "dtype", "")).removeprefix("torch.").startswith("float")


def _run(lib, case: Case, data: np.ndarray, args: tuple, seed: int):
    """The outputs and the input's gradient under the upstream gradient drawn from `seed`."""
    x = lib.tensor(data, requires_grad=True)
    out = case.call(lib, x, *args)
    outs = tuple(out) if isinstance(out, tuple) else (out,)
    rng = np.random.default_rng(seed)
    grads = [lib.tensor(np.asarray(rng.standard_normal(tuple(o.shape)))) for o in outs
             if _is_float(o)]
    if grads:
        sum((o * g).sum() for o, g in zip([o for o in outs if _is_float(o)], grads)).backward()
    return outs, x.grad


def _compare(ours, theirs, where: str) -> None:
    (outs, grad), (expected, expected_grad) = ours, theirs
    assert len(outs) == len(expected), where
    for out, want in zip(outs, expected):
        if isinstance(want, int):  # size(dim)
            assert out == want, where
            continue
        assert out.shape == tuple(want.shape), where
        assert str(out.dtype) == str(want.dtype).removeprefix("torch."), where
        np.testing.assert_allclose(out.numpy(), want.detach().numpy(), **TOLERANCE,
                                   err_msg=where)
    assert (grad is None) == (expected_grad is None), where
    if grad is not None:
        np.testing.assert_allclose(grad.numpy(), expected_grad.numpy(), **TOLERANCE,
                                   err_msg=f"gradient, {where}")


@pytest.mark.parametrize("case", BY_CASE)
def test_every_valid_dim_matches_pytorch_forward_and_backward(torch, case):
    for shape in shapes_for(case):
        data = np.asarray(np.random.default_rng(len(shape)).standard_normal(shape))
        for i, args in enumerate(case.valid(shape)):
            where = f"{case.id} on shape {shape} with dim args {args}"
            expected = _run(torch, case, data, args, seed=i)
            _compare(_run(mg, case, data, args, seed=i), expected, where)


def test_the_sweep_tries_every_case_on_1d_and_4d_tensors():
    for case in CASES:
        for shape in SHAPES[1], SHAPES[-1]:
            assert shape in shapes_for(case) and case.valid(shape), (case.id, shape)


@pytest.mark.parametrize("op", ["var", "std"])
def test_var_and_std_over_no_dims_reduce_every_dim(torch, op):
    data = np.random.default_rng(0).standard_normal((2, 3))
    x, whole = mg.tensor(data, requires_grad=True), mg.tensor(data, requires_grad=True)
    getattr(x, op)(()).backward()
    getattr(whole, op)().backward()
    expected = getattr(torch.tensor(data), op)(())
    np.testing.assert_allclose(getattr(x, op)(()).numpy(), expected.numpy(), **TOLERANCE)
    np.testing.assert_allclose(x.grad.numpy(), whole.grad.numpy(), **TOLERANCE)


def test_the_reported_permute_with_negative_dims(torch):
    data = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    out = mg.tensor(data).permute(-2, -1, 1, 0)
    assert out.shape == (4, 5, 3, 2)
    np.testing.assert_array_equal(out.numpy(), torch.tensor(data).permute(-2, -1, 1, 0).numpy())


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("case", BY_CASE)
def test_out_of_range_dims_raise_index_error_naming_op_dim_and_range(torch, case):
    for shape, dim in itertools.product(shapes_for(case), (0, 1)):
        n = span(len(shape), case.extra)
        dim = (n, -n - 1)[dim]  # just past either end
        args = case.bad(dim, len(shape))
        with pytest.raises(IndexError):
            case.call(torch, torch.tensor(np.zeros(shape)), *args)
        with pytest.raises(IndexError) as info:
            case.call(mg, mg.tensor(np.zeros(shape)), *args)
        message = str(info.value)
        assert message.startswith(f"{case.op}:"), message
        assert f"expected to be in range of [{-n}, {n - 1}], but got {dim})" in message, message


@pytest.mark.parametrize("call, op", [
    (lambda x: x.permute(0, 1, -3, 3), "permute"),
    (lambda x: mg.permute(x, (3, 2, 1, -1)), "permute"),
    (lambda x: x.sum((1, -3)), "sum"),
    (lambda x: x.var(dim=(0, 0)), "var"),
    (lambda x: x.amax((-1, 3)), "amax"),
    (lambda x: x.logsumexp((2, -2)), "logsumexp"),
    (lambda x: x.all((1, 1)), "all"),
    (lambda x: x.squeeze((1, -3)), "squeeze"),
])
def test_a_dim_named_twice_raises_value_error(call, op):
    with pytest.raises(ValueError, match=rf"^{op}: dim \d appears multiple times"):
        call(mg.zeros(2, 1, 3, 2))


@pytest.mark.parametrize("dims", [(0, 1), (0, 1, 2, 3, 4), ()])
def test_permute_needs_one_dim_for_each_dim(dims):
    with pytest.raises(ValueError, match=r"^permute: dims .* name \d dimensions.* has 4"):
        mg.zeros(2, 1, 3, 2).permute(dims)


@pytest.mark.parametrize("dim", [1.0, True, None, "0"], ids=repr)
@pytest.mark.parametrize("call, op", [
    (lambda x, d: x.softmax(d), "softmax"),
    (lambda x, d: x.transpose(0, d), "transpose"),
    (lambda x, d: x.unsqueeze(d), "unsqueeze"),
    (lambda x, d: mg.cat([x, x], d), "cat"),
    (lambda x, d: x.gather(d, mg.zeros(2, 3, dtype=mg.int64)), "gather"),
    (lambda x, d: x.sum((0, d)), "sum"),
])
def test_a_dim_that_is_not_an_integer_raises_type_error(call, op, dim):
    with pytest.raises(TypeError, match=rf"^{op}: dim must be an integer"):
        call(mg.zeros(2, 3), dim)


def test_numpy_integer_dims_are_taken():
    x = mg.tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(np.int64(-1)).tolist() == [3.0, 12.0]
    assert x.permute(np.int32(-1), np.int64(0)).shape == (3, 2)


def test_size_of_a_0d_tensor_takes_no_dim():
    with pytest.raises(IndexError, match="^size: dimension specified as 0 but the tensor has no "
                                         "dimensions"):
        mg.tensor(1.0).size(0)


def test_cat_of_0d_tensors_raises_naming_the_position():
    with pytest.raises(ValueError, match=re.escape("cat: a zero-dimensional tensor (at position "
                                                   "1) cannot be concatenated")):
        mg.cat([mg.ones(1), mg.tensor(2.0)])


@pytest.mark.parametrize("start, end", [(1, 0), (-1, 0), (2, -3)])
def test_flatten_start_after_end_raises(start, end):
    with pytest.raises(ValueError, match=f"^flatten: start_dim {start} comes after end_dim"):
        mg.zeros(2, 3, 4).flatten(start, end)
