"""GoogLeNet (minigrad.models.googlenet) against torchvision 0.28.0's (tests/zoo.py)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import zoo
from helpers import raises_saying

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.models.googlenet import (
    BasicConv2d,
    GoogLeNet,
    GoogLeNetOutputs,
    Inception,
    InceptionAux,
    googlenet,
)

WITH_HEADS = 13_004_888  # the default, aux_logits=True
WITHOUT_HEADS = 6_624_904  # aux_logits=False: torchvision's published count
SMALLEST = 15  # the smallest height and width torchvision's GoogLeNet takes


def theirs(torch: Any, tv: Any, **kwargs: Any) -> Any:
    """torchvision's googlenet, randomised, with He-normal conv and Linear weights (its
    FutureWarning about init_weights=None silenced).

    With its own N(0, 0.01^2) weights each conv shrinks the signal about tenfold and the
    randomised BatchNorm biases (up to 0.5) swamp it: the eval logits of two unrelated inputs
    then differ by ~1e-7 relative, far below float32's 1e-4 tolerance, and a logits test
    would be blind to every layer but the last few (test_the_oracle_sees_the_input)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = zoo.randomised(torch, tv.googlenet(**kwargs))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return model


def meta(torch: Any, tv: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return zoo.meta_model(torch, tv.googlenet, **kwargs)


def ours(**kwargs: Any) -> GoogLeNet:
    with zoo.without_random_init():
        return googlenet(**kwargs)


# ---------------------------------------------------------------------------------- structure


@pytest.mark.parametrize("kwargs, parameters", [
    ({}, WITH_HEADS),
    ({"aux_logits": False}, WITHOUT_HEADS),
    ({"num_classes": 7}, None),
    ({"num_classes": 7, "aux_logits": False}, None),
    ({"transform_input": True, "init_weights": False}, WITH_HEADS),
])
def test_structure(torch, tv, kwargs, parameters):
    mine = ours(**kwargs)
    their = meta(torch, tv, **kwargs)
    zoo.assert_same_structure(mine, their, parameters)
    assert mine.aux_logits == their.aux_logits
    assert mine.transform_input == their.transform_input
    assert (mine.aux1 is None) == (their.aux1 is None) == (not kwargs.get("aux_logits", True))
    assert mine.fc.out_features == their.fc.out_features


def test_the_blocks_argument(torch, tv):
    class StemConv(BasicConv2d):
        pass

    mine = ours(blocks=[StemConv, Inception, InceptionAux], num_classes=7)
    their = meta(torch, tv, num_classes=7)
    zoo.assert_same_structure(mine, their)
    # as torchvision: the conv block builds the stem only; Inception blocks use their default
    stem = [name for name, m in mine.named_modules() if type(m) is StemConv]
    assert stem == ["conv1", "conv2", "conv3"]
    with raises_saying(ValueError, ["blocks", "3", "got 2"], starts="GoogLeNet:"):
        googlenet(blocks=[BasicConv2d, Inception])


def test_repr_is_torchvisions(torch, tv):
    assert repr(ours()) == repr(meta(torch, tv))
    assert repr(ours(aux_logits=False, num_classes=7)) == repr(
        meta(torch, tv, aux_logits=False, num_classes=7))


# ------------------------------------------------------------------------------------- logits


@pytest.mark.parametrize("dtype, batch", [(np.float32, 2), (np.float64, 1)])
def test_logits(torch, tv, dtype, batch):
    zoo.assert_same_logits(torch, googlenet(), theirs(torch, tv),
                           (batch, 3, SMALLEST, SMALLEST), dtype)


def test_the_oracle_sees_the_input(torch, tv):
    """The logits of two unrelated inputs differ by more than 10% (see `theirs`)."""
    model = theirs(torch, tv, aux_logits=False).eval()
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 2, 3, SMALLEST, SMALLEST)))
    with torch.no_grad():
        a, b = model(x[0].float()), model(x[1].float())
    assert zoo.relative_error(a.numpy(), b.numpy()) > 0.1


def test_logits_with_transform_input(torch, tv):
    zoo.assert_same_logits(torch, googlenet(transform_input=True, aux_logits=False),
                           theirs(torch, tv, transform_input=True, aux_logits=False),
                           (2, 3, SMALLEST, SMALLEST + 4))


def test_logits_on_numba(torch, tv):
    with mg.backend("numba"):
        zoo.assert_same_logits(torch, googlenet(num_classes=7), theirs(torch, tv, num_classes=7),
                               (2, 3, SMALLEST, SMALLEST))


# --------------------------------------------------------------------------------- training


def torchvision_loss(cross_entropy: Any, outputs: Any, y: Any) -> Any:
    """The loss torchvision's reference script trains GoogLeNet with: the main logits' plus
    0.3 times each auxiliary head's."""
    return (cross_entropy(outputs.logits, y)
            + 0.3 * (cross_entropy(outputs.aux_logits1, y) + cross_entropy(outputs.aux_logits2, y)))


def test_sgd_steps_with_the_auxiliary_heads(torch, tv):
    """Train mode, float64, the full loss through all three heads: the outputs agree at every
    step, and all parameters and buffers after two SGD steps. 96x96 gives the heads 6x6 maps
    (adaptive pooling to 4x4 with overlapping windows) and the last stage 3x3."""
    mine = googlenet(num_classes=10, dropout=0.0, dropout_aux=0.0)
    their = theirs(torch, tv, num_classes=10, dropout=0.0, dropout_aux=0.0)
    zoo.copy_weights(mine, their)
    mine, their = mine.double().train(), their.double().train()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 96, 96))
    y = rng.integers(0, 10, 2)
    mine_opt = mg.optim.SGD(mine.parameters(), lr=0.05, momentum=0.9)
    their_opt = torch.optim.SGD(their.parameters(), lr=0.05, momentum=0.9)
    for _ in range(2):
        mine_opt.zero_grad()
        out = mine(mg.tensor(x))
        torchvision_loss(F.cross_entropy, out, mg.tensor(y)).backward()
        mine_opt.step()
        their_opt.zero_grad()
        their_out = their(torch.from_numpy(x))
        torchvision_loss(torch.nn.functional.cross_entropy, their_out,
                         torch.from_numpy(y)).backward()
        their_opt.step()
        assert isinstance(out, GoogLeNetOutputs) and out._fields == their_out._fields
        for a, b in zip(out, their_out):
            assert zoo.relative_error(a.numpy(), b.detach().numpy()) <= 1e-10
    state = mine.state_dict()
    for key, value in their.state_dict().items():
        if value.dtype.is_floating_point:
            assert zoo.relative_error(state[key].numpy(), value.numpy()) <= zoo.SGD_TOLERANCE, key
        else:
            np.testing.assert_array_equal(state[key].numpy(), value.numpy(), err_msg=key)


def test_what_each_mode_returns(torch, tv):
    """GoogLeNetOutputs in training with the heads, the logits alone otherwise (shapes only:
    torchvision's model on the meta device)."""
    x = np.random.default_rng(1).standard_normal((2, 3, SMALLEST, SMALLEST)).astype(np.float32)
    for kwargs in ({}, {"aux_logits": False}):
        mine = ours(num_classes=7, **kwargs)
        their = meta(torch, tv, num_classes=7, **kwargs)
        for train in (True, False):
            mine.train(train)
            their.train(train)
            got = mine(mg.tensor(x))
            expected = their(torch.zeros(x.shape, device="meta"))
            assert type(got).__name__ == type(expected).__name__
            if isinstance(got, tuple):
                assert [t.shape for t in got] == [tuple(t.shape) for t in expected] == [(2, 7)] * 3
            else:
                assert got.shape == tuple(expected.shape) == (2, 7)


# ------------------------------------------------------------------------------ initialisation


@pytest.mark.parametrize("init_weights", [None, False])
def test_initialisation_statistics(torch, tv, init_weights):
    """Per tensor, the mean and std of a fresh model's values are torchvision's (within 10% of
    the std), constants exactly: truncated N(0, 0.01^2) conv and Linear weights, default
    Linear biases, BatchNorm ones and zeros; with init_weights=False every layer's default."""
    mg.manual_seed(0)
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mine = googlenet(init_weights=init_weights).state_dict()
    assert not caught  # torchvision's FutureWarning about None has no reason to exist here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        their = tv.googlenet(init_weights=init_weights).state_dict()
    for key, value in their.items():
        expected = value.double().numpy()
        got = mine[key].numpy().astype(np.float64)
        if expected.min() == expected.max():
            np.testing.assert_array_equal(got, expected, err_msg=key)
            continue
        assert abs(got.mean() - expected.mean()) <= 0.1 * expected.std(), key
        assert got.std() == pytest.approx(expected.std(), rel=0.1), key
        assert np.abs(got).max() <= np.abs(expected).max() * 1.5, key
    if init_weights is None:
        assert their["fc.weight"].std().item() == pytest.approx(0.01, rel=0.01)


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("shape", [(1, 3, SMALLEST - 1, SMALLEST - 1), (1, 3, 32, SMALLEST - 1),
                                   (1, 1, 32, 32), (3, 32, 32)])
def test_bad_inputs(torch, tv, shape):
    model = ours(aux_logits=False).eval()
    x = np.zeros(shape, np.float32)
    with raises_saying(ValueError, ["(N, 3, H, W)", str(SMALLEST), str(shape)],
                       starts="GoogLeNet:"):
        model(mg.tensor(x))
    with pytest.raises((RuntimeError, ValueError)), torch.no_grad():  # torchvision fails too
        meta(torch, tv, aux_logits=False).eval()(torch.zeros(shape, device="meta"))
