"""Devices, as PyTorch names them: "cpu" (host memory: the numpy and numba backends) and "cuda"
(GPU memory: the cupy backend). `mg.device("cuda:0")`, `t.device`, `t.to(device)`,
`mg.cuda.is_available()`."""

from __future__ import annotations

from typing import Any

TYPES = ("cpu", "cuda")


class Device:
    """Where a tensor's memory is: `Device("cpu")`, `Device("cuda")`, `Device("cuda:0")`,
    `Device("cuda", 0)`. Equal to a device of the same type and index; also to a string, where
    "cuda" (no index) matches every GPU: `t.device == "cuda"` asks "on a GPU?"."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None) -> None:  # noqa: A002 - PyTorch's
        if isinstance(type, Device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got "
                            f"{type!r}")
        name, _, number = type.partition(":")
        if name not in TYPES or (number and not number.isdigit()):
            raise RuntimeError(f"device: expected one of cpu, cuda (optionally cuda:N), got "
                               f"{type!r}")
        if number:
            if index is not None:
                raise RuntimeError(f"device: the index is given twice in device({type!r}, "
                                   f"{index})")
            index = int(number)
        if index is not None and (not isinstance(index, int) or index < 0):
            raise RuntimeError(f"device: the index must be a non-negative int, got {index!r}")
        if name == "cpu" and index not in (None, 0):
            raise RuntimeError(f"device: cpu has no index {index}")
        self.type, self.index = name, index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except (RuntimeError, TypeError):
                return False
            if other.index is None:
                return self.type == other.type
        return (isinstance(other, Device) and self.type == other.type
                and self.index == other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


def as_device(value: Any) -> Device | None:
    """`value` as a Device when it names one (a Device, "cpu", "cuda:1"), else None."""
    if isinstance(value, Device):
        return value
    if isinstance(value, str):
        try:
            return Device(value)
        except RuntimeError:
            return None
    return None
