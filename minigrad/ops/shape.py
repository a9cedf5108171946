"""Shape and indexing ops: reshape, permute, expand, indexing, gather, cat, pad.

Their backward moves the gradient back to where each input element went: reshape back, permute
by the inverse permutation, scatter-add into the indexed places (so repeated indices add up).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from minigrad.autograd import Function, describe
from minigrad.backends import kernels_for
from minigrad.tensor import Tensor, shape_arg


def normalize_dim(op: str, dim: Any, ndim: int, extra: int = 0, wrap_scalar: bool = True) -> int:
    """A dim as PyTorch takes it -> 0..n-1, where n = ndim + extra.

    The one place where dims are checked: every op that takes a dim calls this (or
    `normalize_dims`). Valid dims are [-n, n-1], negative ones counting from the end; ops that
    add a dim (unsqueeze, stack) pass extra=1, so [-ndim-1, ndim]. A 0-d tensor takes dim 0
    and -1 as if it had one dim (and the result is 0), unless `wrap_scalar` is False (size).
    Out of range raises IndexError naming the op, the dim and the range, as PyTorch; a dim that
    is not an integer (a float, a bool) raises TypeError.
    """
    if isinstance(dim, (bool, np.bool_)) or not hasattr(type(dim), "__index__"):
        raise TypeError(f"{op}: dim must be an integer, got {dim!r} ({type(dim).__name__})")
    dim = operator.index(dim)
    size = ndim + extra
    if size == 0 and wrap_scalar:
        size = 1
    if size == 0:
        raise IndexError(f"{op}: dimension specified as {dim} but the tensor has no dimensions")
    if not -size <= dim < size:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-size}, {size - 1}], but got {dim})")
    return dim % size


def normalize_dims(op: str, dims: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """One dim or a sequence of them, for a tensor of `shape` -> a tuple of dims in
    0..ndim-1, in the order given; a dim named twice (as 1 and -1 of a 2-d tensor, say) raises
    ValueError, as PyTorch."""
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    normalized = tuple(normalize_dim(op, d, len(shape)) for d in dims)
    for i, d in enumerate(normalized):
        if d in normalized[:i]:
            raise ValueError(f"{op}: dim {d} appears multiple times in the list of dims {dims} "
                             f"(for a tensor of shape {shape})")
    return normalized


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.in_shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        ctx.inverse = tuple(np.argsort(dims))
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(ctx.inverse)


class Expand(Function):
    """A broadcast view; the engine sums the gradient back over the copies."""

    @staticmethod
    def forward(ctx, a, shape):
        return ctx.xp.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad


class GetItem(Function):
    """Indexing; backward scatters the gradient, adding where an index repeats."""

    name = "index"

    @staticmethod
    def forward(ctx, a, index):
        ctx.in_shape, ctx.index = a.shape, index
        return a[index]

    @staticmethod
    def backward(ctx, grad):
        full = ctx.xp.zeros(ctx.in_shape, dtype=grad.dtype)
        if _is_basic(ctx.index):
            full[ctx.index] = grad  # basic indices never repeat an element
        else:
            kernels_for(ctx.xp).scatter_add(full, ctx.index, grad)
        return full


def _is_basic(index) -> bool:
    """Only ints, slices, None and Ellipsis: each element is selected at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        (isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)))
        or p is None or p is Ellipsis or isinstance(p, slice)
        for p in parts
    )


class Gather(Function):
    """out[..., i, ...] = a[..., index[..., i, ...], ...] along `dim`, as torch.gather."""

    @staticmethod
    def forward(ctx, a, index, dim):
        ctx.in_shape, ctx.dim = a.shape, dim
        ctx.save_for_backward(index)
        # torch.gather allows an index smaller than `a` in the other dims: read that corner
        corner = tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(index.shape))
        return ctx.xp.take_along_axis(a[corner], index, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        xp = ctx.xp
        full = xp.zeros(ctx.in_shape, dtype=grad.dtype)
        # open-grid positions of every index element (cupy.indices has no `sparse=`)
        positions = [xp.arange(n).reshape([n if d == i else 1 for d in range(index.ndim)])
                     for i, n in enumerate(index.shape)]
        positions[ctx.dim] = index
        kernels_for(xp).scatter_add(full, tuple(positions), grad)
        return full, None


class Cat(Function):
    """Join along `dim`; the inputs marked in `skip` (1-D and empty) take no part, as in
    torch.cat, and get an empty gradient."""

    @staticmethod
    def forward(ctx, *arrays, dim, skip=()):
        ctx.dim, ctx.skip = dim, skip or (False,) * len(arrays)
        joined = [a for a, skipped in zip(arrays, ctx.skip) if not skipped]
        ctx.bounds = np.cumsum([a.shape[dim] for a in joined])[:-1]
        return ctx.xp.concatenate(joined, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        parts = iter(ctx.xp.split(grad, ctx.bounds, axis=ctx.dim))
        return tuple(ctx.xp.zeros(0, grad.dtype) if skipped else next(parts)
                     for skipped in ctx.skip)


class Pad(Function):
    """Constant padding; the gradient is the un-padded window of the output gradient."""

    @staticmethod
    def forward(ctx, a, widths, value=0):
        ctx.window = tuple(slice(before, before + n) for (before, _), n in zip(widths, a.shape))
        return ctx.xp.pad(a, widths, constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.window]


class Repeat(Function):
    """np.tile: every element is copied r times along each dim, so its gradient is the sum of
    its copies' gradients: grad seen as (r0, n0, r1, n1, ...), summed over the r's."""

    @staticmethod
    def forward(ctx, a, repeats):
        ctx.in_shape, ctx.repeats = a.shape, repeats
        return ctx.xp.tile(a, repeats)

    @staticmethod
    def backward(ctx, grad):
        copies = [n for pair in zip(ctx.repeats, ctx.in_shape) for n in pair]
        return grad.reshape(copies).sum(axis=tuple(range(0, len(copies), 2)))


class Flip(Function):
    """Reverse the order along `dims` (a copy, as torch.flip); the gradient is flipped back."""

    @staticmethod
    def forward(ctx, a, dims):
        ctx.dims = dims
        return ctx.xp.flip(a, dims).copy()

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.flip(grad, ctx.dims)


class Roll(Function):
    """Shift elements cyclically along dims (the flattened tensor when `dims` is None); the
    gradient is rolled back by the opposite shifts."""

    @staticmethod
    def forward(ctx, a, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return ctx.xp.roll(a, shifts, dims)

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.roll(grad, tuple(-s for s in ctx.shifts), ctx.dims)


class Clone(Function):
    """A copy in new memory, in the input's memory layout (PyTorch's preserve_format); the
    gradient passes through unchanged."""

    @staticmethod
    def forward(ctx, a):
        return a.copy(order="K")

    @staticmethod
    def backward(ctx, grad):
        return grad


class Contiguous(Function):
    """A C-contiguous copy (for an input that is not); the gradient passes through."""

    @staticmethod
    def forward(ctx, a):
        return ctx.xp.array(a, order="C", copy=True)

    @staticmethod
    def backward(ctx, grad):
        return grad


# ------------------------------------------------------------------------------ public functions


def reshape(a: Tensor, shape: Any) -> Tensor:
    return Reshape.apply(a, shape=shape_arg("reshape", shape))


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    start = normalize_dim("flatten", start_dim, a.ndim)
    end = normalize_dim("flatten", end_dim, a.ndim)
    if a.ndim == 0:
        return reshape(a, (1,))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(a, a.shape[:start] + (-1,) + a.shape[end + 1:])


def permute(a: Tensor, dims: Any) -> Tensor:
    """Reorder the dims: `dims` (an int each, negative ones counting from the end) names the
    input dim that goes to each place; `permute(a, (1, 0))` and `a.permute(1, 0)` alike."""
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != a.ndim:
        raise ValueError(f"permute: dims {dims} name {len(dims)} dimensions, but the tensor "
                         f"of shape {a.shape} has {a.ndim}")
    return Permute.apply(a, dims=normalize_dims("permute", dims, a.shape))


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(a.ndim))
    i, j = normalize_dim("transpose", dim0, a.ndim), normalize_dim("transpose", dim1, a.ndim)
    if a.ndim:  # a 0-d tensor takes dims 0 and -1, and stays as it is
        dims[i], dims[j] = dims[j], dims[i]
    return Permute.apply(a, dims=tuple(dims))


def squeeze(a: Tensor, dim: Any = None) -> Tensor:
    """Drop size-1 dims (all, or those named); naming a dim whose size is not 1 is a no-op."""
    dims = range(a.ndim) if dim is None else normalize_dims("squeeze", dim, a.shape)
    drop = {d for d in dims if a.ndim and a.shape[d] == 1}  # a 0-d tensor's dim 0: nothing
    return reshape(a, tuple(n for d, n in enumerate(a.shape) if d not in drop))


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    dim = normalize_dim("unsqueeze", dim, a.ndim, extra=1)
    return reshape(a, a.shape[:dim] + (1,) + a.shape[dim:])


def expand(a: Tensor, sizes: Any) -> Tensor:
    """Broadcast to `sizes` without copying; -1 keeps a dim, new dims may be added in front."""
    sizes = shape_arg("expand", sizes)
    lead = len(sizes) - a.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand a tensor of shape {a.shape} to fewer "
                         f"dimensions {sizes}")
    target = tuple(a.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    fits = all(old in (new, 1) for old, new in zip(a.shape, target[lead:]))
    if not fits or any(n < 0 for n in target):
        raise ValueError(f"expand: cannot expand a tensor of shape {a.shape} to {sizes}")
    return Expand.apply(a, shape=target)


def index_parts(index: Any) -> Any:
    """Tensors and lists inside an index become arrays, so NumPy's indexing rules apply."""
    if isinstance(index, tuple):
        return tuple(index_parts(i) for i in index)
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, list):
        return np.asarray([i.item() if isinstance(i, Tensor) else i for i in index])
    return index


def ints_first(index: Any) -> tuple[tuple, tuple] | None:
    """PyTorch applies integer indices first (a select each) and the advanced ones (integer
    arrays, masks) to what is left; NumPy counts the ints as advanced too when arrays are
    present, which can move the result's dims: x[0, :, [1, 2]] is (3, 2) in PyTorch, (2, 3) in
    NumPy for x of shape (2, 3, 4). (ints, rest): the index split in two steps that give
    PyTorch's result, or None where NumPy's one step already does."""
    parts = index if isinstance(index, tuple) else (index,)
    ints = [isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_))
            for p in parts]
    if not any(ints) or not any(hasattr(p, "dtype") and p.ndim > 0 for p in parts):
        return None
    first, rest = [], []
    for p, is_int in zip(parts, ints):
        if is_int:
            first.append(p)
        elif p is Ellipsis:
            first.append(p)
            rest.append(p)
        else:  # a mask of k dims stands for k dims; None stands for none
            first += [slice(None)] * (0 if p is None else p.ndim if hasattr(p, "dtype")
                                      and p.dtype == bool else 1)
            rest.append(p)
    return tuple(first), tuple(rest)


def get_item(a: Tensor, index: Any) -> Tensor:
    index = index_parts(index)
    split = ints_first(index)
    if split is None:
        return GetItem.apply(a, index=index)
    return GetItem.apply(GetItem.apply(a, index=split[0]), index=split[1])


def gather(a: Tensor, dim: int, index: Any) -> Tensor:
    index_array = index.array if isinstance(index, Tensor) else np.asarray(index)
    if index_array.dtype.kind not in "iu" or index_array.ndim != a.ndim:
        raise ValueError(f"gather: index must be an integer tensor with as many dims as the "
                         f"input {a.shape}, got {describe(index_array)}")
    dim = normalize_dim("gather", dim, a.ndim)
    if a.ndim == 0:  # a scalar is gathered from as the 1-element vector it holds
        return reshape(Gather.apply(reshape(a, (1,)), index_array.reshape(1), dim=0), ())
    return Gather.apply(a, index_array, dim=dim)


def cat(tensors: Any, dim: int = 0) -> Tensor:
    """Join tensors along an existing dim; all other dims must match."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(f"cat: a zero-dimensional tensor (at position {i}) cannot be "
                             f"concatenated; stack them instead")
    # torch.cat skips 1-D empty tensors beside tensors of other shapes (documented legacy)
    skip = tuple(t.shape == (0,) for t in tensors)
    if all(skip):
        skip = (False,) * len(tensors)
    joined = [t for t, skipped in zip(tensors, skip) if not skipped]
    first = joined[0]
    dim = normalize_dim("cat", dim, first.ndim)
    for t in joined[1:]:
        if t.ndim != first.ndim or any(
            n != m for d, (n, m) in enumerate(zip(t.shape, first.shape)) if d != dim
        ):
            raise ValueError(f"cat: tensors must have the same shape except in dim {dim}; got "
                             f"{first.shape} and {t.shape}")
    return Cat.apply(*tensors, dim=dim, skip=skip)


def stack(tensors: Any, dim: int = 0) -> Tensor:
    """Join equal-shaped tensors along a new dim."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all tensors must have the same shape; got "
                             f"{tensors[0].shape} at entry 0 and {t.shape} at entry {i}")
    dim = normalize_dim("stack", dim, tensors[0].ndim, extra=1)
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def pad(a: Tensor, pad: Any, mode: str = "constant", value: float = 0.0) -> Tensor:
    """PyTorch's F.pad: `pad` lists (before, after) pairs starting from the last dim; a
    negative width crops that side instead, as PyTorch, down to an empty dim at most. Modes
    'reflect', 'replicate' and 'circular' fill the border from the input itself."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, PAD_MODES))}, got "
                         f"{mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"pad: expected (before, after) pairs, an even number of widths, got "
                         f"{len(pad)}: {pad}")
    if len(pad) // 2 > a.ndim:
        raise ValueError(f"pad: {len(pad) // 2} pairs {pad} for an input of {a.ndim} dims "
                         f"{a.shape}: at most one pair per dim")
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]
    widths = [(0, 0)] * (a.ndim - len(pairs)) + pairs[::-1]
    if mode != "constant":
        return _pad_from_input(a, pad, widths, mode, value)
    window = []
    for dim, ((before, after), n) in enumerate(zip(widths, a.shape)):
        kept = n + min(before, 0) + min(after, 0)
        if kept < 0:
            raise ValueError(f"pad: padding {pad} crops dim {dim} of size {n} of the input "
                             f"{a.shape} to size {kept}")
        window.append(slice(-min(before, 0), -min(before, 0) + kept))
    if any(p < 0 for p in pad):
        a = get_item(a, tuple(window))
    widths = tuple((max(before, 0), max(after, 0)) for before, after in widths)
    return Pad.apply(a, widths=widths, value=value)


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_from_input(a: Tensor, pad: tuple, widths: list, mode: str, value: float) -> Tensor:
    """Reflect, replicate or wrap around: each padded dim is an index_select of the input
    with an index map (so its gradient adds up at the positions each border copied)."""
    from minigrad.ops.indexing import index_select  # indexing imports this module

    if value:
        raise ValueError(f"pad: mode {mode!r} takes no value, got value={value}")
    original = a
    padded = len(pad) // 2
    if not 1 <= padded <= 3 or a.ndim not in (padded + 1, padded + 2):
        raise ValueError(f"pad: mode {mode!r} pads the last k = 1, 2 or 3 dims of an input of "
                         f"k + 1 or k + 2 dims (as PyTorch), got padding {pad} for input "
                         f"{a.shape}")
    for dim, ((before, after), n) in enumerate(zip(widths, a.shape)):
        if not before and not after:
            continue
        limit = n - 1 if mode == "reflect" else n if mode == "circular" else None
        if before < 0 or after < 0 or (limit is not None and max(before, after) > limit):
            raise ValueError(f"pad: mode {mode!r} needs widths from 0 to {limit} for dim {dim} "
                             f"of size {n} (input {a.shape}), got padding {pad}")
        if n == 0:
            raise ValueError(f"pad: mode {mode!r} cannot pad the empty dim {dim} of {a.shape}")
        positions = np.arange(-before, n + after)
        if mode == "reflect":
            positions = np.abs(positions)
            positions = np.where(positions > n - 1, 2 * (n - 1) - positions, positions)
        elif mode == "replicate":
            positions = positions.clip(0, n - 1)
        else:
            positions = positions % n
        a = index_select(a, dim, positions)
    return a if a is not original else clone(a)  # all widths 0: still a new tensor


# --------------------------------------------------------------- splitting, copying, repeating


def _integer(op: str, name: str, value: Any) -> int:
    """An integer argument (chunks, a split size, a repeat): bools and floats are refused."""
    if isinstance(value, (bool, np.bool_)) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{op}: {name} must be an integer, got {value!r} "
                        f"({type(value).__name__})")
    return operator.index(value)


def _pieces(a: Tensor, sizes: list[int], dim: int) -> tuple[Tensor, ...]:
    """`a` cut along `dim` into consecutive pieces of the given sizes: views, as PyTorch's."""
    bounds = np.cumsum([0, *sizes]).tolist()
    lead = (slice(None),) * dim
    return tuple(GetItem.apply(a, index=lead + (slice(start, stop),))
                 for start, stop in zip(bounds[:-1], bounds[1:]))


def _runs(size: int, step: int) -> list[int]:
    """`size` cut into runs of `step`, the last one shorter: 7, 3 -> [3, 3, 1]."""
    return [min(step, size - start) for start in range(0, size, step)]


def _needs_a_dim(op: str, a: Tensor) -> None:
    if a.ndim == 0:
        raise ValueError(f"{op}: expects at least a 1-dimensional tensor, got a 0-d tensor")


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """`chunks` pieces of ceil(size / chunks) along `dim`, the last one smaller (and fewer
    pieces than asked where the size does not allow more), as torch.chunk."""
    chunks = _integer("chunk", "chunks", chunks)
    _needs_a_dim("chunk", input)
    if chunks <= 0:
        raise ValueError(f"chunk: expects chunks to be greater than 0, got {chunks} (tensor of "
                         f"shape {input.shape})")
    dim = normalize_dim("chunk", dim, input.ndim)
    size = input.shape[dim]
    step = -(-size // chunks)  # ceil
    if step == 0:  # an empty dim: `chunks` empty pieces
        return _pieces(input, [0] * chunks, dim)
    return _pieces(input, _runs(size, step), dim)


def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of `split_size_or_sections` along `dim` (the last smaller), or of each size in
    the list given (which must add up to the dim's size), as torch.split."""
    _needs_a_dim("split", tensor)
    dim = normalize_dim("split", dim, tensor.ndim)
    size = tensor.shape[dim]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [_integer("split", "split sizes", n) for n in split_size_or_sections]
        if any(n < 0 for n in sizes):
            raise ValueError(f"split: split sizes must not be negative, got {sizes}")
        if sum(sizes) != size:
            raise ValueError(f"split: split sizes {sizes} add up to {sum(sizes)}, but "
                             f"dim {dim} of the tensor of shape {tensor.shape} has size {size}")
        return _pieces(tensor, sizes, dim)
    step = _integer("split", "split_size", split_size_or_sections)
    if step < 0:
        raise ValueError(f"split: split_size must not be negative, got {step}")
    if step == 0 and size:
        raise ValueError(f"split: split_size can be 0 only if the dim is empty, but dim {dim} "
                         f"of the tensor of shape {tensor.shape} has size {size}")
    if size == 0:  # one empty piece, whatever the split size
        return _pieces(tensor, [0], dim)
    return _pieces(tensor, _runs(size, step), dim)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along `dim`, that dim removed: `a, b = x.unbind(0)`."""
    dim = normalize_dim("unbind", dim, input.ndim, wrap_scalar=False)
    lead = (slice(None),) * dim
    return tuple(GetItem.apply(input, index=lead + (i,)) for i in range(input.shape[dim]))


def repeat(a: Tensor, sizes: Any) -> Tensor:
    """Tensor.repeat: tile the tensor `sizes[d]` times along each dim; more sizes than dims
    add leading dims (torch.Tensor.repeat, which is NumPy's tile, not np.repeat)."""
    if not sizes:
        raise TypeError("repeat: missing the repeats, one per dim, e.g. x.repeat(2, 3)")
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    repeats = tuple(_integer("repeat", "repeats", n) for n in sizes)
    if len(repeats) < a.ndim:
        raise ValueError(f"repeat: {len(repeats)} repeats {repeats} for a tensor of shape "
                         f"{a.shape}: give at least one per dim ({a.ndim})")
    if any(n < 0 for n in repeats):
        raise ValueError(f"repeat: repeats must not be negative, got {repeats}")
    lead = len(repeats) - a.ndim
    return Repeat.apply(reshape(a, (1,) * lead + a.shape), repeats=repeats)


def flip(input: Tensor, dims: Any) -> Tensor:
    """Reverse the order of elements along each of `dims` (a copy, as torch.flip)."""
    dims = normalize_dims("flip", dims, input.shape)
    return Flip.apply(input, dims=dims if input.ndim else ())


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Shift elements cyclically by `shifts` along `dims` (each shift with its dim); without
    dims the tensor is rolled as if flattened, then restored to its shape."""
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    shifts = tuple(_integer("roll", "shifts", s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: without dims, shifts must be one number, got {shifts}")
        return Roll.apply(input, shifts=shifts, dims=None)
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    dims = tuple(normalize_dim("roll", d, input.ndim, wrap_scalar=False) for d in dims)
    return Roll.apply(input, shifts=shifts, dims=dims)


def expand_as(a: Tensor, other: Tensor) -> Tensor:
    return expand(a, other.shape)


def view_as(a: Tensor, other: Tensor) -> Tensor:
    return reshape(a, other.shape)


def clone(input: Tensor) -> Tensor:
    """A copy in new memory that stays in the graph: gradients flow back to `input`."""
    return Clone.apply(input)


def contiguous(a: Tensor) -> Tensor:
    """`a` itself when its memory is C-contiguous, else a C-contiguous copy in the graph."""
    return a if a.array.flags.c_contiguous else Contiguous.apply(a)
