"""`python -m minigrad.train` (or `minigrad-train`): train a CNN on real images from one command.

    python -m minigrad.train --model simplecnn --dataset digits --epochs 10 --out runs/demo
    python -m minigrad.train --model resnet18 --dataset fashion-mnist --augment \
        --optimizer sgd --lr 0.1 --scheduler warmup-cosine --label-smoothing 0.1

Every model of the CNN article trains here in its small-image form (`MODELS`: greyscale,
10 classes); `--image-size` resizes the 28x28 images for the forms that need more.

Each epoch shows a progress bar and ends with a one-line summary; the output directory gets
`metrics.json`, `checkpoint.npz` (saved atomically after every epoch), `curves.png` and
`confusion.png`. Ctrl-C finishes the current batch, saves a checkpoint and exits; `--resume`
continues from any checkpoint, mid-epoch included, and ends with exactly the weights an
uninterrupted run would have: the batch order depends only on (seed, epoch), and the checkpoint
holds the random generator's state with the model, optimizer and scheduler.

Under `mpiexec -n N` it trains data-parallel by itself (minigrad.distributed): the model in
DistributedDataParallel (BatchNorm made SyncBatchNorm), each rank on its share of every batch
(`--batch-size` stays the global batch, so a run means the same at any N), the test set split
over the ranks and its metrics summed. Rank 0 alone prints and writes; checkpoints resume at the
same N. Ctrl-C, or an error on any rank, ends every rank at once (resume from the last epoch's
checkpoint).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import threadpoolctl

import minigrad as mg
from minigrad import distributed, nn
from minigrad.data import DataLoader, DistributedSampler, Subset, datasets, transforms
from minigrad.data.dataset import Dataset
from minigrad.nn import functional as F
from minigrad.optim import lr_scheduler
from minigrad.random import generator
from minigrad.serialization import write_atomically

PROG = "minigrad-train"
# Each model's small-image form for 1 x side x side images and 10 classes, built from the side.
MODELS: dict[str, Callable[[int], nn.Module]] = {
    "simplecnn": lambda side: mg.models.SimpleCNN(num_classes=10),
    "resnet20": lambda side: mg.models.resnet20(num_classes=10, in_channels=1),
    "lenet5": lambda side: mg.models.lenet5(num_classes=10),
    "alexnet": lambda side: mg.models.alexnet(num_classes=10, small_images=True, in_channels=1),
    "vgg11": lambda side: mg.models.vgg11(num_classes=10, small_images=True, in_channels=1),
    "vgg16": lambda side: mg.models.vgg16(num_classes=10, small_images=True, in_channels=1),
    "googlenet": lambda side: mg.models.googlenet(num_classes=10, small_images=True,
                                                  in_channels=1),
    "resnet18": lambda side: mg.models.resnet18(num_classes=10, small_images=True,
                                                in_channels=1),
    "efficientnet_b0": lambda side: mg.models.efficientnet_b0(num_classes=10, small_images=True,
                                                              in_channels=1),
    "vit": lambda side: mg.models.vit_small_images(image_size=side, num_classes=10,
                                                   in_channels=1),
}
# The image side a form needs at least, where 28 is too small (VGG's five pools: 32 -> 1); it is
# the default --image-size for that model. Models fixed to 28x28 inputs (their first Linear
# layer's size) cannot be resized.
MIN_IMAGE_SIZE = {"vgg11": 32, "vgg16": 32}
FIXED_IMAGE_SIZE = {"simplecnn", "lenet5"}
DATASETS: dict[str, Callable[[str | None, bool], datasets.ImageDataset]] = {
    "digits": lambda root, train: datasets.digits(train=train),
    "fashion-mnist": lambda root, train: datasets.fashion_mnist(root, train=train),
    "mnist": lambda root, train: datasets.mnist(root, train=train),
}
# Datasets whose mirror images keep their labels: --augment flips only these (a mirrored 3 is
# no digit, a mirrored shoe is a shoe).
MIRROR_SAFE = {"fashion-mnist"}
AUX_WEIGHT = 0.3  # GoogLeNet's auxiliary losses, as in the paper and torchvision's recipe
# Arguments that define the training run: a resumed run must repeat them (see `_check_recipe`).
RECIPE = ("model", "dataset", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
          "scheduler", "warmup_epochs", "seed", "limit", "image_size", "augment",
          "label_smoothing", "random_erase")
# What checkpoints written before these settings existed were trained with.
OLD_DEFAULTS = {"warmup_epochs": 1.0, "image_size": 28, "augment": False, "label_smoothing": 0.0,
                "random_erase": 0.0}
EVAL_BATCH = 500
INTERRUPTED = 130  # the exit status of a program stopped by SIGINT
# Set by mpiexec for each rank: MPICH's (Hydra, the mpich wheel) and Open MPI's world size.
MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
# Arguments that may differ between ranks; every other one must be the same on all.
PER_RANK = ("data_dir",)


class TrainError(Exception):
    """A problem the user can fix (bad checkpoint, missing data): reported as one line."""


# ------------------------------------------------------------------------- arguments
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Train a model of the CNN article (its small-image "
                "form) on real images.")
    p.add_argument("--model", choices=list(MODELS), default="simplecnn")
    p.add_argument("--dataset", choices=list(DATASETS), default="digits")
    p.add_argument("--data-dir", help="directory holding the IDX files (default: "
                   "$MINIGRAD_DATA/<dataset>, then /usr/share/datasets/<dataset>)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam")
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 (adam, adamw), 0.05 (sgd)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="default: 0.01 for adamw, else 0")
    p.add_argument("--scheduler", choices=("none", "cosine", "warmup-cosine", "onecycle"),
                   default="none", help="stepped once per batch; warmup-cosine rises linearly "
                   "for --warmup-epochs, then follows a cosine to 0")
    p.add_argument("--warmup-epochs", type=float, default=1.0,
                   help="the warmup of --scheduler warmup-cosine (default 1)")
    p.add_argument("--image-size", type=int, default=None, metavar="N",
                   help="resize the 28x28 images to NxN (default 28; 32 for vgg11 and vgg16, "
                   "whose five pools need it)")
    p.add_argument("--augment", action="store_true",
                   help="random crops (padding 4) and, on fashion-mnist, horizontal flips")
    p.add_argument("--random-erase", type=float, default=0.0, metavar="P",
                   help="erase a random rectangle of each training image with probability P, "
                   "after --augment (transforms.RandomErasing; default 0)")
    p.add_argument("--label-smoothing", type=float, default=0.0,
                   help="cross-entropy label smoothing in [0, 1) (default 0)")
    p.add_argument("--backend", choices=("numpy", "numba", "cupy"), default=None,
                   help="kernel backend (overrides MINIGRAD_BACKEND)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output directory (default: runs/<model>-"
                   "<dataset>, or the checkpoint's directory with --resume)")
    p.add_argument("--resume", metavar="CKPT", default=None, help="continue from a checkpoint")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="train on the first N training images only (quick runs)")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.lr is None:
        args.lr = 0.05 if args.optimizer == "sgd" else 1e-3
    if args.weight_decay is None:
        args.weight_decay = 0.01 if args.optimizer == "adamw" else 0.0
    smallest = MIN_IMAGE_SIZE.get(args.model, 28)
    if args.image_size is None:
        args.image_size = smallest
    problems = [(args.lr > 0, f"--lr must be > 0, got {args.lr}"),
                (args.epochs >= 1, f"--epochs must be >= 1, got {args.epochs}"),
                (args.batch_size >= 1, f"--batch-size must be >= 1, got {args.batch_size}"),
                (args.momentum >= 0, f"--momentum must be >= 0, got {args.momentum}"),
                (args.weight_decay >= 0, f"--weight-decay must be >= 0, got {args.weight_decay}"),
                (args.limit is None or args.limit >= 1, f"--limit must be >= 1, got {args.limit}"),
                (args.image_size >= smallest, f"--image-size must be >= {smallest} for "
                 f"{args.model}, got {args.image_size}"),
                (args.model not in FIXED_IMAGE_SIZE or args.image_size == 28,
                 f"{args.model} takes 28x28 images only, got --image-size {args.image_size}"),
                (0 <= args.label_smoothing < 1,
                 f"--label-smoothing must be in [0, 1), got {args.label_smoothing}"),
                (0 <= args.random_erase <= 1,
                 f"--random-erase must be in [0, 1], got {args.random_erase}"),
                (args.warmup_epochs >= 0, f"--warmup-epochs must be >= 0, got "
                 f"{args.warmup_epochs}")]
    for ok, message in problems:
        if not ok:
            parser.error(message)
    if args.out is None:
        args.out = str(Path(args.resume).parent if args.resume
                       else Path("runs") / f"{args.model}-{args.dataset}")
    return args


# ------------------------------------------------------------------------- building blocks
def load_data(args: argparse.Namespace) -> tuple[Dataset, datasets.ImageDataset]:
    load = DATASETS[args.dataset]
    train_set, test_set = load(args.data_dir, True), load(args.data_dir, False)
    if args.image_size != datasets.IMAGE_SIZE:
        train_set, test_set = (datasets.resized(d, args.image_size) for d in (train_set, test_set))
    if args.limit is not None:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
    return train_set, test_set


def build_augmentation(args: argparse.Namespace,
                       dataset: datasets.ImageDataset) -> transforms.Compose | None:
    """--augment: a crop of the image's size from the image padded by 4 on every side (with
    black, -mean/std after normalisation), then a horizontal flip where MIRROR_SAFE.
    --random-erase P: then, with probability P, a rectangle set to 0, the mean after
    normalisation (torchvision's reference recipes erase so)."""
    steps: list[Any] = []
    if args.augment:
        steps.append(transforms.RandomCrop(args.image_size, padding=4,
                                           fill=-dataset.mean / dataset.std))
        if args.dataset in MIRROR_SAFE:
            steps.append(transforms.RandomHorizontalFlip())
    if args.random_erase > 0:
        steps.append(transforms.RandomErasing(p=args.random_erase))
    return transforms.Compose(steps) if steps else None


def classification_loss(outputs: Any, labels: Any, label_smoothing: float = 0.0,
                        functional: Any = F) -> tuple[Any, Any]:
    """(loss, logits): cross-entropy, plus AUX_WEIGHT times each auxiliary head's for a
    GoogLeNet in training (it returns GoogLeNetOutputs: logits, aux_logits2, aux_logits1).
    `functional` is minigrad's or torch's nn.functional."""
    def loss(logits: Any) -> Any:
        return functional.cross_entropy(logits, labels, label_smoothing=label_smoothing)

    if hasattr(outputs, "aux_logits1"):
        return (loss(outputs.logits) + AUX_WEIGHT * (loss(outputs.aux_logits1)
                                                     + loss(outputs.aux_logits2)),
                outputs.logits)
    return loss(outputs), outputs


def build_optimizer(args: argparse.Namespace, model: Any, optim: Any = mg.optim) -> Any:
    """The optimizer of the recipe. `optim` is the module to take it from: minigrad.optim, or
    torch.optim for a PyTorch twin (the benchmarks train both sides with one recipe)."""
    if args.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                         weight_decay=args.weight_decay)
    kind = optim.Adam if args.optimizer == "adam" else optim.AdamW
    return kind(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)


def build_scheduler(args: argparse.Namespace, optimizer: Any, steps_per_epoch: int,
                    schedulers: Any = lr_scheduler) -> Any:
    """The recipe's schedule, stepped once per batch; `schedulers` as `optim` above
    (minigrad.optim.lr_scheduler or torch.optim.lr_scheduler)."""
    total = args.epochs * steps_per_epoch
    if args.scheduler == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=total)
    if args.scheduler == "warmup-cosine":
        warmup = min(round(args.warmup_epochs * steps_per_epoch), total - 1)
        if warmup < 1:
            return schedulers.CosineAnnealingLR(optimizer, T_max=total)
        return schedulers.SequentialLR(optimizer, [
            schedulers.LinearLR(optimizer, start_factor=1 / warmup, total_iters=warmup),
            schedulers.CosineAnnealingLR(optimizer, T_max=total - warmup)],
            milestones=[warmup])
    if args.scheduler == "onecycle":
        return schedulers.OneCycleLR(optimizer, max_lr=args.lr, total_steps=total)
    return None


class Running:
    """Sums over the batches of an epoch so far: loss, correct predictions, images, seconds."""

    def __init__(self, state: dict[str, float] | None = None) -> None:
        state = state or {}
        self.loss = float(state.get("loss", 0.0))
        self.correct = int(state.get("correct", 0))
        self.seen = int(state.get("seen", 0))
        self.seconds = float(state.get("seconds", 0.0))

    def add(self, loss: float, correct: int, n: int) -> None:
        self.loss += loss * n
        self.correct += correct
        self.seen += n

    def state_dict(self) -> dict[str, float]:
        return {"loss": self.loss, "correct": self.correct, "seen": self.seen,
                "seconds": self.seconds}

    def summary(self) -> tuple[float, float]:
        """(mean loss, accuracy) so far."""
        return self.loss / max(self.seen, 1), self.correct / max(self.seen, 1)


def evaluate(model: nn.Module, dataset: Dataset,
             num_classes: int = 10) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and the confusion matrix (rows true, columns predicted). In an
    mpiexec job each rank evaluates every N-th image from its rank on, and the sums are
    combined: the whole test set, once."""
    model.eval()
    ranks = distributed.get_world_size() if distributed.is_initialized() else 1
    if ranks > 1:
        dataset = Subset(dataset, range(distributed.get_rank(), len(dataset), ranks))
    total_loss, confusion = np.zeros(1), np.zeros((num_classes, num_classes), dtype=np.int64)
    with mg.no_grad():
        for images, labels in DataLoader(dataset, batch_size=EVAL_BATCH):
            logits = model(images)
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            predicted = logits.argmax(dim=1).numpy()
            np.add.at(confusion, (labels.numpy(), predicted), 1)
    if ranks > 1:
        distributed.all_reduce_arrays([total_loss, confusion])
    n = int(confusion.sum())
    return float(total_loss[0]) / n, float(np.trace(confusion)) / n, confusion


# ------------------------------------------------------------------------- the run
class Run:
    """One training run: the model, its optimizer and data, and where it has got to."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        if args.backend is not None:
            try:
                mg.set_backend(args.backend)
            except RuntimeError as error:  # CuPy or a GPU missing: the message says which
                raise TrainError(str(error)) from None
        mg.manual_seed(args.seed)
        self.train_set, self.test_set = load_data(args)
        self.model = MODELS[args.model](args.image_size)
        self.world = distributed.get_world_size() if distributed.is_initialized() else 1
        augment = build_augmentation(args, self.test_set)
        if self.world > 1:
            # rank 0's weights go to all; each rank draws its own dropout masks
            self.model = nn.parallel.DistributedDataParallel(
                nn.SyncBatchNorm.convert_sync_batchnorm(self.model))
            mg.manual_seed(np.random.SeedSequence([args.seed, distributed.get_rank()])
                           .generate_state(1)[0])
            self.loader = DataLoader(self.train_set, args.batch_size // self.world,
                                     seed=args.seed, transform=augment,
                                     sampler=DistributedSampler(self.train_set, seed=args.seed))
        else:
            self.loader = DataLoader(self.train_set, args.batch_size, shuffle=True,
                                     seed=args.seed, transform=augment)
        self.optimizer = build_optimizer(args, self.model)
        self.scheduler = build_scheduler(args, self.optimizer, len(self.loader))
        self.epoch, self.batch, self.running = 0, 0, Running()
        self.history: list[dict[str, float]] = []
        self.out = Path(args.out)
        self.stop_requested = False
        self.confusion: np.ndarray | None = None  # of the last evaluation

    # ---- checkpoints
    @property
    def net(self) -> nn.Module:
        """The model itself, outside DistributedDataParallel: what checkpoints hold."""
        return getattr(self.model, "module", self.model)

    def checkpoint(self) -> dict[str, Any]:
        """The run's state; in an mpiexec job every rank's generator too (rank order)."""
        rng = generator().bit_generator.state
        state = {"recipe": {k: getattr(self.args, k) for k in (*RECIPE, "epochs")},
                 "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                 "epoch": self.epoch, "batch": self.batch, "running": self.running.state_dict(),
                 "history": self.history, "rng": rng}
        if self.world > 1:
            state["world_size"] = self.world
            state["rng_ranks"] = distributed.all_gather_object(rng)
        return state

    def save_checkpoint(self) -> Path:
        """Write checkpoint.npz (rank 0; in a job every rank takes part in gathering it)."""
        path = self.out / "checkpoint.npz"
        state = self.checkpoint()
        if self.is_main:
            mg.save(state, path)
        return path

    @property
    def is_main(self) -> bool:
        """Whether this process prints and writes: the only one, or rank 0 of a job."""
        return self.world == 1 or distributed.get_rank() == 0

    def resume(self, path: str) -> None:
        try:
            state = mg.load(path)
        except (OSError, ValueError) as error:
            raise TrainError(f"cannot resume: {error}") from None
        if not isinstance(state, dict) or "recipe" not in state or "model" not in state:
            raise TrainError(f"cannot resume: {path} is not a minigrad-train checkpoint")
        _check_recipe(state["recipe"], self.args, path)
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.world:
            raise TrainError(f"cannot resume from {path}: it was trained by {saved_world} "
                             f"process(es), this run has {self.world}; resume under the same "
                             f"`mpiexec -n {saved_world}`")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self.running = Running(state["running"])
        self.history = list(state["history"])
        generator().bit_generator.state = (state["rng"] if self.world == 1 else
                                           state["rng_ranks"][distributed.get_rank()])

    # ---- training
    def train_epoch(self, progress: Any) -> bool:
        """Train the rest of the current epoch; False if Ctrl-C stopped it part-way."""
        self.model.train()
        started = time.perf_counter() - self.running.seconds
        for images, labels in self.loader.batches(self.epoch, start=self.batch):
            loss, logits = classification_loss(self.model(images), labels,
                                               self.args.label_smoothing)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            correct = int((logits.argmax(dim=1) == labels).sum().item())
            self.running.add(loss.item(), correct, len(labels))
            self.running.seconds = time.perf_counter() - started
            self.batch += 1
            mean_loss, accuracy = self.running.summary()
            progress.set_postfix(loss=f"{mean_loss:.4f}", acc=f"{100 * accuracy:.1f}%",
                                 img_s=f"{self.running.seen / self.running.seconds:.0f}",
                                 refresh=False)
            progress.update()
            if self.stop_requested:
                return False
        return True

    def finish_epoch(self) -> str:
        """Evaluate, record the epoch in the history, and return its one-line summary."""
        if self.world > 1:  # the epoch's sums over every rank's share
            sums = np.array([self.running.loss, self.running.correct, self.running.seen])
            distributed.all_reduce_arrays([sums])
            self.running.loss = float(sums[0])
            self.running.correct, self.running.seen = int(sums[1]), int(sums[2])
        train_loss, train_accuracy = self.running.summary()
        test_loss, test_accuracy, self.confusion = evaluate(self.model, self.test_set)
        self.history.append({"epoch": self.epoch + 1, "train_loss": train_loss,
                             "train_accuracy": train_accuracy, "test_loss": test_loss,
                             "test_accuracy": test_accuracy, "seconds": self.running.seconds,
                             "lr": self.optimizer.param_groups[0]["lr"]})
        self.epoch, self.batch, self.running = self.epoch + 1, 0, Running()
        return (f"epoch {self.epoch}/{self.args.epochs}  train loss {train_loss:.4f} "
                f"acc {100 * train_accuracy:.2f}%  test loss {test_loss:.4f} "
                f"acc {100 * test_accuracy:.2f}%  {self.history[-1]['seconds']:.1f} s")

    def write_metrics(self) -> None:
        last = self.history[-1] if self.history else {}
        metrics = {"args": vars(self.args), "history": self.history,
                   "epochs_completed": self.epoch,
                   "test_accuracy": last.get("test_accuracy"),
                   "best_test_accuracy": max((h["test_accuracy"] for h in self.history),
                                             default=None),
                   "train_seconds": sum(h["seconds"] for h in self.history),
                   "backend": mg.get_backend(), "world_size": self.world,
                   "versions": versions()}
        text = json.dumps(metrics, indent=2) + "\n"
        write_atomically(self.out / "metrics.json", lambda f: f.write(text.encode()))

    def write_plots(self) -> list[Path]:
        from minigrad import plots

        title = f"{self.args.model} on {self.args.dataset}"
        curves, confusion = self.out / "curves.png", self.out / "confusion.png"
        plots.plot_curves(self.history, curves, title)
        accuracy = 100 * self.history[-1]["test_accuracy"]
        plots.plot_confusion(self.confusion, self.test_set.classes, confusion,
                             f"{title}: test accuracy {accuracy:.2f}%")
        return [curves, confusion]


def _check_recipe(saved: dict[str, Any], args: argparse.Namespace, path: str) -> None:
    """Refuse to resume with different settings: the result would match neither run."""
    keys = [k for k in RECIPE if k != "warmup_epochs" or args.scheduler == "warmup-cosine"]
    if args.scheduler != "none":
        keys.append("epochs")
    differ = [f"--{k.replace('_', '-')} {saved.get(k, OLD_DEFAULTS.get(k))!r} (now "
              f"{getattr(args, k)!r})"
              for k in keys if saved.get(k, OLD_DEFAULTS.get(k)) != getattr(args, k)]
    if differ:
        raise TrainError(f"cannot resume from {path}: it was trained with "
                         f"{', '.join(differ)}; repeat the original arguments")


def versions() -> dict[str, str]:
    found = {"minigrad": mg.__version__, "numpy": np.__version__,
             "python": platform.python_version()}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        found["numba"] = importlib.metadata.version("numba")
    return found


def train(args: argparse.Namespace) -> int:
    """Run the training described by `args`; the exit status (0, or 130 after Ctrl-C)."""
    from tqdm.auto import tqdm

    run = Run(args)
    if args.resume:
        run.resume(args.resume)
    say = print if run.is_main else _silent
    if run.is_main:
        run.out.mkdir(parents=True, exist_ok=True)
    say(f"{PROG}: {args.model} on {args.dataset} ({len(run.train_set)} train / "
        f"{len(run.test_set)} test images), {args.optimizer} lr {args.lr}, backend "
        f"{mg.get_backend()}" + (f", {run.world} processes" if run.world > 1 else "")
        + f", from epoch {run.epoch + 1}" + (f" batch {run.batch + 1}" if run.batch else ""))

    def request_stop(signum: int, frame: Any) -> None:
        run.stop_requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops now

    # In a job, Ctrl-C reaches every rank mid-collective: it ends the job (distributed's hook).
    previous = signal.signal(signal.SIGINT, request_stop) if run.world == 1 else None
    try:
        while run.epoch < args.epochs:
            with tqdm(total=len(run.loader), initial=run.batch, unit="batch", leave=False,
                      desc=f"epoch {run.epoch + 1}/{args.epochs}", dynamic_ncols=True,
                      disable=not run.is_main) as bar:
                completed = run.train_epoch(bar)
            if not completed:
                path = run.save_checkpoint()
                print(f"{PROG}: interrupted in epoch {run.epoch + 1} after batch {run.batch}; "
                      f"saved {path}. Continue with: --resume {path}", file=sys.stderr)
                return INTERRUPTED
            say(run.finish_epoch(), flush=True)
            run.save_checkpoint()
            if run.is_main:
                run.write_metrics()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return _final_outputs(run)


def _silent(*args: Any, **kwargs: Any) -> None:
    """`print` on ranks other than 0."""


def _final_outputs(run: Run) -> int:
    if run.confusion is None:  # resumed from a finished run
        _, _, run.confusion = evaluate(run.model, run.test_set)
    if not run.is_main:
        return 0
    run.write_metrics()
    try:
        written = run.write_plots()
    except ImportError as error:
        print(f"{PROG}: no plots: {error}", file=sys.stderr)
        written = []
    names = ", ".join(p.name for p in [Path("metrics.json"), Path("checkpoint.npz"), *written])
    print(f"{PROG}: test accuracy {100 * run.history[-1]['test_accuracy']:.2f}% after "
          f"{run.epoch} epochs; wrote {names} to {run.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    in_job = mpi_world_size() > 1
    try:
        if in_job:
            _join_job(args)
        return train(args)
    except (TrainError, FileNotFoundError, datasets.DatasetError, ImportError,
            distributed.MismatchError) as error:
        if in_job:  # the other ranks may be waiting in a collective: end them too
            distributed.abort(error, message=f"{PROG}: error: {error}")
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1


def mpi_world_size() -> int:
    """The number of processes mpiexec started (1 outside mpiexec)."""
    for name in MPI_SIZE_VARIABLES:
        if os.environ.get(name, "").strip().isdigit():
            return int(os.environ[name])
    return 1


def share_cores() -> int:
    """Give this rank its share of the machine's cores, for minigrad's workers and BLAS alike,
    and return it. OpenBLAS starts a thread per core in every process: two ranks on two cores
    would run four threads whose spin-waits take the cores from each other (a resnet20 step
    took 6x longer)."""
    from minigrad.backends.numba_workers import worker_count  # the variable's reader

    try:
        if "MINIGRAD_NUM_THREADS" not in os.environ:  # worker_count(): this process's cores
            share = max(1, worker_count() // distributed.local_world_size())
            os.environ["MINIGRAD_NUM_THREADS"] = str(share)
        threads = worker_count()
    except ValueError as error:
        raise TrainError(str(error)) from None
    threadpoolctl.threadpool_limits(threads)
    return threads


def _join_job(args: argparse.Namespace) -> None:
    """Under mpiexec: join the world, share the machine's cores among the ranks on it, and
    refuse ranks started with different arguments."""
    try:
        distributed.init_process_group()
    except RuntimeError as error:  # no mpi4py
        raise TrainError(str(error)) from None
    share_cores()
    everyone = distributed.all_gather_object(
        {k: v for k, v in vars(args).items() if k not in PER_RANK})
    for rank, theirs in enumerate(everyone):
        differ = [f"--{k.replace('_', '-')} {theirs.get(k)!r} where rank 0 has {v!r}"
                  for k, v in everyone[0].items() if theirs.get(k) != v]
        if differ:
            raise distributed.MismatchError(f"rank {rank} was started with "
                                            f"{', '.join(differ)}; start every rank alike")
    ranks = distributed.get_world_size()
    if args.batch_size % ranks:
        raise distributed.MismatchError(
            f"--batch-size {args.batch_size} is the global batch and must divide evenly "
            f"over the {ranks} processes")


if __name__ == "__main__":
    sys.exit(main())
