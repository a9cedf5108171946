"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

The update is PyTorch's, step for step, so the same weights and gradients give the same
parameters: weight decay is added to the gradient (L2), the momentum buffer starts as the first
gradient itself (not as zeros, and without dampening), and Nesterov looks ahead along the buffer.
"""

from __future__ import annotations

from typing import Any

from minigrad.optim.optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """`SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.

        g = grad + weight_decay * p
        b = g                                   on the first step (momentum != 0)
        b = momentum * b + (1 - dampening) * g  after it
        g = g + momentum * b  if nesterov  else  b
        p = p - lr * g
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults)

    def _check(self, options: dict[str, Any]) -> None:
        self._require_nonnegative(options, "lr", "momentum", "weight_decay")
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(f"{self._name}: Nesterov momentum requires a momentum > 0 and zero "
                             f"dampening (got momentum={options['momentum']}, "
                             f"dampening={options['dampening']})")

    def _update(self, param: Any, grad: Any, state: dict[str, Any], group: dict[str, Any],
                xp: Any) -> None:
        lr, momentum = float(group["lr"]), float(group["momentum"])
        weight_decay = float(group["weight_decay"])
        if weight_decay != 0:
            grad = grad + weight_decay * param
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # a copy, and an array even for a 0-d parameter (NumPy math on those gives scalars)
                buf = state["momentum_buffer"] = xp.array(grad)
            else:
                buf *= momentum
                buf += (1 - float(group["dampening"])) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= lr * grad
