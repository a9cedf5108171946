"""`python -m minigrad.models`: the CNN article's landmark models as one table.

For each model: the year of its paper, its depth (weight layers on the longest path), its
parameters (GoogLeNet's without the auxiliary classifiers only training uses, as torchvision's
weights), its mult-adds for one 224x224 image (LeNet-5: one 28x28 digit, which its first
layer pads to the paper's 32x32), all from `minigrad.summary`, and the time one image's
forward pass takes on the active backend (MINIGRAD_BACKEND, or --backend), with PyTorch's
(torchvision's model; for LeNet-5 its twin in minigrad.testing.torch_models) beside it where
torch and torchvision are installed. The models are randomly initialised: nothing is
downloaded, and the numbers do not depend on the weights.

    python -m minigrad.models                      # every row, timed
    python -m minigrad.models --no-time            # depth, parameters, mult-adds only
    python -m minigrad.models --models lenet5,resnet50 --backend numpy --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import minigrad as mg
from minigrad import models
from minigrad.summary import summary


class Landmark(NamedTuple):
    name: str  # the builder in minigrad.models (and torchvision.models)
    year: int
    input: tuple[int, int, int]  # one image: (C, H, W)
    options: dict[str, Any] | None = None  # the builder's arguments


IMAGENET = (3, 224, 224)
LANDMARKS = [
    Landmark("lenet5", 1998, (1, 28, 28)),
    Landmark("alexnet", 2012, IMAGENET),
    Landmark("vgg16", 2014, IMAGENET),
    # without the auxiliary classifiers, which only training uses (as torchvision's weights)
    Landmark("googlenet", 2014, IMAGENET, {"aux_logits": False}),
    Landmark("resnet50", 2015, IMAGENET),
    Landmark("resnet152", 2015, IMAGENET),
    Landmark("efficientnet_b0", 2019, IMAGENET),
    Landmark("vit_b_16", 2020, IMAGENET),
]


def parse(argv: list[str] | None) -> argparse.Namespace:
    names = [m.name for m in LANDMARKS]
    parser = argparse.ArgumentParser(
        prog="python -m minigrad.models",
        description="The landmark CNNs: year, depth, parameters, mult-adds and inference time.")
    parser.add_argument("--models", default=",".join(names),
                        help=f"comma-separated, from: {', '.join(names)} (default: all)")
    parser.add_argument("--no-time", action="store_true",
                        help="skip the timing (depth, parameters and mult-adds only)")
    parser.add_argument("--backend", default=None,
                        help="minigrad's backend: numpy, numba or cupy (default: "
                             "MINIGRAD_BACKEND, else numba where it imports)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed forward passes per model at least, after one warm-up, "
                             "more while they take under 1 s; the best counts (default: 3)")
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown or not wanted:
        parser.error(f"--models: unknown {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(names)}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    args.models = [m for n in wanted for m in LANDMARKS if m.name == n]
    return args


def builders(rows: list[Landmark]) -> dict[str, Callable[..., Any]]:
    """Each row's builder; a missing one is an error naming it (never a row left out)."""
    missing = [m.name for m in rows if not callable(getattr(models, m.name, None))]
    if missing:
        raise SystemExit(f"python -m minigrad.models: minigrad.models has no "
                         f"{', '.join(missing)}: the table needs every model it lists "
                         f"(pick others with --models)")
    return {m.name: getattr(models, m.name) for m in rows}


def torch_and_torchvision() -> Any:
    """torch, where both torch and torchvision import; else None."""
    try:
        import torch

        from minigrad.testing.torch_models import torchvision_models
        torchvision_models(torch)
    except Exception:  # noqa: BLE001 - missing, or a broken install: no PyTorch column
        return None
    return torch


def best_time(run: Callable[[], Any], repeat: int, sync: Callable[[], None],
              budget: float = 1.0) -> float:
    """The best of `repeat` timed runs (more, up to 100, while they take under `budget`
    seconds together: a small model's milliseconds need many), after an untimed warm-up."""
    run()
    sync()
    times: list[float] = []
    while len(times) < repeat or (sum(times) < budget and len(times) < 100):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def time_minigrad(model: mg.nn.Module, image: tuple[int, ...], backend: str,
                  repeat: int) -> float:
    sync = mg.cuda.synchronize if backend == "cupy" else (lambda: None)
    x = mg.randn(1, *image)
    if backend == "cupy":
        x = x.to("cupy")

    def run() -> Any:
        with mg.no_grad():
            return model(x)
    return best_time(run, repeat, sync)


def time_torch(torch: Any, row: Landmark, repeat: int, cuda: bool) -> float:
    from minigrad.testing.torch_models import torch_lenet5, torchvision_model

    if row.name == "lenet5":
        model = torch_lenet5(torch)
    else:  # GoogLeNet's own init is slow (scipy's truncnorm) and nothing here needs it
        kwargs = {"init_weights": False} if row.name == "googlenet" else {}
        model = torchvision_model(torch, row.name, **(row.options or {}), **kwargs)
    device = "cuda" if cuda else "cpu"
    model = model.eval().to(device)
    x = torch.randn(1, *row.input, device=device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def run() -> Any:
        with torch.no_grad():
            return model(x)
    return best_time(run, repeat, sync)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    build = builders(args.models)
    backend = args.backend or mg.get_backend()
    torch = None if args.no_time else torch_and_torchvision()
    cuda = bool(torch is not None and backend == "cupy" and torch.cuda.is_available())
    header = ["Model", "Year", "Input", "Depth", "Params", "Mult-adds"]
    if not args.no_time:
        header.append(f"minigrad ({backend})")
        if torch is not None:
            header.append(f"PyTorch ({'cuda' if cuda else 'cpu'})")
    table = [header]
    with mg.backend(backend):
        for row in args.models:
            model = build[row.name](**(row.options or {})).eval()
            if backend == "cupy":
                model = model.to("cupy")
            numbers = summary(model, row.input, verbose=0)
            cells = [row.name, str(row.year), "x".join(map(str, row.input)), str(numbers.depth),
                     f"{numbers.total_params:,}", _giga(numbers.mult_adds)]
            if not args.no_time:
                cells.append(_ms(time_minigrad(model, row.input, backend, args.repeat)))
                if torch is not None:
                    cells.append(_ms(time_torch(torch, row, args.repeat, cuda)))
            table.append(cells)
            del model, numbers
    print(_format(table))
    notes = ["Depth: weight layers (conv, linear) on the longest path. GoogLeNet without its "
             "auxiliary classifiers.",
             "Mult-adds: one image, as torchvision's GFLOPS (LeNet-5's 28x28 is padded to 32x32 "
             "by its first layer)."]
    if not args.no_time:
        notes.append(f"Time: one image's forward pass in eval mode without grad, the best of "
                     f"{args.repeat} or more (for 1 s) after a warm-up.")
        if torch is None:
            notes.append("PyTorch: torch or torchvision is not installed (pip install -e "
                         ".[oracle]), so no column for it.")
        else:
            notes.append(f"PyTorch {torch.__version__.split('+')[0]}, "
                         f"{torch.get_num_threads()} threads.")
    print("\n".join(notes))
    return 0


def _giga(n: int) -> str:
    """Mult-adds in G (three decimals, as torchvision's tables), M below 0.01 G."""
    return f"{n / 1e9:.3f} G" if n >= 1e7 else f"{n / 1e6:.3f} M"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _format(rows: list[list[str]]) -> str:
    """Columns: the first two left-aligned, the numbers right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    rule = "-" * max(map(len, lines))
    return "\n".join([rule, lines[0], rule, *lines[1:], rule])


if __name__ == "__main__":
    sys.exit(main())
