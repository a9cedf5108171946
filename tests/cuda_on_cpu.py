"""The CuPy backend on the CPU: a stand-in for the `cupy` module, its CUDA kernels compiled as C++.

CI has no GPU, so the real CuPy backend skips there. This stand-in lets the tests run
`CupyBackend` anyway, at two levels:

- Kernels: `RawModule` compiles the kernel source with the system's C++ compiler, defining the
  CUDA built-ins so that the grid is one block of one thread (each kernel's grid-stride loop
  then visits every element in turn). That checks the index arithmetic of every kernel and the
  Python that launches them; NVRTC accepting the source and the GPU's memory model are left to
  the GPU run.
- Tensors: `installed()` makes the stand-in minigrad's `cupy` backend for a while, so whole
  models, optimizers and checkpoints run on "the GPU". Its arrays (`ndarray`) hold NumPy memory
  behind CuPy's interface: their type lives in a `cupy` module (minigrad's device checks see
  GPU arrays), `.get()` and `asnumpy` copy to the host, `asarray` copies host data in,
  reductions and element reads give 0-d arrays (an element read is a view, as in CuPy), and
  `__array_ufunc__` / `__array_function__` send NumPy's functions to the stand-in's, as CuPy's
  do.

What CuPy refuses, the stand-in refuses too, so CI catches code that only works on NumPy
(test_cupy_on_cpu.py shows each one raising):

- implicit conversion to NumPy: `np.asarray(gpu)`, `np.array(gpu)`,
  `np.testing.assert_allclose(gpu, ...)` raise TypeError (use `.get()`);
- a NumPy array as an operand of GPU math (`gpu + host`, `xp.exp(host)`, `xp.where(c, host,
  gpu)`, `xp.concatenate([gpu, host])`, a kernel argument) raises TypeError: CuPy never copies
  host memory in implicitly (host arrays are allowed where CuPy takes them: `asarray`, indices,
  the value of `gpu[i] = host`);
- `flags.writeable` does not exist (reading it raises AttributeError; CuPy silently ignores an
  assignment, which would leave the array writeable, so the stand-in raises there too), nor
  does `setflags`;
- `indices(..., sparse=True)`: CuPy's `indices` has no `sparse`;
- `where(condition, x, y)` with a Python bool as the condition (CuPy calls its `astype`);
- `ufunc.at` exists only for add, maximum and minimum, and `ufunc.reduce` / `accumulate` only
  for add and multiply (others raise NotImplementedError, as CuPy 13-14 do); an `at` whose
  target is a host array raises TypeError;
- `cupyx.scatter_add` and `cupyx.scipy.special.erf` take GPU arrays only.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import hashlib
import math
import shutil
import subprocess
import sys
import tempfile
import types
import weakref
from collections.abc import Iterator
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
    """What CuPy passes for each kernel argument: a GPU array's data pointer, or a typed scalar.
    A host array is refused, as CuPy refuses it. So are Python ints and floats: the backend
    passes NumPy scalars, whose C type is the kernel's, and a mismatch would garble every
    argument after it on the GPU."""
    if isinstance(value, ndarray):
        return ctypes.c_void_p(value._array.ctypes.data)
    if type(value) not in _SCALARS:
        raise TypeError(f"Unsupported type {type(value)} as a kernel argument")
    return _SCALARS[type(value)](value)


# ------------------------------------------------------------------------------ GPU arrays


class Flags:
    """cupy.ndarray.flags: c_contiguous, f_contiguous and owndata only (no `writeable`)."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, c_contiguous: bool, f_contiguous: bool, owndata: bool) -> None:
        for name, value in zip(self.__slots__, (c_contiguous, f_contiguous, owndata)):
            object.__setattr__(self, name, bool(value))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cupy.ndarray.flags are read-only and have no {name!r} (CuPy "
                             "ignores the assignment: the array would stay writeable)")

    def __getitem__(self, name: str) -> bool:
        names = {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous",
                 "OWNDATA": "owndata"}
        if name not in names:
            raise KeyError(f"{name} is not defined for cupy.ndarray.flags")
        return getattr(self, names[name])


class MemoryPointer:
    """cupy.cuda.MemoryPointer, as far as `.ptr` goes."""

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr


_UNSUPPORTED = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
                "construct a NumPy array explicitly.")
_NO_SUCH_METHOD = frozenset({"setflags", "ctypes", "tofile", "itemset", "newbyteorder"})
# methods whose arguments are data, not axes, shapes or indices: no host arrays there
_DATA_METHODS = frozenset({"dot", "clip"})
_registry: dict[int, weakref.ref] = {}  # id(NumPy array) -> its one GPU array, as CuPy's


class _Device:
    """cupy.cuda.Device's `id`: the one stand-in GPU."""

    id = 0


_DEVICE = _Device()


class ndarray:  # noqa: N801 (cupy.ndarray's name)
    """A GPU array of the stand-in: NumPy memory, CuPy's interface and CuPy's refusals.

    One wrapper per NumPy array (so `asarray(a) is a`, and `out=` returns the same object), and
    a view keeps the array it views as its `base`, as CuPy's views do.
    """

    __slots__ = ("_array", "_base", "__weakref__")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("make stand-in GPU arrays with the module's functions (asarray, empty)")

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def ndim(self) -> int:
        return self._array.ndim

    @property
    def size(self) -> int:
        return self._array.size

    @property
    def itemsize(self) -> int:
        return self._array.itemsize

    @property
    def device(self) -> Any:
        """The GPU the array is on: CuPy's cuda.Device; the stand-in has one, number 0."""
        return _DEVICE

    @property
    def nbytes(self) -> int:
        return self._array.nbytes

    @property
    def strides(self) -> tuple[int, ...]:
        return self._array.strides

    @property
    def base(self) -> ndarray | None:
        return self._base

    @property
    def flags(self) -> Flags:
        return Flags(self._array.flags.c_contiguous, self._array.flags.f_contiguous,
                     self._base is None)

    @property
    def data(self) -> MemoryPointer:
        return MemoryPointer(self._array.ctypes.data)

    @property
    def T(self) -> ndarray:  # noqa: N802
        return _wrap(self._array.T)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        a = self._array
        return {"shape": a.shape, "typestr": a.dtype.str, "descr": a.dtype.descr,
                "data": (a.ctypes.data, False), "strides": a.strides, "version": 3}

    def __getattr__(self, name: str) -> Any:
        # NumPy's own protocols (__array_interface__, __array_struct__) stay hidden: through
        # them NumPy would read the memory as a host array, which CuPy's arrays never allow
        if name in _NO_SUCH_METHOD or name.startswith("__"):
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        attribute = getattr(self._array, name)
        if not callable(attribute):
            return _wrap(attribute)
        host_ok = name not in _DATA_METHODS

        def method(*args: Any, **kwargs: Any) -> Any:
            return _wrap(attribute(*_unwrap(args, host_ok, name), **_unwrap(kwargs, host_ok,
                                                                            name)))

        return method

    # ------------------------------------------------------------------ host transfers
    def get(self, stream: Any = None, order: str = "C", out: np.ndarray | None = None
            ) -> np.ndarray:
        """A host copy (C order unless asked otherwise), as cupy.ndarray.get."""
        if out is not None:
            out[...] = self._array
            return out
        return np.array(self._array, order=order, copy=True)

    def set(self, array: np.ndarray) -> None:
        """Copy a host array of the same shape in."""
        self._array[...] = array

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(_UNSUPPORTED)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        """NumPy's function called on GPU arrays runs the stand-in's of the same name, as CuPy
        does; where there is none, NumPy raises TypeError."""
        target: Any = _MODULE
        try:
            for part in func.__module__.split(".")[1:]:
                target = getattr(target, part)
            function = getattr(target, func.__name__)
        except AttributeError:
            return NotImplemented
        if not all(issubclass(t, (ndarray, np.ndarray)) for t in types_):
            return NotImplemented
        return function(*args, **kwargs)

    # ------------------------------------------------------------------ Python protocols
    def __getitem__(self, index: Any) -> ndarray:
        index = _unwrap(index, host_ok=True)
        out = self._array[index]
        if isinstance(out, np.generic):  # CuPy gives a 0-d view of the element
            out = self._array[(*index, ...) if isinstance(index, tuple) else (index, ...)]
        return _wrap(out)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._array[_unwrap(index, host_ok=True)] = _unwrap(value, host_ok=True)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._array)

    def __iter__(self) -> Iterator[ndarray]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        return bool(self._array)

    def __float__(self) -> float:
        return float(self._array)

    def __int__(self) -> int:
        return int(self._array)

    def __complex__(self) -> complex:
        return complex(self._array)

    def __format__(self, spec: str) -> str:
        return format(self.get() if self.ndim else self._array.item(), spec)

    def __copy__(self) -> ndarray:
        return _wrap(self._array.copy(order="K"))

    def __deepcopy__(self, memo: dict) -> ndarray:
        return self.__copy__()

    def __repr__(self) -> str:
        return repr(self._array)

    def __str__(self) -> str:
        return str(self._array)

    __hash__ = None  # type: ignore[assignment]


def _defers(other: Any) -> bool:
    """Whether a binary operator should leave `other` to handle it (a Tensor, which sets
    `__array_ufunc__ = None`), as CuPy's operators do."""
    return getattr(type(other), "__array_ufunc__", False) is None


def _operators() -> None:
    """The arithmetic, comparison and in-place operators of `ndarray`, through NumPy's ufuncs
    with the stand-in's operand checks."""
    binary = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
              "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power,
              "matmul": np.matmul, "and": np.bitwise_and, "or": np.bitwise_or,
              "xor": np.bitwise_xor, "lshift": np.left_shift, "rshift": np.right_shift}
    comparisons = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
                   "gt": np.greater, "ge": np.greater_equal}
    unary = {"neg": np.negative, "pos": np.positive, "abs": np.absolute, "invert": np.invert}

    def make(ufunc: np.ufunc, kind: str) -> Any:
        def forward(self, other):
            return NotImplemented if _defers(other) else _apply_ufunc(ufunc, "__call__",
                                                                      (self, other), {})

        def reflected(self, other):
            return NotImplemented if _defers(other) else _apply_ufunc(ufunc, "__call__",
                                                                      (other, self), {})

        def in_place(self, other):
            if _defers(other):
                return NotImplemented
            _apply_ufunc(ufunc, "__call__", (self, other), {"out": (self,)})
            return self

        def single(self):
            return _apply_ufunc(ufunc, "__call__", (self,), {})

        return {"forward": forward, "reflected": reflected, "in_place": in_place,
                "single": single}[kind]

    for name, ufunc in binary.items():
        setattr(ndarray, f"__{name}__", make(ufunc, "forward"))
        setattr(ndarray, f"__r{name}__", make(ufunc, "reflected"))
        setattr(ndarray, f"__i{name}__", make(ufunc, "in_place"))
    for name, ufunc in comparisons.items():
        setattr(ndarray, f"__{name}__", make(ufunc, "forward"))
    for name, ufunc in unary.items():
        setattr(ndarray, f"__{name}__", make(ufunc, "single"))


_operators()
ndarray.__module__ = "cupy"  # where minigrad (and CuPy) say GPU arrays come from


def _wrap(value: Any) -> Any:
    """NumPy results as GPU results: arrays as `ndarray`s (the same one for the same array),
    NumPy scalars as 0-d arrays (CuPy never hands back host scalars), containers element by
    element; anything else as it is."""
    if isinstance(value, np.ndarray):
        ref = _registry.get(id(value))
        existing = ref() if ref is not None else None
        if existing is not None and existing._array is value:
            return existing
        array = object.__new__(ndarray)
        array._array = value
        owner = _owner(value)
        array._base = None if owner is value else _wrap(owner)
        key = id(value)
        _registry[key] = weakref.ref(array, functools.partial(_forget, key))
        return array
    if isinstance(value, np.generic):
        return _wrap(np.asarray(value))
    if isinstance(value, (tuple, list)):
        return type(value)(_wrap(v) for v in value)
    return value


def _forget(key: int, ref: weakref.ref) -> None:
    if _registry.get(key) is ref:
        del _registry[key]


def _owner(array: np.ndarray) -> np.ndarray:
    """The NumPy array that owns `array`'s memory (through as_strided's helper objects)."""
    while True:
        base = array.base
        if not isinstance(base, np.ndarray):
            base = getattr(base, "base", None)
        if not isinstance(base, np.ndarray):
            return array
        array = base


def _unwrap(value: Any, host_ok: bool, where: str = "") -> Any:
    """GPU arrays as their NumPy memory, inside tuples, lists and dicts too. A host array where
    CuPy would need GPU data (`host_ok` False) raises CuPy's TypeError."""
    kind = type(value)
    if kind is ndarray:
        return value._array
    if kind in _PLAIN:
        return value
    if kind is tuple or kind is list:
        return kind(_unwrap(v, host_ok, where) for v in value)
    if isinstance(value, np.ndarray):
        if host_ok:
            return value
        raise TypeError(f"Unsupported type {type(value)}"
                        + (f" (a host array given to {where} of GPU arrays)" if where else ""))
    if isinstance(value, dict):
        return {k: _unwrap(v, host_ok, where) for k, v in value.items()}
    return value


_PLAIN = frozenset({int, float, bool, str, type(None), slice, type(Ellipsis), np.int64,
                    np.float32, np.float64})
_OPERAND_TYPES = (ndarray, np.generic, bool, int, float, complex)
_AT = {"add", "maximum", "minimum"}  # CuPy's ufunc.at (cupyx.scatter_add and its kin)
_REDUCE = {"add", "multiply"}  # CuPy's ufunc.reduce and accumulate


def _operand(value: Any, name: str) -> Any:
    """A ufunc operand: a GPU array or a scalar. Anything else (a host array, a list) is
    CuPy's TypeError."""
    if not isinstance(value, _OPERAND_TYPES):
        raise TypeError(f"Unsupported type {type(value)} (an operand of {name} on the GPU)")
    return value._array if isinstance(value, ndarray) else value


def _apply_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """`ufunc` (or its method) on GPU operands, refusing what CuPy refuses."""
    name = ufunc.__name__
    if method == "at":
        if name not in _AT:
            raise NotImplementedError(f"`cupy_{name}.at` is not supported yet")
        target, index, *values = inputs
        if not isinstance(target, ndarray):
            raise TypeError(f"{name}.at: the target is a {type(target)}, not a GPU array")
        ufunc.at(target._array, _unwrap(index, host_ok=True), *_unwrap(values, host_ok=True))
        return None
    if method in ("reduce", "accumulate", "reduceat") and name not in _REDUCE:
        raise NotImplementedError(f"`cupy_{name}.{method}` is not supported yet")
    if method not in ("__call__", "reduce", "accumulate", "reduceat", "outer"):
        return NotImplemented
    if method in ("__call__", "outer"):
        arrays = [_operand(x, name) for x in inputs]
    else:  # the array, then axis or indices
        arrays = [_operand(inputs[0], name), *_unwrap(inputs[1:], host_ok=True)]
    out = kwargs.get("out")
    if out is not None:
        out = out if isinstance(out, tuple) else (out,)
        kwargs = {**kwargs, "out": tuple(_operand(x, name) for x in out)}
    function = ufunc if method == "__call__" else getattr(ufunc, method)
    result = function(*arrays, **kwargs)
    if out is not None:
        return out[0] if len(out) == 1 else out
    return _wrap(result)


# ------------------------------------------------------------------------------- the module


class Ufunc:
    """A CuPy ufunc: NumPy's, on GPU operands only, with CuPy's subset of methods."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__
        self.nin, self.nout = ufunc.nin, ufunc.nout

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        return _apply_ufunc(self._ufunc, "__call__", inputs, kwargs)

    def at(self, a: Any, indices: Any, b: Any = None) -> None:
        _apply_ufunc(self._ufunc, "at", (a, indices) if b is None else (a, indices, b), {})

    def reduce(self, array: Any, *args: Any, **kwargs: Any) -> Any:
        return _apply_ufunc(self._ufunc, "reduce", (array, *args), kwargs)

    def accumulate(self, array: Any, *args: Any, **kwargs: Any) -> Any:
        return _apply_ufunc(self._ufunc, "accumulate", (array, *args), kwargs)

    def outer(self, a: Any, b: Any, **kwargs: Any) -> Any:
        return _apply_ufunc(self._ufunc, "outer", (a, b), kwargs)


def _elementwise(function: Any) -> Any:
    """A CuPy function whose every array argument is an operand (clip)."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        name = function.__name__
        args = tuple(_operand(a, name) if a is not None else None for a in args)
        kwargs = _unwrap(kwargs, host_ok=False, where=name)
        return _wrap(function(*args, **kwargs))

    return call


def _on_gpu_data(function: Any) -> Any:
    """A CuPy function of GPU data: its first argument (or each array in it, for
    concatenate and stack) must be on the GPU; later arguments (indices, widths, split
    points) may be host arrays, which CuPy copies in or reads."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        if args:
            args = (_unwrap(args[0], host_ok=False, where=function.__name__),
                    *_unwrap(args[1:], host_ok=True))
        return _wrap(function(*args, **_unwrap(kwargs, host_ok=True)))

    return call


def _host_copy(a: Any, dtype: Any = None) -> np.ndarray:
    """Host data as fresh memory for the GPU (CuPy always copies host memory to the device):
    C order unless the host array is Fortran-ordered only."""
    host = np.asarray(a, dtype=dtype)
    fortran = host.ndim > 1 and host.flags.f_contiguous and not host.flags.c_contiguous
    return np.array(host, order="F" if fortran else "C", copy=True)


def asarray(a: Any, dtype: Any = None, order: Any = None, *, blocking: bool = False) -> ndarray:
    """A GPU array as it is (cast if `dtype` differs), host data copied to the GPU."""
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    return _wrap(_host_copy(a, dtype))


def array(obj: Any, dtype: Any = None, copy: bool = True, order: str = "K", subok: bool = False,
          ndmin: int = 0, *, blocking: bool = False) -> ndarray:
    """A copy on the GPU (or the GPU array itself, with copy=False and nothing to change)."""
    if isinstance(obj, ndarray):
        return _wrap(np.array(obj._array, dtype=dtype, copy=copy or None, order=order,
                              ndmin=ndmin))
    return _wrap(np.array(_host_copy(obj, dtype), ndmin=ndmin, copy=None))


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
    """A host copy of a GPU array; host data as a NumPy array."""
    return a.get(order=order, out=out) if isinstance(a, ndarray) else np.asarray(a, order=order)


def indices(dimensions: Any, dtype: Any = int) -> ndarray:
    """cupy.indices: the dense grid only (CuPy's has no `sparse=`)."""
    return _wrap(np.indices(tuple(dimensions), dtype=dtype))


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    """cupy.where: the condition must be an array (CuPy calls its `astype`, which a Python bool
    lacks); every argument is an operand (no host arrays)."""
    if x is None and y is None:
        return _wrap(np.nonzero(_unwrap(condition, host_ok=False, where="where")))
    if not isinstance(condition, (ndarray, np.generic)):
        raise AttributeError(f"'{type(condition).__name__}' object has no attribute 'astype'")
    return _wrap(np.where(*(_operand(a, "where") for a in (condition, x, y))))


def get_array_module(*args: Any) -> Any:
    return _MODULE if any(isinstance(a, ndarray) for a in args) else np


def _like(function: Any) -> Any:
    """zeros_like and its kin read only the shape and dtype, so host arrays may serve."""

    @functools.wraps(function)
    def call(a: Any, *args: Any, **kwargs: Any) -> ndarray:
        return _wrap(function(_unwrap(a, host_ok=True), *args, **kwargs))

    return call


_OWN = {"asarray": asarray, "asanyarray": asarray, "array": array, "asnumpy": asnumpy,
        "indices": indices, "where": where, "get_array_module": get_array_module,
        "ndarray": ndarray, "RawModule": RawModule}
_ELEMENTWISE = {"clip"}


class _Namespace:
    """A stand-in for `cupy` or one of its submodules, mirroring NumPy's of the same path."""

    def __init__(self, numpy_module: Any, name: str) -> None:
        self._numpy = numpy_module
        self.__name__ = name
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._cache:
            self._cache[name] = self._make(name)
        return self._cache[name]

    def _make(self, name: str) -> Any:
        if self._numpy is np and name in _OWN:
            return _OWN[name]
        attribute = getattr(self._numpy, name)
        if isinstance(attribute, np.ufunc):
            return Ufunc(attribute)
        if isinstance(attribute, types.ModuleType):
            return _Namespace(attribute, f"{self.__name__}.{name}")
        if isinstance(attribute, type) or not callable(attribute):
            return attribute  # dtypes, finfo, constants (inf, newaxis)
        if name in _ELEMENTWISE:
            return _elementwise(attribute)
        if name.endswith("_like"):
            return _like(attribute)
        return _on_gpu_data(attribute)


class CupyOnCpu(_Namespace):
    """The `cupy` module as minigrad uses it: NumPy's functions on the stand-in's GPU arrays,
    plus the RawModule above."""

    def __init__(self) -> None:
        super().__init__(np, "cupy")


_MODULE = CupyOnCpu()  # what NumPy's functions called on GPU arrays dispatch to


# ------------------------------------------------------------------------------------ cupyx


def scatter_add(a: Any, slices: Any, value: Any) -> None:
    """cupyx.scatter_add: a[slices] += value, repeated indices adding up, into a GPU array."""
    if not isinstance(a, ndarray):
        raise TypeError(f"cupyx.scatter_add: the target is a {type(a)}, not a GPU array")
    np.add.at(a._array, _unwrap(slices, host_ok=True), _unwrap(value, host_ok=True))


def erf(x: Any) -> ndarray:
    """cupyx.scipy.special.erf, a ufunc: GPU operands only, the input's float dtype kept."""
    data = _operand(x, "erf")
    dtype = np.result_type(getattr(data, "dtype", np.float64), np.float32)
    return _wrap(np.vectorize(math.erf, otypes=[dtype])(data))


def cupyx_modules() -> dict[str, types.ModuleType]:
    """`cupyx`, `cupyx.scipy` and `cupyx.scipy.special` as CupyBackend imports them."""
    special = types.ModuleType("cupyx.scipy.special")
    special.erf = erf
    scipy = types.ModuleType("cupyx.scipy")
    scipy.special = special
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy, cupyx.scatter_add = scipy, scatter_add
    return {"cupyx": cupyx, "cupyx.scipy": scipy, "cupyx.scipy.special": special}


# ------------------------------------------------------------------------- as the backend


@contextlib.contextmanager
def installed(backend: Any = None) -> Iterator[Any]:
    """Within the block, the stand-in is minigrad's `cupy` backend: `load("cupy")` returns
    `backend` (a `CupyBackend` on `CupyOnCpu()` unless given), `import cupyx` finds the
    stand-in's, and GPU arrays are the stand-in's `ndarray`s, which minigrad's device checks
    (the type's module, `__cuda_array_interface__`) take for CuPy's. Everything is put back
    afterwards, the active backend included."""
    from minigrad import backends
    from minigrad.backends.cupy_backend import CupyBackend

    backend = backend if backend is not None else CupyBackend(CupyOnCpu())
    absent = object()
    saved_backend = backends._loaded.get("cupy", absent)
    saved_current = backends._current
    modules = cupyx_modules()
    saved_modules = {name: sys.modules.get(name, absent) for name in modules}
    backends._loaded["cupy"] = backend
    sys.modules.update(modules)
    try:
        yield backend
    finally:
        backends._current = saved_current
        if saved_backend is absent:
            backends._loaded.pop("cupy", None)
        else:
            backends._loaded["cupy"] = saved_backend
        for name, module in saved_modules.items():
            if module is absent:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


__all__ = ["CupyOnCpu", "Flags", "RawModule", "compiler", "cupyx_modules", "installed",
           "ndarray"]
