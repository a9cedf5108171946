"""Losses, dropout and normalisation: gradients, PyTorch, running statistics, layouts, bad input.

Each functional case is one `OpCase` (tests/op_table.py, the harness the op tables share):
`fn(lib, *tensors, **params)` written once against the PyTorch-shaped API
(`lib.nn.functional`), so it runs with `lib=minigrad` and `lib=torch`, plus a strategy that
draws `(float64 arrays, params)`: every array is a differentiable input (input, target of mse,
weight, bias); integer targets, running statistics and flags are params. Batch norm draws its
input in plain NCHW memory or channels-last (an NCHW-shaped view of NHWC memory, what
convolutions return), which takes a different path through the op.

Running statistics over several training steps are compared with PyTorch's through the
BatchNorm modules, which add the batch count and the cumulative average
(tests/test_nn_modules.py); dropout's statistics are tested here, for F.dropout and so for
nn.Dropout.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import channels_last, raises_saying
from hypothesis import given
from hypothesis import strategies as st
from op_table import DTYPES, OpCase, op_tests

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.testing import gradcheck
from minigrad.testing.strategies import arrays, distinct_arrays, shapes

PYTORCH_TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10},
                     "float32": {"rtol": 1e-4, "atol": 1e-4}}
REDUCTION = st.sampled_from(["mean", "sum", "none"])


# ----------------------------------------------------------------------------- input strategies


@st.composite
def class_inputs(draw, probabilities: bool = False, smoothed_and_weighted: bool = False,
                 ignore_index: bool = False):
    """Logits (N, C, d1, ...), targets (N, d1, ...) (some ignored) or class probabilities of
    the logits' shape, optional positive class weights, a reduction and label smoothing.
    `ignore_index`: a drawn ignore_index (a class, or -1 or 255) with a drawn subset of the
    targets set to it, at least one target kept (every target ignored has its own test)."""
    n, classes = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    extra = draw(shapes(min_dims=0, max_dims=2, max_side=3))
    logits = draw(arrays((n, classes, *extra)))
    smoothing = [0.1, 0.5, 1.0] if smoothed_and_weighted else [0.0, 0.0, 0.1, 0.5, 1.0]
    weight = arrays((classes,), 0.2, 2.0)
    params = {"reduction": draw(REDUCTION),
              "label_smoothing": draw(st.sampled_from(smoothing)),
              "weight": draw(weight if smoothed_and_weighted else st.none() | weight)}
    if probabilities:
        target = draw(arrays((n, classes, *extra), 0.0, 1.0))
        return (logits, target / np.maximum(target.sum(1, keepdims=True), 1e-3)), params
    target = draw(st.lists(st.integers(0, classes - 1), min_size=n * int(np.prod(extra)),
                           max_size=n * int(np.prod(extra))))
    target = np.array(target, dtype=np.int64).reshape((n, *extra))
    if ignore_index:
        ignored = draw(st.sampled_from([-1, 255, *range(classes)] if classes > 1 else [-1, 255]))
        mask = draw(st.lists(st.booleans(), min_size=target.size, max_size=target.size))
        target.flat[np.flatnonzero(mask)] = ignored
        if (target == ignored).all():
            target.flat[0] = (ignored + 1) % classes if 0 <= ignored < classes else 0
        return (logits,), {**params, "target": target, "ignore_index": ignored}
    if target.size > 1:  # all ignored would make the mean 0 / 0
        target.flat[0] = draw(st.sampled_from([target.flat[0], -100]))
    return (logits,), {**params, "target": target}


@st.composite
def mse_inputs(draw):
    shape = draw(shapes())
    return (draw(arrays(shape)), draw(arrays(shape))), {"reduction": draw(REDUCTION)}


@st.composite
def batch_norm_inputs(draw, training: bool):
    """(N, C), (N, C, L) or (N, C, H, W), tie-free (a constant channel has zero variance);
    plain or channels-last memory; affine or not. Training gets > 1 value per channel."""
    n, channels = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = draw(shapes(min_dims=0, max_dims=2, max_side=3))
    if training and n * np.prod(spatial) == 1:
        n = 2
    x = draw(distinct_arrays((n, channels, *spatial)))
    if spatial and draw(st.booleans()):
        x = channels_last(x)
    affine = draw(st.booleans())
    inputs = (x, draw(arrays((channels,))), draw(arrays((channels,)))) if affine else (x,)
    return inputs, {"training": training,
                    "running_mean": draw(arrays((channels,))),
                    "running_var": draw(arrays((channels,), 0.2, 3.0)),
                    "momentum": draw(st.sampled_from([0.1, 0.5, 1.0])),
                    "eps": draw(st.sampled_from([1e-5, 1e-3]))}


@st.composite
def layer_norm_inputs(draw):
    """Tie-free x normalised over its last 1 to all dims, at least 2 elements per group: over
    one element xhat is exactly 0, and PyTorch's float32 rounding noise, times 1/sqrt(eps),
    reaches 1e-4 (`test_layer_norm_over_one_element` checks that case exactly)."""
    shape = list(draw(shapes(min_dims=1, max_dims=4, max_side=3)))
    normalized_dims = draw(st.integers(1, len(shape)))
    if np.prod(shape[-normalized_dims:]) == 1:
        shape[-1] = 2
    normalized = tuple(shape[-normalized_dims:])
    x = draw(distinct_arrays(tuple(shape)))
    affine = draw(st.booleans())
    inputs = (x, draw(arrays(normalized)), draw(arrays(normalized))) if affine else (x,)
    return inputs, {"normalized_shape": normalized, "eps": draw(st.sampled_from([1e-5, 1e-3]))}


# ---------------------------------------------------------------------------------- the table


def cross_entropy(lib, x, target, weight, **params):
    weight = None if weight is None else lib.tensor(weight)
    return lib.nn.functional.cross_entropy(x, lib.tensor(target), weight, **params)


def soft_cross_entropy(lib, x, target, weight, **params):
    weight = None if weight is None else lib.tensor(weight)
    return lib.nn.functional.cross_entropy(x, target, weight, **params)


def nll_loss(lib, x, target, weight, reduction, label_smoothing, **params):
    weight = None if weight is None else lib.tensor(weight)
    return lib.nn.functional.nll_loss(x, lib.tensor(target), weight, reduction=reduction,
                                      **params)


def batch_norm(lib, x, *affine, running_mean, running_var, **params):
    """Fresh copies of the running statistics on every call: training updates them in place."""
    return lib.nn.functional.batch_norm(x, lib.tensor(running_mean.copy()),
                                        lib.tensor(running_var.copy()), *affine, **params)


def layer_norm(lib, x, *affine, normalized_shape, eps):
    return lib.nn.functional.layer_norm(x, normalized_shape, *affine, eps=eps)


# fn(lib, *tensors, **params), lib being minigrad or torch
CASES = [
    OpCase("cross_entropy", cross_entropy, class_inputs()),
    OpCase("cross_entropy_smoothed_weighted", cross_entropy,
           class_inputs(smoothed_and_weighted=True)),
    OpCase("cross_entropy_probabilities", soft_cross_entropy, class_inputs(probabilities=True)),
    OpCase("cross_entropy_ignore_index", cross_entropy, class_inputs(ignore_index=True)),
    OpCase("nll_loss", nll_loss, class_inputs()),
    OpCase("nll_loss_ignore_index", nll_loss, class_inputs(ignore_index=True)),
    OpCase("mse_loss", lambda lib, x, t, **p: lib.nn.functional.mse_loss(x, t, **p),
           mse_inputs()),
    OpCase("batch_norm_training", batch_norm, batch_norm_inputs(training=True)),
    OpCase("batch_norm_eval", batch_norm, batch_norm_inputs(training=False)),
    OpCase("layer_norm", layer_norm, layer_norm_inputs()),
]


# ---------------------------------------------------------------- gradients and the PyTorch oracle


(test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
 test_no_graph_under_no_grad) = op_tests(CASES, mg, lambda torch: torch, PYTORCH_TOLERANCE)


@given(data=st.data())
def test_numba_batch_norm_kernels_match_finite_differences(data):
    """Training-mode batch norm of channels-last data runs as compiled passes on the Numba
    backend (`batch_norm_forward/backward`): its own gradient check."""
    inputs, params = data.draw(batch_norm_inputs(training=True), label="inputs, params")
    inputs = (channels_last(inputs[0]) if inputs[0].ndim > 2 else inputs[0], *inputs[1:])
    seed = data.draw(st.integers(0, 2**16), label="upstream seed")
    with mg.backend("numba"):
        tensors = [mg.tensor(x, requires_grad=True) for x in inputs]
        assert mg.get_backend() == "numba"
        assert gradcheck(lambda *ts: batch_norm(mg, *ts, **params), tensors, seed=seed)


# -------------------------------------------------------------------------- running statistics


def test_running_statistics_update_under_no_grad_and_without_affine():
    """As PyTorch: training mode updates the running statistics whether or not a graph is
    recorded; running statistics are optional in training."""
    x = mg.tensor(np.arange(12.0).reshape(4, 3))
    mean, var = mg.zeros(3, dtype=mg.float64), mg.ones(3, dtype=mg.float64)
    with mg.no_grad():
        F.batch_norm(x, mean, var, training=True, momentum=1.0)
    np.testing.assert_allclose(mean.numpy(), [4.5, 5.5, 6.5])
    np.testing.assert_allclose(var.numpy(), [15.0, 15.0, 15.0])  # unbiased: 45 / 3
    out = F.batch_norm(x, None, None, training=True)
    np.testing.assert_allclose(out.numpy().mean(0), 0, atol=1e-12)


def test_float32_batch_norm_of_a_large_channels_last_batch_stays_close_to_float64(torch):
    """float32 channels-last data far from zero mean (the hard case for float32 sums, which
    add the rows of channels-last memory one at a time): forward and gradients stay within
    float32 precision of PyTorch's float64 result."""
    rng = np.random.default_rng(1)
    x64 = rng.standard_normal((64, 4, 32, 32)) + 100.0
    upstream = rng.standard_normal(x64.shape)
    weight = rng.standard_normal(4)
    ours = mg.tensor(channels_last(x64.astype(np.float32)), requires_grad=True)
    out = F.batch_norm(ours, None, None, mg.tensor(weight.astype(np.float32)), training=True)
    out.backward(upstream.astype(np.float32))
    theirs = torch.tensor(x64, requires_grad=True)
    expected = torch.nn.functional.batch_norm(theirs, None, None, torch.tensor(weight),
                                              training=True)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-4, atol=2e-5)


# ------------------------------------------------------------------------------ memory layout


def is_channels_last(a: np.ndarray) -> bool:
    return np.moveaxis(a, 1, -1).flags.c_contiguous


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (4, 16, 5), (2, 3, 1, 1)])
@pytest.mark.parametrize("op", ["batch_norm_train", "batch_norm_eval", "layer_norm"])
def test_norms_keep_a_channels_last_layout(host_backend, op, shape):
    """A channels-last input gives a channels-last output and input gradient (a plain one
    plain ones), with the values of the plain NCHW computation."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    upstream = channels_last(rng.standard_normal(shape))
    weight, bias = rng.standard_normal((2, shape[-1] if op == "layer_norm" else shape[1]))

    def run(data):
        t = mg.tensor(data, requires_grad=True)
        if op == "layer_norm":
            out = F.layer_norm(t, shape[-1:], mg.tensor(weight), mg.tensor(bias))
        else:
            out = F.batch_norm(t, mg.zeros(shape[1], dtype=mg.float64),
                               mg.ones(shape[1], dtype=mg.float64), mg.tensor(weight),
                               mg.tensor(bias), training=op == "batch_norm_train")
        # the op's own input gradient: the engine copies a leaf's gradient into C order
        grad_x = out.grad_fn.function.backward(out.grad_fn, upstream)[0]
        return out.numpy(), grad_x

    with mg.backend(host_backend):
        out, grad = run(channels_last(x))
        plain_out, plain_grad = run(x)
    assert is_channels_last(out) and is_channels_last(grad)
    assert plain_out.flags.c_contiguous and plain_grad.flags.c_contiguous
    np.testing.assert_allclose(out, plain_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, plain_grad, rtol=1e-12, atol=1e-12)


def test_layer_norm_over_one_element():
    """One element per group: xhat is exactly 0, so the output is the bias and only the bias
    has a gradient."""
    x = mg.tensor([[-0.05], [3.0]], requires_grad=True)
    weight = mg.tensor([2.375], requires_grad=True)
    bias = mg.tensor([0.5], requires_grad=True)
    out = F.layer_norm(x, 1, weight, bias)
    out.backward(mg.tensor([[1.0], [2.0]]))
    np.testing.assert_array_equal(out.numpy(), [[0.5], [0.5]])
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0], [0.0]])
    np.testing.assert_array_equal(weight.grad.numpy(), [0.0])
    np.testing.assert_array_equal(bias.grad.numpy(), [3.0])


# ------------------------------------------------------------------------ every target ignored


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("op", "label_smoothing"),
                         [("cross_entropy", 0.0), ("cross_entropy", 0.2), ("nll_loss", 0.0)])
def test_every_target_ignored_matches_pytorch(torch, op, reduction, label_smoothing, weighted):
    """As PyTorch: the mean over no target is 0 / 0 = nan, the sum 0, 'none' zeros; the
    gradient is zero in every case (no nan), and no warning is raised."""
    rng = np.random.default_rng(4)
    logits, upstream_seed = rng.standard_normal((3, 4, 2)), 5
    target = np.full((3, 2), 2)
    weight = rng.uniform(0.5, 2.0, 4) if weighted else None
    smoothing = {"label_smoothing": label_smoothing} if op == "cross_entropy" else {}

    def run(lib, x):
        w = None if weight is None else lib.tensor(weight)
        loss = getattr(lib.nn.functional, op)(x, lib.tensor(target), w, reduction=reduction,
                                              ignore_index=2, **smoothing)
        upstream = np.random.default_rng(upstream_seed).standard_normal(tuple(loss.shape))
        loss.backward(lib.tensor(upstream))
        return loss

    theirs = torch.tensor(logits, requires_grad=True)
    expected = run(torch, theirs)
    ours = mg.tensor(logits, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in divide"
        out = run(mg, ours)
    assert out.shape == tuple(expected.shape)
    if reduction == "mean":
        assert np.isnan(expected.item()) and np.isnan(out.item())
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())
    np.testing.assert_array_equal(theirs.grad.numpy(), 0)
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


# ------------------------------------------------------------------------ numerical stability


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("scale", [1000.0, -1000.0])
def test_cross_entropy_is_stable_at_extreme_logits(torch, scale, label_smoothing):
    logits = np.array([[1.0, 0.0, -1.0], [2.0, 2.0, -3.0], [0.5, -0.5, 3.0]]) * scale
    target = np.array([0, 2, 1])
    ours = mg.tensor(logits, requires_grad=True)
    theirs = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(ours, mg.tensor(target), label_smoothing=label_smoothing)
    expected = torch.nn.functional.cross_entropy(theirs, torch.tensor(target),
                                                 label_smoothing=label_smoothing)
    loss.backward()
    expected.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(ours.grad.numpy()))
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), atol=1e-12)


# ------------------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.8])
def test_dropout_drops_a_fraction_p_and_scales_the_rest(p, dtype):
    mg.manual_seed(0)
    x = mg.tensor(np.random.default_rng(3).uniform(1, 2, (1000, 1000)).astype(dtype),
                  requires_grad=True)
    out = F.dropout(x, p)
    upstream = np.full(x.shape, 2.0, dtype=dtype)
    out.backward(upstream)
    values, kept = out.numpy(), out.numpy() != 0
    assert out.dtype == np.dtype(dtype)
    assert abs(1 - kept.mean() - p) < 5e-3  # 1e6 draws: the standard deviation is <= 5e-4
    scale = np.asarray(1, dtype=dtype) / np.asarray(1 - p, dtype=dtype)
    np.testing.assert_array_equal(values[kept], x.numpy()[kept] * scale)
    np.testing.assert_array_equal(x.grad.numpy(), np.where(kept, 2 * scale, 0))


def test_dropout_is_the_identity_in_eval_and_at_p_0_and_zero_at_p_1():
    x = mg.randn(3, 4, dtype=mg.float64, requires_grad=True)
    for out in (F.dropout(x, 0.5, training=False), F.dropout(x, 0.0)):
        np.testing.assert_array_equal(out.numpy(), x.numpy())
    out = F.dropout(x, 1.0)
    out.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(out.numpy(), 0)
    np.testing.assert_array_equal(x.grad.numpy(), 0)


def test_dropout_masks_are_reproducible_under_manual_seed_on_every_backend(backend):
    """The masks come from minigrad's one generator, on the host: after the same seed every
    backend draws the NumPy backend's masks, and each call a fresh one."""

    def masks(name: str) -> list[np.ndarray]:
        with mg.backend(name):
            mg.manual_seed(7)
            return [F.dropout(mg.ones(50, 40), 0.3).numpy() for _ in range(2)]

    ours, reference = masks(backend), masks("numpy")
    assert not np.array_equal(ours[0], ours[1])  # the generator moves on
    for i, (mask, expected) in enumerate(zip(ours, reference)):
        np.testing.assert_array_equal(mask, expected, err_msg=f"mask {i}")


# ------------------------------------------------------------------------------------ bad input


def zeros(*shape: int, dtype: str = "float32") -> Callable[[], mg.Tensor]:
    """A tensor argument, built when the call runs (not at import)."""
    return lambda: mg.zeros(*shape, dtype=dtype)


def ints(*values: int) -> Callable[[], mg.Tensor]:
    return lambda: mg.tensor(list(values))


def bad(op: str, what: str, error: type, args: list, details: list[str], **kwargs: Any):
    """F.<op>(*args, **kwargs) must raise `error` naming the op and containing `details`."""
    return pytest.param(op, error, args, kwargs, details, id=f"{op}-{what}")


LOGITS = zeros(4, 5)
CLASS_LOSSES = ["cross_entropy", "nll_loss"]

BAD_CALLS = [
    *[bad(op, "target-shape", ValueError, [LOGITS, ints(0, 1, 2)], ["(3,)", "(4, 5)", "(4,)"])
      for op in CLASS_LOSSES],
    *[bad(op, "class-too-large", ValueError, [LOGITS, ints(0, 1, 5, 2)], ["5", "[0, 5)"])
      for op in CLASS_LOSSES],
    *[bad(op, "negative-class", ValueError, [LOGITS, ints(0, -1, 4, 2)], ["-1", "[0, 5)"])
      for op in CLASS_LOSSES],
    *[bad(op, "float-target", ValueError, [LOGITS, zeros(4)], ["(4,) float32", "integer"])
      for op in CLASS_LOSSES],
    *[bad(op, "unknown-reduction", ValueError, [LOGITS, ints(0, 1, 2, 3)], ["'avg'"],
          reduction="avg") for op in CLASS_LOSSES],
    *[bad(op, "weight-shape", ValueError, [LOGITS, ints(0, 1, 2, 3), zeros(4)], ["(5,)", "(4,)"])
      for op in CLASS_LOSSES],
    *[bad(op, "1d-input", ValueError, [zeros(5), ints(1)], ["(5,)"]) for op in CLASS_LOSSES],
    *[bad(op, "tuple-input", TypeError, [lambda: (mg.zeros(4, 5),), ints(0, 1, 2, 3)],
          ["Tensor", "tuple"]) for op in CLASS_LOSSES],
    bad("cross_entropy", "label-smoothing-over-1", ValueError, [LOGITS, ints(0, 1, 2, 3)],
        ["1.5"], label_smoothing=1.5),
    bad("mse_loss", "shape-mismatch", ValueError, [zeros(4, 1), zeros(4)], ["(4,)", "(4, 1)"]),
    bad("mse_loss", "unknown-reduction", ValueError, [zeros(4), zeros(4)], ["'mena'"],
        reduction="mena"),
    bad("mse_loss", "integer-target", ValueError, [zeros(3), ints(1, 2, 3)], ["int64"]),
    bad("dropout", "p-over-1", ValueError, [zeros(3)], ["1.5"], p=1.5),
    bad("dropout", "negative-p", ValueError, [zeros(3)], ["-0.1"], p=-0.1),
    bad("batch_norm", "1d-input", ValueError, [zeros(3), zeros(3), zeros(3)], ["(3,)"]),
    bad("batch_norm", "running-mean-shape", ValueError, [zeros(4, 3, 2), zeros(2), zeros(3)],
        ["running_mean", "(3,)", "(2,)", "(4, 3, 2)"]),
    bad("batch_norm", "weight-shape", ValueError, [zeros(4, 3), zeros(3), zeros(3), zeros(4)],
        ["weight", "(3,)", "(4,)"]),
    bad("batch_norm", "weight-dtype", TypeError,
        [zeros(4, 3), zeros(3), zeros(3), zeros(3, dtype="float64")], ["float32", "float64"]),
    bad("batch_norm", "eval-without-running-stats", ValueError, [zeros(4, 3), None, None],
        ["running_mean", "eval"]),
    bad("batch_norm", "one-value-per-channel", ValueError, [zeros(1, 3, 1, 1), None, None],
        ["more than 1 value per channel", "(1, 3, 1, 1)"], training=True),
    bad("layer_norm", "shape-mismatch", ValueError, [zeros(2, 3, 4), (3,)], ["(3,)",
                                                                              "(2, 3, 4)"]),
    bad("layer_norm", "bias-shape", ValueError, [zeros(2, 3, 4), 4, None, zeros(3)],
        ["bias", "(4,)", "(3,)"]),
]


@pytest.mark.parametrize(("op", "error", "args", "kwargs", "details"), BAD_CALLS)
def test_bad_input_is_rejected_with_a_clear_message(op, error, args, kwargs, details):
    args = [a() if callable(a) else a for a in args]
    with raises_saying(error, details, starts=f"{op}:"):
        getattr(F, op)(*args, **kwargs)
