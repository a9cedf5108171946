"""The scripts in examples/ run, print what their docstrings promise, and agree with PyTorch."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SOBEL_MAP = np.array([[0, 3, 3, 0, -3],
                      [0, 4, 4, 0, -4],
                      [0, 4, 4, 0, -4],
                      [0, 4, 4, 0, -4],
                      [0, 3, 3, 0, -3]], dtype=np.float32)
POOLED = np.array([[6, 4],
                   [4, 8]], dtype=np.float32)


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py")], cwd=EXAMPLES.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


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


@pytest.mark.parametrize(("name", "expected"),
                         [("sobel_edges", SOBEL_MAP), ("max_pool", POOLED)])
def test_script_prints_result(name, expected):
    assert str(expected) in run(name)


def test_autograd_demo_learns_xor():
    last = run("autograd_demo").strip().splitlines()[-1]
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
