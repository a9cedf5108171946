"""Whole models on each minigrad backend against PyTorch (CPU or GPU): time per step, memory.

Three cases, each one call a user makes in a training or evaluation loop:

  simple_cnn train    SimpleCNN, batch 64 of 1x28x28, train mode (dropout on): forward,
                      cross-entropy, backward, SGD(lr=0.01, momentum=0.9) step.
  resnet20 train      resnet20, batch 32 of 3x32x32, train mode (BatchNorm on batch statistics,
                      running statistics updated): the same training step.
  simple_cnn infer    SimpleCNN, batch 256 of 1x28x28, eval mode under no_grad: forward only.

`--zoo [MODELS]` times the article's landmark architectures instead: for each of lenet5,
alexnet, vgg16, googlenet, resnet18, resnet50, efficientnet_b0 and vit_b_16 (or the ones named),
inference at batch 1 and 32 and a training step at batch 32, at 224x224 (LeNet-5 at 28x28),
against torchvision's model of the same name on PyTorch (lenet5: its twin), on Numba alone
unless --backends says otherwise. GoogLeNet trains on its logits plus 0.3 times each auxiliary
head's loss, as its paper does; dropout and stochastic depth are off for the checked step.

`--small [MODELS]` times the small-image forms the training CLI trains (minigrad.train.MODELS:
greyscale 28x28, 32x32 for VGG, 10 classes): inference at batch 1 and a training step at batch
64, against their PyTorch twins (minigrad.testing.torch_models.torch_small_image_model).

Both sides start from the same weights (minigrad's initialisation, copied into the PyTorch model
through its state dict) and see the same random float32 data and int64 labels. Before timing,
one step per library is checked: its loss (with dropout switched off for that one step, since the
two libraries draw different masks) must agree with PyTorch's to 1e-4 relative; inference
compares the logits instead. Then each library runs the case in alternating blocks (library A,
pause, library B, pause, ...) and the table shows the median time per step, images per second
and the ratio to PyTorch (> 1: slower).

Peak memory is measured apart, in one fresh subprocess per (case, library), so that one
library's allocations cannot raise another's high-water mark: the peak RSS (VmHWM on Linux,
where `ru_maxrss` would carry the parent's peak over exec; `ru_maxrss` elsewhere) after setup
(imports, model, optimizer, data, Numba's kernels loaded) and after a few steps; the table shows
the peak and the growth from setup to peak, each with its ratio to PyTorch's. The PyTorch
subprocess never imports minigrad's backends (so neither their libraries nor minigrad's malloc
tuning), and uses PyTorch's own initialisation: the weights' values do not change the memory.

`--device cuda` times minigrad's cupy backend alone (exit status 2 where it cannot run) against
PyTorch on the GPU (model and data moved with `.to("cuda")`, TF32 turned off). Instead of peak
RSS it reports GPU memory per case, in this process after the timed steps: the size of CuPy's
default memory pool (it keeps freed blocks, so this is its high-water mark) and PyTorch's
`torch.cuda.max_memory_reserved()`, both reset before each case.

Run it from the repository root:

    .venv/bin/python benchmarks/models.py            # full run, a few minutes
    .venv/bin/python benchmarks/models.py --quick    # smoke run
    .venv/bin/python benchmarks/models.py --profile  # cProfile of 10 numba resnet20 steps
    .venv/bin/python benchmarks/models.py --device cuda  # cupy against PyTorch CUDA
    .venv/bin/python benchmarks/models.py --zoo --no-memory  # the landmark models, ~1 hour
    .venv/bin/python benchmarks/models.py --zoo resnet18,vit_b_16 --quick
    .venv/bin/python benchmarks/models.py --small --no-memory  # the CLI's small-image forms

Without PyTorch installed minigrad's backends are timed alone (no ratios, no checks).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from bench_common import (
    add_device_flag,
    minigrad_backends,
    print_gpu,
    print_machine,
    print_table,
    time_block,
    torch_on,
    warm_up_numba,
)

from minigrad.testing.torch_models import (
    torch_lenet5,
    torch_resnet20,
    torch_simple_cnn,
    torch_small_image_model,
    torchvision_model,
)
from minigrad.train import MIN_IMAGE_SIZE, MODELS

SEED = 0
LR, MOMENTUM = 0.01, 0.9
LOSS_TOLERANCE = 1e-4  # relative, on the loss of the checked step
LOGITS_TOLERANCE = 1e-4  # max |diff| / max |reference|, inference logits
RSS_FLAG = "--rss-probe"  # internal: the subprocess that measures one (case, library)
TORCH = "pytorch"


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # "simple_cnn", "resnet20", or a minigrad.models builder with a torchvision twin
    batch: int
    image: tuple[int, int, int]
    train: bool
    classes: int = 10
    small: bool = False  # the training CLI's small-image form of `model` (minigrad.train.MODELS)


CASES = [
    Case("simple_cnn train", "simple_cnn", 64, (1, 28, 28), train=True),
    Case("resnet20 train", "resnet20", 32, (3, 32, 32), train=True),
    Case("simple_cnn infer", "simple_cnn", 256, (1, 28, 28), train=False),
]

# `--zoo`: the article's landmark architectures at their published input size (LeNet-5: 28x28,
# which its first conv pads to the paper's 32x32), each against
# torchvision's model of the same name (lenet5 against its twin in minigrad.testing).
ZOO = {"lenet5": (1, 28, 28), "alexnet": (3, 224, 224), "vgg16": (3, 224, 224),
       "googlenet": (3, 224, 224), "resnet18": (3, 224, 224), "resnet50": (3, 224, 224),
       "efficientnet_b0": (3, 224, 224), "vit_b_16": (3, 224, 224)}


def zoo_cases(models: Sequence[str]) -> list[Case]:
    """Inference at batch 1 and 32, and a training step at batch 32, per model."""
    cases = []
    for model in models:
        image, classes = ZOO[model], 10 if model == "lenet5" else 1000
        cases += [Case(f"{model} infer 1", model, 1, image, train=False, classes=classes),
                  Case(f"{model} infer 32", model, 32, image, train=False, classes=classes),
                  Case(f"{model} train 32", model, 32, image, train=True, classes=classes)]
    return cases


# `--small`: the training CLI's small-image forms, greyscale, at the side each needs.
SMALL = list(MODELS)


def small_cases(models: Sequence[str]) -> list[Case]:
    """Inference at batch 1 and a training step at batch 64, per small-image form."""
    cases = []
    for model in models:
        image = (1, MIN_IMAGE_SIZE.get(model, 28), MIN_IMAGE_SIZE.get(model, 28))
        cases += [Case(f"{model} small infer 1", model, 1, image, train=False, small=True),
                  Case(f"{model} small train 64", model, 64, image, train=True, small=True)]
    return cases


def make_data(case: Case) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((case.batch, *case.image), dtype=np.float32)
    y = rng.integers(0, case.classes, size=case.batch).astype(np.int64)
    return x, y


@dataclass
class Runner:
    """One library set up for one case: `step()` runs one training step (or one inference),
    `sync()` waits for queued GPU work, `dropout(on)` switches dropout for the checked step."""
    name: str
    step: Callable[[], Any]  # returns the loss (train) or the logits (inference)
    to_numpy: Callable[[Any], np.ndarray]
    dropout: Callable[[bool], None]
    context: Callable[[], contextlib.AbstractContextManager]
    sync: Callable[[], None]


def no_sync() -> None:
    pass


def build_minigrad_model(case: Case) -> Any:
    import minigrad as mg
    from minigrad import models

    mg.manual_seed(SEED)
    if case.small:
        model = MODELS[case.model](case.image[-1])
    elif case.model == "simple_cnn":
        model = models.SimpleCNN()
    else:
        model = getattr(models, case.model)()
    if case.model.startswith("vit"):  # its head starts at zero: all logits 0, nothing to check
        mg.nn.init.normal_(model.heads.head.weight, std=0.01)
    return model.train(case.train)


def build_torch_model(torch: Any, case: Case) -> Any:
    if case.small:
        return torch_small_image_model(torch, case.model, image_size=case.image[-1])
    if case.model == "simple_cnn":
        return torch_simple_cnn(torch)
    if case.model == "resnet20":
        return torch_resnet20(torch)
    if case.model == "lenet5":
        return torch_lenet5(torch)
    return torchvision_model(torch, case.model)


def loss_of(F: Any, out: Any, y: Any) -> Any:
    """Cross-entropy; GoogLeNet in training also returns its two auxiliary heads' logits, which
    its paper (and torchvision's recipe) add to the loss with weight 0.3."""
    if isinstance(out, tuple):
        return F.cross_entropy(out[0], y) + 0.3 * (F.cross_entropy(out[1], y)
                                                   + F.cross_entropy(out[2], y))
    return F.cross_entropy(out, y)


def random_layers(model: Any) -> list[Any]:
    """The layers that draw random numbers in training (the two libraries' draws differ)."""
    return [m for m in model.modules() if type(m).__name__ in ("Dropout", "StochasticDepth")]


def minigrad_runner(case: Case, backend: str, state: dict[str, np.ndarray] | None) -> Runner:
    """`state`: the weights to start from (minigrad's own initialisation when None)."""
    import minigrad as mg
    import minigrad.nn.functional as mgF

    sync = no_sync
    if backend == "cupy":
        import cupy

        sync = cupy.cuda.Device().synchronize
    x_np, y_np = make_data(case)
    with mg.backend(backend):
        model = build_minigrad_model(case)
        if state is not None:
            model.load_state_dict(state)
        if backend == "cupy":
            model.to("cupy")
        x, y = mg.tensor(x_np), mg.tensor(y_np)
        optimizer = mg.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    dropouts = random_layers(model)

    def train_step() -> Any:
        optimizer.zero_grad()
        loss = loss_of(mgF, model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    def infer() -> Any:
        with mg.no_grad():
            return model(x)

    def dropout(on: bool) -> None:
        for m in dropouts:
            m.train(on and case.train)

    return Runner(backend, train_step if case.train else infer,
                  lambda t: np.asarray(t.numpy()),  # a host array on every backend
                  dropout, lambda: mg.backend(backend), sync)


def torch_runner(torch: Any, case: Case, state: dict[str, np.ndarray] | None,
                 device: str = "cpu") -> Runner:
    model = build_torch_model(torch, case)
    if state is not None:
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    model.to(device).train(case.train)
    x_np, y_np = make_data(case)
    x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    dropouts = random_layers(model)

    def train_step() -> Any:
        optimizer.zero_grad()
        loss = loss_of(torch.nn.functional, model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    def infer() -> Any:
        with torch.no_grad():
            return model(x)

    def dropout(on: bool) -> None:
        for m in dropouts:
            m.train(on and case.train)

    return Runner(TORCH, train_step if case.train else infer, lambda t: t.detach().cpu().numpy(),
                  dropout, contextlib.nullcontext,
                  torch.cuda.synchronize if device == "cuda" else no_sync)


def import_torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


# ------------------------------------------------------------------------------ checks and timing


@dataclass
class Result:
    check: dict[str, str]  # library -> the checked value and its agreement
    ok: bool
    times: dict[str, list[float]]
    gpu_mib: dict[str, float]  # --device cuda: library -> GPU memory after the timed steps


def check_step(case: Case, runners: list[Runner]) -> tuple[dict[str, str], bool]:
    """One step per library, dropout off: the loss (train) or the logits (inference), compared
    with the last runner (PyTorch when installed). The step also updates the weights, the same
    on every side, so the timed steps start from the same place too."""
    values = {}
    for runner in runners:
        runner.dropout(False)
        with runner.context():
            out = runner.to_numpy(runner.step())
        runner.sync()
        runner.dropout(True)
        values[runner.name] = out.astype(np.float64)
    reference = values[runners[-1].name]
    report, ok = {}, True
    for name, value in values.items():
        if case.train:
            err = abs(float(value) - float(reference)) / abs(float(reference))
            report[name] = f"loss {float(value):.7f} (rel diff {err:.1e})"
            ok &= err <= LOSS_TOLERANCE
        else:
            err = float(np.max(np.abs(value - reference)) / np.max(np.abs(reference)))
            report[name] = f"logits max |diff| / max |ref| {err:.1e}"
            ok &= err <= LOGITS_TOLERANCE
    return report, ok


def time_case(runners: list[Runner], rounds: int, block_s: float, pause: float,
              warmup: int) -> dict[str, list[float]]:
    """Alternating blocks: lib 1, pause, lib 2, pause, ... for `rounds` rounds. Each block runs
    about `block_s` seconds of steps (at least 2), sized from the library's untimed warmup."""
    calls = {}
    for runner in runners:
        with runner.context():
            start = time.perf_counter()
            for _ in range(max(warmup, 1)):
                runner.step()
            runner.sync()
            per_step = (time.perf_counter() - start) / max(warmup, 1)
        calls[runner.name] = max(2, round(block_s / per_step))
    times: dict[str, list[float]] = {r.name: [] for r in runners}
    for _ in range(rounds):
        for runner in runners:
            time.sleep(pause)  # lets the other library's idle BLAS/OpenMP threads go to sleep

            def step(runner: Runner = runner) -> None:
                runner.step()
                runner.sync()

            with runner.context():
                times[runner.name] += time_block(step, calls[runner.name], warmup)
    return times


def run_case(torch: Any, case: Case, backends: list[str], rounds: int, block_s: float,
             pause: float, warmup: int, device: str = "cpu") -> Result:
    if device == "cuda":
        reset_gpu_memory(torch)
    state = {k: v.numpy().copy() for k, v in build_minigrad_model(case).state_dict().items()}
    runners = [minigrad_runner(case, name, state) for name in backends]
    if torch is not None:
        runners.append(torch_runner(torch, case, state, device))
    check, ok = check_step(case, runners)
    times = time_case(runners, rounds, block_s, pause, warmup)
    return Result(check, ok, times, gpu_memory_mib(torch) if device == "cuda" else {})


# ------------------------------------------------------------------------------ GPU memory


def reset_gpu_memory(torch: Any) -> None:
    """Free what the last case left in CuPy's pool and PyTorch's cache; restart PyTorch's peak."""
    import cupy

    gc.collect()  # the last case's models and graphs, if a reference cycle still holds them
    cupy.get_default_memory_pool().free_all_blocks()
    if torch is not None:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def gpu_memory_mib(torch: Any) -> dict[str, float]:
    """CuPy's default pool size (its high-water mark: it keeps freed blocks) and PyTorch's peak
    reserved memory, MiB."""
    import cupy

    mib = {"cupy": cupy.get_default_memory_pool().total_bytes() / 2**20}
    if torch is not None:
        mib[TORCH] = torch.cuda.max_memory_reserved() / 2**20
    return mib


# ------------------------------------------------------------------------------ peak memory


def max_rss_mib() -> float:
    """This process's peak resident set size, MiB. On Linux it is VmHWM from /proc/self/status:
    `getrusage(RUSAGE_SELF).ru_maxrss` keeps the high-water mark of the process that forked us
    across exec (so a subprocess of this benchmark would report the parent's peak); VmHWM
    belongs to the new address space. Elsewhere, ru_maxrss."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def rss_probe(case_name: str, library: str, steps: int) -> None:
    """In a fresh process: set up one library for one case, run `steps` steps, print JSON."""
    case = next(c for c in CASES + zoo_cases(list(ZOO)) + small_cases(SMALL)
                if c.name == case_name)
    if library == TORCH:
        import torch

        runner = torch_runner(torch, case, None)
    else:
        import minigrad as mg

        mg.set_backend(library)
        if library == "numba":
            mg.backends.load("numba").warmup()
        runner = minigrad_runner(case, library, None)
    setup = max_rss_mib()
    with runner.context():
        for _ in range(steps):
            runner.step()
        runner.sync()
    print(json.dumps({"setup": setup, "peak": max_rss_mib()}))


def measure_rss(case: Case, library: str, steps: int) -> dict[str, float] | str:
    done = subprocess.run([sys.executable, os.path.abspath(__file__), RSS_FLAG, case.name,
                           library, str(steps)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return f"failed: {done.stderr.strip().splitlines()[-1:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ printing


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def print_times(cases: list[Case], results: dict[str, Result], libraries: list[str]) -> None:
    rows = []
    for case in cases:
        if case.name not in results:
            continue
        times = results[case.name].times
        medians = {name: statistics.median(times[name]) for name in libraries}
        for name in libraries:
            ratio = (f"{medians[name] / medians[TORCH]:.2f}x" if TORCH in medians else "-")
            rows.append((case.name, name, ms(medians[name]), f"{case.batch / medians[name]:.0f}",
                         f"{min(times[name]) * 1e3:.1f}-{max(times[name]) * 1e3:.1f}",
                         str(len(times[name])), ratio))
    print_table(("case", "backend", "median ms", "images/s", "range ms", "steps",
                 "ratio to PyTorch"), rows)


def print_memory(cases: list[Case], memory: dict[str, dict[str, dict[str, float] | str]],
                 libraries: list[str]) -> None:
    rows = []
    for case in cases:
        if case.name not in memory:
            continue
        per_lib = memory[case.name]
        ref = per_lib.get(TORCH)
        for name in libraries:
            entry = per_lib[name]
            if isinstance(entry, str):
                rows.append((case.name, name, entry, "", "", "", ""))
                continue
            growth = entry["peak"] - entry["setup"]
            ratio_peak = ratio_growth = "-"
            if isinstance(ref, dict):
                ratio_peak = f"{entry['peak'] / ref['peak']:.2f}x"
                ref_growth = ref["peak"] - ref["setup"]
                ratio_growth = f"{growth / ref_growth:.2f}x" if ref_growth > 0 else "-"
            rows.append((case.name, name, f"{entry['setup']:.0f}", f"{entry['peak']:.0f}",
                         ratio_peak, f"{growth:.0f}", ratio_growth))
    print_table(("case", "library", "after setup MiB", "peak MiB", "peak / PyTorch",
                 "steps' growth MiB", "growth / PyTorch"), rows)


def print_gpu_memory(results: dict[str, Result], libraries: list[str]) -> None:
    rows = []
    for name, result in results.items():
        ref = result.gpu_mib.get(TORCH)
        for library in libraries:
            mib = result.gpu_mib[library]
            rows.append((name, library, f"{mib:.0f}", f"{mib / ref:.2f}x" if ref else "-"))
    print_table(("case", "library", "GPU MiB", "/ PyTorch"), rows)


def profile_numba_resnet(steps: int = 10, top: int = 12) -> None:
    import minigrad as mg

    mg.backends.load("numba").warmup()
    case = next(c for c in CASES if c.model == "resnet20")
    runner = minigrad_runner(case, "numba", None)
    with runner.context():
        for _ in range(2):
            runner.step()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(steps):
            runner.step()
        profiler.disable()
    print(f"cProfile of {steps} numba resnet20 training steps (batch {case.batch}), "
          f"top {top} by own time:")
    pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(top)
    pstats.Stats(profiler).strip_dirs().sort_stats("cumulative").print_stats(top)


# ------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer, shorter blocks")
    parser.add_argument("--profile", action="store_true",
                        help="only print a cProfile of 10 numba resnet20 training steps")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--zoo", nargs="?", const=",".join(ZOO), metavar="MODELS",
                        help="time the landmark architectures instead (comma-separated, default "
                             "all: " + ", ".join(ZOO) + ") at their published input size")
    parser.add_argument("--small", nargs="?", const=",".join(SMALL), metavar="MODELS",
                        help="time the training CLI's small-image forms instead (comma-"
                             "separated, default all: " + ", ".join(SMALL) + ")")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 5; 2 with --quick)")
    parser.add_argument("--backends", help="comma-separated minigrad backends to time (default: "
                                           "every one that runs here; numba alone with --zoo)")
    add_device_flag(parser)
    parser.add_argument(RSS_FLAG, nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_probe:
        case_name, library, steps = args.rss_probe
        rss_probe(case_name, library, int(steps))
        return 0


    if args.profile:
        profile_numba_resnet()
        return 0
    rounds, block_s, pause, warmup = (2, 0.3, 0.1, 1) if args.quick else (5, 1.0, 1.0, 1)
    rounds = args.rounds or rounds
    rss_steps = 2 if args.quick else 5
    cuda = args.device == "cuda"
    backends, status = minigrad_backends(args.device)  # cuda: cupy alone
    cases = CASES
    if args.zoo:
        unknown = sorted(set(args.zoo.split(",")) - set(ZOO))
        if unknown:
            parser.error(f"--zoo: unknown models {unknown}; known: {', '.join(ZOO)}")
        cases = zoo_cases(args.zoo.split(","))
    if args.small:
        unknown = sorted(set(args.small.split(",")) - set(SMALL))
        if unknown:
            parser.error(f"--small: unknown models {unknown}; known: {', '.join(SMALL)}")
        cases = small_cases(args.small.split(","))
    if (args.zoo or args.small) and not cuda:
        backends = [name for name in backends if name == "numba"] or backends
    if args.backends:
        backends = [name for name in args.backends.split(",") if name in backends]
    warmup_s = warm_up_numba(backends)
    torch = import_torch()  # before print_machine, which lists the thread pools it loads

    print_machine()
    torch = torch_on(torch, args.device)  # None where it cannot run on the device
    if cuda:
        print_gpu()
    for name, state in status.items():
        print(f"  backend {name}: {state}")
    if "numba" in backends:
        print(f"numba warmup() took {warmup_s:.3f} s")
    print(f"timing: {rounds} rounds of alternating blocks (~{block_s} s each, {pause} s pauses), "
          f"median per step; {'quick' if args.quick else 'full'} run")
    print()

    libraries = backends + ([TORCH] if torch is not None else [])
    results: dict[str, Result] = {}
    all_ok = True
    for case in cases:
        result = run_case(torch, case, backends, rounds, block_s, pause, warmup, args.device)
        results[case.name] = result
        all_ok &= result.ok
        print(f"check {case.name} (one step, dropout off):"
              + ("" if result.ok else "  MISMATCH"))
        for name, text in result.check.items():
            print(f"  {name}: {text}")
    print()
    print_times(cases, results, libraries)

    if cuda:
        print()
        print("GPU memory after each case's timed steps (both reset before each case): CuPy's "
              "default pool size for cupy, torch.cuda.max_memory_reserved() for pytorch; "
              "peak RSS not measured on cuda")
        print_gpu_memory(results, libraries)
    elif not args.no_memory:
        print()
        print(f"peak RSS (VmHWM), one fresh subprocess per (case, library): after setup, and "
              f"after {rss_steps} steps")
        memory = {case.name: {name: measure_rss(case, name, rss_steps) for name in libraries}
                  for case in cases}
        print_memory(cases, memory, libraries)
    if not all_ok:
        print("\nsome checks failed: minigrad and PyTorch disagree (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
