"""`summary(model, input_shape)`: a table of each layer's output shape and parameter count, as
torchinfo prints for PyTorch, so "1x28x28 -> 32x26x26 -> 32x13x13" can be read off a model
instead of worked out by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minigrad import factories
from minigrad.autograd import no_grad
from minigrad.nn.module import Module
from minigrad.tensor import Tensor


def summary(model: Module, input_shape: tuple[int, ...], batch_size: int = 1) -> str:
    """Run `model` once on zeros of shape (batch_size, *input_shape) and return (and print) one
    row per call of a leaf layer (a module without children): its name, type, output shape per
    sample and parameter count, then the input shape and the total parameter count.

    The model is left as it was found: its mode stays (train or eval), and the buffers a
    forward pass in training mode updates (BatchNorm's running statistics) are put back. The
    rows come from a forward hook on each leaf (as torchinfo's), removed again afterwards,
    also when the forward pass raises. A leaf called twice (a shared ReLU) gets two rows; a
    layer called as `layer.forward(x)` rather than `layer(x)` runs no hooks, and gets none.
    Runs under no_grad.
    """
    rows: list[tuple[str, str, str, str]] = []
    leaves = [(name, module) for name, module in model.named_modules()
              if not any(True for _ in module.children())]
    # By key, not by object: a layer may rebind a buffer (`self.count += 1`) rather than
    # update it in place.
    buffers = {name: buffer.array.copy() for name, buffer in model.named_buffers()}
    handles = []
    try:
        for name, module in leaves:
            handles.append(module.register_forward_hook(_recording(module, name or "(model)",
                                                                   rows)))
        with no_grad():
            model(factories.zeros(batch_size, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.load_state_dict(buffers, strict=False)
    total = sum(param.numel() for param in model.parameters())
    trainable = sum(param.numel() for param in model.parameters() if param.requires_grad)
    text = _table([("Layer", "Type", "Output shape", "Param #"),
                   ("input", "", _per_sample(input_shape), ""), *rows],
                  [f"Total params: {total:,}", f"Trainable params: {trainable:,}"])
    print(text)
    return text


def _recording(module: Module, name: str,
               rows: list[tuple[str, str, str, str]]) -> Callable[..., Any]:
    """A forward hook appending a row for every call of `module`."""
    params = sum(param.numel() for param in module.parameters())

    def record(module: Module, args: tuple, out: Any) -> None:
        shape = _per_sample(out.shape[1:]) if isinstance(out, Tensor) else "-"
        rows.append((name, type(module).__name__, shape, f"{params:,}"))

    return record


def _per_sample(shape: tuple[int, ...]) -> str:
    """(32, 26, 26) -> "32x26x26"; () (one number per sample) -> "1"."""
    return "x".join(map(str, shape)) if shape else "1"


def _table(rows: list[tuple[str, ...]], footer: list[str]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i == 3 else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    rule = "-" * max(map(len, lines + footer))
    return "\n".join([rule, lines[0], rule, *lines[1:], rule, *footer, rule])


__all__ = ["summary"]
