"""Stateless neural-network functions, as `torch.nn.functional` (imported as F).

Semantics are PyTorch's: NCHW, cross-correlation, floor output sizes, max pooling pads with -inf,
average pooling counts padding in its divisor. Arguments are checked here, before any kernel
runs, so a mistake names the function and the shapes involved.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.autograd import array_module, describe
from minigrad.backends.geometry import conv_output_size
from minigrad.ops import gelu, log_softmax, pad, relu, sigmoid, silu, softmax, tanh
from minigrad.ops.nn import AvgPool2d, Conv2d, Linear, MaxPool2d
from minigrad.ops.norm import BatchNorm, LayerNorm, batch_statistics
from minigrad.random import generator
from minigrad.tensor import Tensor

IntOrPair = int | tuple[int, int]


def _pair(op: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or a pair of them, "
                         f"got {value!r}")
    return pair


def _check_4d(op: str, x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def _check_fits(op: str, x: Tensor, kernel, stride, padding, dilation, extra: str = "") -> None:
    """The (dilated) kernel must fit inside the padded input: at least one output pixel."""
    for d in range(2):
        if conv_output_size(x.shape[2 + d], kernel[d], stride[d], padding[d], dilation[d]) < 1:
            raise ValueError(
                f"{op}: kernel {kernel} (dilation {dilation}) is larger than the padded input: "
                f"input {x.shape} with padding {padding}{extra}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
           padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) with (K, C/groups, kH, kW), plus bias (K,)."""
    stride = _pair("conv2d", "stride", stride, 1)
    padding = _pair("conv2d", "padding", padding, 0)
    dilation = _pair("conv2d", "dilation", dilation, 1)
    _check_4d("conv2d", x)
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (K, C/groups, kH, kW), got {weight.shape}")
    k, cg = weight.shape[:2]
    if not isinstance(groups, int) or groups < 1 or x.shape[1] % groups or k % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both the input channels "
                         f"({x.shape[1]}) and the output channels ({k}); input {x.shape}, "
                         f"weight {weight.shape}")
    if x.shape[1] != cg * groups:
        raise ValueError(f"conv2d: input {x.shape} has {x.shape[1]} channels but weight "
                         f"{weight.shape} with groups={groups} expects {cg * groups}")
    if bias is not None and bias.shape != (k,):
        raise ValueError(f"conv2d: bias must have shape ({k},), got {bias.shape}")
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"conv2d: input, weight and bias must share a dtype, got {x.dtype}, "
                        f"{weight.dtype}" + ("" if bias is None else f", {bias.dtype}"))
    _check_fits("conv2d", x, weight.shape[2:], stride, padding, dilation)
    return Conv2d.apply(x, weight, bias, stride, padding, dilation, groups)


def _pool_args(op: str, x: Tensor, kernel_size, stride, padding):
    kernel = _pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair(op, "stride", stride, 1)
    padding = _pair(op, "padding", padding, 0)
    _check_4d(op, x)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half of kernel_size {kernel}")
    _check_fits(op, x, kernel, stride, padding, (1, 1))
    return kernel, stride, padding


def max_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0) -> Tensor:
    """Maximum over each window; stride defaults to the kernel size; padding is -inf."""
    return MaxPool2d.apply(x, *_pool_args("max_pool2d", x, kernel_size, stride, padding))


def avg_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0) -> Tensor:
    """Mean over each window (padding counts as zeros, count_include_pad=True)."""
    return AvgPool2d.apply(x, *_pool_args("avg_pool2d", x, kernel_size, stride, padding))


def adaptive_avg_pool2d(x: Tensor, output_size: IntOrPair) -> Tensor:
    """Average-pool to a fixed (OH, OW): output 1 (global pooling) or sizes dividing H and W."""
    _check_4d("adaptive_avg_pool2d", x)
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    size = tuple(x.shape[2 + d] if s is None else s for d, s in enumerate(size))
    if size == (1, 1):
        return x.mean(dim=(2, 3), keepdim=True)
    h, w = x.shape[2:]
    if len(size) != 2 or min(size) < 1 or h % size[0] or w % size[1]:
        raise ValueError(f"adaptive_avg_pool2d: output size {output_size} must be 1 or divide "
                         f"the input size {(h, w)} (input {x.shape})")
    kernel = (h // size[0], w // size[1])
    return AvgPool2d.apply(x, kernel, kernel, (0, 0))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x W^T + b with W of shape (out_features, in_features), as PyTorch."""
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input {x.shape} needs a last dim equal to the weight's "
                         f"in_features; weight {weight.shape} is (out_features, in_features)")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return Linear.apply(x, weight, bias)


# ---------------------------------------------------------------------------------- losses

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
    _check_param(op, "weight", weight, (classes,), input)
    t = target.data
    xp = array_module([t])
    kept = t != ignore_index
    outside = kept & ((t < 0) | (t >= classes))
    if outside.any():
        raise ValueError(f"{op}: target holds class index {int(t[outside][0])}, outside "
                         f"[0, {classes}) for input {input.shape} (ignore_index={ignore_index})")
    index = xp.where(kept, t, 0)
    chosen = 1 if weight is None else weight.data[index]
    weights = xp.where(kept, chosen, 0).astype(input.dtype)
    return Tensor._wrap(xp.expand_dims(index, 1)), weights, kept


def _per_class(weight: Tensor, ndim: int) -> Any:
    """Class weights (C,) as a constant shaped (1, C, 1, ...) to scale (N, C, d1, ...)."""
    return weight.data.reshape((1, -1) + (1,) * (ndim - 2))


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
        _check_param("cross_entropy", "weight", weight, input.shape[1:2], input)
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


# ------------------------------------------------------------------------- dropout and norms


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p),
    so the expected activation is unchanged and evaluation needs no rescaling.

    The mask is drawn on the host from minigrad's one generator (then moved to the input's
    device), so `mg.manual_seed` gives the same mask on every backend.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p!r}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    keep = generator().random(input.shape, dtype=np.float32) >= p
    mask = keep.astype(input.dtype) / (1 - p)
    return input * array_module([input.data]).asarray(mask)


def _check_param(op: str, name: str, value: Tensor | None, shape: tuple[int, ...],
                 input: Tensor) -> None:
    """An optional weight, bias or running statistic must have `shape` (and, for weight and
    bias, the input's dtype)."""
    if value is None:
        return
    if not isinstance(value, Tensor) or value.shape != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)} for input "
                         f"{input.shape}, got {describe(value)}")
    if name in ("weight", "bias") and value.dtype != input.dtype:
        raise TypeError(f"{op}: {name} must have the input's dtype {input.dtype}, got "
                        f"{describe(value)}")


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) of (N, C), (N, C, L) or (N, C, H, W) over every other dim,
    then weight * xhat + bias.

    Training normalises with the batch's statistics (biased variance) and, when given, updates
    running_mean and running_var in place: running = (1 - momentum) * running + momentum *
    batch, with the unbiased batch variance, as PyTorch. Eval uses the running statistics.
    """
    if input.ndim < 2 or input.dtype.kind != "f":
        raise ValueError(f"batch_norm: expected a floating-point input (N, C, ...), got "
                         f"{describe(input)}")
    channels = input.shape[1:2]
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        _check_param("batch_norm", name, value, channels, input)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean and running_var are needed in eval mode "
                         "(training=False)")
    if training and input.numel() <= channels[0]:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input {input.shape}")
    if not training:
        return BatchNorm.apply(input, weight, bias, running_mean, running_var, eps=eps)
    mean, var = batch_statistics(input)
    if running_mean is not None:  # PyTorch's momentum rule, with the unbiased variance
        count = input.numel() // channels[0]
        _update_running(running_mean.data, mean, momentum)
        _update_running(running_var.data, var * (count / (count - 1)), momentum)
    return BatchNorm.apply(input, weight, bias, mean, var, training=True, eps=eps)


def _update_running(running: Any, batch_value: Any, momentum: float) -> None:
    """running = (1 - momentum) * running + momentum * batch_value, in place, in float64."""
    running[...] = (1 - momentum) * running.astype(np.float64) + momentum * batch_value


def layer_norm(input: Tensor, normalized_shape: int | tuple[int, ...],
               weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise each sample over its last len(normalized_shape) dims (biased variance), then
    an elementwise weight and bias of shape normalized_shape."""
    shape = ((normalized_shape,) if isinstance(normalized_shape, int)
             else tuple(normalized_shape))
    if not shape or input.dtype.kind != "f" or input.shape[input.ndim - len(shape):] != shape:
        raise ValueError(f"layer_norm: normalized_shape {normalized_shape!r} must be the last "
                         f"dims of a floating-point input, got {describe(input)}")
    _check_param("layer_norm", "weight", weight, shape, input)
    _check_param("layer_norm", "bias", bias, shape, input)
    return LayerNorm.apply(input, weight, bias, ndim=len(shape), eps=eps)


__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "conv2d", "cross_entropy",
           "dropout", "gelu", "layer_norm", "linear", "log_softmax", "max_pool2d", "mse_loss",
           "nll_loss", "pad", "relu", "sigmoid", "silu", "softmax", "tanh"]
