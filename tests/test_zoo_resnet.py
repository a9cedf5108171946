"""ResNet, ResNeXt and Wide ResNet (minigrad.models.resnet) against torchvision 0.28.0's:
structure and repr of every builder, logits, SGD steps, initialisation and errors (tests/zoo.py).
ResNet-20 and its checkpoint keys are tests/test_models.py's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import zoo
from helpers import backend_under_test, raises_saying

import minigrad as mg
from minigrad.models import resnet

PUBLISHED = {  # torchvision's weights metadata (num_params)
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336, "resnext101_64x4d": 83_455_272,
    "wide_resnet50_2": 68_883_240, "wide_resnet101_2": 126_886_696,
}
SMALL_INPUT = (1, 3, 32, 32)  # 1x1 after layer4: the cheapest input that uses every stage


def pair(torch: Any, tv: Any, name: str, **kwargs: Any) -> tuple[Any, Any]:
    """Ours (values irrelevant: the weights get copied) and torchvision's, randomised, with
    the same arguments; torchvision's draws seeded, so every run tests the same weights."""
    torch.manual_seed(0)
    theirs = zoo.randomised(torch, getattr(tv, name)(**kwargs))
    with zoo.without_random_init():
        return getattr(resnet, name)(**kwargs), theirs


def small_pair(torch: Any, tv: Any, **kwargs: Any) -> tuple[Any, Any]:
    """A Bottleneck ResNet of one block per stage, through both classes directly."""
    torch.manual_seed(0)
    theirs = zoo.randomised(torch, tv.ResNet(tv.resnet.Bottleneck, [1, 1, 1, 1], **kwargs))
    with zoo.without_random_init():
        return resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], **kwargs), theirs


# ------------------------------------------------------------------------- structure and repr


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_builder_structure_count_and_repr(torch: Any, tv: Any, name: str) -> None:
    """Keys, shapes, count, and the repr: every conv's stride, padding, dilation and groups."""
    with zoo.without_random_init():
        ours = getattr(resnet, name)()
    theirs = zoo.meta_model(torch, getattr(tv, name))
    zoo.assert_same_structure(ours, theirs, PUBLISHED[name])
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize(("name", "kwargs"), [
    ("resnet18", {"num_classes": 7}),
    ("resnet50", {"num_classes": 7}),
    ("resnet50", {"replace_stride_with_dilation": [False, True, True]}),
    ("resnext50_32x4d", {"replace_stride_with_dilation": [True, False, True], "groups": 32}),
    ("resnet18", {"zero_init_residual": True, "norm_layer": mg.nn.BatchNorm2d}),
    ("wide_resnet50_2", {"num_classes": 7, "width_per_group": 128}),
])
def test_arguments_change_structure_as_torchvisions(torch: Any, tv: Any, name: str,
                                                    kwargs: dict) -> None:
    with zoo.without_random_init():
        ours = getattr(resnet, name)(**kwargs)
    theirs_kwargs = dict(kwargs)
    if "norm_layer" in kwargs:
        theirs_kwargs["norm_layer"] = torch.nn.BatchNorm2d
    theirs = zoo.meta_model(torch, getattr(tv, name), **theirs_kwargs)
    zoo.assert_same_structure(ours, theirs)
    assert repr(ours) == repr(theirs)


def test_small_images_stem_is_the_cifar_one(torch: Any, tv: Any) -> None:
    """`small_images=True`: a 3x3 stride-1 stem conv and no max pool, as the CIFAR ResNet-18s
    of PyTorch code (torchvision's resnet18 with those two layers replaced); 8x8 images
    reach layer4 at 1x1."""
    torch.manual_seed(0)
    theirs = tv.resnet18(num_classes=10)
    theirs.conv1 = torch.nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    theirs.maxpool = torch.nn.Identity()
    zoo.randomised(torch, theirs)
    with zoo.without_random_init():
        ours = resnet.resnet18(num_classes=10, small_images=True)
    zoo.assert_same_structure(ours, theirs, 11_173_962)
    assert repr(ours) == repr(theirs)
    zoo.assert_same_logits(torch, ours, theirs, (2, 3, 8, 8), np.float64)


def test_resnet20_is_the_same_class() -> None:
    model = resnet.resnet20()
    assert type(model) is resnet.ResNet and type(model.layer1[0]) is resnet.BasicBlock
    assert isinstance(model.maxpool, mg.nn.Identity) and not hasattr(model, "layer4")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert zoo.count(model) == 272_474


# ------------------------------------------------------------------------------------ logits


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_logits_match_in_float32_and_float64(torch: Any, tv: Any, name: str) -> None:
    ours, theirs = pair(torch, tv, name)
    with mg.backend("numpy"):
        zoo.assert_same_logits(torch, ours, theirs, SMALL_INPUT, np.float32)
        if name == "resnet18":  # torchvision's min_size: 1x1 stays 1x1 down to layer4
            zoo.assert_same_logits(torch, ours, theirs, (2, 3, 1, 1), np.float32)
        zoo.assert_same_logits(torch, ours, theirs, SMALL_INPUT, np.float64)


def test_logits_match_on_numba(torch: Any, tv: Any) -> None:
    backend_under_test("numba")
    torch.manual_seed(0)
    theirs = zoo.randomised(torch, tv.resnet18())
    with mg.backend("numba"):
        with zoo.without_random_init():
            ours = resnet.resnet18()
        zoo.assert_same_logits(torch, ours, theirs, SMALL_INPUT, np.float32)


def test_dilated_grouped_bottlenecks_match(torch: Any, tv: Any) -> None:
    """replace_stride_with_dilation and groups in the forward pass: layer3 and layer4 keep
    layer2's 4x4 and dilate their 3x3 convs by 2 and 4."""
    ours, theirs = small_pair(torch, tv, replace_stride_with_dilation=[False, True, True],
                              groups=4, width_per_group=16, num_classes=5)
    with mg.backend("numpy"):
        zoo.assert_same_logits(torch, ours, theirs, SMALL_INPUT, np.float64)


# ------------------------------------------------------------------------------ train mode


def test_resnet18_sgd_steps_match(torch: Any, tv: Any) -> None:
    """Batch 4: BatchNorm on 4 values per channel in layer4 (batch 2 would be 2 values, a
    normalisation so ill-conditioned that float64 rounding shows at 1e-8)."""
    ours, theirs = pair(torch, tv, "resnet18")
    zoo.assert_same_after_sgd(torch, ours, theirs, (4, 3, 32, 32))


def test_grouped_dilated_bottleneck_sgd_steps_match(torch: Any, tv: Any) -> None:
    ours, theirs = small_pair(torch, tv, replace_stride_with_dilation=[False, False, True],
                              groups=8, width_per_group=8, num_classes=10,
                              zero_init_residual=True)
    zoo.assert_same_after_sgd(torch, ours, theirs, (4, 3, 32, 32))


# ---------------------------------------------------------------------------- initialisation


def test_init_statistics_are_torchvisions(torch: Any, tv: Any) -> None:
    """He-normal (fan_out) convs, BatchNorm ones and zeros, the Linear layer's default
    uniform(+-1/sqrt(fan_in)): per tensor, ours and a fresh torchvision model agree."""
    mg.manual_seed(0)
    ours = resnet.resnet18().state_dict()
    torch.manual_seed(0)
    theirs = tv.resnet18().state_dict()
    for key, value in theirs.items():
        their, mine = value.double().numpy(), ours[key].numpy()
        if their.min() == their.max():  # BatchNorm's affine parameters and statistics
            np.testing.assert_array_equal(mine, their, err_msg=key)
            continue
        std = their.std()
        assert abs(mine.std() - std) <= 0.1 * std, key
        assert abs(mine.mean() - their.mean()) <= 0.15 * std, key
    for key in ["fc.weight", "fc.bias"]:  # uniform, not normal: nothing beyond the bound
        assert np.abs(ours[key].numpy()).max() <= 1 / np.sqrt(512)


def test_init_is_reproducible_from_manual_seed() -> None:
    def build() -> resnet.ResNet:
        mg.manual_seed(3)
        return resnet.ResNet(resnet.Bottleneck, [1, 2], num_classes=5, widths=(8, 16))

    first, second = build(), build()
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values(),
                           strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=key)


@pytest.mark.parametrize("block", ["BasicBlock", "Bottleneck"])
def test_zero_init_residual(torch: Any, tv: Any, block: str) -> None:
    """The last BatchNorm of every block starts at weight 0; every other one at 1."""
    with zoo.without_random_init():
        ours = resnet.ResNet(getattr(resnet, block), [2, 1, 1, 1], zero_init_residual=True)
    theirs = tv.ResNet(getattr(tv.resnet, block), [2, 1, 1, 1], zero_init_residual=True)
    last = "bn2" if block == "BasicBlock" else "bn3"
    mine = ours.state_dict()
    zeroed = 0
    for key, value in theirs.state_dict().items():
        if "bn" in key or "downsample.1" in key:
            np.testing.assert_array_equal(mine[key].numpy(), value.numpy(), err_msg=key)
            zeroed += key.endswith(f"{last}.weight")
    assert zeroed == 5
    default = resnet.ResNet(getattr(resnet, block), [1, 1], widths=(8, 16)).state_dict()
    assert all(value.numpy().all() for key, value in default.items() if key.endswith("weight"))


# -------------------------------------------------------------------------------------- errors


def test_bad_inputs_name_the_model_and_the_expected_shape() -> None:
    with zoo.without_random_init():
        model = resnet.resnet18().eval()
    for shape in [(1, 1, 32, 32), (3, 32, 32)]:
        with raises_saying(ValueError, ["(N, 3, H, W)", str(shape)], starts="ResNet:"):
            model(mg.tensor(np.zeros(shape, np.float32)))
    gray = resnet.ResNet(resnet.BasicBlock, [1, 1], widths=(8, 16), in_channels=1,
                         small_images=True)
    with raises_saying(ValueError, ["(N, 1, H, W)", "(2, 3, 8, 8)"], starts="ResNet:"):
        gray(mg.tensor(np.zeros((2, 3, 8, 8), np.float32)))
    assert gray(mg.tensor(np.zeros((2, 1, 8, 8), np.float32))).shape == (2, 1000)
    with raises_saying(ValueError, ["more than 1 value per channel"]):  # as torch, in training
        model.train()(mg.tensor(np.zeros((1, 3, 32, 32), np.float32)))


def test_bad_arguments_raise_as_torchvision(tv: Any) -> None:
    cases = [
        ("resnet18", {"groups": 2}, ValueError, "BasicBlock only supports groups=1"),
        ("resnet34", {"width_per_group": 32}, ValueError, "BasicBlock only supports groups=1"),
        ("resnet18", {"replace_stride_with_dilation": [False, False, True]},
         NotImplementedError, "Dilation > 1 not supported in BasicBlock"),
        ("resnet50", {"replace_stride_with_dilation": [True, True]}, ValueError,
         "replace_stride_with_dilation should be None or a 3-element tuple"),
        ("resnext50_32x4d", {"groups": 16}, ValueError, "groups"),
        ("wide_resnet50_2", {"width_per_group": 64}, ValueError, "width_per_group"),
    ]
    for name, kwargs, error, text in cases:
        with pytest.raises(error):
            getattr(tv, name)(**kwargs)
        with zoo.without_random_init(), raises_saying(error, [text]):
            getattr(resnet, name)(**kwargs)
    with raises_saying(ValueError, ["resnext50_32x4d:", "groups=32", "groups=16"]):
        resnet.resnext50_32x4d(groups=16)
    with zoo.without_random_init():
        assert resnet.resnext50_32x4d(groups=32).groups == 32  # repeating the value is fine
    with raises_saying(ValueError, ["[2, 2]", "[64, 128, 256]"], starts="ResNet:"):
        resnet.ResNet(resnet.BasicBlock, [2, 2], widths=(64, 128, 256))
    with raises_saying(ValueError, ["2-element"], starts="ResNet:"):
        resnet.ResNet(resnet.Bottleneck, [1, 1, 1], widths=(8, 16, 32),
                      replace_stride_with_dilation=[True])
