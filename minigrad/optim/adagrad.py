"""Adagrad (Duchi, Hazan & Singer 2011): per-parameter steps shrinking with the sum of all
squared gradients so far.

A parameter that has seen large (or many) gradients takes small steps, a rarely updated one
keeps large steps: well suited to sparse features. The sum never decays, so the effective
learning rate only falls (RMSprop and Adam replace the sum by a moving average).
"""

from __future__ import annotations

from typing import Any

from minigrad.autograd import array_module
from minigrad.optim.optimizer import Optimizer, ParamsT


class Adagrad(Optimizer):
    """`Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10)`.

        t = t + 1;  g = grad + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum = sum + g * g
        p = p - clr * g / (sqrt(sum) + eps)

    As in PyTorch, the state ('step' and 'sum', filled with `initial_accumulator_value`) is
    created for every parameter when the optimizer is, so `state_dict()` lists all of them
    from the start; and the accumulator's start value is always the constructor's, even for a
    param group that names its own `initial_accumulator_value`.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10) -> None:
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value}
        super().__init__(params, defaults)
        for p in self._all_params():
            self._init_state(p.array, self.state[p], array_module([p.array]))

    def _check(self, options: dict[str, Any]) -> None:
        self._require_nonnegative(options, "lr", "lr_decay", "weight_decay",
                                  "initial_accumulator_value", "eps")

    def _init_state(self, param: Any, state: dict[str, Any], xp: Any) -> None:
        state.update(step=0, sum=xp.full_like(param, self.defaults["initial_accumulator_value"]))

    def _update(self, param: Any, grad: Any, state: dict[str, Any], group: dict[str, Any],
                xp: Any) -> None:
        if "step" not in state:  # a parameter of a group added after the optimizer was made
            self._init_state(param, state, xp)
        state["step"] += 1
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        if weight_decay != 0:
            grad = grad + weight_decay * param
        clr = lr / (1 + (state["step"] - 1) * float(group["lr_decay"]))
        state_sum = state["sum"]
        state_sum += grad * grad
        param -= clr * grad / (xp.sqrt(state_sum) + eps)
