"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998), the first landmark of the CNN article."""

from __future__ import annotations

from minigrad import nn
from minigrad.tensor import Tensor


class LeNet5(nn.Module):
    """C1 6@5x5, S2, C3 16@5x5, S4, C5 120@5x5, F6 84, then the output layer.

    The paper's input is 32x32: MNIST's 28x28 digits padded by 2, which C1's `padding=2` does
    here, so the model takes 28x28 images. Shapes per sample: 1x28x28 -> 6x28x28 -> 6x14x14
    -> 16x10x10 -> 16x5x5 -> 120x1x1 -> 84 -> num_classes: 61,706 parameters for 10 classes.

    Modernised, as most re-implementations are: the subsampling layers S2 and S4 are plain 2x2
    average pools (the paper's had a trainable coefficient and bias per map and a squashing
    function), the activations are tanh (the paper's 1.7159 tanh(2x/3)), C3 connects every
    S2 map to every C3 map (the paper's table connects each C3 map to 3, 4 or 6 of them, to
    break symmetry and save weights), and the output layer is a Linear layer whose logits go
    to cross-entropy, not the paper's Euclidean RBF units against fixed 7x12 bitmaps.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),  # C1, S2
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),  # C3, S4
            nn.Conv2d(16, 120, 5), nn.Tanh(),  # C5: 5x5 maps in, one value out per unit
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(120, 84), nn.Tanh(),  # F6
            nn.Linear(84, num_classes),  # the output layer
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 for (in_channels)x28x28 images; see `LeNet5`."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels)
