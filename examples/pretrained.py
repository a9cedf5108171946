"""Classify a photo with torchvision's published ImageNet weights, run by minigrad (no PyTorch).

    python examples/pretrained.py resnet50-0676ba61.pth cat.jpg [--model resnet50] [--top 5]
    python examples/pretrained.py --list        # the weight files this script knows, with URLs

prints the model's five most probable ImageNet classes for the image and their probabilities,
in this form:

    resnet50 from resnet50-0676ba61.pth; cat.jpg resized to 256 (bilinear), centre crop 224
     1. <class name>                     xx.xx%
     ...
     5. <class name>                     xx.xx%

The weights are torchvision's own files. Fetch one beforehand, with any tool, from the address
torchvision downloads it from, https://download.pytorch.org/models/<file name>, e.g.

    curl -LO https://download.pytorch.org/models/resnet50-0676ba61.pth

(`--list` prints every known file's address; nothing is downloaded when the script runs).
`mg.load` reads the file without PyTorch and without running pickled code
(minigrad/torch_format.py), and the model of the same name in `minigrad.models` takes the
state dict unchanged: same keys, same shapes, same logits as torchvision's model.

The architecture comes from the file name (torchvision's names start with it:
alexnet-owt-7be5be79.pth is alexnet, vit_b_16-c867db91.pth is vit_b_16); `--model` overrides
it, for renamed files. The image is prepared as torchvision's `weights.transforms()` does for
that file: Pillow resizes the shorter side to `resize` pixels (bilinear; bicubic for the
rwightman/lukemelas EfficientNets and the SWAG ViTs), a `crop` x `crop` square is cut from the
centre, the pixels are scaled to [0, 1] and normalised with ImageNet's channel mean and
standard deviation. Most files use 256 then 224; the `WEIGHTS` table below holds each file's
sizes. A file name not in the table gets the sizes of its architecture's first
(IMAGENET1K_V1) weights. Pillow reads the image (it comes with matplotlib, the demo extra).

On the CPU a ResNet-50 takes seconds; VGG and ViT-L need a few GB of memory and more patience.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import models

URL = "https://download.pytorch.org/models/"
# ImageNet's per-channel (R, G, B) mean and standard deviation of pixels in [0, 1]: every
# torchvision classifier was trained on images normalised with them.
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class Weights(NamedTuple):
    """One published weight file: its model and the image preparation it was trained with."""

    model: str
    resize: int  # the image's shorter side is resized to this many pixels
    crop: int  # then the centre crop x crop square is the model's input
    interpolation: str = "bilinear"


def _weights(model: str, resize: int = 256, crop: int = 224,
             interpolation: str = "bilinear") -> Weights:
    return Weights(model, resize, crop, interpolation)


# torchvision 0.28's ImageNet-1k classification weights, file name -> model and preparation
# (`weights.transforms()`). Each model's IMAGENET1K_V1 file comes first: a file name not
# listed here gets that row's preparation. V2 files were trained longer with a newer recipe and
# are evaluated at a different resize; SWAG ViTs were pre-trained on Instagram images, "E2E"
# fine-tuned at a larger size (the model is built for it), "lc" only a new linear head.
WEIGHTS: dict[str, Weights] = {
    "alexnet-owt-7be5be79.pth": _weights("alexnet"),
    **{file: _weights(file.split("-")[0]) for file in [
        "vgg11-8a719046.pth", "vgg11_bn-6002323d.pth", "vgg13-19584684.pth",
        "vgg13_bn-abd245e5.pth", "vgg16-397923af.pth", "vgg16_bn-6c64b313.pth",
        "vgg19-dcbb9e9d.pth", "vgg19_bn-c79401a0.pth", "googlenet-1378be20.pth",
        "resnet18-f37072fd.pth", "resnet34-b627a593.pth", "resnet50-0676ba61.pth",
        "resnet101-63fe2227.pth", "resnet152-394f9c45.pth", "resnext50_32x4d-7cdf4587.pth",
        "resnext101_32x8d-8ba56ff5.pth", "wide_resnet50_2-95faca4d.pth",
        "wide_resnet101_2-32ee1156.pth"]},
    **{file: _weights(file.split("-")[0], resize=232) for file in [
        "resnet50-11ad3fa6.pth", "resnet101-cd907fc2.pth", "resnet152-f82ba261.pth",
        "resnext50_32x4d-1a0047aa.pth", "resnext101_32x8d-110c445d.pth",
        "resnext101_64x4d-173b62eb.pth", "wide_resnet50_2-9ba9bcbe.pth",
        "wide_resnet101_2-d733dc28.pth"]},
    "efficientnet_b0_rwightman-7f5810bc.pth": _weights("efficientnet_b0", 256, 224, "bicubic"),
    "efficientnet_b1_rwightman-bac287d4.pth": _weights("efficientnet_b1", 256, 240, "bicubic"),
    "efficientnet_b1-c27df63c.pth": _weights("efficientnet_b1", 255, 240),
    "efficientnet_b2_rwightman-c35c1473.pth": _weights("efficientnet_b2", 288, 288, "bicubic"),
    "efficientnet_b3_rwightman-b3899882.pth": _weights("efficientnet_b3", 320, 300, "bicubic"),
    "efficientnet_b4_rwightman-23ab8bcd.pth": _weights("efficientnet_b4", 384, 380, "bicubic"),
    "efficientnet_b5_lukemelas-1a07897c.pth": _weights("efficientnet_b5", 456, 456, "bicubic"),
    "efficientnet_b6_lukemelas-24a108a5.pth": _weights("efficientnet_b6", 528, 528, "bicubic"),
    "efficientnet_b7_lukemelas-c5b4e57e.pth": _weights("efficientnet_b7", 600, 600, "bicubic"),
    "vit_b_16-c867db91.pth": _weights("vit_b_16"),
    "vit_b_16_swag-9ac1b537.pth": _weights("vit_b_16", 384, 384, "bicubic"),
    "vit_b_16_lc_swag-4e70ced5.pth": _weights("vit_b_16", 224, 224, "bicubic"),
    "vit_b_32-d86f8d99.pth": _weights("vit_b_32"),
    "vit_l_16-852ce7e3.pth": _weights("vit_l_16", 242, 224),
    "vit_l_16_swag-4f3808c9.pth": _weights("vit_l_16", 512, 512, "bicubic"),
    "vit_l_16_lc_swag-4d563306.pth": _weights("vit_l_16", 224, 224, "bicubic"),
    "vit_l_32-c7638314.pth": _weights("vit_l_32"),
    "vit_h_14_swag-80465313.pth": _weights("vit_h_14", 518, 518, "bicubic"),
    "vit_h_14_lc_swag-c1eb923e.pth": _weights("vit_h_14", 224, 224, "bicubic"),
}
# How a file torch.save wrote before PyTorch 1.6 starts (a pickled magic number), not a zip.
LEGACY_TORCH_FILE = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
# A published file that is not an ImageNet classifier: its classifier layers hold NaNs.
NOT_CLASSIFIERS = {"vgg16_features-amdegroot-88682ab5.pth":
                   "VGG-16 features for SSD detection; its classifier layers are not trained"}


def default_weights(model: str) -> Weights:
    """The preparation of `model`'s first (IMAGENET1K_V1) file in WEIGHTS."""
    for weights in WEIGHTS.values():
        if weights.model == model:
            return weights
    known = sorted({w.model for w in WEIGHTS.values()})
    raise ValueError(f"no ImageNet weights are known for {model!r}; known models: "
                     + ", ".join(known))


def architecture(file_name: str) -> str:
    """The model a torchvision weight file is for: its name starts with the model's name
    (resnet50-0676ba61.pth, vgg16_bn-6c64b313.pth, efficientnet_b0_rwightman-7f5810bc.pth).
    The longest model name that matches wins (vgg16_bn, not vgg16)."""
    stem = file_name.split("-")[0]
    matches = [w.model for w in WEIGHTS.values()
               if stem == w.model or stem.startswith(w.model + "_")]
    if not matches:
        raise ValueError(f"cannot tell the model from the file name {file_name!r}: pass "
                         "--model (e.g. --model resnet50)")
    return max(matches, key=len)


def choose(file_name: str, model: str | None = None) -> tuple[str, Weights]:
    """The model (`model`, or the one the file name starts with) and the image preparation
    for a weight file: the file's own row of WEIGHTS, else the model's first row."""
    if file_name in NOT_CLASSIFIERS:
        raise ValueError(f"{file_name} cannot classify: {NOT_CLASSIFIERS[file_name]}")
    model = model or architecture(file_name)
    weights = WEIGHTS.get(file_name)
    if weights is None or weights.model != model:
        weights = default_weights(model)
    return model, weights


def preprocess(image_path: str | Path, weights: Weights) -> np.ndarray:
    """The image as the (1, 3, crop, crop) float32 batch torchvision's `weights.transforms()`
    makes of it: shorter side resized (Pillow, antialiased), centre crop, [0, 1], normalised."""
    from PIL import Image

    resample = {"bilinear": Image.Resampling.BILINEAR,
                "bicubic": Image.Resampling.BICUBIC}[weights.interpolation]
    with Image.open(image_path) as opened:
        image = opened.convert("RGB")  # greyscale, palette and RGBA images become RGB
    width, height = image.size
    # The shorter side becomes `resize`, the longer keeps the aspect ratio, rounded down.
    short, long = min(width, height), max(width, height)
    new_long = int(weights.resize * long / short)
    size = (weights.resize, new_long) if width <= height else (new_long, weights.resize)
    if size != image.size:
        image = image.resize(size, resample)
    # The centre square; a half-pixel margin is rounded half to even, as torchvision does.
    left = int(round((size[0] - weights.crop) / 2.0))
    top = int(round((size[1] - weights.crop) / 2.0))
    image = image.crop((left, top, left + weights.crop, top + weights.crop))
    pixels = np.asarray(image, dtype=np.float32) / 255  # (H, W, 3) in [0, 1]
    pixels = (pixels - MEAN) / STD
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])  # NCHW


def build(model: str, weights: Weights, state_dict: dict) -> mg.nn.Module:
    """minigrad's `model`, built as torchvision builds it for published weights, with them
    loaded, in eval mode."""
    builder = getattr(models, model, None)
    if builder is None:
        raise ValueError(f"minigrad.models has no {model!r}")
    kwargs: dict = {}
    if model.startswith("vgg"):
        kwargs["init_weights"] = False  # the weights replace every value anyway
    elif model == "googlenet":
        # The file holds the auxiliary heads too, and its weights (torchvision says: "ported
        # from the original paper") expect (x - 0.5) / 0.5 input: transform_input converts
        # the ImageNet-normalised input to that.
        kwargs.update(transform_input=True, aux_logits=True, init_weights=False)
    elif model.startswith("vit_"):
        kwargs["image_size"] = weights.crop  # the position embeddings' grid (SWAG: 384, 512)
    net = builder(**kwargs)
    net.load_state_dict(state_dict)
    if model == "googlenet":  # as torchvision: the heads only help training, drop them
        net.aux_logits, net.aux1, net.aux2 = False, None, None
    return net.eval()


def classify(weights_path: str | Path, image_path: str | Path, model: str | None = None,
             top: int = 5) -> tuple[str, Weights, list[tuple[str, float]]]:
    """(model name, preparation, [(class name, probability)] of the `top` classes, most
    probable first) for the image, by the weights in `weights_path`."""
    name = Path(weights_path).name
    model, weights = choose(name, model)
    try:
        state_dict = mg.load(weights_path)
    except ValueError:
        with open(weights_path, "rb") as file:
            if file.read(len(LEGACY_TORCH_FILE)) == LEGACY_TORCH_FILE:
                raise ValueError(f"{name} is in PyTorch's pre-1.6 format, which mg.load does "
                                 "not read; re-save it once with torch: "
                                 "torch.save(torch.load(f), f)") from None
        raise
    net = build(model, weights, state_dict)
    x = mg.tensor(preprocess(image_path, weights))
    with mg.no_grad():
        probabilities = F.softmax(net(x), dim=1).numpy()[0]
    classes = models.imagenet_classes()
    if len(probabilities) != len(classes):
        raise ValueError(f"{name} has {len(probabilities)} classes, not ImageNet's "
                         f"{len(classes)}")
    best = np.argsort(-probabilities, kind="stable")[:top]
    return model, weights, [(classes[i], float(probabilities[i])) for i in best]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Top ImageNet classes of an image, by torchvision's published weights.")
    parser.add_argument("weights", nargs="?", help="a torchvision .pth file, "
                        "e.g. resnet50-0676ba61.pth")
    parser.add_argument("image", nargs="?", help="the image (any format Pillow reads)")
    parser.add_argument("--model", help="the architecture, e.g. resnet50 (default: from the "
                        "weights' file name)")
    parser.add_argument("--top", type=int, default=5, help="how many classes to print")
    parser.add_argument("--list", action="store_true",
                        help="list the known weight files and where to download them")
    args = parser.parse_args(argv)
    if args.list:
        for file, weights in WEIGHTS.items():
            print(f"{weights.model:18} {URL}{file}")
        return
    if args.weights is None or args.image is None:
        parser.error("the weights file and the image are required")
    try:
        model, weights, best = classify(args.weights, args.image, args.model, args.top)
    except ImportError as error:  # Pillow missing
        sys.exit(f"pretrained: reading the image needs Pillow (pip install pillow): {error}")
    except (OSError, ValueError, RuntimeError) as error:  # missing file, unknown model, ...
        sys.exit(f"pretrained: {error}")
    print(f"{model} from {Path(args.weights).name}; {Path(args.image).name} resized to "
          f"{weights.resize} ({weights.interpolation}), centre crop {weights.crop}")
    for rank, (label, probability) in enumerate(best, 1):
        print(f"{rank:2}. {label:30} {100 * probability:6.2f}%")


if __name__ == "__main__":
    main()
