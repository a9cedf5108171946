"""The layer table's harness: a `LayerCase` per layer configuration, and the three checks every
case gets (gradients against finite differences in float64, forward and backward against
PyTorch with PyTorch's weights loaded by state-dict key, no graph under no_grad).

A test module lists its cases in `LAYERS` and calls `layer_tests(LAYERS)` at module level, which
defines the three parametrized tests there; test_nn_modules checks that every layer minigrad.nn
exports has a case in some module's LAYERS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.testing import gradcheck
from minigrad.testing.strategies import arrays, distinct_arrays

PYTORCH_TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10},
                     "float32": {"rtol": 1e-5, "atol": 1e-5}}


# ------------------------------------------------------------------------------- the layer table


@dataclass(frozen=True)
class LayerCase:
    name: str
    build: Callable[[Any], Any]  # build(nn), nn being minigrad.nn or torch.nn
    shape: tuple[int, ...]  # of the input
    training: bool = True
    kinks: tuple[float, ...] = ()  # keep inputs this far off relu's kink, for finite differences
    distinct: bool = False  # tie-free inputs, for max pooling
    random: bool = False  # draws randomness per call (dropout in training): no_grad test only
    # How to run the layer on x: `call(lib, layer, x)`, lib being minigrad or torch, for layers
    # that take more than one input or return a tuple (a loss and its target, attention).
    call: Callable[[Any, Any, Any], Any] = staticmethod(lambda lib, layer, x: layer(x))

    def inputs(self) -> st.SearchStrategy[np.ndarray]:
        if self.distinct:
            return distinct_arrays(self.shape)
        return arrays(self.shape, kinks=self.kinks)


def random_state(module: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random values for every floating-point entry of a state dict (variances positive), so
    no comparison leans on the default init's ones and zeros."""
    state = {}
    for key, value in module.state_dict().items():
        array = np.asarray(value)
        if key.endswith("running_var"):
            array = rng.uniform(0.5, 2.0, array.shape)
        elif array.dtype.kind == "f":
            array = rng.standard_normal(array.shape)
        state[key] = array
    return state


def float64_layer(case: LayerCase, seed: int) -> nn.Module:
    layer = case.build(nn).double().train(case.training)
    layer.load_state_dict(random_state(layer, np.random.default_rng(seed)))
    return layer




def layer_tests(cases: list[LayerCase]) -> tuple[Callable, ...]:
    """The three tests every case gets, parametrized over `cases`; assign them to test_ names
    in the test module: `test_gradients, test_against_pytorch, test_no_graph = layer_tests(...)`."""
    ids = [case.name for case in cases]
    fixed = [case for case in cases if not case.random]
    fixed_ids = [case.name for case in fixed]

    @pytest.mark.parametrize("case", fixed, ids=fixed_ids)
    @given(data=st.data())
    def gradients_match_finite_differences(case, data):
        x = mg.tensor(data.draw(case.inputs(), label="x"), requires_grad=True)
        seed = data.draw(st.integers(0, 2**16), label="seed")
        layer = float64_layer(case, seed)
        # gradcheck perturbs the parameters it is given in place: the layer's own
        assert gradcheck(lambda x, *params: case.call(mg, layer, x),
                         [x, *layer.parameters()], seed=seed)

    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @pytest.mark.parametrize("case", fixed, ids=fixed_ids)
    @given(seed=st.integers(0, 2**16))
    def with_pytorch_weights_matches_pytorch(torch, host_backend, case, dtype, seed):
        # Normal inputs, not Hypothesis' arrays: those shrink to constant channels, where
        # normalising divides float32 rounding noise by sqrt(eps) in PyTorch as in minigrad.
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(case.shape).astype(dtype)
        theirs = case.build(torch.nn).to(getattr(torch, dtype)).train(case.training)
        theirs.load_state_dict({k: torch.tensor(v)
                                for k, v in random_state(theirs, rng).items()})
        ours = case.build(nn).to(dtype).train(case.training)
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})

        x_theirs, x_ours = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
        expected = case.call(torch, theirs, x_theirs)
        with mg.backend(host_backend):
            out = case.call(mg, ours, x_ours)
            upstream = rng.standard_normal(tuple(expected.shape)).astype(dtype)
            expected.backward(torch.tensor(upstream))
            out.backward(upstream)

        tolerance = PYTORCH_TOLERANCE[dtype]
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **tolerance)
        np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(), **tolerance)
        their_params = dict(theirs.named_parameters())
        for name, param in ours.named_parameters():
            np.testing.assert_allclose(param.grad.numpy(), their_params[name].grad.numpy(),
                                       **tolerance, err_msg=name)
        assert_same_state(ours, theirs, tolerance)  # running statistics after a training step

    @pytest.mark.parametrize("case", cases, ids=ids)
    def builds_no_graph_under_no_grad(case):
        """With grad enabled the layer records a graph (so the case exercises something); under
        no_grad the same call on an input that requires grad records none. A layer that returns
        its input itself (Identity, Dropout in eval) returns it as PyTorch does: that leaf."""
        layer = case.build(nn).train(case.training)
        x = mg.tensor(np.random.default_rng(0).standard_normal(case.shape).astype(np.float32),
                      requires_grad=True)
        recorded = case.call(mg, layer, x)
        assert recorded is x or recorded.grad_fn is not None
        with mg.no_grad():
            out = case.call(mg, layer, x)
        assert out.grad_fn is None
        assert out is x or not out.requires_grad
        assert (out is x) == (recorded is x)

    return (gradients_match_finite_differences, with_pytorch_weights_matches_pytorch,
            builds_no_graph_under_no_grad)


def assert_same_state(ours: nn.Module, theirs: Any, tolerance: dict) -> None:
    theirs = theirs.state_dict()
    assert list(ours.state_dict()) == list(theirs)
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value.numpy(), theirs[key].numpy(), **tolerance, err_msg=key)
