"""The scripts in examples/ run, print what their docstrings promise, and agree with PyTorch."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import skip_or_fail

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
# One BLAS thread per example: with the other core busy (xdist workers), OpenBLAS threads
# waiting on each other made a SimpleCNN training step 25x slower (0.9 s instead of 0.04 s).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

SOBEL_MAP = np.array([[0, 3, 3, 0, -3],
                      [0, 4, 4, 0, -4],
                      [0, 4, 4, 0, -4],
                      [0, 4, 4, 0, -4],
                      [0, 3, 3, 0, -3]], dtype=np.float32)
POOLED = np.array([[6, 4],
                   [4, 8]], dtype=np.float32)


def require(module: str):
    """`module` from the demo extra (scikit-learn, matplotlib), which `make test` installs.
    Without it the test skips; under CI=true it fails: there it means a broken install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        skip_or_fail(f"the examples' digits and pictures need the demo extra (pip install -e "
                     f".[demo]): {error}")


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, *args: str, cwd: Path, status: int = 0) -> subprocess.CompletedProcess:
    """Run examples/<name>.py in `cwd` (a tmp_path: nothing is written into the repository)."""
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], cwd=cwd,
                          env={**os.environ, **ONE_THREAD}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == status, done.stderr
    return done


def assert_png(path: Path) -> np.ndarray:
    """`path` is a PNG that matplotlib reads back as a picture that is not blank."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = require("matplotlib.image").imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100, image.shape
    assert image[..., :3].std() > 0.05
    return image


def fashion_mnist_found() -> bool:
    dirs = [FASHION_MNIST]
    if os.environ.get("MINIGRAD_DATA"):
        dirs.append(Path(os.environ["MINIGRAD_DATA"]) / "fashion-mnist")
    return any((d / "t10k-images-idx3-ubyte.gz").is_file() or (d / "t10k-images-idx3-ubyte")
               .is_file() for d in dirs)


@pytest.fixture(scope="module")
def sobel():
    return load("sobel_edges")


@pytest.fixture(scope="module")
def pool():
    return load("max_pool")


def test_sobel_feature_map(sobel):
    np.testing.assert_array_equal(sobel.sobel_feature_map(), SOBEL_MAP)
    np.testing.assert_array_equal(sobel.convolve2d(sobel.IMAGE, sobel.SOBEL_X, padding=1),
                                  SOBEL_MAP)


def test_max_pool(pool):
    np.testing.assert_array_equal(pool.pooled(), POOLED)
    np.testing.assert_array_equal(pool.max_pool2d(pool.X, pool_size=2, stride=2), POOLED)


def test_max_pool_prints_result(tmp_path):
    assert str(POOLED) in run("max_pool", cwd=tmp_path).stdout


def test_sobel_prints_result_and_saves_png(tmp_path):
    require("matplotlib")
    out = run("sobel_edges", cwd=tmp_path).stdout
    assert str(SOBEL_MAP) in out
    assert out.strip().splitlines()[-1] == "Saved sobel_edges.png"
    assert [p.name for p in tmp_path.iterdir()] == ["sobel_edges.png"]  # default: the cwd
    assert_png(tmp_path / "sobel_edges.png")


def test_feature_maps_saves_png(tmp_path):
    require("sklearn")
    require("matplotlib")
    path = tmp_path / "maps" / "fm.png"
    path.parent.mkdir()
    out = run("feature_maps", "--epochs", "1", "--limit", "64", "--out", str(path),
              cwd=tmp_path).stdout
    assert re.search(r"^epoch 1/1  train loss \d+\.\d{4} acc", out, re.MULTILINE), out
    assert out.strip().splitlines()[-1] == f"Saved {path}"
    image = assert_png(path)
    assert image.shape[1] > 2.5 * image.shape[0]  # filters, input and maps side by side


def test_train_fashion_mnist(tmp_path):
    """Skips where Fashion-MNIST is not installed; fails so under CI=true (.ci/run installs it)."""
    if not fashion_mnist_found():
        skip_or_fail(f"Fashion-MNIST is not installed in {FASHION_MNIST} "
                     "(apt-get install dataset-fashion-mnist)")
    out = run("train_fashion_mnist", "--epochs", "1", "--limit", "256", cwd=tmp_path).stdout
    found = re.fullmatch(r"epoch 1/1  train loss (\d+\.\d{4})  test accuracy (\d+\.\d\d)%",
                         out.strip())
    assert found, out
    assert 0 < float(found[1]) < 5 and 10 < float(found[2]) <= 100  # better than chance
    assert list(tmp_path.iterdir()) == []


def test_train_fashion_mnist_missing_data_is_one_line(tmp_path):
    done = run("train_fashion_mnist", "--data-dir", str(tmp_path), cwd=tmp_path, status=1)
    assert done.stdout == ""
    assert done.stderr.startswith("train_fashion_mnist: fashion-mnist: ")
    assert "not found" in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_autograd_demo_learns_xor(tmp_path):
    last = run("autograd_demo", cwd=tmp_path).stdout.strip().splitlines()[-1]
    found = re.fullmatch(r"predictions: (\[.*\])\s+targets: (\[.*\])", last)
    assert found, last
    assert found[1] == found[2]


def test_examples_match_torch(torch, sobel, pool):
    tF = torch.nn.functional
    image = torch.from_numpy(sobel.IMAGE)[None, None]
    kernel = torch.from_numpy(sobel.SOBEL_X)[None, None]
    np.testing.assert_array_equal(sobel.sobel_feature_map(),
                                  tF.conv2d(image, kernel, padding=1)[0, 0].numpy())
    x = torch.from_numpy(pool.X)[None, None]
    np.testing.assert_array_equal(pool.pooled(),
                                  tF.max_pool2d(x, kernel_size=2, stride=2)[0, 0].numpy())


def test_pytorchs_training_a_classifier_tutorial_runs_unchanged(tmp_path):
    """PyTorch's "Training a classifier" code, with minigrad imported under torch's names, on
    real digits shaped as CIFAR-10: it trains, saves, loads, evaluates and moves to a device."""
    require("sklearn")
    out = run("pytorch_tutorial", cwd=tmp_path).stdout
    losses = [float(x) for x in re.findall(r"\] loss: ([0-9.]+)", out)]
    assert len(losses) == 6 and losses[-1] < losses[0] / 2, out
    assert "Finished Training" in out
    accuracy = int(re.search(r"Accuracy of the network on the 297 test images: (\d+) %",
                             out).group(1))
    assert accuracy >= 80, out
    assert len(re.findall(r"Accuracy for class: \d +is \d+\.\d %", out)) == 10
    assert out.strip().splitlines()[-1] in ("cpu", "cuda:0")  # print(device)
