"""The Numba backend's direct convolution of few-channel images on flattened planes
(minigrad/backends/numba_planes.py): stride 1, undilated, ungrouped, at most MAX_IN_CHANNELS
input channels, any kernel and padding.

Its kernels against the NumPy reference and against PyTorch's `conv2d` (forward and both
gradients, float32 and float64), for plain, channels-last and strided inputs, long planes cut
into blocks, split over several threads; and that convolutions of that shape take the path (and
others do not). test_backends.py checks that `warmup()` compiles its kernels into Numba's
on-disk cache.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    assert_conv_close,
    check_conv_against_reference,
    check_threaded_conv,
    count_calls,
    kernels_taken,
)
from hypothesis import given
from hypothesis import strategies as st

from minigrad.backends import load, numba_planes
from minigrad.backends.numba_backend import NumbaBackend
from minigrad.testing.strategies import arrays

KERNELS = ["_planes_forward", "_planes_backward"]


@st.composite
def plane_cases(draw, max_side: int = 12) -> dict:
    """x (N, C, H, W) with few channels, weight (K, C, kH, kW) larger than 1x1, padding up to
    the kernel's size (more than PyTorch's 'same'), the kernel fitting the padded input."""
    c = draw(st.integers(1, numba_planes.MAX_IN_CHANNELS))
    kernel = draw(st.tuples(st.integers(1, 5), st.integers(1, 5)).filter(lambda k: k != (1, 1)))
    padding = (draw(st.integers(0, kernel[0])), draw(st.integers(0, kernel[1])))
    low = [max(1, kernel[d] - 2 * padding[d]) for d in range(2)]
    h, w = (draw(st.integers(low[d], max(low[d], max_side))) for d in range(2))
    return {"x": (draw(st.integers(1, 3)), c, h, w),
            "weight": (draw(st.integers(1, 7)), c, *kernel),
            "geometry": ((1, 1), padding, (1, 1), 1)}


@pytest.fixture
def calls(monkeypatch) -> dict[str, int]:
    """Counts the calls of the planes kernels (each thread's part is one call)."""
    return count_calls(monkeypatch, numba_planes, KERNELS)


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(data=st.data())
def test_kernels_match_the_numpy_reference(layout, dtype, data):
    case = data.draw(plane_cases(), label="case")
    x = data.draw(arrays(case["x"], dtype=dtype), label="x")
    weight = data.draw(arrays(case["weight"], dtype=dtype), label="weight")
    stride, _, dilation, groups = case["geometry"]
    assert numba_planes.fits(weight.shape, x.shape, stride, dilation, groups, x, weight)
    out_shape = load("numpy").conv2d_forward(x, weight, *case["geometry"]).shape
    grad = data.draw(arrays(out_shape, dtype=dtype), label="grad")
    check_conv_against_reference(load("numba"), x, weight, case["geometry"], grad, dtype, layout)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(data=st.data())
def test_kernels_match_pytorch(torch, dtype, data):
    case = data.draw(plane_cases(), label="case")
    x = data.draw(arrays(case["x"], dtype=dtype), label="x")
    weight = data.draw(arrays(case["weight"], dtype=dtype), label="weight")
    padding = case["geometry"][1]
    tx, tw = (torch.from_numpy(a).requires_grad_() for a in (x, weight))
    tout = torch.nn.functional.conv2d(tx, tw, padding=padding)
    grad = data.draw(arrays(tuple(tout.shape), dtype=dtype), label="grad")
    tout.backward(torch.from_numpy(grad))
    numba = load("numba")
    assert_conv_close(numba.conv2d_forward(x, weight, *case["geometry"]),
                      tout.detach().numpy(), dtype, "forward")
    grad_x, grad_w = numba.conv2d_backward(grad, x, weight, *case["geometry"])
    assert_conv_close(grad_x, tx.grad.numpy(), dtype, "input gradient")
    assert_conv_close(grad_w, tw.grad.numpy(), dtype, "weight gradient")


def test_long_planes_go_in_blocks(monkeypatch):
    """Planes longer than BLOCK output positions: 483 of them, 7 blocks and a short one."""
    monkeypatch.setattr(numba_planes, "BLOCK", 64)  # a new compile: BLOCK is a constant there
    for kernel in KERNELS:
        monkeypatch.setattr(numba_planes, kernel, getattr(numba_planes, kernel).py_func)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 19, 21))
    weight = rng.standard_normal((3, 2, 3, 4))
    geometry = ((1, 1), (2, 1), (1, 1), 1)
    grad = rng.standard_normal((2, 3, 21, 20))
    assert 7 * 64 < 21 * (21 + 2 * 1) < 8 * 64  # output rows x padded width
    check_conv_against_reference(NumbaBackend(1), x, weight, geometry, grad, "float64")


# ------------------------------------------------------------------------------ dispatch, threads


def test_few_channel_convolutions_take_the_path_and_others_do_not(calls):
    rng = np.random.default_rng(0)
    numba = NumbaBackend(1)  # one thread: one call per kernel use

    def run(x_shape, w_shape, stride=(1, 1), dilation=(1, 1), groups=1, dtype=np.float32):
        x = rng.standard_normal(x_shape).astype(dtype)
        weight = rng.standard_normal(w_shape).astype(dtype)
        geometry = (stride, (1, 1), dilation, groups)
        return kernels_taken(numba, calls, x, weight, geometry)

    planes = {"_planes_forward": 1, "_planes_backward": 5}
    assert run((2, 1, 28, 28), (6, 1, 5, 5)) == planes  # LeNet-5's first convolution
    assert run((2, 3, 32, 32), (16, 3, 3, 3), dtype=np.float64) == planes  # a CIFAR stem
    limit = numba_planes.MAX_IN_CHANNELS
    assert run((2, limit, 6, 6), (4, limit, 3, 3)) == planes  # the most channels it takes
    assert run((1, 1, 64, 64), (4, 1, 3, 3)) == planes  # the largest image
    none = dict.fromkeys(KERNELS, 0)
    assert run((2, limit + 1, 6, 6), (4, limit + 1, 3, 3)) == none  # im2col's GEMMs
    assert run((2, 6, 14, 14), (16, 6, 5, 5)) == none  # LeNet-5's second convolution
    assert run((1, 1, 65, 64), (4, 1, 3, 3)) == none  # a larger image
    assert run((2, 8, 6, 6), (8, 8, 3, 3)) == none  # Winograd keeps its convolutions
    assert run((2, 1, 9, 9), (4, 1, 3, 3), stride=(2, 2)) == none  # strided: im2col
    assert run((2, 1, 9, 9), (4, 1, 3, 3), dilation=(2, 1)) == none  # dilated: im2col
    assert run((2, 4, 6, 6), (4, 2, 3, 3), groups=2) == none  # grouped: im2col
    assert run((2, 4, 6, 6), (8, 4, 1, 1)) == none  # 1x1: one plain GEMM
    mixed = (np.ones((1, 2, 4, 4), np.float32), np.ones((2, 2, 3, 3), np.float64))
    assert not numba_planes.fits((2, 2, 3, 3), (1, 2, 4, 4), (1, 1), (1, 1), 1, *mixed)
    assert not numba_planes.fits((2, 2, 3, 3), (1, 2, 4, 4), (1, 1), (1, 1), 1,
                                 mixed[0].astype(np.float16))


@pytest.mark.parametrize("workers, batch", [(2, 1), (3, 5)])
def test_parts_on_several_threads_match_the_reference_every_time(monkeypatch, calls, workers,
                                                                   batch):
    """Images split over threads; the weight gradient, a sum over parts, is the same bits on
    every call, whichever thread took which part."""
    monkeypatch.setattr(numba_planes, "SPLIT_MACS", 0)
    rng = np.random.default_rng(workers)
    x = rng.standard_normal((batch, 3, 13, 9)).astype(np.float32)
    weight = rng.standard_normal((5, 3, 3, 4)).astype(np.float32)
    geometry = ((1, 1), (1, 2), (1, 1), 1)
    check_threaded_conv(NumbaBackend(workers), x, weight, geometry, rng)
    assert calls["_planes_forward"] == min(batch, numba_planes.PARTS_PER_THREAD * workers)


def test_small_problems_stay_on_the_calling_thread(calls):
    numba = NumbaBackend(2)
    x = np.ones((4, 1, 5, 5), np.float32)
    numba.conv2d_forward(x, np.ones((4, 1, 3, 3), np.float32), (1, 1), (1, 1), (1, 1), 1)
    assert calls["_planes_forward"] == 1
