"""Train SimpleCNN on Fashion-MNIST with a plain training loop, written against the public API.

    python examples/train_fashion_mnist.py                          # 5 epochs, about 90% test
    python examples/train_fashion_mnist.py --epochs 1 --limit 2000  # a quick look

Each epoch prints the mean training loss and the test accuracy. `python -m minigrad.train
--dataset fashion-mnist` does the same with progress bars, checkpoints, resuming and plots.
"""

import argparse
import sys

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.data import DataLoader, Dataset, Subset, datasets
from minigrad.models import SimpleCNN
from minigrad.optim import Adam


def accuracy(model: SimpleCNN, dataset: Dataset) -> float:
    """The fraction of `dataset` classified correctly, with dropout off and no graph built."""
    model.eval()
    correct = 0
    with mg.no_grad():
        for images, labels in DataLoader(dataset, batch_size=500):
            correct += int((model(images).argmax(dim=1) == labels).sum().item())
    return correct / len(dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train SimpleCNN on Fashion-MNIST.")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use only the first N images of each split (quick runs)")
    parser.add_argument("--backend", choices=("numpy", "numba", "cupy"), default=None)
    parser.add_argument("--data-dir", default=None, help="directory holding the IDX files "
                        "(default: $MINIGRAD_DATA/fashion-mnist, /usr/share/datasets/...)")
    args = parser.parse_args()
    if args.backend:
        mg.set_backend(args.backend)
    mg.manual_seed(0)
    try:
        train_set = datasets.fashion_mnist(args.data_dir, train=True)
        test_set = datasets.fashion_mnist(args.data_dir, train=False)
    except FileNotFoundError as error:  # the message says where to get the files
        sys.exit(f"train_fashion_mnist: {error}")
    if args.limit is not None:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
        test_set = Subset(test_set, range(min(args.limit, len(test_set))))

    model = SimpleCNN(num_classes=10)
    optimizer = Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=0)
    for epoch in range(1, args.epochs + 1):
        model.train()  # dropout on (accuracy() turned it off)
        total_loss = 0.0
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
        print(f"epoch {epoch}/{args.epochs}  train loss {total_loss / len(train_set):.4f}  "
              f"test accuracy {100 * accuracy(model, test_set):.2f}%", flush=True)


if __name__ == "__main__":
    main()
