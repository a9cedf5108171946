"""Ready-made models with PyTorch's layer names, so a PyTorch checkpoint of the same
architecture loads with `load_state_dict` and gives the same outputs."""

from minigrad.models.lenet import LeNet5, lenet5
from minigrad.models.resnet import BasicBlock, ResNet, resnet20
from minigrad.models.simple_cnn import SimpleCNN

__all__ = ["BasicBlock", "LeNet5", "ResNet", "SimpleCNN", "lenet5", "resnet20"]
