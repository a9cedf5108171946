"""Embedding (minigrad/nn/embedding.py): the lookup and its scatter-add gradient against finite
differences and PyTorch, padding_idx (zero at init, no gradient, negative values), init,
repr and state dict as PyTorch's, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from layer_table import PYTORCH_TOLERANCE, LayerCase, layer_tests

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.testing import gradcheck
from minigrad.testing.strategies import arrays

# Token ids with repeats (their gradients add up) and both ends of the table.
TOKENS = np.array([[0, 4, 2], [2, 1, 4]])


def tokens_plus(lib, layer, x):
    """Embedding(tokens) + x: the layer table needs an input x that gets a gradient, so x is
    the positional part added to the token embeddings, as in a transformer's input."""
    return layer(lib.tensor(TOKENS)) + x


LAYERS = [
    LayerCase("embedding_plus_positions", lambda nn: nn.Embedding(5, 4), (2, 3, 4),
              call=tokens_plus),
]
test_layer_gradients, test_layer_against_pytorch, test_layer_builds_no_graph = layer_tests(
    LAYERS)


@st.composite
def lookups(draw):
    rows, dim = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    index_shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, rows - 1)))
    padding = draw(st.none() | st.integers(-rows, rows - 1))
    return draw(arrays((rows, dim)), label="weight"), index, padding


@given(case=lookups())
def test_embedding_gradient_matches_finite_differences(case):
    """d/dweight is the scatter-add of the output gradient (repeated indices add up). With
    padding_idx that row's gradient is 0 by design, unlike the finite differences (PyTorch's
    note says so), so it is checked for being 0 instead."""
    weight, index, padding = case
    w = mg.tensor(weight, requires_grad=True)
    assert gradcheck(lambda w: F.embedding(mg.tensor(index), w), [w])
    if padding is not None:
        w.grad = None
        out = F.embedding(mg.tensor(index), w, padding_idx=padding)
        out.backward(np.ones(out.shape))
        np.testing.assert_array_equal(w.grad.numpy()[padding % len(weight)], 0.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1, -5])
@pytest.mark.parametrize("index_dtype", ["int64", "int32"])
def test_embedding_matches_pytorch(torch, host_backend, dtype, padding_idx, index_dtype):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((5, 3)).astype(dtype)
    index = np.array([[[0, 4, 4], [3, 3, 1]], [[2, 0, 0], [4, 1, 3]]], dtype=index_dtype)
    upstream = rng.standard_normal(index.shape + (3,)).astype(dtype)
    w_theirs = torch.tensor(weight, requires_grad=True)
    expected = torch.nn.functional.embedding(torch.tensor(index), w_theirs, padding_idx)
    expected.backward(torch.tensor(upstream))
    with mg.backend(host_backend):
        w_ours = mg.tensor(weight, requires_grad=True)
        out = F.embedding(mg.tensor(index), w_ours, padding_idx)
        out.backward(upstream)
    assert out.dtype == np.dtype(dtype) and out.shape == tuple(expected.shape)
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())  # a copy of rows
    np.testing.assert_allclose(w_ours.grad.numpy(), w_theirs.grad.numpy(),
                               **PYTORCH_TOLERANCE[dtype])


@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 1}, {"padding_idx": -2},
                                    {"norm_type": 1.0}])
def test_embedding_layer_repr_state_and_padding_row_match_pytorch(torch, kwargs):
    theirs = torch.nn.Embedding(6, 3, **kwargs)
    ours = nn.Embedding(6, 3, **kwargs)
    assert repr(ours) == repr(theirs)
    assert ours.padding_idx == theirs.padding_idx
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    assert ours.weight.shape == (6, 3) and ours.weight.dtype == np.float32
    if theirs.padding_idx is not None:  # zero at init, and no gradient from a lookup
        np.testing.assert_array_equal(ours.weight.numpy()[ours.padding_idx], 0.0)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    index = np.array([[1, 4, 4, 0], [4, 2, 1, 5]])
    expected = theirs(torch.tensor(index))
    out = ours(mg.tensor(index))
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())
    expected.sum().backward()
    out.sum().backward()
    np.testing.assert_array_equal(ours.weight.grad.numpy(), theirs.weight.grad.numpy())


def test_embedding_init_is_standard_normal_from_minigrads_generator():
    mg.manual_seed(3)
    first = nn.Embedding(400, 50).weight.numpy()
    mg.manual_seed(3)
    again = nn.Embedding(400, 50).weight.numpy()
    np.testing.assert_array_equal(first, again)
    assert abs(first.mean()) < 0.02 and abs(first.std() - 1) < 0.02


def test_embedding_from_pretrained_copies_and_freezes():
    table = np.arange(6.0).reshape(3, 2)
    frozen = nn.Embedding.from_pretrained(mg.tensor(table))
    assert not frozen.weight.requires_grad and frozen.weight.dtype == np.float64
    np.testing.assert_array_equal(frozen(mg.tensor([2, 0])).numpy(), table[[2, 0]])
    trainable = nn.Embedding.from_pretrained(mg.tensor(table), freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0
    np.testing.assert_array_equal(trainable.weight.numpy(), table)  # kept, not zeroed


def test_embedding_of_an_empty_index_is_empty_and_gives_a_zero_gradient():
    layer = nn.Embedding(4, 3)
    out = layer(mg.zeros(2, 0, dtype=np.int64))
    assert out.shape == (2, 0, 3)
    out.sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.numpy(), 0.0)


def test_embedding_errors_name_the_problem():
    layer = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"embedding: index 5 is out of range for a weight of "
                                         r"5 rows \(valid indices: 0 to 4\)"):
        layer(mg.tensor([[0, 5]]))
    with pytest.raises(IndexError, match="index -1 is out of range"):
        layer(mg.tensor([-1, 2]))
    with pytest.raises(TypeError, match=r"input must be an integer tensor .* got \(2,\) "
                                        r"float32"):
        layer(mg.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="got \\(2,\\) bool"):
        layer(mg.tensor([True, False]))
    with pytest.raises(TypeError, match="got \\[0, 1\\]"):
        layer([0, 1])
    with pytest.raises(ValueError, match=r"weight must be a 2-D tensor .* got \(5,\) float32"):
        F.embedding(mg.tensor([0]), mg.zeros(5))
    for bad in (5, -6):
        with pytest.raises(ValueError, match=rf"padding_idx must be an int within "
                                             rf"num_embeddings, in \[-5, 4\], got {bad}"):
            nn.Embedding(5, 2, padding_idx=bad)
    with pytest.raises(ValueError, match="padding_idx .* got 7"):
        F.embedding(mg.tensor([0]), mg.zeros(5, 2), padding_idx=7)
    for option in ({"max_norm": 1.0}, {"scale_grad_by_freq": True}, {"sparse": True}):
        with pytest.raises(NotImplementedError, match=f"{next(iter(option))}=.* is not "
                                                      "supported"):
            nn.Embedding(5, 2, **option)
        with pytest.raises(NotImplementedError, match="is not supported"):
            F.embedding(mg.tensor([0]), mg.zeros(5, 2), **option)
    with pytest.raises(ValueError, match=r"_weight has shape \(2, 2\), expected \(5, 2\)"):
        nn.Embedding(5, 2, _weight=mg.zeros(2, 2))
