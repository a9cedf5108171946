"""One global random generator, so `mg.manual_seed(n)` makes every draw reproducible.

Draws happen on the host with NumPy's PCG64 whatever the backend, so the same seed gives the
same numbers on NumPy, Numba and CuPy.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator behind rand, randn, randint, initialisation and dropout."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The generator every random draw in minigrad uses."""
    return _generator
