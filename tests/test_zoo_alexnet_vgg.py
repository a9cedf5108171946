"""AlexNet and VGG (minigrad.models.alexnet, minigrad.models.vgg) against torchvision 0.28.0's:
structure of every builder, logits, SGD steps, initialisation, repr and errors (tests/zoo.py).

The VGGs hold 133-144M parameters, 103M of them in the first Linear layer whatever the input
size, so the expensive things happen once: each torchvision model the tests need is built (and
initialised) once, and the logits and SGD tests load its weights into meta-built copies; our
models are built without random draws except where the initialisation is the point. The SGD
steps in float64 still hold about 6.5 GB (weights, gradients and momentum, in both libraries).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import zoo
from helpers import backend_under_test, raises_saying

import minigrad as mg
from minigrad import nn
from minigrad.models import vgg
from minigrad.models.alexnet import alexnet

BUILDERS = {"alexnet": alexnet, "vgg11": vgg.vgg11, "vgg11_bn": vgg.vgg11_bn,
            "vgg13": vgg.vgg13, "vgg13_bn": vgg.vgg13_bn, "vgg16": vgg.vgg16,
            "vgg16_bn": vgg.vgg16_bn, "vgg19": vgg.vgg19, "vgg19_bn": vgg.vgg19_bn}
# The published counts (alexnet, vgg16) and torchvision's weights metadata (num_params).
PUBLISHED = {"alexnet": 61_100_840, "vgg11": 132_863_336, "vgg11_bn": 132_868_840,
             "vgg13": 133_047_848, "vgg13_bn": 133_053_736, "vgg16": 138_357_544,
             "vgg16_bn": 138_365_992, "vgg19": 143_667_240, "vgg19_bn": 143_678_248}
# The smallest inputs torchvision's models take (its weights' "min_size"; checked below).
SMALLEST = {"alexnet": 63, "vgg11": 32, "vgg11_bn": 32}


SAMPLE = 1 << 18  # elements per tensor that the statistics look at


def _statistics(state: dict[str, Any]) -> dict[str, tuple[float, float, float, float, int]]:
    """Per tensor of a state dict (minigrad or torch): mean, std, min, max and size of its
    first SAMPLE elements (the draws are independent: a VGG's 103M-element Linear weight
    needs no more to show its distribution, and would take seconds)."""
    out = {}
    for key, value in state.items():
        a = np.asarray(value.numpy().reshape(-1)[:SAMPLE], dtype=np.float64)
        out[key] = (a.mean(), a.std(), a.min(), a.max(), a.size)
    return out


@pytest.fixture(scope="module")
def oracle(torch: Any, tv: Any) -> Any:
    """`oracle(name)`: (the statistics of a freshly built torchvision model, the state dict of
    that model after `zoo.randomised` and with its zero biases made U(-0.1, 0.1)). VGG starts
    its biases at zero, which would hide a lost bias; and the conv biases before BatchNorm get
    only round-off gradients, which 2 SGD steps compare meaningfully only against a bias that
    is not 0. Only the last state dict is kept (a VGG's is 530 MB; the tests below ask for
    one model after the other), the statistics of every one."""
    statistics: dict[str, dict] = {}
    last: dict[str, dict] = {}

    def get(name: str) -> tuple[dict, dict]:
        if name not in last:
            last.clear()
            torch.manual_seed(0)
            model = getattr(tv, name)()
            statistics[name] = _statistics(model.state_dict())
            zoo.randomised(torch, model)
            with torch.no_grad():
                for key, param in model.named_parameters():
                    if key.endswith(".bias") and not param.any():
                        param.uniform_(-0.1, 0.1)
            last[name] = model.state_dict()
        return statistics[name], last[name]

    return get


def theirs(torch: Any, tv: Any, oracle: Any, name: str, **kwargs: Any) -> Any:
    """torchvision's `name` with the oracle's randomised weights, built without initialising."""
    model = zoo.meta_model(torch, getattr(tv, name), **kwargs).to_empty(device="cpu")
    model.load_state_dict(oracle(name)[1])
    return model


def ours_blank(name: str, **kwargs: Any) -> nn.Module:
    """Our `name` with every initial value 0 (weights to be loaded, or shapes only)."""
    with zoo.without_random_init():
        return BUILDERS[name](**kwargs)


def ours_to_load(name: str, **kwargs: Any) -> nn.Module:
    """`ours_blank`, without VGG's own initialisation pass (the weights will be loaded)."""
    return ours_blank(name, **kwargs, **({} if name == "alexnet" else {"init_weights": False}))


# ------------------------------------------------------------------------- structure and repr


@pytest.mark.parametrize("name", list(BUILDERS))
def test_structure_published_count_and_repr(torch: Any, tv: Any, name: str) -> None:
    """Keys, shapes, dtypes and parameter count as torchvision's; print(model) the same."""
    ours = ours_blank(name)
    their = zoo.meta_model(torch, getattr(tv, name))
    zoo.assert_same_structure(ours, their, PUBLISHED[name])
    assert repr(ours) == repr(their)


@pytest.mark.parametrize(("name", "kwargs"), [
    ("alexnet", {"num_classes": 7, "dropout": 0.25}),
    ("vgg11", {"num_classes": 7, "dropout": 0.25, "init_weights": False}),
    ("vgg11_bn", {"num_classes": 7}),
])
def test_arguments_structure_and_repr(torch: Any, tv: Any, name: str, kwargs: dict) -> None:
    ours = ours_blank(name, **kwargs)
    their = zoo.meta_model(torch, getattr(tv, name), **kwargs)
    zoo.assert_same_structure(ours, their)
    assert ours.classifier[-1].weight.shape == (7, 4096)
    assert repr(ours) == repr(their)


def test_configuration_table() -> None:
    """The paper's A, B, D, E: 8, 10, 13, 16 convs (+3 Linear = 11, 13, 16, 19 weight
    layers), five max pools each; make_layers' layer order, with and without BatchNorm."""
    convs = {name: sum(isinstance(item, int) for item in cfg) for name, cfg in vgg.cfgs.items()}
    assert convs == {"A": 8, "B": 10, "D": 13, "E": 16}
    assert all(cfg.count("M") == 5 and cfg[-1] == "M" for cfg in vgg.cfgs.values())
    kinds = [type(m).__name__ for m in vgg.make_layers([8, "M"], batch_norm=True)]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    kinds = [type(m).__name__ for m in vgg.make_layers([8, 16])]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU"]


# ------------------------------------------------------------------------------------- logits


def test_alexnet_logits_numba(torch: Any, tv: Any, oracle: Any) -> None:
    """Once on Numba, float32, at 127x63: 3x1 maps after the features, so H and W go their
    own ways through the max pools and the adaptive pool."""
    backend_under_test("numba")
    with mg.backend("numba"):
        zoo.assert_same_logits(torch, ours_to_load("alexnet"), theirs(torch, tv, oracle, "alexnet"),
                               (1, 3, 127, 63), np.float32)


@pytest.mark.parametrize("name", list(SMALLEST))
def test_logits_at_the_smallest_input(torch: Any, tv: Any, oracle: Any, name: str) -> None:
    """Eval mode, torchvision's weights, NumPy backend: the same logits in float32, then in
    float64, at the smallest input (1x1 maps after the features, which the adaptive pool
    repeats 36 or 49 times). One model pair for both dtypes: the VGGs are big."""
    size = SMALLEST[name]
    ours, their = ours_to_load(name), theirs(torch, tv, oracle, name)
    with mg.backend("numpy"):
        for dtype in (np.float32, np.float64):
            zoo.assert_same_logits(torch, ours, their, (2, 3, size, size), dtype)


# ------------------------------------------------------------------------------------ training


def test_vgg11_bn_sgd_steps(torch: Any, tv: Any, oracle: Any) -> None:
    """Train mode (BatchNorm on batch statistics, dropout 0): 2 SGD steps agree, parameters
    and running statistics."""
    their = theirs(torch, tv, oracle, "vgg11_bn", dropout=0.0)
    zoo.assert_same_after_sgd(torch, ours_to_load("vgg11_bn", dropout=0.0),
                              their, (2, 3, 32, 32), steps=2)


# ------------------------------------------------------------------------------ initialisation


def assert_same_statistics(mine: dict, their: dict) -> None:
    """Constants exactly; the rest with mean and std near torchvision's (two samples' means
    and stds differ by about std / sqrt(size): allow 4 times that)."""
    assert list(mine) == list(their)
    for key, (mean, std, low, high, size) in their.items():
        m_mean, m_std, m_low, m_high, _ = mine[key]
        if low == high:
            assert m_low == m_high == low, key
        else:
            tolerance = 4 * std / math.sqrt(size)
            assert abs(m_mean - mean) <= tolerance, key
            assert abs(m_std - std) <= tolerance, key


@pytest.mark.parametrize("name", ["alexnet", "vgg11_bn"])
def test_initialisation_statistics(oracle: Any, name: str) -> None:
    """AlexNet: the layers' defaults (Kaiming-uniform weights with a=sqrt(5), uniform biases).
    VGG: He-normal fan_out convs, BatchNorm ones and zeros, N(0, 0.01^2) Linear weights, zero
    biases."""
    mg.manual_seed(0)
    model = BUILDERS[name]()
    mine = _statistics(model.state_dict())
    assert_same_statistics(mine, oracle(name)[0])
    if name == "vgg11_bn":  # the distributions themselves, not only torchvision's samples
        assert mine["features.0.weight"][1] == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)
        assert mine["classifier.0.weight"][1] == pytest.approx(0.01, rel=0.01)


def test_vgg_without_init_weights_keeps_the_defaults(torch: Any, tv: Any) -> None:
    """init_weights=False: every layer keeps its default init (here a small features stack
    and the full classifier), as torchvision's."""
    mg.manual_seed(0)
    ours = vgg.VGG(vgg.make_layers([8, "M", 512]), num_classes=10, init_weights=False)
    torch.manual_seed(0)
    their = tv.vgg.VGG(tv.vgg.make_layers([8, "M", 512]), num_classes=10, init_weights=False)
    mine = _statistics(ours.state_dict())
    assert_same_statistics(mine, _statistics(their.state_dict()))
    for key, fan_in in [("features.0.weight", 3 * 9), ("features.3.weight", 8 * 9)]:
        bound = 1 / math.sqrt(fan_in)  # Kaiming-uniform with a=sqrt(5): U(-bound, bound)
        assert mine[key][1] == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert mine["classifier.0.bias"][1] > 0  # not zeroed


# ------------------------------------------------------------------------------------- errors


def test_torchvisions_smallest_inputs(torch: Any, tv: Any) -> None:
    """Our minimum sizes are torchvision's: one pixel less fails there (on the meta device)."""
    for name, size in [("alexnet", 63), ("vgg11", 32)]:
        model = zoo.meta_model(torch, getattr(tv, name))
        assert model(torch.empty(1, 3, size, size, device="meta")).shape == (1, 1000)
        for shape in [(1, 3, size - 1, size), (1, 3, size, size - 1)]:
            with pytest.raises(RuntimeError, match="too small"):
                model(torch.empty(shape, device="meta"))


def test_alexnet_wrong_input() -> None:
    model = ours_blank("alexnet")
    for shape in [(1, 3, 62, 62), (1, 3, 63, 62), (1, 3, 62, 200), (1, 1, 63, 63),
                  (1, 4, 224, 224), (3, 63, 63)]:
        with raises_saying(ValueError, ["(N, 3, H, W)", "H and W at least 63", str(shape)],
                           starts="AlexNet:"):
            model(mg.zeros(*shape))


def test_vgg_wrong_input() -> None:
    model = ours_blank("vgg11_bn")
    for shape in [(1, 3, 31, 31), (1, 3, 32, 31), (1, 3, 31, 200), (1, 1, 32, 32),
                  (3, 32, 32)]:
        with raises_saying(ValueError, ["(N, 3, H, W)", "H and W at least 32", str(shape)],
                           starts="VGG:"):
            model(mg.zeros(*shape))


def test_vgg_minimum_follows_the_features() -> None:
    """A custom features stack: two halving pools need 4x4; a 5x5 conv without padding
    4 more pixels; the input channels are the first conv's."""
    features = nn.Sequential(nn.Conv2d(1, 512, 5), nn.MaxPool2d(2), nn.MaxPool2d(2))
    with zoo.without_random_init():
        model = vgg.VGG(features, num_classes=3)
    assert model(mg.zeros(1, 1, 8, 8)).shape == (1, 3)
    with raises_saying(ValueError, ["(N, 1, H, W)", "H and W at least 8", "(1, 1, 8, 7)"],
                       starts="VGG:"):
        model(mg.zeros(1, 1, 8, 7))


def test_make_layers_rejects_a_bad_entry() -> None:
    with raises_saying(ValueError, ["'X'", "'M'"], starts="make_layers:"):
        vgg.make_layers([64, "X"])
    with raises_saying(ValueError, ["0"], starts="make_layers:"):
        vgg.make_layers([0])
