"""AlexNet: Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks" (2012), as torchvision 0.28.0's `alexnet.py`.

The network that won ImageNet 2012 by a wide margin and started the deep-learning era in vision:
five convolutions (a large 11x11 stride-4 one first, to shrink 224x224 images quickly), three
overlapping 3x3 stride-2 max pools, then three fully connected layers with dropout. ReLUs
instead of tanh made it trainable in days on two GPUs; dropout kept its 61M parameters from
overfitting.

torchvision's AlexNet is the variant of Krizhevsky's "One weird trick for parallelizing
convolutional neural networks" (2014), for one GPU, not the 2012 paper's:
- 64, 192, 384, 256, 256 conv channels (the paper's: 96, 256, 384, 384, 256), every conv
  sees all channels of the layer below (the paper split most layers in two halves, one per
  GPU, and the 2nd, 4th and 5th convs only saw their own GPU's half);
- no LocalResponseNorm after the first two convs (the paper had it; later work found it
  barely helps);
- padding 2 on the first conv and an AdaptiveAvgPool2d to 6x6 before the classifier, so any
  input of at least 63x63 works (the paper's 224x224, really 227x227, gives 6x6 by itself);
- dropout on the inputs of the first two Linear layers (the paper's: on their outputs);
- the layers' default initialisation (the paper: N(0, 0.01^2) weights, biases 1 in some
  layers, 0 in others).
That gives 61,100,840 parameters with 1000 classes (the paper's network had about 60M).
"""

from __future__ import annotations

from typing import Any

from minigrad import nn
from minigrad.tensor import Tensor

# The smallest input side: the 11x11 stride-4 conv (padding 2) and three 3x3 stride-2 max pools
# take 63 -> 15 -> 7 -> 3 -> 1; 62 leaves 2x2 for the last max pool, which needs 3x3.
_MIN_SIZE = 63


class AlexNet(nn.Module):
    """`features` (five convs, three max pools), `avgpool` to 6x6, and the three-layer
    `classifier` with dropout before the first two Linear layers; for (N, 3, H, W) images,
    H and W at least 63. See the module docstring for how it differs from the 2012 paper."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        # inplace=True only for the repr (torchvision's flag); minigrad's ReLU computes out of
        # place either way.
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # overlapping: windows 3 apart by 2
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        # 224x224 images are 6x6 here already; other sizes are averaged (or repeated) to 6x6,
        # so the classifier's shapes do not depend on the input's.
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape)
        if len(shape) != 4 or shape[1] != 3 or min(shape[2:]) < _MIN_SIZE:
            raise ValueError(f"AlexNet: expected an input (N, 3, H, W) with H and W at least "
                             f"{_MIN_SIZE}, got {shape}")
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def alexnet(**kwargs: Any) -> AlexNet:
    """AlexNet as torchvision's `alexnet()` (the "one weird trick" variant, see the module
    docstring): 61,100,840 parameters. Keyword arguments go to `AlexNet`: num_classes=1000,
    dropout=0.5."""
    return AlexNet(**kwargs)
