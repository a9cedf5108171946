"""The small two-convolution network of the CNN article, for 1x28x28 images (MNIST-like)."""

from __future__ import annotations

from minigrad import nn
from minigrad.tensor import Tensor


class SimpleCNN(nn.Module):
    """Two conv + ReLU + 2x2 max-pool stages, then a two-layer classifier with dropout.

    Shapes per sample: 1x28x28 -> 32x26x26 -> 32x13x13 -> 64x11x11 -> 64x5x5 -> 1600 -> 128
    -> num_classes. 225,034 parameters for 10 classes. The attribute names (`features`,
    `classifier`) are the article's, so its PyTorch state dict loads unchanged.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
