"""Checks the test files share: minigrad's result against PyTorch's, forward and backward."""

from __future__ import annotations

from typing import Any

import numpy as np


def assert_builds_no_graph(fn: Any, inputs: list, params: dict) -> None:
    """Under no_grad, `fn` on inputs that require grad returns a tensor outside any graph."""
    import minigrad as mg

    with mg.no_grad():
        out = fn(mg, *[mg.tensor(x, requires_grad=True) for x in inputs], **params)
    assert not out.requires_grad and out.grad_fn is None


def assert_matches_torch(out: Any, expected: Any, ours: list, theirs: list,
                         tolerance: dict[str, float]) -> None:
    """`out` (minigrad) equals `expected` (PyTorch) in shape, dtype and values, and every input
    in `ours` has the gradient of its twin in `theirs`, with its own shape and dtype."""
    assert out.shape == tuple(expected.shape)
    assert out.dtype == np.dtype(str(expected.dtype).removeprefix("torch."))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **tolerance)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.grad is not None and a.grad.shape == a.shape and a.grad.dtype == a.dtype, i
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tolerance,
                                   err_msg=f"gradient of input {i}")


def check_against_torch(torch: Any, fn: Any, libraries: tuple[Any, Any], inputs: list,
                        params: dict, backend: str, seed: int, tolerance: dict[str, float]) -> None:
    """Run `fn(library, *tensors, **params)` forward and backward (the same random upstream
    gradient) with PyTorch and with minigrad on `backend`, and compare them. `libraries`:
    (minigrad's module, PyTorch's), e.g. (F, torch.nn.functional)."""
    import minigrad as mg

    ours_lib, theirs_lib = libraries
    # plain copies for PyTorch: its CPU batch_norm backward garbles the input gradient when
    # size-1 dims make the strides ambiguous, e.g. (1, 2, 1, 2) with strides (1, 1, 2, 2)
    theirs = [torch.tensor(x.copy(order="C"), requires_grad=True) for x in inputs]
    expected = fn(theirs_lib, *theirs, **params)
    upstream = np.random.default_rng(seed).standard_normal(tuple(expected.shape))
    upstream = upstream.astype(inputs[0].dtype)
    expected.backward(torch.tensor(upstream))
    with mg.backend(backend):
        ours = [mg.tensor(x, requires_grad=True) for x in inputs]
        out = fn(ours_lib, *ours, **params)
        out.backward(upstream)
    assert_matches_torch(out, expected, ours, theirs, tolerance)
