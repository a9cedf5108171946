"""Reverse-mode automatic differentiation: `Function`, grad mode, and the backward pass.

Every differentiable operation in minigrad is a `Function`: `forward` computes the result from
plain arrays (NumPy, or CuPy on the GPU) and `backward` turns the gradient of the result into
gradients of the inputs (a vector-Jacobian product). `Function.apply` runs `forward` and, when
an input requires grad, records a node (its `Context`) on the output tensor. `backward()` walks
those nodes from the output back to the leaves, in reverse topological order, without recursion.

Broadcasting is handled here, once: whatever shape an op's backward returns, the engine sums it
back to its input's shape (`unbroadcast`) and casts it to its input's dtype.
"""

from __future__ import annotations

import contextlib
import os
import threading
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------------- grad mode


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether operations record a graph for backward (False inside `no_grad`)."""
    return _grad_mode.enabled


class _Switch(contextlib.ContextDecorator):
    """Set a per-thread flag (`_state.enabled`) for a block: as a context manager or a
    decorator, nestable."""

    _state: threading.local

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous: list[bool] = []  # a stack, so one instance can be re-entered

    def __enter__(self) -> None:
        self._previous.append(self._state.enabled)
        self._state.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        self._state.enabled = self._previous.pop()


class set_grad_enabled(_Switch):
    """Turn graph recording on or off: as a context manager or a decorator, nestable."""

    _state = _grad_mode


class no_grad(set_grad_enabled):
    """`with mg.no_grad():` or `@mg.no_grad()`: build no graph (inference, optimizer updates)."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """`with mg.enable_grad():` or `@mg.enable_grad()`: record a graph even inside `no_grad`."""

    def __init__(self) -> None:
        super().__init__(True)


# -------------------------------------------------------------------------------- anomaly mode


class _AnomalyMode(threading.local):
    enabled = False


_anomaly = _AnomalyMode()


class set_detect_anomaly(_Switch):
    """Turn anomaly detection on or off: as a context manager or a decorator, nestable."""

    _state = _anomaly


class detect_anomaly(set_detect_anomaly):
    """`with mg.autograd.detect_anomaly():` a backward that produces NaN or inf raises a
    RuntimeError naming the op, with the stack of the forward call that created it. Each op
    then records its stack and each gradient is checked: slow, for debugging only."""

    def __init__(self, check_nan: bool = True) -> None:
        super().__init__(check_nan)


def is_anomaly_enabled() -> bool:
    return _anomaly.enabled


def _callers_stack() -> list[str]:
    """The stack of the current call, without minigrad's own frames: where the user's code
    called the op."""
    package = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in traceback.extract_stack()
              if not os.path.abspath(f.filename).startswith(package + os.sep)]
    return traceback.format_list(frames)


def _check_finite(ctx: Context, input_grads: tuple) -> None:
    for i, g in enumerate(input_grads):
        if g is None or not hasattr(g, "dtype") or g.dtype.kind not in "fc":
            continue
        if not bool(ctx.xp.isfinite(g).all()):
            kind = "nan" if bool(ctx.xp.isnan(g).any()) else "inf"
            where = "".join(ctx.created_at or ["  (created before anomaly detection was on)\n"])
            raise RuntimeError(f"detect_anomaly: the backward of {op_name(ctx.function)} returned "
                               f"{kind} values in its gradient for input {i} (shape "
                               f"{tuple(g.shape)}). The forward call that created it:\n{where}")


# ------------------------------------------------------------------------------------ Function


class Context:
    """What one call of a Function keeps for its backward: saved arrays and its inputs."""

    __slots__ = ("function", "parents", "needs_input_grad", "saved", "versions", "xp", "freed",
                 "created_at", "__dict__")

    def __init__(self, function: type[Function], needs_input_grad: tuple[bool, ...], xp) -> None:
        self.function = function
        self.needs_input_grad = needs_input_grad
        self.xp = xp  # the array module of the inputs: numpy or cupy
        self.parents: tuple[Tensor | None, ...] = ()
        self.saved: tuple = ()
        # (counter, count, memory id, shape) of the inputs and output, when arrays are saved:
        # backward checks that none whose memory `saved` holds was changed in place since
        self.versions: tuple = ()
        self.freed = False
        self.created_at: list | None = None  # the forward's stack, in anomaly mode only

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward; they are dropped once backward has used them."""
        self.saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        """The arrays given to `save_for_backward` (named as in PyTorch; they are arrays)."""
        if self.freed:
            raise RuntimeError(_SECOND_BACKWARD)
        return self.saved

    def free(self) -> None:
        """Drop saved arrays and inputs so the graph's memory can go as soon as backward ends."""
        self.saved = ()
        self.parents = ()
        self.versions = ()
        self.freed = True
        self.__dict__.clear()

    def __repr__(self) -> str:
        return f"<{self.function.__name__}Backward>"


class Function:
    """One differentiable operation: `forward(ctx, *args)` and `backward(ctx, grad)` on arrays.

    Subclass it with two static methods and call `YourOp.apply(*args)`. `forward` receives the
    arrays inside the tensor arguments (other arguments unchanged) and returns one array;
    `backward` receives the gradient of that output and returns one gradient (or None) per
    positional argument of `forward`. Keyword arguments of `apply` go to `forward` and are never
    differentiated. Attributes set on `ctx` in forward are there in backward.
    """

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        needs_grad = tuple([isinstance(a, Tensor) and a._requires_grad for a in args])
        arrays = [a.array if isinstance(a, Tensor) else a for a in args]
        try:
            xp = array_module([a.array for a in args if isinstance(a, Tensor)])
            if xp is not np:  # NumPy constants go to the tensors' GPU, as Python numbers do
                arrays = [xp.asarray(a) if type(a) is np.ndarray else a for a in arrays]
            ctx = Context(cls, needs_grad, xp)
            out = cls.forward(ctx, *arrays, **kwargs)
        except (ValueError, TypeError, IndexError, ArithmeticError, DeviceError) as error:
            raise op_error(op_name(cls), error, args) from error
        if type(out) is not np.ndarray and not _on_gpu(out):
            out = ctx.xp.asarray(out)  # reductions to a scalar give NumPy scalars
        result = Tensor._wrap(out)
        if out.base is not None:
            _share_counter_with_viewed_input(result, args)
        if _grad_mode.enabled and True in needs_grad and out.dtype.kind in "fc":
            ctx.parents = tuple(a if g else None for a, g in zip(args, needs_grad))
            result._requires_grad = True
            result._ctx = ctx
            if ctx.saved:
                ctx.versions = _versions(args, result)
            if _anomaly.enabled:
                ctx.created_at = _callers_stack()
        return result


def _owner(array: Any) -> Any:
    """The array that owns the memory `array` shows (NumPy and CuPy point views at it)."""
    return array if array.base is None else array.base


def _share_counter_with_viewed_input(result: Tensor, args: tuple) -> None:
    """An op that returned a view of an input's memory (reshape, transpose, basic indexing)
    gives the result the input's version counter: a change to either is a change to both."""
    owner = _owner(result.array)
    for a in args:
        if isinstance(a, Tensor) and _owner(a.array) is owner:
            result._counter = a._counter
            a._counter.shared = True
            return


def _versions(args: tuple, result: Tensor) -> list:
    """(counter, count, memory's id, shape) of the op's tensors, for an op that saved arrays:
    backward checks them (plain loops: this runs for every recorded op)."""
    versions = []
    for t in (*args, result):
        if type(t) is Tensor or isinstance(t, Tensor):
            a, counter, base = t.array, t._counter, t.array.base
            versions.append((counter, counter.value, id(a if base is None else base), a.shape))
    return versions


def _check_versions(ctx: Context) -> None:
    """Raise if a tensor whose memory the op saved was changed in place since."""
    for counter, version, owner, shape in ctx.versions:
        if counter.value != version and owner in _saved_owners(ctx.saved):
            raise RuntimeError(_changed_in_place(ctx, tuple(shape), version, counter.value))


def _saved_owners(saved: tuple) -> set[int]:
    """The ids of the arrays owning the memory of the saved arrays (alive since forward, so an
    id recorded then names the same array)."""
    owners = set()
    for s in saved:
        base = getattr(s, "base", saved)  # `saved`: not an array
        if base is not saved:
            owners.add(id(s) if base is None else id(base))
    return owners


class DeviceError(RuntimeError):
    """Arrays on different devices (host and GPU) met in one op."""


def _on_gpu(array: Any) -> bool:
    return type(array).__module__.startswith("cupy")


def array_module(arrays: list) -> Any:
    """numpy, or cupy when the inputs live on the GPU (the cupy backend's, loaded on first
    use: cupy is optional)."""
    on_host = on_gpu = False
    for a in arrays:
        if type(a) is np.ndarray:
            on_host = True
        elif _on_gpu(a):
            on_gpu = True
    if not on_gpu:
        return np
    if on_host:
        raise DeviceError("tensors on different devices (cpu and cuda) met; move them to one "
                          "device first with .to('cupy') or .to('numpy')")
    from minigrad.backends import load

    return load("cupy").xp


def beside(target: Any, value: Any) -> Any:
    """`value` on `target`'s device: a NumPy array next to GPU data is copied to the GPU (a
    constant, like a Python number); anything else is returned as it is."""
    if type(value) is np.ndarray and _on_gpu(target):
        return array_module([target]).asarray(value)
    return value


def op_name(function: type[Function]) -> str:
    return getattr(function, "name", function.__name__.lower())


def describe(value: Any) -> str:
    """`(2, 3) float32` for a tensor or array, repr for anything else: for error messages."""
    if isinstance(value, Tensor):
        value = value.array
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{tuple(value.shape)} {value.dtype}"
    return repr(value)


def op_error(name: str, error: Exception, args: tuple) -> Exception:
    """The error to raise for one from inside an op: with the op's name and its inputs' shapes."""
    message = str(error)
    if not message.startswith(f"{name}:"):
        inputs = ", ".join(describe(a) for a in args)
        message = f"{name}: {message} (inputs: {inputs})"
    for kind in (IndexError, ValueError, TypeError, ArithmeticError, DeviceError):
        if isinstance(error, kind):
            return kind(message)
    return RuntimeError(message)


# ---------------------------------------------------------------------------- backward engine

_SECOND_BACKWARD = (
    "Trying to backward through the graph a second time: the first backward() freed the "
    "arrays it saved. Pass retain_graph=True to the first backward() to keep them."
)


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum `grad` down to `shape`: undo NumPy broadcasting, whose VJP is a sum over copies."""
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"gradient of shape {grad.shape} cannot be reduced to shape {shape}")
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"gradient of shape {grad.shape} does not match input shape {shape}")
    return grad


def backward(tensors: Tensor | Sequence[Tensor], grad_tensors: Any = None,
             retain_graph: bool | None = None, inputs: Sequence[Tensor] | None = None) -> None:
    """Accumulate d(tensors)/d(leaf), weighted by `grad_tensors`, into every leaf's `.grad`
    (only into the `.grad` of `inputs`, leaf or not, when given), as `torch.autograd.backward`."""
    roots, seeds = _roots_and_seeds("backward", tensors, grad_tensors)
    try:
        if inputs is None:
            _run_backward(roots, seeds, bool(retain_graph), accumulate=True)
        else:
            inputs = _check_inputs("backward", inputs)
            grads = _run_backward(roots, seeds, bool(retain_graph), accumulate=False,
                                  capture=inputs)
            for tensor in inputs:
                if id(tensor) in grads:
                    _accumulate(tensor, grads[id(tensor)], set())
        while _callbacks.queued:
            _callbacks.queued.pop(0)()
    finally:
        _callbacks.queued.clear()


class _Callbacks(threading.local):
    """Functions to call once the running backward pass is over, per thread."""

    def __init__(self) -> None:
        self.queued: list = []


_callbacks = _Callbacks()


def queue_callback(callback: Any) -> None:
    """Call `callback()` when the backward pass now running has accumulated every gradient (as
    PyTorch's engine `queue_callback`): DistributedDataParallel averages the gradients there.
    Called from a hook during `backward()`."""
    _callbacks.queued.append(callback)


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool | None = None, materialize_grads: bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, as a tuple of tensors, like
    `torch.autograd.grad`; no `.grad` is touched. An input that `outputs` do not depend on is
    an error unless `allow_unused=True` (then None, or zeros with `materialize_grads=True`)."""
    if create_graph:
        raise NotImplementedError("autograd.grad: create_graph=True (differentiating a gradient) "
                                  "is not supported: minigrad's backward runs on arrays")
    roots, seeds = _roots_and_seeds("grad", outputs, grad_outputs)
    one = isinstance(inputs, Tensor)
    inputs = _check_inputs("grad", [inputs] if one else inputs)
    grads = _run_backward(roots, seeds, bool(retain_graph), accumulate=False, capture=inputs)
    results = []
    for i, tensor in enumerate(inputs):
        found = grads.get(id(tensor))
        if found is None and not (allow_unused or materialize_grads):
            raise RuntimeError(f"autograd.grad: input {i} (shape {tensor.shape}) was not used to "
                               "compute the outputs; pass allow_unused=True to get None for it")
        if found is None and materialize_grads:
            found = array_module([tensor.array]).zeros_like(tensor.array)
        results.append(None if found is None else Tensor._wrap(found))
    return tuple(results)


def _roots_and_seeds(op: str, tensors: Any, grads: Any) -> tuple[list, list]:
    roots = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grads is None or isinstance(grads, Tensor) or hasattr(grads, "shape"):
        grads = [grads] * len(roots) if grads is None else [grads]
    grads = list(grads)
    if len(grads) != len(roots) or not roots:
        raise ValueError(f"{op}: got {len(roots)} output tensors and {len(grads)} gradients for "
                         "them; give one gradient (or None) per output")
    seeds = []
    for root, gradient in zip(roots, grads):
        if not isinstance(root, Tensor):
            raise TypeError(f"{op}: outputs must be tensors, got {type(root).__name__}")
        seeds.append(_initial_gradient(root, gradient, array_module([root.array])))
    return roots, seeds


def _check_inputs(op: str, inputs: Any) -> list:
    inputs = list(inputs)
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, Tensor) or not tensor._requires_grad:
            raise RuntimeError(f"{op}: input {i} ({describe(tensor)}) does not require grad; "
                               "gradients exist only for tensors that require grad")
    return inputs


def _run_backward(roots: list, seeds: list, retain_graph: bool, accumulate: bool,
                  capture: Sequence[Tensor] = ()) -> dict[int, Any]:
    """The backward pass from `roots`: each node's gradient is complete before it is used (the
    reverse topological order), its hooks run on it, then it goes to the node's backward, or
    into a leaf's `.grad` when `accumulate`. Returns the gradients of the `capture` tensors."""
    grads: dict[int, Any] = {}
    for root, seed in zip(roots, seeds):
        previous = grads.get(id(root))
        grads[id(root)] = seed if previous is None else previous + seed
    handed_to_leaves: set[int] = {id(seed) for seed in seeds}
    wanted = {id(t) for t in capture}
    captured: dict[int, Any] = {}
    for node in _reverse_topological_order(roots):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        if node._hooks:
            grad = _run_hooks(node, grad)
        if id(node) in wanted:
            captured[id(node)] = grad
        ctx = node._ctx
        if ctx is None:
            if accumulate:
                _accumulate(node, grad, handed_to_leaves)
            continue
        if ctx.freed:
            raise RuntimeError(_SECOND_BACKWARD)
        if ctx.versions:
            _check_versions(ctx)
        input_grads = ctx.function.backward(ctx, grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(ctx.needs_input_grad):
            raise RuntimeError(
                f"{op_name(ctx.function)}: backward returned {len(input_grads)} gradients "
                f"for {len(ctx.needs_input_grad)} inputs"
            )
        if _anomaly.enabled:
            _check_finite(ctx, input_grads)
        for parent, input_grad in zip(ctx.parents, input_grads):
            if parent is None or input_grad is None:
                continue
            input_grad = _fit(input_grad, parent, ctx.function)
            previous = grads.get(id(parent))
            grads[id(parent)] = (input_grad if previous is None
                                 else unscalar(previous + input_grad))
        if not retain_graph:
            ctx.free()
    return captured


def _run_hooks(node: Tensor, grad: Any) -> Any:
    """The tensor's hooks, in the order they were registered: a hook that returns a tensor
    replaces the gradient. `retain_grad` is the last: it keeps what the others made."""
    for hook in list(node._hooks.values()):
        if hook is RETAIN_GRAD:
            _accumulate(node, grad, set())
            continue
        replaced = hook(Tensor._wrap(grad))
        if replaced is not None:
            replaced = replaced.array if isinstance(replaced, Tensor) else replaced
            if tuple(replaced.shape) != node.shape:
                raise RuntimeError(f"register_hook: a hook returned a gradient of shape "
                                   f"{tuple(replaced.shape)} for a tensor of shape {node.shape}")
            grad = replaced
    return grad


RETAIN_GRAD = "retain_grad"  # the hook (and its key) `Tensor.retain_grad()` adds


def _changed_in_place(ctx: Context, shape: tuple, version: int, now: int) -> str:
    return (f"backward: a tensor of shape {shape} that {op_name(ctx.function)} saved for its "
            f"backward was changed in place afterwards (it is at version {now}; "
            f"{op_name(ctx.function)} saved version {version}), so its gradient would be wrong. "
            "Change a copy (x = x + 1, x.clone()) instead, or make the change before the "
            "forward pass uses the tensor.")


def _initial_gradient(root: Tensor, gradient: Any, xp: Any) -> Any:
    if not root._requires_grad:
        if root.dtype.kind not in "fc":
            raise RuntimeError(f"backward: a {root.dtype} tensor has no gradient; only "
                               "floating-point tensors can require grad")
        raise RuntimeError("backward: the tensor does not require grad and has no graph; "
                           "create the inputs with requires_grad=True")
    if gradient is None:
        if root.array.size != 1:
            raise RuntimeError(f"backward: grad can be implicitly created only for scalar outputs, "
                               f"got shape {root.shape}; pass gradient= of that shape")
        return xp.ones_like(root.array)
    gradient = gradient.array if isinstance(gradient, Tensor) else xp.asarray(gradient)
    if tuple(gradient.shape) != root.shape:
        raise ValueError(f"backward: gradient has shape {tuple(gradient.shape)} but the tensor "
                         f"has shape {root.shape}")
    if xp is np and gradient.dtype == root.dtype:
        # No copy (it cost a tenth of a GroupNorm step), but a read-only view: nothing in the
        # backward pass may write into the caller's array, and a leaf given it copies it.
        view = gradient.view()
        view.flags.writeable = False
        return view
    return gradient.astype(root.dtype)  # a copy: the engine never writes into the caller's array


def _fit(grad: Any, parent: Tensor, function: type[Function]) -> Any:
    """Bring an op's input gradient to its input's shape and dtype (broadcasting, promotion)."""
    data = parent.array
    if not hasattr(grad, "shape"):
        grad = array_module([data]).asarray(grad, dtype=data.dtype)
    if grad.shape != data.shape:
        try:
            grad = unbroadcast(grad, data.shape)
        except ValueError as error:
            raise RuntimeError(f"{op_name(function)}: backward gave a {error}") from None
    if grad.dtype != data.dtype:
        grad = grad.astype(data.dtype)
    return unscalar(grad)


def unscalar(grad: Any) -> Any:
    """NumPy turns 0-d results into scalars; tensors and gradients hold arrays (flags, +=)."""
    return np.asarray(grad) if isinstance(grad, np.generic) else grad


def _accumulate(leaf: Tensor, grad: Any, handed_to_leaves: set[int]) -> None:
    """Add into `leaf.grad` like PyTorch; never let two gradients share memory."""
    if leaf.grad is None:
        _first_gradient(leaf, grad, handed_to_leaves)
    else:
        leaf.grad.array += grad
    if leaf._post_accumulate_hooks:
        for hook in list(leaf._post_accumulate_hooks.values()):
            hook(leaf)


def _first_gradient(leaf: Tensor, grad: Any, handed_to_leaves: set[int]) -> None:
    # A view is kept when the array it views is one no other leaf got (kernels return their
    # channels-last results as such views; copying them cost a tenth of a max-pool step).
    # CuPy's flags have no `writeable`: its arrays always are.
    owner = grad if grad.base is None else grad.base
    if (id(grad) in handed_to_leaves or id(owner) in handed_to_leaves
            or not getattr(owner, "flags", grad.flags).owndata
            or not getattr(grad.flags, "writeable", True)):
        grad = owner = grad.copy(order="K")  # keeps a channels-last gradient channels-last
    handed_to_leaves.update((id(grad), id(owner)))
    leaf.grad = Tensor._wrap(grad)


def _reverse_topological_order(roots: list[Tensor]) -> Iterator[Tensor]:
    """Every tensor that requires grad reachable from the roots, each after all that use it.

    An explicit stack instead of recursion: a chain of 100,000 ops must not hit Python's
    recursion limit.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.parents:
                if parent is not None and id(parent) not in visited:
                    stack.append((parent, False))
    return reversed(order)


# Imported last: tensor.py and this module use each other, and the ops need `Function` defined
# before tensor.py imports them.
from minigrad.tensor import Tensor  # noqa: E402
