"""ResNet: He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition" (2015), as
torchvision 0.28.0 builds it, with its relatives ResNeXt and Wide ResNet, and the small CIFAR
ResNet-20 of the same paper.

A residual block learns a correction F(x) and outputs relu(x + F(x)): the identity path lets
the signal and its gradient pass through a hundred layers unchanged, so networks that deep
train as easily as shallow ones. ResNet-18/34 stack BasicBlocks (two 3x3 convs); ResNet-50/101/
152 stack Bottlenecks (a 1x1 conv narrows the channels by 4, a 3x3 conv works there, a 1x1 conv
widens them again), which are cheaper per layer.

ResNeXt (Xie et al., "Aggregated Residual Transformations for Deep Neural Networks", 2017)
splits the Bottleneck's 3x3 conv into `groups` parallel paths (its "cardinality"); Wide ResNet
(Zagoruyko and Komodakis, "Wide Residual Networks", 2016, its ImageNet WRN-50-2) doubles the
Bottleneck's inner width. Both are this ResNet class with `groups` and `width_per_group`.

Where torchvision differs from the paper: its Bottleneck puts the stride 2 of a downsampling
block on the 3x3 conv, not on the first 1x1 conv as the paper's (v1) does: "ResNet v1.5",
slightly more accurate and a little more costly. Shortcuts are the identity, except where a
block changes the shape: a 1x1 conv with the block's stride and a BatchNorm (the paper's
"option B"). `zero_init_residual=True` starts each block's last BatchNorm at weight 0, so every
block starts as the identity (Goyal et al., "Accurate, Large Minibatch SGD", 2017).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from minigrad import nn
from minigrad.nn import init
from minigrad.tensor import Tensor

IMAGENET_WIDTHS = (64, 128, 256, 512)
NormLayer = Callable[[int], nn.Module]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1,
            dilation: int = 1) -> nn.Conv2d:
    """The 3x3 conv of the blocks. Padding = dilation keeps the size at stride 1; no bias
    because the BatchNorm right after it would cancel one."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """A 1x1 conv: changes the channel count (and, strided, subsamples)."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): two 3x3 convs, of ResNet-18/34
    and ResNet-20. `stride` 2 on conv1 halves the size; `downsample` (the shortcut where the
    shape changes, else None for the identity) must then do the same."""

    expansion = 1  # output channels = planes * expansion

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64,
                 dilation: int = 1, norm_layer: NormLayer | None = None) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock only supports groups=1 and base_width=64, got "
                             f"groups={groups}, base_width={base_width} (use Bottleneck)")
        if dilation > 1:
            raise NotImplementedError(f"Dilation > 1 not supported in BasicBlock, got "
                                      f"dilation={dilation}")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)): a 1x1 conv to
    `width` channels, a 3x3 conv there (in `groups` groups for ResNeXt), a 1x1 conv out to
    4 * planes. width = planes * base_width / 64 * groups: planes for ResNet-50, twice that
    for Wide ResNet-50-2, 32 groups of 4 per 64 planes for ResNeXt-50 32x4d.

    The stride sits on the 3x3 conv (conv2): torchvision's ResNet v1.5. The paper's v1 puts it
    on conv1, whose 1x1 kernel then simply drops three pixels in four."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64,
                 dilation: int = 1, norm_layer: NormLayer | None = None) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """A stem, stages `layer1`, `layer2`, ... of `layers[i]` blocks each, global average
    pooling and a Linear classifier; torchvision's arguments, then three of minigrad's.

    The ImageNet stem is a 7x7 stride-2 conv to 64 channels and a 3x3 stride-2 max pool (a
    224x224 image is 56x56 when layer1 starts); every stage after the first halves the size in
    its first block, so 224x224 ends at 7x7 before the pooling. Any input of at least 1x1
    works (the pooling is adaptive).

    - `groups`, `width_per_group`: the Bottleneck's 3x3 conv in `groups` groups of
      `width_per_group` channels per 64 planes (ResNeXt, Wide ResNet); BasicBlock allows only
      1 and 64.
    - `replace_stride_with_dilation`: one flag per stage after the first; True keeps that
      stage at its input's size and dilates its 3x3 convs instead (and those of the stages
      after it), for dense prediction (segmentation). Bottleneck only.
    - `norm_layer(channels)`: the normalisation after each conv, BatchNorm2d by default.
    - `widths` (keyword only): the stages' `planes`; the stem has widths[0] channels, and
      len(widths) stages must match len(layers). (16, 32, 64) is the paper's CIFAR network.
    - `small_images` (keyword only): the CIFAR stem, a 3x3 stride-1 conv and no max pool
      (`maxpool` is an Identity), for 32x32 images that the ImageNet stem would shrink to 8x8.
    - `in_channels` (keyword only): 1 for grayscale images.
    """

    def __init__(self, block: Block, layers: Sequence[int], num_classes: int = 1000,
                 zero_init_residual: bool = False, groups: int = 1, width_per_group: int = 64,
                 replace_stride_with_dilation: Sequence[bool] | None = None,
                 norm_layer: NormLayer | None = None, *,
                 widths: Sequence[int] = IMAGENET_WIDTHS, small_images: bool = False,
                 in_channels: int = 3) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if len(layers) != len(widths):
            raise ValueError(f"ResNet: layers {list(layers)} and widths {list(widths)} must "
                             f"have one entry per stage, got {len(layers)} and {len(widths)}")
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False] * (len(widths) - 1)
        if len(replace_stride_with_dilation) != len(widths) - 1:
            raise ValueError(f"ResNet: replace_stride_with_dilation should be None or a "
                             f"{len(widths) - 1}-element tuple (one per stage after the first),"
                             f" got {replace_stride_with_dilation}")
        self.in_channels = in_channels
        self.groups, self.base_width = groups, width_per_group
        stem = widths[0]
        if small_images:
            self.conv1 = nn.Conv2d(in_channels, stem, 3, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_images else nn.MaxPool2d(3, stride=2, padding=1)

        self._stages = [f"layer{index + 1}" for index in range(len(layers))]
        inplanes, dilation = stem, 1
        dilate = [False, *replace_stride_with_dilation]
        for index, (planes, blocks) in enumerate(zip(widths, layers, strict=True)):
            stride = 1 if index == 0 else 2
            previous_dilation = dilation  # the first block still sees the undilated input
            if dilate[index]:
                dilation, stride = dilation * stride, 1
            stage = self._stage(block, inplanes, planes, blocks, stride, previous_dilation,
                                dilation, norm_layer)
            setattr(self, self._stages[index], stage)
            inplanes = planes * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)
        self._init_weights(zero_init_residual)

    def _stage(self, block: Block, inplanes: int, planes: int, blocks: int, stride: int,
               first_dilation: int, dilation: int, norm_layer: NormLayer) -> nn.Sequential:
        """`blocks` blocks; only the first changes the stride and channel count, so only it
        may need a projection shortcut."""
        downsample = None
        if stride != 1 or inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(inplanes, planes * block.expansion, stride),
                                       norm_layer(planes * block.expansion))
        first = block(inplanes, planes, stride, downsample, self.groups, self.base_width,
                      first_dilation, norm_layer)
        rest = (block(planes * block.expansion, planes, groups=self.groups,
                      base_width=self.base_width, dilation=dilation, norm_layer=norm_layer)
                for _ in range(1, blocks))
        return nn.Sequential(first, *rest)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """torchvision's initialisation: He-normal convs scaled by fan_out (the variance of
        the backward signal stays steady through ReLUs), normalisation starting as the
        identity, the Linear layer's default. Drawn from `mg.manual_seed`'s generator."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                init.ones_(module.weight)
                init.zeros_(module.bias)
        if zero_init_residual:  # each residual branch starts at 0: each block the identity
            for module in self.modules():
                if isinstance(module, Bottleneck) and module.bn3.weight is not None:
                    init.zeros_(module.bn3.weight)
                elif isinstance(module, BasicBlock) and module.bn2.weight is not None:
                    init.zeros_(module.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got {x.shape}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self._stages:
            x = getattr(self, name)(x)
        return self.fc(self.avgpool(x).flatten(1))


def _resnet(name: str, block: Block, layers: list[int], kwargs: dict[str, Any],
            **fixed: Any) -> ResNet:
    """ResNet(block, layers, **kwargs); `fixed`: the arguments that define the variant, which
    the caller may repeat but not change."""
    for key, value in fixed.items():
        if kwargs.setdefault(key, value) != value:
            raise ValueError(f"{name}: {key}={value} defines this architecture, got "
                             f"{key}={kwargs[key]}")
    return ResNet(block, layers, **kwargs)


def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18: BasicBlocks [2, 2, 2, 2], 11,689,512 parameters. Keyword arguments go to
    `ResNet` (num_classes, zero_init_residual, norm_layer, small_images, in_channels...)."""
    return _resnet("resnet18", BasicBlock, [2, 2, 2, 2], kwargs)


def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34: BasicBlocks [3, 4, 6, 3], 21,797,672 parameters."""
    return _resnet("resnet34", BasicBlock, [3, 4, 6, 3], kwargs)


def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 (v1.5, see `Bottleneck`): Bottlenecks [3, 4, 6, 3], 25,557,032 parameters."""
    return _resnet("resnet50", Bottleneck, [3, 4, 6, 3], kwargs)


def resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101 (v1.5): Bottlenecks [3, 4, 23, 3], 44,549,160 parameters."""
    return _resnet("resnet101", Bottleneck, [3, 4, 23, 3], kwargs)


def resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152 (v1.5): Bottlenecks [3, 8, 36, 3], 60,192,808 parameters."""
    return _resnet("resnet152", Bottleneck, [3, 8, 36, 3], kwargs)


def resnext50_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-50 32x4d: ResNet-50 whose 3x3 convs have 32 groups of 4 channels per 64
    planes, 25,028,904 parameters."""
    return _resnet("resnext50_32x4d", Bottleneck, [3, 4, 6, 3], kwargs,
                   groups=32, width_per_group=4)


def resnext101_32x8d(**kwargs: Any) -> ResNet:
    """ResNeXt-101 32x8d: 88,791,336 parameters."""
    return _resnet("resnext101_32x8d", Bottleneck, [3, 4, 23, 3], kwargs,
                   groups=32, width_per_group=8)


def resnext101_64x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-101 64x4d: 83,455,272 parameters."""
    return _resnet("resnext101_64x4d", Bottleneck, [3, 4, 23, 3], kwargs,
                   groups=64, width_per_group=4)


def wide_resnet50_2(**kwargs: Any) -> ResNet:
    """Wide ResNet-50-2: ResNet-50 with Bottlenecks twice as wide inside (the outer widths
    stay), 68,883,240 parameters."""
    return _resnet("wide_resnet50_2", Bottleneck, [3, 4, 6, 3], kwargs,
                   width_per_group=128)


def wide_resnet101_2(**kwargs: Any) -> ResNet:
    """Wide ResNet-101-2: 126,886,696 parameters."""
    return _resnet("wide_resnet101_2", Bottleneck, [3, 4, 23, 3], kwargs,
                   width_per_group=128)


def resnet20(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-20, the paper's CIFAR network (section 4.2): the small-image stem (3x3 conv, no
    max pool), then 3 stages of 3 BasicBlocks at 16, 32 and 64 channels: depth 6n+2 with n=3,
    272,474 parameters for 3 input channels and 10 classes. Use `in_channels=1` for grayscale
    images such as Fashion-MNIST's 1x28x28; any size the two stride-2 stages can halve works.

    The paper's CIFAR shortcuts where the shape changes are "option A" (subsample and zero-pad
    the extra channels, no parameters); here they are option B's 1x1 projections, as in
    torchvision-style PyTorch code, so the names and weights match those."""
    return ResNet(BasicBlock, [3, 3, 3], num_classes, widths=(16, 32, 64), small_images=True,
                  in_channels=in_channels)
