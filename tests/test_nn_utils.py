"""minigrad.nn.utils (gradient clipping, parameter vectors) against torch.nn.utils, and
nn.init.trunc_normal_ against the truncated normal's formulas.

Clipping is compared with PyTorch on the same gradients: the returned norm and the clipped
gradients, float64 to 1e-12 and float32 to 1e-6 (one norm, one division, one product per
entry). PyTorch's random stream cannot be reproduced, so trunc_normal_ is checked by its
statistics instead: mean and std of many draws against the closed forms, every draw in [a, b].
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.testing import gradcheck

SHAPES = [(3, 4), (5,), (), (2, 1, 3)]
TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}


def with_grads(lib, grads, make_grad):
    params = []
    for g in grads:
        p = lib.tensor(np.zeros_like(g), requires_grad=True)
        p.grad = make_grad(np.array(g))  # a copy, and an array even for 0-d
        params.append(p)
    return params


def draw_grads(seed, dtype, scale=1.0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]


def clip_both(torch, grads, *args, **kwargs):
    ours = with_grads(mg, grads, mg.tensor)
    theirs = with_grads(torch, grads, torch.from_numpy)
    norm = nn.utils.clip_grad_norm_(ours, *args, **kwargs)
    torch_norm = torch.nn.utils.clip_grad_norm_(theirs, *args, **kwargs)
    return norm, torch_norm, ours, theirs


def assert_same(norm, torch_norm, ours, theirs, dtype):
    tol = TOLERANCE[np.dtype(dtype).type]
    assert isinstance(norm, mg.Tensor) and norm.shape == () and norm.dtype == dtype
    np.testing.assert_allclose(norm.item(), torch_norm.item(), rtol=tol, atol=tol)
    for p, t in zip(ours, theirs, strict=True):
        assert p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------- clip_grad_norm_
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, -math.inf, 0.5, "inf"])
@pytest.mark.parametrize("max_norm", [0.3, 1e6])  # clipped, and left alone
def test_clip_grad_norm_matches_torch(torch, dtype, norm_type, max_norm, host_backend):
    grads = draw_grads(0, dtype)
    with mg.backend(host_backend):
        assert_same(*clip_both(torch, grads, max_norm, norm_type), dtype)


@given(seed=st.integers(0, 2**16), scale=st.sampled_from([1e-3, 1.0, 1e3]),
       max_norm=st.floats(1e-3, 1e3), norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]))
def test_clip_grad_norm_drawn_matches_torch(torch, seed, scale, max_norm, norm_type):
    grads = draw_grads(seed, np.float64, scale)
    assert_same(*clip_both(torch, grads, max_norm, norm_type), np.float64)


def test_clip_grad_norm_returns_the_norm_before_clipping_and_caps_it():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    params = with_grads(mg, grads, mg.tensor)
    norm = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert norm.item() == 5.0
    np.testing.assert_allclose(params[0].grad.numpy(), [3 / (5 + 1e-6), 0.0], rtol=1e-15)
    after = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert after.item() == pytest.approx(1.0, abs=1e-6)
    assert nn.utils.clip_grad_norm_(params, 1.0, norm_type="inf").item() == pytest.approx(0.8)


def test_clip_grad_norm_changes_grads_in_place_and_skips_missing_ones(torch):
    grads = draw_grads(1, np.float64)
    grads[1] = None
    ours = with_grads(mg, [g if g is not None else np.zeros(5) for g in grads], mg.tensor)
    ours[1].grad = None
    theirs = with_grads(torch, [g if g is not None else np.zeros(5) for g in grads],
                        torch.from_numpy)
    theirs[1].grad = None
    arrays = [p.grad.array if p.grad is not None else None for p in ours]
    versions = [p.grad._version for p in ours if p.grad is not None]
    norm = nn.utils.clip_grad_norm_(iter(ours), 0.5)  # a generator, walked twice inside
    torch_norm = torch.nn.utils.clip_grad_norm_(iter(theirs), 0.5)
    assert norm.item() == pytest.approx(torch_norm.item(), rel=1e-12)
    assert all(p.grad.array is a for p, a in zip(ours, arrays) if a is not None)
    assert [p.grad._version for p in ours if p.grad is not None] == [v + 1 for v in versions]
    for p, t in zip(ours, theirs):
        assert (p.grad is None) == (t.grad is None)
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_of_a_single_tensor_and_of_nothing(torch):
    (p,) = with_grads(mg, [np.array([6.0, 8.0])], mg.tensor)
    assert nn.utils.clip_grad_norm_(p, 5.0).item() == 10.0
    np.testing.assert_allclose(p.grad.numpy(), [3.0, 4.0], rtol=1e-6)
    empty = nn.utils.clip_grad_norm_([mg.zeros(2, requires_grad=True)], 1.0)
    torch_empty = torch.nn.utils.clip_grad_norm_([torch.zeros(2, requires_grad=True)], 1.0)
    assert empty.item() == torch_empty.item() == 0.0 and empty.dtype == np.float32
    with pytest.warns(UserWarning, match="empty generator"):
        nn.utils.clip_grad_norm_((p for p in []), 1.0)


def test_clip_grad_norm_of_a_model_after_backward(torch):
    """The usual loop: real gradients from backward, the model's parameters() generator."""
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                                      torch.nn.Linear(8, 2))
    torch_model.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                                 for k, v in model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    model(mg.tensor(x)).pow(2).sum().backward()
    torch_model(torch.from_numpy(x)).pow(2).sum().backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
    torch_norm = torch.nn.utils.clip_grad_norm_(torch_model.parameters(), max_norm=0.1)
    assert norm.item() == pytest.approx(torch_norm.item(), rel=1e-5)
    for p, t in zip(model.parameters(), torch_model.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_clip_grad_norm_non_finite(torch, bad):
    grads = [np.array([1.0, bad]), np.array([2.0])]
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0 for "
                                           "gradients from `parameters` is non-finite"):
        nn.utils.clip_grad_norm_(with_grads(mg, grads, mg.tensor), 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(with_grads(torch, grads, torch.from_numpy), 1.0,
                                       error_if_nonfinite=True)
    norm, torch_norm, ours, theirs = clip_both(torch, grads, 1.0)  # scaled by nan or 0, as torch
    np.testing.assert_array_equal(norm.numpy(), torch_norm.numpy())
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())


def test_get_total_norm_and_clip_grads_with_norm_are_the_two_halves(torch):
    grads = draw_grads(2, np.float64)
    ours = with_grads(mg, grads, mg.tensor)
    theirs = with_grads(torch, grads, torch.from_numpy)
    norm = nn.utils.get_total_norm([p.grad for p in ours], 3.0)
    torch_norm = torch.nn.utils.get_total_norm([t.grad for t in theirs], 3.0)
    assert norm.item() == pytest.approx(torch_norm.item(), rel=1e-12)
    nn.utils.clip_grads_with_norm_(ours, 0.5, norm)
    torch.nn.utils.clip_grads_with_norm_(theirs, 0.5, torch_norm)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_clipping_builds_no_graph():
    p = mg.ones(3, requires_grad=True)
    (p * p).sum().backward()
    norm = nn.utils.clip_grad_norm_([p], 0.1)
    assert not norm.requires_grad and norm.grad_fn is None
    assert not p.grad.requires_grad


# --------------------------------------------------------------------------- clip_grad_value_
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip_value", [0.0, 0.5, 10])
def test_clip_grad_value_matches_torch(torch, dtype, clip_value, host_backend):
    grads = draw_grads(3, dtype)
    with mg.backend(host_backend):
        ours = with_grads(mg, grads, mg.tensor)
        arrays = [p.grad.array for p in ours]
        assert nn.utils.clip_grad_value_(ours, clip_value) is None
    theirs = with_grads(torch, grads, torch.from_numpy)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, t, a in zip(ours, theirs, arrays):
        assert p.grad.array is a
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
    single = with_grads(mg, grads[:1], mg.tensor)[0]
    nn.utils.clip_grad_value_(single, 0.1)
    assert np.abs(single.grad.numpy()).max() <= np.float32(0.1)


# ------------------------------------------------------------ parameters_to_vector and back
def test_parameters_to_vector_and_back_match_torch(torch):
    mg.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    torch_model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    torch_model.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                                 for k, v in model.state_dict().items()})
    vec = nn.utils.parameters_to_vector(model.parameters())
    torch_vec = torch.nn.utils.parameters_to_vector(torch_model.parameters())
    np.testing.assert_array_equal(vec.numpy(), torch_vec.detach().numpy())
    assert vec.shape == (26,) and vec.dtype == np.float32

    new = np.arange(26, dtype=np.float32)
    nn.utils.vector_to_parameters(mg.tensor(new), model.parameters())
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new), torch_model.parameters())
    for (name, p), t in zip(model.named_parameters(), torch_model.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), t.detach().numpy(), err_msg=name)
        assert p.requires_grad


def test_vector_to_parameters_shares_the_vectors_memory_like_torch():
    params = [mg.zeros(2, 2, requires_grad=True), mg.zeros((), requires_grad=True)]
    vec = mg.arange(5).astype(mg.float32)
    nn.utils.vector_to_parameters(vec, params)
    assert params[1].shape == () and params[1].item() == 4
    vec.array[0] = 100  # as with `param.data = vec[...]` in PyTorch
    assert params[0].numpy()[0, 0] == 100


def test_parameters_to_vector_is_differentiable():
    rng = np.random.default_rng(0)
    params = [mg.tensor(rng.standard_normal(s), requires_grad=True) for s in [(2, 3), (4,), ()]]
    assert gradcheck(lambda *ps: nn.utils.parameters_to_vector(ps) ** 2, params)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: nn.utils.vector_to_parameters(np.zeros(3), [mg.zeros(3)]), TypeError,
     "vector_to_parameters: expected a Tensor, but got: ndarray"),
    (lambda: nn.utils.vector_to_parameters(mg.zeros(2, 2), [mg.zeros(4)]), ValueError,
     r"vector_to_parameters: vec must be 1-D, got shape \(2, 2\)"),
    (lambda: nn.utils.vector_to_parameters(mg.zeros(3), [mg.zeros(2), mg.zeros(2)]), ValueError,
     "vector_to_parameters: vec has 3 elements, the parameters need 4"),
    (lambda: nn.utils.parameters_to_vector([]), ValueError,
     "parameters_to_vector: got no parameters"),
])
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_nn_utils_names_are_torchs(torch):
    names = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
             "parameters_to_vector", "vector_to_parameters"]
    assert sorted(nn.utils.__all__) == names
    assert all(hasattr(torch.nn.utils, name) for name in names)
    assert mg.nn.utils is nn.utils and "utils" in mg.nn.__all__
    import inspect
    for name in names:
        ours = list(inspect.signature(getattr(nn.utils, name)).parameters.items())
        theirs = list(inspect.signature(getattr(torch.nn.utils, name)).parameters.items())
        assert [(k, p.default) for k, p in ours] == [(k, p.default) for k, p in theirs], name


# ------------------------------------------------------------------------ init.trunc_normal_
def truncated_normal_moments(mean, std, a, b):
    """Mean and std of N(mean, std^2) truncated to [a, b] (the textbook formulas)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    phi = statistics.NormalDist().pdf
    mass = statistics.NormalDist().cdf(beta) - statistics.NormalDist().cdf(alpha)
    shift = (phi(alpha) - phi(beta)) / mass
    variance = 1 + (alpha * phi(alpha) - beta * phi(beta)) / mass - shift**2
    return mean + std * shift, std * math.sqrt(variance)


@pytest.mark.parametrize(("mean", "std", "a", "b"), [
    (0.0, 1.0, -2.0, 2.0),      # the defaults
    (0.0, 0.02, -2.0, 2.0),     # as ViTs use it: bounds absolute, so nothing is cut
    (0.5, 1.0, 0.0, 3.0),       # one-sided cut, off-centre
    (0.0, 1.0, 1.0, 1.5),       # 9% of the mass: uniform proposals
    (-1.0, 2.0, 4.0, 5.0),      # far in the tail (PyTorch warns; still exact here)
    (0.0, 1.0, -0.25, 0.25),    # narrow around the mean
])
def test_trunc_normal_statistics(mean, std, a, b):
    mg.manual_seed(0)
    n = 200_000
    values = nn.init.trunc_normal_(mg.zeros(n, dtype=mg.float64), mean, std, a, b).numpy()
    assert a <= values.min() and values.max() <= b
    expected_mean, expected_std = truncated_normal_moments(mean, std, a, b)
    # 5 standard errors of the sample mean and (roughly) of the sample std
    assert abs(values.mean() - expected_mean) < 5 * expected_std / math.sqrt(n)
    assert abs(values.std() - expected_std) < 5 * expected_std / math.sqrt(2 * n) * 2
    # and the shape of the histogram: the fraction below the midpoint
    mid = (a + b) / 2
    nd = statistics.NormalDist(mean, std)
    below = (nd.cdf(mid) - nd.cdf(a)) / (nd.cdf(b) - nd.cdf(a))
    assert abs((values < mid).mean() - below) < 5 * math.sqrt(below * (1 - below) / n)


def test_trunc_normal_fills_in_place_reproducibly_and_builds_no_graph():
    w = nn.Parameter(np.zeros((64, 32), dtype=np.float32))
    array = w.array
    mg.manual_seed(3)
    out = nn.init.trunc_normal_(w, std=0.5, a=-0.3, b=1.0)
    assert out is w and w.array is array and w.dtype == np.float32 and w.grad_fn is None
    values = w.numpy().copy()
    assert values.min() >= -0.3 and values.max() <= 1.0 and values.std() > 0.1
    mg.manual_seed(3)
    np.testing.assert_array_equal(nn.init.trunc_normal_(w, std=0.5, a=-0.3, b=1.0).numpy(),
                                  values)
    gen = np.random.default_rng(5)
    first = nn.init.trunc_normal_(mg.zeros(10), generator=gen).numpy()
    again = nn.init.trunc_normal_(mg.zeros(10), generator=np.random.default_rng(5)).numpy()
    np.testing.assert_array_equal(first, again)


def test_trunc_normal_degenerate_interval_and_signature(torch):
    x = nn.init.trunc_normal_(mg.zeros(5), mean=0.0, std=1.0, a=0.7, b=0.7)
    np.testing.assert_allclose(x.numpy(), 0.7, rtol=1e-7)
    import inspect
    ours = inspect.signature(nn.init.trunc_normal_).parameters
    theirs = inspect.signature(torch.nn.init.trunc_normal_).parameters
    assert [(k, p.default) for k, p in ours.items()] == [(k, p.default) for k, p in theirs.items()]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"std": 0.0}, "trunc_normal_: std must be positive, got 0.0"),
    ({"a": 1.0, "b": -1.0}, "trunc_normal_: the bounds need a <= b, got a=1.0, b=-1.0"),
    ({"a": 3.0, "b": math.inf}, "both bounds must be finite"),
])
def test_trunc_normal_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.init.trunc_normal_(mg.zeros(3), **kwargs)
