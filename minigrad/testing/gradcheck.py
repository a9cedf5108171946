"""Check analytic gradients against central finite differences, in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad.autograd import beside, no_grad
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences; the message says where."""


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Any], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0, *,
              fast_mode: bool = False) -> bool:
    """Compare backward() with central differences for every input that requires grad.

    `fn(*inputs)` returns a tensor (or a tuple of tensors). A random upstream gradient `u`
    (not all ones, which hides transposition bugs; drawn from `seed`) turns the outputs into
    the scalar S(x) = sum(u * fn(x)), summed over every output. backward() of S gives the
    analytic gradient of each input `x_i`; it is compared with central differences of S, in
    one of two modes:

    - element-wise (`fast_mode=False`, the default): every element of every input is moved
      by +-eps in turn, numeric = (S(x + eps) - S(x - eps)) / (2 eps), and each element is
      compared. Two evaluations of `fn` per input element: for small inputs. A failure names
      the input, the element and both values.
    - random direction (`fast_mode=True`, as in `torch.autograd.gradcheck`): for each input a
      random direction `v_i` of its shape is drawn, and the analytic <grad_i, v_i> (that is
      <u, J_i v_i>) is compared with (S(x_i + eps v_i) - S(x_i - eps v_i)) / (2 eps). Two
      evaluations per input, whatever its size: for large inputs. A failure names the input,
      the input shapes and both values (rerun element-wise to find the element).

    A pair agrees when |analytic - numeric| <= atol + rtol * |numeric|. Non-finite values are
    never skipped: a NaN or infinity on one side only fails, naming the side that is not
    finite; when both are non-finite they agree only when both are NaN or both the same
    infinity. A NaN or infinity anywhere in the outputs makes S non-finite, and with it the
    numeric gradient of every element (as it makes a whole row of PyTorch's numeric Jacobian
    non-finite); the message then says where the output is non-finite. Check gradients at
    points where the function is finite.

    An input that requires grad but gets no gradient (`.grad` still None after backward, as
    when a Function's backward returns None for it) counts as a zero gradient, so it fails
    wherever the numeric gradient is not zero, and the message says the gradient was missing.
    Every input that requires grad is compared with a copy taken before the call, after the
    forward pass, after backward and after the finite differences: an op that changes such an
    input (or an array it saved from one) in place fails, naming the input, the element, its
    old and new values. (Other inputs may change: running statistics are updated in place.)

    Returns True, or raises GradcheckError. The inputs that require grad must be float64.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences "
                             "need float64 inputs")
    before = {i: inputs[i].numpy().copy() for i in checked}

    for i in checked:
        inputs[i].grad = None
    outputs = _as_tuple(fn(*inputs))
    _check_unchanged(inputs, before, "the forward pass")
    rng = np.random.default_rng(seed)
    upstream = [_random_like(rng, o.shape) for o in outputs]
    _weighted_sum(outputs, upstream).backward()
    _check_unchanged(inputs, before, "backward")
    analytic = {i: _analytic_gradient(inputs[i], i, before[i].shape) for i in checked}

    for i in checked:
        if fast_mode:
            direction = _random_like(rng, before[i].shape)
            _check_direction(fn, inputs, i, before[i], analytic[i], direction, outputs,
                             upstream, eps, atol, rtol)
        else:
            _check_elements(fn, inputs, i, before[i], analytic[i], outputs, upstream,
                            eps, atol, rtol)
    _check_unchanged(inputs, before, "the finite differences (the function's calls under "
                                     "no_grad)")
    return True


def _as_tuple(result: Any) -> tuple[Tensor, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _random_like(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Entries of size 0.5 to 1.5 and random sign: none is zero, so every element counts."""
    return np.asarray(rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape))


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


def _element(index: tuple) -> tuple[int, ...]:
    return tuple(int(k) for k in index)


def _value(x: Any) -> str:
    """A plain repr: `1.5`, `nan`, `-inf` (not `np.float64(1.5)`)."""
    return repr(float(x))


def _check_unchanged(inputs: list, before: dict[int, np.ndarray], when: str) -> None:
    for i, original in before.items():
        now = inputs[i].numpy()
        if now.shape != original.shape:
            raise GradcheckError(f"gradcheck: input {i} changed in place during {when}: its "
                                 f"shape was {original.shape}, is now {now.shape}")
        changed = now != original
        if original.dtype.kind in "fc":
            changed &= ~(np.isnan(now) & np.isnan(original))
        if changed.any():
            index = _element(np.argwhere(changed)[0])
            raise GradcheckError(
                f"gradcheck: input {i} changed in place during {when}: element {index} was "
                f"{original[index].item()!r}, is now {now[index].item()!r}. An op must not "
                "write into its inputs, nor into the arrays it saved from them (copy first)")


def _analytic_gradient(tensor: Tensor, i: int, shape: tuple[int, ...]) -> np.ndarray | None:
    """The input's gradient on the host, or None where backward left it without one."""
    if tensor.grad is None:
        return None
    analytic = tensor.grad.numpy()
    if analytic.shape != shape:
        raise GradcheckError(f"gradcheck: input {i} has shape {shape} but its gradient "
                             f"has shape {analytic.shape}")
    return analytic.astype(np.float64)


_MISSING = ("input {i} requires grad but received no gradient (its .grad is None after "
            "backward: did a backward return None for it?), so its analytic gradient counts "
            "as zero; ")


def _check_elements(fn, inputs, i, original, analytic, outputs, upstream,
                    eps, atol, rtol) -> None:
    numeric = _numeric_gradient(fn, inputs, inputs[i], upstream, eps)
    missing = analytic is None
    if missing:
        analytic = np.zeros(original.shape)
    found = _first_mismatch(analytic, numeric, atol, rtol)
    if found is None:
        return
    index, what = found
    prefix = "gradcheck: " + (_MISSING.format(i=i) if missing else "")
    raise GradcheckError(
        f"{prefix}gradient of input {i} (shape {original.shape}) is wrong at element "
        f"{index}{what}: analytic {_value(analytic[index])}, numeric "
        f"{_value(numeric[index])} (atol={atol}, rtol={rtol})"
        + _non_finite_output(outputs, numeric[index]))


def _non_finite_output(outputs: tuple[Tensor, ...], numeric: float) -> str:
    """Where a non-finite numeric value may come from: a NaN or infinity in the outputs."""
    if np.isfinite(numeric):
        return ""
    for o, out in enumerate(outputs):
        values = out.numpy()
        if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
            index = _element(np.argwhere(~np.isfinite(values))[0])
            return (f". The function's output {o} is {_value(values[index])} at element "
                    f"{index}, which makes sum(u * outputs) non-finite, and with it the numeric "
                    "gradient of every element: check gradients where the function is finite")
    return ""


def _first_mismatch(analytic: np.ndarray, numeric: np.ndarray, atol: float,
                    rtol: float) -> tuple[tuple[int, ...], str] | None:
    """Where the two disagree: the first element with a non-finite value on one side (or
    non-finite on both but different), else the worst finite element; with a note on why."""
    analytic_finite, numeric_finite = np.isfinite(analytic), np.isfinite(numeric)
    agree = (np.isnan(analytic) & np.isnan(numeric)) | (np.isinf(analytic)
                                                        & (analytic == numeric))
    bad = ~(analytic_finite & numeric_finite) & ~agree
    if bad.any():
        index = _element(np.argwhere(bad)[0])
        if analytic_finite[index]:
            what = " (the numeric gradient is non-finite, the analytic one finite)"
        elif numeric_finite[index]:
            what = " (the analytic gradient is non-finite, the numeric one finite)"
        else:
            what = " (both are non-finite, but not the same: NaN vs inf, or +inf vs -inf)"
        return index, what
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    error = np.where(analytic_finite & numeric_finite, error, -np.inf)
    if error.size and error.max() > 0:
        return _element(np.unravel_index(np.argmax(error), error.shape)), ""
    return None


def _numeric_gradient(fn, inputs, tensor, upstream, eps) -> np.ndarray:
    """d sum(u * fn) / d x, one element at a time, perturbing the tensor's data in place."""
    data = tensor.array
    numeric = np.zeros(data.shape)
    with no_grad():
        for index in np.ndindex(*data.shape):
            saved = data[index].item()  # a copy: CuPy's data[index] is a view
            data[index] = saved + eps
            plus = _snapshot(fn(*inputs))
            data[index] = saved - eps
            minus = _snapshot(fn(*inputs))
            data[index] = saved
            numeric[index] = _central_difference(plus, minus, upstream, eps)
    return numeric


def _snapshot(result: Any) -> list[np.ndarray]:
    """The outputs as float64 host copies: an output may be a view of the input that the
    next evaluation moves (reshape, transpose, indexing)."""
    return [np.array(o.numpy(), dtype=np.float64) for o in _as_tuple(result)]


def _central_difference(plus, minus, upstream, eps) -> float:
    """(sum(u * f(x+)) - sum(u * f(x-))) / 2 eps, differencing the outputs before summing
    (subtracting two large sums would lose the digits that matter)."""
    total = 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for p, m, u in zip(plus, minus, upstream):
            total += float(np.sum(u * (p - m)))
        return total / (2 * eps)


def _check_direction(fn, inputs, i, original, analytic, direction, outputs, upstream,
                     eps, atol, rtol) -> None:
    """Fast mode: <grad_i, v> against the central difference of S along v, for input i."""
    missing = analytic is None
    with np.errstate(invalid="ignore", over="ignore"):
        projected = 0.0 if missing else float(np.sum(analytic * direction))
    tensor = inputs[i]
    with no_grad():
        try:
            tensor.array[...] = beside(tensor.array, original + eps * direction)
            plus = _snapshot(fn(*inputs))
            tensor.array[...] = beside(tensor.array, original - eps * direction)
            minus = _snapshot(fn(*inputs))
        finally:
            tensor.array[...] = beside(tensor.array, original)
    numeric = _central_difference(plus, minus, upstream, eps)
    found = _first_mismatch(np.array(projected), np.array(numeric), atol, rtol)
    if found is None:
        return
    what = found[1]
    if not missing and not np.all(np.isfinite(analytic)):
        index = _element(np.argwhere(~np.isfinite(analytic))[0])
        what += (f"; the analytic gradient of input {i} is {_value(analytic[index])} at "
                 f"element {index}")
    shapes = ", ".join(str(tuple(t.shape)) if isinstance(t, Tensor) else type(t).__name__
                       for t in inputs)
    prefix = "gradcheck (fast mode): " + (_MISSING.format(i=i) if missing else "")
    raise GradcheckError(
        f"{prefix}gradient of input {i} (shape {original.shape}; input shapes: {shapes}) is "
        f"wrong along a random direction v: <u, J v>{what}: analytic {_value(projected)}, "
        f"numeric {_value(numeric)} (atol={atol}, rtol={rtol}). Rerun with fast_mode=False "
        "to find the element" + _non_finite_output(outputs, numeric))
