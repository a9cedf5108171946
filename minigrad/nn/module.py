"""`Module`, `Parameter` and the containers: the PyTorch module system, names and all.

A Module keeps what it is made of in three ordered registries, filled by plain attribute
assignment: `_parameters` (Parameters), `_buffers` (tensors that are state but not learned, such
as BatchNorm's running mean) and `_modules` (sub-Modules). Every walk over a model (parameters(),
state_dict(), train(), repr) follows those registries in registration order, so parameter names
and state-dict keys are PyTorch's and a PyTorch checkpoint of the same architecture loads.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from minigrad.autograd import no_grad
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


class Module:
    """Base class of every layer and model: subclass it, assign layers and Parameters as
    attributes in `__init__`, and write `forward`."""

    # Buffers a checkpoint may lack (PyTorch's own checkpoints before 0.4.1 lack
    # num_batches_tracked); `load_state_dict` then keeps the current value.
    _optional_buffers: tuple[str, ...] = ()

    def __init__(self) -> None:
        for registry in _REGISTRIES:
            object.__setattr__(self, registry, OrderedDict())
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define "
                                  "forward(self, ...) in the subclass")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

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
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"cannot assign {type(module).__name__} as child module '{name}': "
                            "a Module or None is expected")
        self._register("_modules", name, module)

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
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every submodule, depth first in registration order; a module
        reachable twice is listed once, under its first name."""
        return self._walk(prefix, set())

    def _walk(self, prefix: str, seen: set[int]) -> Iterator[tuple[str, Module]]:
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child._walk(_join(prefix, name), seen)

    def modules(self) -> Iterator[Module]:
        return (module for _, module in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct submodules, each once."""
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        return (child for _, child in self.named_children())

    def named_parameters(self, prefix: str = "",
                         recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter), each parameter once even if shared between modules, so
        an optimizer never updates one twice."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (param for _, param in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "",
                      recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        return (buffer for _, buffer in self.named_buffers(recurse=recurse))

    def _named_members(self, registry: str, prefix: str,
                       recurse: bool) -> Iterator[tuple[str, Any]]:
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        seen: set[int] = set()
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is not None and id(value) not in seen:
                    seen.add(id(value))
                    yield _join(module_prefix, name), value

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
