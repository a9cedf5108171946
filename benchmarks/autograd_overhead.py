"""minigrad against PyTorch (CPU): time per MLP training step and per recorded autograd op.

Two workloads, each run by minigrad and by PyTorch in float32 from identical starting values:

  mlp_step      one SGD training step of a 784-256-128-10 MLP on a batch of 64: forward
                (x @ W1 + b1, relu, @ W2 + b2, relu, @ W3 + b3), cross-entropy built from ops
                (log_softmax, pick each row's target with indexing, mean, negate), backward,
                and `p -= lr * p.grad; p.grad = None` for the six parameters under no_grad.
                Mostly matmul time, plus the overhead of about 25 small ops.
  scalar_chain  10,000 elementwise ops on a 0-d tensor (`y = y * a + b`, 5,000 times), then
                backward. The arrays are trivial, so this is almost pure per-op overhead:
                graph recording in forward, the engine's walk in backward.

Each workload is written once (`mlp_loss`, `train_step`, `scalar_chain`) against the
PyTorch-shaped API that both libraries share, and called with `lib=minigrad` or `lib=torch`.

Before timing, the script checks that both libraries agree: the MLP loss (to 1e-4) and the
gradients from the same weights and batch, and the chain's value and gradient. It then prints
the medians of many timed calls per library and their ratio, plus the library versions and
thread counts. Without PyTorch it times minigrad alone.

Run it from the repository root:

    .venv/bin/python benchmarks/autograd_overhead.py           # full run, about 30 s
    .venv/bin/python benchmarks/autograd_overhead.py --quick   # smoke run, a few seconds

Both libraries run with their default thread counts (printed at the top). On a small machine
that is busy with something else, a 2-thread matmul waits for a core and the MLP times jump;
`OMP_NUM_THREADS=1` in front of the command pins numpy's OpenBLAS and PyTorch to one thread each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from bench_common import print_machine, print_table, print_torch, quantile, time_block

import minigrad as mg

try:
    import torch
except ImportError:  # the benchmark still times minigrad on its own
    torch = None

SIZES = (784, 256, 128, 10)
BATCH = 64
LR = 0.01
CHAIN_OPS = 10_000  # two ops (mul, add) per step of the chain
CHAIN_SCALE, CHAIN_SHIFT = 0.9999, 0.0001  # keeps y near 1 and the gradient far from 0
SEED = 0


# ---------------------------------------------------------------------------- the workloads
# `lib` is the `minigrad` or the `torch` module: everything below is API the two share.


def mlp_loss(lib: Any, params: Sequence[Any], x: Any, targets: Any) -> Any:
    """Mean cross-entropy of the MLP on one batch, built from elementary ops."""
    w1, b1, w2, b2, w3, b3 = params
    h = (x @ w1 + b1).relu()
    h = (h @ w2 + b2).relu()
    logp = (h @ w3 + b3).log_softmax(1)
    return -logp[lib.arange(BATCH), targets].mean()


def train_step(lib: Any, params: Sequence[Any], x: Any, targets: Any) -> Any:
    """Forward, backward and a plain SGD update; returns the loss (before the update)."""
    loss = mlp_loss(lib, params, x, targets)
    loss.backward()
    with lib.no_grad():
        for p in params:
            p -= LR * p.grad
            p.grad = None
    return loss


def scalar_chain(x: Any) -> Any:
    """CHAIN_OPS recorded ops starting from the 0-d leaf `x`, then backward into `x.grad`."""
    x.grad = None
    y = x
    for _ in range(CHAIN_OPS // 2):
        y = y * CHAIN_SCALE + CHAIN_SHIFT
    y.backward()
    return y


# ---------------------------------------------------------------------------- shared inputs


@dataclass
class Inputs:
    """The starting values, made by minigrad; each library gets its own copy of them."""

    params: list[mg.Tensor]
    x: mg.Tensor
    targets: mg.Tensor
    chain_start: mg.Tensor


def make_inputs(seed: int) -> Inputs:
    mg.manual_seed(seed)
    params = []
    for fan_in, fan_out in zip(SIZES, SIZES[1:]):
        params.append((mg.randn(fan_in, fan_out) * (2 / fan_in) ** 0.5).requires_grad_())
        params.append((mg.randn(fan_out) * 0.01).requires_grad_())
    return Inputs(
        params=params,
        x=mg.randn(BATCH, SIZES[0]),
        targets=mg.randint(0, SIZES[-1], (BATCH,)),
        chain_start=mg.tensor(0.5, requires_grad=True),
    )


def copy_to(lib: Any, t: mg.Tensor) -> Any:
    """A fresh tensor of `lib` with the same values, dtype and requires_grad as `t`."""
    return lib.tensor(np.array(t.numpy()), requires_grad=t.requires_grad)


def copy_inputs(lib: Any, inputs: Inputs) -> Inputs:
    return Inputs(
        params=[copy_to(lib, p) for p in inputs.params],
        x=copy_to(lib, inputs.x),
        targets=copy_to(lib, inputs.targets),
        chain_start=copy_to(lib, inputs.chain_start),
    )


# ---------------------------------------------------------------------------- correctness


def as_array(t: Any) -> np.ndarray:
    """The values of a minigrad or torch tensor as a NumPy array (via item() for scalars)."""
    return np.array(t.item()) if t.numel() == 1 else np.array(t.detach().numpy())


def max_rel_diff(a: Any, b: Any) -> float:
    a, b = as_array(a), as_array(b)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def check_agreement(inputs: Inputs, tol: float = 1e-4) -> bool:
    """Run both libraries once on their own copies of the same inputs; print the differences."""
    mine, theirs = copy_inputs(mg, inputs), copy_inputs(torch, inputs)
    results = {}
    for name, lib, state in (("minigrad", mg, mine), ("torch", torch, theirs)):
        loss = mlp_loss(lib, state.params, state.x, state.targets)
        loss.backward()
        results[name] = (loss, [p.grad for p in state.params], scalar_chain(state.chain_start),
                         state.chain_start.grad)
    (loss_a, grads_a, y_a, gy_a), (loss_b, grads_b, y_b, gy_b) = results.values()
    diffs = {
        "MLP loss (abs)": abs(loss_a.item() - loss_b.item()),
        "MLP grads (max rel)": max(max_rel_diff(a, b) for a, b in zip(grads_a, grads_b)),
        "chain value (max rel)": max_rel_diff(y_a, y_b),
        "chain grad (max rel)": max_rel_diff(gy_a, gy_b),
    }
    ok = all(d <= tol for d in diffs.values())
    print(f"Correctness (minigrad vs PyTorch, tolerance {tol:g}): {'OK' if ok else 'MISMATCH'}")
    print(f"  MLP loss: minigrad {loss_a.item():.6f}, PyTorch {loss_b.item():.6f}")
    print(f"  chain: y = {y_a.item():.6f} / {y_b.item():.6f}, "
          f"dy/dx = {gy_a.item():.6f} / {gy_b.item():.6f}")
    for what, d in diffs.items():
        print(f"  {what:<22} {d:.2e}")
    return ok


# ---------------------------------------------------------------------------- timing


@dataclass
class Case:
    name: str
    make: Callable[[Any, Inputs], Callable[[], Any]]  # (lib, its inputs) -> the call to time
    repeats: int  # timed calls per library, over all rounds


def cases(quick: bool) -> list[Case]:
    return [
        Case("mlp_step (784-256-128-10, batch 64)",
             lambda lib, s: lambda: train_step(lib, s.params, s.x, s.targets),
             repeats=6 if quick else 100),
        Case(f"scalar_chain ({CHAIN_OPS:,} ops, fwd+bwd)",
             lambda lib, s: lambda: scalar_chain(s.chain_start),
             repeats=3 if quick else 20),
    ]


# Both libraries run in this one process, in alternating blocks (minigrad, pause, torch, pause,
# ... for `rounds` rounds), and each median is over all of a library's blocks. Why not one
# subprocess per library: the machine is shared and noisy, and load that comes and goes would
# land on whichever library happened to be running then; alternating spreads it over both.
# One process also lets both start from the very same minigrad-made arrays and be checked
# against each other. Why the pause: after a block, OpenBLAS (numpy's BLAS, used by minigrad)
# and PyTorch's OpenMP pool keep their idle threads spinning for a while, and on 2 cores those
# spinning threads would slow the other library's next block.
def time_case(case: Case, states: dict[str, tuple[Any, Inputs]], rounds: int, pause: float,
              warmup: int) -> dict[str, list[float]]:
    fns = {name: case.make(lib, state) for name, (lib, state) in states.items()}
    per_block = -(-case.repeats // rounds)  # rounded up: at least `repeats` calls in all
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(pause)
            times[name] += time_block(fn, per_block, warmup)
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def print_results(results: dict[str, dict[str, list[float]]]) -> None:
    rows = []
    for case, times in results.items():
        mine = statistics.median(times["minigrad"])
        if "torch" in times:
            theirs = statistics.median(times["torch"])
            rows.append((case, ms(mine), ms(theirs), f"{mine / theirs:.2f}"))
        else:
            rows.append((case, ms(mine), "n/a", "n/a"))
    print_table(("case", "minigrad (ms)", "PyTorch (ms)", "ratio minigrad/PyTorch"), rows)
    for case, times in results.items():
        spread = ", ".join(f"{name} n={len(t)} IQR {ms(quantile(t, 0.25))}-{ms(quantile(t, 0.75))}"
                           for name, t in times.items())
        print(f"  {case}: {spread} ms")


# ---------------------------------------------------------------------------- environment


def print_environment() -> None:
    print_machine()
    print_torch(torch)


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a fast smoke run: few repeats, short pauses")
    args = parser.parse_args(argv)
    rounds, pause, warmup = (2, 0.1, 1) if args.quick else (4, 1.0, 3)

    print_environment()
    inputs = make_inputs(SEED)
    ok = True
    if torch is not None:
        ok = check_agreement(inputs)
    print()

    libs = {"minigrad": mg} if torch is None else {"minigrad": mg, "torch": torch}
    # Each library gets its own copies (the timed SGD steps change the weights).
    states = {name: (lib, copy_inputs(lib, inputs)) for name, lib in libs.items()}
    results = {case.name: time_case(case, states, rounds, pause, warmup)
               for case in cases(args.quick)}
    print(f"Medians over {rounds} alternating rounds per library "
          f"({'quick smoke run' if args.quick else 'full run'}):")
    print_results(results)
    if torch is None:
        print("Note: PyTorch is not installed, so only minigrad was timed.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
