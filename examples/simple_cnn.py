"""The CNN article's PyTorch snippet, in minigrad: build SimpleCNN, print it, count its
parameters and push a batch of four 1x28x28 images through it.

    python examples/simple_cnn.py

prints the model (in PyTorch's layout), `Total parameters: 225,034`, `Input shape: (4, 1, 28,
28)`, `Output shape: (4, 10)`, and a summary table with each layer's output shape.
"""

import minigrad as mg
from minigrad.models import SimpleCNN
from minigrad.summary import summary


def main() -> None:
    mg.manual_seed(0)
    model = SimpleCNN(num_classes=10)
    print(model)

    total = sum(p.numel() for p in model.parameters())
    print(f"Total parameters: {total:,}")

    x = mg.randn(4, 1, 28, 28)  # a batch of four grayscale 28x28 images
    model.eval()  # Dropout off: the same input gives the same logits
    with mg.no_grad():
        logits = model(x)
    print(f"Input shape: {x.shape}")
    print(f"Output shape: {logits.shape}")

    print()
    summary(model, (1, 28, 28))  # prints the table


if __name__ == "__main__":
    main()
