"""`summary(model, input_shape)`: a table of the model's layers, as torchinfo prints for PyTorch,
with what the CNN article compares its landmark models by: for every layer the output shape, the
parameters, the mult-adds, the memory of its output and its receptive field; for the model the
totals and its depth.

The numbers come from one forward pass on zeros with the graph recorded: forward hooks name the
layers, the graph gives what each op computes. So everything a layer does counts, also where its
forward calls functions rather than modules, and the receptive field is followed through
branches, concatenations, residual sums, reshapes and attention exactly.

- Mult-adds (multiply-accumulates) count what torchvision's published GFLOPS count: a conv's
  output elements x in_channels/groups x kH x kW, a linear layer's output elements x
  in_features, a matmul's output elements x the inner size, attention's q k^T and (weights) v
  products; biases, normalisation, activations, pooling and additions count nothing. PyTorch's
  `torch.utils.flop_counter.FlopCounterMode` reports twice these numbers (a multiply and an add).
- Memory: the bytes of each layer's output; the total is their sum (what a training forward
  keeps for backward, roughly), beside the input's and the parameters' bytes.
- Receptive field: for each element of each tensor, the box of input positions it depends on.
  A layer's row shows the box of its centre element (size in input pixels per spatial dim) and
  the jump: how far the box moves for one step along the output's spatial axis. Padding counts
  as positions outside the image (the usual "theoretical" field, which may be larger than the
  image); BatchNorm counts per element, as in eval (its batch statistics in training mix every
  position, which no receptive field counts).
- Depth: the number of weight layers (conv, linear) on the longest path through the graph:
  LeNet-5 5, AlexNet 8, VGG16 16, GoogLeNet 22, ResNet-50 50.

Per-sample numbers: shapes drop the batch dim, and mult-adds and memory are divided by the batch.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad import factories
from minigrad.autograd import Context, enable_grad
from minigrad.nn.attention import Attention, AttentionWeights
from minigrad.nn.embedding import Lookup
from minigrad.nn.module import Module, Parameter, _HookHub, _HookSlot
from minigrad.ops import device as device_ops
from minigrad.ops import elementwise, indexing, inplace, linalg, normalization, pooling, reduce
from minigrad.ops import nn as nn_ops
from minigrad.ops import shape as shape_ops
from minigrad.random import generator
from minigrad.tensor import Tensor

# ----------------------------------------------------------------------------- the public API


@dataclasses.dataclass(frozen=True)
class Layer:
    """One row: one call of a leaf layer (a module that called no other module).

    Per sample: `output_shape` (without the batch dim; of the first tensor the layer returned),
    `mult_adds`, `activation_bytes` (of every tensor it returned). `params`: its own parameters.
    `receptive_field`: per spatial dim, the size in input pixels of its centre element's field
    (None: no spatial input, or the element depends on no input; see `field`); `jump`: per
    spatial dim, the input pixels between the fields of neighbouring elements (None where the
    output has no axis of its own for that dim, as tokens that flatten H and W). `field`: the
    centre element's box, per spatial dim (first, last) input index, which may reach outside
    the image where padding counts. `depth`: weight layers on the longest path to its output.
    `known` is False where an op the receptive field has no rule for came before (shown "?").
    """

    name: str
    type: str
    output_shape: tuple[int, ...] | None
    params: int
    mult_adds: int
    activation_bytes: int
    receptive_field: tuple[int, ...] | None
    jump: tuple[int | float | None, ...] | None
    field: tuple[tuple[int, int], ...] | None
    depth: int
    known: bool = True


class Summary(str):
    """The table `summary` prints, as a string (so `print` and `in` work as ever), with the
    numbers behind it as attributes: `layers` (a list of `Layer`), `input_size` (with the batch
    dim), `dtype`, `total_params`, `trainable_params`, `param_bytes`, and per sample
    `input_bytes`, `mult_adds`, `activation_bytes` (the layers' outputs together); `depth`."""

    layers: list[Layer]
    input_size: tuple[int, ...]
    dtype: np.dtype
    total_params: int
    trainable_params: int
    param_bytes: int
    input_bytes: int
    mult_adds: int
    activation_bytes: int
    depth: int

    def __new__(cls, text: str, **numbers: Any) -> Summary:
        self = super().__new__(cls, text)
        self.__dict__.update(numbers)
        return self


def summary(model: Module, input_shape: tuple[int, ...] | None = None, batch_size: int = 1, *,
            input_size: tuple[int, ...] | None = None, dtype: Any = None,
            verbose: int = 1) -> Summary:
    """Run `model` once on zeros and return (and print, unless verbose=0) one row per call of
    a leaf layer: name, type, output shape per sample, parameters, mult-adds, output memory,
    receptive field and jump; then the totals and the depth (see the module's docstring).

    The input: `input_shape` is one sample's shape, without the batch dim (`(1, 28, 28)`), and
    `batch_size` the batch; or, as torchinfo's `summary(model, input_size=(1, 3, 224, 224))`,
    `input_size=` the whole shape, batch dim first. `dtype`: the input's (default: the model's
    floating-point parameters', else float32). Receptive fields need (N, C, *spatial) inputs.

    The model is left as it was found: its mode stays (train or eval), the buffers a forward
    pass in training mode updates (BatchNorm's running statistics) are put back, and so is
    the random generator's state (dropout draws). The hooks that find the layers (a forward
    pre-hook and hook on every module) are removed again, also when the forward pass raises.
    A leaf called twice (a shared ReLU) gets two rows; a layer called as `layer.forward(x)`
    rather than `layer(x)` runs no hooks: its work counts in its caller's row. Work done
    outside every leaf (a residual sum in a block's forward) counts in the totals only.
    """
    shape = _input_size(input_shape, batch_size, input_size)
    x = _zeros_like_input(model, shape, dtype)
    recorder = _Recorder(model)
    # By key, not by object: a layer may rebind a buffer (`self.count += 1`) rather than
    # update it in place.
    buffers = {name: buffer.array.copy() for name, buffer in model.named_buffers()}
    random_state = generator().bit_generator.state
    try:
        recorder.attach()
        with enable_grad():
            output = model(x)
    except Exception as error:
        if input_shape is not None:
            error.add_note(f"summary: the model got zeros of shape {shape}: input_shape="
                           f"{tuple(input_shape)} is one sample's shape, batch_size in front; "
                           f"for a shape with the batch dim first (torchinfo's convention), "
                           f"pass input_size={tuple(input_shape)}")
        raise
    finally:
        recorder.detach()
        model.load_state_dict(buffers, strict=False)
        generator().bit_generator.state = random_state
    graph = _Graph(x, [*_tensors(output), *(t for row in recorder.rows for t in row.outputs)],
                   recorder.owner)
    result = _result(model, x, recorder, graph)
    if verbose:
        print(result)
    return result


def depth(model: Module, input_shape: tuple[int, ...] | None = None, batch_size: int = 1, *,
          input_size: tuple[int, ...] | None = None) -> int:
    """The number of weight layers (conv, linear) on the longest path through `model`'s graph
    for that input (see `summary` for the input's shape), without printing anything."""
    return summary(model, input_shape, batch_size, input_size=input_size, verbose=0).depth


# ------------------------------------------------------------------------------ the forward pass


def _input_size(input_shape: Any, batch_size: int, input_size: Any) -> tuple[int, ...]:
    if input_size is not None:
        if input_shape is not None or batch_size != 1:
            raise TypeError("summary: give input_shape (one sample's shape) with batch_size, "
                            "or input_size (the whole shape, batch dim first, as torchinfo's), "
                            f"not both; got input_shape={input_shape}, batch_size={batch_size}, "
                            f"input_size={input_size}")
        shape = tuple(input_size)
    elif input_shape is None:
        raise TypeError("summary: the input's shape is missing: summary(model, (1, 28, 28)) "
                        "for one sample's shape, or summary(model, input_size=(1, 1, 28, 28))")
    else:
        shape = (batch_size, *tuple(input_shape))
    if not shape or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
        raise ValueError(f"summary: the input's shape must be positive ints with the batch dim "
                         f"first, got {shape} (input_shape={input_shape}, batch_size="
                         f"{batch_size}, input_size={input_size})")
    return tuple(int(n) for n in shape)


def _zeros_like_input(model: Module, shape: tuple[int, ...], dtype: Any) -> Tensor:
    """Zeros of `shape` on the model's device, in its floating-point dtype, requiring grad so
    that the forward pass records the graph."""
    floats = [p for p in model.parameters() if p.dtype.kind == "f"]
    if dtype is None and floats:
        dtype = floats[0].dtype
    x = factories.zeros(*shape, dtype=dtype)
    if floats and floats[0].device != x.device:
        x = x.to(floats[0].device)
    # integer inputs (token ids) cannot require grad: the graph then starts at the parameters
    return x.requires_grad_() if x.dtype.kind == "f" else x


def _tensors(value: Any) -> list[Tensor]:
    """The tensors in a layer's output: a tensor, or tuples, lists and dicts of them."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []


def _producer(t: Tensor) -> Any:
    """The graph node that made `t` (its Context), or `t` itself for a leaf."""
    return t if t._ctx is None else t._ctx


@dataclasses.dataclass
class _Row:
    name: str
    module: Module
    outputs: list[Tensor]
    producers: list[Any]  # when the layer returned: an in-place op later may re-point `_ctx`
    ops: list[Context]


class _Recorder:
    """Forward pre-hooks and hooks on every module: a call during which no other module was
    called is a row, and owns the graph nodes between its inputs and its outputs."""

    def __init__(self, model: Module) -> None:
        self.model = model
        self.rows: list[_Row] = []
        self.owner: dict[int, Module] = {}  # id(Context) -> the leaf layer that made it
        self.stack: list[list[Any]] = []  # [module, name, ids of the inputs' producers, nested]
        self.handles: list[Any] = []

    def attach(self) -> None:
        for name, module in self.model.named_modules():
            self.handles.append(module.register_forward_pre_hook(
                functools.partial(self.enter, name or "(model)"), with_kwargs=True))
            self.handles.append(module.register_forward_hook(self.leave))

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def enter(self, name: str, module: Module, args: tuple, kwargs: dict) -> None:
        if self.stack:
            self.stack[-1][3] = True
        inputs = {id(_producer(t)) for t in _tensors((args, kwargs))}
        self.stack.append([module, name, inputs, False])

    def leave(self, module: Module, args: tuple, output: Any) -> None:
        _, name, inputs, nested = self.stack.pop()
        if nested:
            return
        outputs = _tensors(output)
        producers = [_producer(t) for t in outputs]
        ops: list[Context] = []
        todo = [p for p in producers if isinstance(p, Context)]
        while todo:
            ctx = todo.pop()
            if id(ctx) in inputs or id(ctx) in self.owner:
                continue
            self.owner[id(ctx)] = module
            ops.append(ctx)
            todo.extend(p._ctx for p in ctx.parents if p is not None and p._ctx is not None)
        self.rows.append(_Row(name, module, outputs, producers, ops))


# ---------------------------------------------------------------------------- the graph's numbers


class _Graph:
    """The recorded graph from `x` to `roots`, its nodes in topological order, and per node
    its mult-adds, depth and receptive field."""

    def __init__(self, x: Tensor, roots: list[Tensor], owner: dict[int, Module]) -> None:
        self.x, self.owner = x, owner
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.mult_adds: dict[int, int] = {}
        self.depths: dict[int, int] = {}
        self.fields: dict[int, Any] = {}
        self.input_field = _input_field(x.shape)
        for ctx in self._order(roots):
            self._visit(ctx)

    def _order(self, roots: list[Tensor]) -> list[Context]:
        """Every node the roots come from, each after its parents (an iterative DFS)."""
        order: list[Context] = []
        seen: set[int] = set()
        todo: list[tuple[Context, bool]] = []
        for t in roots:
            if t._ctx is not None:
                self.shapes.setdefault(id(t._ctx), t.shape)
                todo.append((t._ctx, False))
        while todo:
            ctx, parents_done = todo.pop()
            if parents_done:
                order.append(ctx)
                continue
            if id(ctx) in seen:
                continue
            seen.add(id(ctx))
            todo.append((ctx, True))
            for p in ctx.parents:
                if p is not None and p._ctx is not None:
                    self.shapes.setdefault(id(p._ctx), p.shape)
                    if id(p._ctx) not in seen:
                        todo.append((p._ctx, False))
        return order

    def _visit(self, ctx: Context) -> None:
        shape = self.shapes[id(ctx)]
        parents = [p for p in ctx.parents if p is not None]
        self.mult_adds[id(ctx)] = _mult_adds(ctx, shape)
        self.depths[id(ctx)] = int(_is_weight_layer(ctx)) + max(
            (self.depths.get(id(p._ctx), 0) for p in parents if p._ctx is not None), default=0)
        fields = [None if p is None else self.field_of(p) for p in ctx.parents]
        self.fields[id(ctx)] = _field(ctx, shape, fields, self.owner.get(id(ctx)))

    def field_of(self, t: Any) -> Any:
        """The receptive-field boxes of a tensor, or of a node's output."""
        if isinstance(t, Context):
            return self.fields.get(id(t), _UNKNOWN)
        if t._ctx is not None:
            return self.fields.get(id(t._ctx), _UNKNOWN)
        return self.input_field if t is self.x else None

    def depth_of(self, producer: Any) -> int:
        return self.depths.get(id(producer), 0) if isinstance(producer, Context) else 0

    def total_mult_adds(self) -> int:
        return sum(self.mult_adds.values())


def _is_weight_layer(ctx: Context) -> bool:
    """A conv or linear layer; a matmul or einsum counts where an operand is a Parameter."""
    if ctx.function in (nn_ops.Conv2d, nn_ops.ConvTranspose2d, nn_ops.Linear):
        return True
    return ctx.function in (linalg.Matmul, linalg.Einsum) and any(
        isinstance(p, Parameter) for p in ctx.parents)


def _mult_adds(ctx: Context, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one op, for the whole batch (torchvision's convention)."""
    function, out = ctx.function, math.prod(shape)
    if function is nn_ops.Conv2d:
        return out * math.prod(ctx.saved[1].shape[1:])
    if function is nn_ops.ConvTranspose2d:  # every input element meets every tap of its group
        weight = ctx.saved[1]
        return shape[0] * weight.shape[0] * math.prod(ctx.hw) * math.prod(weight.shape[1:])
    if function is nn_ops.Linear:
        return out * ctx.saved[1].shape[1]
    if function is linalg.Matmul:
        return out * ctx.saved[0].shape[-1]
    if function is linalg.Einsum and len(ctx.inputs) > 1:
        letters = set("".join(ctx.inputs))
        return (len(ctx.inputs) - 1) * math.prod(ctx.sizes[c] for c in letters)
    if function is Attention:  # q k^T and weights v, per head
        q, k, v, p = ctx.saved[:4]
        heads = ctx.layout[0]
        if heads is None:
            return p.size * (q.shape[-1] + v.shape[-1])
        width = q.shape[-1] // 3 if k is None else q.shape[-1]
        value_width = width if k is None else v.shape[-1]
        return p.size * (width + value_width) // heads
    return 0


# --------------------------------------------------------------------------- the receptive field
#
# A field is a pair of tuples (lo, hi), one array per spatial dim of the input: element i of the
# tensor depends on input positions lo[d][i] to hi[d][i] along dim d. The arrays broadcast to the
# tensor's shape, an axis along which nothing changes kept at length 1 (a 64x56x56 map's field is
# a few 56-long arrays). An element that depends on no input has lo = +inf, hi = -inf. None: the
# whole tensor depends on no input (a parameter); _UNKNOWN: an op without a rule came before.

_UNKNOWN = "unknown"
Field = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]


def _input_field(shape: tuple[int, ...]) -> Field | None:
    """(N, C, *spatial): element (n, c, i, j) depends on input position (i, j) alone."""
    spatial = shape[2:]
    if not spatial:
        return None
    axes = [np.arange(n, dtype=np.float64).reshape(
        [n if a == 2 + d else 1 for a in range(len(shape))]) for d, n in enumerate(spatial)]
    return tuple(axes), tuple(axes)


def _each(field: Field, fn: Callable[[np.ndarray, bool], np.ndarray]) -> Field:
    """fn(array, least) on every array: least is True for the lower bounds (reduce with min),
    False for the upper ones (max)."""
    return tuple(fn(a, True) for a in field[0]), tuple(fn(a, False) for a in field[1])


def _better(least: bool) -> Any:
    return np.minimum if least else np.maximum


def _nothing(least: bool) -> float:
    return math.inf if least else -math.inf


def _union(fields: list[Any], ndim: int) -> Any:
    """Elementwise union, broadcasting as NumPy does (aligned at the last axis)."""
    known = [f for f in fields if f is not None]
    if not known:
        return None
    if any(f is _UNKNOWN for f in known):
        return _UNKNOWN

    def join(arrays: list[np.ndarray], least: bool) -> np.ndarray:
        out = functools.reduce(_better(least), arrays)
        return out.reshape((1,) * (ndim - out.ndim) + out.shape)

    dims = range(len(known[0][0]))
    return (tuple(join([f[0][d] for f in known], True) for d in dims),
            tuple(join([f[1][d] for f in known], False) for d in dims))


def _over(field: Field, axes: Any, keepdims: bool = True) -> Field:
    """The union along `axes` (all of them: None)."""
    def fold(a: np.ndarray, least: bool) -> np.ndarray:
        chosen = tuple(range(a.ndim)) if axes is None else tuple(x % a.ndim for x in axes)
        out = (a.min if least else a.max)(axis=chosen, keepdims=True)
        return out if keepdims else np.squeeze(out, axis=chosen)
    return _each(field, fold)


def _whole(field: Any) -> Any:
    """Everything the tensor depends on, as a field of 0-d arrays (it broadcasts anywhere)."""
    if field is None or field is _UNKNOWN:
        return field
    return _each(field, lambda a, least: np.asarray(a.min() if least else a.max()))


def _compact(a: np.ndarray) -> np.ndarray:
    """`a` with every axis along which it does not change cut to length 1."""
    for axis in range(a.ndim):
        if a.shape[axis] > 1:
            first = np.take(a, [0], axis=axis)
            if np.array_equal(a, np.broadcast_to(first, a.shape)):
                a = first
    return a


def _moved(field: Field, shape: tuple[int, ...], fn: Callable[[np.ndarray], np.ndarray]) -> Field:
    """A data movement (reshape, index, tile...): `fn` on the arrays at the tensor's full
    `shape`, then compacted."""
    return _each(field, lambda a, least: _compact(np.asarray(fn(np.broadcast_to(a, shape)))))


def _extend(a: np.ndarray, least: bool, axis: int, before: int, after: int) -> np.ndarray:
    """`a` continued along `axis` by `before` and `after` positions, each bound going on in
    steps of its last step (padding: positions outside the image, where the grid goes on)."""
    if a.shape[axis] == 1 or (before <= 0 and after <= 0):
        return a
    line = [1] * a.ndim
    line[axis] = -1
    parts = []
    with np.errstate(invalid="ignore"):
        if before > 0:
            first = np.take(a, [0], axis=axis)
            step = np.take(a, [1], axis=axis) - first
            parts.append(first - np.arange(before, 0, -1).reshape(line) * step)
        parts.append(a)
        if after > 0:
            last = np.take(a, [-1], axis=axis)
            step = last - np.take(a, [-2], axis=axis)
            parts.append(last + np.arange(1, after + 1).reshape(line) * step)
        out = np.concatenate(parts, axis=axis)
    return np.where(np.isfinite(out), out, _nothing(least))  # from no input: still none


def _windows(field: Field, axis: int, size: int, kernel: int, stride: int, padding: int,
             dilation: int = 1) -> Field:
    """Output i along `axis` covers input i * stride - padding + t * dilation, t < kernel."""
    def window(a: np.ndarray, least: bool) -> np.ndarray:
        if a.shape[axis] == 1:
            return a
        last = (size - 1) * stride - padding + (kernel - 1) * dilation
        a = _extend(a, least, axis, padding, last - (a.shape[axis] - 1))
        taps = [np.take(a, np.arange(t * dilation, t * dilation + (size - 1) * stride + 1,
                                     stride), axis=axis) for t in range(kernel)]
        return functools.reduce(_better(least), taps)
    return _each(field, window)


def _adaptive(field: Field, axis: int, size: int) -> Field:
    """Adaptive pooling: output i covers floor(i n / size) to ceil((i + 1) n / size) - 1."""
    def window(a: np.ndarray, least: bool) -> np.ndarray:
        n = a.shape[axis]
        if n == 1:
            return a
        fold = np.min if least else np.max
        return np.concatenate([fold(np.take(a, np.arange(i * n // size, -(-(i + 1) * n // size)),
                                            axis=axis), axis=axis, keepdims=True)
                               for i in range(size)], axis=axis)
    return _each(field, window)


def _channels(field: Field, groups: int, channels: int) -> Field:
    """A grouped layer's channel mixing: each output channel sees its group's input channels."""
    def mix(a: np.ndarray, least: bool) -> np.ndarray:
        if a.shape[1] == 1:
            return a
        grouped = a.reshape(a.shape[0], groups, -1, *a.shape[2:])
        folded = (grouped.min if least else grouped.max)(axis=2)
        return _compact(np.repeat(folded, channels // groups, axis=1))
    return _each(field, mix)


def _two(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _host(a: Any) -> Any:
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else a


# One rule per op: (ctx, output shape, the parents' fields, the leaf layer that ran it) -> field.


def _same(ctx, shape, fields, module):
    return _union(fields, len(shape))


def _first(ctx, shape, fields, module):
    return fields[0]


def _conv(ctx, shape, fields, module):
    x, rest = fields[0], _union([_whole(f) for f in fields[1:]], len(shape))
    if x is None:
        return rest
    stride, padding, dilation, groups = ctx.geometry
    kernel = ctx.saved[1].shape[2:]
    out = _channels(x, groups, shape[1])
    for d in range(2):
        out = _windows(out, 2 + d, shape[2 + d], kernel[d], stride[d], padding[d], dilation[d])
    return _union([out, rest], len(shape))


def _conv_transpose(ctx, shape, fields, module):
    x, rest = fields[0], _union([_whole(f) for f in fields[1:]], len(shape))
    if x is None:
        return rest
    stride, padding, dilation, groups = ctx.geometry
    kernel = ctx.saved[1].shape[2:]
    out = _channels(x, groups, shape[1])
    for d in range(2):
        out = _scatter(out, 2 + d, ctx.hw[d], shape[2 + d], kernel[d], stride[d], padding[d],
                       dilation[d])
    return _union([out, rest], len(shape))


def _scatter(field: Field, axis: int, length: int, size: int, kernel: int, stride: int,
             padding: int, dilation: int) -> Field:
    """Transposed conv: input i reaches outputs i * stride - padding + t * dilation."""
    def spread(a: np.ndarray, least: bool) -> np.ndarray:
        if a.shape[axis] == 1:
            return a
        a = np.moveaxis(a[tuple(slice(0, length) if i == axis else slice(None)
                                for i in range(a.ndim))], axis, 0)
        out = np.full((size, *a.shape[1:]), _nothing(least))
        for t in range(kernel):
            places = np.arange(length) * stride - padding + t * dilation
            inside = (places >= 0) & (places < size)
            out[places[inside]] = _better(least)(out[places[inside]], a[inside])
        return np.moveaxis(out, 0, axis)
    return _each(field, spread)


def _pool(ctx, shape, fields, module):
    _, kernel, stride, padding = ctx.geometry
    out = fields[0]
    for d in range(2):
        out = _windows(out, 2 + d, shape[2 + d], kernel[d], stride[d], padding[d])
    return out


def _adaptive_pool(ctx, shape, fields, module):
    out = fields[0]
    for d in range(2):
        out = _adaptive(out, 2 + d, shape[2 + d])
    return out


def _max_pool_at(ctx, shape, fields, module):
    """Max pooling with dilation or indices, or adaptive: the windows are the layer's."""
    out = fields[0]
    if hasattr(module, "output_size"):
        return _adaptive_pool(ctx, shape, fields, module)
    if not hasattr(module, "kernel_size"):
        return _UNKNOWN  # F.max_pool2d called outside a pooling layer: its windows are gone
    kernel = _two(module.kernel_size)
    stride = kernel if module.stride is None else _two(module.stride)
    padding, dilation = _two(module.padding), _two(module.dilation)
    for d in range(2):
        out = _windows(out, 2 + d, shape[2 + d], kernel[d], stride[d], padding[d], dilation[d])
    return out


def _resample(ctx, shape, fields, module):
    """interpolate: output i reads index0[i] (and index1[i], for a weight other than 0)."""
    out = fields[0]
    for axis, taps in zip((2, 3), ctx.taps):
        if taps.identity:
            continue

        def gather(a: np.ndarray, least: bool, taps: Any = taps, axis: int = axis) -> np.ndarray:
            if a.shape[axis] == 1:
                return a
            reads = [(taps.index0, taps.weight0), (taps.index1, taps.weight1)]
            picked = []
            for index, weight in reads:
                if index is None:
                    continue
                values = np.take(a, _host(index), axis=axis)
                if weight is not None:
                    line = [1] * a.ndim
                    line[axis] = -1
                    values = np.where(np.reshape(_host(weight), line) != 0, values,
                                      _nothing(least))
                picked.append(values)
            return functools.reduce(_better(least), picked)
        out = _each(out, gather)
    return out


def _linear(ctx, shape, fields, module):
    rows = None if fields[0] is None else _over(fields[0], (-1,))
    return _union([rows, *(_whole(f) for f in fields[1:])], len(shape))


def _matmul(ctx, shape, fields, module):
    a, b = ctx.saved[:2]
    parts = []
    if fields[0] is not None:
        rows = _over(fields[0], (-1,))  # (..., n, 1), or (1,) for a vector
        if a.ndim == 1:
            rows = _each(rows, lambda x, least: x.reshape(()))
        elif b.ndim == 1:
            rows = _each(rows, lambda x, least: x[..., 0])
        parts.append(rows)
    if fields[1] is not None:
        cols = _over(fields[1], (-2,) if b.ndim > 1 else (-1,))  # (..., 1, m)
        if b.ndim == 1:
            cols = _each(cols, lambda x, least: x.reshape(()))
        elif a.ndim == 1:
            cols = _each(cols, lambda x, least: x[..., 0, :])
        parts.append(cols)
    return _union(parts, len(shape))


def _einsum(ctx, shape, fields, module):
    parts = []
    for letters, field in zip(ctx.inputs, fields):
        if field is None:
            continue
        if len(set(letters)) < len(letters):
            return _UNKNOWN  # a diagonal ('ii->i')
        summed = tuple(i for i, c in enumerate(letters) if c not in ctx.output)
        kept = [c for c in letters if c in ctx.output]
        order = sorted(range(len(kept)), key=lambda i: ctx.output.index(kept[i]))

        def place(a: np.ndarray, least: bool, summed=summed, kept=kept, order=order) -> np.ndarray:
            a = (a.min if least else a.max)(axis=summed) if summed else a
            a = a.transpose(order)
            sizes = {kept[i]: a.shape[j] for j, i in enumerate(order)}
            return a.reshape([sizes.get(c, 1) for c in ctx.output])
        parts.append(_each(field, place))
    return _union(parts, len(shape))


def _reduction(ctx, shape, fields, module):
    return _over(fields[0], ctx.dims, ctx.keepdim)


def _along(ctx, shape, fields, module):
    """softmax, log_softmax: every element of a row depends on the whole row."""
    return _over(fields[0], (ctx.dim,))


def _sorted(ctx, shape, fields, module):
    return _over(fields[0], (ctx.dim,))


def _cumsum(ctx, shape, fields, module):
    def running(a: np.ndarray, least: bool) -> np.ndarray:
        if a.shape[ctx.dim] == 1:
            return a
        return _better(least).accumulate(a, axis=ctx.dim)
    return _each(fields[0], running)


def _reshape(ctx, shape, fields, module):
    return _moved(fields[0], ctx.in_shape, lambda a: a.reshape(shape))


def _permute(ctx, shape, fields, module):
    dims = tuple(np.argsort(ctx.inverse))
    return _each(fields[0], lambda a, least: a.transpose(dims))


def _expand(ctx, shape, fields, module):
    return _each(fields[0], lambda a, least: a.reshape((1,) * (len(shape) - a.ndim) + a.shape))


def _get_item(ctx, shape, fields, module):
    index = tuple(_host(i) for i in ctx.index) if isinstance(ctx.index, tuple) else _host(
        ctx.index)
    return _moved(fields[0], ctx.in_shape, lambda a: a[index])


def _gather(ctx, shape, fields, module):
    index = _host(ctx.saved[0])
    corner = tuple(slice(None) if d == ctx.dim else slice(0, n) for d, n in enumerate(index.shape))
    return _moved(fields[0], ctx.in_shape,
                  lambda a: np.take_along_axis(a[corner], index, axis=ctx.dim))


def _index_select(ctx, shape, fields, module):
    return _moved(fields[0], ctx.in_shape, lambda a: np.take(a, _host(ctx.saved[0]), ctx.dim))


def _cat(ctx, shape, fields, module):
    axis = ctx.dim % len(shape)
    lengths = np.diff([0, *ctx.bounds, shape[axis]])
    joined = [f for f, skipped in zip(fields, ctx.skip) if not skipped]
    known = [f for f in joined if f is not None]
    if not known:
        return None
    if any(f is _UNKNOWN for f in known):
        return _UNKNOWN

    def join(d: int, least: bool) -> np.ndarray:
        side = 0 if least else 1
        common = list(np.broadcast_shapes(*(
            tuple(1 if i == axis else n for i, n in enumerate(f[side][d].shape))
            for f in known)))
        common = [1] * (len(shape) - len(common)) + common
        blocks = []
        for f, length in zip(joined, lengths):
            common[axis] = int(length)
            blocks.append(np.full(common, _nothing(least)) if f is None
                          else np.broadcast_to(f[side][d], common))
        return _compact(np.concatenate(blocks, axis=axis))

    dims = range(len(known[0][0]))
    return tuple(join(d, True) for d in dims), tuple(join(d, False) for d in dims)


def _pad(ctx, shape, fields, module):
    """Constant padding counts as positions outside the image, as a conv's own padding."""
    out = fields[0]
    for axis, window in enumerate(ctx.window):
        before, after = window.start, shape[axis] - window.stop
        if before or after:
            out = _each(out, lambda a, least, axis=axis, before=before, after=after: _extend(
                np.broadcast_to(a, a.shape), least, axis, before, after))
    return out


def _repeat(ctx, shape, fields, module):
    return _moved(fields[0], ctx.in_shape, lambda a: np.tile(a, ctx.repeats))


def _flip(ctx, shape, fields, module):
    return _each(fields[0], lambda a, least: np.flip(a, ctx.dims))


def _roll(ctx, shape, fields, module):
    return _moved(fields[0], shape, lambda a: np.roll(a, ctx.shifts, ctx.dims))


def _index_put(ctx, shape, fields, module):
    """a with a[index] = value."""
    a, value = fields[0], fields[1]
    if a is None and value is None:
        return None
    if a is _UNKNOWN or value is _UNKNOWN:
        return _UNKNOWN
    dims = range(len((a or value)[0]))

    def put(d: int, side: int) -> np.ndarray:
        least = side == 0
        out = (np.full(shape, _nothing(least)) if a is None
               else np.broadcast_to(a[side][d], shape).copy())
        target = out
        steps = [tuple(map(_host, s)) if isinstance(s, tuple) else _host(s) for s in ctx.steps]
        for step in steps[:-1]:
            target = target[step]
        target[steps[-1]] = _nothing(least) if value is None else value[side][d]
        return _compact(out)

    return tuple(put(d, 0) for d in dims), tuple(put(d, 1) for d in dims)


def _layer_norm(ctx, shape, fields, module):
    return _over(fields[0], tuple(range(-ctx.ndim, 0)))


def _group_norm(ctx, shape, fields, module):
    groups = ctx.num_groups

    def norm(a: np.ndarray, least: bool) -> np.ndarray:
        full = np.broadcast_to(a, (a.shape[0], shape[1], *a.shape[2:]))
        grouped = full.reshape(a.shape[0], groups, -1)
        folded = (grouped.min if least else grouped.max)(axis=2, keepdims=True)
        return _compact(np.repeat(folded, shape[1] // groups, axis=1).reshape(
            (a.shape[0], shape[1]) + (1,) * (len(shape) - 2)))
    return _each(fields[0], norm)


def _local_response_norm(ctx, shape, fields, module):
    def window(a: np.ndarray, least: bool) -> np.ndarray:
        if a.shape[1] == 1:
            return a
        c = a.shape[1]
        fold = np.min if least else np.max
        return np.concatenate([fold(a[:, max(0, i - ctx.size // 2):i + (ctx.size - 1) // 2 + 1],
                                    axis=1, keepdims=True) for i in range(c)], axis=1)
    return _each(fields[0], window)


def _attention(ctx, shape, fields, module):
    """Each query's output depends on its own query, on every key and every value."""
    q, k, v, bias = (list(fields) + [None] * 4)[:4]
    heads = ctx.layout[0]
    token = -2 if heads is None else (1 if ctx.layout[1] else 0)
    packed = heads is not None and ctx.saved[1] is None
    parts = [None if q is None else _over(q, (-1,))]
    parts += [None if f is None else _over(f, (token, -1)) for f in (k, v)]
    if packed and q is not None:
        parts.append(_over(q, (token, -1)))
    parts.append(_whole(bias))
    return _union(parts, len(shape))


def _attention_weights(ctx, shape, fields, module):
    """Weights (N, [heads,] L, S): row l depends on query l and every key."""
    q, k, bias = (list(fields) + [None] * 3)[:3]
    heads, batch_first, _, average = ctx.layout
    token = 1 if batch_first else 0
    parts = [None if q is None else _over(q, (-1,)),
             None if k is None else _over(k, (token, -1))]
    if ctx.saved[1] is None and q is not None:  # packed: k is part of q
        parts.append(_over(q, (token, -1)))
    rows = _union(parts, 3)
    if rows is None or rows is _UNKNOWN:
        return _union([rows, _whole(bias)], len(shape))
    rows = _each(rows, lambda a, least: (a if batch_first else a.swapaxes(0, 1))
                 if average else (a if batch_first else a.swapaxes(0, 1))[:, None])
    return _union([rows, _whole(bias)], len(shape))


def _hook_slot(ctx, shape, fields, module):
    return fields[1]


def _none(ctx, shape, fields, module):
    return None


_RULES: dict[Any, Callable[..., Any]] = {
    nn_ops.Conv2d: _conv, nn_ops.ConvTranspose2d: _conv_transpose,
    nn_ops.MaxPool2d: _pool, nn_ops.AvgPool2d: _pool, nn_ops.Resample2d: _resample,
    nn_ops.Linear: _linear, pooling.AdaptiveAvgPool2d: _adaptive_pool,
    pooling.MaxPoolAt: _max_pool_at,
    linalg.Matmul: _matmul, linalg.Einsum: _einsum,
    reduce.Sum: _reduction, reduce.Mean: _reduction, reduce.Var: _reduction,
    reduce.Extreme: _reduction, reduce.LogSumExp: _reduction, reduce.VectorNorm: _reduction,
    reduce.Softmax: _along, reduce.LogSoftmax: _along, reduce.CumSum: _cumsum,
    shape_ops.Reshape: _reshape, shape_ops.Permute: _permute, shape_ops.Expand: _expand,
    shape_ops.GetItem: _get_item, shape_ops.Gather: _gather, shape_ops.Cat: _cat,
    shape_ops.Pad: _pad, shape_ops.Repeat: _repeat, shape_ops.Flip: _flip,
    shape_ops.Roll: _roll, shape_ops.Clone: _first, shape_ops.Contiguous: _first,
    indexing.IndexSelect: _index_select, indexing.MaskedFill: _same,
    indexing.Triangle: _first, indexing.TakeSorted: _sorted, inplace.IndexPut: _index_put,
    device_ops.ToDevice: _first,
    normalization.BatchNorm: _first, normalization.LayerNorm: _layer_norm,
    normalization.GroupNorm: _group_norm, normalization.LocalResponseNorm: _local_response_norm,
    Attention: _attention, AttentionWeights: _attention_weights, Lookup: _same,
    _HookSlot: _hook_slot, _HookHub: _none,
}


def _field(ctx: Context, shape: tuple[int, ...], fields: list[Any], module: Any) -> Any:
    rule = _RULES.get(ctx.function)
    if rule is None and ctx.function.__module__ == elementwise.__name__:
        rule = _same  # arithmetic and activations, broadcasting
    if rule is None or any(f is _UNKNOWN for f in fields):
        return _UNKNOWN
    if all(f is None for f in fields):
        return None
    try:
        out = rule(ctx, shape, fields, module)
    except (ValueError, IndexError, TypeError, AttributeError):
        return _UNKNOWN  # a case the rule does not know: say so rather than guess
    if out is None or out is _UNKNOWN:
        return out
    if any(a.ndim > len(shape) for a in out[0]):
        return _UNKNOWN
    return out


def _centre(field: Field, shape: tuple[int, ...]) -> tuple[tuple, tuple]:
    """The centre element's box per spatial dim, and the jumps: how far the boxes move per
    step along the one axis a dim varies along, on average over that axis (a transposed conv
    or an upsampling moves them by 0 or 2 in turn: 1), None where no axis has the dim to
    itself (a 1x1 map, tokens that flatten H and W)."""
    centre = tuple(n // 2 for n in shape)
    box = tuple((float(np.broadcast_to(lo, shape)[centre]), float(np.broadcast_to(hi, shape)[
        centre])) for lo, hi in zip(*field))
    varying = [[axis for axis in range(len(shape)) if lo.shape[axis] > 1] for lo in field[0]]
    jumps: list[float | None] = []
    for d, axes in enumerate(varying):
        if len(axes) != 1 or any(axes == other for e, other in enumerate(varying) if e != d):
            jumps.append(None)
            continue
        line = np.broadcast_to(field[0][d], shape)[
            tuple(slice(None) if a == axes[0] else c for a, c in enumerate(centre))]
        places = np.flatnonzero(np.isfinite(line))
        if len(places) < 2:
            jumps.append(None)
            continue
        jump = (line[places[-1]] - line[places[0]]) / (places[-1] - places[0])
        jumps.append(int(round(jump)) if abs(jump - round(jump)) < 1e-9 else float(jump))
    return box, tuple(jumps)


# ----------------------------------------------------------------------------------- the table


def _result(model: Module, x: Tensor, recorder: _Recorder, graph: _Graph) -> Summary:
    batch = x.shape[0]
    layers = [_layer(row, graph, batch) for row in recorder.rows]
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    param_bytes = sum(p.numel() * p.dtype.itemsize for p in params)
    input_bytes = x.numel() * x.dtype.itemsize // batch
    mult_adds = graph.total_mult_adds() // batch
    activations = sum(layer.activation_bytes for layer in layers)
    deepest = max(graph.depths.values(), default=0)
    spatial = len(x.shape) > 2
    header = ["Layer", "Type", "Output shape", "Param #", "Mult-adds", "Memory"]
    header += ["RF", "Jump"] if spatial else []
    rows = [tuple(header), ("input", "", _per_sample(x.shape[1:]), "", "",
                            _size(input_bytes)) + (("1", "1") if spatial else ())]
    for layer in layers:
        cells = (layer.name, layer.type,
                 "-" if layer.output_shape is None else _per_sample(layer.output_shape),
                 f"{layer.params:,}", f"{layer.mult_adds:,}", _size(layer.activation_bytes))
        if spatial:
            cells += (_dims(layer.receptive_field, layer.known),
                      _dims(layer.jump, layer.known))
        rows.append(cells)
    per = "per sample" if batch == 1 else f"per sample (batch {batch})"
    footer = [f"Total params: {total:,}",
              f"Trainable params: {trainable:,}",
              f"Total mult-adds: {mult_adds:,} ({_si(mult_adds)}), {per}",
              f"Memory: input {_size(input_bytes)}, layers' outputs {_size(activations)}, "
              f"{per}; parameters {_size(param_bytes)}",
              f"Depth: {deepest} (weight layers on the longest path)"]
    if any(not layer.known for layer in layers):
        footer.append("RF ?: after an op the receptive field has no rule for")
    text = _table(rows, footer, numeric=range(3, len(header)))
    return Summary(text, layers=layers, input_size=tuple(x.shape), dtype=x.dtype,
                   total_params=total, trainable_params=trainable, param_bytes=param_bytes,
                   input_bytes=input_bytes, mult_adds=mult_adds, activation_bytes=activations,
                   depth=deepest)


def _layer(row: _Row, graph: _Graph, batch: int) -> Layer:
    first = row.outputs[0] if row.outputs else None
    field = None if first is None else graph.field_of(row.producers[0])
    known = field is not _UNKNOWN
    size = jump = box = None
    if known and field is not None:
        box, jump = _centre(field, first.shape)
        if all(math.isfinite(lo) for lo, _ in box):
            box = tuple((int(lo), int(hi)) for lo, hi in box)
            size = tuple(hi - lo + 1 for lo, hi in box)
        else:
            box = jump = None
    return Layer(
        name=row.name, type=type(row.module).__name__,
        output_shape=None if first is None else tuple(first.shape[1:]),
        params=sum(p.numel() for p in row.module.parameters()),
        mult_adds=sum(graph.mult_adds.get(id(ctx), 0) for ctx in row.ops) // batch,
        activation_bytes=sum(t.numel() * t.dtype.itemsize for t in row.outputs) // batch,
        receptive_field=size, jump=jump, field=box,
        depth=graph.depth_of(row.producers[0]) if row.producers else 0, known=known)


def _per_sample(shape: tuple[int, ...]) -> str:
    """(32, 26, 26) -> "32x26x26"; () (one number per sample) -> "1"."""
    return "x".join(map(str, shape)) if shape else "1"


def _dims(values: tuple | None, known: bool) -> str:
    """(196, 196) -> "196"; (5, 7) -> "5x7"; None -> "-"; unknown -> "?"."""
    if not known:
        return "?"
    if values is None:
        return "-"
    shown = ["-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)
             for v in values]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def _size(n: int) -> str:
    """Bytes in kB, MB, GB (powers of 1000, as torchinfo's)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _si(n: int) -> str:
    """4089184256 -> "4.09 G"."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return str(n)


def _table(rows: list[tuple[str, ...]], footer: list[str], numeric: Any) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    rule = "-" * max(map(len, lines + footer))
    return "\n".join([rule, lines[0], rule, *lines[1:], rule, *footer, rule])


__all__ = ["Layer", "Summary", "depth", "summary"]
