"""`mg.cuda.is_available()`, `device_count()` and `synchronize()`, as `torch.cuda`: "cuda" is
the cupy backend's GPU."""

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


def synchronize() -> None:
    """Wait until the GPU has run every kernel queued so far, as `torch.cuda.synchronize()`:
    CuPy launches kernels asynchronously, so a timer must wait for them. Without CuPy or a GPU
    it raises the cupy backend's reason."""
    backends.load("cupy").xp.cuda.Device().synchronize()
