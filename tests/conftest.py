"""Hypothesis profiles, the PyTorch oracle and the backends under test.

HYPOTHESIS_PROFILE picks a profile: `ci` (the default: deterministic and small, for `make test`),
`dev` (random, a little more) or `thorough` (>= 500 examples per property, for explicit runs).
"""

import os

import numpy as np
import pytest
import zoo
from helpers import BACKENDS, HOST_BACKENDS, backend_under_test
from hypothesis import HealthCheck, settings

_common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=20, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=50, **_common)
settings.register_profile("thorough", max_examples=500, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def torch():
    """PyTorch as the oracle; tests that use it skip only when it cannot be imported."""
    torch = pytest.importorskip("torch", reason="PyTorch is missing (pip install -e .[oracle])")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def tv(torch):
    """torchvision 0.28.0's `torchvision.models` (tests/zoo.py), the oracle of the model zoo."""
    return zoo.torchvision_models()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ------------------------------------------------------------------------------- the backends


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    """Every backend, by name: "numpy", "numba", "cupy" (cupy skips, with the reason
    `minigrad.backends.available()["cupy"]` gives, where CuPy or a GPU is missing). The test
    gets the name; the fixture checks that the backend loads but leaves the active one alone,
    so the test runs its ops `with mg.backend(backend):` (or moves a model `.to(backend)`)."""
    backend_under_test(request.param)
    return request.param


@pytest.fixture(scope="module", params=HOST_BACKENDS)
def host_backend(request) -> str:
    """The backends whose arrays are NumPy arrays in host memory, by name: "numpy", "numba".
    For tests about host memory (layouts, strides); otherwise as `backend`."""
    backend_under_test(request.param)
    return request.param
