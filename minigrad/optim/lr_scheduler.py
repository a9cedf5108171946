"""Learning-rate schedulers: `StepLR`, `CosineAnnealingLR` and `OneCycleLR`.

A scheduler rewrites `group['lr']` in its optimizer's param groups each time `step()` is called:
once per epoch for StepLR and CosineAnnealingLR, once per batch for OneCycleLR, always after
`optimizer.step()`. Creating one already sets the lr of step 0. The values are PyTorch's to the
last bit: the same formulas evaluated in the same order, including the recursive form of
CosineAnnealingLR (each lr computed from the previous one, so schedulers can be chained).
"""

from __future__ import annotations

import copy
import math
from numbers import Integral
from typing import Any

from minigrad.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: `step()` advances `last_epoch` and writes `get_lr()` into the optimizer.

    `last_epoch=-1` starts a new schedule (and records each group's lr as 'initial_lr');
    a later value resumes one whose optimizer groups already hold 'initial_lr'. Prefer
    `load_state_dict` for resuming.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an "
                            "Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        for i, group in enumerate(optimizer.param_groups):
            if "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr' "
                               f"to resume from at last_epoch={last_epoch}; load the "
                               "optimizer's state first, or start with last_epoch=-1")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._is_initial = True  # the step made here sets the starting lr, it does not move it
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The lr of each param group at `last_epoch` (the step just taken)."""
        raise NotImplementedError

    def step(self) -> None:
        """Move to the next epoch (or batch) and set its learning rates."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        """The learning rates the last `step()` set, one per param group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (numbers, lists and strings: safe to save as JSON)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(copy.deepcopy(state_dict))

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """Multiply each group's lr by `gamma` every `step_size` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if not isinstance(step_size, Integral) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    """Anneal each lr from its initial value to `eta_min` along half a cosine over `T_max`
    epochs: lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.

    Past `T_max` the lr climbs back up (a cosine, not a restart), as in PyTorch. Each value is
    computed from the previous one (PyTorch's recursive form), so the schedule also follows an
    lr changed by someone else between steps; for the plain loop it is the closed form above.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if (t - 1 - t_max) % (2 * t_max) == 0:
            # leaving the bottom of the cosine: the ratio below would divide by zero there
            return [lr + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for lr, base_lr in zip(self._current_lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2018), stepped once per batch.

    The lr rises from `max_lr / div_factor` to `max_lr` over the first `pct_start` of
    `total_steps` (or `epochs * steps_per_epoch`), then falls to `initial_lr /
    final_div_factor`; `three_phase` comes back down to the initial lr first, then falls.
    `anneal_strategy` is 'cos' or 'linear'. With `cycle_momentum` (the default, as in PyTorch)
    the momentum moves the opposite way between `max_momentum` and `base_momentum`: SGD's
    'momentum' or Adam's beta1 (so SGD gets momentum even if created without).
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85,
                 max_momentum: float | list[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"OneCycleLR: {type(optimizer).__name__} is not an Optimizer")
        self.total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("OneCycleLR: anneal_strategy must be 'cos' or 'linear', "
                             f"got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.phases = _one_cycle_phases(self.total_steps, pct_start, three_phase)
        groups = optimizer.param_groups
        if last_epoch == -1:
            for group, top in zip(groups, _per_group("max_lr", groups, max_lr)):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self._init_momentum(optimizer, base_momentum, max_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)

    def _init_momentum(self, optimizer: Optimizer, base_momentum: Any, max_momentum: Any,
                       last_epoch: int) -> None:
        if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with 'momentum' or "
                             "'betas'; pass cycle_momentum=False")
        self.use_beta1 = "betas" in optimizer.defaults
        if last_epoch != -1:
            return
        groups = optimizer.param_groups
        tops = _per_group("max_momentum", groups, max_momentum)
        bases = _per_group("base_momentum", groups, base_momentum)
        for group, top, base in zip(groups, tops, bases):
            self._set_momentum(group, top)
            group["max_momentum"], group["base_momentum"] = top, base

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self) -> list[float]:
        if self.last_epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {self.last_epoch} times; the schedule "
                             f"has {self.total_steps} total steps")
        (start_lr, end_lr, start_momentum, end_momentum), pct = self._phase()
        lrs = []
        for group in self.optimizer.param_groups:
            lrs.append(self._anneal(group[start_lr], group[end_lr], pct))
            if self.cycle_momentum:
                momentum = self._anneal(group[start_momentum], group[end_momentum], pct)
                self._set_momentum(group, momentum)
        return lrs

    def _phase(self) -> tuple[list[str], float]:
        """The phase `last_epoch` falls in (its group keys) and how far through it we are."""
        start = 0.0
        for i, (end, *keys) in enumerate(self.phases):
            if self.last_epoch <= end or i == len(self.phases) - 1:
                return keys, (self.last_epoch - start) / (end - start)
            start = end
        raise AssertionError("unreachable: the last phase always matches")

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start


def _total_steps(total_steps: int | None, epochs: int | None,
                 steps_per_epoch: int | None) -> int:
    """`total_steps`, or `epochs * steps_per_epoch`; each a positive int."""
    if total_steps is not None:
        _require_positive_int("total_steps", total_steps)
        return total_steps
    if epochs is None or steps_per_epoch is None:
        raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
    _require_positive_int("epochs", epochs)
    _require_positive_int("steps_per_epoch", steps_per_epoch)
    return epochs * steps_per_epoch


def _require_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, Integral) or value <= 0:
        raise ValueError(f"OneCycleLR: {name} must be a positive integer, got {value!r}")


def _one_cycle_phases(total_steps: int, pct_start: float, three_phase: bool) -> list[list]:
    """[end step, start lr key, end lr key, start momentum key, end momentum key] per phase.

    The keys name entries of each param group, so one table serves groups with different lrs.
    """
    warm_up_end = float(pct_start * total_steps) - 1
    warm_up = [warm_up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"]
    if three_phase:
        return [warm_up,
                [float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr",
                 "base_momentum", "max_momentum"],
                [total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"]]
    return [warm_up, [total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"]]


def _per_group(name: str, groups: list[dict[str, Any]], value: Any) -> list[Any]:
    """One value per param group: a list or tuple as given (checked), a number repeated."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"OneCycleLR: {name} has {len(value)} values for "
                             f"{len(groups)} param groups")
        return list(value)
    return [value] * len(groups)
