"""EfficientNet B0-B7 (minigrad.models.efficientnet) and the torchvision.ops blocks it is built
from (minigrad.models.blocks) against torchvision 0.28.0 (tests/zoo.py).

Stochastic depth draws random numbers, which minigrad and torch draw differently; to compare
it with torchvision's anyway, torch's real decisions (seeded) are recorded and replayed to
minigrad's real code through a scripted generator in place of `minigrad.random`'s.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import pytest
from helpers import raises_saying
from zoo import (
    assert_same_after_sgd,
    assert_same_logits,
    assert_same_structure,
    copy_weights,
    meta_model,
    randomised,
    relative_error,
    without_random_init,
)

import minigrad as mg
from minigrad import nn
from minigrad.models import blocks, efficientnet
from minigrad.models.blocks import StochasticDepth, stochastic_depth
from minigrad.models.efficientnet import EfficientNet, MBConv, MBConvConfig
from minigrad.testing import gradcheck

VARIANTS = [f"efficientnet_b{i}" for i in range(8)]
# torchvision's published counts (the weights' meta "num_params"); the issue names B0's
PARAMETERS = {"efficientnet_b0": 5_288_548, "efficientnet_b1": 7_794_184,
              "efficientnet_b2": 9_109_994, "efficientnet_b3": 12_233_232,
              "efficientnet_b4": 19_341_616, "efficientnet_b5": 30_389_784,
              "efficientnet_b6": 43_040_704, "efficientnet_b7": 66_347_960}


@pytest.fixture
def ops(tv: Any) -> Any:
    """torchvision.ops, imported as the tv fixture sets torchvision up (tests/zoo.py)."""
    return importlib.import_module("torchvision.ops")


def builder(name: str) -> Any:
    return getattr(efficientnet, name)


class ScriptedGenerator:
    """Stands in for minigrad's generator: `random(size)` gives 0.0 where the next recorded
    decision keeps a row and 1.0 where it drops it (x < 1 - p keeps, for any 0 < p < 1)."""

    def __init__(self, decisions: list[np.ndarray]) -> None:
        self.decisions = list(decisions)

    def random(self, size: Any = None, dtype: Any = np.float64) -> np.ndarray:
        kept = self.decisions.pop(0)
        assert tuple(size) == kept.shape, (size, kept.shape)  # torch's noise shape
        return np.where(kept, 0.0, 1.0)


@contextlib.contextmanager
def scripted(decisions: list[np.ndarray]) -> Iterator[None]:
    """A context in which minigrad draws `decisions` (see ScriptedGenerator), all of them."""
    generator = ScriptedGenerator(decisions)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("minigrad.random._generator", generator)
        yield
    assert generator.decisions == [], "fewer draws than decisions"


# ------------------------------------------------------------------------- structure and repr


@pytest.mark.parametrize("name", VARIANTS)
def test_structure_and_repr_of_every_variant(torch, tv, name):
    with without_random_init():
        ours = builder(name)()
    theirs = meta_model(torch, getattr(tv, name))
    assert_same_structure(ours, theirs, PARAMETERS[name])
    assert repr(ours) == repr(theirs)  # also the eps, momentum, dropout and p of every layer


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_b5"])
def test_structure_with_the_other_arguments(torch, tv, name):
    kwargs = {"num_classes": 7, "dropout": 0.1, "stochastic_depth_prob": 0.5}
    with without_random_init():
        ours = builder(name)(**kwargs)
    theirs = meta_model(torch, getattr(tv, name), **kwargs)
    assert_same_structure(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert ours.classifier[1].out_features == 7


def test_norm_layer_and_a_custom_setting(torch, tv):
    """norm_layer reaches every norm layer (GroupNorm: no running statistics), and EfficientNet
    takes its own stages and last_channel, as torchvision's."""
    with without_random_init():
        ours = efficientnet.efficientnet_b0(norm_layer=lambda c: nn.GroupNorm(8, c),
                                            num_classes=5)
    theirs = meta_model(torch, tv.efficientnet_b0,
                        norm_layer=lambda c: torch.nn.GroupNorm(8, c), num_classes=5)
    assert_same_structure(ours, theirs)
    assert repr(ours) == repr(theirs)
    theirs_cnf = tv.efficientnet.MBConvConfig
    setting = [(1, 3, 1, 16, 8, 1, 1.5, 2.0), (4, 5, 2, 8, 24, 2, 1.5, 2.0),
               (2, 3, 1, 24, 24, 3, 1.5, 2.0)]
    ours = EfficientNet([MBConvConfig(*row) for row in setting], 0.3, 0.1, 9, None, 100)
    theirs = meta_model(torch, tv.EfficientNet, inverted_residual_setting=[
        theirs_cnf(*row) for row in setting], dropout=0.3, stochastic_depth_prob=0.1,
        num_classes=9, last_channel=100)
    assert_same_structure(ours, theirs)
    assert repr(ours) == repr(theirs)
    with mg.no_grad():
        assert ours.eval()(mg.randn(2, 3, 16, 16)).shape == (2, 9)


def test_config_scaling_rounds_as_torchvision(tv):
    theirs = tv.efficientnet
    for channels in (16, 24, 40, 80, 112, 192, 320, 1, 3, 7):
        for mult in (0.25, 0.5, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0, 6.0):
            assert (MBConvConfig.adjust_channels(channels, mult)
                    == theirs.MBConvConfig.adjust_channels(channels, mult))
            assert (MBConvConfig.adjust_depth(channels, mult)
                    == theirs.MBConvConfig.adjust_depth(channels, mult))
    config = MBConvConfig(6, 5, 2, 40, 80, 3, width_mult=1.1, depth_mult=1.2)
    assert (config.input_channels, config.out_channels, config.num_layers) == (48, 88, 4)
    assert repr(config) == ("MBConvConfig(expand_ratio=6, kernel=5, stride=2, input_channels=48, "
                            "out_channels=88, num_layers=4, block=MBConv)")


# ------------------------------------------------------------------------------------- logits


def test_logits_float32_and_float64(torch, tv):
    theirs = randomised(torch, tv.efficientnet_b0())
    ours = efficientnet.efficientnet_b0()
    assert_same_logits(torch, ours, theirs, (1, 3, 64, 64), np.float32)
    assert_same_logits(torch, ours, theirs, (1, 3, 64, 64), np.float64)
    assert_same_logits(torch, ours, theirs, (2, 3, 1, 1), np.float64)  # the smallest input


def test_logits_on_numba(torch, tv):
    theirs = randomised(torch, tv.efficientnet_b0(num_classes=10))
    with mg.backend("numba"):
        ours = efficientnet.efficientnet_b0(num_classes=10)
        assert_same_logits(torch, ours, theirs, (1, 3, 64, 64), np.float32)


@pytest.mark.parametrize("kernel, stride", [(3, 1), (5, 2)])
def test_mbconv_and_its_depthwise_conv_against_torch(torch, tv, host_backend, kernel, stride):
    """One MBConv in training (batch statistics), forward and backward: the output, the
    input's gradient and the depthwise conv's weight gradient, on numpy and numba."""
    channels = 16 if stride == 1 else 24  # stride 1 and equal channels: the residual path
    theirs = tv.efficientnet.MBConv(tv.efficientnet.MBConvConfig(6, kernel, stride, 16,
                                                                  channels, 1), 0.0,
                                    torch.nn.BatchNorm2d)
    randomised(torch, theirs).double()
    x = np.random.default_rng(1).standard_normal((2, 16, 9, 9))
    xt = torch.tensor(x, requires_grad=True)
    out_t = theirs(xt)
    u = np.random.default_rng(2).standard_normal(tuple(out_t.shape))
    (out_t * torch.from_numpy(u)).sum().backward()
    with mg.backend(host_backend):
        ours = MBConv(MBConvConfig(6, kernel, stride, 16, channels, 1), 0.0, nn.BatchNorm2d)
        copy_weights(ours, theirs)
        ours.double()
        assert ours.block[1][0].groups == 96 and ours.use_res_connect == (stride == 1)
        xs = mg.tensor(x, requires_grad=True)
        out = ours(xs)
        (out * mg.tensor(u)).sum().backward()
    assert relative_error(out.numpy(), out_t.detach().numpy()) < 1e-12
    assert relative_error(xs.grad.numpy(), xt.grad.numpy()) < 1e-10
    depthwise, depthwise_t = ours.block[1][0].weight, theirs.block[1][0].weight
    assert relative_error(depthwise.grad.numpy(), depthwise_t.grad.numpy()) < 1e-10


# -------------------------------------------------------------------------------------- train


def test_sgd_steps_in_train_mode(torch, tv):
    """64x64: at 32x32 the last stages see 1x1 maps, whose BatchNorm over a batch of 2 is so
    ill-conditioned that both libraries' rounding differences grow past 1e-9."""
    theirs = randomised(torch, tv.efficientnet_b0(dropout=0.0, stochastic_depth_prob=0.0))
    ours = efficientnet.efficientnet_b0(dropout=0.0, stochastic_depth_prob=0.0)
    assert_same_after_sgd(torch, ours, theirs, (2, 3, 64, 64))


def test_stochastic_depth_in_training_drops_what_torchvision_drops(torch, tv):
    """torchvision's model draws its (seeded) decisions; minigrad replays them: the same
    blocks with the same p, per row, give the same logits and gradients."""
    theirs = randomised(torch, tv.efficientnet_b0(dropout=0.0, stochastic_depth_prob=0.8))
    ours = efficientnet.efficientnet_b0(dropout=0.0, stochastic_depth_prob=0.8)
    copy_weights(ours, theirs)
    ours, theirs = ours.double().train(), theirs.double().train()
    decisions: list[np.ndarray] = []

    def record(module: Any, inputs: Any, output: Any) -> None:
        if module.p > 0:
            rows = output.detach().numpy().reshape(len(output), -1)
            decisions.append((rows != 0).any(axis=1).reshape(-1, 1, 1, 1))

    for module in theirs.modules():
        if type(module).__name__ == "StochasticDepth":
            module.register_forward_hook(record)
    rng = np.random.default_rng(0)
    x, u = rng.standard_normal((2, 3, 64, 64)), rng.standard_normal((2, 1000))
    torch.manual_seed(3)
    logits_t = theirs(torch.from_numpy(x))
    (logits_t * torch.from_numpy(u)).sum().backward()
    assert len(decisions) == 9  # the blocks with a residual path, p > 0
    everything = np.concatenate(decisions)
    assert everything.any() and not everything.all()
    assert any(d.any() and not d.all() for d in decisions)  # rows decided apart
    with scripted(decisions):
        logits = ours(mg.tensor(x))
        (logits * mg.tensor(u)).sum().backward()
    assert relative_error(logits.numpy(), logits_t.detach().numpy()) < 1e-10
    grads = {key: p.grad.numpy() for key, p in theirs.named_parameters()}
    # a BatchNorm in training cancels a constant shift of its input, so some gradients
    # (the bias of a BatchNorm before a 1x1 conv and BatchNorm) are 0 up to rounding: ~1e-14
    largest = max(np.abs(grad).max() for grad in grads.values())
    for key, parameter in ours.named_parameters():
        difference = np.abs(parameter.grad.numpy() - grads[key]).max()
        assert difference <= 1e-8 * np.abs(grads[key]).max() + 1e-12 * largest, key


# ----------------------------------------------------------------------------- initialisation


def test_initialisation_statistics(torch, tv):
    mg.manual_seed(0)
    ours = efficientnet.efficientnet_b0().state_dict()
    torch.manual_seed(0)
    theirs = tv.efficientnet_b0().state_dict()
    for key, value in theirs.items():
        their, mine = value.numpy().astype(np.float64), ours[key].numpy().astype(np.float64)
        if their.size == 1 or their.std() == 0:  # ones, zeros, num_batches_tracked
            np.testing.assert_array_equal(mine, their, err_msg=key)
            continue
        n = their.size
        std = their.std()
        assert abs(mine.mean() - their.mean()) < 8 * std / np.sqrt(n), key
        assert abs(mine.std() / std - 1) < 8 / np.sqrt(2 * n), key
    bound = 1 / np.sqrt(1000)  # the Linear layer: uniform in +-1/sqrt(out_features)
    weight = ours["classifier.1.weight"].numpy()
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.99 * bound
    # a depthwise 3x3 conv of 32 channels: He normal with fan_out = 32 * 9 (not / groups)
    depthwise = ours["features.1.0.block.0.0.weight"].numpy()
    assert abs(depthwise.std() / np.sqrt(2 / (32 * 9)) - 1) < 0.15


# -------------------------------------------------------------------------- stochastic depth


def test_stochastic_depth_is_the_identity_in_eval_and_at_p_0(torch, ops):
    x = mg.randn(4, 3, 2, 2)
    for mode in ("row", "batch"):
        assert stochastic_depth(x, 0.7, mode, training=False) is x
        assert stochastic_depth(x, 0.0, mode) is x
        x_t = torch.from_numpy(x.numpy())
        assert ops.stochastic_depth(x_t, 0.7, mode, training=False) is x_t
    layer = StochasticDepth(0.7, "row").eval()
    assert layer(x) is x and repr(layer) == repr(ops.StochasticDepth(0.7, "row"))


@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stochastic_depth_replays_torchvisions_decisions(torch, ops, mode, dtype):
    """torch's decisions, recorded from ones, replayed to minigrad: the same values (the
    scale 1 / (1 - p) computed in the input's dtype), and the same gradient."""
    x = np.random.default_rng(0).standard_normal((64, 3, 2)).astype(dtype)
    for p in (0.3, 0.6, 1.0):
        torch.manual_seed(5)
        noise = ops.stochastic_depth(torch.ones(x.shape, dtype=torch.from_numpy(x).dtype), p,
                                     mode).numpy()
        kept = noise[:, :1, :1] != 0 if mode == "row" else noise[:1, :1, :1] != 0
        torch.manual_seed(5)
        x_t = torch.from_numpy(x).requires_grad_()
        y_t = ops.stochastic_depth(x_t, p, mode)
        y_t.backward(torch.from_numpy(x))
        with scripted([kept]):
            xs = mg.tensor(x, requires_grad=True)
            y = stochastic_depth(xs, p, mode)
            y.backward(mg.tensor(x))
        assert y.dtype == dtype
        np.testing.assert_array_equal(y.numpy(), y_t.detach().numpy())
        np.testing.assert_array_equal(xs.grad.numpy(), x_t.grad.numpy())


def test_stochastic_depth_gradcheck():
    def fn(x: mg.Tensor, mode: str) -> mg.Tensor:
        mg.manual_seed(4)  # the same mask on every evaluation
        return stochastic_depth(x, 0.5, mode)

    x = mg.tensor(np.random.default_rng(0).standard_normal((6, 2, 3)), requires_grad=True)
    mg.manual_seed(4)
    rows = stochastic_depth(x, 0.5, "row").numpy()
    assert 0 < (rows != 0).all(axis=(1, 2)).sum() < 6  # some rows dropped, some kept
    for mode in ("row", "batch"):
        assert gradcheck(lambda x, mode=mode: fn(x, mode), [x])


def test_stochastic_depth_statistics():
    """Row mode: each row kept with probability 1 - p, whole, scaled by exactly 1 / (1 - p)
    (in float32 here); batch mode: all or nothing, kept with probability 1 - p."""
    mg.manual_seed(0)
    p, n = 0.3, 20_000
    y = stochastic_depth(mg.ones(n, 2, 3), p, "row").numpy()
    assert y.dtype == np.float32
    scale = np.float32(1) / np.float32(1 - p)
    assert set(np.unique(y)) == {0.0, scale}
    assert (y == y[:, :1, :1]).all()  # whole rows
    kept = (y[:, 0, 0] != 0).mean()
    assert abs(kept - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)
    layer = StochasticDepth(p, "batch").train()
    outcomes = [layer(mg.ones(3, 4)).numpy() for _ in range(2000)]
    assert all(len(np.unique(o)) == 1 for o in outcomes)
    kept = np.mean([o[0, 0] != 0 for o in outcomes])
    assert abs(kept - (1 - p)) < 4 * np.sqrt(p * (1 - p) / 2000)


# ------------------------------------------------------------------------------------- errors


def test_errors(torch, tv, ops):
    model = efficientnet.efficientnet_b0(num_classes=3).eval()
    for shape in [(1, 1, 32, 32), (3, 32, 32), (1, 4, 8, 8), (1, 3, 0, 5)]:
        with raises_saying(ValueError, ["expected images (N, 3, H, W)", str(shape)],
                           starts="EfficientNet:"):
            model(mg.zeros(*shape))
    # the same errors as torchvision's, with the function's name in front
    for p, mode in [(1.5, "row"), (-0.1, "batch"), (0.5, "rows")]:
        with pytest.raises(ValueError) as theirs:
            ops.stochastic_depth(torch.zeros(2, 3), p, mode)
        with raises_saying(ValueError, [str(theirs.value)], starts="stochastic_depth:"):
            stochastic_depth(mg.zeros(2, 3), p, mode, training=False)
    with raises_saying(ValueError, ["batch dim"], starts="stochastic_depth:"):
        stochastic_depth(mg.tensor(1.0), 0.5, "row")
    with raises_saying(ValueError, ["should not be empty"], starts="EfficientNet:"):
        EfficientNet([], 0.2)
    with raises_saying(TypeError, ["MBConvConfig"], starts="EfficientNet:"):
        EfficientNet([(1, 3, 1, 32, 16, 1)], 0.2)
    with raises_saying(ValueError, ["illegal stride value 3"], starts="MBConv:"):
        MBConv(MBConvConfig(6, 3, 3, 16, 24, 1), 0.0, nn.BatchNorm2d)
    # as torchvision's: keyword arguments only; B5-B7 fix their norm layer
    for call in (partial(efficientnet.efficientnet_b0, 10),
                 partial(efficientnet.efficientnet_b5, norm_layer=nn.BatchNorm2d)):
        with pytest.raises(TypeError):
            call()
    with pytest.raises(TypeError):
        meta_model(torch, tv.efficientnet_b5, norm_layer=torch.nn.BatchNorm2d)


def test_blocks_as_torchvision_ops(torch, ops):
    pairs = [  # (ours, theirs, input channels)
        (blocks.Conv2dNormActivation(4, 8, (3, 5), dilation=(1, 2), groups=2),
         ops.Conv2dNormActivation(4, 8, (3, 5), dilation=(1, 2), groups=2), 4),
        (blocks.Conv2dNormActivation(4, 8, 1, norm_layer=None, activation_layer=nn.Sigmoid,
                                     inplace=None),
         ops.Conv2dNormActivation(4, 8, 1, norm_layer=None, activation_layer=torch.nn.Sigmoid,
                                  inplace=None), 4),
        (blocks.SqueezeExcitation(8, 2), ops.SqueezeExcitation(8, 2), 8),
    ]
    rng = np.random.default_rng(0)
    for ours, theirs, channels in pairs:
        assert repr(ours) == repr(theirs)
        copy_weights(ours, randomised(torch, theirs))
        ours, theirs = ours.double().eval(), theirs.double().eval()
        x = rng.standard_normal((2, channels, 7, 7))
        with mg.no_grad(), torch.no_grad():
            mine, their = ours(mg.tensor(x)).numpy(), theirs(torch.from_numpy(x)).numpy()
        assert relative_error(mine, their) < 1e-12
    assert pairs[0][0].out_channels == 8 and pairs[0][0][0].padding == (1, 4)
