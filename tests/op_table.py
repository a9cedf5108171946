"""The op tables' harness: the case type, the gradient check and the PyTorch comparison.

Test modules (tests/test_ops.py, tests/test_conv_pool.py, tests/test_activations.py, ...) each
hold a table of `OpCase`s. A case is a function `fn(lib, *tensors, **params)` written once
against the PyTorch-shaped API, so that the same code runs with minigrad and with PyTorch (`lib`
is minigrad or torch, or their `nn.functional`: each table says which), and a strategy that
draws `(inputs, params)`: `inputs` a tuple of float64 arrays, each a differentiable input of the op;
`params` everything else (dims, indices, integer targets, running statistics, flags).

A test module lists its cases and calls `op_tests` at module level, which defines its three
parametrized tests there, one call of a check each:

- `check_gradient`: gradcheck in float64 (central differences), with a drawn upstream seed;
- `check_against_pytorch`: the forward value and every input gradient against PyTorch's, in
  float64 or float32, the same random upstream gradient (drawn seed) on both sides; minigrad's
  side runs on C-contiguous inputs and again on a drawn memory layout of each input and of the
  upstream gradient (transposed, reversed, sliced, broadcast, channels-last: see
  `minigrad.testing.strategies.as_layout`), the views that upstream ops hand to an op;
- `check_no_graph`: under no_grad the op builds no graph.

`backend` (a backend's name, or None for the active one) runs minigrad's side in
`with mg.backend(backend):`. The checks serve tests of their own too (a case under a
monkeypatch, on the stand-in GPU).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.testing import gradcheck
from minigrad.testing.strategies import as_layout, layouts

DTYPES = ["float64", "float32"]
SEEDS = st.integers(0, 2**16)


@dataclass(frozen=True)
class OpCase:
    name: str
    fn: Callable[..., Any]  # fn(lib, *tensors, **params), lib being minigrad's or torch's
    inputs: st.SearchStrategy  # draws (tuple of float64 arrays, dict of params)
    gradcheck_options: Mapping[str, float] = field(default_factory=dict)  # eps, atol, rtol
    pytorch: bool = True  # False where PyTorch lacks the feature (negative slice steps)


def over(cases: Sequence[OpCase]) -> pytest.MarkDecorator:
    """Parametrise a test by `case`, one test per case, each named by its case."""
    names = [case.name for case in cases]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"op table: case names used more than once: {twice}")
    return pytest.mark.parametrize("case", cases, ids=names)


def on(backend: str | None) -> contextlib.AbstractContextManager:
    """`mg.backend(backend)`, or the active backend where `backend` is None."""
    return contextlib.nullcontext() if backend is None else mg.backend(backend)


# ---------------------------------------------------------------------------------- the checks


def check_gradient(case: OpCase, data: st.DataObject, lib: Any,
                   backend: str | None = None) -> None:
    """gradcheck `case.fn(lib, ...)` on drawn float64 inputs, with a drawn upstream seed and
    the case's gradcheck options."""
    inputs, params = data.draw(case.inputs, label="inputs, params")
    seed = data.draw(SEEDS, label="upstream seed")
    with on(backend):
        tensors = [mg.tensor(x, requires_grad=True) for x in inputs]
        assert gradcheck(lambda *ts: case.fn(lib, *ts, **params), tensors, seed=seed,
                         **case.gradcheck_options)


def check_against_pytorch(torch: Any, case: OpCase, data: st.DataObject, dtype: str,
                          libraries: tuple[Any, Any], tolerance: Mapping[str, dict],
                          backend: str | None = None) -> None:
    """`case.fn` on drawn inputs cast to `dtype` (floating-point array params too), forward and
    backward with a drawn upstream gradient, against PyTorch; minigrad's side on C-contiguous
    inputs and on drawn layouts of them. `libraries`: (minigrad's, torch's), e.g.
    (F, torch.nn.functional); `tolerance`: assert_allclose's keywords by dtype."""
    inputs, params = data.draw(case.inputs, label="inputs, params")
    inputs = [x.astype(dtype) for x in inputs]
    params = {k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
              for k, v in params.items()}
    seed = data.draw(SEEDS, label="upstream seed")
    drawn = data.draw(st.tuples(*[layouts(x.shape) for x in inputs]), label="input layouts")
    compare_with_pytorch(torch, case.fn, libraries, inputs, params, seed, tolerance[dtype],
                         backend, layouts=(*drawn, draw_upstream_layout(data)))


def draw_upstream_layout(data: st.DataObject) -> Callable[[tuple[int, ...]], str]:
    """The upstream gradient's layout, drawn once its shape (the output's) is known."""
    return lambda shape: data.draw(layouts(shape), label="upstream layout")


def check_no_graph(case: OpCase, data: st.DataObject, lib: Any) -> None:
    """Under no_grad, `case.fn` on inputs that require grad returns a tensor outside any
    graph."""
    inputs, params = data.draw(case.inputs, label="inputs, params")
    with mg.no_grad():
        out = case.fn(lib, *[mg.tensor(x, requires_grad=True) for x in inputs], **params)
    assert not out.requires_grad and out.grad_fn is None


# ------------------------------------------------------------------------------ the tests


def op_tests(cases: Sequence[OpCase], ours: Any, theirs: Callable[[Any], Any],
             tolerance: Mapping[str, dict] | Callable[[OpCase], Mapping[str, dict]], *,
             backend: str = "backend", gradient_backend: str | None = None) -> tuple[Callable, ...]:
    """The three tests every case gets, parametrized over `cases`; assign them to test_ names
    in the test module:

        (test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
         test_no_graph_under_no_grad) = op_tests(CASES, F, lambda torch: torch.nn.functional,
                                                 PYTORCH_TOLERANCE)

    `ours`: the library the cases run with (minigrad or minigrad.nn.functional); `theirs`: its
    PyTorch counterpart, given torch. `tolerance`: by dtype, or a function of the case giving
    that. The PyTorch comparison leaves out the cases marked `pytorch=False` and runs on the
    backends of the fixture `backend` names ("backend" or "host_backend"); the gradient check
    on those of `gradient_backend`, or where that is None on the active backend. A module adds
    marks or settings to a test by wrapping it, e.g. `test_x = settings(...)(test_x)`."""
    tolerance_of = tolerance if callable(tolerance) else lambda case: tolerance

    # A test on a backend fixture: usefixtures parametrizes it by the fixture's backends, and
    # getfixturevalue reads the one it runs on.
    @over(cases)
    @given(data=st.data())
    def gradient_matches_finite_differences(request, case, data):
        on_backend = request.getfixturevalue(gradient_backend) if gradient_backend else None
        check_gradient(case, data, ours, on_backend)

    if gradient_backend:
        gradient_matches_finite_differences = pytest.mark.usefixtures(gradient_backend)(
            gradient_matches_finite_differences)

    @pytest.mark.usefixtures(backend)
    @pytest.mark.parametrize("dtype", DTYPES)
    @over([case for case in cases if case.pytorch])
    @given(data=st.data())
    def forward_and_backward_match_pytorch(torch, request, case, dtype, data):
        check_against_pytorch(torch, case, data, dtype, (ours, theirs(torch)), tolerance_of(case),
                              request.getfixturevalue(backend))

    @over(cases)
    @given(data=st.data())
    def no_graph_under_no_grad(case, data):
        check_no_graph(case, data, ours)

    return (gradient_matches_finite_differences, forward_and_backward_match_pytorch,
            no_graph_under_no_grad)


# ------------------------------------------------------------------------ the PyTorch oracle


def compare_with_pytorch(torch: Any, fn: Any, libraries: tuple[Any, Any], inputs: list,
                         params: dict, seed: int, tolerance: dict[str, float],
                         backend: str | None = None, layouts: Sequence | None = None) -> None:
    """Run `fn(library, *tensors, **params)` forward and backward (the same random upstream
    gradient, from `seed`) with PyTorch and with minigrad on `backend`, and compare them.

    `layouts` (optional): one layout name per input (`as_layout`), then the upstream gradient's
    layout, a name or a function of the output's shape giving one; where any is not
    "contiguous", minigrad runs a second time on those views of the same values."""
    ours_lib, theirs_lib = libraries
    # plain copies for PyTorch: its CPU batch_norm backward garbles the input gradient when
    # size-1 dims make the strides ambiguous, e.g. (1, 2, 1, 2) with strides (1, 1, 2, 2)
    theirs = [torch.tensor(x.copy(order="C"), requires_grad=True) for x in inputs]
    expected = fn(theirs_lib, *theirs, **params)
    upstream = np.random.default_rng(seed).standard_normal(tuple(expected.shape))
    upstream = upstream.astype(inputs[0].dtype)
    expected.backward(torch.tensor(upstream))
    def check(out: Any, ours: list, context: str = "") -> None:
        try:
            assert_matches_pytorch(out, expected, ours, theirs, tolerance, context)
        except AssertionError:
            if inputs[0].dtype != np.float32:
                raise
            assert_no_less_accurate(torch, fn, theirs_lib, inputs, params, upstream,
                                    (out, *ours), (expected, *theirs), context, tolerance)

    with on(backend):
        ours = [mg.tensor(x, requires_grad=True) for x in inputs]
        out = fn(ours_lib, *ours, **params)
        out.backward(upstream)
    check(out, ours)
    if layouts is None:
        return
    *input_layouts, upstream_layout = layouts
    if callable(upstream_layout):
        upstream_layout = upstream_layout(tuple(expected.shape))
    if set(input_layouts) | {upstream_layout} == {"contiguous"}:
        return
    with on(backend):
        ours = [laid_out(x, layout) for x, layout in zip(inputs, input_layouts)]
        out = fn(ours_lib, *ours, **params)
        out.backward(as_layout(upstream, upstream_layout))
    check(out, ours, f"inputs laid out {input_layouts}, upstream gradient {upstream_layout}")


def assert_no_less_accurate(torch: Any, fn: Any, library: Any, inputs: list, params: dict,
                            upstream: np.ndarray, ours: tuple, theirs: tuple,
                            context: str, tolerance: dict[str, float] | None = None) -> None:
    """Where float32 results differ from PyTorch's by more than the tolerance, PyTorch's float32
    rounding is not the truth (its group_norm, for one, loses digits to cancellation): the
    output and each gradient must then be within the tolerance of PyTorch's or no further from
    PyTorch's float64 answer than PyTorch's own float32 result is."""
    exact = [torch.tensor(x.astype(np.float64), requires_grad=True) for x in inputs]
    out = fn(library, *exact, **params)
    out.backward(torch.tensor(upstream.astype(np.float64)))
    truths = [out.detach().numpy()] + [x.grad.numpy() for x in exact]
    names = ["output"] + [f"gradient of input {i}" for i in range(len(inputs))]
    for name, mine, their, truth in zip(names, ours, theirs, truths):
        mine = (mine if name == "output" else mine.grad).numpy()
        their = (their if name == "output" else their.grad).detach().numpy()
        assert mine.shape == truth.shape and their.shape == truth.shape, f"{name} ({context})"
        if truth.size == 0 or (tolerance is not None
                               and np.allclose(mine, their, equal_nan=True, **tolerance)):
            continue
        error, their_error = np.max(np.abs(mine - truth)), np.max(np.abs(their - truth))
        assert error <= their_error, (
            f"{name} ({context}): differs from PyTorch's float32 beyond the tolerance and is "
            f"further from the float64 answer: {error:.3g} against PyTorch's {their_error:.3g}")


def laid_out(x: np.ndarray, layout: str) -> Any:
    """A leaf tensor that requires grad, holding x's values in `layout` on the active
    backend's device: a view such as an upstream op hands on (its memory is the view's)."""
    tensor = mg.tensor(x, requires_grad=True)
    tensor.array = as_layout(tensor.array, layout)
    return tensor


def assert_matches_pytorch(out: Any, expected: Any, ours: list, theirs: list,
                           tolerance: dict[str, float], context: str = "") -> None:
    """`out` (minigrad) equals `expected` (PyTorch) in shape, dtype and values, and every input
    in `ours` has the gradient of its twin in `theirs`, with its own shape and dtype.
    `context` goes into every failure's message (e.g. the inputs' layouts)."""
    where = f" ({context})" if context else ""
    assert out.shape == tuple(expected.shape), f"output shape{where}"
    assert out.dtype == np.dtype(str(expected.dtype).removeprefix("torch.")), f"dtype{where}"
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **tolerance,
                               err_msg=f"output{where}")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.grad is not None and a.grad.shape == a.shape and a.grad.dtype == a.dtype, (
            f"gradient of input {i}{where}")
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tolerance,
                                   err_msg=f"gradient of input {i}{where}")
