"""Reading the files `torch.save` writes (torchvision's published `.pth` weights among them),
without PyTorch and without running pickled code.

Such a file is a zip: `<name>/data.pkl` is a pickle of the saved object, whose tensors point
at raw storages stored beside it as `<name>/data/<key>` (little-endian bytes). The pickle is
read by an unpickler that knows only the globals a state dict needs (OrderedDict, the tensor
rebuild function, the storage types) and refuses any other by name before it could run:
`os.system`, `builtins.eval`, `subprocess.Popen`... Tensors come back as minigrad tensors,
each with its own memory (views into one storage are copied out of it).
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from typing import Any

import numpy as np

from minigrad.tensor import Tensor

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


def is_torch_file(path: str) -> bool:
    """Whether `path` is a zip holding a pickle as torch.save writes it."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/data.pkl") for name in archive.namelist())


def load_torch_file(path: str) -> Any:
    """The object torch.save wrote to `path`, with minigrad tensors in place of torch's."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = archive.read(prefix + "byteorder").decode().strip() \
            if prefix + "byteorder" in archive.namelist() else "little"
        if byteorder != "little":
            raise ValueError(f"minigrad.load: {path!r} stores big-endian data; only "
                             "little-endian torch files are read")
        unpickler = _StateDictUnpickler(archive.open(pickles[0]), archive, prefix, path)
        try:
            return unpickler.load()
        except (pickle.UnpicklingError, TypeError, ValueError, AttributeError, EOFError,
                IndexError, KeyError) as error:  # what a malformed pickle can raise
            raise ValueError(f"minigrad.load: {path!r} is not a state dict minigrad reads: "
                             f"{error}") from None


class _Storage:
    """One raw storage of the file, as a flat NumPy array."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: tuple, stride: tuple,
                       requires_grad: bool = False, backward_hooks: Any = None,
                       metadata: Any = None) -> Tensor:
    """torch._utils._rebuild_tensor_v2, checked: the view must lie inside its storage."""
    data = storage.array
    size, stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or offset < 0 or min(stride, default=0) < 0:
        raise pickle.UnpicklingError(f"a tensor of size {size}, stride {stride} and offset "
                                     f"{offset} is malformed")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
    if last >= len(data):
        raise pickle.UnpicklingError(f"a tensor of size {size}, stride {stride} and offset "
                                     f"{offset} reaches past its storage of {len(data)} "
                                     "elements")
    view = np.lib.stride_tricks.as_strided(data[offset:] if len(data) else data, size,
                                           tuple(s * data.itemsize for s in stride))
    return Tensor(np.array(view), requires_grad=bool(requires_grad))


def _rebuild_parameter(data: Tensor, requires_grad: bool, backward_hooks: Any) -> Tensor:
    data.requires_grad = bool(requires_grad)
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _StateDictUnpickler(pickle.Unpickler):
    """Knows only `_ALLOWED`; every other global is refused by name, before it is called."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str, path: str) -> None:
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a state dict needs "
                                         "only tensors, storages and OrderedDict, and loading "
                                         "anything else could run code")
        return _ALLOWED[(module, name)]

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, kind, key, _location, numel = pid
        if key not in self.storages:
            name = f"{self.prefix}data/{key}"
            try:
                raw = self.archive.read(name)
            except KeyError:
                raise pickle.UnpicklingError(f"the storage {name} is missing") from None
            if len(raw) < int(numel) * kind.dtype.itemsize:
                raise pickle.UnpicklingError(f"the storage {name} holds {len(raw)} bytes, "
                                             f"fewer than its {numel} {kind.name} elements")
            array = np.frombuffer(raw, dtype=kind.dtype.newbyteorder("<"), count=int(numel))
            self.storages[key] = _Storage(array.astype(kind.dtype))
        return self.storages[key]
