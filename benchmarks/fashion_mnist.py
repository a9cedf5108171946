"""Fashion-MNIST end to end: one training recipe in minigrad and in PyTorch (CPU), side by side.

Each library trains the same model, any of the training CLI's (`minigrad.train.MODELS`: the
small-image forms of the CNN article's architectures, SimpleCNN, resnet20), with the same
recipe: by default Adam(lr=1e-3), batch 64, cross-entropy, 10 epochs, no augmentation; the
options below are the CLI's (optimizer, learning rate, schedule with warmup, --augment,
--label-smoothing, --image-size), seed for seed:

  * the same initial weights: minigrad's initialisation (mg.manual_seed(seed)), copied into the
    PyTorch twin (minigrad/testing/torch_models.py: torchvision's model with the layers the
    small-image form changes replaced) through its state dict;
  * the same batches in the same order, augmented alike: PyTorch's loop takes its batches from
    the same minigrad DataLoader (order, random crops and flips), as NumPy arrays;
  * the same learning-rate schedule (torch.optim's LinearLR, CosineAnnealingLR, SequentialLR),
    and GoogLeNet's auxiliary losses weighted 0.3 on both sides;
  * the same dropout masks and stochastic-depth decisions: the PyTorch twin's Dropout and
    StochasticDepth layers are swapped for ones that draw exactly as minigrad's do (the same
    NumPy calls, in the same forward order, from a generator seeded as minigrad's), so the
    two runs differ by float32 rounding only, not by the luck of their masks.

The minigrad side is the training CLI's own code (minigrad.train: `Run`, `train_epoch`,
`finish_epoch`, `evaluate`), not a copy of it. Each library trains in its own subprocess, so the
other's BLAS/OpenMP/Numba threads and allocator settings cannot touch it; the subprocesses take
turns one epoch at a time (minigrad, pause, PyTorch, pause, ...), so passing load on a shared
machine is spread over both and an unfinished run still has comparable epochs. PyTorch uses one
intra-op thread per logical CPU and never loads minigrad's backends (nor their malloc tuning).

Per epoch and library it records train loss and accuracy (over the epoch's batches, as they
were trained), test loss and accuracy (the 10,000 test images, eval mode), the training time
(the epoch's batches: fetching, forward, loss, backward, optimizer step) and, separately, the
evaluation time. It prints a side-by-side table per epoch and a summary (final and best test
accuracy, median epoch time, the ratio to PyTorch) and checks the targets: the model's test
accuracy target where it has one (TARGETS, or --target), test accuracy within 0.5 points of
PyTorch's at the end and at every epoch, and a median training epoch within 1.5x of
PyTorch's.

Run it from the repository root (the data is read from /usr/share/datasets/fashion-mnist or
$MINIGRAD_DATA/fashion-mnist):

    .venv/bin/python benchmarks/fashion_mnist.py --limit 2000 --epochs 1      # smoke run
    .venv/bin/python benchmarks/fashion_mnist.py --model simplecnn --epochs 10 \\
        --json benchmarks/results/fashion_mnist_simplecnn.json \\
        --plot benchmarks/results/fashion_mnist_simplecnn.png                 # ~6 min, 2 cores
    .venv/bin/python benchmarks/fashion_mnist.py --model resnet20 ...          # ~50 min, 2 cores
    .venv/bin/python benchmarks/fashion_mnist.py --backends numba numpy ...    # both backends

--json is rewritten after every epoch, so an interrupted run keeps the epochs it finished.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import print_machine, print_table, print_torch

TORCH = "pytorch"
CHILD_FLAG = "--child"  # internal: the subprocess that trains one library
READY, EPOCH = "READY ", "EPOCH "  # prefixes of the lines a child reports on
# Test accuracy to reach within the epochs run, with the default recipe (--target overrides).
TARGETS = {"simplecnn": 0.910, "resnet20": 0.920, "lenet5": 0.900}
MAX_ACCURACY_GAP = 0.005  # minigrad's test accuracy vs PyTorch's, absolute
MAX_TIME_RATIO = 1.5  # minigrad's median training epoch / PyTorch's
EVAL_BATCH = 500


# ------------------------------------------------------------------------------ the two sides
RECIPE_OPTIONS = ("optimizer", "lr", "momentum", "weight_decay", "batch_size", "scheduler",
                  "warmup_epochs", "label_smoothing", "random_erase", "image_size")


def recipe_argv(args: argparse.Namespace, backend: str, out: str) -> list[str]:
    """The minigrad-train command line of this recipe (also what the JSON records)."""
    argv = ["--model", args.model, "--dataset", "fashion-mnist", "--epochs", str(args.epochs),
            "--backend", backend, "--seed", str(args.seed), "--out", out]
    for name in RECIPE_OPTIONS:
        if getattr(args, name) is not None:
            argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return (argv + (["--augment"] if args.augment else [])
            + (["--limit", str(args.limit)] if args.limit else []))


def cli_recipe(args: argparse.Namespace) -> argparse.Namespace:
    """minigrad-train's parsed arguments for this recipe, defaults filled in: what both sides
    train with."""
    from minigrad.train import parse_args

    return parse_args(recipe_argv(args, "numpy", "unused"))


def initial_state(args: argparse.Namespace, path: Path) -> None:
    """minigrad's initial weights for this seed, as `Run` builds them, saved for both sides."""
    import minigrad as mg
    from minigrad.train import MODELS

    mg.manual_seed(args.seed)
    model = MODELS[args.model](cli_recipe(args).image_size)
    np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})


class MinigradTrainer:
    """minigrad.train's `Run` on one backend, started from the shared initial weights."""

    def __init__(self, args: argparse.Namespace, backend: str, init: Path, out: str) -> None:
        from tqdm import tqdm

        import minigrad as mg
        from minigrad.train import Run, parse_args

        self.run = Run(parse_args(recipe_argv(args, backend, out)))
        with np.load(init) as state:
            self.run.model.load_state_dict(dict(state))  # in place: the optimizer keeps them
        self.progress = tqdm(disable=True)  # train_epoch reports to it; nothing is drawn
        self.warmup_s = 0.0
        if backend == "numba":  # compile (or load from the cache) before anything is timed
            start = time.perf_counter()
            mg.backends.load("numba").warmup()
            self.warmup_s = time.perf_counter() - start
        self.info = {"backend": mg.get_backend(), "numba_warmup_s": self.warmup_s,
                     "train_images": len(self.run.train_set)}
        mg.manual_seed(args.seed)  # the masks from here on: as SharedMasks' generator draws

    def epoch(self) -> dict[str, float]:
        run = self.run
        start = time.perf_counter()
        run.train_epoch(self.progress)
        trained = time.perf_counter()
        run.finish_epoch()
        record = dict(run.history[-1])
        record["train_seconds"] = record.pop("seconds")  # the batches only, timed by Run
        record["train_wall_seconds"] = trained - start
        record["eval_seconds"] = time.perf_counter() - trained
        return record


def share_masks(torch: Any, model: Any, rng: np.random.Generator) -> None:
    """Swap `model`'s Dropout and torchvision StochasticDepth layers for ones drawing their
    masks from `rng` with minigrad's own NumPy calls (minigrad.nn.dropout._dropout,
    minigrad.models.blocks.stochastic_depth), so a generator seeded as minigrad's gives
    minigrad's masks, layer for layer, step for step."""

    def numpy_dtype(x: Any) -> np.dtype:
        return torch.empty(0, dtype=x.dtype).numpy().dtype

    class SharedDropout(torch.nn.Module):
        def __init__(self, p: float) -> None:
            super().__init__()
            self.p = p

        def forward(self, x: Any) -> Any:
            if not self.training or self.p == 0 or x.numel() == 0:
                return x
            keep = rng.random(tuple(x.shape), dtype=np.float32) >= self.p
            return x * torch.from_numpy(keep.astype(numpy_dtype(x)) / (1 - self.p))

    class SharedStochasticDepth(torch.nn.Module):
        def __init__(self, p: float, mode: str) -> None:
            super().__init__()
            self.p, self.mode = p, mode

        def forward(self, x: Any) -> Any:
            if not self.training or self.p == 0:
                return x
            survival = 1.0 - self.p
            size = ((x.shape[0],) + (1,) * (x.ndim - 1) if self.mode == "row"
                    else (1,) * x.ndim)
            dtype = numpy_dtype(x)
            keep = (rng.random(size) < survival).astype(dtype)
            if survival > 0:
                keep = keep / dtype.type(survival)
            return x * torch.from_numpy(keep)

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Dropout):
                setattr(parent, name, SharedDropout(child.p))
            elif type(child).__name__ == "StochasticDepth":
                setattr(parent, name, SharedStochasticDepth(child.p, child.mode))
    for module in model.modules():  # a random layer left unswapped would break the pairing
        if type(module).__name__ in ("Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"):
            raise NotImplementedError(f"share_masks: no shared form of {type(module).__name__}")


class TorchTrainer:
    """The same recipe in PyTorch: the batches of minigrad's DataLoader (order, augmentation),
    the twin model, torch.optim's optimizer and schedule."""

    def __init__(self, args: argparse.Namespace, init: Path) -> None:
        import torch

        # minigrad's data code only (no backend is loaded, so no malloc tuning here either)
        from minigrad.data import DataLoader
        from minigrad.testing.torch_models import torch_small_image_model
        from minigrad.train import (
            build_augmentation,
            build_optimizer,
            build_scheduler,
            classification_loss,
            load_data,
        )

        self.torch, self.F = torch, torch.nn.functional
        torch.set_num_threads(os.cpu_count() or 1)
        recipe = self.recipe = cli_recipe(args)
        train_set, test_set = load_data(recipe)
        self.test_images = torch.from_numpy(test_set.images)
        self.test_labels = torch.from_numpy(test_set.targets)
        self.loader = DataLoader(train_set, recipe.batch_size, shuffle=True, seed=recipe.seed,
                                 transform=build_augmentation(recipe, test_set))
        self.model = torch_small_image_model(torch, args.model, image_size=recipe.image_size)
        with np.load(init) as state:
            self.model.load_state_dict({k: torch.from_numpy(state[k].copy()) for k in state})
        share_masks(torch, self.model, np.random.default_rng(args.seed))
        # the CLI's own recipe code, given torch's modules: the same API
        self.optimizer = build_optimizer(recipe, self.model, torch.optim)
        self.scheduler = build_scheduler(recipe, self.optimizer, len(self.loader),
                                         torch.optim.lr_scheduler)
        self.loss = functools.partial(classification_loss,
                                      label_smoothing=recipe.label_smoothing,
                                      functional=torch.nn.functional)
        self.epochs_done = 0
        self.info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                     "interop_threads": torch.get_num_interop_threads(),
                     "train_images": len(train_set)}

    def epoch(self) -> dict[str, float]:
        torch, model = self.torch, self.model
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        start = time.perf_counter()
        for images, labels in self.loader.batches(self.epochs_done):
            images, labels = torch.from_numpy(images.numpy()), torch.from_numpy(labels.numpy())
            loss, logits = self.loss(model(images), labels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            correct += int((logits.argmax(dim=1) == labels).sum().item())
            loss_sum += loss.item() * len(labels)
            seen += len(labels)
        trained = time.perf_counter()
        test_loss, test_accuracy = self.evaluate()
        self.epochs_done += 1
        return {"epoch": self.epochs_done, "train_loss": loss_sum / seen,
                "train_accuracy": correct / seen, "test_loss": test_loss,
                "test_accuracy": test_accuracy, "lr": self.optimizer.param_groups[0]["lr"],
                "train_seconds": trained - start,
                "train_wall_seconds": trained - start,
                "eval_seconds": time.perf_counter() - trained}

    def evaluate(self) -> tuple[float, float]:
        """Mean loss and accuracy on the test set, in batches of 500 (as minigrad.train's)."""
        torch = self.torch
        self.model.eval()
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            for images, labels in zip(self.test_images.split(EVAL_BATCH),
                                      self.test_labels.split(EVAL_BATCH)):
                logits = self.model(images)
                loss_sum += self.F.cross_entropy(logits, labels, reduction="sum").item()
                correct += int((logits.argmax(dim=1) == labels).sum().item())
        return loss_sum / len(self.test_labels), correct / len(self.test_labels)


def cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def others_share(before: tuple[int, int] | None, after: tuple[int, int] | None,
                 own_seconds: float) -> float | None:
    """The fraction of all CPUs' time that other processes used between two `cpu_ticks()`:
    what they took from this epoch (0 on an otherwise idle machine)."""
    if before is None or after is None or after[1] == before[1]:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy, total = after[0] - before[0], after[1] - before[1]
    return max(0.0, (busy - own_seconds * tick) / total)


def child_main(library: str, args: argparse.Namespace, init: Path) -> int:
    """In a subprocess: set up one library, then train one epoch per line read from stdin."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fashion-mnist-") as out:
        trainer: MinigradTrainer | TorchTrainer = (
            TorchTrainer(args, init) if library == TORCH
            else MinigradTrainer(args, library, init, out))
        info = {**trainer.info, "setup_seconds": time.perf_counter() - start}
        print(READY + json.dumps(info), flush=True)
        for _ in sys.stdin:
            ticks, cpu = cpu_ticks(), os.times()
            record = trainer.epoch()
            own = os.times()
            own_seconds = own.user + own.system - cpu.user - cpu.system
            record["cpu_seconds"] = own_seconds  # this process's, all threads, epoch + eval
            record["others_cpu_share"] = others_share(ticks, cpu_ticks(), own_seconds)
            record["load_average"] = os.getloadavg()[0]  # 1 minute, at the end of the epoch
            print(EPOCH + json.dumps(record), flush=True)
    return 0


class Child:
    """The parent's handle on one library's subprocess."""

    def __init__(self, library: str, argv: list[str]) -> None:
        self.library = library
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), CHILD_FLAG, library, *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.info = self.read(READY)

    def read(self, prefix: str) -> dict[str, Any]:
        """The next report line with `prefix`; other output is passed on."""
        for line in self.process.stdout:
            if line.startswith(prefix):
                return json.loads(line[len(prefix):])
            print(f"[{self.library}] {line}", end="", file=sys.stderr)
        raise RuntimeError(f"the {self.library} subprocess exited with status "
                           f"{self.process.wait()} before reporting")

    def epoch(self) -> dict[str, float]:
        self.process.stdin.write("epoch\n")
        self.process.stdin.flush()
        return self.read(EPOCH)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait()


# ------------------------------------------------------------------------------ reporting
def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def seconds(x: float) -> str:
    return f"{x:.1f}"


def share(x: float | None) -> str:
    return "?" if x is None else f"{100 * x:.0f}%"


def print_epochs(history: dict[str, list[dict[str, float]]], libraries: list[str]) -> None:
    """One row per epoch; each metric's columns side by side, one per library (test loss and
    train accuracy are in the JSON and the plot)."""
    metrics = [("test acc %", "test_accuracy", pct),
               ("train loss", "train_loss", "{:.4f}".format),
               ("train s", "train_seconds", seconds), ("eval s", "eval_seconds", seconds)]
    header = ["epoch"] + [f"{lib} {title}" for title, _, _ in metrics for lib in libraries]
    rows = []
    for i in range(min(len(history[lib]) for lib in libraries)):
        rows.append([str(i + 1)] + [fmt(history[lib][i][key]) for _, key, fmt in metrics
                                    for lib in libraries])
    print_table(header, rows)


def summarise(history: list[dict[str, float]]) -> dict[str, float]:
    best = max(history, key=lambda h: h["test_accuracy"])
    return {"epochs": len(history), "final_test_accuracy": history[-1]["test_accuracy"],
            "best_test_accuracy": best["test_accuracy"], "best_epoch": best["epoch"],
            "median_train_seconds": statistics.median(h["train_seconds"] for h in history),
            "median_eval_seconds": statistics.median(h["eval_seconds"] for h in history)}


def print_summary(summary: dict[str, dict[str, float]], libraries: list[str]) -> None:
    torch_summary = summary.get(TORCH)
    rows = []
    for lib in libraries:
        s = summary[lib]
        ratio = gap = "-"
        if torch_summary is not None:
            ratio = f"{s['median_train_seconds'] / torch_summary['median_train_seconds']:.2f}x"
            gap = s["final_test_accuracy"] - torch_summary["final_test_accuracy"]
            gap = f"{100 * gap:+.2f}"
        rows.append([lib, str(s["epochs"]), pct(s["final_test_accuracy"]), gap,
                     f"{pct(s['best_test_accuracy'])} (epoch {s['best_epoch']})",
                     seconds(s["median_train_seconds"]), ratio, seconds(s["median_eval_seconds"])])
    print_table(["library", "epochs", "final test acc %", "vs PyTorch (points)",
                 "best test acc %", "median train s/epoch", "ratio to PyTorch",
                 "median eval s"], rows)


def print_contention(history: dict[str, list[dict[str, float]]], libraries: list[str]) -> None:
    """How much of the machine other processes took during each library's epochs."""
    parts = []
    for lib in libraries:
        shares = [r["others_cpu_share"] for r in history[lib] if r["others_cpu_share"] is not None]
        if shares:
            parts.append(f"{lib} median {100 * statistics.median(shares):.0f}%, "
                         f"max {100 * max(shares):.0f}%")
    if parts:
        print(f"CPU time other processes took during the epochs (of {os.cpu_count()} CPUs): "
              + "; ".join(parts) + " (0% on an idle machine)")


def check_targets(target: float | None, summary: dict[str, dict[str, float]],
                  history: dict[str, list[dict[str, float]]], backends: list[str],
                  full_run: bool) -> list[str]:
    """One line per target: what was asked, what was measured, met or not."""
    lines = []
    reference = summary.get(TORCH)
    for lib in [*backends, TORCH]:
        if lib not in summary:
            continue
        s = summary[lib]
        if target is not None:
            met = s["best_test_accuracy"] >= target
            lines.append(f"{lib}: best test accuracy {pct(s['best_test_accuracy'])}% "
                         f"{'>=' if met else '<'} {100 * target:.1f}%: "
                         f"{'met' if met else 'NOT met'}")
        if lib == TORCH or reference is None:
            continue
        gap = s["final_test_accuracy"] - reference["final_test_accuracy"]
        met = abs(gap) <= MAX_ACCURACY_GAP
        lines.append(f"{lib}: final test accuracy {100 * gap:+.2f} points from PyTorch's "
                     f"(allowed +-{100 * MAX_ACCURACY_GAP:.1f}): {'met' if met else 'NOT met'}")
        gaps = [mine["test_accuracy"] - theirs["test_accuracy"]
                for mine, theirs in zip(history[lib], history[TORCH])]
        widest = max(gaps, key=abs)
        met = abs(widest) <= MAX_ACCURACY_GAP
        lines.append(f"{lib}: widest gap to PyTorch over the {len(gaps)} epochs "
                     f"{100 * widest:+.2f} points (allowed +-{100 * MAX_ACCURACY_GAP:.1f}): "
                     f"{'met' if met else 'NOT met'}")
        ratio = s["median_train_seconds"] / reference["median_train_seconds"]
        met = ratio <= MAX_TIME_RATIO
        lines.append(f"{lib}: median training epoch {ratio:.2f}x PyTorch's (allowed "
                     f"{MAX_TIME_RATIO}x): {'met' if met else 'NOT met'}")
    if not full_run:
        lines.append("(the targets are for the full training set; this run is shorter)")
    return lines


def write_json(path: str, results: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)


def plot(path: str, model: str, history: dict[str, list[dict[str, float]]],
         recipe: str, target: float | None) -> None:
    """Test and train accuracy and loss per epoch, every library on the same axes."""
    from minigrad.plots import pyplot, save_figure

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    figure, (acc_ax, loss_ax, time_ax) = plt.subplots(1, 3, figsize=(15, 4))
    for i, (lib, records) in enumerate(history.items()):
        epochs = [r["epoch"] for r in records]
        for split, style in (("test", "-o"), ("train", "--x")):
            kwargs = {"color": f"C{i}", "label": f"{lib} {split}", "markersize": 4}
            acc_ax.plot(epochs, [100 * r[f"{split}_accuracy"] for r in records], style, **kwargs)
            loss_ax.plot(epochs, [r[f"{split}_loss"] for r in records], style, **kwargs)
        time_ax.plot(epochs, [r["train_seconds"] for r in records], "-o", color=f"C{i}",
                     label=f"{lib} training", markersize=4)
    if target is not None:
        acc_ax.axhline(100 * target, color="grey", linewidth=0.8, linestyle=":",
                       label=f"target {100 * target:.1f}%")
    time_ax.set_ylim(bottom=0)
    for ax, name in ((acc_ax, "accuracy (%)"), (loss_ax, "cross-entropy loss"),
                     (time_ax, "seconds per epoch")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(f"{model} on Fashion-MNIST: {recipe}; same initial weights and batches")
    save_figure(figure, path)


# ------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from minigrad.train import MODELS

    parser.add_argument("--model", choices=list(MODELS), default="simplecnn")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    parser.add_argument("--lr", type=float, default=None, help="minigrad-train's default")
    parser.add_argument("--momentum", type=float, default=None)
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup-epochs", type=float, default=None)
    parser.add_argument("--label-smoothing", type=float, default=None)
    parser.add_argument("--image-size", type=int, default=None,
                        help="minigrad-train's default for the model")
    parser.add_argument("--augment", action="store_true", help="minigrad-train's --augment")
    parser.add_argument("--random-erase", type=float, default=None, metavar="P",
                        help="minigrad-train's --random-erase")
    parser.add_argument("--target", type=float, default=None,
                        help="test accuracy to reach (default: TARGETS, for the default recipe)")
    parser.add_argument("--backends", nargs="+", choices=("numba", "numpy"), default=["numba"],
                        help="minigrad backends to train on (default: numba)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="train on the first N training images only (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scheduler", choices=("none", "cosine", "warmup-cosine", "onecycle"),
                        default="none", help="minigrad-train's, stepped per batch")
    parser.add_argument("--no-torch", action="store_true", help="train minigrad only")
    parser.add_argument("--pause", type=float, default=2.0,
                        help="seconds between two libraries' epochs (idle threads go to sleep)")
    parser.add_argument("--json", metavar="PATH", help="write the results here (every epoch)")
    parser.add_argument("--plot", metavar="PATH", help="save the curves here (PNG)")
    parser.add_argument(CHILD_FLAG, metavar="LIBRARY", help=argparse.SUPPRESS)
    parser.add_argument("--init", help=argparse.SUPPRESS)  # the children's initial weights
    return parser


def library_versions(no_torch: bool) -> dict[str, str]:
    from minigrad.train import versions

    found = versions()
    if not no_torch:
        import torch

        found["torch"] = torch.__version__
    return found


def child_argv(args: argparse.Namespace, init: Path) -> list[str]:
    """This script's own arguments for a child: the recipe, as given."""
    argv = ["--model", args.model, "--epochs", str(args.epochs), "--seed", str(args.seed),
            "--init", str(init)]
    for name in RECIPE_OPTIONS:
        if getattr(args, name) is not None:
            argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return (argv + (["--augment"] if args.augment else [])
            + (["--limit", str(args.limit)] if args.limit else []))


def describe_recipe(recipe: argparse.Namespace) -> str:
    parts = [f"{recipe.optimizer} lr {recipe.lr:g}", f"batch {recipe.batch_size}"]
    if recipe.optimizer == "sgd":
        parts.append(f"momentum {recipe.momentum:g}")
    if recipe.weight_decay:
        parts.append(f"weight decay {recipe.weight_decay:g}")
    if recipe.scheduler != "none":
        parts.append(f"{recipe.scheduler} schedule" + (
            f" ({recipe.warmup_epochs:g} warmup epochs)"
            if recipe.scheduler == "warmup-cosine" else ""))
    if recipe.augment:
        parts.append("crop+flip augmentation")
    if recipe.label_smoothing:
        parts.append(f"label smoothing {recipe.label_smoothing:g}")
    if recipe.random_erase:
        parts.append(f"random erasing p {recipe.random_erase:g}")
    if recipe.image_size != 28:
        parts.append(f"{recipe.image_size}x{recipe.image_size} images")
    return ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        return child_main(args.child, args, Path(args.init))
    if args.epochs < 1 or (args.limit is not None and args.limit < 1):
        raise SystemExit("--epochs and --limit must be >= 1")

    libraries = list(dict.fromkeys(args.backends)) + ([] if args.no_torch else [TORCH])
    print_machine()
    print("  (each library trains in its own subprocess; the PyTorch one loads no minigrad "
          "backend, so glibc's defaults there)")
    if not args.no_torch:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)  # what the PyTorch subprocess sets
        print_torch(torch)
    recipe = cli_recipe(args)
    target = args.target if args.target is not None else TARGETS.get(args.model)
    print(f"{args.model} on Fashion-MNIST, {args.epochs} epochs, {describe_recipe(recipe)}, "
          f"seed {args.seed}" + (f", first {args.limit} training images" if args.limit else "")
          + f"; libraries take turns epoch by epoch ({args.pause:g} s pauses), one subprocess "
          "each")

    results: dict[str, Any] = {
        "model": args.model, "epochs": args.epochs, "seed": args.seed, "limit": args.limit,
        "recipe": {**{name: getattr(recipe, name) for name in (*RECIPE_OPTIONS, "augment")},
                   "description": describe_recipe(recipe), "target": target,
                   "minigrad_train_argv": recipe_argv(args, "<backend>", "<tmp>")},
        "machine": {"cpus": os.cpu_count()}, "versions": library_versions(args.no_torch),
        "libraries": {}, "history": {}, "summary": {}}
    history: dict[str, list[dict[str, float]]] = {lib: [] for lib in libraries}
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="fashion-mnist-") as tmp:
        init = Path(tmp) / "initial_state.npz"
        initial_state(args, init)
        try:
            for lib in libraries:
                children.append(Child(lib, child_argv(args, init)))
                results["libraries"][lib] = children[-1].info
                print(f"{lib}: ready, {json.dumps(children[-1].info)}", flush=True)
            for epoch in range(1, args.epochs + 1):
                for child in children:
                    time.sleep(args.pause)
                    record = child.epoch()
                    history[child.library].append(record)
                    print(f"epoch {epoch}/{args.epochs} {child.library:>8}: test acc "
                          f"{pct(record['test_accuracy'])}%, train "
                          f"{seconds(record['train_seconds'])} s, eval "
                          f"{seconds(record['eval_seconds'])} s, others took "
                          f"{share(record['others_cpu_share'])} of the CPUs", flush=True)
                results["history"] = history
                results["summary"] = {lib: summarise(h) for lib, h in history.items()}
                if args.json:
                    write_json(args.json, results)
        finally:
            for child in children:
                child.close()

    print()
    print_epochs(history, libraries)
    print()
    print_summary(results["summary"], libraries)
    print_contention(history, libraries)
    print()
    full_run = args.limit is None
    for line in check_targets(target, results["summary"], history, list(args.backends),
                              full_run):
        print(line)
    if args.json:
        print(f"wrote {args.json}")
    if args.plot:
        plot(args.plot, args.model, history, describe_recipe(recipe), target)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
