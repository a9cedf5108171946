"""In-place updates: `t.add_(x)`, `t += x`, `t.copy_(x)`, `t[index] = x`.

They write into the tensor's own memory, so every view of it sees the change, and they count
the change on the tensor's version counter: a value saved for backward and changed afterwards
makes backward raise instead of giving a wrong gradient.

Outside the graph (under no_grad, or when nothing involved requires grad) an update is a plain
write. Inside it, the new value is computed by the out-of-place op from a copy of the old one,
written into the tensor's memory, and the tensor takes that op's place in the graph (PyTorch's
"rebase"): `h += residual` differentiates like `h = h + residual`. A leaf that requires grad
cannot be changed in place in the graph (backward accumulates into it), and neither can a
tensor that shares its memory with a view: the other tensor's graph would miss the change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad.autograd import DeviceError, Function, beside, is_grad_enabled, op_error
from minigrad.ops.elementwise import add, div, mul, operand, sub, where
from minigrad.ops.shape import index_parts, ints_first
from minigrad.tensor import Tensor

_OUT_OF_PLACE: dict[str, Callable[[Tensor, Any], Tensor]] = {
    "add_": add, "sub_": sub, "mul_": mul, "div_": div,
    # everything replaced: the old value gets a zero gradient
    "copy_": lambda old, value: where(_everywhere(old), value, old),
}


def _everywhere(t: Tensor) -> np.ndarray:
    return np.ones(t.shape, dtype=bool)


def update_in_place(name: str, target: Tensor, value: Any, ufunc: Any = None) -> Tensor:
    """`target op= value` in target's memory (`ufunc` None: copy value in)."""
    if not _records(target, value):
        try:
            other = operand(target, value)
            if ufunc is None:
                target.array[...] = other
            else:
                ufunc(target.array, other, out=target.array)
        except (ValueError, TypeError, DeviceError) as error:
            raise op_error(name, error, (target, value)) from None
        target._counter.value += 1
        return target
    return _rebase(name, target, _OUT_OF_PLACE[name](_copy_of(name, target), value))


def set_item(a: Tensor, index: Any, value: Any) -> None:
    """`a[index] = value`, with PyTorch's indexing rules (see ops.shape.get_item)."""
    index = index_parts(index)
    if _records(a, value):
        _rebase("setitem", a, IndexPut.apply(_copy_of("setitem", a), value, index=index))
        return
    split = ints_first(index)
    target = a.array if split is None else a.array[split[0]]  # ints only: a view
    try:
        target[index if split is None else split[1]] = beside(
            a.array, value.array if isinstance(value, Tensor) else value)
    except (ValueError, TypeError, IndexError) as error:
        raise op_error("setitem", error, (a, value)) from None
    a._counter.value += 1


class IndexPut(Function):
    """`a` with `a[index] = value`: the gradient of the overwritten places goes to `value`
    (summed over repeats and broadcasting by the engine), the rest to `a`."""

    name = "setitem"

    @staticmethod
    def forward(ctx, a, value, index):
        split = ints_first(index)
        ctx.steps = (index,) if split is None else split
        out = a.copy()
        _take(out, ctx.steps[:-1])[ctx.steps[-1]] = value
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_value = _take(grad, ctx.steps).copy() if ctx.needs_input_grad[1] else None
        grad_a = grad.copy()
        _take(grad_a, ctx.steps[:-1])[ctx.steps[-1]] = 0
        return grad_a, grad_value


def _take(array: Any, steps: tuple) -> Any:
    """array[steps[0]][steps[1]]...: PyTorch's index applied in NumPy's steps."""
    for step in steps:
        array = array[step]
    return array


def _records(target: Tensor, value: Any) -> bool:
    """Whether the update must be recorded in the graph."""
    return is_grad_enabled() and (target._requires_grad
                                  or (isinstance(value, Tensor) and value._requires_grad))


def _copy_of(name: str, target: Tensor) -> Tensor:
    """The old value as a node of the graph, copied (the write will overwrite its memory)."""
    if target._requires_grad and target._ctx is None:
        raise RuntimeError(f"{name}: a leaf tensor that requires grad cannot be changed in place "
                           "while the graph is recorded (backward accumulates into it); do it "
                           "under `with mg.no_grad():`, or use an out-of-place op")
    if target._counter.shared:
        raise RuntimeError(f"{name}: tensor {target.shape} shares its memory with a view (from "
                           "reshape, transpose, indexing...), and changing it in place while the "
                           "graph is recorded would leave the other's gradient wrong; use an "
                           "out-of-place op (x = x + y) instead")
    old = Tensor._wrap(target.array)
    old._ctx, old._requires_grad, old._counter = target._ctx, target._requires_grad, target._counter
    return old.clone()


def _rebase(name: str, target: Tensor, result: Tensor) -> Tensor:
    """Write `result` into target's memory; target becomes the node that produced it."""
    if result.shape != target.shape:
        raise RuntimeError(f"{name}: the result has shape {result.shape}, which does not fit "
                           f"the tensor {target.shape} it would be written into")
    if not np.can_cast(result.dtype, target.dtype, "same_kind"):
        raise RuntimeError(f"{name}: the result of dtype {result.dtype} cannot be cast to the "
                           f"tensor's dtype {target.dtype}")
    target.array[...] = result.array
    target._counter.value += 1
    target._ctx, target._requires_grad = result._ctx, result._requires_grad
    return target
