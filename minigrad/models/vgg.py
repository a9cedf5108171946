"""VGG: Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (2014), as torchvision 0.28.0's `vgg.py`.

The idea: depth from the simplest possible layer. Every conv is 3x3 with padding 1 (two stacked
3x3 convs see 5x5, three see 7x7, with fewer parameters and more ReLUs than one large conv),
every pool a 2x2 stride-2 max pool that halves the size, and the channels double after each
pool, from 64 up to 512. Five blocks of convs and a pool, then three fully connected layers.

The paper's configurations, by the number of weight layers (convs plus 3 Linear layers):
A = VGG-11, B = VGG-13, D = VGG-16, E = VGG-19 (`cfgs` below; `vgg16` is the famous one,
138,357,544 parameters). The `_bn` builders add a BatchNorm after every conv, which the paper
predates (Ioffe and Szegedy, 2015).

Where torchvision differs from the paper: an AdaptiveAvgPool2d to 7x7 before the classifier,
so any input of at least 32x32 works (the paper's 224x224 crops are 7x7 there already; for
testing at other sizes the paper turned the Linear layers into convolutions instead), and
torchvision's initialisation: He-normal (fan_out) conv weights, N(0, 0.01^2) Linear weights,
zero biases. The paper drew weights from N(0, 0.1^2) (variance 10^-2) for A, and started the
deeper nets' first four convs and the Linear layers from the trained A. The paper's
configurations A-LRN (with LocalResponseNorm) and C (with 1x1 convs) are not here, as in
torchvision.

The small-image form (`small_images=True`, the CIFAR form of VGG, for 32x32 images: resize
28x28 ones) keeps `features` and replaces the rest: the five pools leave a 32x32 image 1x1,
so the 7x7 average pool would only repeat that pixel 49 times into 102M classifier weights.
Instead a global average pool and a one-layer classifier, Linear(512, num_classes). With one
input channel and 10 classes: vgg11 9,224,458 parameters, vgg16 14,718,666.
"""

from __future__ import annotations

from typing import Any

from minigrad import nn
from minigrad.nn import init
from minigrad.tensor import Tensor

# The paper's Table 1: an int is a 3x3 conv (padding 1) to that many channels, followed by a
# ReLU; "M" is a 2x2 stride-2 max pool.
cfgs: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG-11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG-13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",  # VGG-16
          512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",  # VGG-19
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg: list[int | str], batch_norm: bool = False,
                in_channels: int = 3) -> nn.Sequential:
    """The `features` Sequential of a configuration from `cfgs`, for `in_channels`-channel
    images: each int becomes Conv2d(3x3, padding 1), [BatchNorm2d,] ReLU; each "M" a
    MaxPool2d(2, 2)."""
    layers: list[nn.Module] = []
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        if not isinstance(item, int) or isinstance(item, bool) or item < 1:
            raise ValueError(f"make_layers: expected a positive channel count or 'M', got "
                             f"{item!r} in {cfg}")
        # A bias before BatchNorm is redundant, but torchvision keeps it (its state-dict keys).
        layers.append(nn.Conv2d(in_channels, item, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU(inplace=True))  # the flag only for the repr: minigrad copies
        in_channels = item
    return nn.Sequential(*layers)


def _side(value: int | tuple[int, int], axis: int) -> int:
    return value[axis] if isinstance(value, tuple) else value


def _smallest_input(features: nn.Module) -> tuple[int, int]:
    """The smallest (H, W) for which `features` leaves at least 1x1: walk the layers backwards
    from a 1x1 output, asking each conv or max pool (floor mode) for the input it needs.
    For make_layers' configurations, five halving pools: (32, 32)."""
    sizes = []
    for axis in (0, 1):
        need = 1
        for layer in reversed(list(features.modules())):
            if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                padding = layer.padding
                if isinstance(padding, str):  # Conv2d's "same" keeps the size, "valid" is 0
                    if padding == "same":
                        continue
                    padding = 0
                span = (_side(layer.dilation, axis) * (_side(layer.kernel_size, axis) - 1) + 1)
                need = max((need - 1) * _side(layer.stride, axis) + span
                           - 2 * _side(padding, axis), 1)
        sizes.append(need)
    return sizes[0], sizes[1]


class VGG(nn.Module):
    """`features` (from `make_layers`), `avgpool` to 7x7 and the three-layer `classifier`
    (dropout after the two hidden layers' ReLUs), for (N, C, H, W) images with C the first
    conv's input channels (3 from make_layers) and H, W at least 32 (for make_layers'
    features: five halving max pools).

    init_weights=True gives torchvision's initialisation: convs He-normal by fan_out (keeps
    the backward signal's variance steady through the ReLUs), BatchNorm the identity, Linear
    weights N(0, 0.01^2), all biases 0. With False, every layer keeps its default init.
    `small_images` (keyword only): the CIFAR form of the module docstring, a global average
    pool and one Linear layer.
    """

    def __init__(self, features: nn.Module, num_classes: int = 1000, init_weights: bool = True,
                 dropout: float = 0.5, *, small_images: bool = False) -> None:
        super().__init__()
        self.features = features
        if small_images:  # the CIFAR form: see the module docstring
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.classifier = nn.Sequential(nn.Linear(512, num_classes))
        else:
            # 224x224 images are 7x7 here already; other sizes are averaged (or repeated) to
            # 7x7, so the classifier's shapes do not depend on the input's.
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(p=dropout),
                nn.Linear(4096, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(p=dropout),
                nn.Linear(4096, num_classes),
            )
        convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
        # What forward checks its input against, worked out once.
        self._in_channels = convs[0].in_channels if convs else None
        self._min_size = _smallest_input(features)
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                init.ones_(module.weight)
                init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                init.normal_(module.weight, 0.0, 0.01)
                init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape)
        height, width = self._min_size
        channels = self._in_channels
        if (len(shape) != 4 or (channels is not None and shape[1] != channels)
                or shape[2] < height or shape[3] < width):
            sides = (f"H and W at least {height}" if height == width
                     else f"H at least {height} and W at least {width}")
            raise ValueError(f"VGG: expected an input (N, {channels or 'C'}, H, W) with {sides}, "
                             f"got {shape}")
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _vgg(cfg: str, batch_norm: bool, kwargs: dict[str, Any]) -> VGG:
    """VGG(make_layers(...), **kwargs), `in_channels` (default 3) going to make_layers."""
    in_channels = kwargs.pop("in_channels", 3)
    return VGG(make_layers(cfgs[cfg], batch_norm=batch_norm, in_channels=in_channels), **kwargs)


def vgg11(**kwargs: Any) -> VGG:
    """VGG-11, configuration A: 132,863,336 parameters. Keyword arguments go to `VGG`:
    num_classes=1000, init_weights=True, dropout=0.5, small_images=False; in_channels=3 goes
    to `make_layers`."""
    return _vgg("A", False, kwargs)


def vgg11_bn(**kwargs: Any) -> VGG:
    """VGG-11 (configuration A) with BatchNorm: 132,868,840 parameters. Keyword arguments
    as `vgg11`."""
    return _vgg("A", True, kwargs)


def vgg13(**kwargs: Any) -> VGG:
    """VGG-13, configuration B: 133,047,848 parameters. Keyword arguments as `vgg11`."""
    return _vgg("B", False, kwargs)


def vgg13_bn(**kwargs: Any) -> VGG:
    """VGG-13 (configuration B) with BatchNorm: 133,053,736 parameters. Keyword arguments
    as `vgg11`."""
    return _vgg("B", True, kwargs)


def vgg16(**kwargs: Any) -> VGG:
    """VGG-16, configuration D: 138,357,544 parameters. Keyword arguments as `vgg11`."""
    return _vgg("D", False, kwargs)


def vgg16_bn(**kwargs: Any) -> VGG:
    """VGG-16 (configuration D) with BatchNorm: 138,365,992 parameters. Keyword arguments
    as `vgg11`."""
    return _vgg("D", True, kwargs)


def vgg19(**kwargs: Any) -> VGG:
    """VGG-19, configuration E: 143,667,240 parameters. Keyword arguments as `vgg11`."""
    return _vgg("E", False, kwargs)


def vgg19_bn(**kwargs: Any) -> VGG:
    """VGG-19 (configuration E) with BatchNorm: 143,678,248 parameters. Keyword arguments
    as `vgg11`."""
    return _vgg("E", True, kwargs)
