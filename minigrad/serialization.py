"""`save` and `load`: checkpoints as plain `.npz` files that never need pickle.

A checkpoint is any nesting of dicts, lists and tuples whose leaves are Tensors, NumPy arrays
(CuPy arrays are copied to the host), NumPy scalars, Python numbers, bools, strings and None:
a model's `state_dict()`, an optimizer's, a scheduler's, or one dict holding them all with the
epoch and the RNG state.

The file is an ordinary `.npz` archive. Every array is an entry under a flat name (`a0`, `a1`,
...); the nesting and every non-array value live in one JSON document, stored as a uint8 array
under `__minigrad__` with a format name and version. So `np.load(path)` reads any checkpoint
without minigrad, and `load` reads it with `allow_pickle=False`: a file from a stranger can hold
nothing that runs code when it is loaded.

`save` writes a temporary file beside the target, fsyncs it and renames it over the target, so a
crash or an error part-way leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from minigrad.tensor import Tensor
from minigrad.torch_format import is_torch_file, load_torch_file

__all__ = ["FORMAT", "VERSION", "METADATA_KEY", "save", "load", "write_atomically"]

FORMAT = "minigrad.checkpoint"
VERSION = 1
METADATA_KEY = "__minigrad__"

# Dtype kinds an entry may have: bool, ints, unsigned ints, floats, complex. Everything else
# (objects above all) would need pickle or has no meaning as a tensor.
_ARRAY_KINDS = "biufc"
_TYPE = "__type__"  # the tag of every JSON object that encodes a container or a special leaf

PathLike = str | os.PathLike


# ---------------------------------------------------------------------------------- saving
def save(obj: Any, path: PathLike) -> None:
    """Write `obj` to `path` (exactly that name: no `.npz` is appended), atomically.

    Everything is checked before a byte is written: an unsupported value raises a TypeError that
    names where it sits (e.g. `obj['optimizer']['state'][0]['exp_avg']`) and the file system is
    untouched. Tensors are saved without their grad or graph; `load` gives them back as Tensors
    and arrays as arrays.
    """
    arrays: dict[str, np.ndarray] = {}
    root = _encode(obj, "obj", arrays, set())
    document = {"format": FORMAT, "version": VERSION, "root": root}
    text = json.dumps(document, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    arrays[METADATA_KEY] = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    write_atomically(path, lambda file: np.savez(file, **arrays))


def _encode(value: Any, where: str, arrays: dict[str, np.ndarray], open_ids: set[int]) -> Any:
    """The JSON node for `value`; its arrays are added to `arrays` under fresh flat names.

    `where` is the key path so far, for error messages; `open_ids` holds the containers being
    encoded, so a structure that contains itself is refused rather than recursing forever.
    """
    if isinstance(value, Tensor):
        node = _encode_array(value.array, where, arrays, "tensor")
        return {**node, "requires_grad": bool(value.requires_grad)}
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        return _encode_array(value, where, arrays, "ndarray")
    if isinstance(value, np.generic):
        return _encode_array(np.asarray(value), where, arrays, "numpy_scalar")
    if isinstance(value, (dict, list, tuple)):
        return _encode_container(value, where, arrays, open_ids)
    return _encode_scalar(value, where)


def _encode_array(array: Any, where: str, arrays: dict[str, np.ndarray], kind: str) -> dict:
    if hasattr(array, "__cuda_array_interface__"):
        array = array.get()  # CuPy: the checkpoint holds host memory
    if array.dtype.kind not in _ARRAY_KINDS:
        raise TypeError(f"minigrad.save: cannot save the {array.dtype} array at {where}: only "
                        "bool, integer, float and complex arrays can be stored without pickle")
    name = f"a{len(arrays)}"
    arrays[name] = array
    return {_TYPE: kind, "entry": name}


def _encode_container(value: dict | list | tuple, where: str, arrays: dict[str, np.ndarray],
                      open_ids: set[int]) -> Any:
    if id(value) in open_ids:
        raise TypeError(f"minigrad.save: {where} contains itself; a checkpoint must be a tree")
    open_ids.add(id(value))
    try:
        if isinstance(value, dict):
            # JSON objects only have string keys, and optimizer state uses int keys: store the
            # items as [key, value] pairs, which also keeps their order.
            items = [[_encode_key(k, where), _encode(v, f"{where}[{k!r}]", arrays, open_ids)]
                     for k, v in value.items()]
            kind = "ordered_dict" if isinstance(value, OrderedDict) else "dict"
            return {_TYPE: kind, "items": items}
        items = [_encode(v, f"{where}[{i}]", arrays, open_ids) for i, v in enumerate(value)]
        return items if isinstance(value, list) else {_TYPE: "tuple", "items": items}
    finally:
        open_ids.discard(id(value))


def _encode_key(key: Any, where: str) -> Any:
    if isinstance(key, (str, int, float)) or key is None:
        return _encode_scalar(key, f"{where} (key {key!r})")
    raise TypeError(f"minigrad.save: cannot save the {type(key).__name__} key {key!r} in "
                    f"{where}: dict keys must be str, int, float, bool or None")


def _encode_scalar(value: Any, where: str) -> Any:
    """Python scalars as JSON values; non-finite floats by their bits, which JSON cannot hold."""
    if value is None or isinstance(value, str):
        return None if value is None else str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)  # json writes repr(float), which reads back bit for bit
        return {_TYPE: "float", "bits": struct.pack("<d", value).hex()}
    raise TypeError(f"minigrad.save: cannot save {type(value).__name__} at {where}: a "
                    "checkpoint holds only Tensors, arrays, numbers, bools, strings, None and "
                    "dicts, lists and tuples of them")


def write_atomically(path: PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Call `write(file)` on a temporary file beside `path`, fsync, then rename it over `path`:
    a reader sees the old file or the new one, never half of one; an error leaves the old one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    # 0o666 through the umask, as open() would give the target (mkstemp would give 0o600).
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        _remove_quietly(temp)
        raise
    _fsync_directory(directory)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable where the platform allows it (not on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------- loading
def load(path: PathLike, map_location: Any = None, *, weights_only: bool | None = True) -> Any:
    """Read a checkpoint written by `save`: Tensors come back as Tensors on the current backend
    (on `map_location`, a device such as "cpu" or "cuda", when given), arrays as NumPy arrays,
    containers and scalars as they were. `weights_only` is accepted for PyTorch's signature:
    minigrad's loading is always weights-only, whatever it says. A file `torch.save` wrote (a
    state dict, e.g. torchvision's `.pth` weights) is read too, without PyTorch and without
    running pickled code (minigrad.torch_format).

    Never unpickles. A missing file raises FileNotFoundError; a truncated or corrupt file, a
    `.npz` that minigrad did not write, a newer format version, an entry the metadata names but
    the archive lacks, or one that would need pickle raise a ValueError naming the file and the
    problem.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"minigrad.load: no such file: {path!r}")
    if is_torch_file(path):
        loaded = load_torch_file(path)
    else:
        with _open_archive(path) as archive:
            document = _read_metadata(path, archive)
            loaded = _Decoder(path, archive).decode(document["root"], "obj")
    return loaded if map_location is None else _moved(loaded, map_location)


def _moved(value: Any, device: Any) -> Any:
    """Every Tensor inside `value` moved to `device`."""
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return type(value)((k, _moved(v, device)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(v, device) for v in value)
    return value


def _open_archive(path: str) -> Any:
    """np.load without pickle; anything but a readable .npz archive is a ValueError."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"minigrad.load: {path!r} is not a readable .npz checkpoint "
                         f"(truncated or corrupt?): {error}") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"minigrad.load: {path!r} is a single .npy array, not a .npz checkpoint")
    return archive


def _read_entry(archive: Any, path: str, name: str) -> np.ndarray:
    """One entry, its CRC checked, with numpy's and zipfile's errors made into a ValueError that
    names the file and the entry (an object array, which needs pickle, is one of them)."""
    try:
        return archive[name]
    except Exception as error:  # zipfile, zlib and numpy each raise their own kinds
        if isinstance(error, ValueError) and "allow_pickle" in str(error):
            problem = "holds pickled objects, and minigrad.load never unpickles"
        else:
            problem = "cannot be read (truncated file or bad CRC?)"
        raise ValueError(f"minigrad.load: {path!r}: entry {name!r} {problem}: {error}"
                         ) from error


def _read_metadata(path: str, archive: Any) -> dict[str, Any]:
    if METADATA_KEY not in archive.files:
        raise ValueError(f"minigrad.load: {path!r} has no {METADATA_KEY!r} entry: it is a .npz "
                         "that minigrad.save did not write")
    raw = _read_entry(archive, path, METADATA_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"minigrad.load: {path!r}: the {METADATA_KEY!r} entry is not the "
                         "uint8 JSON document minigrad.save writes")
    try:
        document = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"minigrad.load: {path!r}: the {METADATA_KEY!r} entry is not valid "
                         f"JSON: {error}") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"minigrad.load: {path!r}: the metadata does not name the format "
                         f"{FORMAT!r}")
    version = document.get("version")
    if version != VERSION:
        raise ValueError(f"minigrad.load: {path!r} has format version {version!r}; this "
                         f"minigrad reads version {VERSION} only (a newer minigrad wrote it?)")
    if "root" not in document:
        raise ValueError(f"minigrad.load: {path!r}: the metadata has no 'root'")
    return document


class _Decoder:
    """Rebuilds the saved object from the JSON nodes, reading only the entries they name and
    checking each node as it goes, so malformed metadata gives a ValueError, not a KeyError."""

    def __init__(self, path: str, archive: Any) -> None:
        self.path, self.archive = path, archive

    def fail(self, where: str, problem: str) -> ValueError:
        return ValueError(f"minigrad.load: {self.path!r}: at {where}: {problem}")

    def decode(self, node: Any, where: str) -> Any:
        if node is None or isinstance(node, (str, bool, int, float)):
            return node
        if isinstance(node, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, dict) or not isinstance(node.get(_TYPE), str):
            raise self.fail(where, f"malformed metadata node {node!r}")
        kind = node[_TYPE]
        if kind in ("dict", "ordered_dict"):
            return self.decode_dict(node, where, OrderedDict if kind == "ordered_dict" else dict)
        if kind == "tuple":
            return tuple(self.decode(v, f"{where}[{i}]")
                         for i, v in enumerate(self.field(node, "items", list, where)))
        if kind == "float":
            return self.decode_float(node, where)
        if kind in ("tensor", "ndarray", "numpy_scalar"):
            return self.decode_array(node, kind, where)
        raise self.fail(where, f"unknown node type {kind!r}")

    def field(self, node: dict, name: str, kind: type, where: str) -> Any:
        value = node.get(name)
        if not isinstance(value, kind):
            raise self.fail(where, f"malformed metadata: {name!r} should be a {kind.__name__}")
        return value

    def decode_dict(self, node: dict, where: str, factory: type) -> dict:
        out = factory()
        for pair in self.field(node, "items", list, where):
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail(where, f"malformed dict item {pair!r}")
            key = self.decode(pair[0], f"{where} (key)")
            out[key] = self.decode(pair[1], f"{where}[{key!r}]")
        return out

    def decode_float(self, node: dict, where: str) -> float:
        bits = self.field(node, "bits", str, where)
        try:
            return struct.unpack("<d", bytes.fromhex(bits))[0]
        except (ValueError, struct.error) as error:
            raise self.fail(where, f"bad float bits {bits!r}") from error

    def decode_array(self, node: dict, kind: str, where: str) -> Any:
        entry = self.field(node, "entry", str, where)
        if entry == METADATA_KEY or entry not in self.archive.files:
            raise self.fail(where, f"entry {entry!r} is missing from the archive")
        array = _read_entry(self.archive, self.path, entry)
        if array.dtype.kind not in _ARRAY_KINDS:
            raise self.fail(where, f"entry {entry!r} has unsupported dtype {array.dtype}")
        if kind == "ndarray":
            return array
        if kind == "numpy_scalar":
            return array[()]
        return Tensor(array, requires_grad=bool(node.get("requires_grad", False)))
