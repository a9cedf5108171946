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


# ----------------------------------------------------- a compiled convolution against the reference

# relative to the largest value of each result: a sum's terms may cancel to near zero
CONV_TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
WANTED_GRADS = [(True, True), (True, False), (False, True)]  # (input gradient, weight gradient)


def as_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """x as plain NCHW, as channels-last memory, or as a strided view (neither)."""
    if layout == "channels_last":
        return channels_last(x)
    if layout == "strided":
        return np.repeat(x, 2, axis=3)[..., ::2]
    return x


def assert_conv_close(actual: np.ndarray, expected: np.ndarray, dtype: str, what: str) -> None:
    assert actual.shape == expected.shape, what
    assert actual.dtype == expected.dtype == np.dtype(dtype), what
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(actual, expected, rtol=CONV_TOLERANCE[dtype],
                               atol=CONV_TOLERANCE[dtype] * scale, err_msg=what)


def count_calls(monkeypatch: Any, module: Any, names: Sequence[str]) -> dict[str, int]:
    """Wraps the functions `names` of `module` (monkeypatched for one test) to count their
    calls: which compiled kernels a backend call reached, and how many parts it made."""
    counts = dict.fromkeys(names, 0)
    for name in names:
        function = getattr(module, name)

        def counted(*args, _name=name, _function=function):
            counts[_name] += 1
            return _function(*args)

        monkeypatch.setattr(module, name, counted)
    return counts


def kernels_taken(backend: Any, calls: dict[str, int], x: np.ndarray, weight: np.ndarray,
                  geometry: tuple) -> dict[str, int]:
    """The counts in `calls` (count_calls) over `backend`'s conv2d forward, its two gradients
    alone and `conv2d_backward` for each combination of gradients; `calls` is reset after."""
    out = backend.conv2d_forward(x, weight, *geometry)
    backend.conv2d_backward_input(out, weight, x.shape, *geometry)
    backend.conv2d_backward_weight(out, x, weight.shape, *geometry)
    for wanted in WANTED_GRADS:
        backend.conv2d_backward(out, x, weight, *geometry, *wanted)
    taken = dict(calls)
    calls.update(dict.fromkeys(calls, 0))
    return taken


def check_conv_against_reference(backend: Any, x: np.ndarray, weight: np.ndarray,
                                 geometry: tuple, grad: np.ndarray, dtype: str,
                                 layout: str = "nchw") -> None:
    """`backend`'s conv2d forward (channels-last out, as every backend returns), its two
    gradients alone, and `conv2d_backward` for each combination of gradients, against the
    NumPy reference; x and grad handed in as `layout`."""
    from minigrad.backends import load

    reference = load("numpy")
    expected = reference.conv2d_forward(x, weight, *geometry)
    out = backend.conv2d_forward(as_layout(x, layout), weight, *geometry)
    assert_conv_close(out, expected, dtype, "forward")
    assert out.transpose(0, 2, 3, 1).flags.c_contiguous
    expected_x = reference.conv2d_backward_input(grad, weight, x.shape, *geometry)
    expected_w = reference.conv2d_backward_weight(grad, x, weight.shape, *geometry)
    grad, x = as_layout(grad, layout), as_layout(x, layout)
    assert_conv_close(backend.conv2d_backward_input(grad, weight, x.shape, *geometry),
                      expected_x, dtype, "input gradient")
    assert_conv_close(backend.conv2d_backward_weight(grad, x, weight.shape, *geometry),
                      expected_w, dtype, "weight gradient")
    for wanted in WANTED_GRADS:  # both in one pass, and each alone
        both = backend.conv2d_backward(grad, x, weight, *geometry, *wanted)
        for gradient, expected, asked, what in zip(both, (expected_x, expected_w), wanted,
                                                   ("input gradient", "weight gradient")):
            if asked:
                assert_conv_close(gradient, expected, dtype, f"{what} of {wanted}")
            else:
                assert gradient is None


def check_threaded_conv(backend: Any, x: np.ndarray, weight: np.ndarray, geometry: tuple,
                        rng: np.random.Generator) -> np.ndarray:
    """`backend`'s float32 forward and both gradients against the reference, the gradients
    taken four times: the weight gradient, a sum over the threads' parts, must be the same
    bits each time, whichever thread took which part. Returns the forward's output."""
    from minigrad.backends import load

    reference = load("numpy")
    out = backend.conv2d_forward(x, weight, *geometry)
    assert_conv_close(out, reference.conv2d_forward(x, weight, *geometry), "float32", "forward")
    grad = rng.standard_normal(out.shape).astype(np.float32)
    runs = [backend.conv2d_backward(grad, x, weight, *geometry) for _ in range(4)]
    expected_x = reference.conv2d_backward_input(grad, weight, x.shape, *geometry)
    expected_w = reference.conv2d_backward_weight(grad, x, weight.shape, *geometry)
    assert_conv_close(runs[0][0], expected_x, "float32", "input gradient")
    assert_conv_close(runs[0][1], expected_w, "float32", "weight gradient")
    assert all(np.array_equal(run[1], runs[0][1]) for run in runs[1:])
    return out
