"""Ready-made models with PyTorch's layer names, so a PyTorch checkpoint of the same
architecture loads with `load_state_dict` and gives the same outputs."""

from minigrad.models.alexnet import AlexNet, alexnet
from minigrad.models.efficientnet import (
    EfficientNet,
    MBConv,
    MBConvConfig,
    efficientnet_b0,
    efficientnet_b1,
    efficientnet_b2,
    efficientnet_b3,
    efficientnet_b4,
    efficientnet_b5,
    efficientnet_b6,
    efficientnet_b7,
)
from minigrad.models.googlenet import (
    BasicConv2d,
    GoogLeNet,
    GoogLeNetOutputs,
    Inception,
    InceptionAux,
    googlenet,
)
from minigrad.models.imagenet import imagenet_classes
from minigrad.models.lenet import LeNet5, lenet5
from minigrad.models.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet18,
    resnet20,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x8d,
    resnext101_64x4d,
    wide_resnet50_2,
    wide_resnet101_2,
)
from minigrad.models.simple_cnn import SimpleCNN
from minigrad.models.vgg import (
    VGG,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
from minigrad.models.vision_transformer import (
    ConvStemConfig,
    Encoder,
    EncoderBlock,
    MLPBlock,
    VisionTransformer,
    vit_b_16,
    vit_b_32,
    vit_h_14,
    vit_l_16,
    vit_l_32,
    vit_small_images,
)

__all__ = [
    "AlexNet", "BasicBlock", "BasicConv2d", "Bottleneck", "ConvStemConfig", "EfficientNet",
    "Encoder", "EncoderBlock", "GoogLeNet", "GoogLeNetOutputs", "Inception", "InceptionAux",
    "LeNet5", "MBConv", "MBConvConfig", "MLPBlock", "ResNet", "SimpleCNN", "VGG",
    "VisionTransformer", "alexnet", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "googlenet", "imagenet_classes", "lenet5", "resnet101", "resnet152", "resnet18", "resnet20",
    "resnet34", "resnet50", "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d", "vgg11",
    "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "vit_b_16",
    "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32", "vit_small_images", "wide_resnet101_2",
    "wide_resnet50_2",
]
