"""`mg.cuda.is_available()`, as `torch.cuda`: "cuda" is the cupy backend's GPU."""

from __future__ import annotations

from minigrad import backends


def is_available() -> bool:
    """True when the cupy backend can run: CuPy imports and sees a GPU."""
    try:
        backends.load("cupy")
    except RuntimeError:
        return False
    return True


def device_count() -> int:
    """How many GPUs CuPy sees (0 without CuPy or a GPU)."""
    if not is_available():
        return 0
    return int(backends.load("cupy").xp.cuda.runtime.getDeviceCount())
