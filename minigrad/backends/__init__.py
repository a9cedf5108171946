"""Which kernels run: `numpy` (the reference), `numba` (JIT-compiled, parallel CPU), `cupy` (GPU).

`MINIGRAD_BACKEND` picks one for a whole script; it is read on first use, not at import, so
importing minigrad never fails. `set_backend(name)` and `with backend(name):` switch in code.
The backend decides where new tensors live (host memory, or the GPU for cupy) and which kernels
conv2d, pooling and matmul call for host arrays; arrays on the GPU always use the cupy kernels.
A backend that cannot run here raises an error that says why; minigrad never falls back silently.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from typing import Any

from minigrad.backends.base import Backend, keep_freed_memory

NAMES = ("numpy", "numba", "cupy")
_MODULES = {"numpy": "numpy_backend", "numba": "numba_backend", "cupy": "cupy_backend"}
_loaded: dict[str, Backend] = {}
_current: Backend | None = None


def load(name: str) -> Backend:
    """The backend called `name`, imported (and checked) on first use."""
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(NAMES)}")
    if name not in _loaded:
        if not _loaded:
            keep_freed_memory()
        module = importlib.import_module(f"minigrad.backends.{_MODULES[name]}")
        _loaded[name] = module.create()
    return _loaded[name]


def current() -> Backend:
    """The active backend: the last `set_backend`, else $MINIGRAD_BACKEND, else numpy."""
    global _current
    if _current is None:
        _current = load(os.environ.get("MINIGRAD_BACKEND", "numpy").strip().lower() or "numpy")
    return _current


def get_backend() -> str:
    """The active backend's name."""
    return current().name


def set_backend(name: str) -> None:
    """Make `name` the active backend for the rest of the program (or until changed)."""
    global _current
    _current = load(name)


@contextlib.contextmanager
def backend(name: str) -> Iterator[Backend]:
    """`with mg.backend("numba"):` runs the block on that backend, then restores the previous."""
    global _current
    previous = _current
    _current = load(name)
    try:
        yield _current
    finally:
        _current = previous


def kernels_for(xp: Any) -> Backend:
    """The kernels for arrays of module `xp`: cupy's for GPU arrays, else the active CPU one."""
    if xp.__name__ == "cupy":
        return load("cupy")
    active = current()
    return active if active.xp is xp else load("numpy")


def available() -> dict[str, str]:
    """Each backend's status here: "ok", or why it cannot run."""
    status = {}
    for name in NAMES:
        try:
            load(name)
            status[name] = "ok"
        except RuntimeError as error:
            status[name] = str(error)
    return status


__all__ = ["NAMES", "Backend", "available", "backend", "current", "get_backend", "kernels_for",
           "load", "set_backend"]
