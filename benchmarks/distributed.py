"""Data-parallel training steps at 1 and 2 ranks, and a model of the speed-up past this machine.

On this machine (2 cores) N ranks cannot train faster than one process on N threads: the
measurement is what MPI data parallelism costs. For SimpleCNN and resnet20 (1x28x28 images,
Adam, global batch 64) it times

  * one process on all the cores (MINIGRAD_NUM_THREADS = cores), batch 64;
  * `mpiexec -n 2`, one thread per rank, 32 images per rank, DistributedDataParallel (and
    SyncBatchNorm for resnet20's BatchNorm), as `mpiexec -n 2 minigrad-train` runs them;

and reports the median step, the share of the step spent in the Allreduces (gradients and
SyncBatchNorm's sums, timed inside minigrad.distributed) and their payload per step (a ring
Allreduce sends 2 (N - 1) / N times the payload from each rank).

Then a model of N machines, one rank each, at a fixed batch per machine (weak scaling):
a step takes the compute measured here plus a ring Allreduce of the gradients,
2 (N - 1) / N x bytes / bandwidth + 2 (N - 1) x latency, not overlapped with the backward;
the speed-up over one machine is N x compute / (compute + allreduce). Run from the repository
root:

    .venv/bin/python benchmarks/distributed.py --json benchmarks/results/distributed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_common import print_machine, print_table

BATCH = 64
MODELS = ("simplecnn", "resnet20")
CHILD = "--child"
# For the model: ResNet-50's parameters (torchvision), and its training step measured on this
# VM (benchmarks/results/zoo.log: batch 32 at 224x224, 6.10 s); resnet20's is measured here.
RESNET50_PARAMETERS, RESNET50_STEP_S, RESNET50_BATCH = 25_557_032, 6.10, 32
GPU_STEP_S = 0.1  # not measured: what a step of a machine 60 times this VM's speed would take
LINKS = {"10 Gbit/s": (10e9 / 8, 20e-6), "100 Gbit/s": (100e9 / 8, 5e-6)}  # bytes/s, latency
NODES = (1, 2, 4, 8, 16, 32, 64)


def child(model_name: str, steps: int) -> None:
    """One rank (or the lone process): time `steps` training steps, print a RESULT line."""
    import minigrad as mg
    import minigrad.distributed as dist
    from minigrad import nn
    from minigrad.train import MODELS as BUILDERS

    ranks = int(os.environ.get("PMI_SIZE", "1"))
    mg.set_backend("numba")
    mg.backends.load("numba").warmup()
    mg.manual_seed(0)
    model = BUILDERS[model_name](28)
    reduce_seconds = [0.0]
    sent = [0]
    if ranks > 1:
        dist.init_process_group()
        original = dist.all_reduce_arrays

        def timed(arrays, average=False):
            start = time.perf_counter()
            original(arrays, average)
            reduce_seconds[0] += time.perf_counter() - start
            sent[0] += sum(a.nbytes for a in arrays)

        dist.all_reduce_arrays = timed
        model = nn.parallel.DistributedDataParallel(
            nn.SyncBatchNorm.convert_sync_batchnorm(model))
    optimizer = mg.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    per_rank = BATCH // ranks
    images = mg.tensor(rng.standard_normal((per_rank, 1, 28, 28)).astype(np.float32))
    labels = mg.tensor(rng.integers(0, 10, per_rank))
    times, shares = [], []
    for step in range(steps + 3):
        if ranks > 1:
            dist.barrier()
        reduce_seconds[0], sent[0] = 0.0, 0
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        elapsed = time.perf_counter() - start
        if step >= 3:  # warm
            times.append(elapsed)
            shares.append(reduce_seconds[0] / elapsed)
    result = {"median_step_s": statistics.median(times), "reduce_share": statistics.median(shares),
              "bytes_per_step": sent[0],
              "parameters": sum(p.numel() for p in model.parameters())}
    if ranks == 1 or dist.get_rank() == 0:
        print("RESULT " + json.dumps(result), flush=True)
    if ranks > 1:
        dist.destroy_process_group()


def run(model: str, ranks: int, steps: int) -> dict:
    cores = len(os.sched_getaffinity(0))
    env = {**os.environ, "MINIGRAD_NUM_THREADS": str(max(1, cores // ranks)),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, os.path.abspath(__file__), CHILD, model, "--steps", str(steps)]
    if ranks > 1:
        command = [str(Path(sys.executable).with_name("mpiexec")), "-n", str(ranks), *command]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def ring_allreduce_s(nbytes: float, nodes: int, bandwidth: float, latency: float) -> float:
    if nodes == 1:
        return 0.0
    return 2 * (nodes - 1) / nodes * nbytes / bandwidth + 2 * (nodes - 1) * latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="alternating 1- and 2-rank runs")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument(CHILD, metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps)
        return 0

    print_machine()
    measured: dict[str, dict[str, list[dict]]] = {m: {"1": [], "2": []} for m in MODELS}
    for _ in range(args.rounds):
        for model in MODELS:
            for ranks in (1, 2):
                measured[model][str(ranks)].append(run(model, ranks, args.steps))
    rows, summary = [], {}
    for model in MODELS:
        one = statistics.median(r["median_step_s"] for r in measured[model]["1"])
        two = statistics.median(r["median_step_s"] for r in measured[model]["2"])
        share = statistics.median(r["reduce_share"] for r in measured[model]["2"])
        sent = measured[model]["2"][0]["bytes_per_step"]
        summary[model] = {"one_process_s": one, "two_ranks_s": two, "reduce_share": share,
                          "bytes_per_step": sent,
                          "parameters": measured[model]["1"][0]["parameters"]}
        rows.append([model, f"{1e3 * one:.1f} ms", f"{1e3 * two:.1f} ms", f"{two / one:.2f}x",
                     f"{100 * share:.0f}%", f"{sent / 1e6:.2f} MB"])
    print(f"Training step, global batch {BATCH}, Adam (median of {args.steps} steps, median of "
          f"{args.rounds} alternating rounds):")
    print_table(["model", "1 process, all cores", "2 ranks x 1 thread", "ratio",
                 "Allreduce share (2 ranks)", "Allreduce payload per step"], rows)

    # The model: per-machine compute at a fixed per-machine batch, plus the ring Allreduce.
    cases = {"resnet20 (batch 64 per machine)": (summary["resnet20"]["one_process_s"],
                                                 4 * summary["resnet20"]["parameters"]),
             f"ResNet-50 (batch {RESNET50_BATCH} per machine, 224x224)":
                 (RESNET50_STEP_S, 4 * RESNET50_PARAMETERS),
             f"ResNet-50 at an assumed {GPU_STEP_S:g} s step (a GPU's order)":
                 (GPU_STEP_S, 4 * RESNET50_PARAMETERS)}
    model_rows, predictions = [], {}
    for name, (compute, nbytes) in cases.items():
        for link, (bandwidth, latency) in LINKS.items():
            speedups = [n * compute / (compute + ring_allreduce_s(nbytes, n, bandwidth, latency))
                        for n in NODES]
            predictions[f"{name}, {link}"] = dict(zip(map(str, NODES), speedups))
            model_rows.append([name, link, *(f"{s:.1f}" for s in speedups)])
    print()
    print("Predicted speed-up over one machine (weak scaling, ring Allreduce, no overlap; "
          "latency 20 us at 10 Gbit/s, 5 us at 100 Gbit/s):")
    print_table(["model", "link", *(f"{n} nodes" for n in NODES)], model_rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"measured": measured, "summary": summary,
                                               "predicted_speedup": predictions}, indent=2)
                                   + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
