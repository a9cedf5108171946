"""minigrad.models against PyTorch (minigrad.summary: test_summary.py).

Each model is written a second time here with torch.nn (no torchvision), with the same module
names; the PyTorch model's randomised weights are loaded into the minigrad one, and both must
then give the same logits (eval) and the same loss and gradients (training, batch statistics).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from zoo import randomised

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.models import SimpleCNN, lenet5, resnet20
from minigrad.testing.torch_models import torch_lenet5, torch_resnet20, torch_simple_cnn

ROOT = Path(__file__).resolve().parent.parent
LOGITS_TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}  # float32 through ~20 layers


# ------------------------------------------------------------------- the PyTorch reference models


def load_torch_weights(ours: mg.nn.Module, theirs: Any) -> None:
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})


def count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------ structure and counts


def test_parameter_counts(torch):
    assert count(SimpleCNN()) == count(torch_simple_cnn(torch)) == 225_034
    assert count(lenet5()) == count(torch_lenet5(torch)) == 61_706  # the paper's C1..output
    assert count(resnet20()) == count(torch_resnet20(torch)) == 272_474
    assert count(resnet20(in_channels=1)) == count(torch_resnet20(torch, in_channels=1))
    assert count(resnet20(num_classes=100)) == count(torch_resnet20(torch, num_classes=100))


@pytest.mark.parametrize(("build", "shape", "out"), [
    (lambda: SimpleCNN(), (4, 1, 28, 28), (4, 10)),
    (lambda: SimpleCNN(num_classes=3), (2, 1, 28, 28), (2, 3)),
    (lambda: resnet20(), (2, 3, 32, 32), (2, 10)),
    (lambda: lenet5(), (3, 1, 28, 28), (3, 10)),
    (lambda: lenet5(num_classes=5, in_channels=3), (2, 3, 28, 28), (2, 5)),
    (lambda: resnet20(num_classes=7, in_channels=1), (2, 1, 28, 28), (2, 7)),
])
def test_output_shapes(build, shape, out):
    with mg.no_grad():
        assert build().eval()(mg.randn(*shape)).shape == out


@pytest.mark.parametrize(("ours", "theirs"), [
    (SimpleCNN, torch_simple_cnn),
    (lenet5, torch_lenet5),
    (resnet20, torch_resnet20),
    (lambda: resnet20(in_channels=1), lambda torch: torch_resnet20(torch, in_channels=1)),
])
def test_state_dict_keys_and_shapes_match_torch(torch, ours, theirs):
    expected = {k: tuple(v.shape) for k, v in theirs(torch).state_dict().items()}
    got = {k: v.shape for k, v in ours().state_dict().items()}
    assert list(got) == list(expected)  # the same order too
    assert got == expected


def test_resnet_init_is_torchvisions():
    """He-normal (fan_out) convs, BatchNorm as the identity, reproducible from manual_seed."""
    mg.manual_seed(1)
    model = resnet20()
    weight = model.layer3[1].conv2.weight.numpy()  # 64x64x3x3: fan_out = 576
    assert abs(weight.std() - np.sqrt(2 / 576)) < 0.05 * np.sqrt(2 / 576)
    assert abs(weight.mean()) < 0.01
    np.testing.assert_array_equal(model.layer1[0].bn2.weight.numpy(), 1)
    np.testing.assert_array_equal(model.layer1[0].bn2.bias.numpy(), 0)
    mg.manual_seed(1)
    np.testing.assert_array_equal(resnet20().conv1.weight.numpy(), model.conv1.weight.numpy())


# ----------------------------------------------------------------------- agreement with PyTorch


@pytest.mark.parametrize(("ours", "theirs", "shape"), [
    (SimpleCNN, torch_simple_cnn, (4, 1, 28, 28)),
    (lenet5, torch_lenet5, (4, 1, 28, 28)),
    (resnet20, torch_resnet20, (4, 3, 32, 32)),
    (lambda: resnet20(in_channels=1), lambda torch: torch_resnet20(torch, in_channels=1),
     (4, 1, 28, 28)),
], ids=["simple_cnn", "lenet5", "resnet20", "resnet20_1x28x28"])
def test_eval_logits_match_torch(torch, rng, backend, ours, theirs, shape):
    reference = randomised(torch, theirs(torch), weights=False).eval()
    model = ours().eval().to(backend)  # built on the default backend, which may be cupy
    load_torch_weights(model, reference)
    x = rng.standard_normal(shape, dtype=np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with mg.backend(backend), mg.no_grad():
        logits = model(mg.tensor(x))
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits.numpy(), expected, **LOGITS_TOLERANCE)


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def test_resnet20_training_step_matches_torch(torch, rng, backend):
    """Training mode, float32: BatchNorm normalises by batch statistics and updates its
    running ones (compiled passes on the Numba backend); the loss, a few gradients along the
    network and the new running statistics agree."""
    reference = randomised(torch, torch_resnet20(torch), weights=False).train()
    model = resnet20().train().to(backend)  # built on the default backend, which may be cupy
    load_torch_weights(model, reference)
    x = rng.standard_normal((8, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, size=8)

    expected = torch.nn.functional.cross_entropy(reference(torch.from_numpy(x)),
                                                 torch.from_numpy(y))
    expected.backward()
    with mg.backend(backend):
        loss = F.cross_entropy(model(mg.tensor(x)), mg.tensor(y))
        loss.backward()

    assert abs(loss.item() - expected.item()) <= 1e-4 * abs(expected.item())
    ours, theirs = dict(model.named_parameters()), dict(reference.named_parameters())
    for name in ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight",
                 "layer2.0.downsample.0.weight", "layer3.2.bn2.bias", "fc.weight", "fc.bias"]:
        assert relative_error(ours[name].grad.numpy(), theirs[name].grad.numpy()) < 1e-4, name
    ours_state, theirs_state = model.state_dict(), reference.state_dict()
    for name in ["bn1.running_mean", "layer3.2.bn2.running_var"]:
        np.testing.assert_allclose(ours_state[name].numpy(), theirs_state[name].numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=name)


# --------------------------------------------------------------------------------- the example


def test_example_prints_the_article_output():
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "simple_cnn.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Total parameters: 225,034" in done.stdout
    assert "Input shape: (4, 1, 28, 28)" in done.stdout
    assert "Output shape: (4, 10)" in done.stdout
    assert "(1): Linear(in_features=1600, out_features=128, bias=True)" in done.stdout
    assert "64x5x5" in done.stdout
