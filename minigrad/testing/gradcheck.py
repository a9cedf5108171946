"""Check analytic gradients against central finite differences, in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad.autograd import no_grad
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences; the message says where."""


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Any], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> bool:
    """Compare backward() with central differences for every input that requires grad.

    `fn(*inputs)` returns a tensor (or a tuple of tensors). A random upstream gradient `v`
    (not all ones, which hides transposition bugs) turns the output into the scalar
    sum(v * fn(x)); its derivative by each input element is computed both ways:
    analytically by backward(), numerically as (f(x + eps) - f(x - eps)) / (2 eps).
    Returns True, or raises GradcheckError naming the input, the worst element and both values.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences "
                             "need float64 inputs")
    before = [inputs[i].numpy().copy() for i in checked]

    outputs = _as_tuple(fn(*inputs))
    rng = np.random.default_rng(seed)
    upstream = [np.asarray(rng.uniform(0.5, 1.5, o.shape) * rng.choice([-1.0, 1.0], o.shape))
                for o in outputs]
    for i in checked:
        inputs[i].grad = None
    _weighted_sum(outputs, upstream).backward()
    for i, original in zip(checked, before):
        _check_input(fn, inputs, i, original, upstream, eps, atol, rtol)
    return True


def _as_tuple(result: Any) -> tuple[Tensor, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _weighted_sum(outputs: tuple[Tensor, ...], upstream: list[np.ndarray]) -> Tensor:
    total = None
    for out, v in zip(outputs, upstream):
        if not out.requires_grad:
            continue
        term = (out * Tensor(v)).sum()
        total = term if total is None else total + term
    if total is None:
        raise GradcheckError("gradcheck: no output requires grad; the function built no graph")
    return total


def _check_input(fn, inputs, i, original, upstream, eps, atol, rtol) -> None:
    tensor = inputs[i]
    if not np.array_equal(tensor.numpy(), original):
        raise GradcheckError(f"gradcheck: the function changed input {i} in place")
    analytic = np.zeros(original.shape) if tensor.grad is None else tensor.grad.numpy()
    if analytic.shape != original.shape:
        raise GradcheckError(f"gradcheck: input {i} has shape {original.shape} but its gradient "
                             f"has shape {analytic.shape}")
    numeric = _numeric_gradient(fn, inputs, tensor, upstream, eps)
    error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if error.size and (np.nanmax(error) > 0 or not np.all(np.isfinite(analytic))):
        worst = np.unravel_index(np.argmax(np.where(np.isfinite(error), error, np.inf)),
                                 error.shape)
        raise GradcheckError(
            f"gradcheck: gradient of input {i} (shape {original.shape}) is wrong at element "
            f"{tuple(int(w) for w in worst)}: analytic {analytic[worst]!r}, numeric "
            f"{numeric[worst]!r} (atol={atol}, rtol={rtol})")


def _numeric_gradient(fn, inputs, tensor, upstream, eps) -> np.ndarray:
    """d sum(v * fn) / d x, one element at a time, perturbing the tensor's data in place."""
    data = tensor.data
    numeric = np.zeros(data.shape)
    with no_grad():
        for index in np.ndindex(*data.shape):
            saved = data[index].item()  # a copy: CuPy's data[index] is a view
            data[index] = saved + eps
            plus = _plain_sum(fn(*inputs), upstream)
            data[index] = saved - eps
            minus = _plain_sum(fn(*inputs), upstream)
            data[index] = saved
            numeric[index] = (plus - minus) / (2 * eps)
    return numeric


def _plain_sum(result: Any, upstream: list[np.ndarray]) -> float:
    return float(sum(np.sum(o.numpy() * v) for o, v in zip(_as_tuple(result), upstream)))
