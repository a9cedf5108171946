"""The CuPy backend on the CPU: its CUDA kernels compiled as C++ and run by one host thread.

CI has no GPU, so the real CuPy backend skips there. This stand-in for the `cupy` module lets
the tests run `CupyBackend` anyway: array functions are NumPy's, and `RawModule` compiles the
kernel source with the system's C++ compiler, defining the CUDA built-ins so that the grid is
one block of one thread (each kernel's grid-stride loop then visits every element in turn).
What this checks is the index arithmetic of every kernel and the Python that launches them;
what it cannot check (NVRTC accepting the source, the GPU's memory model) the GPU run does.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CUDA_BUILTINS = r"""
struct CudaDim { long long x, y, z; };
static const CudaDim blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static const CudaDim blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
#define __device__
#define __forceinline__ inline
"""

_SCALARS = {np.int64: ctypes.c_longlong, np.float32: ctypes.c_float, np.float64: ctypes.c_double}


def compiler() -> str | None:
    """The C++ compiler the stand-in uses, or None where there is none."""
    return shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


@functools.cache
def build_dir() -> Path:
    """One scratch directory per test run for the compiled kernels, removed at exit."""
    path = Path(tempfile.mkdtemp(prefix="minigrad-cuda-on-cpu-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class RawModule:
    """cupy.RawModule's interface: the source is compiled once into a shared library."""

    def __init__(self, code: str) -> None:
        source = CUDA_BUILTINS + code
        name = hashlib.sha256(source.encode()).hexdigest()[:16]
        library = build_dir() / f"{name}.so"
        if not library.exists():
            path = build_dir() / f"{name}.cpp"
            path.write_text(source)
            subprocess.run([compiler(), "-O1", "-shared", "-fPIC", "-Wall", "-Werror",
                            "-o", str(library), str(path)], check=True, capture_output=True)
        self._library = ctypes.CDLL(str(library))

    def get_function(self, name: str) -> Any:
        function = getattr(self._library, name)

        def launch(grid: tuple, block: tuple, args: tuple) -> None:
            assert all(size > 0 for size in grid + block)
            function(*[_c_argument(a) for a in args])

        return launch


def _c_argument(value: Any) -> Any:
    """What CuPy passes for each kernel argument: an array's data pointer, or a typed scalar.
    Python ints and floats are refused: the backend passes NumPy scalars, whose C type is
    the kernel's, and a mismatch would garble every argument after it on the GPU."""
    if isinstance(value, np.ndarray):
        return ctypes.c_void_p(value.ctypes.data)
    return _SCALARS[type(value)](value)


class CupyOnCpu:
    """The `cupy` module as CupyBackend uses it: NumPy, plus the RawModule above."""

    __name__ = "cupy"
    RawModule = RawModule

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)
