"""What several test files share besides fixtures: the backends under test, layouts, and
the check that an error says what was wrong.

Tests take a backend through a fixture of conftest.py: `backend` (every backend) or
`host_backend` (those whose arrays live in host memory). The kernel tests, which call a
backend's kernels directly, load theirs with `backend_under_test`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import numpy as np
import pytest

BACKENDS = ["numpy", "numba", "cupy"]  # cupy skips where CuPy or a GPU is missing
HOST_BACKENDS = ["numpy", "numba"]  # NumPy arrays in host memory


def on_ci() -> bool:
    """Whether this run is CI's (CI=true, as `.ci/run` and CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip for want of something CI provides (a C++ compiler, Fashion-MNIST, the demo
    extra), with `reason`; under CI=true fail instead, so that a skip never hides a test CI is
    meant to run."""
    if on_ci():
        pytest.fail(f"CI=true, and CI provides this: {reason}", pytrace=False)
    pytest.skip(reason)


def backend_under_test(name: str) -> Any:
    """The backend `name` (a `minigrad.backends.Backend`), or "cupy-on-cpu": the CuPy backend
    with its CUDA kernels compiled for the CPU (cuda_on_cpu.py). CuPy (or, for its CPU
    stand-in, a C++ compiler) alone may be missing, and then the test skips with the reason
    (for cupy, `minigrad.backends.available()["cupy"]`). CI has no GPU, so cupy may skip
    there; the C++ compiler it installs, so under CI=true cupy-on-cpu fails without one."""
    from minigrad.backends import available, load

    if name == "cupy-on-cpu":
        import cuda_on_cpu

        from minigrad.backends.cupy_backend import CupyBackend

        if cuda_on_cpu.compiler() is None:
            skip_or_fail("no C++ compiler (c++, g++ or clang++ on PATH) to build the CUDA "
                         "kernels for the CPU")
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


@contextlib.contextmanager
def raises_saying(error: type[BaseException] | tuple[type[BaseException], ...],
                  details: Sequence[str], starts: str = "") -> Iterator[Any]:
    """`pytest.raises(error)` whose message also starts with `starts` (e.g. the function's
    name, "pad:") and holds every string of `details`."""
    with pytest.raises(error) as info:
        yield info
    message = str(info.value)
    assert message.startswith(starts), message
    for detail in details:
        assert detail in message, f"{detail!r} missing from {message!r}"


def winograd_batch(channels: int, out_hw: tuple[int, int]) -> int:
    """The fewest images whose 2x2 output tiles pay for the Numba backend's Winograd kernel
    transforms, for `channels` (the fewer of in and out) and an OH x OW output."""
    from minigrad.backends import winograd

    tiles = -(-out_hw[0] // 2) * -(-out_hw[1] // 2)
    return math.ceil(winograd.TILES_PER_CHANNEL * channels / tiles)
