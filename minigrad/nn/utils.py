"""Gradient clipping and flat parameter vectors, as `torch.nn.utils`.

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # returns the norm before
    optimizer.step()

`clip_grad_norm_` rescales all gradients together, so that their joint norm (the norm of the
vector of every gradient entry) is at most `max_norm`: the direction of the step is kept, only
its length is capped. `clip_grad_value_` clamps each entry instead. Gradients are changed in
their own memory, outside any graph, as PyTorch does.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad.autograd import DeviceError, array_module, no_grad
from minigrad.ops import cat
from minigrad.tensor import Tensor

TensorOrTensors = Tensor | Iterable[Tensor]

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "parameters_to_vector", "vector_to_parameters"]


def get_total_norm(tensors: TensorOrTensors, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The `norm_type`-norm of all entries of `tensors` taken as one vector, as a 0-d tensor.

    Computed as PyTorch does: the norm of each tensor, then the norm of those norms (the same
    number for every p-norm, inf and -inf included). `foreach` is accepted for PyTorch's
    signature; there is no separate multi-tensor path here.
    """
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return Tensor(0.0, dtype=np.float32)
    arrays = [t.array for t in tensors]
    xp = _array_module("get_total_norm", arrays)
    norms = [xp.linalg.norm(a.reshape(-1), ord=norm_type) for a in arrays]
    total = xp.asarray(xp.linalg.norm(xp.stack(norms), ord=norm_type))
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for gradients "
                           "from `parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    return Tensor._wrap(total)


def clip_grads_with_norm_(parameters: TensorOrTensors, max_norm: float, total_norm: Tensor,
                          foreach: bool | None = None) -> None:
    """Scale every `.grad` by `min(1, max_norm / (total_norm + 1e-6))`, in place.

    The 1e-6 keeps the division finite for all-zero gradients; multiplying by a coefficient
    clamped to 1 (rather than testing it) is PyTorch's way, so a norm already under `max_norm`
    is left exactly as it was.
    """
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    total = total_norm.array if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    xp = _array_module("clip_grads_with_norm_", [g.array for g in grads])
    coef = xp.minimum(float(max_norm) / (total + 1e-6), 1.0)
    for g in grads:
        with np.errstate(invalid="ignore"):  # inf * 0 for an inf norm: nan, silently as PyTorch
            g.array *= coef
        g._counter.value += 1  # changed in place: a graph that saved the gradient must not reuse it


def clip_grad_norm_(parameters: TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Rescale the gradients of `parameters` so that their joint norm is at most `max_norm`.

    Returns the total norm before clipping (a 0-d tensor, handy to log). `norm_type` may be
    any p, or `float('inf')` for the largest absolute entry. A nan or inf norm raises only with
    `error_if_nonfinite=True`; otherwise the gradients become nan, as in PyTorch.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)  # it is walked twice: a generator would be used up
        if is_generator and not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.",
                          stacklevel=2)
    with no_grad():
        grads = [p.grad for p in parameters if p.grad is not None]
        total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
        clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_value_(parameters: TensorOrTensors, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value], in place."""
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    clip_value = float(clip_value)
    for p in parameters:
        if p.grad is not None:
            xp = array_module([p.grad.array])
            xp.clip(p.grad.array, -clip_value, clip_value, out=p.grad.array)
            p.grad._counter.value += 1


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and joined into one 1-D tensor (a copy; differentiable)."""
    flat = [p.reshape(-1) for p in parameters]
    if not flat:
        raise ValueError("parameters_to_vector: got no parameters")
    _array_module("parameters_to_vector", [t.array for t in flat])
    return cat(flat)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Point each parameter's data at its slice of the 1-D `vec`, in order.

    As in PyTorch (`param.data = ...`), each parameter then shares memory with `vec` (and takes
    its dtype): nothing is recorded for autograd, and later changes to `vec` show in them.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor, but got: "
                        f"{type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-D, got shape {vec.shape}")
    parameters = list(parameters)
    needed = sum(p.numel() for p in parameters)
    if vec.numel() < needed:
        raise ValueError(f"vector_to_parameters: vec has {vec.numel()} elements, the "
                         f"parameters need {needed}")
    _array_module("vector_to_parameters", [vec.array] + [p.array for p in parameters])
    pointer = 0
    for p in parameters:
        n = p.numel()
        p.data = Tensor._wrap(vec.array[pointer:pointer + n].reshape(p.shape))
        pointer += n


def _array_module(name: str, arrays: list[Any]) -> Any:
    """numpy or cupy for `arrays`, which must all live on one device."""
    try:
        return array_module(arrays)
    except DeviceError:
        raise TypeError(f"{name}: found tensors on different devices (cpu and cuda), which is "
                        "not supported") from None
