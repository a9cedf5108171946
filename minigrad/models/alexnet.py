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

The small-image form (`small_images=True`, for 28x28 or 32x32 images such as Fashion-MNIST's)
differs in two layers only: the first conv is 5x5 stride 1 (an 11x11 stride-4 one would leave
a 28x28 image 7x7 before the first pool), and the average pool goes to 2x2, the size the three
max pools leave of a 28x28 image (28 -> 13 -> 6 -> 2), so the first Linear layer takes
256 x 2 x 2 features. With one input channel and 10 classes: 23,468,746 parameters, 21M of
them in the classifier.
"""

from __future__ import annotations

from typing import Any

from minigrad import nn
from minigrad.tensor import Tensor

# The smallest input side: the 11x11 stride-4 conv (padding 2) and three 3x3 stride-2 max pools
# take 63 -> 15 -> 7 -> 3 -> 1; 62 leaves 2x2 for the last max pool, which needs 3x3. The
# small-image form's 5x5 stride-1 conv keeps the side: 15 -> 7 -> 3 -> 1.
_MIN_SIZE = 63
_MIN_SIZE_SMALL = 15


class AlexNet(nn.Module):
    """`features` (five convs, three max pools), `avgpool` to 6x6, and the three-layer
    `classifier` with dropout before the first two Linear layers; for (N, 3, H, W) images,
    H and W at least 63. See the module docstring for how it differs from the 2012 paper.

    Keyword only: `small_images` (the small-image form of the module docstring, for H and W
    of at least 15) and `in_channels` (1 for greyscale images)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, *,
                 small_images: bool = False, in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.min_size = _MIN_SIZE_SMALL if small_images else _MIN_SIZE
        pooled = 2 if small_images else 6
        # inplace=True only for the repr (torchvision's flag); minigrad's ReLU computes out of
        # place either way.
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=5, padding=2) if small_images
            else nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
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
        # 224x224 images are 6x6 here already (28x28 ones 2x2 in the small form); other sizes
        # are averaged (or repeated) to that, so the classifier's shapes do not depend on the
        # input's.
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * pooled * pooled, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape)
        if len(shape) != 4 or shape[1] != self.in_channels or min(shape[2:]) < self.min_size:
            raise ValueError(f"AlexNet: expected an input (N, {self.in_channels}, H, W) with H "
                             f"and W at least {self.min_size}, got {shape}")
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def alexnet(**kwargs: Any) -> AlexNet:
    """AlexNet as torchvision's `alexnet()` (the "one weird trick" variant, see the module
    docstring): 61,100,840 parameters. Keyword arguments go to `AlexNet`: num_classes=1000,
    dropout=0.5, small_images=False, in_channels=3."""
    return AlexNet(**kwargs)
