"""`Optimizer`: parameter groups, per-parameter state, `zero_grad`, `step` and state dicts.

The layout is PyTorch's, so a training loop written for `torch.optim` reads the same here:
`param_groups` is a list of dicts (the tensors under 'params', the options beside them) and
`state[p]` a dict per parameter. A subclass supplies `_check` (its argument checks) and
`_update` (one parameter's update, on arrays); the base class does everything else.

Updates work on `p.array` in place through the array module of the data (NumPy, or CuPy on the
GPU), so they build no graph and keep every state array on its parameter's device.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from minigrad.autograd import array_module, enable_grad
from minigrad.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]
StateDict = dict[str, Any]


class Optimizer:
    """Base class: holds parameter groups and state; subclasses define one parameter's update.

    `params` is an iterable of Tensors, or of dicts with 'params' (Tensors) and any options
    that override `defaults` for that group (e.g. a smaller lr for a pretrained backbone).
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise ValueError(f"{self._name}: params must be an iterable of Tensors or dicts, "
                             "got a single Tensor; wrap it in a list")
        self._check(defaults)
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = self._ordered(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    # ---------------------------------------------------------------- what subclasses define
    def _check(self, options: dict[str, Any]) -> None:
        """Raise ValueError for invalid options; run on the defaults and on every group."""

    def _update(self, param: Any, grad: Any, state: dict[str, Any], group: dict[str, Any],
                xp: Any) -> None:
        """Update the array `param` in place from `grad`; `xp` is numpy or cupy.

        `grad` is the parameter's own gradient array: compute new arrays from it, never
        change it in place (the user may still read `p.grad`).
        """
        raise NotImplementedError

    def _require_nonnegative(self, options: dict[str, Any], *names: str) -> None:
        """The check every optimizer makes of lr, weight decay, ...: each option >= 0."""
        for name in names:
            if not options[name] >= 0:
                raise ValueError(f"{self._name}: invalid {name} {options[name]!r}: "
                                 "must be >= 0")

    # ---------------------------------------------------------------------- param groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (the defaults fill the rest)."""
        if not isinstance(param_group, dict):
            raise ValueError(f"{self._name}: a param group must be a dict, "
                             f"got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a param group needs a 'params' entry")
        group = {**self.defaults, **param_group}
        group["params"] = self._param_list(param_group["params"])
        self._check(group)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in group["params"]}) < len(group["params"]):
            raise ValueError(f"{self._name}: a param group holds the same parameter twice")
        if any(id(p) in taken for p in group["params"]):
            raise ValueError(f"{self._name}: some parameters appear in more than one group")
        self.param_groups.append(group)

    def _param_list(self, params: Any) -> list[Tensor]:
        """The group's tensors as a list, each checked to be a floating-point leaf.

        A group may be empty (PyTorch allows it: e.g. a 'no weight decay' group that a model
        happens not to need); only an optimizer with no groups at all is refused.
        """
        params = [params] if isinstance(params, Tensor) else self._ordered(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise ValueError(f"{self._name}: can only optimize Tensors, but parameter {i} "
                                 f"is a {type(p).__name__}")
            if p.dtype.kind != "f":
                raise ValueError(f"{self._name}: can only optimize floating-point tensors, "
                                 f"parameter {i} is {p.dtype}")
            if not p.is_leaf:
                raise ValueError(f"{self._name}: can't optimize a non-leaf tensor (parameter "
                                 f"{i} was computed by {p.grad_fn}); pass the leaf instead")
        return params

    def _ordered(self, params: Iterable[Any]) -> list[Any]:
        """A list; sets are refused because state dicts identify parameters by position."""
        if isinstance(params, (set, frozenset)):
            raise ValueError(f"{self._name}: params must be an ordered collection (a list), "
                             "not a set: state dicts identify parameters by position")
        return list(params)

    # ------------------------------------------------------------------------ the update
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients before the next backward (which would otherwise add to them).

        `set_to_none=True` (PyTorch's default) drops the arrays, so a parameter that gets no
        gradient in the next step is skipped instead of updated with a zero gradient (which
        momentum and weight decay would still move); False zeroes them in place.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.array[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return `closure()` if one is given.

        Parameters whose `.grad` is None, or that do not require grad (frozen), are skipped
        and get no state.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or not p.requires_grad:
                    continue
                grad = p.grad.array
                if grad.shape != p.array.shape:
                    raise ValueError(f"{self._name}.step: a gradient of shape {grad.shape} for "
                                     f"a parameter of shape {p.array.shape}")
                self._update(p.array, grad, self.state[p], group, array_module([p.array, grad]))
                p._counter.value += 1  # changed in place: a graph that saved p must not reuse it
        return loss

    # ------------------------------------------------------------------------ state dicts
    def state_dict(self) -> StateDict:
        """A snapshot of the state in PyTorch's layout, with parameters numbered in order.

        `{'state': {index: {name: value}}, 'param_groups': [{option: value, 'params':
        [index, ...]}]}`. Arrays are copied to the host as NumPy arrays, so the snapshot can be
        saved (e.g. to .npz) and stays as it was while training goes on.
        """
        index = {id(p): i for i, p in enumerate(self._all_params())}
        groups = [{**{k: copy.deepcopy(v) for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {index[id(p)]: {k: _to_host(v) for k, v in s.items()}
                 for p, s in self.state.items() if s and id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: StateDict) -> None:
        """Restore a `state_dict()` snapshot (possibly from PyTorch, arrays as NumPy arrays).

        Groups must match in number and size; parameters are matched by position. Arrays are
        copied to each parameter's device and dtype, 'step' counters become Python ints.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{self._name}.load_state_dict: the state dict has "
                             f"{len(saved_groups)} param groups, this optimizer "
                             f"{len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{self._name}.load_state_dict: param group {i} has "
                                 f"{len(saved['params'])} parameters in the state dict, "
                                 f"{len(group['params'])} in this optimizer")
        params = {index: p for saved, group in zip(saved_groups, self.param_groups)
                  for index, p in zip(saved["params"], group["params"])}
        new_groups = [self._loaded_group(saved, group)
                      for saved, group in zip(saved_groups, self.param_groups)]
        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for index, values in state_dict["state"].items():
            param = params[int(index)]
            state[param] = {k: _to_device(k, v, param) for k, v in values.items()}
        self.state, self.param_groups = state, new_groups

    def _loaded_group(self, saved: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
        """A saved group's options (defaults where it lacks one) around this group's params."""
        options = {k: _plain(v) for k, v in saved.items() if k != "params"}
        loaded = {**self.defaults, **options, "params": group["params"]}
        self._check(loaded)
        return loaded

    def _all_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


def _to_host(value: Any) -> Any:
    """A copy on the host: NumPy arrays for NumPy and CuPy arrays, other values as they are."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if hasattr(value, "__cuda_array_interface__"):
        return value.get()
    return value


def _to_device(key: str, value: Any, param: Tensor) -> Any:
    """A state value ready for `param`'s updates: arrays copied to its device and dtype.

    'step' is a count (PyTorch keeps it as a float32 tensor): it becomes an int, so bias
    corrections such as `beta ** step` are computed in double precision.
    """
    if key == "step":
        return int(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        xp = array_module([param.array])
        return xp.array(_to_host(value) if xp is np else value, dtype=param.dtype, copy=True)
    return value


def _plain(value: Any) -> Any:
    """An option as Python values: NumPy scalars to numbers, lists (e.g. from JSON) to tuples."""
    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value
