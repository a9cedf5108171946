"""ResNet-20 for 32x32 images, the CIFAR network of He et al., "Deep Residual Learning for Image
Recognition" (2015), section 4.2, with torchvision's module names.

Depth 6n+2 with n=3: one 3x3 conv, three stages of n BasicBlocks (two 3x3 convs each) at 16, 32
and 64 channels, and the final Linear layer.
"""

from __future__ import annotations

from minigrad import nn
from minigrad.nn import init
from minigrad.tensor import Tensor


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """The 3x3 conv of every block; padding 1 keeps the size, and no bias because the
    BatchNorm right after it would cancel one."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    Where the block changes the shape (stride 2, more channels) the shortcut is `downsample`, a
    1x1 conv with that stride and a BatchNorm, as torchvision's BasicBlock ("option B" of the
    paper). The paper's own CIFAR ResNets use "option A" instead: subsample and zero-pad the
    extra channels, which adds no parameters; the projection is used here so the names and
    weights match torchvision-style PyTorch code. Elsewhere the shortcut is the identity.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """The CIFAR-style ResNet: a 3x3 stem conv to 16 channels, three stages of BasicBlocks
    (16, 32, 64 channels; stages 2 and 3 halve the size in their first block), global
    average pooling and a Linear classifier. `blocks_per_stage` = n gives depth 6n+2.

    Unlike torchvision's ImageNet ResNet there is no 7x7 stem conv, no max pool and no fourth
    stage: 32x32 inputs are small enough already. Any input size the two stride-2 stages
    can halve works (28x28 gives 7x7 before the pooling).
    """

    def __init__(self, blocks_per_stage: int = 3, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = self._stage(16, 16, blocks_per_stage, stride=1)
        self.layer2 = self._stage(16, 32, blocks_per_stage, stride=2)
        self.layer3 = self._stage(32, 64, blocks_per_stage, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        self._init_weights()

    @staticmethod
    def _stage(in_channels: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
        """`blocks` BasicBlocks; only the first changes the stride and channel count."""
        return nn.Sequential(BasicBlock(in_channels, channels, stride),
                             *(BasicBlock(channels, channels) for _ in range(blocks - 1)))

    def _init_weights(self) -> None:
        """torchvision's initialisation: He-normal convs scaled by fan_out (the variance of
        the backward signal stays steady through ReLUs), BatchNorm starting as the identity.
        The Linear layer keeps its default. Drawn from `mg.manual_seed`'s generator."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                init.ones_(module.weight)
                init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


def resnet20(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-20 (n=3): 272,474 parameters for 3 input channels and 10 classes. Use
    `in_channels=1` for grayscale images such as Fashion-MNIST's 1x28x28."""
    return ResNet(3, num_classes, in_channels)
