"""Build a small network by hand, backpropagate through it, and print its gradients.

    python examples/autograd_demo.py

A two-layer perceptron classifies four points; one backward() fills `.grad` on every
parameter, and a few plain gradient-descent steps drive the loss down.
"""

import minigrad as mg


def cross_entropy(logits: mg.Tensor, targets: mg.Tensor) -> mg.Tensor:
    """Mean negative log-likelihood of the target classes (stable log-softmax inside)."""
    log_probs = logits.log_softmax(dim=1)
    return -log_probs[mg.arange(len(targets)), targets].mean()


def main() -> None:
    mg.manual_seed(0)
    x = mg.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = mg.tensor([0, 1, 1, 0])  # XOR
    w1 = (mg.randn(2, 8) * 0.5).requires_grad_()
    b1 = mg.zeros(8, requires_grad=True)
    w2 = (mg.randn(8, 2) * 0.5).requires_grad_()
    b2 = mg.zeros(2, requires_grad=True)
    params = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}

    def forward() -> mg.Tensor:
        return (x @ w1 + b1).tanh() @ w2 + b2

    loss = cross_entropy(forward(), y)
    loss.backward()
    print(f"loss: {loss.item():.4f}   graph: {loss.grad_fn}")
    for name, p in params.items():
        print(f"d loss / d {name} {p.shape}:\n{p.grad}\n")

    for step in range(1, 301):
        for p in params.values():
            p.grad = None
        loss = cross_entropy(forward(), y)
        loss.backward()
        with mg.no_grad():
            for p in params.values():
                p -= 0.5 * p.grad
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.4f}")

    with mg.no_grad():
        predictions = forward().argmax(dim=1)
    print("predictions:", predictions.tolist(), " targets:", y.tolist())


if __name__ == "__main__":
    main()
