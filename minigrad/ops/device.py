"""Moving tensors between host and GPU memory, and `Tensor.to`'s PyTorch-shaped arguments."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.autograd import Function
from minigrad.backends import load as load_backend
from minigrad.devices import Device, as_device
from minigrad.tensor import Tensor

# Backend names work as devices too: numpy and numba keep tensors in host memory, cupy on the GPU.
_BACKEND_DEVICES = {"numpy": "cpu", "numba": "cpu", "cupy": "cuda", "gpu": "cuda"}


class ToDevice(Function):
    """A copy between host and GPU memory; the gradient travels back the other way."""

    name = "to"

    @staticmethod
    def forward(ctx, a, xp):
        return _move(a, xp)

    @staticmethod
    def backward(ctx, grad):
        return _move(grad, ctx.xp), None


def _move(array, xp):
    if xp is np:
        return array if isinstance(array, np.ndarray) else array.get()
    return xp.asarray(array)


def _device_of(value: Any) -> Device | None:
    if isinstance(value, str) and value in _BACKEND_DEVICES:
        return Device(_BACKEND_DEVICES[value])
    return as_device(value)


def _gpu_module() -> Any:
    try:
        return load_backend("cupy").xp
    except RuntimeError as error:
        raise RuntimeError(f"to: 'cuda' means the cupy backend's GPU, which cannot run here: "
                           f"{error}") from None


def to(a: Tensor, *args: Any, device: Any = None, dtype: Any = None, non_blocking: bool = False,
       copy: bool = False) -> Tensor:
    """`a` on `device` and in `dtype` (either may be left out), as `Tensor.to`: positional
    arguments may be a device, a dtype, both, or a tensor whose device and dtype to take."""
    for value in args:
        if isinstance(value, Tensor):
            device, dtype = value.device, value.dtype
        elif _device_of(value) is not None:
            device = value
        else:
            dtype = value
    result = a
    if device is not None:
        target = _device_of(device)
        if target is None:
            raise ValueError(f"to: expected a device ('cpu', 'cuda', 'cuda:0', mg.device(...) or "
                             f"a backend: numpy, numba, cupy) or a dtype, got {device!r}")
        on_host = isinstance(a.array, np.ndarray)
        if on_host != (target.type == "cpu"):
            result = ToDevice.apply(a, np if target.type == "cpu" else _gpu_module())
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"to: expected a device or a dtype, got {dtype!r}") from None
        result = result.astype(dtype)
    if copy and result is a:
        result = a.clone()
    return result
