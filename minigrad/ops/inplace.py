"""In-place updates: `t.add_(x)`, `t += x`, `t.copy_(x)`, `t[index] = x`.

They write into the tensor's own memory, so every view of it sees the change, and they count
the change on the tensor's version counter: a value saved for backward and changed afterwards
makes backward raise instead of giving a wrong gradient.
"""

from __future__ import annotations

from typing import Any

from minigrad.autograd import DeviceError, beside, is_grad_enabled, op_error
from minigrad.ops.elementwise import operand
from minigrad.ops.shape import index_parts, ints_first
from minigrad.tensor import Tensor


def update_in_place(name: str, target: Tensor, value: Any, ufunc: Any) -> Tensor:
    """`target op= value` on the data itself: allowed only outside the graph.

    Changing in place a value that backward will read would silently give wrong gradients,
    so a tensor that requires grad may be updated only under `no_grad` (optimizer steps).
    """
    if target._requires_grad and is_grad_enabled():
        raise RuntimeError(
            f"{name}: a tensor that requires grad cannot be changed in place while the graph is "
            "recorded; wrap the update in `with mg.no_grad():` or use an out-of-place op")
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


def set_item(a: Tensor, index: Any, value: Any) -> None:
    """`a[index] = value`: allowed outside the graph only (see update_in_place)."""
    if a._requires_grad and is_grad_enabled():
        raise RuntimeError("setitem: a tensor that requires grad cannot be assigned into while "
                           "the graph is recorded; do it under `with mg.no_grad():`")
    index = index_parts(index)
    split = ints_first(index)
    target = a.array if split is None else a.array[split[0]]  # ints only: a view
    try:
        target[index if split is None else split[1]] = beside(
            a.array, value.array if isinstance(value, Tensor) else value)
    except (ValueError, TypeError, IndexError) as error:
        raise op_error("setitem", error, (a, value)) from None
    a._counter.value += 1
