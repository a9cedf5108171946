"""EfficientNet B0-B7: Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional
Neural Networks" (2019), as torchvision 0.28.0 builds it (same names, defaults, state-dict keys).

The idea: scale a network's width (channels), depth (layers) and input resolution together, by
one compound coefficient, instead of one at a time. B0 is a small baseline found by
architecture search: a 3x3 stem, seven stages of MBConv blocks (MobileNetV2's inverted
residuals, with squeeze-and-excitation and SiLU, "swish"), a 1x1 conv to 1280 channels, global
pooling, dropout and a Linear classifier. B1-B7 multiply its channels by `width_mult` (rounded to
multiples of 8) and its blocks per stage by `depth_mult` (rounded up); the paper's resolutions
(224 for B0 ... 600 for B7) are a property of the input, not of the weights: every input size of
at least 1x1 goes through (global pooling at the end).

Where torchvision differs from the paper's text (it follows the official TensorFlow code): the
paper's "stochastic depth with survival probability 0.8" is here a drop probability that grows
with the block's index, from 0 at the first block to nearly `stochastic_depth_prob` (0.2) at
the last, drawn per sample; and B5-B7's BatchNorms use eps=0.001, momentum=0.01 (TensorFlow's
defaults, its momentum 0.99 in PyTorch's convention), B0-B4 PyTorch's eps=1e-5, momentum=0.1.
The dropout before the classifier rises from 0.2 (B0) to 0.5 (B7) in steps of 0.1 every two
variants, the paper's "linearly from 0.2 to 0.5".

The small-image form (`small_images=True`, for 28x28 or 32x32 images) differs in the stem
only: its 3x3 conv has stride 1, not 2, so the four stride-2 stages leave a 28x28 image 2x2
(28 -> 14 -> 7 -> 4 -> 2) instead of 1x1. With one input channel and 10 classes, B0 has
4,019,782 parameters.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from functools import partial

from minigrad import nn
from minigrad.autograd import describe
from minigrad.models.blocks import Conv2dNormActivation, SqueezeExcitation, StochasticDepth
from minigrad.nn import init
from minigrad.tensor import Tensor


def _make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """`value` rounded to the nearest multiple of `divisor` (at least `min_value`, default
    `divisor`), but never more than 10% below it: channel counts that suit the hardware."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class MBConvConfig:
    """One stage of the network, a row of the paper's Table 1: `num_layers` MBConv blocks
    (`block`) of this `kernel`, the first with this `stride` and `input_channels`, all with
    `out_channels`; each expands its input's channels by `expand_ratio` inside. Channel counts
    are scaled by `width_mult` (to multiples of 8), the layer count by `depth_mult` (rounded up).
    """

    def __init__(self, expand_ratio: float, kernel: int, stride: int, input_channels: int,
                 out_channels: int, num_layers: int, width_mult: float = 1.0,
                 depth_mult: float = 1.0, block: Callable[..., nn.Module] | None = None) -> None:
        self.expand_ratio = expand_ratio
        self.kernel = kernel
        self.stride = stride
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.num_layers = self.adjust_depth(num_layers, depth_mult)
        self.block = MBConv if block is None else block

    @staticmethod
    def adjust_channels(channels: int, width_mult: float, min_value: int | None = None) -> int:
        return _make_divisible(channels * width_mult, 8, min_value)

    @staticmethod
    def adjust_depth(num_layers: int, depth_mult: float) -> int:
        return int(math.ceil(num_layers * depth_mult))

    def __repr__(self) -> str:
        fields = ("expand_ratio", "kernel", "stride", "input_channels", "out_channels",
                  "num_layers")
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in fields)
        return f"MBConvConfig({shown}, block={self.block.__name__})"


class MBConv(nn.Module):
    """The mobile inverted bottleneck with squeeze-and-excitation: a 1x1 conv expands the
    channels (left out at expand_ratio 1), a depthwise kxk conv (one filter per channel, so
    cheap) filters space with the block's stride, SqueezeExcitation reweights the channels
    (squeezing to a quarter of the block's input channels), and a 1x1 conv projects back down,
    with no activation: a nonlinearity in the narrow layer would destroy information.
    BatchNorm after each conv, SiLU after the first two.

    Where the input and output shapes agree (stride 1, same channels), the input is added back,
    and in training the branch goes through StochasticDepth(stochastic_depth_prob, "row") first.
    """

    def __init__(self, cnf: MBConvConfig, stochastic_depth_prob: float,
                 norm_layer: Callable[..., nn.Module],
                 se_layer: Callable[..., nn.Module] = SqueezeExcitation) -> None:
        super().__init__()
        if not 1 <= cnf.stride <= 2:
            raise ValueError(f"MBConv: illegal stride value {cnf.stride}, expected 1 or 2")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        expanded_channels = cnf.adjust_channels(cnf.input_channels, cnf.expand_ratio)
        layers: list[nn.Module] = []
        if expanded_channels != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, expanded_channels,
                                               kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded_channels, expanded_channels,
                                           kernel_size=cnf.kernel, stride=cnf.stride,
                                           groups=expanded_channels, norm_layer=norm_layer,
                                           activation_layer=nn.SiLU))
        squeeze_channels = max(1, cnf.input_channels // 4)
        layers.append(se_layer(expanded_channels, squeeze_channels,
                               activation=partial(nn.SiLU, inplace=True)))
        layers.append(Conv2dNormActivation(expanded_channels, cnf.out_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, input: Tensor) -> Tensor:
        result = self.block(input)
        if self.use_res_connect:
            result = self.stochastic_depth(result) + input
        return result


class EfficientNet(nn.Module):
    """features (stem conv, one Sequential of blocks per MBConvConfig, a 1x1 conv to
    `last_channel`, default 4x the last stage's channels), avgpool, then classifier (Dropout,
    Linear). Takes (N, 3, H, W) images of any size H, W >= 1; the stem and four stages halve
    the size (32x smaller in all). Block i of n (counting over all stages) gets stochastic
    depth `stochastic_depth_prob * i / n`. `norm_layer(channels)` builds each norm layer,
    BatchNorm2d by default. Keyword only: `small_images` (a stride-1 stem, see the module
    docstring) and `in_channels` (1 for greyscale images).
    """

    def __init__(self, inverted_residual_setting: Sequence[MBConvConfig], dropout: float,
                 stochastic_depth_prob: float = 0.2, num_classes: int = 1000,
                 norm_layer: Callable[..., nn.Module] | None = None,
                 last_channel: int | None = None, *, small_images: bool = False,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        if not inverted_residual_setting:
            raise ValueError("EfficientNet: the inverted_residual_setting should not be empty")
        if not (isinstance(inverted_residual_setting, Sequence)
                and all(isinstance(s, MBConvConfig) for s in inverted_residual_setting)):
            raise TypeError(f"EfficientNet: the inverted_residual_setting should be a list of "
                            f"MBConvConfig, got {inverted_residual_setting!r}")
        norm_layer = nn.BatchNorm2d if norm_layer is None else norm_layer

        first = inverted_residual_setting[0].input_channels
        layers: list[nn.Module] = [Conv2dNormActivation(in_channels, first, kernel_size=3,
                                                        stride=1 if small_images else 2,
                                                        norm_layer=norm_layer,
                                                        activation_layer=nn.SiLU)]
        total_blocks = sum(cnf.num_layers for cnf in inverted_residual_setting)
        block_id = 0
        for cnf in inverted_residual_setting:
            stage: list[nn.Module] = []
            for _ in range(cnf.num_layers):
                block_cnf = copy.copy(cnf)  # the stage's config stays as given
                if stage:  # the later blocks of a stage keep the size and the channels
                    block_cnf.input_channels, block_cnf.stride = block_cnf.out_channels, 1
                # deeper blocks are dropped more often: their features are refinements
                sd_prob = stochastic_depth_prob * float(block_id) / total_blocks
                stage.append(block_cnf.block(block_cnf, sd_prob, norm_layer))
                block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = inverted_residual_setting[-1].out_channels
        last_out = last_channel if last_channel is not None else 4 * last_in
        layers.append(Conv2dNormActivation(last_in, last_out, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(last_out, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's: He-normal convs by fan_out (gain sqrt(2)), zero conv biases, norm
        layers starting as the identity, and the Linear layer uniform in +-1/sqrt(out_features)
        with a zero bias. Drawn from `mg.manual_seed`'s generator."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                init.ones_(module.weight)
                init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.out_features)
                init.uniform_(module.weight, -bound, bound)
                init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f"EfficientNet: expected images (N, {self.in_channels}, H, W), got "
                             f"{describe(x)}")
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _efficientnet(width_mult: float, depth_mult: float, dropout: float,
                  **kwargs: object) -> EfficientNet:
    """B0's stages (the paper's Table 1), scaled by width_mult and depth_mult."""
    stage = partial(MBConvConfig, width_mult=width_mult, depth_mult=depth_mult)
    setting = [  # expand_ratio, kernel, stride, input_channels, out_channels, num_layers
        stage(1, 3, 1, 32, 16, 1),
        stage(6, 3, 2, 16, 24, 2),
        stage(6, 5, 2, 24, 40, 2),
        stage(6, 3, 2, 40, 80, 3),
        stage(6, 5, 1, 80, 112, 3),
        stage(6, 5, 2, 112, 192, 4),
        stage(6, 3, 1, 192, 320, 1),
    ]
    return EfficientNet(setting, dropout, **kwargs)


# B5-B7: TensorFlow's BatchNorm settings, as the original weights were trained with
_TF_BATCHNORM = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


def efficientnet_b0(*, dropout: float = 0.2, stochastic_depth_prob: float = 0.2,
                    num_classes: int = 1000,
                    norm_layer: Callable[..., nn.Module] | None = None,
                    small_images: bool = False, in_channels: int = 3) -> EfficientNet:
    """EfficientNet-B0 (width 1.0, depth 1.0; the paper's resolution 224): 5,288,548
    parameters for 1000 classes. `small_images` and `in_channels` (every builder takes them):
    see `EfficientNet`."""
    return _efficientnet(1.0, 1.0, dropout, stochastic_depth_prob=stochastic_depth_prob,
                         num_classes=num_classes, norm_layer=norm_layer,
                         small_images=small_images, in_channels=in_channels)


def efficientnet_b1(*, dropout: float = 0.2, stochastic_depth_prob: float = 0.2,
                    num_classes: int = 1000,
                    norm_layer: Callable[..., nn.Module] | None = None,
                    small_images: bool = False, in_channels: int = 3) -> EfficientNet:
    """EfficientNet-B1 (width 1.0, depth 1.1; resolution 240): 7,794,184 parameters."""
    return _efficientnet(1.0, 1.1, dropout, stochastic_depth_prob=stochastic_depth_prob,
                         num_classes=num_classes, norm_layer=norm_layer,
                         small_images=small_images, in_channels=in_channels)


def efficientnet_b2(*, dropout: float = 0.3, stochastic_depth_prob: float = 0.2,
                    num_classes: int = 1000,
                    norm_layer: Callable[..., nn.Module] | None = None,
                    small_images: bool = False, in_channels: int = 3) -> EfficientNet:
    """EfficientNet-B2 (width 1.1, depth 1.2; resolution 260): 9,109,994 parameters."""
    return _efficientnet(1.1, 1.2, dropout, stochastic_depth_prob=stochastic_depth_prob,
                         num_classes=num_classes, norm_layer=norm_layer,
                         small_images=small_images, in_channels=in_channels)


def efficientnet_b3(*, dropout: float = 0.3, stochastic_depth_prob: float = 0.2,
                    num_classes: int = 1000,
                    norm_layer: Callable[..., nn.Module] | None = None,
                    small_images: bool = False, in_channels: int = 3) -> EfficientNet:
    """EfficientNet-B3 (width 1.2, depth 1.4; resolution 300): 12,233,232 parameters."""
    return _efficientnet(1.2, 1.4, dropout, stochastic_depth_prob=stochastic_depth_prob,
                         num_classes=num_classes, norm_layer=norm_layer,
                         small_images=small_images, in_channels=in_channels)


def efficientnet_b4(*, dropout: float = 0.4, stochastic_depth_prob: float = 0.2,
                    num_classes: int = 1000,
                    norm_layer: Callable[..., nn.Module] | None = None,
                    small_images: bool = False, in_channels: int = 3) -> EfficientNet:
    """EfficientNet-B4 (width 1.4, depth 1.8; resolution 380): 19,341,616 parameters."""
    return _efficientnet(1.4, 1.8, dropout, stochastic_depth_prob=stochastic_depth_prob,
                         num_classes=num_classes, norm_layer=norm_layer,
                         small_images=small_images, in_channels=in_channels)


# B5-B7 fix norm_layer, as torchvision's builders do (passing one is a TypeError there too)
def efficientnet_b5(*, dropout: float = 0.4, stochastic_depth_prob: float = 0.2,
                    num_classes: int = 1000, small_images: bool = False,
                    in_channels: int = 3) -> EfficientNet:
    """EfficientNet-B5 (width 1.6, depth 2.2; resolution 456): 30,389,784 parameters;
    BatchNorm eps=0.001, momentum=0.01."""
    return _efficientnet(1.6, 2.2, dropout, stochastic_depth_prob=stochastic_depth_prob,
                         num_classes=num_classes, norm_layer=_TF_BATCHNORM,
                         small_images=small_images, in_channels=in_channels)


def efficientnet_b6(*, dropout: float = 0.5, stochastic_depth_prob: float = 0.2,
                    num_classes: int = 1000, small_images: bool = False,
                    in_channels: int = 3) -> EfficientNet:
    """EfficientNet-B6 (width 1.8, depth 2.6; resolution 528): 43,040,704 parameters;
    BatchNorm eps=0.001, momentum=0.01."""
    return _efficientnet(1.8, 2.6, dropout, stochastic_depth_prob=stochastic_depth_prob,
                         num_classes=num_classes, norm_layer=_TF_BATCHNORM,
                         small_images=small_images, in_channels=in_channels)


def efficientnet_b7(*, dropout: float = 0.5, stochastic_depth_prob: float = 0.2,
                    num_classes: int = 1000, small_images: bool = False,
                    in_channels: int = 3) -> EfficientNet:
    """EfficientNet-B7 (width 2.0, depth 3.1; resolution 600): 66,347,960 parameters;
    BatchNorm eps=0.001, momentum=0.01."""
    return _efficientnet(2.0, 3.1, dropout, stochastic_depth_prob=stochastic_depth_prob,
                         num_classes=num_classes, norm_layer=_TF_BATCHNORM,
                         small_images=small_images, in_channels=in_channels)
