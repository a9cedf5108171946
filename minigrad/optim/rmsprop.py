"""RMSprop: divide each gradient by a running root-mean-square of its recent values.

Hinton's unpublished rule (lecture 6e of his Coursera course), as PyTorch implements it:
`square_avg` is an exponential moving average of `g * g` with decay `alpha`; the step is
`g / (sqrt(square_avg) + eps)`, so every parameter moves by roughly `lr` whatever the scale of
its gradient. `centered` subtracts the square of a moving average of `g` first (an estimate of
the variance instead of the second moment); `momentum` accumulates the normalised steps.
"""

from __future__ import annotations

from typing import Any

from minigrad.optim.optimizer import Optimizer, ParamsT


class RMSprop(Optimizer):
    """`RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False)`.

        g = grad + weight_decay * p
        square_avg = alpha * square_avg + (1 - alpha) * g * g
        grad_avg = lerp(grad_avg, g, 1 - alpha)               if centered
        avg = sqrt(square_avg - grad_avg**2 if centered else square_avg) + eps
        buf = momentum * buf + g / avg;  p = p - lr * buf     if momentum > 0
        p = p - lr * g / avg                                   otherwise

    All state starts at zero. These are PyTorch's formulas in PyTorch's order of operations, so
    N steps land on PyTorch's parameters.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    def _check(self, options: dict[str, Any]) -> None:
        # PyTorch checks alpha only for >= 0 too (an alpha above 1 is nonsense, but allowed)
        self._require_nonnegative(options, "lr", "eps", "momentum", "weight_decay", "alpha")

    def _update(self, param: Any, grad: Any, state: dict[str, Any], group: dict[str, Any],
                xp: Any) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        momentum, weight_decay = float(group["momentum"]), float(group["weight_decay"])
        if "step" not in state:  # PyTorch's keys, in PyTorch's order
            state.update(step=0, square_avg=xp.zeros_like(param))
            if momentum > 0:
                state["momentum_buffer"] = xp.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(param)
        state["step"] += 1
        if weight_decay != 0:
            grad = grad + weight_decay * param
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            _lerp_(grad_avg, grad, 1 - alpha)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg = avg + eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            param -= lr * buf
        else:
            param -= lr * grad / avg


def _lerp_(start: Any, end: Any, weight: float) -> None:
    """`start += weight * (end - start)` in place, in PyTorch's two forms: from the nearer end,
    so a weight close to 1 lands on `end` without the rounding of `start`."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)
