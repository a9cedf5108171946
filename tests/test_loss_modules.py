"""The losses beyond cross entropy (l1, smooth l1, huber, binary cross entropy from probabilities
and from logits, KL divergence, weighted mse) and every loss module.

The functions are an op table (tests/op_table.py): each case is `fn(lib, *tensors, **params)`,
run with minigrad and with PyTorch; every array of a case's inputs is differentiated, the
target included wherever PyTorch differentiates it (all these losses), and the weights of
mse, l1 and huber. BCE's weight and pos_weight, which PyTorch does not differentiate, are
params. Targets are drawn so that finite differences never cross a kink (l1 where input ==
target) or leave the domain (BCE's target in [0, 1]).

The modules are a layer table (tests/layer_table.py): each `LayerCase` calls the loss on x
and a fixed target built in the library under test. Then come the cases the tables do not
reach: logits of +-1000, BCE's clamped log at probabilities 0 and 1, KL's gradient at a zero
target, PyTorch's deprecated size_average/reduce, its positional argument order, the module
signatures, buffers and reprs, and the error messages.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import raises_saying
from hypothesis import strategies as st
from layer_table import LayerCase, layer_tests
from op_table import DTYPES, OpCase, op_tests

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.testing.strategies import arrays, shapes

# PyTorch warns on every kl_div with reduction='mean' (minigrad too); the warning's own test
# is test_kl_div_mean_warns_as_pytorch
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")

PYTORCH_TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10},
                     "float32": {"rtol": 1e-5, "atol": 1e-5}}
REDUCTION = st.sampled_from(["mean", "sum", "none"])
FUNCTIONS = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
             "huber_loss", "kl_div", "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss"]
MODULES = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "KLDivLoss",
           "L1Loss", "MSELoss", "NLLLoss", "SmoothL1Loss"]


# ----------------------------------------------------------------------------- input strategies


@st.composite
def broadcast_to(draw, shape: tuple[int, ...], low: float = 0.2, high: float = 2.0):
    """An array whose shape broadcasts to `shape` (trailing dims, some of them 1): a BCE
    weight or pos_weight."""
    trailing = shape[len(shape) - draw(st.integers(0, len(shape))):]
    ones = draw(st.lists(st.booleans(), min_size=len(trailing), max_size=len(trailing)))
    return draw(arrays(tuple(1 if one else n for one, n in zip(ones, trailing)), low, high))


@st.composite
def regression_inputs(draw, weighted: bool = False, beta: bool = False, delta: bool = False):
    """input, target (and maybe a positive weight) of one shape; input - target stays 1e-2
    off 0, l1's kink (smooth_l1's too at beta = 0)."""
    shape = draw(shapes(max_dims=3))
    params = {"reduction": draw(REDUCTION)}
    if beta:
        params["beta"] = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))
    if delta:
        params["delta"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
    x = draw(arrays(shape))
    gap = draw(arrays(shape, kinks=(0.0,)))
    inputs = (x, x - gap)
    if weighted and draw(st.booleans()):
        inputs += (draw(arrays(shape, 0.2, 2.0)),)
    return inputs, params


@st.composite
def bce_inputs(draw, hard_targets: bool = False):
    """Probabilities in [0.02, 0.98]; targets in [0.01, 0.99], so a finite difference stays in
    [0, 1] (`hard_targets`: 0s and 1s, a param, not differentiated); maybe a weight."""
    shape = draw(shapes(max_dims=3))
    x = draw(arrays(shape, 0.02, 0.98))
    params = {"reduction": draw(REDUCTION), "weight": draw(st.none() | broadcast_to(shape))}
    if hard_targets:
        bits = draw(st.lists(st.booleans(), min_size=x.size, max_size=x.size))
        return (x,), {**params, "target": np.array(bits, dtype=np.float64).reshape(shape)}
    return (x, draw(arrays(shape, 0.01, 0.99))), params


@st.composite
def bce_logits_inputs(draw):
    shape = draw(shapes(max_dims=3))
    return (draw(arrays(shape, -6.0, 6.0)), draw(arrays(shape, 0.0, 1.0))), {
        "reduction": draw(REDUCTION),
        "weight": draw(st.none() | broadcast_to(shape)),
        "pos_weight": draw(st.none() | broadcast_to(shape, 0.2, 3.0))}


@st.composite
def kl_inputs(draw):
    """Log-probabilities against probabilities (kept off 0, where the target's gradient is
    NaN: test_kl_div_at_a_zero_target) or, with log_target, log-probabilities."""
    shape = draw(shapes(max_dims=3))
    log_target = draw(st.booleans())
    target = arrays(shape, -3.0, 0.5) if log_target else arrays(shape, 0.05, 1.0)
    return (draw(arrays(shape, -3.0, 0.5)), draw(target)), {
        "reduction": draw(st.sampled_from(["mean", "batchmean", "sum", "none"])),
        "log_target": log_target}


# ---------------------------------------------------------------------------------- the table


def regression(op: str) -> Callable[..., Any]:
    def fn(lib, x, target, *weight, **params):
        weighted = {"weight": weight[0]} if weight else {}
        return getattr(lib.nn.functional, op)(x, target, **weighted, **params)
    return fn


def constants(lib, params: dict[str, Any]) -> dict[str, Any]:
    """Array params (weights, fixed targets) as tensors of `lib`, not differentiated."""
    return {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in params.items()}


def bce(lib, x, *target, **params):
    params = constants(lib, params)
    target = target[0] if target else params.pop("target")
    return lib.nn.functional.binary_cross_entropy(x, target, **params)


def bce_with_logits(lib, x, target, **params):
    return lib.nn.functional.binary_cross_entropy_with_logits(x, target,
                                                              **constants(lib, params))


CASES = [
    OpCase("mse_loss_weighted", regression("mse_loss"), regression_inputs(weighted=True)),
    OpCase("l1_loss", regression("l1_loss"), regression_inputs(weighted=True)),
    OpCase("smooth_l1_loss", regression("smooth_l1_loss"), regression_inputs(beta=True)),
    OpCase("huber_loss", regression("huber_loss"), regression_inputs(weighted=True, delta=True)),
    OpCase("binary_cross_entropy", bce, bce_inputs()),
    OpCase("binary_cross_entropy_hard_targets", bce, bce_inputs(hard_targets=True)),
    OpCase("binary_cross_entropy_with_logits", bce_with_logits, bce_logits_inputs()),
    OpCase("kl_div", lambda lib, x, t, **p: lib.nn.functional.kl_div(x, t, **p), kl_inputs()),
]


(test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
 test_no_graph_under_no_grad) = op_tests(CASES, mg, lambda torch: torch, PYTORCH_TOLERANCE,
                                         backend="host_backend")


# ------------------------------------------------------------------------------ the layer table


def tensor_of(nn_module: Any, values: Any) -> Any:
    """`values` as a float32 tensor of the library `nn_module` belongs to (torch.nn: torch)."""
    lib = importlib.import_module(nn_module.__name__.rpartition(".")[0])
    return lib.tensor(np.asarray(values, dtype=np.float32))


def against(target: Any, transform: Callable[[Any, Any], Any] | None = None) -> Callable:
    """call= for a loss: layer(x, target), the target built in the library under test (in x's
    dtype when floating), x first through `transform(lib, x)` (a sigmoid for BCE)."""
    target = np.asarray(target)

    def call(lib, layer, x):
        t = lib.tensor(target, dtype=x.dtype) if target.dtype.kind == "f" else lib.tensor(target)
        return layer(x if transform is None else transform(lib, x), t)
    return call


def sigmoid(lib, x):
    return lib.sigmoid(x)


def log_softmax(lib, x):
    return lib.log_softmax(x, 1)


# Regression targets: l1 has a kink where x equals one, so the gradient check keeps x off them.
TARGET = [[0.5, -1.25, 2.0], [-0.75, 0.0, 1.5]]
KINKS = (0.5, -1.25, 2.0, -0.75, 0.0, 1.5)
PROBABILITIES = [[0.1, 0.6, 0.3], [0.25, 0.25, 0.5]]
CLASSES = [0, 3, 1, 4]
CLASS_MAP = [[0, 2], [4, 1], [2, 3]]

# Weighted class losses take 'sum' or 'none': the layer table loads random normal weights,
# whose sum (the weighted mean's denominator) may come near 0. Weighted means are in the op
# tables, with positive weights.
LAYERS = [
    LayerCase("cross_entropy", lambda nn: nn.CrossEntropyLoss(), (4, 5), call=against(CLASSES)),
    LayerCase("cross_entropy_weighted_smoothed_ignore",
              lambda nn: nn.CrossEntropyLoss(weight=tensor_of(nn, [1, 2, 0.5, 1, 3]),
                                             ignore_index=2, reduction="sum",
                                             label_smoothing=0.2),
              (3, 5, 2), call=against(CLASS_MAP)),
    LayerCase("cross_entropy_probabilities",
              lambda nn: nn.CrossEntropyLoss(label_smoothing=0.1), (2, 3),
              call=against(PROBABILITIES)),
    LayerCase("nll_loss", lambda nn: nn.NLLLoss(), (4, 5), call=against(CLASSES, log_softmax)),
    LayerCase("nll_loss_weighted_ignore",
              lambda nn: nn.NLLLoss(tensor_of(nn, [2, 1, 1, 0.5, 1]), None, 4,
                                    reduction="none"),
              (3, 5, 2), call=against(CLASS_MAP)),
    LayerCase("mse", lambda nn: nn.MSELoss(), (2, 3), call=against(TARGET)),
    LayerCase("mse_sum", lambda nn: nn.MSELoss(reduction="sum"), (2, 3), call=against(TARGET)),
    LayerCase("l1", lambda nn: nn.L1Loss(), (2, 3), kinks=KINKS, call=against(TARGET)),
    LayerCase("l1_none", lambda nn: nn.L1Loss(reduction="none"), (2, 3), kinks=KINKS,
              call=against(TARGET)),
    LayerCase("smooth_l1", lambda nn: nn.SmoothL1Loss(), (2, 3), call=against(TARGET)),
    LayerCase("smooth_l1_beta", lambda nn: nn.SmoothL1Loss(reduction="sum", beta=0.25), (2, 3),
              call=against(TARGET)),
    LayerCase("smooth_l1_beta_0", lambda nn: nn.SmoothL1Loss(beta=0.0), (2, 3), kinks=KINKS,
              call=against(TARGET)),
    LayerCase("huber", lambda nn: nn.HuberLoss(), (2, 3), call=against(TARGET)),
    LayerCase("huber_delta", lambda nn: nn.HuberLoss(reduction="none", delta=0.5), (2, 3),
              call=against(TARGET)),
    LayerCase("bce", lambda nn: nn.BCELoss(), (2, 3), call=against(PROBABILITIES, sigmoid)),
    LayerCase("bce_weighted", lambda nn: nn.BCELoss(tensor_of(nn, [1, 2, 0.5]), reduction="sum"),
              (2, 3), call=against([[0, 1, 1], [1, 0, 0.5]], sigmoid)),
    LayerCase("bce_with_logits", lambda nn: nn.BCEWithLogitsLoss(), (2, 3),
              call=against(PROBABILITIES)),
    LayerCase("bce_with_logits_weighted",
              lambda nn: nn.BCEWithLogitsLoss(tensor_of(nn, [[1, 2, 0.5]]), reduction="none",
                                              pos_weight=tensor_of(nn, [3, 1, 0.25])),
              (2, 3), call=against([[0, 1, 1], [1, 0, 0.5]])),
    LayerCase("kl_div", lambda nn: nn.KLDivLoss(), (2, 3),
              call=against(PROBABILITIES, log_softmax)),
    LayerCase("kl_div_batchmean", lambda nn: nn.KLDivLoss(reduction="batchmean"), (2, 3),
              call=against(PROBABILITIES, log_softmax)),
    LayerCase("kl_div_log_target",
              lambda nn: nn.KLDivLoss(reduction="sum", log_target=True), (2, 3),
              call=against(np.log(PROBABILITIES), log_softmax)),
]
test_layer_gradients, test_layer_against_pytorch, test_layer_builds_no_graph = layer_tests(
    LAYERS)


@pytest.mark.parametrize("case", LAYERS, ids=[case.name for case in LAYERS])
def test_loss_module_repr_and_state_dict_are_pytorchs(torch, case):
    ours, theirs = case.build(nn), case.build(torch.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].numpy(), value.numpy())
    assert list(dict(ours.named_parameters())) == []
    for name in ("reduction", "ignore_index", "label_smoothing", "beta", "delta", "log_target"):
        assert getattr(ours, name, None) == getattr(theirs, name, None), name


def test_loss_weights_are_buffers_that_follow_dtype_and_load_from_pytorch(torch):
    weight, pos_weight = [1.0, 2.0, 0.5], [3.0, 1.0]
    ours = nn.BCEWithLogitsLoss(mg.tensor(weight[:2]), pos_weight=mg.tensor(pos_weight))
    assert [name for name, _ in ours.named_buffers()] == ["weight", "pos_weight"]
    assert ours.double().pos_weight.dtype == np.float64
    ce = nn.CrossEntropyLoss(mg.tensor(weight, dtype=mg.float32))
    theirs = torch.nn.CrossEntropyLoss(torch.tensor([0.5, 0.25, 4.0]))
    ce.load_state_dict(theirs.state_dict())
    np.testing.assert_array_equal(ce.weight.numpy(), [0.5, 0.25, 4.0])
    assert nn.CrossEntropyLoss().weight is None and nn.BCEWithLogitsLoss().pos_weight is None


# ------------------------------------------------------------------------ numerical stability


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [None, [0.5, 3.0]], ids=["plain", "pos_weight"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_is_stable_at_extreme_logits(torch, host_backend, reduction, pos_weight,
                                                     dtype):
    """Logits of +-1000, right and wrong: finite losses (1000 for a confident wrong answer)
    and gradients, for input and target, equal to PyTorch's."""
    logits = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [1000.0, 0.5], [-1000.0, -2.0]])
    target = np.array([[1.0, 0.0], [1.0, 0.0], [0.3, 1.0], [0.0, 0.7]])
    upstream = np.random.default_rng(0).standard_normal(logits.shape if reduction == "none"
                                                        else ())

    def run(lib, x, t):
        weight = None if pos_weight is None else lib.tensor(np.array(pos_weight, dtype=dtype))
        loss = lib.nn.functional.binary_cross_entropy_with_logits(
            x, t, reduction=reduction, pos_weight=weight)
        loss.backward(lib.tensor(upstream.astype(dtype)))
        return loss

    theirs = [torch.tensor(a.astype(dtype), requires_grad=True) for a in (logits, target)]
    expected = run(torch, *theirs)
    with mg.backend(host_backend):
        ours = [mg.tensor(a.astype(dtype), requires_grad=True) for a in (logits, target)]
        loss = run(mg, *ours)
    tolerance = {"rtol": 1e-12, "atol": 0} if dtype == "float64" else {"rtol": 1e-6, "atol": 0}
    assert np.all(np.isfinite(loss.numpy()))
    np.testing.assert_allclose(loss.numpy(), expected.detach().numpy(), **tolerance)
    for a, b in zip(ours, theirs):
        assert np.all(np.isfinite(a.grad.numpy()))
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tolerance)
    if reduction == "none":  # x = -1000 with t = 1: pos_weight * 1000
        assert loss.numpy()[1, 0] == pytest.approx(1000.0 * (pos_weight or [1.0])[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_clamps_its_logs_at_minus_100_as_pytorch(torch, host_backend, dtype):
    """Probabilities of exactly 0 and 1: each log is clamped at -100, so a confident wrong
    answer costs 100; the input's gradient divides by max(x (1 - x), 1e-12); the target's is
    -logit(x), infinite there, as PyTorch's."""
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5], dtype=dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.25], dtype=dtype)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, t)]
    expected = torch.nn.functional.binary_cross_entropy(*theirs, reduction="none")
    expected.sum().backward()
    with mg.backend(host_backend), warnings.catch_warnings():
        warnings.simplefilter("error")  # no "divide by zero encountered in log"
        ours = [mg.tensor(a, requires_grad=True) for a in (x, t)]
        loss = F.binary_cross_entropy(*ours, reduction="none")
        loss.sum().backward()
    np.testing.assert_array_equal(loss.numpy()[:4], [100, 100, 0, 0])
    np.testing.assert_allclose(loss.numpy(), expected.detach().numpy(), rtol=1e-6)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6)
    assert np.isinf(ours[1].grad.numpy()[:4]).all()


def test_kl_div_at_a_zero_target_as_pytorch(torch):
    """A zero target adds nothing (0 log 0 = 0) and takes no gradient to the input; its own
    gradient is NaN, as PyTorch's (its xlogy's derivative at 0); no numpy warning."""
    x, t = np.array([-1.0, -0.5, -2.0]), np.array([0.0, 0.7, 0.3])
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, t)]
    expected = torch.nn.functional.kl_div(*theirs, reduction="none")
    expected.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = [mg.tensor(a, requires_grad=True) for a in (x, t)]
        loss = F.kl_div(*ours, reduction="none")
        loss.sum().backward()
    assert loss.numpy()[0] == 0 and ours[0].grad.numpy()[0] == 0
    assert np.isnan(ours[1].grad.numpy()[0])
    np.testing.assert_allclose(loss.numpy(), expected.detach().numpy(), rtol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)


# ----------------------------------------------------------------- PyTorch's calling conventions


def test_kl_div_mean_warns_as_pytorch(torch):
    x, t = np.log([[0.2, 0.8]]), np.array([[0.5, 0.5]])
    message = "reduction: 'mean' divides the total loss by both the batch size"
    with pytest.warns(UserWarning, match=message):
        expected = torch.nn.functional.kl_div(torch.tensor(x), torch.tensor(t))
    with pytest.warns(UserWarning, match=message):
        loss = nn.KLDivLoss()(mg.tensor(x), mg.tensor(t))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(mg.tensor(x), mg.tensor(t), reduction="batchmean")


def call_with_legacy(lib, op: str, size_average, reduce):
    """F.<op> on fixed inputs, reduced by the deprecated size_average/reduce pair."""
    rng = np.random.default_rng(1)
    x, probs = rng.standard_normal((3, 4)), rng.uniform(0.1, 0.9, (3, 4))
    args = {"nll_loss": (x, np.array([0, 3, 1])), "cross_entropy": (x, np.array([0, 3, 1])),
            "binary_cross_entropy": (probs, probs[::-1].copy()), "kl_div": (x, probs)}
    input, target = args.get(op, (x, probs))
    return getattr(lib.nn.functional, op)(lib.tensor(input), lib.tensor(target),
                                          size_average=size_average, reduce=reduce)


MODULE_OF = {"binary_cross_entropy": "BCELoss", "binary_cross_entropy_with_logits":
             "BCEWithLogitsLoss", "cross_entropy": "CrossEntropyLoss", "kl_div": "KLDivLoss",
             "l1_loss": "L1Loss", "mse_loss": "MSELoss", "nll_loss": "NLLLoss",
             "smooth_l1_loss": "SmoothL1Loss"}
LEGACY = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
          "kl_div", "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss"]


@pytest.mark.parametrize(("size_average", "reduce", "reduction"),
                         [(None, False, "none"), (False, None, "sum"), (True, None, "mean"),
                          (False, False, "none"), (None, True, "mean")])
@pytest.mark.parametrize("op", LEGACY)
def test_deprecated_size_average_and_reduce_act_and_warn_as_pytorchs(torch, op, size_average,
                                                                     reduce, reduction):
    message = f"please use reduction='{reduction}' instead"
    with pytest.warns(UserWarning, match=message):
        expected = call_with_legacy(torch, op, size_average, reduce)
    with pytest.warns(UserWarning, match=message):
        out = call_with_legacy(mg, op, size_average, reduce)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12)
    with pytest.warns(UserWarning, match=message):
        module = getattr(nn, MODULE_OF[op])(size_average=size_average, reduce=reduce)
    assert module.reduction == reduction


def test_class_losses_take_ignore_index_by_position_as_pytorch(torch):
    """PyTorch's order: (input, target, weight, size_average, ignore_index, reduce, reduction,
    label_smoothing)."""
    rng = np.random.default_rng(2)
    x, target, weight = rng.standard_normal((4, 3)), np.array([1, 0, 2, 1]), rng.uniform(1, 2, 3)
    for lib_name in ("nll_loss", "cross_entropy"):
        extra = (0.1,) if lib_name == "cross_entropy" else ()
        results = [getattr(lib.nn.functional, lib_name)(
            lib.tensor(x), lib.tensor(target), lib.tensor(weight), None, 1, None, "sum", *extra)
            for lib in (mg, torch)]
        np.testing.assert_allclose(results[0].item(), results[1].item(), rtol=1e-12)


def parameters(function: Callable) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.default, p.kind) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_signatures_are_pytorchs(torch, name):
    assert parameters(getattr(F, name)) == parameters(getattr(torch.nn.functional, name))


@pytest.mark.parametrize("name", MODULES)
def test_module_signatures_are_pytorchs(torch, name):
    ours, theirs = getattr(nn, name), getattr(torch.nn, name)
    assert parameters(ours.__init__) == parameters(theirs.__init__)
    assert parameters(ours.forward) == parameters(theirs.forward)


# ------------------------------------------------------------------------------------ bad input


def zeros(*shape: int, dtype: str = "float32") -> Callable[[], mg.Tensor]:
    """A tensor argument, built when the call runs (not at import)."""
    return lambda: mg.zeros(*shape, dtype=dtype)


def values(*numbers: float, requires_grad: bool = False) -> Callable[[], mg.Tensor]:
    return lambda: mg.tensor(list(numbers), dtype=mg.float32, requires_grad=requires_grad)


def bad(op: str, what: str, error: type, args: list, details: list[str], **kwargs: Any):
    """F.<op>(*args, **kwargs) must raise `error` naming the op and containing `details`."""
    return pytest.param(op, error, args, kwargs, details, id=f"{op}-{what}")


PAIRS = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
         "binary_cross_entropy_with_logits", "kl_div"]

BAD_CALLS = [
    *[bad(op, "shape-mismatch", ValueError, [zeros(4, 1), zeros(4)], ["(4,)", "(4, 1)"])
      for op in PAIRS],
    *[bad(op, "unknown-reduction", ValueError, [zeros(4), zeros(4)], ["'avg'", "'sum'"],
          reduction="avg") for op in PAIRS],
    *[bad(op, "integer-target", ValueError, [zeros(3), lambda: mg.tensor([1, 0, 1])],
          ["int64", "floating point"]) for op in PAIRS],
    *[bad(op, "not-a-tensor", TypeError, [np.zeros(3), zeros(3)], ["ndarray"]) for op in PAIRS],
    *[bad(op, "batchmean", ValueError, [zeros(4), zeros(4)], ["'batchmean'"],
          reduction="batchmean") for op in PAIRS if op != "kl_div"],
    *[bad(op, "weight-shape", ValueError, [zeros(4), zeros(4)], ["weight", "(3,)", "(4,)"],
          weight=zeros(3)) for op in ("mse_loss", "l1_loss", "huber_loss")],
    bad("smooth_l1_loss", "negative-beta", ValueError, [zeros(3), zeros(3)], ["beta", "-0.5"],
        beta=-0.5),
    bad("huber_loss", "zero-delta", ValueError, [zeros(3), zeros(3)], ["delta", "0"], delta=0.0),
    bad("huber_loss", "negative-delta", ValueError, [zeros(3), zeros(3)], ["delta", "-1"],
        delta=-1.0),
    bad("binary_cross_entropy", "input-over-1", ValueError, [values(0.5, 1.5), values(0, 1)],
        ["input", "between 0 and 1", "1.5", "binary_cross_entropy_with_logits"]),
    bad("binary_cross_entropy", "negative-input", ValueError, [values(-0.5, 1), values(0, 1)],
        ["input", "between 0 and 1", "-0.5"]),
    bad("binary_cross_entropy", "nan-input", ValueError, [values(np.nan, 1), values(0, 1)],
        ["input", "between 0 and 1", "nan"]),
    bad("binary_cross_entropy", "target-over-1", ValueError, [values(0.5, 1), values(0, 2)],
        ["target", "between 0 and 1", "2.0"]),
    bad("binary_cross_entropy", "dtype-mismatch", ValueError,
        [values(0.5, 1), zeros(2, dtype="float64")], ["float64", "float32"]),
    *[bad(op, "weight-shape", ValueError, [zeros(2, 3), zeros(2, 3)], ["weight", "(2,)",
                                                                       "(2, 3)"],
          weight=zeros(2)) for op in ("binary_cross_entropy", "binary_cross_entropy_with_logits")],
    bad("binary_cross_entropy_with_logits", "pos-weight-shape", ValueError,
        [zeros(2, 3), zeros(2, 3)], ["pos_weight", "(4, 3)", "(2, 3)"], pos_weight=zeros(4, 3)),
    *[bad(op, "differentiable-weight", ValueError, [zeros(2), zeros(2)],
          ["weight", "not differentiable", "detach"], weight=values(1, 2, requires_grad=True))
      for op in ("binary_cross_entropy", "binary_cross_entropy_with_logits")],
    bad("binary_cross_entropy_with_logits", "differentiable-pos-weight", ValueError,
        [zeros(2), zeros(2)], ["pos_weight", "not differentiable"],
        pos_weight=values(1, 2, requires_grad=True)),
]


@pytest.mark.parametrize(("op", "error", "args", "kwargs", "details"), BAD_CALLS)
def test_bad_input_is_rejected_with_a_clear_message(op, error, args, kwargs, details):
    args = [a() if callable(a) else a for a in args]
    kwargs = {k: v() if callable(v) else v for k, v in kwargs.items()}
    with raises_saying(error, details, starts=f"{op}:"):
        getattr(F, op)(*args, **kwargs)


@pytest.mark.parametrize(("build", "details"), [
    (lambda: nn.L1Loss(reduction="avg"), ["L1Loss:", "'avg'"]),
    (lambda: nn.MSELoss(reduction="batchmean"), ["MSELoss:", "'batchmean'"]),
    (lambda: nn.CrossEntropyLoss(reduction="mena"), ["CrossEntropyLoss:", "'mena'"]),
    (lambda: nn.KLDivLoss(reduction="avg"), ["KLDivLoss:", "'batchmean'", "'avg'"]),
    (lambda: nn.SmoothL1Loss(beta=-1.0), ["SmoothL1Loss:", "beta", "-1.0"]),
    (lambda: nn.HuberLoss(delta=0.0), ["HuberLoss:", "delta", "0.0"]),
], ids=["l1", "mse-batchmean", "cross-entropy", "kl-div", "smooth-l1-beta", "huber-delta"])
def test_bad_module_arguments_fail_where_the_loss_is_built(build, details):
    with raises_saying(ValueError, details):
        build()
