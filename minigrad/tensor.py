"""The Tensor: an array, the gradient it receives, and the graph node that produced it.

A Tensor holds `data` (a NumPy array, or a CuPy array on the GPU), `grad` (a Tensor, filled by
`backward()` on leaves) and `_ctx`, the record of the `Function` call that produced it (None for
leaves). The operators and the math, reduction and shape methods are one-line hand-offs to an
op in `minigrad.ops`, where the math and its derivative live side by side. The rest of this file
is the tensor's own plumbing: making arrays with PyTorch's dtype rules (`host_array`),
attributes, `requires_grad`, conversions (`numpy`, `item`, `astype`), `__repr__`, and
`shape_arg`, which reads the sizes given to reshape, expand and the factories.
"""

from __future__ import annotations

import builtins
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from minigrad import backends
from minigrad.devices import Device
from minigrad.hooks import RemovableHandle

DEFAULT_DTYPE = np.dtype(np.float32)


def host_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Convert user data to a fresh array with PyTorch's dtype rules.

    Python floats and lists of them become float32 (the default dtype), ints int64, bools bool;
    an array (NumPy or CuPy) keeps its dtype unless `dtype` says otherwise.
    """
    if isinstance(data, Tensor):
        data = data.array
    if hasattr(data, "__cuda_array_interface__"):
        return data.astype(dtype or data.dtype, copy=True)
    keeps_dtype = isinstance(data, (np.ndarray, np.generic))
    try:
        array = np.array(data, dtype=None if dtype is None else np.dtype(dtype))
    except (ValueError, TypeError) as error:
        raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__}: {error}"
                        ) from None
    if dtype is None and not keeps_dtype:
        if array.dtype.kind == "f":
            array = array.astype(DEFAULT_DTYPE)
        elif array.dtype.kind in "iu":
            array = array.astype(np.int64)
    if array.dtype.kind not in "biufc":
        raise TypeError(f"tensor: unsupported dtype {array.dtype} (from {type(data).__name__}); "
                        "expected numbers or booleans")
    return array


def on_active_device(array: Any) -> Any:
    """A host array moved to where the active backend keeps tensors (the GPU for cupy)."""
    xp = backends.current().xp
    return array if xp is np or not isinstance(array, np.ndarray) else xp.asarray(array)


class Tensor:
    """An n-dimensional array that records the operations applied to it for `backward()`."""

    __slots__ = ("array", "grad", "_requires_grad", "_ctx", "_counter", "_hooks",
                 "_post_accumulate_hooks", "__weakref__")
    __array_ufunc__ = None  # `ndarray + Tensor` defers to Tensor.__radd__ instead of looping

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> None:
        self.array = on_active_device(host_array(data, dtype))
        self.grad: Tensor | None = None
        self._ctx = None
        self._counter = VersionCounter()
        self._hooks: OrderedDict | None = None  # {handle id: hook}, for register_hook
        self._post_accumulate_hooks: OrderedDict | None = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, array: Any) -> Tensor:
        """A tensor around an existing array, no conversion or copy: for the engine and ops."""
        t = object.__new__(cls)
        t.array, t.grad, t._ctx, t._requires_grad = array, None, None, False
        t._counter, t._hooks, t._post_accumulate_hooks = VersionCounter(), None, None
        return t

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def device(self) -> Device:
        """device(type='cpu') for host memory (the numpy and numba backends), 'cuda' for CuPy
        arrays (the cupy backend's GPU, index 0 or the one CuPy is on)."""
        if isinstance(self.array, np.ndarray):
            return Device("cpu")
        return Device("cuda", int(self.array.device.id))

    @property
    def is_cuda(self) -> bool:
        return not isinstance(self.array, np.ndarray)

    def dim(self) -> int:
        return self.array.ndim

    def numel(self) -> int:
        return int(self.array.size)

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        if dim is None:
            return self.shape
        return self.shape[ops.normalize_dim("size", dim, self.ndim, wrap_scalar=False)]

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self.array.dtype.kind not in "fc":
            raise RuntimeError(f"requires_grad: only floating-point tensors can require grad, "
                               f"this one is {self.array.dtype}")
        if self._ctx is not None and not value:
            raise RuntimeError("requires_grad: only leaf tensors can stop requiring grad; "
                               "use .detach() to get a tensor outside the graph")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (not by an op that recorded a graph)."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        """The graph node that produced this tensor (None for leaves)."""
        return self._ctx

    @property
    def data(self) -> Tensor:
        """The same memory as a tensor outside the graph, as PyTorch's `.data`: `w.data -= lr *
        w.grad` updates `w`. Unlike `detach()` it has a version counter of its own, so autograd
        does not notice changes made through it (prefer `detach()` or `no_grad`)."""
        return Tensor._wrap(self.array)

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")
        self.array = value.array

    @property
    def _version(self) -> int:
        """How many times this tensor's memory was changed in place (shared with its views)."""
        return self._counter.value

    def detach(self) -> Tensor:
        """The same data (shared, not copied) outside the graph; in-place changes to it count
        as changes to this tensor for autograd's saved-tensor check."""
        t = Tensor._wrap(self.array)
        t._counter = self._counter
        return t

    def backward(self, gradient: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Any = None) -> None:
        """Accumulate the gradient of this tensor into the `.grad` of every leaf it depends on
        (only of `inputs`, when given).

        `gradient` is d(loss)/d(self) and may be omitted for a single-element tensor. The graph's
        saved arrays are freed afterwards unless `retain_graph=True`.
        """
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (differentiating a gradient) "
                                      "is not supported: minigrad's backward runs on arrays")
        if isinstance(inputs, Tensor):
            inputs = [inputs]
        autograd.backward(self, gradient, retain_graph, inputs)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call `hook(grad)` when backward has this tensor's gradient; a returned tensor replaces
        the gradient (for the rest of backward, and in `.grad` of a leaf). Returns a handle
        whose `remove()` takes the hook out."""
        if not self._requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not "
                               "require grad")
        if self._hooks is None:
            self._hooks = OrderedDict()
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        if autograd.RETAIN_GRAD in self._hooks:
            self._hooks.move_to_end(autograd.RETAIN_GRAD)  # retain_grad sees the hooks' result
        return handle

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]
                                           ) -> RemovableHandle:
        """Call `hook(self)` each time backward has accumulated a gradient into this leaf's
        `.grad` (what DistributedDataParallel waits for). Returns a removable handle."""
        if not self._requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on a "
                               "tensor that does not require grad")
        if self._ctx is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: post accumulate grad hooks "
                               "cannot be registered on non-leaf tensors")
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = OrderedDict()
        handle = RemovableHandle(self._post_accumulate_hooks)
        self._post_accumulate_hooks[handle.id] = hook
        return handle

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in `.grad` on backward (leaves always have it)."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad: cannot retain the gradient of a tensor that does "
                               "not require grad")
        if self._ctx is None or self.retains_grad:
            return
        if self._hooks is None:
            self._hooks = OrderedDict()
        self._hooks[autograd.RETAIN_GRAD] = autograd.RETAIN_GRAD

    @property
    def retains_grad(self) -> bool:
        return self._hooks is not None and autograd.RETAIN_GRAD in self._hooks

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array on the host (shared with the tensor when already there)."""
        data = self.array
        return data if isinstance(data, np.ndarray) else data.get()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def item(self) -> builtins.float | int | bool:
        if self.array.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a Python number, "
                             f"this one has shape {self.shape}")
        return self.array.item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def astype(self, dtype: Any) -> Tensor:
        """A copy in another dtype; differentiable between floating-point dtypes."""
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else ops.Cast.apply(self, dtype=dtype)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """As PyTorch: `to(device)`, `to(dtype)`, `to(device, dtype)`, `to(other_tensor)`, or
        keywords device=, dtype= (non_blocking= and copy= are accepted; copy=True copies).
        A device is "cpu" / "cuda" / "cuda:0" / mg.device(...) or a backend's name ("numpy",
        "numba", "cupy"); differentiable."""
        return ops.to(self, *args, **kwargs)

    def cpu(self) -> Tensor:
        """This tensor in host memory (itself if it is there already)."""
        return ops.to(self, "cpu")

    def cuda(self, device: Any = None) -> Tensor:
        """This tensor on the GPU (the cupy backend); without a GPU, an error saying why."""
        return ops.to(self, "cuda" if device is None else device)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def long(self) -> Tensor:
        return self.astype(np.int64)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise ValueError(f"bool: the truth value of a tensor of shape {self.shape} is "
                             "ambiguous; use .any() or .all()")
        return bool(self.array)

    def __float__(self) -> builtins.float:
        return builtins.float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        """An integer tensor of one element indexes Python sequences: `classes[label]`."""
        if self.dtype.kind not in "iub" or self.array.size != 1:
            raise TypeError(f"__index__: only integer tensors of a single element can be "
                            f"converted to an index, this one is {self.dtype} {self.shape}")
        return int(self.item())

    __hash__ = object.__hash__  # tensors are hashed by identity, although == is elementwise

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), precision=4, separator=", ", prefix="tensor(",
                               floatmode="maxprec_equal", max_line_width=80)
        extras = ""
        if self.dtype not in (DEFAULT_DTYPE, np.int64, np.bool_):
            extras += f", dtype={self.dtype}"
        if self._ctx is not None:
            extras += f", grad_fn={self._ctx!r}"
        elif self._requires_grad:
            extras += ", requires_grad=True"
        return f"tensor({body}{extras})"

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.abs(self)

    add, sub, mul, div, pow, matmul = __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__
    neg = __neg__

    # comparisons: results are bool tensors outside the graph
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare("eq", self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare("ne", self, other)

    def __lt__(self, other: Any) -> Tensor:
        return ops.compare("lt", self, other)

    def __le__(self, other: Any) -> Tensor:
        return ops.compare("le", self, other)

    def __gt__(self, other: Any) -> Tensor:
        return ops.compare("gt", self, other)

    def __ge__(self, other: Any) -> Tensor:
        return ops.compare("ge", self, other)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    # in place: written into this tensor's memory (see ops/inplace.py for the graph's rules)
    def __iadd__(self, other: Any) -> Tensor:
        return ops.update_in_place("add_", self, other, np.add)

    def __isub__(self, other: Any) -> Tensor:
        return ops.update_in_place("sub_", self, other, np.subtract)

    def __imul__(self, other: Any) -> Tensor:
        return ops.update_in_place("mul_", self, other, np.multiply)

    def __itruediv__(self, other: Any) -> Tensor:
        return ops.update_in_place("div_", self, other, np.divide)

    add_, sub_, mul_, div_ = __iadd__, __isub__, __imul__, __itruediv__

    def copy_(self, source: Any) -> Tensor:
        return ops.update_in_place("copy_", self, source, None)

    def fill_(self, value: Any) -> Tensor:
        return self.copy_(value)

    def zero_(self) -> Tensor:
        return self.copy_(0)

    def __setitem__(self, index: Any, value: Any) -> None:
        ops.set_item(self, index, value)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.get_item(self, index)

    # ------------------------------------------------------------------ elementwise
    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def abs(self) -> Tensor:
        return ops.abs(self)

    def sin(self) -> Tensor:
        return ops.sin(self)

    def cos(self) -> Tensor:
        return ops.cos(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        return ops.clamp(self, min, max)

    clip = clamp

    def maximum(self, other: Any) -> Tensor:
        return ops.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return ops.minimum(self, other)

    def where(self, condition: Any, other: Any) -> Tensor:
        return ops.where(condition, self, other)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.sum(self, dim, keepdim)

    def mean(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.mean(self, dim, keepdim)

    def var(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: int | None = None) -> Tensor:
        return ops.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: int | None = None) -> Tensor:
        return ops.std(self, dim, unbiased, keepdim, correction=correction)

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        return ops.max(self, dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        return ops.min(self, dim, keepdim)

    def amax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.amax(self, dim, keepdim)

    def amin(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.amin(self, dim, keepdim)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmax(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmin(self, dim, keepdim)

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.all(self, dim, keepdim)

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.any(self, dim, keepdim)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        return ops.logsumexp(self, dim, keepdim)

    def softmax(self, dim: int) -> Tensor:
        return ops.softmax(self, dim)

    def log_softmax(self, dim: int) -> Tensor:
        return ops.log_softmax(self, dim)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return ops.transpose(self, dim0, dim1)

    def permute(self, *dims: Any) -> Tensor:
        return ops.permute(self, dims)

    @property
    def T(self) -> Tensor:
        """All dimensions reversed (the matrix transpose for 2-D tensors)."""
        return ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    def squeeze(self, dim: Any = None) -> Tensor:
        return ops.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return ops.unsqueeze(self, dim)

    def expand(self, *sizes: Any) -> Tensor:
        return ops.expand(self, sizes)

    def gather(self, dim: int, index: Any) -> Tensor:
        return ops.gather(self, dim, index)

    # ------------------------------------------------------------------ splitting, selecting,
    # sorting, copying, new tensors (ops/shape.py, ops/indexing.py, ops/reduce.py, ops/linalg.py)
    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        return ops.chunk(self, chunks, dim)

    def split(self, split_size: Any, dim: int = 0) -> tuple[Tensor, ...]:
        return ops.split(self, split_size, dim)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        return ops.unbind(self, dim)

    def repeat(self, *sizes: Any) -> Tensor:
        """Tile the tensor `sizes[d]` times along each dim (NumPy's tile); `x.repeat(2, 3)` and
        `x.repeat((2, 3))` alike."""
        return ops.repeat(self, sizes)

    def flip(self, *dims: Any) -> Tensor:
        """`x.flip(0, 1)` or `x.flip((0, 1))`: a copy reversed along those dims."""
        if not dims:
            raise TypeError("flip: missing the dims to flip, e.g. x.flip(0) or x.flip((0, 1))")
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return ops.flip(self, dims)

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        return ops.roll(self, shifts, dims)

    def index_select(self, dim: int, index: Any) -> Tensor:
        return ops.index_select(self, dim, index)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        return ops.masked_fill(self, mask, value)

    def tril(self, diagonal: int = 0) -> Tensor:
        return ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        return ops.triu(self, diagonal)

    def cumsum(self, dim: int, *, dtype: Any = None) -> Tensor:
        return ops.cumsum(self, dim, dtype=dtype)

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: bool = False,
             dtype: Any = None) -> Tensor:
        return ops.norm(self, p, dim, keepdim, dtype=dtype)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        return ops.topk(self, k, dim, largest, sorted)

    def sort(self, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Any:
        return ops.sort(self, dim, descending, stable=stable)

    def argsort(self, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Tensor:
        return ops.argsort(self, dim, descending, stable=stable)

    def bmm(self, mat2: Tensor) -> Tensor:
        return ops.bmm(self, mat2)

    def expand_as(self, other: Tensor) -> Tensor:
        return ops.expand_as(self, other)

    def view_as(self, other: Tensor) -> Tensor:
        return ops.view_as(self, other)

    def type_as(self, other: Tensor) -> Tensor:
        """This tensor in `other`'s dtype (and on its device)."""
        return self.to(other)

    def clone(self) -> Tensor:
        """A copy in new memory that stays in the graph (gradients flow back to this tensor)."""
        return ops.clone(self)

    def contiguous(self) -> Tensor:
        """This tensor if its memory is C-contiguous, else a contiguous copy in the graph."""
        return ops.contiguous(self)

    def is_contiguous(self) -> bool:
        return bool(self.array.flags.c_contiguous)

    def new_zeros(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Zeros of `size` in this tensor's dtype (unless `dtype` is given), on its device."""
        from minigrad import factories  # imports this module: imported on use

        return factories.new_zeros(self, size, dtype=dtype, requires_grad=requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        from minigrad import factories

        return factories.new_ones(self, size, dtype=dtype, requires_grad=requires_grad)

    def new_empty(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        from minigrad import factories

        return factories.new_empty(self, size, dtype=dtype, requires_grad=requires_grad)

    def new_full(self, size: Any, fill_value: Any, *, dtype: Any = None,
                 requires_grad: bool = False) -> Tensor:
        from minigrad import factories

        return factories.new_full(self, size, fill_value, dtype=dtype,
                                  requires_grad=requires_grad)

    def new_tensor(self, data: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A copy of `data` in this tensor's dtype (unless `dtype` is given), on its device."""
        from minigrad import factories

        return factories.new_tensor(self, data, dtype=dtype, requires_grad=requires_grad)


class VersionCounter:
    """Counts in-place changes to one block of memory; a tensor and its views share one, and
    every op records the count of each tensor it saves for backward, to check it then."""

    __slots__ = ("value", "shared")

    def __init__(self) -> None:
        self.value = 0
        self.shared = False  # True once a view shares it: in-place ops in the graph refuse then


def shape_arg(op: str, shape: Sequence[Any], infer: bool = True) -> tuple[int, ...]:
    """Accept both `f(2, 3)` and `f((2, 3))`, as PyTorch does; -1 (infer) only if allowed."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    try:
        sizes = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{op}: sizes must be integers, got {tuple(shape)}") from None
    if any(s < (-1 if infer else 0) for s in sizes):
        raise ValueError(f"{op}: negative size in {sizes}")
    return sizes


# Imported last: these modules build Tensors, so they need the class above to exist.
from minigrad import autograd, ops  # noqa: E402
