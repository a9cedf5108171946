"""The tensor methods PyTorch code reaches for: chunk, split, unbind, repeat, flip, roll,
index_select, masked_fill, tril/triu, cumsum, norm, topk, sort, clone, contiguous, bmm, einsum,
expand_as / view_as / type_as, randperm and Tensor.new_*.

Every differentiable one is an `OpCase` (tests/op_table.py): a Hypothesis gradient check in
float64, and forward + backward against PyTorch in float64 and float32 on every backend, on
drawn memory layouts. Ops that return several tensors (chunk, split, unbind) are compared
through the concatenation of their flattened pieces, so every piece's gradient is checked. The
rest: results outside the graph (indices, randperm, new_*), the order of ties, and errors.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from op_table import OpCase, compare_with_pytorch, op_tests

import minigrad as mg
from minigrad.testing.strategies import arrays, broadcastable_shapes, distinct_arrays, shapes

# float32: 1e-5, but 1e-4 relative where a result sums many products in an order of its own
# (einsum's matmul or NumPy's einsum against PyTorch's kernels, norms): float32's epsilon is
# 1.2e-7, and a sum of n terms may differ by ~n epsilons relative to its largest term.
TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10}, "float32": {"rtol": 1e-5, "atol": 1e-5}}
SUMS_TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10},
                  "float32": {"rtol": 1e-4, "atol": 1e-5}}


# ----------------------------------------------------------------------------- input strategies


@st.composite
def along(draw, min_dims=1, distinct=False, **params):
    """An array of >= `min_dims` dims, a dim of it (negative or not), and the params drawn
    from the strategies given as keywords."""
    shape = draw(shapes(min_dims=min_dims))
    x = draw(distinct_arrays(shape) if distinct else arrays(shape))
    n = max(len(shape), 1)
    return (x,), {"dim": draw(st.integers(-n, n - 1)), **{k: draw(v) for k, v in params.items()}}


@st.composite
def chunked(draw):
    (x,), params = draw(along())
    return (x,), {**params, "chunks": draw(st.integers(1, 5))}


@st.composite
def split_sizes(draw):
    """A split size (int), or sizes (a list, zeros allowed) that add up to the dim's size."""
    (x,), params = draw(along())
    size = x.shape[params["dim"]]
    if draw(st.booleans()):
        return (x,), {**params, "sizes": draw(st.integers(1, size + 1))}
    cuts = sorted(draw(st.lists(st.integers(0, size), max_size=3)))
    bounds = [0, *cuts, size]
    return (x,), {**params, "sizes": [b - a for a, b in zip(bounds, bounds[1:])]}


@st.composite
def repeated(draw):
    shape = draw(shapes(max_dims=3, max_side=3))
    lead = draw(st.integers(0, 2))
    count = max(len(shape) + lead, 1)  # x.repeat() with no repeats is an error
    repeats = tuple(draw(st.lists(st.integers(0, 3), min_size=count, max_size=count)))
    return (draw(arrays(shape)),), {"repeats": repeats}


@st.composite
def flipped(draw):
    shape = draw(shapes())
    n = max(len(shape), 1)
    dims = draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True))
    return (draw(arrays(shape)),), {"dims": tuple(d - n if draw(st.booleans()) else d
                                                  for d in dims)}


@st.composite
def rolled(draw):
    """Shifts (negative, and beyond the size) with their dims, or one shift without dims."""
    shape = draw(shapes(min_dims=1))
    x = draw(arrays(shape))
    if draw(st.booleans()):
        return (x,), {"shifts": draw(st.integers(-7, 7)), "dims": None}
    n = len(shape)
    dims = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3))
    shifts = [draw(st.integers(-7, 7)) for _ in dims]
    if len(dims) == 1 and draw(st.booleans()):
        return (x,), {"shifts": shifts[0], "dims": dims[0]}
    return (x,), {"shifts": tuple(shifts), "dims": tuple(dims)}


@st.composite
def selected(draw):
    (x,), params = draw(along(min_dims=0))
    size = x.shape[params["dim"]] if x.ndim else 1
    count = 1 if x.ndim == 0 else draw(st.integers(0, 5))
    index = np.array(draw(st.lists(st.integers(0, size - 1), min_size=count, max_size=count)),
                     dtype=np.int64)
    if x.ndim == 0 and draw(st.booleans()):
        index = index.reshape(())
    return (x,), {**params, "index": index}


@st.composite
def masked(draw, value_tensor=False):
    """x and a bool mask that broadcast together (the mask may add dims or stretch x's
    size-1 dims); with value_tensor, a 0-d value as a second differentiable input."""
    shape_x, shape_mask = draw(broadcastable_shapes())
    mask = draw(arrays(shape_mask)) > 0
    inputs = (draw(arrays(shape_x)),)
    if value_tensor:
        return (*inputs, draw(arrays(()))), {"mask": mask}
    return inputs, {"mask": mask, "value": draw(st.sampled_from([0.0, -1.5, 2.5, 1e4]))}


@st.composite
def triangled(draw):
    shape = draw(shapes(min_dims=2))
    return (draw(arrays(shape)),), {"diagonal": draw(st.integers(-4, 4))}


# the p of norm, and the inputs each needs: off |x|'s kink at 0 where p <= 1 (and p < 1's
# infinite slope there), distinct magnitudes for +-inf (no ties at the max or min)
NORM_PS = ["fro", 2, 1, math.inf, -math.inf, 3, 1.5, 0.5, -1.5]


@st.composite
def normed(draw, with_dtype=False):
    shape = draw(shapes())
    p = draw(st.sampled_from(NORM_PS))
    if p in (math.inf, -math.inf):
        magnitudes = draw(distinct_arrays(shape, spacing=0.2))
        magnitudes = magnitudes - magnitudes.min() + 0.3 if magnitudes.size else magnitudes
        signs = np.where(draw(arrays(shape)) > 0, 1.0, -1.0)
        x = magnitudes * signs
    else:
        x = draw(arrays(shape, kinks=(0,), margin=0.2))
    n = max(len(shape), 1)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        dim = None
    elif kind == "int":
        dim = draw(st.integers(-n, n - 1))
    else:
        dim = tuple(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=2 if p == "fro"
                                  else n, unique=True)))
    return (x,), {"p": p, "dim": dim, "keepdim": draw(st.booleans())}


@st.composite
def top(draw):
    (x,), params = draw(along(min_dims=0, distinct=True))
    size = x.shape[params["dim"]] if x.ndim else 1
    return (x,), {**params, "k": draw(st.integers(0, size)), "largest": draw(st.booleans()),
                  "sorted": True}


@st.composite
def batched_pair(draw):
    b, n, m, p = (draw(st.integers(1, 3)) for _ in range(4))
    return (draw(arrays((b, n, m))), draw(arrays((b, m, p)))), {}


@st.composite
def other_shape(draw, kind):
    """An array and the shape of another tensor for expand_as (a broadcast target) or view_as
    (the same elements in another shape)."""
    shape = draw(shapes(max_side=3))
    if kind == "expand":
        target = [draw(st.integers(1, 3)) if n == 1 else n for n in shape]
        target = [draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, 2)))] + target
    else:
        target = list(draw(st.permutations(shape)))
    return (draw(arrays(shape)),), {"other": tuple(target)}


@st.composite
def transposed(draw):
    shape = draw(shapes(min_dims=2))
    n = len(shape)
    return (draw(arrays(shape)),), {"dim0": draw(st.integers(-n, n - 1)),
                                    "dim1": draw(st.integers(-n, n - 1))}


# ----------------------------------------------------------------------------- einsum operands

EINSUM_GROUPS = {
    # two operands, no repeated letter: one batched matmul (minigrad's pair path)
    "einsum_pair": ["ij,jk->ik", "bhqd,bhkd->bhqk", "bij,bjk->bik", "ij,jk->ki", "i,i->",
                    "i,j->ij", "ijk,jil->kl", "ij,j->i", "abc,cd->dba", "ij,kl->", ",i->i",
                    ",->"],
    # implicit output (no '->'): the letters that appear once, in ASCII order
    "einsum_implicit": ["ij,jk", "ba,ab", "bA", "ji", "i,i", "Ab,bc"],
    # a letter repeated within one operand: diagonals and traces
    "einsum_diagonal": ["ii->i", "ii", "iji->j", "iij->ij", "ii,i->i", "bii->bi", "ijj,jk->ik"],
    # one operand: sums, transpositions
    "einsum_single": ["ij->", "ij->j", "ijk->kji", "ijk->ik", "i->"],
    # three operands: NumPy's einsum with an optimized path
    "einsum_three": ["ij,jk,kl->il", "i,i,i->i", "ij,j,k->ik", "bij,bjk,bkl->bl"],
}
ELLIPSIS_EQUATIONS = ["...ij->...ji", "...i,...i", "...i,...i->...", "...ij,...jk->...ik",
                      "...i->i", "i...,i...->i...", "...ii->...i", "b...,b...->b"]


def einsum_shapes(equation, size, ellipses):
    """The operands' shapes for `equation`: `size(c, repeated)` gives letter c's size in one
    operand (`repeated`: c appears twice in it, so its sizes must agree); '...' takes the
    next of the `ellipses` shapes."""
    ellipses = iter(ellipses)
    shapes_ = []
    for term in equation.split("->")[0].split(","):
        letters = term.replace("...", "")
        shape = []
        for c in term.replace("...", "."):
            shape += list(next(ellipses)) if c == "." else [size(c, letters.count(c) > 1)]
        shapes_.append(tuple(shape))
    return shapes_


@st.composite
def einsum_operands(draw, equations, broadcast=False):
    """An equation and operands for it: each letter a size of 1 to 3 (with `broadcast`, an
    operand may hold 1 where the others hold the size); '...' stands for mutually
    broadcastable shapes of 0 to 2 dims."""
    equation = draw(st.sampled_from(equations))
    sizes = {c: draw(st.integers(1, 3)) for c in sorted(set(equation) - set(",.->"))}
    count = equation.split("->")[0].count("...")
    ellipses = draw(broadcastable_shapes(num_shapes=count, max_dims=2, max_side=3)) if count else ()

    def size(c, repeated):
        return 1 if broadcast and not repeated and draw(st.integers(0, 3)) == 0 else sizes[c]

    shapes_ = einsum_shapes(equation, size, ellipses)
    return tuple(draw(arrays(shape)) for shape in shapes_), {"equation": equation}


def einsum(lib, *operands, equation):
    return lib.einsum(equation, *operands)


# ----------------------------------------------------------------------------- the table


def pieces(lib, parts):
    """Several results as one tensor (their flattened concatenation): each element keeps its
    own place, so the drawn upstream gradient checks every piece's gradient."""
    return lib.cat([p.reshape(-1) for p in parts])


def both_forms(inputs):
    """Draw `method` too: True calls `x.op(...)`, False `lib.op(x, ...)` (see `call`)."""
    return st.tuples(inputs, st.booleans()).map(lambda c: (c[0][0], {**c[0][1], "method": c[1]}))


def call(lib, name, x, method, *args, **kwargs):
    return getattr(x, name)(*args, **kwargs) if method else getattr(lib, name)(x, *args, **kwargs)


def no_params(inputs):
    return inputs.map(lambda c: (c[0], {}))


CASES = [
    OpCase("chunk", lambda lib, x, chunks, dim, method:
           pieces(lib, call(lib, "chunk", x, method, chunks, dim)), both_forms(chunked())),
    OpCase("split", lambda lib, x, sizes, dim, method:
           pieces(lib, call(lib, "split", x, method, sizes, dim=dim)), both_forms(split_sizes())),
    OpCase("unbind", lambda lib, x, dim, method: lib.stack(call(lib, "unbind", x, method, dim)),
           both_forms(along())),
    OpCase("repeat", lambda lib, x, repeats: x.repeat(*repeats), repeated()),
    OpCase("repeat_tuple", lambda lib, x, repeats: x.repeat(repeats), repeated()),
    # x.flip() without dims is a TypeError in PyTorch: no dims go as an empty tuple
    OpCase("flip", lambda lib, x, dims: x.flip(*dims) if dims else x.flip(dims), flipped()),
    OpCase("flip_function", lambda lib, x, dims: lib.flip(x, dims=dims), flipped()),
    OpCase("roll", lambda lib, x, shifts, dims, method: call(lib, "roll", x, method, shifts, dims),
           both_forms(rolled())),
    OpCase("index_select", lambda lib, x, dim, index, method:
           call(lib, "index_select", x, method, dim, lib.tensor(index)), both_forms(selected())),
    OpCase("masked_fill", lambda lib, x, mask, value, method:
           call(lib, "masked_fill", x, method, lib.tensor(mask), value), both_forms(masked())),
    OpCase("masked_fill_tensor_value",
           lambda lib, x, value, mask: lib.masked_fill(x, lib.tensor(mask), value),
           masked(value_tensor=True)),
    OpCase("tril", lambda lib, x, diagonal, method: call(lib, "tril", x, method, diagonal),
           both_forms(triangled())),
    OpCase("triu", lambda lib, x, diagonal, method:
           call(lib, "triu", x, method, diagonal=diagonal), both_forms(triangled())),
    OpCase("cumsum", lambda lib, x, dim, method: call(lib, "cumsum", x, method, dim),
           both_forms(along(min_dims=0))),
    OpCase("norm", lambda lib, x, method, **p: call(lib, "norm", x, method, **p),
           both_forms(normed()), gradcheck_options={"atol": 1e-4}),
    OpCase("norm_positional", lambda lib, x, p, dim, keepdim: lib.norm(x, p, dim, keepdim),
           normed(), gradcheck_options={"atol": 1e-4}),
    OpCase("topk", lambda lib, x, method, **p: call(lib, "topk", x, method, **p).values,
           both_forms(top())),
    OpCase("topk_positional", lambda lib, x, k, dim, largest, sorted:
           lib.topk(x, k, dim, largest, sorted)[0], top()),
    OpCase("sort", lambda lib, x, dim, descending, method:
           call(lib, "sort", x, method, dim, descending).values,
           both_forms(along(min_dims=0, distinct=True, descending=st.booleans()))),
    OpCase("sort_stable", lambda lib, x, dim, descending:
           lib.sort(x, dim=dim, descending=descending, stable=True)[0],
           along(min_dims=0, distinct=True, descending=st.booleans())),
    OpCase("clone", lambda lib, x, method: call(lib, "clone", x, method) * 2,
           both_forms(no_params(along(min_dims=0)))),
    OpCase("contiguous", lambda lib, x, dim0, dim1: x.transpose(dim0, dim1).contiguous(),
           transposed()),
    OpCase("bmm", lambda lib, a, b, method: call(lib, "bmm", a, method, b),
           both_forms(batched_pair())),
    OpCase("expand_as", lambda lib, x, other: x.expand_as(lib.zeros(other)),
           other_shape("expand")),
    OpCase("view_as", lambda lib, x, other: x.view_as(lib.zeros(other)), other_shape("view")),
    OpCase("type_as", lambda lib, x: x.type_as(lib.zeros(1, dtype=lib.float64)) * 3,
           no_params(along(min_dims=0))),
    *[OpCase(name, einsum, einsum_operands(equations)) for name, equations in
      EINSUM_GROUPS.items()],
    OpCase("einsum_ellipsis", einsum, einsum_operands(ELLIPSIS_EQUATIONS)),
    OpCase("einsum_broadcast", einsum,
           einsum_operands(EINSUM_GROUPS["einsum_pair"] + EINSUM_GROUPS["einsum_three"],
                           broadcast=True)),
]

SUMS = {"norm", "norm_positional", "cumsum", "bmm",
        *[case.name for case in CASES if case.name.startswith("einsum")]}


# ------------------------------------------------------------------------------ the table's tests


(test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
 test_no_graph_under_no_grad) = op_tests(
    CASES, mg, lambda torch: torch, lambda case: SUMS_TOLERANCE if case.name in SUMS else TOLERANCE)
# Each case runs here 4 times (2 dtypes, 2 host backends): half the profile's examples each
half_the_examples = settings(max_examples=max(1, settings.default.max_examples // 2))
test_forward_and_backward_match_pytorch = half_the_examples(test_forward_and_backward_match_pytorch)


@pytest.mark.parametrize("equation", [e for group in EINSUM_GROUPS.values() for e in group]
                         + ELLIPSIS_EQUATIONS)
def test_every_einsum_equation_matches_pytorch(torch, equation):
    """Each equation once (the table's cases draw among them), also with size-1 dims that
    broadcast against the other operands' sizes and ellipses of different ranks."""
    rng = np.random.default_rng(0)
    for broadcast in (False, True):
        sizes = {c: 2 + i % 2 for i, c in enumerate(sorted(set(equation) - set(",.->")))}
        stretched = iter(rng.random(64) < 0.3)

        def size(c, repeated, sizes=sizes, stretched=stretched, broadcast=broadcast):
            return 1 if broadcast and not repeated and next(stretched) else sizes[c]

        ellipses = [(2, 3), (3,), (1, 1)][:equation.split("->")[0].count("...")]
        operands = [rng.standard_normal(shape) for shape in einsum_shapes(equation, size,
                                                                           ellipses)]
        compare_with_pytorch(torch, einsum, (mg, torch), operands, {"equation": equation},
                             seed=0, tolerance=TOLERANCE["float64"])


# ------------------------------------------------------------------------ pieces: tuples of views


@pytest.mark.parametrize("size", [0, 1, 5, 6, 7])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 6, 8])
def test_chunk_and_split_make_the_pieces_pytorch_makes(torch, size, count):
    """Piece sizes, also where chunk gives fewer pieces than asked, and on an empty dim."""
    data = np.arange(2.0 * size).reshape(2, size)
    x, t = mg.tensor(data), torch.tensor(data)
    for ours, theirs in [(x.chunk(count, 1), t.chunk(count, 1)),
                         (mg.split(x, count, dim=-1), torch.split(t, count, dim=-1))]:
        assert type(ours) is tuple and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_pieces_are_views_as_in_pytorch():
    x = mg.arange(6.0).reshape(2, 3)
    first, _ = x.chunk(2, dim=1)
    row, _ = x.unbind()
    with mg.no_grad():
        first[0, 0] = 10.0
        row[2] = 20.0
    assert x.tolist() == [[10.0, 1.0, 20.0], [3.0, 4.0, 5.0]]


def test_flip_and_roll_copy_as_in_pytorch():
    x = mg.arange(4.0)
    flipped, rolled = x.flip(0), x.roll(1)
    flipped[0] = rolled[0] = 10.0
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_repeat_tiles_like_pytorch_not_like_numpy_repeat(torch):
    data = np.array([[1, 2], [3, 4]])
    assert mg.tensor(data).repeat(2, 1, 3).tolist() == torch.tensor(data).repeat(2, 1, 3).tolist()


# ------------------------------------------------------------------------ sort, topk: indices, ties


def test_sort_and_topk_return_pytorchs_named_tuples():
    x = mg.tensor([[3.0, 1.0, 2.0]], requires_grad=True)
    for result, name in [(x.sort(), "sort"), (mg.topk(x, 2), "topk")]:
        assert type(result).__name__ == name and result._fields == ("values", "indices")
        values, indices = result
        assert values is result.values and values.requires_grad
        assert indices.dtype == np.int64 and not indices.requires_grad and indices.grad_fn is None
    assert mg.argsort(x, descending=True).tolist() == [[0, 2, 1]]


DEFAULTS = {  # every optional argument left out
    "topk": lambda lib, x: lib.topk(x, 2), "topk-method": lambda lib, x: x.topk(2),
    "sort": lambda lib, x: lib.sort(x), "sort-method": lambda lib, x: x.sort(),
    "argsort": lambda lib, x: (lib.argsort(x), x.argsort()),
    "chunk": lambda lib, x: lib.chunk(x, 2) + x.chunk(2),
    "split": lambda lib, x: lib.split(x, 1) + x.split(1),
    "unbind": lambda lib, x: lib.unbind(x) + x.unbind(),
    "roll": lambda lib, x: (lib.roll(x, 1), x.roll(-2)),
    "tril": lambda lib, x: (lib.tril(x), x.tril(), lib.triu(x), x.triu()),
    "norm": lambda lib, x: (lib.norm(x), x.norm()),
}


@pytest.mark.parametrize("call", DEFAULTS.values(), ids=DEFAULTS.keys())
def test_default_arguments_as_pytorch(torch, call):
    data = np.array([[0.5, -2.0, 3.0], [1.5, 4.0, -1.0]])
    ours, theirs = call(mg, mg.tensor(data)), call(torch, torch.tensor(data))
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


TIES = [3.0, 1.0, 3.0, 2.0, 1.0, 3.0, math.nan, 1.0, -0.0, 0.0, math.inf, math.nan, -math.inf]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "bool"])
def test_ties_keep_their_order_as_pytorchs_stable_sort(torch, descending, dtype):
    """minigrad's sort is always stable: ties keep their original order, NaN sorts as the
    largest (also -0.0 and 0.0 tie), whatever `stable` says."""
    values = np.array(TIES if dtype.startswith("float") else [3, 1, 3, 2, 1, 3, 0, 1, 0])
    data = np.stack([values, values[::-1]]).astype(dtype)
    expected = torch.sort(torch.tensor(data), dim=1, descending=descending, stable=True)
    for stable in (False, True):
        ours = mg.sort(mg.tensor(data), 1, descending, stable=stable)
        np.testing.assert_array_equal(ours.values.numpy(), expected.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), expected.indices.numpy())
        np.testing.assert_array_equal(mg.tensor(data).argsort(-1, descending).numpy(),
                                      expected.indices.numpy())


@pytest.mark.parametrize("largest", [False, True])
def test_topk_ties_come_in_their_original_order(torch, largest):
    """PyTorch leaves the order of tied elements in topk unspecified; minigrad gives the
    stable sort's first k: the same values as PyTorch, ties in their original order."""
    data = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0, math.nan, 1.0])
    for k in range(len(data) + 1):
        values, indices = mg.tensor(data).topk(k, largest=largest)
        expected = torch.topk(torch.tensor(data), k, largest=largest)
        np.testing.assert_array_equal(values.numpy(), expected.values.numpy())
        order = torch.sort(torch.tensor(data), descending=largest, stable=True).indices
        np.testing.assert_array_equal(indices.numpy(), order[:k].numpy())


def test_sort_and_topk_of_a_0d_tensor_as_pytorch(torch):
    x = mg.tensor(2.5, requires_grad=True)
    for result in (x.sort(), x.topk(1), x.topk(0), x.sort(dim=0, descending=True)):
        assert result.values.shape == () and result.indices.tolist() == 0
        assert result.values.item() == 2.5
    x.topk(1).values.backward()
    assert x.grad.item() == 1.0


def test_sort_gradient_goes_to_each_elements_place():
    x = mg.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]], requires_grad=True)
    x.sort(dim=1, descending=True).values.backward(mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert x.grad.tolist() == [[1.0, 3.0, 2.0], [6.0, 4.0, 5.0]]


# ------------------------------------------------------------------------ cumsum, norm: corners


def test_cumsum_dtypes_as_pytorch(torch):
    for data in (np.array([1, 2, 3], dtype=np.int32), np.array([True, False, True])):
        ours, theirs = mg.tensor(data).cumsum(0), torch.tensor(data).cumsum(0)
        assert ours.dtype == np.int64 and ours.tolist() == theirs.tolist()
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = mg.cumsum(x, 0, dtype=mg.float64)
    assert y.dtype == np.float64 and y.tolist() == [1.0, 3.0, 6.0]
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, 2.0, 1.0]
    assert mg.tensor([1, 2]).cumsum(0, dtype=mg.float32).dtype == np.float32
    with pytest.raises(TypeError):
        mg.tensor([1.0]).cumsum(0, mg.float64)  # dtype is keyword-only, as in PyTorch


@pytest.mark.parametrize("p", [2, "fro", 1, 3, 1.5, 0.5, -1, math.inf, -math.inf, 0])
def test_norm_at_zero_and_at_ties_as_pytorch(torch, p):
    """Rows of zeros, a zero among non-zeros, and ties at the max: PyTorch's gradients (0
    where the norm is 0, shared between tied extremes)."""
    data = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 1.0], [1.0, 0.0, -3.0], [2.0, -3.0, 3.0]])
    x, t = mg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    ours, theirs = x.norm(p=p, dim=1), t.norm(p=p, dim=1)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), **TOLERANCE["float64"])
    ours.sum().backward()
    theirs.sum().backward()
    expected = np.zeros_like(data) if t.grad is None else t.grad.numpy()  # p=0: no gradient
    np.testing.assert_allclose(x.grad.numpy(), expected, **TOLERANCE["float64"])


@pytest.mark.parametrize("scale", [1000.0, -1000.0])
@pytest.mark.parametrize("p", [2, 1, 3, math.inf])
def test_norm_is_finite_at_large_values(torch, scale, p):
    data = (np.arange(12.0).reshape(3, 4) - 5) * scale
    x = mg.tensor(data.astype(np.float32), requires_grad=True)
    t = torch.tensor(data.astype(np.float32), requires_grad=True)
    x.norm(p, dim=1).sum().backward()
    t.norm(p, dim=1).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), **SUMS_TOLERANCE["float32"])


def test_norm_dtype_and_defaults_as_pytorch(torch):
    data = np.array([[3.0, -4.0], [1.0, 2.0]], dtype=np.float32)
    x, t = mg.tensor(data), torch.tensor(data)
    for ours, theirs in [(x.norm(), t.norm()),
                         (x.norm(dtype=mg.float64), t.norm(dtype=torch.float64)),
                         (mg.norm(x, None, (0, 1), True), torch.norm(t, None, (0, 1), True)),
                         (x.norm(dim=()), t.norm(dim=())), (x.norm(0), t.norm(0))]:
        assert ours.shape == tuple(theirs.shape) and str(ours.dtype) in str(theirs.dtype)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


# ------------------------------------------------------------------------ masked_fill


def test_masked_fill_as_an_attention_mask(torch):
    """-inf above the diagonal, then softmax: the masked places get probability 0 and no
    gradient; the mask broadcasts over the batch and heads."""
    scores = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    mask = np.triu(np.ones((4, 4), dtype=bool), 1)
    results = []
    for lib in (mg, torch):
        x = lib.tensor(scores, requires_grad=True)
        out = x.masked_fill(lib.tensor(mask), float("-inf")).softmax(-1)
        (out * lib.tensor(scores)).sum().backward()
        results.append((out.detach().numpy(), x.grad.numpy()))
    (out, grad), (expected, expected_grad) = results
    np.testing.assert_allclose(out, expected, **TOLERANCE["float64"])
    np.testing.assert_allclose(grad, expected_grad, **TOLERANCE["float64"])
    assert (out[..., mask] == 0).all() and (grad[..., mask] == 0).all()


def test_masked_fill_casts_the_value_to_the_input_dtype(torch):
    data, mask = np.array([[1, 2, 3]]), np.array([True, False, True])
    for value in (2.5, True, mg.tensor(7.0, dtype=mg.float64)):
        theirs = torch.tensor(value.item() if isinstance(value, mg.Tensor) else value)
        ours = mg.tensor(data).masked_fill(mg.tensor(mask), value)
        expected = torch.tensor(data).masked_fill(torch.tensor(mask), theirs)
        assert ours.dtype == np.int64 and ours.tolist() == expected.tolist()


# ------------------------------------------------------------------------ copies and conversions


def test_clone_is_new_memory_in_the_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert y.grad_fn is not None and not np.shares_memory(y.array, x.array)
    (y * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    z = mg.zeros(2, 3).T.clone()
    assert z.array.strides == mg.zeros(2, 3).T.array.strides  # the layout kept (preserve_format)


def test_contiguous_returns_self_or_a_contiguous_copy():
    x = mg.randn(2, 3, requires_grad=True)
    assert x.contiguous() is x and x.is_contiguous()
    t = x.T
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c.grad_fn is not None and c.shape == (3, 2)
    c.sum().backward()
    assert x.grad.tolist() == np.ones((2, 3)).tolist()
    assert mg.tensor(1.5).T.contiguous().shape == ()


def test_expand_view_and_type_as(torch):
    x = mg.tensor([[1.0], [2.0]])
    assert x.expand_as(mg.zeros(3, 2, 4)).shape == (3, 2, 4)
    assert x.view_as(mg.zeros(1, 2)).shape == (1, 2)
    as_int = x.type_as(mg.zeros(1, dtype=mg.int64))
    assert as_int.dtype == np.int64 and as_int.tolist() == [[1], [2]]


# ------------------------------------------------------------------------ new tensors


def test_randperm_is_a_seeded_permutation_as_pytorch(torch):
    mg.manual_seed(3)
    first = mg.randperm(10)
    mg.manual_seed(3)
    assert mg.randperm(10).tolist() == first.tolist()
    assert first.dtype == np.int64 and sorted(first.tolist()) == list(range(10))
    assert mg.randperm(0).shape == (0,) and mg.randperm(0).dtype == np.int64
    floats = mg.randperm(4, dtype=mg.float32, requires_grad=True)
    assert floats.dtype == np.float32 and floats.requires_grad
    with pytest.raises(ValueError, match="randperm: negative size"):
        mg.randperm(-1)
    with pytest.raises(RuntimeError):
        mg.randperm(3, requires_grad=True)  # int64 cannot require grad, as in PyTorch


def test_new_tensors_take_the_template_dtype_as_pytorch(torch):
    ours, theirs = mg.ones(2, dtype=mg.float64), torch.ones(2, dtype=torch.float64)
    calls = [
        lambda x: x.new_zeros(2, 3), lambda x: x.new_zeros((2, 3)),
        lambda x: x.new_ones([4], dtype=mg.int64 if isinstance(x, mg.Tensor) else torch.int64),
        lambda x: x.new_full((2,), 3), lambda x: x.new_tensor([1, 2]),
        lambda x: x.new_tensor(np.array([1, 2], dtype=np.int32)), lambda x: x.new_empty(2, 1),
        lambda x: x.new_zeros(2, requires_grad=True),
    ]
    for make in calls:
        a, b = make(ours), make(theirs)
        assert a.shape == tuple(b.shape) and str(a.dtype) == str(b.dtype).removeprefix("torch.")
        assert a.requires_grad == b.requires_grad and a.device == ours.device
    assert ours.new_full((2,), 3).tolist() == [3.0, 3.0]
    assert ours.new_tensor([[1, 2]]).tolist() == [[1.0, 2.0]]


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.chunk(0), ValueError, "chunk: expects chunks to be greater than 0, got 0"),
    (lambda x: mg.chunk(x, -1, 1), ValueError, "chunk: expects chunks to be greater than 0"),
    (lambda x: x.chunk(2.0), TypeError, "chunk: chunks must be an integer"),
    (lambda x: mg.tensor(1.0).chunk(2), ValueError, "chunk: expects at least a 1-dimensional"),
    (lambda x: x.split([1, 1]), ValueError,
     r"split: split sizes \[1, 1\] add up to 2, but dim 0 of the tensor of shape \(3, 4\) has "
     r"size 3"),
    (lambda x: x.split([4, -1]), ValueError, "split: split sizes must not be negative"),
    (lambda x: x.split(-1), ValueError, "split: split_size must not be negative, got -1"),
    (lambda x: x.split(0, 1), ValueError, "split: split_size can be 0 only if the dim is empty"),
    (lambda x: mg.tensor(1.0).split(1), ValueError, "split: expects at least a 1-dimensional"),
    (lambda x: mg.tensor(1.0).unbind(), IndexError, "unbind: dimension specified as 0 but"),
    (lambda x: x.repeat(2), ValueError, r"repeat: 1 repeats \(2,\) for a tensor of shape \(3, 4\)"),
    (lambda x: x.repeat(-1, 1), ValueError, "repeat: repeats must not be negative"),
    (lambda x: x.repeat(), TypeError, "repeat: missing the repeats"),
    (lambda x: x.flip(0, 0), ValueError, "flip: dim 0 appears multiple times"),
    (lambda x: x.flip(), TypeError, "flip: missing the dims to flip"),
    (lambda x: mg.roll(x, (1, 2), 0), ValueError,
     r"roll: shifts \(1, 2\) and dims \(0,\) must have the same length"),
    (lambda x: mg.roll(x, (1, 2)), ValueError, "roll: without dims, shifts must be one number"),
    (lambda x: x.index_select(1, mg.tensor([[0]])), ValueError,
     r"index_select: index must be a vector \(1-D or 0-d\), got shape \(1, 1\)"),
    (lambda x: x.index_select(1, mg.tensor([0.0])), TypeError,
     "index_select: index must be an integer tensor"),
    (lambda x: x.index_select(1, mg.tensor([4])), IndexError,
     r"index_select: index out of range for dim 1 of size 4 \(tensor of shape \(3, 4\)\)"),
    (lambda x: x.index_select(0, mg.tensor([-1])), IndexError, "index_select: index out of range"),
    (lambda x: mg.tensor(1.0).index_select(0, mg.tensor([0, 0])), ValueError,
     "index_select: the index into a 0-d tensor must have one value, got 2"),
    (lambda x: x.masked_fill(mg.tensor([1, 0, 1, 0]), 0.0), TypeError,
     "masked_fill: mask must be a bool tensor, got"),
    (lambda x: x.masked_fill(mg.tensor([True, False]), 0.0), ValueError,
     r"masked_fill: the mask of shape \(2,\) does not broadcast with the input of shape \(3, 4\)"),
    (lambda x: x.masked_fill(x > 0, mg.tensor([1.0])), ValueError,
     r"masked_fill: value must be a number or a 0-d tensor, got a tensor of shape \(1,\)"),
    (lambda x: mg.tril(x[0]), ValueError, r"tril: input must have at least 2 dimensions"),
    (lambda x: x.triu(1.5), TypeError, "triu: diagonal must be an integer"),
    (lambda x: x.norm("nuc"), ValueError, "norm: p='nuc' is not supported"),
    (lambda x: mg.zeros(2, 2, 2).norm("fro", (0, 1, 2)), ValueError,
     r"norm: p='fro' takes at most 2 dims, got dim=\(0, 1, 2\)"),
    (lambda x: mg.tensor([1, 2]).norm(), TypeError,
     "norm: expected a floating-point tensor and dtype, got int64 and dtype=None"),
    (lambda x: mg.tensor([1, 2]).norm(dtype=mg.float32), TypeError,
     "norm: expected a floating-point tensor and dtype, got int64"),
    (lambda x: mg.norm(x, out=x), TypeError, "norm: out= is not supported"),
    (lambda x: mg.zeros(0, 3).norm(math.inf, 0), ValueError,
     r"norm: the inf norm of nothing is undefined, and the tensor of shape \(0, 3\) is empty"),
    (lambda x: x.topk(5), ValueError,
     r"topk: k \(5\) is out of range for dim 1 of size 4 \(tensor of shape \(3, 4\)\)"),
    (lambda x: x.topk(-1, 0), ValueError, r"topk: k \(-1\) is out of range for dim 0 of size 3"),
    (lambda x: mg.tensor(1.0).topk(2), ValueError, r"topk: k \(2\) is out of range"),
    (lambda x: x.sort(2), IndexError, "sort: dimension out of range"),
    (lambda x: mg.bmm(x, x), ValueError, r"bmm: batch1 must be a 3-D tensor, got shape \(3, 4\)"),
    (lambda x: mg.zeros(2, 3, 4).bmm(x), ValueError, "bmm: batch2 must be a 3-D tensor"),
    (lambda x: mg.bmm(mg.zeros(2, 3, 4), mg.zeros(1, 4, 5)), ValueError,
     r"bmm: batch1 of shape \(2, 3, 4\) needs batch2 of shape \(2, 4, p\), got \(1, 4, 5\)"),
    (lambda x: mg.einsum("ij,jk", x), ValueError,
     "einsum: the equation has subscripts for 2 operands, but 1 were given"),
    (lambda x: mg.einsum("ij", x, x), ValueError,
     "einsum: the equation has subscripts for 1 operands, but 2 were given"),
    (lambda x: mg.einsum("ijk", x), ValueError,
     r"einsum: operand 0 has 2 dims but its subscripts 'ijk' name 3 and no ellipsis"),
    (lambda x: mg.einsum("i#", x), ValueError,
     r"einsum: invalid subscript '#'; subscripts must be letters in \[a-zA-Z\]"),
    (lambda x: mg.einsum("i1", x), ValueError, "einsum: invalid subscript '1'"),
    (lambda x: mg.einsum("..i", x), ValueError, "einsum: '.' in '..i' that is not part of one"),
    (lambda x: mg.einsum("...i...", x), ValueError, "einsum: '.' in '...i...'"),
    (lambda x: mg.einsum("ij->ii", x), ValueError,
     "einsum: output subscript 'i' appears more than once in the output"),
    (lambda x: mg.einsum("ij->k", x), ValueError,
     "einsum: output subscript 'k' does not appear in any operand's subscripts"),
    (lambda x: mg.einsum("i->i->i", x[0]), ValueError, "einsum: '->' appears more than once"),
    (lambda x: mg.einsum("ii->i", x), ValueError,
     "einsum: subscript 'i' is repeated for operand 0 with sizes 3 and 4, which must match"),
    (lambda x: mg.einsum("ij,jk->ik", x, mg.zeros(3, 2)), ValueError,
     "einsum: subscript 'j' has size 3 for operand 1, which does not broadcast with the size 4"),
    (lambda x: mg.einsum("ij,jk->ik", x, mg.zeros(4, 2, dtype=mg.float64)), TypeError,
     r"einsum: the operands must have one dtype, got \(3, 4\) float32, \(4, 2\) float64"),
    (lambda x: mg.einsum("ij", x.numpy()), TypeError,
     "einsum: operands must be tensors, operand 0 is ndarray"),
], ids=lambda v: v if isinstance(v, str) and not v.startswith(("(", "[")) else None)
def test_bad_arguments_raise_naming_the_function(call, error, message):
    x = mg.zeros(3, 4, requires_grad=True)
    with pytest.raises(error, match=f"^{message}" if not message.startswith("^") else message):
        call(x)


def test_einsum_errors_name_the_equation_and_the_shapes():
    with pytest.raises(ValueError, match=re.escape("(equation 'ij,jk->ik', operand shapes "
                                                   "(2, 3), (4, 5))")):
        mg.einsum("ij,jk->ik", mg.zeros(2, 3), mg.zeros(4, 5))


def test_einsum_takes_operands_as_a_list_and_keeps_integer_dtypes(torch):
    a, b = np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2)
    ours = mg.einsum("ij,jk->ik", [mg.tensor(a), mg.tensor(b)])
    theirs = torch.einsum("ij,jk->ik", [torch.tensor(a), torch.tensor(b)])
    assert ours.dtype == np.int64 and ours.tolist() == theirs.tolist()
