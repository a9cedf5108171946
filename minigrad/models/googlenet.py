"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions" (2014), the
ILSVRC 2014 winner, with torchvision 0.28.0's module names, arguments and initialisation.

The idea: an Inception module runs 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side by
side on the same input and concatenates their outputs along the channels, so the network picks
its own mix of receptive fields at every stage. Cheap 1x1 convolutions shrink the channels
before the expensive branches, which keeps 22 layers at about 6.6M parameters (AlexNet has
61M). Two auxiliary classifiers on intermediate stages add gradient signal during training.

Where torchvision differs from the paper (and so does this module, to load its weights):
- Every convolution is followed by BatchNorm (eps 0.001) before its ReLU (`BasicConv2d`); the
  paper predates BatchNorm. The convolutions therefore have no bias.
- The "5x5" branch of each Inception block uses a 3x3 kernel: a known torchvision bug
  (pytorch/vision#906) kept because its ImageNet weights, ported from TensorFlow's
  implementation (which has the same 3x3), need it. The arguments still say `ch5x5`.
- No local response normalisation in the stem; the auxiliary heads pool adaptively to 4x4
  (the paper: a 5x5 average pool with stride 3, which gives 4x4 at 224x224), and use
  dropout 0.7 as the paper does; the main classifier's dropout is 0.2 (the paper: 0.4).

The small-image form (`small_images=True`, for 28x28 or 32x32 images) differs in the stem
only: `conv1` is a 3x3 stride-1 conv and `maxpool1` an Identity, so the Inception stages see
a 28x28 image at 14x14, 7x7 and 4x4 (ImageNet's 224x224: 28x28, 14x14, 7x7), a quarter of
their ImageNet cost, instead of the 1x1 that the ImageNet stem's 4x reduction would leave.
With one input channel and 10 classes: 9,951,806 parameters with the auxiliary heads,
5,601,322 without.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.tensor import Tensor

# What a training-mode GoogLeNet with auxiliary heads returns (torchvision's order: the main
# logits, then the head after inception4d, then the one after inception4a).
GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])

# ImageNet's per-channel mean and std, which `transform_input` undoes (see `_transform_input`).
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# The smallest height and width the five stride-2 stages leave at least one pixel of (the
# small-image form has three).
_MIN_SIZE = 15
_MIN_SIZE_SMALL = 4


class BasicConv2d(nn.Module):
    """Conv2d (no bias: the BatchNorm after it would cancel one), BatchNorm2d with eps 0.001
    (TensorFlow's default: torchvision's weights for this model were ported, not trained in
    PyTorch), then ReLU. `kwargs` go to Conv2d (kernel_size, stride, padding)."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches on the same input, concatenated along the channels:
    branch1 a 1x1 conv to `ch1x1`; branch2 a 1x1 conv to `ch3x3red` then a 3x3 conv to `ch3x3`;
    branch3 a 1x1 conv to `ch5x5red` then (torchvision's quirk, see the module docstring) a 3x3
    conv to `ch5x5`; branch4 a 3x3 max pool (stride 1) then a 1x1 conv to `pool_proj`. Every
    branch keeps the height and width, so the output has ch1x1 + ch3x3 + ch5x5 + pool_proj
    channels."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int,
                 conv_block: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        conv = BasicConv2d if conv_block is None else conv_block
        self.branch1 = conv(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            conv(in_channels, ch3x3red, kernel_size=1),
            conv(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            conv(in_channels, ch5x5red, kernel_size=1),
            conv(ch5x5red, ch5x5, kernel_size=3, padding=1),  # the paper's 5x5; see above
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            conv(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return mg.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """An auxiliary classifier: average-pool to 4x4, a 1x1 conv to 128 channels, then
    Linear(2048, 1024), ReLU, dropout and Linear(1024, num_classes). Only used in training:
    its loss (weighted 0.3 in the paper) pushes gradient into the middle of the network."""

    def __init__(self, in_channels: int, num_classes: int,
                 conv_block: Callable[..., nn.Module] | None = None,
                 dropout: float = 0.7) -> None:
        super().__init__()
        conv = BasicConv2d if conv_block is None else conv_block
        self.conv = conv(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4))).flatten(1)  # N x 2048
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """GoogLeNet for 3-channel images of at least 15x15 (224x224 on ImageNet).

    Stem: conv 7x7/2 to 64, max pool 3x3/2, conv 1x1 to 64, conv 3x3 to 192, max pool 3x3/2;
    then Inception blocks 3a-3b, max pool, 4a-4e, max pool 2x2/2, 5a-5b (832 -> 1024
    channels); global average pooling, dropout and a Linear classifier. Every max pool uses
    `ceil_mode=True`, so odd sizes round up (224 -> 112 -> 56 -> 28 -> 14 -> 7).

    `aux_logits` adds the two auxiliary heads `aux1` (after inception4a) and `aux2` (after
    inception4d); in training mode the model then returns `GoogLeNetOutputs(logits,
    aux_logits2, aux_logits1)`, otherwise (eval mode, or no heads) the logits alone.
    torchvision trains with loss(logits) + 0.3 * (loss(aux_logits1) + loss(aux_logits2)).
    `transform_input` takes input normalised with ImageNet's mean and std and converts it to
    the (x - 0.5) / 0.5 normalisation the original weights expect. `blocks` replaces
    [BasicConv2d, Inception, InceptionAux] (the conv block is used by the stem only, as in
    torchvision). `init_weights` None or True: torchvision's initialisation (see
    `_init_weights`); False keeps each layer's default.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True,
                 transform_input: bool = False, init_weights: bool | None = None,
                 blocks: Sequence[Callable[..., nn.Module]] | None = None,
                 dropout: float = 0.2, dropout_aux: float = 0.7, *,
                 small_images: bool = False, in_channels: int = 3) -> None:
        super().__init__()
        if blocks is None:
            blocks = [BasicConv2d, Inception, InceptionAux]
        if len(blocks) != 3:
            raise ValueError("GoogLeNet: blocks must be [conv_block, inception_block, "
                             f"inception_aux_block], 3 callables, got {len(blocks)}")
        conv_block, inception_block, inception_aux_block = blocks
        if transform_input and in_channels != 3:
            raise ValueError(f"GoogLeNet: transform_input converts ImageNet's 3-channel "
                             f"normalisation, got in_channels={in_channels}")
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.in_channels = in_channels
        self.min_size = _MIN_SIZE_SMALL if small_images else _MIN_SIZE

        if small_images:  # see the module docstring
            self.conv1 = conv_block(in_channels, 64, kernel_size=3, padding=1)
            self.maxpool1 = nn.Identity()
        else:
            self.conv1 = conv_block(in_channels, 64, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = conv_block(64, 64, kernel_size=1)
        self.conv3 = conv_block(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        # (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj): the paper's table 1.
        self.inception3a = inception_block(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = inception_block(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = inception_block(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = inception_block(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = inception_block(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = inception_block(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = inception_block(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = inception_block(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = inception_block(832, 384, 192, 384, 48, 128, 128)

        self.aux1: nn.Module | None = None
        self.aux2: nn.Module | None = None
        if aux_logits:
            self.aux1 = inception_aux_block(512, num_classes, dropout=dropout_aux)
            self.aux2 = inception_aux_block(528, num_classes, dropout=dropout_aux)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        # torchvision's None warns that its default may change one day and then means True;
        # here None simply means True: a fresh GoogLeNet trains from torchvision's init.
        if init_weights is None or init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's: every conv and Linear weight from N(0, 0.01^2) truncated to [-2, 2]
        (so in effect untruncated: the bounds are 200 stds out), BatchNorm as the identity.
        Linear biases keep their default uniform draw. From `mg.manual_seed`'s generator."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2.0, b=2.0)
            elif isinstance(module, nn.BatchNorm2d):
                init.ones_(module.weight)
                init.zeros_(module.bias)

    def _transform_input(self, x: Tensor) -> Tensor:
        """x * std + mean undoes ImageNet's normalisation; (. - 0.5) / 0.5 applies the
        original weights'. Per channel c: x * (std_c / 0.5) + (mean_c - 0.5) / 0.5."""
        channels = [x[:, c:c + 1] * (std / 0.5) + (mean - 0.5) / 0.5
                    for c, (mean, std) in enumerate(zip(_IMAGENET_MEAN, _IMAGENET_STD))]
        return mg.cat(channels, 1)

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        if x.ndim != 4 or x.shape[1] != self.in_channels or min(x.shape[2:]) < self.min_size:
            raise ValueError(f"GoogLeNet: expected input of shape (N, {self.in_channels}, H, W) "
                             f"with H and W at least {self.min_size}, got {tuple(x.shape)}")
        if self.transform_input:
            x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))  # N x 64 x H/4 x W/4 (224 -> 56; small: H x W)
        x = self.maxpool2(self.conv3(self.conv2(x)))  # N x 192 x 28 x 28
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # N x 480 x 14 x 14
        x = self.inception4a(x)  # N x 512 x 14 x 14
        # The heads run in training whenever they exist (as torchvision's: their BatchNorm
        # statistics move even if `aux_logits` was switched off later); eval skips them.
        aux1 = self.aux1(x) if self.training and self.aux1 is not None else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # N x 528 x 14 x 14
        aux2 = self.aux2(x) if self.training and self.aux2 is not None else None
        x = self.maxpool4(self.inception4e(x))  # N x 832 x 7 x 7
        x = self.inception5b(self.inception5a(x))  # N x 1024 x 7 x 7
        logits = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(logits, aux2, aux1)
        return logits


def googlenet(**kwargs: Any) -> GoogLeNet:
    """GoogLeNet (Inception v1) as torchvision's `googlenet()` without weights; `kwargs` go to
    `GoogLeNet` (num_classes=1000, aux_logits=True, transform_input=False, init_weights=None,
    blocks=None, dropout=0.2, dropout_aux=0.7, small_images=False, in_channels=3).
    13,004,888 parameters with the auxiliary
    heads, 6,624,904 with `aux_logits=False` (the count torchvision publishes: its pretrained
    model drops the heads)."""
    return GoogLeNet(**kwargs)
