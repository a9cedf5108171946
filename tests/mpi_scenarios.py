"""Run by tests/test_distributed.py under `mpiexec -n N`: one scenario per call, results as
one JSON line from rank 0 (prefixed RESULT), so the test can check them."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

import minigrad as mg
import minigrad.distributed as dist
from minigrad import nn
from minigrad.data import DataLoader, DistributedSampler, TensorDataset, transforms
from minigrad.nn.parallel import DistributedDataParallel

BATCH, IMAGES, EPOCHS = 16, 48, 2  # 3 global batches per epoch


def small_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10))


def data() -> TensorDataset:
    rng = np.random.default_rng(7)
    images = rng.standard_normal((IMAGES, 1, 10, 10)).astype(np.float32)
    return TensorDataset(mg.tensor(images), mg.tensor(rng.integers(0, 10, IMAGES)))


def train(model: nn.Module, loader: DataLoader, steps_seen: list) -> None:
    optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for epoch in range(EPOCHS):
        for images, labels in loader.batches(epoch):
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps_seen.append(float(loss.item()))


def state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k.removeprefix("module."): v.cpu().numpy().copy()
            for k, v in model.state_dict().items()}


def digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()


def equivalence() -> dict:
    """N ranks at BATCH / N with SyncBatchNorm and DDP against one process at BATCH."""
    rank, size = dist.get_rank(), dist.get_world_size()
    crop = transforms.Compose([transforms.RandomCrop(10, padding=2),
                               transforms.RandomHorizontalFlip()])
    dataset = data()
    mg.manual_seed(1 + rank)  # different initial weights: DDP must copy rank 0's
    model = DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(small_net()))
    sampler = DistributedSampler(dataset, seed=3)
    train(model, DataLoader(dataset, BATCH // size, sampler=sampler, seed=3, transform=crop), [])
    ours = state(model)
    digests = dist.all_gather_object(digest(ours))
    result = {"identical_on_every_rank": len(set(digests)) == 1,
              "keys": sorted(model.state_dict())[:2]}
    if rank == 0:
        mg.manual_seed(1)
        alone = small_net()
        train(alone, DataLoader(dataset, BATCH, shuffle=True, seed=3, transform=crop), [])
        theirs = state(alone)
        result["max_relative_difference"] = max(
            float(np.abs(ours[k] - theirs[k]).max() / max(np.abs(theirs[k]).max(), 1e-12))
            for k in theirs)
        result["moved"] = max(float(np.abs(theirs[k] - start).max())
                              for k, start in state(_initial()).items()
                              if k in theirs and theirs[k].dtype.kind == "f")
    return result


def equivalence_on_gpu() -> dict:
    """`equivalence` with every tensor on "the GPU" (cuda_on_cpu's stand-in for CuPy, whose
    arrays refuse implicit host copies): the collectives stage through host memory."""
    import cuda_on_cpu

    with cuda_on_cpu.installed(), mg.backend("cupy"):
        result = equivalence()
        probe = DistributedDataParallel(nn.Linear(2, 2))
        result["parameters_on_gpu"] = probe.module.weight.device == "cuda"
    return result


def _initial() -> nn.Module:
    mg.manual_seed(1)
    return small_net()


def no_sync() -> dict:
    """Two micro-batches under no_sync, then one synced: the same as one step on all three."""
    rank, size = dist.get_rank(), dist.get_world_size()
    mg.manual_seed(0)
    model = DistributedDataParallel(nn.Linear(3, 2))
    rng = np.random.default_rng(rank)
    xs = [mg.tensor(rng.standard_normal((4, 3)).astype(np.float32)) for _ in range(3)]
    with model.no_sync():
        for x in xs[:2]:
            model(x).sum().backward()
    unsynced = dist.all_gather_object(model.module.weight.grad.numpy().tolist())
    model(xs[2]).sum().backward()
    local = sum(np.asarray(x.numpy(), np.float64).sum(axis=0) for x in xs)
    expected = dist.all_gather_object(local.tolist())
    return {"differ_before_sync": unsynced[0] != unsynced[-1],
            "synced": model.module.weight.grad.numpy().tolist(),
            "expected_row": (np.mean(expected, axis=0)).tolist(), "size": size}


def collectives() -> dict:
    rank, size = dist.get_rank(), dist.get_world_size()
    t = mg.tensor([rank + 1.0, -rank], dtype=mg.float32)
    s, a, m = t.clone(), t.clone(), t.clone()
    dist.all_reduce(s)
    dist.all_reduce(a, op=dist.ReduceOp.AVG)
    dist.all_reduce(m, op=dist.ReduceOp.MAX)
    b = mg.tensor([float(rank)] * 3)
    dist.broadcast(b, src=size - 1)
    gathered = [mg.zeros(2) for _ in range(size)]
    dist.all_gather(gathered, mg.tensor([rank, rank * 10.0]))
    dist.barrier()
    return {"sum": s.tolist(), "avg": a.tolist(), "max": m.tolist(), "broadcast": b.tolist(),
            "gathered": [g.tolist() for g in gathered]}


def rank_fails() -> dict:
    """Rank 1 raises in its third step while rank 0 waits in the gradient Allreduce."""
    mg.manual_seed(0)
    model = DistributedDataParallel(nn.Linear(3, 2))
    for step in range(100):
        if dist.get_rank() == 1 and step == 2:
            raise ValueError("planted failure on rank 1")
        model(mg.ones(4, 3)).sum().backward()
    return {}


def different_models() -> dict:
    DistributedDataParallel(nn.Linear(3, 2 + dist.get_rank()))
    return {}


def cli_threads() -> dict:
    """The CLI's share of the cores per rank, and the BLAS threads each rank then runs."""
    from threadpoolctl import threadpool_info

    from minigrad.train import share_cores

    share = share_cores()
    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return {"share": share, "blas": dist.all_gather_object(blas)}


SCENARIOS = {f.__name__: f for f in (equivalence, equivalence_on_gpu, no_sync, collectives,
                                     rank_fails, different_models, cli_threads)}

if __name__ == "__main__":
    dist.init_process_group()
    outcome = SCENARIOS[sys.argv[1]]()
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(outcome), flush=True)
    dist.destroy_process_group()
