"""Losses: the functions (`F.cross_entropy`, ...) and their modules (`nn.CrossEntropyLoss`, ...).

Reductions are PyTorch's: 'mean' (weighted losses divide by the weights' sum), 'sum', 'none'.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.autograd import array_module, describe
from minigrad.nn.arguments import check_param
from minigrad.ops import log_softmax
from minigrad.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


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


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Squared error (input - target)^2, reduced. The shapes must match: PyTorch only warns
    when they broadcast, which is nearly always an (N, 1) against (N,) mistake."""
    _check_reduction("mse_loss", reduction)
    if not isinstance(target, Tensor) or target.shape != input.shape:
        raise ValueError(f"mse_loss: target {describe(target)} must have the input's shape "
                         f"{input.shape}")
    if input.dtype.kind != "f" or target.dtype.kind != "f":
        raise ValueError(f"mse_loss: input and target must be floating point, got "
                         f"{describe(input)} and {describe(target)}")
    diff = input - target
    return _reduce(diff * diff, reduction)


def _check_classes(op: str, input: Tensor) -> None:
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
             reduction: str = "mean", *, ignore_index: int = -100) -> Tensor:
    """-input[n, target[n]] * weight[target[n]] for log-probabilities `input` (N, C, d1, ...)
    and integer targets (N, d1, ...); targets equal to ignore_index count for nothing."""
    _check_reduction("nll_loss", reduction)
    index, weights, _ = _class_targets("nll_loss", input, target, weight, ignore_index)
    return _nll(input, index, weights, reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  reduction: str = "mean", label_smoothing: float = 0.0, *,
                  ignore_index: int = -100) -> Tensor:
    """nll_loss of log_softmax(input, dim=1), from logits (N, C, d1, ...).

    log_softmax shifts by the max before exponentiating, so logits of +-1000 give finite losses
    and gradients. Integer targets (N, d1, ...) are class indices; a float target of the
    input's shape holds class probabilities. label_smoothing = e mixes every target with the
    uniform distribution, as PyTorch: (1 - e) * loss + e / C * sum_c weight_c * -log p_c,
    reduced with the same denominator as the loss.
    """
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
