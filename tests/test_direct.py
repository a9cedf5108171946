"""The Numba backend's register-blocked direct convolution of 16-channel maps
(minigrad/backends/numba_direct.py): float32, stride 1, undilated, ungrouped, any kernel, padding
under the kernel size, output rows of at least PIXELS pixels.

Its kernels against the NumPy reference and against PyTorch's `conv2d` (forward and both
gradients), for plain, channels-last and strided inputs and rows that PIXELS does not divide
(the last block overlaps); split over several threads; and that convolutions of that shape take
the path (and others do not). test_backends.py checks that `warmup()` compiles its kernels into
Numba's on-disk cache.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from helpers import (
    assert_conv_close,
    check_conv_against_reference,
    check_threaded_conv,
    count_calls,
    kernels_taken,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad.backends import load, numba_direct
from minigrad.backends.numba_backend import NumbaBackend

KERNELS = ["_convolve", "_weight_sums"]
PIXELS = numba_direct.PIXELS


@st.composite
def direct_cases(draw) -> dict:
    """x (N, 16, H, W), weight (16, 16, kH, kW), padding under the kernel, input and output rows
    of PIXELS pixels or up to PIXELS + 3 more (one block, two, or blocks that overlap). The
    arrays' values come from a drawn seed: hundreds each, too many for Hypothesis to draw one by
    one."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = (draw(st.integers(0, kernel[0] - 1)), draw(st.integers(0, kernel[1] - 1)))
    low_h = max(1, kernel[0] - 2 * padding[0])
    low_w = PIXELS + max(0, kernel[1] - 1 - 2 * padding[1])  # input and output rows >= PIXELS
    h, w = draw(st.integers(low_h, low_h + 3)), draw(st.integers(low_w, low_w + PIXELS + 3))
    return {"x": (draw(st.integers(1, 3)), 16, h, w), "weight": (16, 16, *kernel),
            "geometry": ((1, 1), padding, (1, 1), 1)}


@pytest.fixture(autouse=True, scope="module")
def on_any_cpu() -> Iterator[None]:
    """The path is taken on AVX-512 CPUs only (for speed); its kernels run on any."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(numba_direct, "AVX512", True)
        yield


@pytest.fixture
def calls(monkeypatch) -> dict[str, int]:
    """Counts the calls of the direct kernels (each thread's part is one call)."""
    return count_calls(monkeypatch, numba_direct, KERNELS)


def drawn_case(data) -> tuple:
    """(case, rng, x, weight): a drawn case, and a generator seeded from the draw that made x,
    the weight (and what else the test needs) in [-3, 3]."""
    case = data.draw(direct_cases(), label="case")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    x, weight = (rng.uniform(-3, 3, case[a]).astype(np.float32) for a in ("x", "weight"))
    return case, rng, x, weight


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
@settings(max_examples=25)
@given(data=st.data())
def test_kernels_match_the_numpy_reference(layout, data):
    case, rng, x, weight = drawn_case(data)
    out_shape = load("numpy").conv2d_forward(x, weight, *case["geometry"]).shape
    assert numba_direct.fits(weight.shape, x.shape, out_shape, *case["geometry"], x, weight)
    grad = rng.uniform(-3, 3, out_shape).astype(np.float32)
    check_conv_against_reference(NumbaBackend(1), x, weight, case["geometry"], grad, "float32",
                                 layout)


@settings(max_examples=25)
@given(data=st.data())
def test_kernels_match_pytorch(torch, data):
    case, rng, x, weight = drawn_case(data)
    padding = case["geometry"][1]
    tx, tw = (torch.from_numpy(a).requires_grad_() for a in (x, weight))
    tout = torch.nn.functional.conv2d(tx, tw, padding=padding)
    grad = rng.uniform(-3, 3, tuple(tout.shape)).astype(np.float32)
    tout.backward(torch.from_numpy(grad))
    numba = load("numba")
    assert_conv_close(numba.conv2d_forward(x, weight, *case["geometry"]),
                      tout.detach().numpy(), "float32", "forward")
    grad_x, grad_w = numba.conv2d_backward(grad, x, weight, *case["geometry"])
    assert_conv_close(grad_x, tx.grad.numpy(), "float32", "input gradient")
    assert_conv_close(grad_w, tw.grad.numpy(), "float32", "weight gradient")


# ------------------------------------------------------------------------------ dispatch, threads


def test_sixteen_channel_convolutions_take_the_path_and_others_do_not(calls, monkeypatch):
    rng = np.random.default_rng(0)
    numba = NumbaBackend(1)  # one thread and one image: one call per kernel use

    def run(x_shape, w_shape, padding=(1, 1), stride=(1, 1), dilation=(1, 1), groups=1,
            dtype=np.float32):
        x = rng.standard_normal(x_shape).astype(dtype)
        weight = rng.standard_normal(w_shape).astype(dtype)
        geometry = (stride, padding, dilation, groups)
        return kernels_taken(numba, calls, x, weight, geometry)

    # the forward, the input gradient alone and in two of the joint calls: 4 _convolve calls;
    # the weight gradient alone and in two joint calls: 3 _weight_sums calls
    direct = {"_convolve": 4, "_weight_sums": 3}
    assert run((1, 16, 28, 28), (16, 16, 3, 3)) == direct  # resnet20's first stage
    assert run((1, 16, 3, PIXELS), (16, 16, 5, 1), padding=(2, 0)) == direct  # narrowest row
    none = dict.fromkeys(KERNELS, 0)
    assert run((2, 16, 28, 28), (16, 16, 3, 3), dtype=np.float64) == none  # float64: Winograd
    assert run((2, 32, 14, 14), (32, 32, 3, 3)) == none  # 32 channels: Winograd
    assert run((2, 16, 14, 14), (32, 16, 3, 3)) == none  # 16 in, 32 out
    assert run((2, 16, 3, PIXELS - 1), (16, 16, 3, 3)) == none  # rows under PIXELS
    assert run((2, 16, 3, PIXELS), (16, 16, 3, 3), padding=(1, 0)) == none  # output's under
    assert run((2, 16, 9, 30), (16, 16, 3, 3), padding=(1, 3)) == none  # padding = kernel
    assert run((2, 16, 30, 30), (16, 16, 3, 3), stride=(2, 2)) == none  # strided
    assert run((2, 16, 30, 30), (16, 16, 3, 3), dilation=(2, 2)) == none  # dilated
    assert run((2, 16, 28, 28), (16, 8, 3, 3), groups=2) == none  # grouped
    monkeypatch.setattr(numba_direct, "AVX512", False)
    assert run((1, 16, 28, 28), (16, 16, 3, 3)) == none  # no AVX-512: Winograd


@pytest.mark.parametrize("workers, batch", [(2, 1), (3, 7)])
def test_parts_on_several_threads_match_the_reference_every_time(calls, workers, batch):
    """Images split over threads; the weight gradient, a sum over parts, is the same bits on
    every call, whichever thread took which part."""
    rng = np.random.default_rng(workers)
    x = rng.standard_normal((batch, 16, 5, 17)).astype(np.float32)
    weight = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    geometry = ((1, 1), (1, 1), (1, 1), 1)
    check_threaded_conv(NumbaBackend(workers), x, weight, geometry, rng)
    assert calls["_convolve"] == min(batch, numba_direct.PARTS_PER_THREAD * workers) * 5
