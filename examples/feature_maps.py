"""What the first convolution learns: picture a trained SimpleCNN's 32 first-layer filters and
the 32 feature maps they make from one test image.

    make demo && python examples/feature_maps.py --checkpoint runs/demo/checkpoint.npz
    python examples/feature_maps.py                        # trains 3 epochs on digits first
    python examples/feature_maps.py --dataset fashion-mnist --limit 10000 --out fashion.png

The CNN article says early layers detect edges; this is that claim as a picture. Each 3x3
filter is drawn on its own grey scale centred on zero (white: positive weight, black:
negative), so an edge detector shows as a dark side next to a bright one. Its feature map
(after conv + ReLU) is bright where the image has that edge. Saves one PNG (`--out`).
Without `--checkpoint` the model is trained by the training CLI (`minigrad.train`) in a
temporary directory.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import minigrad as mg
from minigrad import plots, train
from minigrad.data import datasets
from minigrad.models import SimpleCNN

LOADERS = {"digits": datasets.digits, "fashion-mnist": datasets.fashion_mnist}


def trained_checkpoint(args: argparse.Namespace, directory: str) -> Path:
    """Train SimpleCNN with the CLI's defaults (Adam, lr 1e-3, batches of 64) into `directory`."""
    argv = ["--model", "simplecnn", "--dataset", args.dataset, "--epochs", str(args.epochs),
            "--out", directory]
    if args.limit is not None:
        argv += ["--limit", str(args.limit)]
    if train.main(argv) != 0:
        sys.exit(1)  # the CLI has said why in one line
    return Path(directory) / "checkpoint.npz"


def save_picture(model: SimpleCNN, test_set: datasets.ImageDataset, path: str) -> None:
    conv = model.features[0]  # Conv2d(1, 32, 3); features[1] is its ReLU
    image = test_set.images[:1]  # (1, 1, 28, 28): the first test image
    model.eval()
    with mg.no_grad():
        maps = model.features[1](conv(mg.tensor(image))).numpy()[0]  # (32, 26, 26)
    filters = conv.weight.numpy()[:, 0]  # (32, 3, 3)
    label = test_set.classes[int(test_set.targets[0])]

    figure = plots.pyplot().figure(figsize=(15, 4.2), layout="constrained")
    left, middle, right = figure.subfigures(1, 3, width_ratios=[4, 1.6, 4])
    plots.image_grid(left, filters, columns=8, signed=True,
                     title="the 32 first-layer 3x3 filters (grey = 0)")
    plots.image_grid(middle, [image[0, 0] * test_set.std + test_set.mean],
                     title=f"input: {label}")
    plots.image_grid(right, maps, columns=8, title="its 32 feature maps (conv1 + ReLU)")
    plots.save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None,
                        help="a minigrad-train checkpoint of SimpleCNN (default: train one now)")
    parser.add_argument("--dataset", choices=sorted(LOADERS), default="digits")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="train on the first N training images only")
    parser.add_argument("--out", default="feature_maps.png", help="where to save the PNG")
    args = parser.parse_args()
    try:
        plots.pyplot()  # matplotlib missing: say so before training, not after
        test_set = LOADERS[args.dataset](train=False)
    except (FileNotFoundError, ImportError) as error:
        sys.exit(f"feature_maps: {error}")
    with tempfile.TemporaryDirectory() as directory:
        checkpoint = mg.load(args.checkpoint or trained_checkpoint(args, directory))
    model = SimpleCNN(num_classes=len(test_set.classes))
    model.load_state_dict(checkpoint["model"])
    save_picture(model, test_set, args.out)
    print(f"Saved {args.out}")


if __name__ == "__main__":
    main()
