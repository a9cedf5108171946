"""The GPU backend: the reference kernels of `numpy_backend` run on CuPy arrays.

Strided window views, `cupy.pad` and the GEMM in cuBLAS (`cupy.matmul`) keep every step of a
training step on the GPU. CuPy is optional: `pip install -e .[cuda13]` (or `[cuda12]`).
"""

from __future__ import annotations

from minigrad.backends.numpy_backend import NumpyBackend


class CupyBackend(NumpyBackend):
    name = "cupy"

    def __init__(self, cupy) -> None:
        self.xp = cupy
        super().__init__()


def create() -> CupyBackend:
    """Import CuPy and check for a GPU, saying which one is missing if either is."""
    try:
        import cupy
    except ImportError as error:
        raise RuntimeError(
            "cupy backend: CuPy is not installed; install the extra matching your CUDA, "
            "pip install -e .[cuda13] (or .[cuda12])") from error
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA raises its own error types when no driver is present
        raise RuntimeError(f"cupy backend: CuPy is installed but no CUDA GPU is usable here "
                           f"({type(error).__name__}: {error})") from error
    if count == 0:
        raise RuntimeError("cupy backend: CuPy is installed but no CUDA GPU is visible")
    return CupyBackend(cupy)
