"""conv_transpose2d / ConvTranspose2d, and conv2d's padding strings ("same", "valid") and
Conv2d's padding modes: gradients, PyTorch (every backend, float32 and float64, drawn memory
layouts), the layers, output_size, errors and reprs.

A transposed convolution is conv2d's input gradient, so it runs on the conv2d kernels of each
backend (im2col and col2im, and for 3x3 stride-1 convolutions with 8+ channels the Numba
backend's Winograd path, drawn by its own strategy below).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import raises_saying, winograd_batch
from hypothesis import strategies as st
from layer_table import LayerCase, layer_tests
from op_table import DTYPES, OpCase, op_tests

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.backends import winograd
from minigrad.testing.strategies import arrays

# Sums of up to a few dozen products, in another order than PyTorch's (and Winograd's
# transforms for 3x3 kernels): float32 agrees to a few ulps of the largest term, as in
# test_conv_pool.py.
PYTORCH_TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10},
                     "float32": {"rtol": 1e-4, "atol": 1e-4}}


def transposed_size(size: int, kernel: int, stride: int, padding: int, output_padding: int,
                    dilation: int) -> int:
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


# ----------------------------------------------------------------------------- input strategies


@st.composite
def conv_transpose_cases(draw) -> dict:
    """A valid conv_transpose2d problem: x (N, in, H, W), weight (in, out/groups, kH, kW),
    stride, padding, output_padding (below the stride or the dilation, per side), dilation
    and groups, with an output of at least one pixel."""
    groups = draw(st.integers(1, 3))
    c, k = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    output_padding = tuple(draw(st.integers(0, max(stride[d], dilation[d]) - 1))
                           for d in range(2))
    # the smallest input whose output has a pixel
    low = [1 + max(0, -(-(2 * padding[d] - dilation[d] * (kernel[d] - 1) - output_padding[d])
                        // stride[d])) for d in range(2)]
    h, w = (draw(st.integers(low[d], low[d] + 3)) for d in range(2))
    return {"x": (draw(st.integers(1, 2)), c, h, w), "weight": (c, k // groups, *kernel),
            "stride": stride, "padding": padding, "output_padding": output_padding,
            "dilation": dilation, "groups": groups}


@st.composite
def winograd_transpose_cases(draw) -> dict:
    """3x3 stride-1 transposed convolutions with 8+ channels: on the Numba backend their
    forward (conv2d's input gradient) and both gradients run as Winograd convolutions."""
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h, w = (draw(st.integers(max(1, 2 * p - 1), 5)) for p in padding)
    c, k = draw(st.integers(8, 9)), draw(st.integers(8, 9))
    n = max(draw(st.integers(1, 2)), winograd_batch(min(c, k), (h, w)))  # x: conv2d's output
    case = {"x": (n, c, h, w), "weight": (c, k, 3, 3), "stride": (1, 1),
            "padding": padding, "output_padding": (0, 0), "dilation": (1, 1), "groups": 1}
    assert winograd.backward_fits(case["weight"], (1, 1), padding, (1, 1), 1, (n, c, h, w))
    return case


@st.composite
def transpose_inputs(draw, bias: bool, cases=conv_transpose_cases):
    case = draw(cases())
    inputs = [draw(arrays(case["x"])), draw(arrays(case["weight"]))]
    if bias:
        inputs.append(draw(arrays((case["weight"][1] * case["groups"],))))
    params = {key: case[key] for key in ("stride", "padding", "output_padding", "groups",
                                         "dilation")}
    return tuple(inputs), params


@st.composite
def padding_string_inputs(draw, padding: str):
    """conv2d with padding="same" (even kernels included: their odd pixel of padding goes on
    the bottom and right) or "valid", stride 1, any dilation and groups."""
    groups = draw(st.integers(1, 2))
    c, k = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    low = [dilation[d] * (kernel[d] - 1) + 1 if padding == "valid" else 1 for d in range(2)]
    h, w = (draw(st.integers(low[d], low[d] + 3)) for d in range(2))
    inputs = (draw(arrays((draw(st.integers(1, 2)), c, h, w))),
              draw(arrays((k, c // groups, *kernel))), draw(arrays((k,))))
    return inputs, {"padding": padding, "dilation": dilation, "groups": groups}


# ---------------------------------------------------------------------------------- the table

CASES = [
    OpCase("conv_transpose2d_bias", lambda F, x, w, b, **p: F.conv_transpose2d(x, w, b, **p),
           transpose_inputs(bias=True)),
    OpCase("conv_transpose2d_no_bias", lambda F, x, w, **p: F.conv_transpose2d(x, w, **p),
           transpose_inputs(bias=False)),
    OpCase("conv_transpose2d_3x3_stride_1",
           lambda F, x, w, b, **p: F.conv_transpose2d(x, w, b, **p),
           transpose_inputs(bias=True, cases=winograd_transpose_cases),
           gradcheck_options={"fast_mode": True}),  # 8+ channels: a random direction
    OpCase("conv2d_padding_same", lambda F, x, w, b, **p: F.conv2d(x, w, b, **p),
           padding_string_inputs("same")),
    OpCase("conv2d_padding_valid", lambda F, x, w, b, **p: F.conv2d(x, w, b, **p),
           padding_string_inputs("valid")),
]


(test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
 test_no_graph_under_no_grad) = op_tests(CASES, F, lambda torch: torch.nn.functional,
                                         PYTORCH_TOLERANCE, gradient_backend="backend")
# PyTorch warns once that same-padding an even kernel copies the input; so does nothing here
quiet = pytest.mark.filterwarnings("ignore:Using padding='same'")
test_forward_and_backward_match_pytorch = quiet(test_forward_and_backward_match_pytorch)


# ------------------------------------------------------------- chosen geometries, against PyTorch

# (x shape, weight shape, keyword arguments): the decoder shapes people write, and the corners:
# output_padding >= stride (allowed below the dilation), stride and dilation both > 1, groups,
# depthwise, padding that crops all but one pixel.
GEOMETRIES = [
    ((2, 4, 5, 5), (4, 3, 4, 4), {"stride": 2, "padding": 1}),
    ((2, 4, 5, 6), (4, 3, 2, 2), {"stride": 2}),
    ((1, 3, 4, 4), (3, 2, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((1, 2, 4, 5), (2, 2, 3, 3), {"stride": (3, 2), "output_padding": (2, 1)}),
    ((1, 2, 4, 4), (2, 3, 3, 2), {"dilation": 3, "output_padding": 2}),
    ((1, 2, 3, 4), (2, 1, 3, 3), {"stride": (1, 2), "dilation": (3, 1),
                                  "output_padding": (2, 1)}),
    ((2, 4, 3, 3), (4, 1, 3, 3), {"stride": 2, "padding": 2, "groups": 4}),
    ((1, 6, 3, 4), (6, 2, 2, 3), {"stride": 2, "padding": (0, 1), "groups": 3, "dilation": 2}),
    ((1, 2, 3, 3), (2, 2, 3, 3), {"padding": 2}),  # a 1 x 1 output
    ((0, 2, 3, 3), (2, 2, 3, 3), {"stride": 2}),  # an empty batch
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("x_shape", "w_shape", "kwargs"), GEOMETRIES)
def test_chosen_geometries_match_pytorch(torch, host_backend, dtype, x_shape, w_shape, kwargs):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1] * kwargs.get("groups", 1))
    inputs = [a.astype(dtype) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in inputs]
    expected = torch.nn.functional.conv_transpose2d(*theirs, **kwargs)
    upstream = rng.standard_normal(tuple(expected.shape)).astype(dtype)
    expected.backward(torch.tensor(upstream))
    with mg.backend(host_backend):
        ours = [mg.tensor(a, requires_grad=True) for a in inputs]
        out = F.conv_transpose2d(*ours, **kwargs)
        out.backward(upstream)
    tolerance = PYTORCH_TOLERANCE[dtype]
    assert out.shape == tuple(expected.shape) and out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **tolerance)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), **tolerance)


def test_output_size_follows_pytorchs_formula():
    x = mg.zeros(1, 2, 5, 7)
    for stride, padding, output_padding, dilation, kernel in [(2, 1, 1, 1, 4), (3, 0, 2, 1, 2),
                                                              (1, 2, 1, 2, 3)]:
        out = F.conv_transpose2d(x, mg.zeros(2, 3, kernel, kernel), stride=stride,
                                 padding=padding, output_padding=output_padding,
                                 dilation=dilation)
        assert out.shape == (1, 3, *(transposed_size(s, kernel, stride, padding,
                                                     output_padding, dilation) for s in (5, 7)))


def test_is_the_gradient_of_conv2d():
    """conv_transpose2d(g, w) is d/dx <g, conv2d(x, w)>: the adjoint, for the same geometry."""
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal((2, 3, 7, 6)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((4, 3, 3, 2)))
    out = F.conv2d(x, w, stride=2, padding=1, dilation=(1, 2))
    g = rng.standard_normal(out.shape)
    out.backward(g)
    # 7 = (4 - 1) 2 - 2 + 2 + 0 + 1 and 6 = (3 - 1) 2 - 2 + 2 + 1 + 1: output_padding (0, 1)
    again = F.conv_transpose2d(mg.tensor(g), w, stride=2, padding=1, output_padding=(0, 1),
                               dilation=(1, 2))
    np.testing.assert_allclose(again.numpy(), x.grad.numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------- layers

LAYERS = [
    LayerCase("conv_transpose2d", lambda nn: nn.ConvTranspose2d(3, 2, 3), (1, 3, 2, 3)),
    LayerCase("conv_transpose2d_upsample_x2",
              lambda nn: nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1), (2, 2, 2, 3)),
    LayerCase("conv_transpose2d_kernel_2_stride_2",
              lambda nn: nn.ConvTranspose2d(3, 2, 2, stride=2, bias=False), (1, 3, 3, 2)),
    LayerCase("conv_transpose2d_everything",
              lambda nn: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                            output_padding=(1, 2), groups=2,
                                            dilation=(2, 1)), (1, 4, 3, 3)),
    LayerCase("conv_transpose2d_output_size",
              lambda nn: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), (1, 2, 3, 4),
              call=lambda lib, layer, x: layer(x, output_size=[6, 8])),
    LayerCase("conv_transpose2d_output_size_nchw",
              lambda nn: nn.ConvTranspose2d(2, 3, 3, stride=3), (1, 2, 2, 2),
              call=lambda lib, layer, x: layer(x, output_size=(1, 3, 7, 8))),
    LayerCase("conv2d_padding_same_even_kernel",
              lambda nn: nn.Conv2d(2, 2, (4, 3), padding="same", dilation=(1, 2)), (1, 2, 4, 4)),
    LayerCase("conv2d_padding_valid", lambda nn: nn.Conv2d(2, 3, 2, padding="valid"),
              (1, 2, 4, 3)),
]
test_layer_gradients, test_layer_against_pytorch, test_layer_builds_no_graph = layer_tests(
    LAYERS)
test_layer_against_pytorch = quiet(test_layer_against_pytorch)


REPRS = [
    lambda nn: nn.ConvTranspose2d(3, 2, 3),
    lambda nn: nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
    lambda nn: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                  output_padding=(1, 2), groups=2, bias=False, dilation=(2, 1)),
    lambda nn: nn.Conv2d(2, 3, 4, padding="same"),
    lambda nn: nn.Conv2d(2, 3, 4, padding="valid", bias=False),
    lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
    lambda nn: nn.Conv2d(2, 4, 3, padding="same", groups=2, padding_mode="circular"),
]


@pytest.mark.parametrize("build", REPRS)
def test_repr_and_state_dict_are_pytorchs(torch, build):
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert ours.padding == theirs.padding and ours.padding_mode == theirs.padding_mode
    assert ours._reversed_padding_repeated_twice == list(theirs._reversed_padding_repeated_twice)


@pytest.mark.parametrize("groups", [1, 2])
def test_default_init_is_pytorchs_for_the_transposed_weight(groups):
    """PyTorch's fan_in of the (in, out/groups, kH, kW) weight is (out/groups) kH kW: weight
    and bias uniform within 1/sqrt of it."""
    mg.manual_seed(0)
    layer = nn.ConvTranspose2d(200, 8, 3, groups=groups)
    assert layer.weight.shape == (200, 8 // groups, 3, 3) and layer.bias.shape == (8,)
    bound = 1 / math.sqrt(8 // groups * 9)
    for param in (layer.weight, layer.bias):
        assert param.dtype == mg.float32 and np.abs(param.numpy()).max() <= bound
    weights = layer.weight.numpy()
    assert abs(weights.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(np.abs(weights).max() - bound) < 0.01 * bound


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_modes_match_pytorch(torch, mode):
    """A padding mode pads the input with F.pad first (then the convolution pads nothing)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 6))
    for kwargs in [{"padding": (1, 2)}, {"padding": "same", "kernel_size": 4}]:
        kwargs = {"kernel_size": 3, **kwargs}
        theirs = torch.nn.Conv2d(2, 3, padding_mode=mode, **kwargs).double()
        ours = nn.Conv2d(2, 3, padding_mode=mode, **kwargs).double()
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
        x_ours = mg.tensor(x, requires_grad=True)
        out = ours(x_ours)
        x_theirs = torch.tensor(x, requires_grad=True)
        expected = theirs(x_theirs)
        upstream = rng.standard_normal(tuple(expected.shape))
        expected.backward(torch.tensor(upstream))
        out.backward(upstream)
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10,
                                   atol=1e-10)
        np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(), rtol=1e-10,
                                   atol=1e-10)


# --------------------------------------------------------------------------------------- errors


def zeros(*shape, dtype="float32"):
    return mg.zeros(*shape, dtype=dtype)


X = (2, 4, 5, 5)
BAD_CALLS = [
    ("3d-input", lambda: F.conv_transpose2d(zeros(4, 5, 5), zeros(4, 2, 3, 3)), ValueError,
     ["conv_transpose2d:", "(4, 5, 5)"]),
    ("3d-weight", lambda: F.conv_transpose2d(zeros(*X), zeros(4, 2, 3)), ValueError,
     ["conv_transpose2d:", "(4, 2, 3)"]),
    ("channel-mismatch", lambda: F.conv_transpose2d(zeros(*X), zeros(3, 2, 3, 3)), ValueError,
     ["conv_transpose2d:", "(2, 4, 5, 5)", "(3, 2, 3, 3)"]),
    ("groups-not-dividing", lambda: F.conv_transpose2d(zeros(*X), zeros(4, 2, 3, 3), groups=3),
     ValueError, ["conv_transpose2d:", "groups=3"]),
    ("bias-shape", lambda: F.conv_transpose2d(zeros(*X), zeros(4, 2, 3, 3), zeros(3),
                                              groups=2), ValueError, ["(4,)", "(3,)"]),
    ("dtype-mismatch", lambda: F.conv_transpose2d(zeros(*X), zeros(4, 2, 3, 3, dtype="float64")),
     TypeError, ["float32", "float64"]),
    ("output-padding-at-stride",
     lambda: F.conv_transpose2d(zeros(*X), zeros(4, 2, 3, 3), stride=2, output_padding=2),
     ValueError, ["output padding must be smaller than either stride or dilation",
                  "output_padding=(2, 2)", "stride=(2, 2)", "dilation=(1, 1)"]),
    ("output-padding-one-side",
     lambda: F.conv_transpose2d(zeros(*X), zeros(4, 2, 3, 3), stride=(2, 1),
                                output_padding=(1, 1)),
     ValueError, ["output padding must be smaller", "(1, 1)", "(2, 1)"]),
    ("negative-padding", lambda: F.conv_transpose2d(zeros(*X), zeros(4, 2, 3, 3), padding=-1),
     ValueError, ["conv_transpose2d: padding must be an int >= 0"]),
    ("zero-stride", lambda: F.conv_transpose2d(zeros(*X), zeros(4, 2, 3, 3), stride=0),
     ValueError, ["conv_transpose2d: stride must be an int >= 1"]),
    ("empty-output", lambda: F.conv_transpose2d(zeros(1, 4, 1, 1), zeros(4, 2, 1, 1),
                                                padding=1), ValueError,
     ["conv_transpose2d:", "too small", "(-1, -1)"]),
    ("same-with-stride", lambda: F.conv2d(zeros(*X), zeros(2, 4, 3, 3), stride=2,
                                          padding="same"), ValueError,
     ["conv2d: padding='same' is not supported for strided convolutions", "(2, 2)"]),
    ("bad-padding-string", lambda: F.conv2d(zeros(*X), zeros(2, 4, 3, 3), padding="full"),
     ValueError, ["conv2d: invalid padding string 'full'", "{'same', 'valid'}"]),
    ("valid-kernel-too-large", lambda: F.conv2d(zeros(*X), zeros(2, 4, 6, 3), padding="valid"),
     ValueError, ["conv2d:", "(6, 3)"]),
    ("layer-output-padding-at-stride",
     lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=2)(zeros(*X)), ValueError,
     ["output padding must be smaller"]),
    ("layer-output-size-out-of-range",
     lambda: nn.ConvTranspose2d(4, 2, 3, stride=2)(zeros(*X), output_size=(13, 11)),
     ValueError, ["requested an output size of (13, 11), but valid sizes range from [11, 11] "
                  "to [12, 12] (for an input of (5, 5))"]),
    ("layer-output-size-length",
     lambda: nn.ConvTranspose2d(4, 2, 3, stride=2)(zeros(*X), output_size=(1, 11, 11)),
     ValueError, ["output_size must have 2 or 4 elements (got 3)"]),
    ("layer-groups", lambda: nn.ConvTranspose2d(4, 3, 3, groups=2), ValueError,
     ["ConvTranspose2d: groups=2", "out_channels (3)"]),
    ("layer-padding-mode", lambda: nn.ConvTranspose2d(4, 2, 3, padding_mode="reflect"),
     ValueError, ['only "zeros" padding mode is supported', "'reflect'"]),
    ("layer-padding-string", lambda: nn.ConvTranspose2d(4, 2, 3, padding="same"), ValueError,
     ["ConvTranspose2d: padding must be an int >= 0 or a pair of them, got 'same'"]),
    ("conv-layer-same-with-stride", lambda: nn.Conv2d(4, 2, 3, stride=(1, 2), padding="same"),
     ValueError, ["Conv2d: padding='same' is not supported for strided convolutions"]),
    ("conv-layer-bad-padding-string", lambda: nn.Conv2d(4, 2, 3, padding="half"), ValueError,
     ["Conv2d: invalid padding string 'half', should be one of {'same', 'valid'}"]),
    ("conv-layer-bad-padding-mode", lambda: nn.Conv2d(4, 2, 3, padding_mode="mirror"),
     ValueError, ["padding_mode must be one of {'zeros', 'reflect', 'replicate', 'circular'}, "
                  "but got padding_mode='mirror'"]),
]


@pytest.mark.parametrize(("call", "error", "details"), [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_rejected_with_a_clear_message(call, error, details):
    with raises_saying(error, details):
        call()


def test_pytorch_accepts_and_rejects_the_same_output_paddings(torch):
    """output_padding below the stride or below the dilation, per side: PyTorch's rule."""
    x, w = np.zeros((1, 2, 3, 3)), np.zeros((2, 2, 3, 3))
    for stride in (1, 2, 3):
        for dilation in (1, 2):
            for output_padding in range(4):
                kwargs = {"stride": stride, "dilation": dilation, "output_padding": output_padding}
                try:
                    torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w),
                                                         **kwargs)
                    theirs = None
                except RuntimeError as error:
                    theirs = error
                if theirs is None:
                    F.conv_transpose2d(mg.tensor(x), mg.tensor(w), **kwargs)
                else:
                    with pytest.raises(ValueError, match="output padding must be smaller"):
                        F.conv_transpose2d(mg.tensor(x), mg.tensor(w), **kwargs)
