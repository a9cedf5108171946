"""mg.load reads what torch.save writes, without importing torch and without running pickled
code: state dicts of every dtype a model holds, views into shared storages, and pickles that
try to run code, refused by name before anything runs."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import minigrad as mg


def test_a_torch_state_dict_loads_with_its_dtypes_and_values(torch, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                torch.nn.Linear(3, 2))
    model[1].num_batches_tracked.fill_(7)
    state = model.state_dict()
    state["double"] = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    state["long"] = torch.tensor([-3, 5], dtype=torch.int64)
    state["flag"] = torch.tensor([True, False])
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    loaded = mg.load(path)
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert isinstance(loaded[key], mg.Tensor), key
        assert loaded[key].dtype == np.dtype(str(value.numpy().dtype)), key
        np.testing.assert_array_equal(loaded[key].numpy(), value.numpy(), err_msg=key)
    assert int(loaded["1.num_batches_tracked"]) == 7


def test_views_and_offsets_into_a_shared_storage(torch, tmp_path):
    base = torch.arange(24, dtype=torch.float32)
    state = {"whole": base, "strided": base[2:20:3], "matrix_t": base[:12].reshape(3, 4).t(),
             "scalar": base[5], "empty": base[:0]}
    path = tmp_path / "views.pth"
    torch.save(state, path)
    loaded = mg.load(path)
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key].numpy(), value.numpy(), err_msg=key)
        assert loaded[key].shape == tuple(value.shape)
    loaded["whole"][0] = 100.0  # each tensor has its own memory
    assert loaded["strided"][0].item() == 2.0


def test_a_torch_model_state_dict_loads_into_the_minigrad_model(torch, tmp_path):
    from minigrad.models import lenet5
    from minigrad.testing.torch_models import torch_lenet5

    theirs = torch_lenet5(torch).eval()
    torch.save(theirs.state_dict(), tmp_path / "lenet.pth")
    ours = lenet5().eval()
    ours.load_state_dict(mg.load(tmp_path / "lenet.pth", weights_only=True))
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    with torch.no_grad(), mg.no_grad():
        np.testing.assert_allclose(ours(mg.tensor(x)).numpy(),
                                   theirs(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)


def test_loading_does_not_import_torch(torch, tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pth")
    script = ("import sys, minigrad as mg; w = mg.load(sys.argv[1])['w']; "
              "assert w.tolist() == [1.0, 1.0]; assert 'torch' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "w.pth")],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


class _Evil:
    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def torch_like_file(path, payload) -> None:
    """A zip laid out as torch.save's, whose data.pkl is `payload` pickled."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")


@pytest.mark.parametrize(("payload", "name"), [
    (lambda marker: _Evil(os.system, f"touch {marker}"), "system"),
    (lambda marker: _Evil(eval, f"open({str(marker)!r}, 'w').close()"), "eval"),
    (lambda marker: _Evil(subprocess.call, ["touch", str(marker)]), "call"),
    (lambda marker: {"w": _Evil(exec, f"open({str(marker)!r}, 'w').close()")}, "exec"),
    (lambda marker: _Evil(os.popen, f"touch {marker}"), "popen"),
], ids=["os.system", "eval", "subprocess", "exec-inside-a-dict", "os.popen"])
def test_a_pickle_that_would_run_code_is_refused_by_name_and_runs_nothing(tmp_path, payload,
                                                                          name):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch_like_file(path, payload(marker))
    with pytest.raises(ValueError, match=rf"evil\.pth.*refusing to load [\w.]*\.{name}: "):
        mg.load(path)
    assert not marker.exists()


def test_a_tensor_reaching_past_its_storage_is_refused(torch, tmp_path):
    """A crafted pickle may only call the tensor rebuild; its arguments are checked: here a
    2-element storage with the tensor's size patched to 5."""
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pth")
    with zipfile.ZipFile(tmp_path / "w.pth") as source, \
            zipfile.ZipFile(tmp_path / "bad.pth", "w") as bad:
        for item in source.namelist():
            data = source.read(item)
            if item.endswith("data.pkl"):
                assert data.count(b"K\x02\x85") == 1  # the size (2,)
                data = data.replace(b"K\x02\x85", b"K\x05\x85")
            bad.writestr(item, data)
    with pytest.raises(ValueError, match="reaches past its storage of 2 elements"):
        mg.load(tmp_path / "bad.pth")


def test_a_missing_storage_is_refused(torch, tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "w.pth")
    with zipfile.ZipFile(tmp_path / "w.pth") as source, \
            zipfile.ZipFile(tmp_path / "cut.pth", "w") as cut:
        for item in source.namelist():
            if "/data/" not in item:
                cut.writestr(item, source.read(item))
    with pytest.raises(ValueError, match=r"cut\.pth.*storage .*data/0 is missing"):
        mg.load(tmp_path / "cut.pth")
