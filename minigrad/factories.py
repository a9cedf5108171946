"""Tensor factories: zeros, ones, full, arange, rand, ... with PyTorch's signatures.

Shapes are given as `f(2, 3)` or `f((2, 3))`. Without `dtype`, floating-point results are
float32 (the default dtype) and integer ones int64, as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.autograd import beside
from minigrad.random import generator
from minigrad.tensor import DEFAULT_DTYPE, Tensor, host_array, on_active_device, shape_arg


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (a number, nested lists, an array or a tensor)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing `array`'s memory on the CPU backends (copied to the GPU on cupy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biufc":
        raise TypeError(f"from_numpy: unsupported dtype {array.dtype}; expected numbers or "
                        "booleans")
    return Tensor._wrap(on_active_device(array))


def _make(array: np.ndarray, requires_grad: bool) -> Tensor:
    out = Tensor._wrap(on_active_device(array))
    out.requires_grad = requires_grad
    return out


def _dtype(dtype: Any) -> np.dtype:
    return DEFAULT_DTYPE if dtype is None else np.dtype(dtype)


def _float_dtype(op: str, dtype: Any) -> np.dtype:
    dtype = _dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating-point dtype, got {dtype}")
    return dtype


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    sizes = shape_arg("zeros", shape, infer=False)
    return _make(np.zeros(sizes, dtype=_dtype(dtype)), requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    sizes = shape_arg("ones", shape, infer=False)
    return _make(np.ones(sizes, dtype=_dtype(dtype)), requires_grad)


def empty(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uninitialised memory: fill it before reading it."""
    sizes = shape_arg("empty", shape, infer=False)
    return _make(np.empty(sizes, dtype=_dtype(dtype)), requires_grad)


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Filled with `fill_value`; its Python type picks the dtype when none is given."""
    sizes = shape_arg("full", (size,), infer=False)
    dtype = host_array(fill_value).dtype if dtype is None else np.dtype(dtype)
    return _make(np.full(sizes, fill_value, dtype=dtype), requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, *, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """[start, end) by step; int64 when all three are ints, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_DTYPE
    return _make(np.arange(start, end, step).astype(dtype), requires_grad)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    dtype, (steps,) = _float_dtype("linspace", dtype), shape_arg("linspace", (steps,), infer=False)
    return _make(np.linspace(start, end, steps, dtype=dtype), requires_grad)


def eye(n: int, m: int | None = None, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    n, m = shape_arg("eye", (n, n if m is None else m), infer=False)
    return _make(np.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1)."""
    sizes, dtype = shape_arg("rand", shape, infer=False), _float_dtype("rand", dtype)
    return _make(generator().random(sizes, dtype=dtype), requires_grad)


def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal."""
    sizes, dtype = shape_arg("randn", shape, infer=False), _float_dtype("randn", dtype)
    return _make(generator().standard_normal(sizes, dtype=dtype), requires_grad)


def randint(low: int, high: Any = None, size: Any = None, *, dtype: Any = None,
            requires_grad: bool = False) -> Tensor:
    """Integers in [low, high): `randint(high, size)` or `randint(low, high, size)`."""
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: missing the size argument, e.g. randint(10, (3, 4))")
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    sizes = shape_arg("randint", (size,), infer=False)
    drawn = generator().integers(low, high, sizes, dtype=np.int64)
    return _make(drawn if dtype is None else drawn.astype(dtype), requires_grad)


def randperm(n: int, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A random permutation of 0..n-1 (int64 unless `dtype` says otherwise), drawn from the
    generator `mg.manual_seed` seeds."""
    (n,) = shape_arg("randperm", (n,), infer=False)
    drawn = generator().permutation(n)
    return _make(drawn.astype(np.int64 if dtype is None else dtype), requires_grad)


# ---------------------------------------------------------------------- Tensor.new_* methods
# A new tensor with the template's dtype (unless `dtype` is given) on the template's device.


def _beside(template: Tensor, array: np.ndarray, requires_grad: bool) -> Tensor:
    out = Tensor._wrap(beside(template.array, array))
    out.requires_grad = requires_grad
    return out


def new_full(template: Tensor, size: Any, fill_value: Any, *, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    sizes = shape_arg("new_full", (size,), infer=False)
    dtype = template.dtype if dtype is None else np.dtype(dtype)
    return _beside(template, np.full(sizes, fill_value, dtype=dtype), requires_grad)


def new_zeros(template: Tensor, size: Any, *, dtype: Any = None,
              requires_grad: bool = False) -> Tensor:
    return new_full(template, shape_arg("new_zeros", size, infer=False), 0, dtype=dtype,
                    requires_grad=requires_grad)


def new_ones(template: Tensor, size: Any, *, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    return new_full(template, shape_arg("new_ones", size, infer=False), 1, dtype=dtype,
                    requires_grad=requires_grad)


def new_empty(template: Tensor, size: Any, *, dtype: Any = None,
              requires_grad: bool = False) -> Tensor:
    sizes = shape_arg("new_empty", size, infer=False)
    dtype = template.dtype if dtype is None else np.dtype(dtype)
    return _beside(template, np.empty(sizes, dtype=dtype), requires_grad)


def new_tensor(template: Tensor, data: Any, *, dtype: Any = None,
               requires_grad: bool = False) -> Tensor:
    """A copy of `data` in the template's dtype (whatever `data`'s own), as PyTorch."""
    array = host_array(data, template.dtype if dtype is None else dtype)
    if not isinstance(array, np.ndarray):  # data on the GPU
        return _beside(template, array.get(), requires_grad)
    return _beside(template, array, requires_grad)
