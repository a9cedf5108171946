"""Losses: the functions (`F.cross_entropy`, ...) and their modules (`nn.CrossEntropyLoss`, ...).

Reductions are PyTorch's: 'mean' (weighted losses divide by the weights' sum), 'sum', 'none';
kl_div adds 'batchmean'. Signatures are PyTorch's, positions included, so the deprecated
`size_average` and `reduce` are accepted, mapped onto `reduction` with PyTorch's warning.
Each loss refuses a target whose shape differs from what the input asks for (PyTorch only
warns and broadcasts, which is nearly always an (N, 1) against (N,) mistake).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from minigrad.autograd import Function, array_module, describe
from minigrad.backends import kernels_for
from minigrad.nn.arguments import check_param
from minigrad.nn.module import Module
from minigrad.ops import log_softmax
from minigrad.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")
KL_REDUCTIONS = ("mean", "batchmean", "sum", "none")


# ------------------------------------------------------------------------------------- helpers


def _check_reduction(op: str, reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        names = ", ".join(repr(r) for r in allowed[:-1]) + f" or {allowed[-1]!r}"
        raise ValueError(f"{op}: reduction must be {names}, got {reduction!r}")


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's deprecated pair, where given, decides the reduction (with PyTorch's warning):
    reduce=False gives 'none', else size_average=False 'sum', else 'mean'."""
    if size_average is None and reduce is None:
        return reduction
    reduce = True if reduce is None else reduce
    size_average = True if size_average is None else size_average
    legacy = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use "
                  f"reduction='{legacy}' instead.", stacklevel=3)
    return legacy


def _reduce(losses: Tensor, reduction: str, weights: Any = None) -> Tensor:
    """'none': the losses as they are; 'sum': their sum; 'mean': their mean or, given each
    target's class weight, the sum divided by the weights' sum: a weighted average, as
    PyTorch's weighted (and ignore_index) losses take it."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if weights is None:
        return losses.mean()
    # every target ignored: PyTorch's 0 / 0 = nan, with a zero gradient; decided on the
    # device, so a GPU step does not wait for the host here
    xp = array_module([weights])
    total = weights.sum()
    empty = total == 0
    return (losses.sum() / xp.where(empty, 1, total)
            + xp.where(empty, np.nan, 0).astype(total.dtype))


def _check_pair(op: str, input: Tensor, target: Tensor) -> None:
    """Input and target compared element by element: tensors of one shape, floating point."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if not isinstance(target, Tensor) or target.shape != input.shape:
        raise ValueError(f"{op}: target {describe(target)} must have the input's shape "
                         f"{input.shape}")
    if input.dtype.kind != "f" or target.dtype.kind != "f":
        raise ValueError(f"{op}: input and target must be floating point, got "
                         f"{describe(input)} and {describe(target)}")


def _check_elementwise_weight(op: str, weight: Tensor | None, input: Tensor) -> None:
    """mse/l1/huber weigh each element: a weight of the input's shape (PyTorch's rule)."""
    if weight is not None and (not isinstance(weight, Tensor) or weight.shape != input.shape):
        raise ValueError(f"{op}: weight {describe(weight)} must have the input's shape "
                         f"{input.shape}")


def _weighted(losses: Tensor, weight: Tensor | None, reduction: str,
              mean_over_weights: bool = True) -> Tensor:
    """Elementwise losses times a (differentiable) weight of their shape, reduced; PyTorch's
    'mean' divides by the weights' sum for mse and l1, by the element count for huber."""
    if weight is None:
        return _reduce(losses, reduction)
    losses = losses * weight
    if reduction == "mean" and mean_over_weights:
        return losses.sum() / weight.sum()
    return _reduce(losses, reduction)


def _check_constant(op: str, name: str, value: Tensor | None, input: Tensor) -> Any:
    """A BCE weight or pos_weight: a tensor broadcasting to the input's shape, not
    differentiated (PyTorch refuses one that requires grad). Returns its array in the
    input's dtype, or None."""
    if value is None:
        return None
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(value).__name__}")
    try:
        shape = np.broadcast_shapes(value.shape, input.shape)
    except ValueError:
        shape = None
    if shape != input.shape:
        raise ValueError(f"{op}: {name} {describe(value)} must broadcast to the input's shape "
                         f"{input.shape}")
    if value.requires_grad:
        raise ValueError(f"{op}: {name} is not differentiable (as in PyTorch); pass a tensor "
                         f"that does not require grad, e.g. {name}.detach()")
    return value.array.astype(input.dtype, copy=False)


# --------------------------------------------------------------------------- regression losses


def mse_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
             reduce: bool | None = None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    """Squared error (input - target)^2, reduced; `weight` (the input's shape) weighs each
    element, and 'mean' then divides by the weights' sum."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("mse_loss", reduction)
    _check_pair("mse_loss", input, target)
    _check_elementwise_weight("mse_loss", weight, input)
    diff = input - target
    return _weighted(diff * diff, weight, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
            reduce: bool | None = None, reduction: str = "mean",
            weight: Tensor | None = None) -> Tensor:
    """Absolute error |input - target|, reduced (weighted as mse_loss). Its gradient is
    sign(input - target): 0 where they are equal, as PyTorch's."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("l1_loss", reduction)
    _check_pair("l1_loss", input, target)
    _check_elementwise_weight("l1_loss", weight, input)
    return _weighted((input - target).abs(), weight, reduction)


class SmoothL1(Function):
    """0.5 d^2 / beta where |d| < beta and |d| - beta / 2 beyond, for d = input - target:
    quadratic near 0, linear far off. The gradient is d / beta clipped to [-1, 1], its
    negative for the target."""

    name = "smooth_l1_loss"

    @staticmethod
    def forward(ctx, input, target, beta):
        xp = ctx.xp
        diff = input - target
        ctx.save_for_backward(diff)
        ctx.beta = beta
        size = xp.abs(diff)
        return xp.where(size < beta, 0.5 * diff * diff / beta, size - 0.5 * beta)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        return _both_ways(ctx, grad * ctx.xp.clip(diff / ctx.beta, -1, 1))


class Huber(Function):
    """0.5 d^2 where |d| < delta and delta (|d| - delta / 2) beyond, for d = input - target:
    the gradient is d clipped to [-delta, delta], its negative for the target."""

    name = "huber_loss"

    @staticmethod
    def forward(ctx, input, target, delta):
        xp = ctx.xp
        diff = input - target
        ctx.save_for_backward(diff)
        ctx.delta = delta
        size = xp.abs(diff)
        return xp.where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta))

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        return _both_ways(ctx, grad * ctx.xp.clip(diff, -ctx.delta, ctx.delta))


def _both_ways(ctx, grad_input: Any) -> tuple:
    """A loss of input - target: the target's gradient is the input's, negated."""
    needs_input, needs_target = ctx.needs_input_grad[:2]
    return (grad_input if needs_input else None, -grad_input if needs_target else None, None)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
                   reduce: bool | None = None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """Squared error / (2 beta) inside |input - target| < beta, absolute error - beta / 2
    beyond: less sensitive to outliers than mse. beta = 0 is l1_loss."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("smooth_l1_loss", reduction)
    _check_beta("smooth_l1_loss", beta)
    _check_pair("smooth_l1_loss", input, target)
    if beta == 0:
        return _reduce((input - target).abs(), reduction)
    return _reduce(SmoothL1.apply(input, target, beta), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """Half the squared error inside |input - target| < delta, delta times (absolute error -
    delta / 2) beyond: smooth_l1_loss times delta (beta = delta). `weight` (the input's shape)
    weighs each element; 'mean' still divides by the element count, as PyTorch's."""
    _check_reduction("huber_loss", reduction)
    _check_delta("huber_loss", delta)
    _check_pair("huber_loss", input, target)
    _check_elementwise_weight("huber_loss", weight, input)
    return _weighted(Huber.apply(input, target, delta), weight, reduction,
                     mean_over_weights=False)


def _check_beta(op: str, beta: float) -> None:
    if not beta >= 0:
        raise ValueError(f"{op}: beta must be >= 0 (0 is the l1 loss), got {beta!r}")


def _check_delta(op: str, delta: float) -> None:
    if not delta > 0:
        raise ValueError(f"{op}: delta must be > 0, got {delta!r}")


# ----------------------------------------------------------------------- classification losses


def _check_classes(op: str, input: Tensor) -> None:
    if not isinstance(input, Tensor):  # e.g. GoogLeNet's (logits, aux2, aux1) in training
        raise TypeError(f"{op}: expected input to be a Tensor, got {type(input).__name__}")
    if input.ndim < 2 or input.dtype.kind != "f":
        raise ValueError(f"{op}: expected a floating-point input (N, C) or (N, C, d1, ...), "
                         f"got {describe(input)}")


def _class_targets(op: str, input: Tensor, target: Tensor, weight: Tensor | None,
                   ignore_index: int) -> tuple[Tensor, Any, Any]:
    """Check integer class targets (N, d1, ...) against input (N, C, d1, ...).

    Returns the gather index (N, 1, d1, ...) with ignored entries pointed at class 0, each
    target's weight (weight[target], or 1; 0 where ignored) and the mask of kept targets. The
    weights are constants: PyTorch does not differentiate class weights either.
    """
    _check_classes(op, input)
    classes, expected = input.shape[1], input.shape[:1] + input.shape[2:]
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise ValueError(f"{op}: target must be a tensor of integer class indices, got "
                         f"{describe(target)} for input {describe(input)}")
    if target.shape != expected:
        raise ValueError(f"{op}: target of shape {target.shape} does not match input "
                         f"{input.shape}: expected {expected}")
    check_param(op, "weight", weight, (classes,), input)
    t = target.array
    xp = array_module([t])
    kept = t != ignore_index
    outside = kept & ((t < 0) | (t >= classes))
    if outside.any():
        raise ValueError(f"{op}: target holds class index {int(t[outside][0])}, outside "
                         f"[0, {classes}) for input {input.shape} (ignore_index={ignore_index})")
    index = xp.where(kept, t, 0)
    chosen = 1 if weight is None else weight.array[index]
    weights = xp.where(kept, chosen, 0).astype(input.dtype)
    return Tensor._wrap(xp.expand_dims(index, 1)), weights, kept


def _per_class(weight: Tensor, ndim: int) -> Any:
    """Class weights (C,) as a constant shaped (1, C, 1, ...) to scale (N, C, d1, ...)."""
    return weight.array.reshape((1, -1) + (1,) * (ndim - 2))


def _nll(log_probs: Tensor, index: Tensor, weights: Any, reduction: str) -> Tensor:
    picked = log_probs.gather(1, index).squeeze(1)
    return _reduce(picked * -weights, reduction, weights)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             size_average: bool | None = None, ignore_index: int = -100,
             reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] * weight[target[n]] for log-probabilities `input` (N, C, d1, ...)
    and integer targets (N, d1, ...); targets equal to ignore_index count for nothing."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("nll_loss", reduction)
    index, weights, _ = _class_targets("nll_loss", input, target, weight, ignore_index)
    return _nll(input, index, weights, reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average: bool | None = None, ignore_index: int = -100,
                  reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """nll_loss of log_softmax(input, dim=1), from logits (N, C, d1, ...).

    log_softmax shifts by the max before exponentiating, so logits of +-1000 give finite losses
    and gradients. Integer targets (N, d1, ...) are class indices; a float target of the
    input's shape holds class probabilities. label_smoothing = e mixes every target with the
    uniform distribution, as PyTorch: (1 - e) * loss + e / C * sum_c weight_c * -log p_c,
    reduced with the same denominator as the loss.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("cross_entropy", reduction)
    _check_classes("cross_entropy", input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing!r}")
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"cross_entropy: target {describe(target)} is floating point, so "
                             f"it must hold class probabilities of the input's shape "
                             f"{input.shape}; class indices must be integers")
        check_param("cross_entropy", "weight", weight, input.shape[1:2], input)
        return _soft_cross_entropy(log_softmax(input, 1), target, weight, reduction,
                                   label_smoothing)
    index, weights, kept = _class_targets("cross_entropy", input, target, weight, ignore_index)
    log_probs = log_softmax(input, 1)
    loss = _nll(log_probs, index, weights, reduction)
    if not label_smoothing:
        return loss
    if weight is not None:
        log_probs = log_probs * _per_class(weight, input.ndim)
    smooth = log_probs.sum(1) * -kept.astype(input.dtype)
    return (loss * (1 - label_smoothing)
            + _reduce(smooth, reduction, weights) * (label_smoothing / input.shape[1]))


def _soft_cross_entropy(log_probs: Tensor, target: Tensor, weight: Tensor | None,
                        reduction: str, label_smoothing: float) -> Tensor:
    """-sum_c weight_c * target_c * log p_c per sample; 'mean' divides by the number of
    samples, not by the weights (PyTorch's rule for probability targets)."""
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / log_probs.shape[1]
    per_class = log_probs * target
    if weight is not None:
        per_class = per_class * _per_class(weight, log_probs.ndim)
    return _reduce(-per_class.sum(1), reduction)


# ------------------------------------------------------------------------------- binary losses


class BinaryCrossEntropy(Function):
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 as PyTorch's, so a confident
    wrong answer (x = 0 or 1) costs 100, not inf. d/dx = (x - t) / (x (1 - x)), the
    denominator kept >= 1e-12 as PyTorch's; d/dt = log(1 - x) - log x = -logit(x)."""

    name = "binary_cross_entropy"

    @staticmethod
    def forward(ctx, input, target):
        xp = ctx.xp
        ctx.save_for_backward(input, target)
        with np.errstate(divide="ignore"):  # log 0 = -inf, clamped here
            log_x = xp.maximum(xp.log(input), -100)
            log_rest = xp.maximum(xp.log1p(-input), -100)
        return (target - 1) * log_rest - target * log_x

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        xp = ctx.xp
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            grad_x = grad * (x - t) / xp.maximum(x * (1 - x), 1e-12)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):  # x = 0 or 1: an infinite slope, as PyTorch's
                grad_t = grad * -xp.log(x / (1 - x))
        return grad_x, grad_t


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """-weight * (t log x + (1 - t) log(1 - x)) for probabilities x (after a sigmoid) and
    targets t in [0, 1], both checked as PyTorch checks them; each log is clamped at -100.
    `weight` broadcasts to the input's shape and is not differentiated. From logits,
    binary_cross_entropy_with_logits is stabler and cheaper."""
    op = "binary_cross_entropy"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    _check_pair(op, input, target)
    if target.dtype != input.dtype:
        raise ValueError(f"{op}: target {describe(target)} must have the input's dtype "
                         f"{input.dtype}")
    weight = _check_constant(op, "weight", weight, input)
    for name, value in (("input", input), ("target", target)):
        values = value.array
        if not ((values >= 0) & (values <= 1)).all():  # NaN too
            hint = "; for logits use binary_cross_entropy_with_logits" if name == "input" else ""
            raise ValueError(f"{op}: all elements of {name} should be between 0 and 1, got "
                             f"{describe(value)} ranging over [{float(values.min())}, "
                             f"{float(values.max())}]{hint}")
    losses = BinaryCrossEntropy.apply(input, target)
    return _reduce(losses if weight is None else losses * weight, reduction)


def _log_sigmoid(xp, x: Any) -> Any:
    """log(1 / (1 + e^-x)) = min(x, 0) - log(1 + e^-|x|): exp only ever sees -|x|."""
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


class BinaryCrossEntropyWithLogits(Function):
    """(1 - t) x - c log sigmoid(x), c = 1 + (pos_weight - 1) t: -(pos_weight t log sigmoid(x)
    + (1 - t) log sigmoid(-x)) without ever forming a probability, so logits of +-1000 stay
    finite. d/dx = c sigmoid(x) - pos_weight t (sigmoid(x) - t without pos_weight);
    d/dt = -x - (pos_weight - 1) log sigmoid(x)."""

    name = "binary_cross_entropy_with_logits"

    @staticmethod
    def forward(ctx, input, target, pos_weight):
        log_sig = _log_sigmoid(ctx.xp, input)
        ctx.save_for_backward(input, target, pos_weight, log_sig)
        scale = 1 if pos_weight is None else (pos_weight - 1) * target + 1
        return (1 - target) * input - scale * log_sig

    @staticmethod
    def backward(ctx, grad):
        x, t, pos_weight, log_sig = ctx.saved_tensors
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            sig = kernels_for(ctx.xp).sigmoid(x)
            if pos_weight is None:
                grad_x = grad * (sig - t)
            else:
                weighted = pos_weight * t
                grad_x = grad * ((weighted + 1 - t) * sig - weighted)
        if ctx.needs_input_grad[1]:
            grad_t = grad * (-x if pos_weight is None else -x - (pos_weight - 1) * log_sig)
        return grad_x, grad_t, None


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None,
                                     size_average: bool | None = None,
                                     reduce: bool | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """binary_cross_entropy of sigmoid(input), computed from the logits in one stable step.
    `pos_weight` scales the positive term (t log sigmoid(x)), per class when shaped (C,);
    `weight` scales each element's loss. Both broadcast to the input's shape and are not
    differentiated; targets are not range-checked (PyTorch does not either)."""
    op = "binary_cross_entropy_with_logits"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    _check_pair(op, input, target)
    weight = _check_constant(op, "weight", weight, input)
    pos_weight = _check_constant(op, "pos_weight", pos_weight, input)
    losses = BinaryCrossEntropyWithLogits.apply(input, target, pos_weight)
    return _reduce(losses if weight is None else losses * weight, reduction)


# ------------------------------------------------------------------------------ KL divergence


class KLDiv(Function):
    """Pointwise t (log t - x) (0 where t = 0), or e^t (t - x) for a log-probability target.
    d/dx = -t (-e^t); d/dt = log t + 1 - x, NaN at t = 0 as PyTorch's (the gradient of its
    xlogy(t, t)), and e^t (t - x + 1) for a log target."""

    name = "kl_div"

    @staticmethod
    def forward(ctx, input, target, log_target):
        xp = ctx.xp
        ctx.log_target = log_target
        if log_target:
            prob = xp.exp(target)
            ctx.save_for_backward(input, target, prob)
            return prob * (target - input)
        ctx.save_for_backward(input, target, None)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 log 0 -> 0; t < 0 -> NaN
            entropy = xp.where(target == 0, 0, target * xp.log(target))
        return entropy - target * input

    @staticmethod
    def backward(ctx, grad):
        x, t, prob = ctx.saved_tensors
        xp = ctx.xp
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            grad_x = grad * -(prob if ctx.log_target else t)
        if ctx.needs_input_grad[1]:
            if ctx.log_target:
                grad_t = grad * prob * (t - x + 1)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    grad_t = grad * (xp.where(t == 0, np.nan, xp.log(t) + 1) - x)
        return grad_x, grad_t, None


def kl_div(input: Tensor, target: Tensor, size_average: bool | None = None,
           reduce: bool | None = None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target || exp(input)) pointwise: target (log target - input), for log-probabilities
    `input` (log_softmax) and probabilities `target` (log-probabilities with log_target=True).
    'batchmean' (sum / batch size) is the KL divergence per sample; 'mean' divides by every
    element and, as in PyTorch, warns."""
    legacy = size_average is not None or reduce is not None
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction("kl_div", reduction, KL_REDUCTIONS)
    _check_pair("kl_div", input, target)
    if reduction == "mean" and not legacy:
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    losses = KLDiv.apply(input, target, bool(log_target))
    if reduction == "batchmean":
        total = losses.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(losses, reduction)


# ------------------------------------------------------------------------------------- modules


class _Loss(Module):
    """A loss module, as PyTorch's: its `reduction` (the deprecated size_average and reduce,
    where given, decide it), checked here so a typo fails where the model is built."""

    _reductions = REDUCTIONS

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        reduction = _legacy_reduction(size_average, reduce, reduction)
        _check_reduction(type(self).__name__, reduction, self._reductions)
        self.reduction = reduction


class _WeightedLoss(_Loss):
    """A loss with a `weight` buffer (in the state dict when given, as PyTorch's)."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """Mean (or sum) absolute error between input and target: F.l1_loss."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean (or sum) squared error between input and target: F.mse_loss."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Squared error / (2 beta) below beta, absolute error - beta / 2 above: F.smooth_l1_loss."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        _check_beta(type(self).__name__, beta)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Half the squared error below delta, delta (absolute error - delta / 2) above:
    F.huber_loss."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        _check_delta(type(self).__name__, delta)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class targets given log-probabilities: F.nll_loss."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy of logits against class indices or class probabilities:
    F.cross_entropy."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class BCELoss(_WeightedLoss):
    """Binary cross entropy of probabilities against targets in [0, 1]:
    F.binary_cross_entropy."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross entropy from logits, stable at any logit:
    F.binary_cross_entropy_with_logits; `weight` and `pos_weight` are buffers."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean",
                 pos_weight: Tensor | None = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight,
                                                pos_weight=self.pos_weight,
                                                reduction=self.reduction)


class KLDivLoss(_Loss):
    """KL divergence of log-probabilities from a target distribution: F.kl_div; use
    reduction='batchmean' for the divergence per sample."""

    _reductions = KL_REDUCTIONS

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
