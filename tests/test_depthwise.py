"""The Numba backend's depthwise convolution (minigrad/backends/numba_depthwise.py): one input
channel per group, weight (C*m, 1, kH, kW), any multiplier m, stride, padding and dilation.

Its kernels against the NumPy reference and against PyTorch's `conv2d(groups=C)` (forward and
both gradients, float32 and float64), for plain, channels-last and strided inputs, split over
several threads; and that convolutions of that shape really take the path (and others do
not). test_backends.py checks that `warmup()` compiles its kernels into Numba's on-disk cache.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    as_layout,
    assert_conv_close,
    check_conv_against_reference,
    check_threaded_conv,
    count_calls,
    kernels_taken,
)
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.backends import load, numba_depthwise, winograd
from minigrad.backends.numba_backend import NumbaBackend
from minigrad.testing.strategies import arrays

KERNELS = ["_backward_rows", "_forward_rows"]


@st.composite
def depthwise_cases(draw, max_batch: int = 2) -> dict:
    """A depthwise problem: x (N, C, H, W), weight (C*m, 1, kH, kW), groups C, with the
    dilated kernel fitting the padded input."""
    low = numba_depthwise.MIN_CHANNELS
    c, multiplier = draw(st.integers(low, low + 3)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    low = [max(1, dilation[d] * (kernel[d] - 1) + 1 - 2 * padding[d]) for d in range(2)]
    h, w = (draw(st.integers(low[d], low[d] + 6)) for d in range(2))
    return {"x": (draw(st.integers(1, max_batch)), c, h, w),
            "weight": (c * multiplier, 1, *kernel),
            "geometry": (stride, padding, dilation, c)}


@pytest.fixture
def calls(monkeypatch) -> dict[str, int]:
    """Counts the calls of the depthwise kernels (each thread's part is one call)."""
    return count_calls(monkeypatch, numba_depthwise, KERNELS)


# ------------------------------------------------------------- the kernels against the reference


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(data=st.data())
def test_kernels_match_the_numpy_reference(layout, dtype, data):
    case = data.draw(depthwise_cases(), label="case")
    geometry = case["geometry"]
    x = data.draw(arrays(case["x"], dtype=dtype), label="x")
    weight = data.draw(arrays(case["weight"], dtype=dtype), label="weight")
    out_shape = load("numpy").conv2d_forward(x, weight, *geometry).shape
    grad = data.draw(arrays(out_shape, dtype=dtype), label="grad")
    check_conv_against_reference(load("numba"), x, weight, geometry, grad, dtype, layout)


# ------------------------------------------------------------------- the kernels against PyTorch


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(data=st.data())
def test_kernels_match_pytorch(torch, dtype, data):
    case = data.draw(depthwise_cases(), label="case")
    stride, padding, dilation, groups = geometry = case["geometry"]
    x = data.draw(arrays(case["x"], dtype=dtype), label="x")
    weight = data.draw(arrays(case["weight"], dtype=dtype), label="weight")
    tx, tw = (torch.from_numpy(a).requires_grad_() for a in (x, weight))
    tout = torch.nn.functional.conv2d(tx, tw, stride=stride, padding=padding, dilation=dilation,
                                      groups=groups)
    grad = data.draw(arrays(tuple(tout.shape), dtype=dtype), label="grad")
    tout.backward(torch.from_numpy(grad))
    numba = load("numba")

    assert_conv_close(numba.conv2d_forward(x, weight, *geometry), tout.detach().numpy(), dtype,
                      "forward")
    grad_x, grad_w = numba.conv2d_backward(grad, x, weight, *geometry)
    assert_conv_close(grad_x, tx.grad.numpy(), dtype, "input gradient")
    assert_conv_close(grad_w, tw.grad.numpy(), dtype, "weight gradient")


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_conv2d_and_conv_transpose2d_match_pytorch_at_the_tensor_level(torch, calls, layout):
    """F.conv2d with bias on the numba backend, batch 1 (a network's inference), and the
    depthwise transposed convolution, whose forward is conv2d's input gradient; float32."""
    rng = np.random.default_rng(0)
    x = as_layout(rng.standard_normal((1, 16, 11, 10), np.float32), layout)
    weight = rng.standard_normal((16, 1, 3, 3), np.float32)
    bias = rng.standard_normal(16, np.float32)
    for name, params, out_hw in [("conv2d", {"stride": 2, "padding": 1}, (6, 5)),
                                 ("conv_transpose2d", {"stride": 2, "padding": 1}, (21, 19))]:
        upstream = rng.standard_normal((1, 16, *out_hw), np.float32)
        with mg.backend("numba"):
            ours = [mg.tensor(a, requires_grad=True) for a in (x, weight, bias)]
            out = getattr(F, name)(*ours, groups=16, **params)
            out.backward(mg.tensor(upstream))
        theirs = [torch.from_numpy(np.array(a)).requires_grad_() for a in (x, weight, bias)]
        expected = getattr(torch.nn.functional, name)(*theirs, groups=16, **params)
        expected.backward(torch.from_numpy(upstream))
        assert_conv_close(out.numpy(), expected.detach().numpy(), "float32", name)
        for mine, reference, what in zip(ours, theirs, ("x", "weight", "bias")):
            assert_conv_close(mine.grad.numpy(), reference.grad.numpy(), "float32",
                              f"{name} {what}")
    # conv2d: the forward and one backward for both gradients; its transpose: conv2d's input
    # gradient (its forward), then conv2d's forward and weight gradient (its backward)
    assert calls == {"_forward_rows": 2, "_backward_rows": 3}


# ------------------------------------------------------------------------------ dispatch, threads


def test_depthwise_convolutions_take_the_compiled_path_and_others_do_not(calls):
    rng = np.random.default_rng(0)
    numba = NumbaBackend(1)  # one thread: one call per kernel use

    def run(x_shape, w_shape, groups, dtype=np.float32):
        x = rng.standard_normal(x_shape).astype(dtype)
        weight = rng.standard_normal(w_shape).astype(dtype)
        geometry = ((1, 1), (1, 1), (1, 1), groups)
        return kernels_taken(numba, calls, x, weight, geometry)

    depthwise = {"_forward_rows": 1, "_backward_rows": 5}
    assert run((2, 8, 6, 6), (8, 1, 3, 3), 8) == depthwise  # MobileNet's 3x3, multiplier 1
    assert run((2, 3, 6, 6), (6, 1, 5, 5), 3, np.float64) == depthwise  # multiplier 2, float64
    assert run((2, 3, 5, 7), (3, 1, 1, 2), 3) == depthwise  # the fewest channels it takes
    none = dict.fromkeys(KERNELS, 0)
    assert run((2, 2, 6, 6), (4, 1, 3, 3), 2) == none  # fewer channels: im2col's GEMMs
    assert run((2, 1, 6, 6), (4, 1, 3, 3), 1) == none  # one channel: an ordinary convolution
    assert run((2, 8, 6, 6), (8, 2, 3, 3), 4) == none  # two channels per group: im2col
    assert run((2, 8, 6, 6), (8, 8, 3, 3), 1) == none  # Winograd keeps its convolutions
    assert winograd.fits((8, 8, 3, 3), (1, 1), (1, 1), 1, (2, 8, 6, 6))
    mixed = (np.ones((1, 2, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float64))
    assert not numba_depthwise.fits((2, 1, 3, 3), 2, 2, *mixed)
    assert not numba_depthwise.fits((2, 1, 3, 3), 2, 2, mixed[0].astype(np.float16))


@pytest.mark.parametrize("workers, batch", [(2, 1), (3, 5)])
def test_parts_on_several_threads_match_the_reference_every_time(monkeypatch, calls, workers,
                                                                   batch):
    """Rows split over threads (within one image too); the weight gradient, a sum over parts,
    is the same bits on every call, whichever thread took which part."""
    monkeypatch.setattr(numba_depthwise, "SPLIT_MACS", 0)
    rng = np.random.default_rng(workers)
    x = rng.standard_normal((batch, 6, 13, 9)).astype(np.float32)
    weight = rng.standard_normal((12, 1, 3, 4)).astype(np.float32)
    geometry = ((2, 1), (1, 2), (1, 2), 6)
    out = check_threaded_conv(NumbaBackend(workers), x, weight, geometry, rng)
    rows = batch * out.shape[2]  # output rows, a part at least each
    assert calls["_forward_rows"] == min(rows, numba_depthwise.PARTS_PER_THREAD * workers) > 1


def test_small_problems_stay_on_the_calling_thread(calls):
    numba = NumbaBackend(2)
    x = np.ones((1, 4, 5, 5), np.float32)
    numba.conv2d_forward(x, np.ones((4, 1, 3, 3), np.float32), (1, 1), (1, 1), (1, 1), 4)
    assert calls["_forward_rows"] == 1


# ------------------------------------------------------------------------ compilation and cache
