"""`Module`, `Parameter` and the containers: the PyTorch module system, names and all.

A Module keeps what it is made of in three ordered registries, filled by plain attribute
assignment: `_parameters` (Parameters), `_buffers` (tensors that are state but not learned, such
as BatchNorm's running mean) and `_modules` (sub-Modules). Every walk over a model (parameters(),
state_dict(), train(), repr) follows those registries in registration order, so parameter names
and state-dict keys are PyTorch's and a PyTorch checkpoint of the same architecture loads.
"""

from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from minigrad.autograd import Function, is_grad_enabled, no_grad
from minigrad.hooks import RemovableHandle
from minigrad.tensor import Tensor

_REGISTRIES = ("_parameters", "_buffers", "_modules")


class Parameter(Tensor):
    """A tensor a Module learns: assigned as a Module attribute, it is registered as a parameter.

    Holds a copy of `data` and requires grad unless told otherwise, as `torch.nn.Parameter`.
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What `load_state_dict` could not match: two lists of keys, as PyTorch returns them."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


# The hook dicts of every Module: {handle id: hook}, plus {handle id: True} flag dicts. Ordered
# dicts: they keep registration order, `prepend` moves a key to the front, and (unlike a plain
# dict) they can be weakly referenced by a handle.
_HOOK_DICTS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
               "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_backward_hooks",
               "_backward_pre_hooks")


class Module:
    """Base class of every layer and model: subclass it, assign layers and Parameters as
    attributes in `__init__`, and write `forward`."""

    # Buffers a checkpoint may lack (PyTorch's own checkpoints before 0.4.1 lack
    # num_batches_tracked); `load_state_dict` then keeps the current value.
    _optional_buffers: tuple[str, ...] = ()

    def __init__(self) -> None:
        for registry in (*_REGISTRIES, *_HOOK_DICTS):
            object.__setattr__(self, registry, OrderedDict())
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define "
                                  "forward(self, ...) in the subclass")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """`forward`, with the module's hooks around it when it has any (PyTorch's order: forward
        pre-hooks, backward hooks' input side, forward, forward hooks, backward hooks' output
        side). Read from __dict__: a module whose __init__ skipped Module.__init__ has none."""
        state = self.__dict__
        if not (state.get("_forward_pre_hooks") or state.get("_forward_hooks")
                or state.get("_backward_hooks") or state.get("_backward_pre_hooks")):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        result = None
        called: set[int] = set()  # the always_call hooks that ran before an error
        try:
            for hook_id, hook in _live(self._forward_pre_hooks):
                if hook_id in self._forward_pre_hooks_with_kwargs:
                    replaced = hook(self, args, kwargs)
                    if replaced is not None:
                        if not (isinstance(replaced, tuple) and len(replaced) == 2):
                            raise RuntimeError("forward pre-hook must return None or a tuple of "
                                               f"(new_args, new_kwargs), but got {replaced}.")
                        args, kwargs = replaced
                else:
                    replaced = hook(self, args)
                    if replaced is not None:
                        args = replaced if isinstance(replaced, tuple) else (replaced,)
            backward_hook = None
            if self._backward_hooks or self._backward_pre_hooks:
                backward_hook = _BackwardHook(self, list(self._backward_hooks.values()),
                                              list(self._backward_pre_hooks.values()))
                args = backward_hook.setup_input_hook(args)
            result = self.forward(*args, **kwargs)
            for hook_id, hook in _live(self._forward_hooks):
                if hook_id in self._forward_hooks_always_called:
                    called.add(hook_id)
                replaced = self._run_forward_hook(hook_id, hook, args, kwargs, result)
                if replaced is not None:
                    result = replaced
            if backward_hook is not None:
                if not isinstance(result, (Tensor, tuple)):
                    warnings.warn("For backward hooks to be called, module output should be a "
                                  "Tensor or a tuple of Tensors but received "
                                  f"{type(result)}", stacklevel=3)
                result = backward_hook.setup_output_hook(result)
            return result
        except Exception:
            # always_call hooks run even when forward (or another hook) raised; an error of
            # theirs must not hide the one that is being raised
            for hook_id, hook in _live(self._forward_hooks):
                if hook_id not in self._forward_hooks_always_called or hook_id in called:
                    continue
                try:
                    replaced = self._run_forward_hook(hook_id, hook, args, kwargs, result)
                    if replaced is not None:
                        result = replaced
                except Exception as error:
                    warnings.warn("module forward hook with ``always_call=True`` raised an "
                                  "exception that was silenced as another error was raised in "
                                  f"forward: {error}", stacklevel=3)
            raise

    def _run_forward_hook(self, hook_id: int, hook: Callable, args: tuple, kwargs: dict,
                          result: Any) -> Any:
        if hook_id in self._forward_hooks_with_kwargs:
            return hook(self, args, kwargs, result)
        return hook(self, args, result)

    # ------------------------------------------------------------------ hooks
    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call `hook(module, args)` before every forward; a result other than None replaces
        the positional arguments (a single value is wrapped in a tuple). With `with_kwargs`,
        `hook(module, args, kwargs)` returns None or a new `(args, kwargs)` pair. `prepend`
        runs it before the hooks already registered."""
        handle = RemovableHandle(self._forward_pre_hooks,
                                 extra_dict=self._forward_pre_hooks_with_kwargs)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call `hook(module, args, output)` after every forward (`hook(module, args, kwargs,
        output)` with `with_kwargs`); a result other than None replaces the output. With
        `always_call`, it also runs when forward raises (output None), before the error goes
        on. Hooks are not part of the state dict."""
        handle = RemovableHandle(self._forward_hooks,
                                 extra_dict=[self._forward_hooks_with_kwargs,
                                             self._forward_hooks_always_called])
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_hook(self, hook: Callable[..., Any],
                                    prepend: bool = False) -> RemovableHandle:
        """Call `hook(module, grad_input, grad_output)` in backward, once the gradients with
        respect to the module's positional inputs are known; both are tuples (None for an
        argument that is not a tensor). A tuple returned (of gradients or None) replaces
        grad_input for the rest of backward. When no input requires grad it is called with
        grad_input all None once the output gradients are known, and may only return None.
        Forward then sees views of its input tensors and the caller views of its outputs."""
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_pre_hook(self, hook: Callable[..., Any],
                                        prepend: bool = False) -> RemovableHandle:
        """Call `hook(module, grad_output)` in backward once the gradients with respect to
        the module's outputs are known, before they go into the module; a tuple returned
        replaces grad_output."""
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    # ------------------------------------------------------------------ registration
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register `param` (None keeps the name, e.g. `bias` of a layer built without one)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter '{name}': "
                            "a Parameter or None is expected (wrap it: nn.Parameter(t))")
        self._register("_parameters", name, param)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Register state that is saved in `state_dict` but not learned (no gradient)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer '{name}': "
                            "a Tensor or None is expected")
        self._register("_buffers", name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a child module (what `self.name = module` does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"cannot assign {type(module).__name__} as child module '{name}': "
                            "a Module or None is expected")
        self._register("_modules", name, module)

    def register_module(self, name: str, module: Module | None) -> None:
        """An alias of `add_module`, as in PyTorch."""
        self.add_module(name, module)

    def _register(self, registry: str, name: str, value: Any) -> None:
        """Put `value` under `name` in one registry (where a name already there keeps its
        place in the order) and remove the name from everywhere else."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign '{name}' before Module.__init__() call; call "
                                 "super().__init__() first")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"invalid name {name!r}: a non-empty string without '.' is expected")
        for other in _REGISTRIES:
            if other != registry:
                self.__dict__[other].pop(name, None)
        self.__dict__.pop(name, None)
        self.__dict__[registry][name] = value

    def __setattr__(self, name: str, value: Any) -> None:
        registered = self.__dict__.get
        if isinstance(value, Parameter) or name in registered("_parameters", ()):
            self.register_parameter(name, value)
        elif isinstance(value, Module) or name in registered("_modules", ()):
            self.add_module(name, value)
        elif name in registered("_buffers", ()):
            self.register_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        """Called only when normal lookup fails: the registries hold parameters and children."""
        for registry in _REGISTRIES:
            entries = self.__dict__.get(registry, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in _REGISTRIES:
            if name in self.__dict__[registry]:
                del self.__dict__[registry][name]
                return
        object.__delattr__(self, name)

    # ------------------------------------------------------------------ walking the tree
    def named_modules(self, memo: set[Module] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """This module (named `prefix`, '' by default) and every submodule, depth first in
        registration order. A module reachable twice is listed once, under its first name,
        unless `remove_duplicate=False`; `memo` is the set of modules already listed."""
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, _join(prefix, name), remove_duplicate)

    def modules(self, remove_duplicate: bool = True) -> Iterator[Module]:
        return (module for _, module in self.named_modules(remove_duplicate=remove_duplicate))

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct submodules, each once."""
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        return (child for _, child in self.named_children())

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter), each parameter once even if shared between modules (so
        an optimizer never updates one twice) unless `remove_duplicate=False`."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (param for _, param in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        return (buffer for _, buffer in self.named_buffers(recurse=recurse))

    def _named_members(self, registry: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[tuple[str, Any]]:
        modules = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                   if recurse else iter([(prefix, self)]))
        seen: set[int] = set()
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is not None and id(value) not in seen:
                    if remove_duplicate:
                        seen.add(id(value))
                    yield _join(module_prefix, name), value

    def get_submodule(self, target: str) -> Module:
        """The submodule at a dotted path such as "features.0" ('' is the module itself);
        an AttributeError names the first part of the path that is missing or not a Module."""
        if target == "":
            return self
        module = self
        for item in target.split("."):
            if not hasattr(module, item):
                raise AttributeError(module._get_name() + " has no attribute `" + item + "`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return module

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Put `module` at a dotted path, replacing what is there (or, unless `strict`, adding
        it to the existing parent): e.g. swap a layer of a built model."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        atoms = target.split(".")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        parent = self.get_submodule(".".join(atoms[:-1]))
        if strict and not hasattr(parent, atoms[-1]):
            raise AttributeError(parent._get_name() + " has no attribute `" + atoms[-1] + "`")
        if hasattr(parent, atoms[-1]) and not isinstance(getattr(parent, atoms[-1]), Module):
            raise AttributeError("`" + atoms[-1] + "` is not an nn.Module")
        setattr(parent, atoms[-1], module)

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path such as "features.0.weight"."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(module._get_name() + " has no attribute `" + name + "`")
        param = getattr(module, name)
        if not isinstance(param, Parameter):
            raise AttributeError("`" + name + "` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at a dotted path such as "bn.running_mean"."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(module._get_name() + " has no attribute `" + name + "`")
        if name not in module._buffers:
            raise AttributeError("`" + name + "` is not a buffer")
        return getattr(module, name)

    def _get_name(self) -> str:
        return type(self).__name__

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call `fn` on every submodule, then on this one (e.g. a custom initialisation)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and gradients
    def train(self, mode: bool = True) -> Module:
        """Set training mode here and in every submodule (Dropout and BatchNorm read it)."""
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients backward() accumulates; None (the default) frees their memory."""
        for param in self.parameters():
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.zero_()

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Every parameter and buffer under PyTorch's key, detached (sharing memory)."""
        return OrderedDict((key, tensor.detach()) for key, tensor, _ in self._state_entries())

    def _state_entries(self, prefix: str = "") -> Iterator[tuple[str, Tensor, bool]]:
        """(key, tensor, may be missing from a checkpoint), in state_dict order. Unlike
        named_parameters, a module shared under two names appears under both, as in PyTorch."""
        for registry in (self._parameters, self._buffers):
            for name, tensor in registry.items():
                if tensor is not None:
                    yield prefix + name, tensor, name in self._optional_buffers
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_entries(f"{prefix}{name}.")

    def load_state_dict(self, state_dict: Mapping[str, Any],
                        strict: bool = True) -> IncompatibleKeys:
        """Copy a checkpoint's values (Tensors or arrays) into the parameters and buffers.

        Values are copied in place and cast to each target's dtype, so parameters stay the
        same objects and an optimizer built before keeps working. Everything is checked first:
        a wrong shape, or (when strict) a missing or unexpected key, raises a RuntimeError
        listing each problem, and nothing is changed.
        """
        targets = {key: (tensor, optional) for key, tensor, optional in self._state_entries()}
        missing = [key for key, (_, optional) in targets.items()
                   if key not in state_dict and not optional]
        unexpected = [key for key in state_dict if key not in targets]
        problems = [_size_mismatch(key, value, targets[key][0])
                    for key, value in state_dict.items()
                    if key in targets and _shape(value) != targets[key][0].shape]
        if strict:
            problems += _key_problems(missing, unexpected)
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(problems))
        with no_grad():
            for key, value in state_dict.items():
                if key in targets:
                    targets[key][0].copy_(value.array if isinstance(value, Tensor) else value)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ devices and dtypes
    def to(self, target: Any) -> Module:
        """Move every parameter and buffer to a device ("cupy", "numpy", ...), or cast the
        floating-point ones to a dtype (integer buffers such as num_batches_tracked keep
        theirs). Parameters stay the same objects, so build the optimizer before or after."""
        casting = _is_dtype(target)
        with no_grad():
            for tensor in itertools.chain(self.parameters(), self.buffers()):
                if casting and tensor.dtype.kind != "f":
                    continue
                tensor.array = tensor.to(target).array
                if tensor.grad is not None:
                    tensor.grad = tensor.grad.to(target)
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The arguments shown between the parentheses of this module's repr."""
        return ""

    def __repr__(self) -> str:
        """PyTorch's layout: `Name(extra)` alone, or one `(name): child` line per child."""
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): {_indent(repr(child))}" for name, child in self._modules.items()]
        if len(lines) == 1 and not children:
            return f"{type(self).__name__}({lines[0]})"
        return _block(type(self).__name__, lines + children)


def _live(hooks: OrderedDict) -> Iterator[tuple[int, Any]]:
    """(id, hook) in order, from a snapshot: a hook may remove itself (or another) while they
    run; one removed before its turn is skipped."""
    for hook_id, hook in list(hooks.items()):
        if hook_id in hooks:
            yield hook_id, hook


# ------------------------------------------------------------------------------ backward hooks


class _BackwardHook:
    """The full backward (pre-)hooks of one module call, as PyTorch's `BackwardHook`.

    The engine runs one node per tensor, but a hook wants the gradients of all the inputs (or
    outputs) at once. So the tensors of each side that require grad meet at a hub, a dummy
    scalar `hub = _HookHub(t1, t2, ...)`, and the module sees (or its caller gets) the views
    `_HookSlot(hub, t1), ...` in their place. In backward each slot leaves its gradient in a
    list shared with the hub and hands the hub a dummy zero; the hub depends on every slot, so
    the engine runs it after all of them: it has the whole tuple, runs the hooks, and returns
    the (possibly replaced) gradients to t1, t2, .... Everything in the module depends on its
    inputs' slots, so the output side's hub runs first and its gradients are known by the
    time the input side's hub calls the hooks. This works for any module; nothing in the
    engine knows about modules.
    """

    def __init__(self, module: Module, hooks: list, pre_hooks: list) -> None:
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.grad_outputs: tuple | None = None  # set by the output side, used by the input side
        self.n_inputs = self.n_outputs = -1
        self.input_tensors_index: list[int] | None = None  # None: no input requires grad
        self.output_tensors_index: list[int] | None = None
        self.input_hub: Tensor | None = None

    def setup_input_hook(self, args: tuple) -> tuple:
        args, self.input_tensors_index, self.input_hub = self._route(args, self._input_side)
        self.n_inputs = len(args)
        return args

    def setup_output_hook(self, result: Any) -> Any:
        outputs = result if isinstance(result, tuple) else (result,)
        # The input hub also hangs off the output hub, so that a pre-hook that drops every
        # output gradient (None) still has the input side fire, with zeros, as in PyTorch.
        outputs, self.output_tensors_index, _ = self._route(outputs, self._output_side,
                                                            self.input_hub)
        self.n_outputs = len(outputs)
        return outputs if isinstance(result, tuple) else outputs[0]

    def _route(self, values: tuple, side: Callable, extra: Tensor | None = None) -> tuple:
        index = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
        if not (index and is_grad_enabled()):
            return values, None, None
        arrived: list = [None] * len(index)
        parents = [values[i] for i in index] + ([extra] if extra is not None else [])
        hub = _HookHub.apply(*parents, side=side, values=values, index=index, arrived=arrived)
        routed = list(values)
        for slot, i in enumerate(index):
            routed[i] = _HookSlot.apply(hub, values[i], slot=slot, arrived=arrived)
        return (tuple(routed) if type(values) is tuple else type(values)(*routed)), index, hub

    def _input_side(self, grads: list, values: tuple, index: list, xp: Any) -> list:
        """The hub of the inputs: call the hooks with grad_input (zeros for a tensor whose
        gradient did not come, None for an argument that is not a tensor) and grad_output."""
        grads = [xp.zeros_like(values[i].array) if g is None else g for i, g in zip(index, grads)]
        if self.grad_outputs is None:
            return grads  # reached without passing through the outputs: no hook, as PyTorch
        grad_input = [None] * self.n_inputs
        for i, value in enumerate(values):
            if isinstance(value, Tensor):
                grad_input[i] = Tensor._wrap(xp.zeros_like(value.array))
        for i, g in zip(index, grads):
            grad_input[i] = Tensor._wrap(g)
        result = tuple(grad_input)
        for hook in self.hooks:
            replaced = hook(self.module, result, self.grad_outputs)
            if replaced is not None:
                result = _check_count(replaced, len(result), "Backward hook", "grad_input")
        self.grad_outputs = None
        return [_as_grad(result[i], values[i], xp, self.module, f"grad_input[{i}]")
                for i in index]

    def _output_side(self, grads: list, values: tuple, index: list, xp: Any) -> list:
        """The hub of the outputs: keep grad_output (None where none came) for the input side,
        after the pre-hooks; call the hooks here when no input requires grad."""
        grad_output = [None] * self.n_outputs
        for i, g in zip(index, grads):
            grad_output[i] = None if g is None else Tensor._wrap(g)
        self.grad_outputs = tuple(grad_output)
        for hook in self.pre_hooks:
            replaced = hook(self.module, self.grad_outputs)
            if replaced is not None:
                self.grad_outputs = _check_count(replaced, len(self.grad_outputs),
                                                 "Backward pre hook", "grad_output")
        grad_output = self.grad_outputs
        if self.input_tensors_index is None:
            warnings.warn("Full backward hook is firing when gradients are computed with respect "
                          "to module outputs since no inputs require gradients. See "
                          "https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html"
                          "#torch.nn.Module.register_full_backward_hook for more details.",
                          stacklevel=2)
            grad_input = (None,) * self.n_inputs
            for hook in self.hooks:
                replaced = hook(self.module, grad_input, self.grad_outputs)
                if replaced is not None and not (isinstance(replaced, tuple)
                                                 and all(g is None for g in replaced)):
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
            self.grad_outputs = None
        out = [_as_grad(grad_output[i], values[i], xp, self.module, f"grad_output[{i}]")
               for i in index]
        if self.input_hub is not None:
            # the dummy that wakes the input side when nothing goes into the module
            out.append(xp.zeros(()) if all(g is None for g in out) else None)
        return out


def _check_count(replaced: Any, expected: int, who: str, what: str) -> tuple:
    if not isinstance(replaced, (tuple, list)):
        raise RuntimeError(f"{who} returned a {type(replaced).__name__}, but a tuple of "
                           f"{what} (a gradient or None for each) is expected")
    if len(replaced) != expected:
        raise RuntimeError(f"{who} returned an invalid number of {what}, got {len(replaced)}, "
                           f"but expected {expected}")
    return tuple(replaced)


def _as_grad(grad: Any, like: Tensor, xp: Any, module: Module, what: str) -> Any:
    """A hook's gradient (Tensor, array or None) as the array the engine passes on."""
    if grad is None:
        return None
    grad = grad.array if isinstance(grad, Tensor) else xp.asarray(grad)
    if tuple(grad.shape) != like.shape:
        raise RuntimeError(f"backward hook of {type(module).__name__}: {what} has shape "
                           f"{tuple(grad.shape)}, but the tensor it is for has shape "
                           f"{like.shape}")
    return grad


class _HookHub(Function):
    """Where the gradients of one side of a hooked module meet (see `_BackwardHook`)."""

    name = "backward hook"

    @staticmethod
    def forward(ctx: Any, *arrays: Any, side: Callable, values: tuple, index: list,
                arrived: list) -> Any:
        ctx.side, ctx.values, ctx.index, ctx.arrived = side, values, index, arrived
        return ctx.xp.zeros((), dtype=arrays[0].dtype)

    @staticmethod
    def backward(ctx: Any, grad: Any) -> tuple:
        grads = list(ctx.arrived)
        ctx.arrived[:] = [None] * len(grads)  # ready for another backward (retain_graph)
        return tuple(ctx.side(grads, ctx.values, ctx.index, ctx.xp))


class _HookSlot(Function):
    """A view of one hooked tensor; its gradient goes to the hub, which passes it on."""

    name = "backward hook"

    @staticmethod
    def forward(ctx: Any, hub: Any, value: Any, *, slot: int, arrived: list) -> Any:
        ctx.slot, ctx.arrived = slot, arrived
        return value.view()  # a view: shares the tensor's memory and version counter

    @staticmethod
    def backward(ctx: Any, grad: Any) -> tuple:
        ctx.arrived[ctx.slot] = grad
        return ctx.xp.zeros((), dtype=grad.dtype), None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _indent(text: str) -> str:
    """Indent every line but the first by two spaces, so a nested repr lines up."""
    return text.replace("\n", "\n  ")


def _block(name: str, lines: list[str]) -> str:
    if not lines:
        return f"{name}()"
    return f"{name}(\n  " + "\n  ".join(lines) + "\n)"


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else np.shape(value)


def _size_mismatch(key: str, value: Any, target: Tensor) -> str:
    return (f"size mismatch for {key}: copying a param with shape {_shape(value)} from "
            f"checkpoint, the shape in current model is {target.shape}.")


def _key_problems(missing: list[str], unexpected: list[str]) -> list[str]:
    def quoted(keys: list[str]) -> str:
        return ", ".join(f'"{key}"' for key in keys)

    problems = []
    if unexpected:
        problems.append(f"Unexpected key(s) in state_dict: {quoted(unexpected)}.")
    if missing:
        problems.append(f"Missing key(s) in state_dict: {quoted(missing)}.")
    return problems


def _is_dtype(target: Any) -> bool:
    try:
        np.dtype(target)
    except TypeError:
        return False
    return True


# ----------------------------------------------------------------------------------- containers


class _ModuleSequence(Module):
    """Modules kept under the names "0", "1", ...: indexing, len and iteration."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> _ModuleSequence:
        self.add_module(str(len(self)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def _at(self, index: int) -> Module:
        """The module at `index`; negative indices count from the end."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {type(self).__name__} of "
                             f"length {len(self)}")
        return list(self._modules.values())[index]


class Sequential(_ModuleSequence):
    """Modules called one after another, each on the previous one's output.

    `Sequential(a, b, c)` names them "0", "1", "2"; `Sequential(OrderedDict(name=module, ...))`
    keeps the given names.
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            super().__init__()
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            super().__init__(modules)

    def __getitem__(self, index: int | slice) -> Any:
        """A slice is a Sequential keeping the original names, as in PyTorch."""
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return self._at(index)

    def forward(self, x: Any) -> Any:
        for module in self:
            x = module(x)
        return x


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters belong to the model; it has no forward of its own."""

    def __getitem__(self, index: int | slice) -> Any:
        return ModuleList(list(self)[index]) if isinstance(index, slice) else self._at(index)

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def __repr__(self) -> str:
        """PyTorch's, which folds runs of identical modules: `(0-2): 3 x ReLU()`."""
        lines, start = [], 0
        for text, run in itertools.groupby(repr(module) for module in self):
            count = len(list(run))
            head = f"({start}): " if count == 1 else f"({start}-{start + count - 1}): {count} x "
            lines.append(_indent(head + text))
            start += count
        return _block(type(self).__name__, lines)


class Identity(Module):
    """Returns its input; a placeholder where an architecture sometimes has a layer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()  # arguments are ignored, as in PyTorch

    def forward(self, x: Any) -> Any:
        return x
