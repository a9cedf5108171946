"""Adam and AdamW: one implementation, two ways of applying weight decay.

Adam adds `weight_decay * p` to the gradient (L2 regularisation, which the adaptive scaling
then weakens for parameters with large gradients); AdamW shrinks the parameter itself by
`1 - lr * weight_decay` before the update (decoupled decay, Loshchilov & Hutter 2019), so every
weight decays at the same rate. As in PyTorch, AdamW is Adam with `decoupled_weight_decay=True`.
"""

from __future__ import annotations

from typing import Any

from minigrad.optim.optimizer import Optimizer, ParamsT


class Adam(Optimizer):
    """`Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)`.

        t = t + 1;  g = grad (+ weight_decay * p, or p *= 1 - lr * weight_decay if decoupled)
        m = beta1 * m + (1 - beta1) * g          v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v) and use it for v   if amsgrad
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    These are PyTorch's formulas and order of operations (eps is added after the bias
    correction of v), so N steps land on PyTorch's parameters.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _check(self, options: dict[str, Any]) -> None:
        self._require_nonnegative(options, "lr", "eps", "weight_decay")
        betas = options["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{self._name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0 <= beta < 1:
                raise ValueError(f"{self._name}: invalid beta parameter at index {i}: {beta!r}: "
                                 "must be in [0, 1)")

    def _update(self, param: Any, grad: Any, state: dict[str, Any], group: dict[str, Any],
                xp: Any) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        beta1, beta2 = (float(beta) for beta in group["betas"])
        if "step" not in state:
            state.update(step=0, exp_avg=xp.zeros_like(param), exp_avg_sq=xp.zeros_like(param))
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)  # PyTorch's lerp_: beta1 * m + (1 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            exp_avg_sq = xp.maximum(state["max_exp_avg_sq"], exp_avg_sq,
                                    out=state["max_exp_avg_sq"])
        bias_correction1 = 1 - beta1 ** state["step"]
        bias_correction2 = 1 - beta2 ** state["step"]
        denom = xp.sqrt(exp_avg_sq) / bias_correction2**0.5 + eps
        param -= (lr / bias_correction1) * exp_avg / denom


class AdamW(Adam):
    """`AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)`:
    Adam with decoupled weight decay, `p *= 1 - lr * weight_decay` before each update."""

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=True)
