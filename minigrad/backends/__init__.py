"""Which kernels run: `numpy` (the reference), `numba` (JIT-compiled, parallel CPU), `cupy` (GPU).

The default is `numba` where Numba imports, else `numpy`. `MINIGRAD_BACKEND` picks one for a
whole script; it is read on first use, not at import, so importing minigrad never fails (nor
compiles anything). `set_backend(name)` and `with backend(name):` switch in code.
The backend decides where new tensors live (host memory, or the GPU for cupy) and which kernels
conv2d, pooling and matmul call for host arrays; arrays on the GPU always use the cupy kernels.
A backend that cannot run here raises an error that says why; minigrad never falls back silently.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from minigrad.backends.base import Backend

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
    """The active backend: the last `set_backend`, else $MINIGRAD_BACKEND, else the default."""
    global _current
    if _current is None:
        chosen = os.environ.get("MINIGRAD_BACKEND", "").strip().lower()
        _current = load(chosen) if chosen else default()
    return _current


def default() -> Backend:
    """numba where Numba can be imported (the fast CPU backend), else numpy."""
    try:
        return load("numba")
    except RuntimeError:
        return load("numpy")


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


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse instead of handing them back to the OS.

    glibc returns large blocks (32 MB and up, and any heap top past its trim threshold) to the
    OS when freed, so every new activation or column buffer would page-fault on first touch,
    which can cost as long as the GEMM that fills it. The price is a resident size that stays
    at its peak. Set MINIGRAD_MALLOC_TUNING=0 to keep glibc's defaults. Returns whether applied.
    """
    if os.environ.get("MINIGRAD_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): leave the allocator alone
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    largest = 2**31 - 1  # mallopt takes a C int: a larger value would wrap (1 << 34 -> 0)
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and
                libc.mallopt(m_trim_threshold, largest))


__all__ = ["NAMES", "Backend", "available", "backend", "current", "default", "get_backend",
           "kernels_for", "load", "set_backend"]
