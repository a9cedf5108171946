"""What a user's first training step costs on the default (numba) backend: Numba compiles its
kernels on first use, and later processes load them from its on-disk cache.

Each row is a fresh process with the same NUMBA_CACHE_DIR, new and empty before the first:
`cold` compiles every kernel the step needs, `cached` loads them. The columns are the seconds
for `import minigrad`, the first training step (SGD, batch 32 of the model's input size) and
the median of the next five steps.

    .venv/bin/python benchmarks/first_call.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PROBE = "--probe"
MODELS = {"simple_cnn": (1, 28, 28), "resnet20": (3, 32, 32)}


def probe(model_name: str) -> dict[str, float]:
    """One process: import, then steps of `model_name`; seconds for each part."""
    start = time.perf_counter()
    import numpy as np

    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad.models import SimpleCNN, resnet20

    imported = time.perf_counter() - start
    mg.manual_seed(0)
    model = SimpleCNN() if model_name == "simple_cnn" else resnet20()
    optimizer = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((32, *MODELS[model_name]), dtype=np.float32))
    y = mg.tensor(rng.integers(0, 10, 32))
    times = []
    for _ in range(6):
        start = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return {"backend": mg.get_backend(), "import": imported, "first step": times[0],
            "later steps": statistics.median(times[1:])}


def main() -> None:
    print(f"{'model':<11} | {'numba cache':<11} | import s | first step s | later steps s")
    print(f"{'-' * 11}-|-{'-' * 11}-|----------|--------------|--------------")
    for model_name in MODELS:
        with tempfile.TemporaryDirectory(prefix="minigrad-numba-cache-") as cache_dir:
            env = {k: v for k, v in os.environ.items() if k != "MINIGRAD_BACKEND"}
            env["NUMBA_CACHE_DIR"] = cache_dir
            for label in ("cold", "cached"):
                done = subprocess.run([sys.executable, __file__, PROBE, model_name], env=env,
                                      capture_output=True, text=True, check=True)
                r = json.loads(done.stdout.strip().splitlines()[-1])
                assert r["backend"] == "numba", r
                print(f"{model_name:<11} | {label:<11} | {r['import']:8.2f} | "
                      f"{r['first step']:12.2f} | {r['later steps']:13.3f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == PROBE:
        print(json.dumps(probe(sys.argv[2])))
    else:
        main()
