"""PyTorch twins of minigrad's models, built with torch.nn (no torchvision): the same layers,
the same parameter names, so state dicts move between the two. Tests and benchmarks compare
against them; torch is passed in, so minigrad itself never imports it."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def torch_simple_cnn(torch: Any, num_classes: int = 10) -> Any:
    nn = torch.nn

    class TorchSimpleCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
                nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2, 2))
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Dropout(0.5),
                nn.Linear(128, num_classes))

        def forward(self, x):
            return self.classifier(self.features(x))

    return TorchSimpleCNN()


def torch_lenet5(torch: Any, num_classes: int = 10, in_channels: int = 1) -> Any:
    """LeNet-5 as minigrad.models.lenet5 builds it (modernised: see its docstring)."""
    nn = torch.nn

    class TorchLeNet5(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
                nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
                nn.Conv2d(16, 120, 5), nn.Tanh())
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, num_classes))

        def forward(self, x):
            return self.classifier(self.features(x))

    return TorchLeNet5()


def torch_resnet20(torch: Any, num_classes: int = 10, in_channels: int = 3) -> Any:
    """ResNet-20 as torchvision would build it for CIFAR (BasicBlock, 1x1 projection)."""
    nn = torch.nn

    def conv3x3(cin: int, cout: int, stride: int = 1) -> Any:
        return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
            super().__init__()
            self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    def stage(cin: int, cout: int, stride: int) -> Any:
        return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout),
                             BasicBlock(cout, cout))

    class ResNet20(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = conv3x3(in_channels, 16), nn.BatchNorm2d(16)
            self.relu = nn.ReLU()
            self.layer1, self.layer2 = stage(16, 16, 1), stage(16, 32, 2)
            self.layer3 = stage(32, 64, 2)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet20()


def torchvision_models(torch: Any) -> Any:
    """The `torchvision.models` module, imported without torchvision's compiled operators.

    torch is passed in, as to the twins above (and imported before torchvision). The
    torchvision wheel's compiled operators may need CUDA libraries a CPU build of torch lacks;
    its models are plain Python, so an empty `torchvision._meta_registrations` keeps the import
    from registering those operators (tests/zoo.py does the same)."""
    del torch  # imported already by the caller; torchvision imports it again
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    import torchvision.models

    return torchvision.models


def torchvision_model(torch: Any, name: str, **kwargs: Any) -> Any:
    """`torchvision.models.get_model(name, **kwargs)`: torchvision's model, randomly
    initialised (no weights downloaded); see `torchvision_models`."""
    return torchvision_models(torch).get_model(name, **kwargs)


def torch_small_image_model(torch: Any, name: str, num_classes: int = 10,
                            in_channels: int = 1, image_size: int = 28) -> Any:
    """The PyTorch twin of `minigrad.train.MODELS[name]`, the small-image form of a model of
    the CNN article: torchvision's model (or the twins above) with the layers the form
    changes replaced, as the form's docstring lists them."""
    nn = torch.nn
    if name == "simplecnn":
        return torch_simple_cnn(torch, num_classes)
    if name == "resnet20":
        return torch_resnet20(torch, num_classes, in_channels)
    if name == "lenet5":
        return torch_lenet5(torch, num_classes, in_channels)
    tv = torchvision_models(torch)
    if name == "alexnet":
        model = tv.alexnet(num_classes=num_classes)
        model.features[0] = nn.Conv2d(in_channels, 64, kernel_size=5, padding=2)
        model.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        model.classifier[1] = nn.Linear(256 * 2 * 2, 4096)
    elif name in ("vgg11", "vgg16"):
        model = getattr(tv, name)(num_classes=num_classes)
        model.features[0] = nn.Conv2d(in_channels, 64, kernel_size=3, padding=1)
        model.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        model.classifier = nn.Sequential(nn.Linear(512, num_classes))
    elif name == "googlenet":
        model = tv.googlenet(num_classes=num_classes, aux_logits=True, init_weights=True)
        blocks = importlib.import_module("torchvision.models.googlenet")
        model.conv1 = blocks.BasicConv2d(in_channels, 64, kernel_size=3, padding=1)
        model.maxpool1 = nn.Identity()
    elif name == "resnet18":
        model = tv.resnet18(num_classes=num_classes)
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif name == "efficientnet_b0":
        model = tv.efficientnet_b0(num_classes=num_classes)
        stem = model.features[0]
        model.features[0] = type(stem)(in_channels, 32, kernel_size=3, stride=1,
                                       norm_layer=nn.BatchNorm2d, activation_layer=nn.SiLU)
    elif name == "vit":
        model = tv.VisionTransformer(image_size=image_size, patch_size=4, num_layers=6,
                                     num_heads=4, hidden_dim=128, mlp_dim=256,
                                     num_classes=num_classes)
        model.conv_proj = nn.Conv2d(in_channels, 128, kernel_size=4, stride=4)
    else:
        raise ValueError(f"torch_small_image_model: no small-image form named {name!r}")
    return model
