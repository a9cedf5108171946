"""A few optimizer steps from identical weights land on PyTorch's parameters (issue 4).

Both models start from minigrad's freshly initialised state dict (copied into the torch.nn
twin from test_models), run three training steps on the same batch with the same optimizer
configuration, and must then agree on every step's loss, every parameter and every BatchNorm
buffer (running_mean, running_var, num_batches_tracked). Both models are in train mode, so
ResNet-20's BatchNorm layers normalise by batch statistics and update their running ones.

SimpleCNN has Dropout(0.5) in its classifier, whose masks come from two different random
generators and can never agree. We set that layer's `p` to 0 on both sides (keeping the layer
and train mode): with p = 0 both frameworks' dropout is exactly the identity.

Everything runs in float64 on both sides, so the comparison sees the update rules and not
float32 rounding. In float32 rounding decides too much here: Adam's first step moves each
weight by about lr * sign(g) whatever |g| is, so an element whose gradient is at rounding level
(-1.1945e-6 cancelling a weight decay term of +1.1950e-6) moves by up to lr = 1e-3 in a
direction that rounding picks (PyTorch's own float32 result disagrees with its float64 one
there), and with batches of 4 under BatchNorm, ReLUs near zero flip between the frameworks;
either shifts later gradients by ~1%, in a pattern that changes with any reordering of a sum.
(The float32 forward and backward of both models are compared with PyTorch's in
tests/test_models.py.)

Tolerance: 1e-6, relative and absolute: float64 rounding through three steps stays orders of
magnitude below it, and it is ~1000x smaller than a single step of any configuration here
(lr * grad, or lr = 1e-3 for Adam), so a wrong formula, a missed weight decay or a running-stat
slip cannot hide under it. On the first step, from identical weights, the gradients must also
agree to 1e-9 of each tensor's largest one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import optim
from minigrad.models import SimpleCNN, resnet20
from minigrad.testing.torch_models import torch_resnet20, torch_simple_cnn

STEPS = 3
TOLERANCE = {"rtol": 1e-6, "atol": 1e-6}

# (minigrad optimizer, torch.optim class name, keyword arguments for both)
OPTIMIZERS = {
    "sgd_nesterov": (optim.SGD, "SGD",
                     {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}),
    "sgd_dampening": (optim.SGD, "SGD",
                      {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-4}),
    "adam": (optim.Adam, "Adam", {"lr": 1e-3, "weight_decay": 1e-4}),
    "adamw": (optim.AdamW, "AdamW", {"lr": 1e-3, "weight_decay": 1e-2}),
}


def simple_cnn_pair(torch: Any) -> tuple[mg.nn.Module, Any]:
    ours, theirs = SimpleCNN(), torch_simple_cnn(torch)
    ours.classifier[3].p = 0.0  # deterministic dropout: see the module docstring
    theirs.classifier[3].p = 0.0
    return ours, theirs


def resnet20_pair(torch: Any) -> tuple[mg.nn.Module, Any]:
    return resnet20(), torch_resnet20(torch)


MODELS = {
    # builder, input shape (small batches keep the whole file fast)
    "simple_cnn": (simple_cnn_pair, (8, 1, 28, 28)),
    "resnet20": (resnet20_pair, (4, 3, 32, 32)),
}


def copy_into_torch(torch: Any, ours: mg.nn.Module, theirs: Any) -> None:
    """minigrad's initial state dict, parameters and buffers, into the torch model."""
    state = {k: torch.from_numpy(np.array(v.numpy(), copy=True))
             for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)


@pytest.mark.parametrize("config", list(OPTIMIZERS))
@pytest.mark.parametrize("model_name", list(MODELS))
def test_training_steps_match_torch(torch, backend, config, model_name):
    build, shape = MODELS[model_name]
    mg.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = build(torch)
    ours.to(backend)  # built on the default backend, which may be cupy
    ours.double()
    theirs.double()
    copy_into_torch(torch, ours, theirs)
    initial = {k: np.array(v.numpy(), copy=True) for k, v in ours.state_dict().items()}
    ours.train()
    theirs.train()

    make_ours, torch_name, options = OPTIMIZERS[config]
    ours_opt = make_ours(ours.parameters(), **options)
    theirs_opt = getattr(torch.optim, torch_name)(theirs.parameters(), **options)

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    y = rng.integers(0, 10, size=shape[0])
    x_theirs, y_theirs = torch.from_numpy(x), torch.from_numpy(y)

    ours_params, theirs_params = dict(ours.named_parameters()), dict(theirs.named_parameters())
    with mg.backend(backend):
        for step in range(STEPS):
            ours_opt.zero_grad()
            loss = F.cross_entropy(ours(mg.tensor(x)), mg.tensor(y))
            loss.backward()

            theirs_opt.zero_grad()
            expected = torch.nn.functional.cross_entropy(theirs(x_theirs), y_theirs)
            expected.backward()

            for name, p in ours_params.items():
                q = theirs_params[name]
                g_ours, g_theirs = p.grad.numpy(), q.grad.numpy()
                if step == 0:  # identical weights: the gradients differ by rounding only
                    scale = np.abs(g_theirs).max()
                    assert np.abs(g_ours - g_theirs).max() <= 1e-9 * scale, name

            ours_opt.step()
            theirs_opt.step()

            assert loss.dtype == np.float64
            np.testing.assert_allclose(loss.item(), expected.item(), **TOLERANCE,
                                       err_msg=f"loss at step {step}")

    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    params = {name for name, _ in theirs.named_parameters()}
    buffers = {name for name, _ in theirs.named_buffers()}
    assert params | buffers == set(theirs_state)
    if model_name == "resnet20":
        assert len(buffers) == 3 * 21  # 21 BatchNorm layers, three buffers each
    for name, value in ours_state.items():
        got, want = value.numpy(), theirs_state[name].numpy()
        assert got.shape == want.shape, name
        if name.endswith("num_batches_tracked"):
            assert int(got) == int(want) == STEPS, name
            continue
        assert got.dtype == np.float64, name
        np.testing.assert_allclose(got, want, **TOLERANCE, err_msg=name)
    # every parameter moved, so this is no comparison of two untouched initial states
    for name in params:
        assert not np.array_equal(ours_state[name].numpy(), initial[name]), name
