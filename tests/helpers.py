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
