"""What several test files share besides fixtures: the backends under test, and layouts.

Tests take a backend through a fixture of conftest.py: `backend` (every backend) or
`host_backend` (those whose arrays live in host memory). The kernel tests, which call a
backend's kernels directly, load theirs with `backend_under_test`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

BACKENDS = ["numpy", "numba", "cupy"]  # cupy skips where CuPy or a GPU is missing
HOST_BACKENDS = ["numpy", "numba"]  # NumPy arrays in host memory


def backend_under_test(name: str) -> Any:
    """The backend `name` (a `minigrad.backends.Backend`), or "cupy-on-cpu": the CuPy backend
    with its CUDA kernels compiled for the CPU (cuda_on_cpu.py). CuPy (or, for its CPU
    stand-in, a C++ compiler) alone may be missing, and then the test skips with the reason
    (for cupy, `minigrad.backends.available()["cupy"]`)."""
    from minigrad.backends import available, load

    if name == "cupy-on-cpu":
        import cuda_on_cpu

        from minigrad.backends.cupy_backend import CupyBackend

        if cuda_on_cpu.compiler() is None:
            pytest.skip("no C++ compiler to build the CUDA kernels for the CPU")
        return CupyBackend(cuda_on_cpu.CupyOnCpu())
    if name == "cupy":
        status = available()["cupy"]
        if status != "ok":
            pytest.skip(status)
    return load(name)


def channels_last(x: np.ndarray) -> np.ndarray:
    """The same values as an NCHW-shaped view of NHWC memory (for any rank >= 3), what
    convolutions return."""
    moved = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    return np.moveaxis(moved, -1, 1)
