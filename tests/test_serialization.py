"""minigrad.serialization: bit-exact round trips, atomic writes, and refusing bad files safely.

A checkpoint must come back exactly (values to the bit, dtypes, shapes, container and leaf
types), resuming from one must continue training as if never interrupted, a failed save must
never damage the previous file, and `load` must refuse anything it did not write -- without ever
unpickling, which the pickled-object test proves by watching for the payload's side effect.
"""

from __future__ import annotations

import json
import os
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.optim import Adam, lr_scheduler
from minigrad.random import generator
from minigrad.serialization import FORMAT, METADATA_KEY, VERSION, load, save

DTYPES = [np.float32, np.float64, np.int64, np.bool_, np.uint8]


# ------------------------------------------------------------------------------- helpers
def assert_identical(actual: Any, expected: Any, where: str = "obj") -> None:
    """Same types all the way down, arrays equal to the bit (NaN payloads and -0.0 included)."""
    assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
    if isinstance(expected, mg.Tensor):
        assert actual.requires_grad == expected.requires_grad, where
        assert_identical(actual.numpy(), expected.numpy(), where)
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape), where
        assert actual.tobytes() == expected.tobytes(), where  # C order whatever the layout
    elif isinstance(expected, float):
        assert struct.pack("<d", actual) == struct.pack("<d", expected), where
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{where}: keys or their order differ"
        for (ka, va), (ke, ve) in zip(actual.items(), expected.items()):
            assert type(ka) is type(ke), f"{where}: key {ke!r}"
            assert_identical(va, ve, f"{where}[{ke!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_identical(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, where


def round_trip(obj: Any, path: Path) -> Any:
    save(obj, path)
    return load(path)


def write_npz(path: Path, document: Any, **arrays: np.ndarray) -> None:
    """A hand-made .npz with the given metadata document, for the refusal tests."""
    text = json.dumps(document).encode()
    np.savez(path, **arrays, **{METADATA_KEY: np.frombuffer(text, dtype=np.uint8)})


def leftovers(directory: Path, keep: str) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name != keep)


# ----------------------------------------------------------------------------- strategies
array_st = hnp.arrays(dtype=st.sampled_from(DTYPES),
                      shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
leaf_st = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6),
    array_st, array_st.map(mg.tensor), array_st.map(lambda a: a[()] if a.ndim == 0 else a),
)
key_st = st.one_of(st.text(max_size=6), st.integers(), st.booleans(), st.none())
tree_st = st.recursive(
    leaf_st,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(key_st, children, max_size=3),
        st.dictionaries(st.text(max_size=4), children, max_size=3).map(OrderedDict),
    ),
    max_leaves=8,
)


# ------------------------------------------------------------------------------ round trips
@given(tree_st)
def test_nested_structures_round_trip_bit_exactly(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("ckpt") / "tree.ckpt"
    assert_identical(round_trip(obj, path), obj)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (3,), (2, 3, 4)])
def test_arrays_and_tensors_keep_dtype_shape_and_kind(tmp_path, dtype, shape):
    array = np.asarray(np.random.default_rng(0).standard_normal(shape) * 50).astype(dtype)
    obj = {"array": array, "tensor": mg.tensor(array), "grad": mg.tensor(np.ones(2),
                                                                         requires_grad=True)}
    out = round_trip(obj, tmp_path / "a.ckpt")
    assert_identical(out, obj)
    assert isinstance(out["tensor"], mg.Tensor) and isinstance(out["array"], np.ndarray)


def test_special_floats_and_big_ints_survive(tmp_path):
    obj = [float("nan"), -float("inf"), float("inf"), -0.0, 5e-324, 0.1, 2**100, -(2**70)]
    assert_identical(round_trip(obj, tmp_path / "s.ckpt"), obj)


def test_non_contiguous_array_round_trips(tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(4, 6)[::2, ::-3]
    out = round_trip({"x": array}, tmp_path / "v.ckpt")
    np.testing.assert_array_equal(out["x"], array)


def test_gpu_arrays_are_saved_from_host_memory(tmp_path):
    """Anything with __cuda_array_interface__ (a CuPy array) is saved through .get()."""
    class FakeCupyArray:
        __cuda_array_interface__: dict = {}

        def __init__(self, host: np.ndarray) -> None:
            self.host = host

        def get(self) -> np.ndarray:
            return self.host

    host = np.arange(5, dtype=np.float32)
    out = round_trip({"w": FakeCupyArray(host)}, tmp_path / "g.ckpt")
    assert_identical(out["w"], host)


def test_file_is_a_plain_npz_with_versioned_json_metadata(tmp_path):
    path = tmp_path / "m.ckpt"
    save({"w": np.ones(3)}, path)
    with np.load(path, allow_pickle=False) as archive:
        document = json.loads(archive[METADATA_KEY].tobytes())
        arrays = [name for name in archive.files if name != METADATA_KEY]
        assert (document["format"], document["version"]) == (FORMAT, VERSION)
        np.testing.assert_array_equal(archive[arrays[0]], np.ones(3))


# ------------------------------------------------------------------------ models and optim
def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 4 * 4, 3))


def batch(seed: int) -> tuple[mg.Tensor, mg.Tensor]:
    rng = np.random.default_rng(seed)
    return (mg.tensor(rng.standard_normal((4, 1, 6, 6)).astype(np.float32)),
            mg.tensor(rng.standard_normal((4, 3)).astype(np.float32)))


def train(model, optimizer, scheduler, steps: range) -> None:
    for step in steps:
        x, y = batch(step)
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        scheduler.step()


def test_model_state_dict_loads_into_a_fresh_model(tmp_path):
    mg.manual_seed(0)
    model = small_model()
    model(batch(0)[0])  # train-mode forward: running stats and num_batches_tracked move
    state = round_trip(model.state_dict(), tmp_path / "model.ckpt")
    assert isinstance(state, OrderedDict) and list(state) == list(model.state_dict())
    assert_identical(state, model.state_dict())

    mg.manual_seed(1)
    fresh = small_model()
    fresh.load_state_dict(state)
    model.eval(), fresh.eval()
    x = batch(1)[0]
    assert model(x).numpy().tobytes() == fresh(x).numpy().tobytes()


def make_run(seed: int):
    mg.manual_seed(seed)
    model = small_model()
    optimizer = Adam(model.parameters(), lr=1e-2, amsgrad=True)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=20)
    return model, optimizer, scheduler


def test_resuming_a_checkpoint_continues_training_bit_identically(tmp_path, host_backend):
    with mg.backend(host_backend):
        resume_and_compare(tmp_path)


def resume_and_compare(tmp_path: Path) -> None:
    model, optimizer, scheduler = make_run(0)
    train(model, optimizer, scheduler, range(3))
    generator().standard_normal(7)  # the RNG state is part of what resumes
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "scheduler": scheduler.state_dict(), "epoch": 3,
                  "rng": generator().bit_generator.state}
    save(checkpoint, tmp_path / "run.ckpt")
    assert_identical(load(tmp_path / "run.ckpt"), checkpoint)
    train(model, optimizer, scheduler, range(3, 7))
    expected_draw = generator().standard_normal(3)

    resumed, resumed_optimizer, resumed_scheduler = make_run(1)
    loaded = load(tmp_path / "run.ckpt")
    resumed.load_state_dict(loaded["model"])
    resumed_optimizer.load_state_dict(loaded["optimizer"])
    resumed_scheduler.load_state_dict(loaded["scheduler"])
    generator().bit_generator.state = loaded["rng"]
    train(resumed, resumed_optimizer, resumed_scheduler, range(loaded["epoch"], 7))

    assert_identical(resumed.state_dict(), model.state_dict())
    assert_identical(resumed_optimizer.state_dict(), optimizer.state_dict())
    assert_identical(resumed_scheduler.state_dict(), scheduler.state_dict())
    assert resumed_scheduler.get_last_lr() == scheduler.get_last_lr()
    assert_identical(generator().standard_normal(3), expected_draw)


# ------------------------------------------------------------------------------- atomicity
def _savez_that_fails(file, *args, **kwargs):
    file.write(b"PK\x03\x04 half a zip")
    raise OSError("disk full")


def _replace_that_fails(src, dst):
    raise OSError("rename failed")


@pytest.mark.parametrize("target, replacement", [
    (np, ("savez", _savez_that_fails)),
    (os, ("replace", _replace_that_fails)),
])
def test_failed_save_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, target,
                                                          replacement):
    path = tmp_path / "ckpt.npz"
    save({"w": np.arange(4.0)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(target, *replacement)
    with pytest.raises(OSError):
        save({"w": np.zeros(100)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert leftovers(tmp_path, keep=path.name) == []
    np.testing.assert_array_equal(load(path)["w"], np.arange(4.0))


def test_interrupted_save_removes_its_temp_file(tmp_path, monkeypatch):
    def interrupted(file, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save({"w": np.ones(2)}, tmp_path / "new.ckpt")
    assert os.listdir(tmp_path) == []


def test_save_overwrites_and_keeps_the_file_mode(tmp_path):
    path = tmp_path / "c.ckpt"
    save({"v": 1}, path)
    save({"v": 2}, path)
    assert load(path) == {"v": 2}
    assert leftovers(tmp_path, keep=path.name) == []
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------------------- refusing values
@pytest.mark.parametrize("obj, where", [
    ({"a": [1, {"b": object()}]}, r"obj\['a'\]\[1\]\['b'\]"),
    ({"opt": {"state": {0: {"x": np.array([1, "x"], dtype=object)}}}},
     r"obj\['opt'\]\['state'\]\[0\]\['x'\]"),
    ([np.array(["text"])], r"obj\[0\]"),
    ({"s": {1, 2}}, r"obj\['s'\]"),
    ({(1, 2): 3}, r"key \(1, 2\)"),
])
def test_unsupported_values_are_refused_with_their_key_path(tmp_path, obj, where):
    path = tmp_path / "bad.ckpt"
    with pytest.raises(TypeError, match=where):
        save(obj, path)
    assert os.listdir(tmp_path) == []  # refused before anything was written


def test_a_structure_that_contains_itself_is_refused(tmp_path):
    loop: list = [1]
    loop.append({"again": loop})
    with pytest.raises(TypeError, match=r"obj\[1\]\['again'\] contains itself"):
        save(loop, tmp_path / "loop.ckpt")


# -------------------------------------------------------------------------- refusing files
def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.ckpt"):
        load(tmp_path / "nowhere.ckpt")


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "t.ckpt"
    save({"w": np.arange(1000.0), "step": 3}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"t\.ckpt.*truncated or corrupt"):
        load(path)


def test_corrupted_entry_fails_its_crc(tmp_path):
    path = tmp_path / "c.ckpt"
    array = np.arange(1000, dtype=np.int64)
    save({"w": array}, path)
    data = bytearray(path.read_bytes())
    at = bytes(data).index(array[500:502].tobytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"c\.ckpt.*entry 'a0' cannot be read"):
        load(path)


@pytest.mark.parametrize("write, problem", [
    (lambda p: np.savez(p, weights=np.ones(3)), "no '__minigrad__' entry"),
    (lambda p: np.save(p, np.ones(3)), "single .npy array"),
    (lambda p: p.write_text("hello, not a checkpoint"), "not a readable .npz"),
    (lambda p: p.write_bytes(b""), "not a readable .npz"),
    (lambda p: write_npz(p, {"format": "other", "version": 1, "root": None}),
     "does not name the format"),
    (lambda p: write_npz(p, {"format": FORMAT, "version": 99, "root": None}),
     "format version 99"),
    (lambda p: write_npz(p, {"format": FORMAT, "version": VERSION,
                             "root": {"__type__": "ndarray", "entry": "a7"}}),
     "entry 'a7' is missing"),
    (lambda p: write_npz(p, {"format": FORMAT, "version": VERSION,
                             "root": {"__type__": "pickle"}}), "unknown node type"),
])
def test_foreign_or_malformed_files_are_refused(tmp_path, write, problem):
    path = tmp_path / "foreign.npz"
    write(path)
    path = path if path.exists() else tmp_path / "foreign.npz.npy"
    with pytest.raises(ValueError, match=problem):
        load(path)


MARKER = "pickle-payload-ran"


def _payload(marker: str) -> None:
    """What a malicious pickle would run: here it only leaves a file behind."""
    Path(marker).write_text("ran")


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return _payload, (self.marker,)


@pytest.mark.parametrize("entry", ["a0", METADATA_KEY])
def test_pickled_object_array_is_refused_without_running_it(tmp_path, entry):
    marker = tmp_path / MARKER
    evil = np.array([_Exploit(str(marker))], dtype=object)
    path = tmp_path / "evil.npz"
    document = {"format": FORMAT, "version": VERSION,
                "root": {"__type__": "ndarray", "entry": "a0"}}
    if entry == METADATA_KEY:
        np.savez(path, **{METADATA_KEY: evil})
    else:
        write_npz(path, document, a0=evil)

    with pytest.raises(ValueError, match="never unpickles"):
        load(path)
    assert not marker.exists()

    # The file is live: a loader that allows pickle would have run the payload.
    with np.load(path, allow_pickle=True) as archive:
        archive[entry]
    assert marker.exists()
