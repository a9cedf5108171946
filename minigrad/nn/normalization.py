"""Normalisation: batch norm, layer norm, group norm and local response norm, functions and
layers.

The math and its gradients are one Function each (minigrad.ops.normalization), batch and
layer norm one kernel call each; here are PyTorch's arguments, checks, running statistics
and parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad import factories
from minigrad.autograd import array_module, describe
from minigrad.nn import init
from minigrad.nn.arguments import check_param
from minigrad.nn.linear import empty_parameter
from minigrad.nn.module import Module
from minigrad.ops.normalization import BatchNorm, batch_statistics
from minigrad.ops.normalization import GroupNorm as GroupNormOp
from minigrad.ops.normalization import LayerNorm as LayerNormOp
from minigrad.ops.normalization import LocalResponseNorm as LocalResponseNormOp
from minigrad.tensor import Tensor


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
        check_param("batch_norm", name, value, channels, input)
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
        _update_running(running_mean.array, mean, momentum)
        _update_running(running_var.array, var * (count / (count - 1)), momentum)
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
    check_param("layer_norm", "weight", weight, shape, input)
    check_param("layer_norm", "bias", bias, shape, input)
    return LayerNormOp.apply(input, weight, bias, ndim=len(shape), eps=eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Split the C channels of (N, C, *) input into num_groups groups of C / num_groups
    channels; normalise each sample's group over its channels and spatial dims (biased
    variance), then a per-channel weight and bias. The same in training and eval (no running
    statistics); num_groups=1 is layer norm over (C, *), num_groups=C instance norm."""
    if input.ndim < 2 or input.dtype.kind != "f":
        raise ValueError(f"group_norm: expected a floating-point input (N, C, ...) of at least "
                         f"2 dims, got {describe(input)}")
    if not isinstance(num_groups, int) or isinstance(num_groups, bool) or num_groups < 1:
        raise ValueError(f"group_norm: num_groups must be a positive int, got {num_groups!r}")
    channels = input.shape[1]
    if channels % num_groups:
        raise ValueError(f"group_norm: expected the number of channels in input to be "
                         f"divisible by num_groups, but got input of shape {input.shape} and "
                         f"num_groups={num_groups}")
    if input.shape[0] * channels // num_groups * math.prod(input.shape[2:]) == 1:
        # PyTorch's check: every group would hold one value, normalised to exactly 0
        raise ValueError(f"group_norm: expected more than 1 value per group, got input of "
                         f"shape {input.shape} and num_groups={num_groups}")
    check_param("group_norm", "weight", weight, (channels,), input)
    check_param("group_norm", "bias", bias, (channels,), input)
    return GroupNormOp.apply(input, weight, bias, num_groups=num_groups, eps=eps)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Divide each value of (N, C, *) input by (k + alpha * mean of x^2 over `size`
    neighbouring channels) ** beta (AlexNet's normalisation across channels). The window of
    channel c is [c - size // 2, c + (size - 1) // 2], zero outside the channels, and the mean
    always divides by `size`, as PyTorch."""
    if input.ndim < 3 or input.dtype.kind != "f":
        raise ValueError(f"local_response_norm: expected a floating-point input (N, C, ...) of "
                         f"3 or more dims, got {describe(input)}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int, got {size!r}")
    if input.numel() == 0:
        return input
    return LocalResponseNormOp.apply(input, size=size, alpha=float(alpha), beta=float(beta),
                                     k=float(k))


class _AffineNorm(Module):
    """A normalisation, then an optional learned elementwise weight and bias. They start at
    ones and zeros, so a fresh layer is a plain normalisation."""

    def _add_affine(self, shape: tuple[int, ...], affine: bool, bias: bool) -> None:
        self.register_parameter("weight", empty_parameter(*shape) if affine else None)
        self.register_parameter("bias", empty_parameter(*shape) if affine and bias else None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)


class _BatchNorm(_AffineNorm):
    """Normalise each channel (dim 1) by the batch's statistics in training, by the running
    estimates in eval. The running variance is the unbiased one, as PyTorch keeps it."""

    _input_dims: tuple[int, ...]
    _optional_buffers = ("num_batches_tracked",)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self._add_affine((num_features,), affine, bias)
        if track_running_stats:
            self.register_buffer("running_mean", factories.zeros(num_features))
            self.register_buffer("running_var", factories.ones(num_features))
            self.register_buffer("num_batches_tracked", factories.tensor(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        super().reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._input_dims:
            dims = " or ".join(map(str, self._input_dims))
            raise ValueError(f"{type(self).__name__}: expected a {dims}-D input (N, C, ...), "
                             f"got shape {x.shape}")
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
        # The running estimates are read in eval and updated in training, if tracked at all.
        tracked = not self.training or self.track_running_stats
        running = (self.running_mean, self.running_var) if tracked else (None, None)
        use_batch_stats = self.training or self.running_mean is None
        return batch_norm(x, *running, self.weight, self.bias, use_batch_stats,
                            self._momentum(), self.eps)

    def _momentum(self) -> float:
        """momentum=None means a cumulative average: each batch weighs 1/(batches seen)."""
        if self.momentum is not None:
            return self.momentum
        return 1.0 / max(int(self.num_batches_tracked), 1) if self.track_running_stats else 0.0

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs."""

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel."""

    _input_dims = (4,)


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation whose training statistics span the batches of every rank of the
    process group (minigrad.distributed): N ranks at batch B / N normalise as one process at
    batch B. Alone (no process group, or a world of one) and in eval it is BatchNorm.

    `convert_sync_batchnorm(model)` swaps a model's BatchNorm layers for these."""

    _input_dims = (2, 3, 4, 5)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 process_group: Any = None, *, bias: bool = True) -> None:
        if process_group is not None:
            raise ValueError("SyncBatchNorm: only the default process group (MPI's world) is "
                             "supported")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        from minigrad import distributed

        if not (self.training and distributed.is_initialized()
                and distributed.get_world_size() > 1):
            return super().forward(x)
        if x.ndim < 2 or x.shape[1] != self.num_features or x.dtype.kind != "f":
            raise ValueError(f"SyncBatchNorm: expected a floating-point input (N, "
                             f"{self.num_features}, ...), got {describe(x)}")
        if self.track_running_stats:
            self.num_batches_tracked += 1
        count, mean, var = _global_statistics(x, distributed)
        if count <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel when "
                             f"training, got {count} over all ranks")
        xp = array_module([x.array])  # the statistics on x's device
        mean, var = xp.asarray(mean), xp.asarray(var)
        if self.track_running_stats:
            momentum = self._momentum()
            _update_running(self.running_mean.array, mean, momentum)
            _update_running(self.running_var.array, var * (count / (count - 1)), momentum)
        return BatchNorm.apply(x, self.weight, self.bias, mean, var, training=True, eps=self.eps,
                               reduce=_total_over_ranks)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """`module` with every BatchNorm1d/2d inside (or itself) replaced by a SyncBatchNorm
        holding the same parameters and running statistics (shared, not copied), as PyTorch."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, process_group,
                       bias=module.bias is not None)
            for name in ("weight", "bias"):
                setattr(sync, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                sync.register_buffer(name, getattr(module, name))
            sync.train(module.training)
            return sync
        for name, child in list(module.named_children()):
            converted = cls.convert_sync_batchnorm(child, process_group)
            if converted is not child:
                setattr(module, name, converted)
        return module


def _global_statistics(x: Tensor, distributed: Any) -> tuple[int, Any, Any]:
    """(count, mean, biased var) per channel over every rank's batch, float64 NumPy arrays:
    each rank's (count, mean, var), gathered, combined in rank order (Chan et al.'s formula, no
    cancellation), so every rank gets the same bits."""
    mean, var = batch_statistics(x)
    mean, var = distributed.to_host(mean), distributed.to_host(var)
    local = np.concatenate([[x.numel() // x.shape[1]], mean, var]).astype(np.float64)
    everyone = distributed.all_gather_array(local)
    c = len(mean)
    counts, means, variances = everyone[:, :1], everyone[:, 1:1 + c], everyone[:, 1 + c:]
    count = counts.sum()
    total_mean = (counts * means).sum(axis=0) / count
    m2 = (counts * (variances + (means - total_mean) ** 2)).sum(axis=0)
    return int(count), total_mean, m2 / count


def _total_over_ranks(sums: Any, count: int) -> tuple[Any, int]:
    """The backward's (2, C) per-channel sums and value count, totalled over every rank: one
    Allreduce, through host memory."""
    from minigrad import distributed

    flat = np.append(distributed.to_host(sums).astype(np.float64).ravel(), float(count))
    distributed.all_reduce_arrays([flat])
    return array_module([sums]).asarray(flat[:-1].reshape(sums.shape)), int(flat[-1])


class LayerNorm(_AffineNorm):
    """Normalise over the last dims (`normalized_shape`) of each sample, in training and eval."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape, self.eps = tuple(shape), eps
        self.elementwise_affine = elementwise_affine
        self._add_affine(self.normalized_shape, elementwise_affine, bias)
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(_AffineNorm):
    """Normalise each sample's groups of num_channels / num_groups channels (with their spatial
    dims) by the group's own statistics, in training and eval alike; then a per-channel
    weight and bias (`affine`). Batch-size independent, unlike BatchNorm."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, bias: bool = True) -> None:
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.affine = affine
        self._add_affine((num_channels,), affine, bias)
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Local response normalisation across channels (AlexNet): x / (k + alpha * mean of x^2
    over `size` neighbouring channels) ** beta. No parameters."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
