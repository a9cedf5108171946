"""The small-image forms the CLI trains (minigrad.train.MODELS) against their PyTorch twins
(minigrad.testing.torch_models: torchvision's models with the layers each form changes
replaced): keys, shapes and the parameter counts README lists, logits, SGD steps for the
BatchNorm nets, and the input sizes each form takes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import zoo
from helpers import raises_saying

import minigrad as mg
from minigrad import train
from minigrad.testing.torch_models import torch_small_image_model

PARAMETERS = {  # one input channel, 10 classes: README's table
    "simplecnn": 225_034, "resnet20": 272_186, "lenet5": 61_706, "alexnet": 23_468_746,
    "vgg11": 9_224_458, "vgg16": 14_718_666, "googlenet": 9_951_806, "resnet18": 11_172_810,
    "efficientnet_b0": 4_019_782, "vit": 805_130,
}


def side(name: str) -> int:
    return train.MIN_IMAGE_SIZE.get(name, 28)


def pair(torch: Any, name: str, seed: int = 0) -> tuple[mg.nn.Module, Any]:
    """Ours (its initial values irrelevant: the twin's get copied in) and the twin,
    randomised from a seeded draw."""
    torch.manual_seed(seed)
    theirs = zoo.randomised(torch, torch_small_image_model(torch, name, image_size=side(name)))
    with zoo.without_random_init():
        return train.MODELS[name](side(name)), theirs


def test_every_cli_model_has_a_documented_form():
    assert sorted(PARAMETERS) == sorted(train.MODELS)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_form_has_its_twins_keys_shapes_and_parameter_count(torch, name):
    with zoo.without_random_init():
        ours = train.MODELS[name](side(name))
    zoo.assert_same_structure(ours, torch_small_image_model(torch, name, image_size=side(name)),
                              PARAMETERS[name])


@pytest.mark.parametrize("name", sorted(set(PARAMETERS) - {"simplecnn", "resnet20", "lenet5"}))
def test_form_gives_its_twins_logits(torch, name):
    ours, theirs = pair(torch, name)
    zoo.assert_same_logits(torch, ours, theirs, (2, 1, side(name), side(name)))


def no_dropout(torch: Any, model: Any) -> Any:
    """Dropout and stochastic depth off, so that training draws no random numbers."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) or type(module).__name__ == "StochasticDepth":
            module.p = 0.0
    return model


@pytest.mark.parametrize("name, builder", [
    ("resnet18", lambda: mg.models.resnet18(num_classes=10, small_images=True, in_channels=1)),
    ("googlenet", lambda: mg.models.googlenet(num_classes=10, small_images=True, in_channels=1,
                                              dropout=0.0, dropout_aux=0.0)),
    ("efficientnet_b0", lambda: mg.models.efficientnet_b0(
        num_classes=10, small_images=True, in_channels=1, dropout=0.0,
        stochastic_depth_prob=0.0)),
])
def test_batchnorm_forms_train_like_their_twins(torch, name, builder):
    """Two SGD steps in training mode (GoogLeNet's auxiliary heads run, their BatchNorm
    statistics move): every parameter and BatchNorm buffer as the twin's."""
    torch.manual_seed(0)
    theirs = no_dropout(torch, zoo.randomised(torch, torch_small_image_model(torch, name)))
    with zoo.without_random_init():
        ours = builder()
    pick = (lambda outputs: outputs.logits) if name == "googlenet" else None
    zoo.assert_same_after_sgd(torch, ours, theirs, (2, 1, 28, 28), output=pick)


@pytest.mark.parametrize("name, smallest", [("alexnet", 15), ("googlenet", 4), ("vgg11", 32)])
def test_forms_take_images_down_to_their_smallest_side(torch, name, smallest):
    """The smallest side passes through ours and the twin; one less is refused, naming the
    side."""
    with zoo.without_random_init():
        ours = train.MODELS[name](28).eval()
    theirs = torch_small_image_model(torch, name).eval()
    x = np.zeros((1, 1, smallest, smallest), np.float32)
    with mg.no_grad():
        assert ours(mg.tensor(x)).shape == (1, 10)
    with torch.no_grad():
        assert tuple(theirs(torch.from_numpy(x)).shape) == (1, 10)
    with raises_saying(ValueError, f"at least {smallest}"):
        ours(mg.tensor(x[..., 1:, 1:]))
