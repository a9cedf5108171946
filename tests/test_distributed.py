"""minigrad.distributed, DistributedDataParallel, SyncBatchNorm and DistributedSampler.

The MPI tests start `mpiexec -n 2` (the mpich wheel's, in the venv) on tests/mpi_scenarios.py,
one subprocess per test with a timeout, and read rank 0's RESULT line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.data import DataLoader, DistributedSampler, TensorDataset, transforms

SCENARIOS = Path(__file__).with_name("mpi_scenarios.py")
MPIEXEC = Path(sys.executable).with_name("mpiexec")


THREAD_VARIABLES = ("MINIGRAD_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def mpiexec(scenario: str, ranks: int = 2, timeout: float = 120, backend: str = "numpy",
            one_thread: bool = True) -> tuple[int, str, float]:
    """(exit status, stdout + stderr, seconds) of `mpiexec -n ranks` on a scenario, each rank
    on one thread unless `one_thread` is False (then with no thread variable set)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["MINIGRAD_BACKEND"] = backend
    if one_thread:
        env.update({"MINIGRAD_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    start = time.perf_counter()
    done = subprocess.run([str(MPIEXEC), "-n", str(ranks), sys.executable, str(SCENARIOS),
                           scenario], capture_output=True, text=True, timeout=timeout, env=env)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def result(scenario: str, ranks: int = 2, backend: str = "numpy", one_thread: bool = True) -> dict:
    status, output, _ = mpiexec(scenario, ranks, backend=backend, one_thread=one_thread)
    assert status == 0, output
    return json.loads(next(line for line in output.splitlines()
                           if line.startswith("RESULT "))[len("RESULT "):])


def test_collectives_act_in_place_on_every_rank():
    got = result("collectives")
    assert got == {"sum": [3.0, -1.0], "avg": [1.5, -0.5], "max": [2.0, 0.0],
                   "broadcast": [1.0, 1.0, 1.0], "gathered": [[0.0, 0.0], [1.0, 10.0]]}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_two_ranks_at_half_the_batch_train_like_one_process(backend):
    """SyncBatchNorm + DDP + DistributedSampler with crops and flips, 2 ranks at batch 8 against
    one process at 16, 6 SGD steps: the same weights and running statistics to float32
    rounding, the same bits on both ranks, starting from rank 0's weights (rank 1 seeded
    differently). Each backend's batch-norm kernels total their sums over the ranks."""
    got = result("equivalence", backend=backend)
    assert got["identical_on_every_rank"]
    assert got["keys"] == ["module.0.bias", "module.0.weight"]
    assert got["moved"] > 0.1  # training changed the weights: equality is not trivial
    assert got["max_relative_difference"] < 1e-5


def test_gpu_tensors_go_through_the_same_calls_staged_through_host_memory():
    """The same run with every tensor on cuda_on_cpu's stand-in for CuPy, whose arrays refuse
    any implicit host copy: DDP, SyncBatchNorm and the collectives move them explicitly."""
    got = result("equivalence_on_gpu")
    assert got["parameters_on_gpu"] and got["identical_on_every_rank"]
    assert got["max_relative_difference"] < 1e-5


def test_no_sync_accumulates_locally_then_the_next_backward_averages_the_sums():
    got = result("no_sync")
    assert got["differ_before_sync"]
    expected = np.array(got["expected_row"])
    for row in got["synced"]:  # float32 sums of 12 rows against float64
        np.testing.assert_allclose(row, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


def test_a_rank_that_raises_ends_the_whole_job_within_seconds():
    """Rank 1 raises while rank 0 waits in the gradient Allreduce (plain MPI would hang)."""
    status, output, seconds = mpiexec("rank_fails", timeout=60)
    assert status != 0 and seconds < 30, (status, seconds)
    assert output.count("ValueError: planted failure on rank 1") == 1, output
    assert "rank 1 of 2 failed" in output


def test_ranks_with_different_models_are_refused_at_construction():
    status, output, _ = mpiexec("different_models", timeout=60)
    assert status != 0
    assert output.count("rank 1 holds a different model than rank 0: parameter 'weight' "
                        "(3, 3) float32 where rank 0 has parameter 'weight' (2, 3) float32") == 1


# ------------------------------------------------------------------ in one process


@pytest.mark.parametrize("size, drop_last", [(10, False), (10, True), (12, False), (3, False)])
def test_sampler_shards_like_pytorchs_and_covers_the_dataset_once(torch, size, drop_last):
    """Unshuffled, each rank's indices are PyTorch's (padding and drop_last included);
    shuffled, the ranks together take every index once per epoch (plus PyTorch's padding),
    a new permutation each epoch."""
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    data = list(range(size))
    for rank in range(4):
        ours = DistributedSampler(data, 4, rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(data, 4, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    shards = [DistributedSampler(data, 4, r, seed=5, drop_last=drop_last) for r in range(4)]
    epochs = []
    for epoch in range(2):
        for s in shards:
            s.set_epoch(epoch)
        taken = sorted(i for s in shards for i in s)
        if not drop_last:
            assert set(taken) == set(data) and len(taken) == -(-size // 4) * 4
        else:
            assert len(set(taken)) == len(taken) == size // 4 * 4
        epochs.append([list(s) for s in shards])
    assert epochs[0] != epochs[1]


def test_sampler_needs_a_process_group_or_explicit_ranks():
    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        DistributedSampler(list(range(4)))
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval"):
        DistributedSampler(list(range(4)), num_replicas=2, rank=2)


def test_loader_with_a_distributed_sampler_serves_each_rank_its_rows_of_the_batch():
    """Ranks' batches are the rows r::N of one process's batch, crops and flips included."""
    rng = np.random.default_rng(0)
    dataset = TensorDataset(mg.tensor(rng.random((24, 1, 6, 6), dtype=np.float32)),
                            mg.tensor(np.arange(24)))
    augment = transforms.Compose([transforms.RandomCrop(6, padding=2),
                                  transforms.RandomHorizontalFlip()])
    alone = DataLoader(dataset, 8, shuffle=True, seed=3, transform=augment)
    ranks = [DataLoader(dataset, 4, seed=3, transform=augment,
                        sampler=DistributedSampler(dataset, 2, r, seed=3)) for r in range(2)]
    assert len(ranks[0]) == len(alone) == 3
    for epoch in range(2):
        for whole, *parts in zip(alone.batches(epoch), *(r.batches(epoch) for r in ranks)):
            for r, part in enumerate(parts):
                for field, rows in zip(whole, part):
                    np.testing.assert_array_equal(field.numpy()[r::2], rows.numpy())
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(dataset, 4, shuffle=True, sampler=DistributedSampler(dataset, 2, 0))


def test_sync_batchnorm_alone_is_batchnorm_and_conversion_keeps_state_and_keys(torch):
    """Without a process group SyncBatchNorm computes BatchNorm's values and gradients;
    convert_sync_batchnorm keeps the parameters (the same tensors), buffers and state-dict keys,
    as torch's does."""
    from minigrad.models import resnet20
    from minigrad.testing.torch_models import torch_resnet20

    mg.manual_seed(0)
    model = resnet20()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    weight = model.bn1.weight
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and model.bn1.weight is weight
    assert isinstance(model.bn1, nn.SyncBatchNorm)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 0
    theirs = torch.nn.SyncBatchNorm.convert_sync_batchnorm(torch_resnet20(torch))
    assert list(model.state_dict()) == list(theirs.state_dict())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])

    x = np.random.default_rng(1).standard_normal((6, 3, 4, 4))
    outputs = []
    for layer in (nn.SyncBatchNorm(3).double(), nn.BatchNorm2d(3).double()):
        t = mg.tensor(x, requires_grad=True)
        (layer(t) * mg.tensor(x)).sum().backward()
        outputs.append([t.grad.numpy(), layer.weight.grad.numpy(), layer.running_var.numpy()])
    for ours, plain in zip(*outputs):
        np.testing.assert_array_equal(ours, plain)


def test_ddp_needs_a_process_group():
    from minigrad.nn.parallel import DistributedDataParallel

    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        DistributedDataParallel(nn.Linear(2, 2))


# ------------------------------------------------------------------ the CLI under mpiexec


def train_cli(tmp_path: Path, *argv: str, ranks: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "minigrad.train", "--dataset", "digits", "--limit", "64",
               "--batch-size", "32", "--backend", "numpy", *argv]
    if ranks:
        command = [str(MPIEXEC), "-n", str(ranks), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)


def test_the_cli_under_mpiexec_trains_writes_once_and_resumes_at_the_same_size(tmp_path):
    out = tmp_path / "run"
    first = train_cli(tmp_path, "--epochs", "1", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("2 processes") == 1 and first.stdout.count("epoch 1/1") == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs_completed"] == 1
    resumed = train_cli(tmp_path, "--epochs", "2", "--resume", str(out / "checkpoint.npz"))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs_completed"] == 2
    alone = train_cli(tmp_path, "--epochs", "3", "--resume", str(out / "checkpoint.npz"),
                      ranks=0)
    assert alone.returncode == 1
    assert "trained by 2 process(es), this run has 1" in alone.stderr


def test_the_cli_shares_the_cores_among_the_ranks_blas_included():
    """Unlimited, OpenBLAS runs a thread per core in each rank, and the ranks' spinning threads
    take the cores from each other."""
    got = result("cli_threads", one_thread=False)
    cores = len(os.sched_getaffinity(0))
    assert got["share"] == max(1, cores // 2)
    assert got["blas"] == [[got["share"]]] * 2


def test_the_cli_refuses_ranks_started_with_different_arguments(tmp_path):
    base = [sys.executable, "-m", "minigrad.train", "--dataset", "digits", "--limit", "64",
            "--epochs", "1", "--out", str(tmp_path / "run")]
    done = subprocess.run([str(MPIEXEC), "-n", "1", *base, "--lr", "0.1", ":", "-n", "1", *base,
                           "--lr", "0.2"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert (done.stdout + done.stderr).count(
        "rank 1 was started with --lr 0.2 where rank 0 has 0.1") == 1
