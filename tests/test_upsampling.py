"""F.interpolate and the Upsample layers: PyTorch's index rules (checked exhaustively on small
sizes), gradients, PyTorch forward and backward on every backend in float32 and float64 (drawn
memory layouts too), non-finite values, the layers, errors and reprs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import raises_saying
from hypothesis import strategies as st
from layer_table import LayerCase, layer_tests
from op_table import DTYPES, OpCase, compare_with_pytorch, op_tests

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.testing.strategies import arrays

# Each output is one pixel (nearest) or a mix of four (bilinear), with weights PyTorch also
# computes in the input's dtype: float32 agrees to an ulp or two.
PYTORCH_TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10},
                     "float32": {"rtol": 1e-5, "atol": 1e-5}}
MODES = [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True)]

# Scale factors with awkward binary expansions (1/3, 0.7, 1.1) and the exact ones people use.
SCALES = [0.3, 0.5, 0.7, 1.0, 1.1, 4 / 3, 1.5, 2.0, 2.5, 7 / 3, 3.0]


# ----------------------------------------------------------------------------- input strategies


@st.composite
def sizing(draw, in_hw: tuple[int, int]) -> dict:
    """size (an int or a pair) or scale_factor (a number or a pair, with
    recompute_scale_factor None, False or True), giving an output of at least 1 x 1."""
    if draw(st.booleans()):
        size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
        return {"size": size if size[0] != size[1] or draw(st.booleans()) else size[0]}
    factors = st.sampled_from(SCALES) | st.floats(0.2, 3.5).map(lambda f: round(f, 3))
    pair = (draw(factors), draw(factors))
    if min(int(in_hw[d] * pair[d]) for d in range(2)) < 1:
        pair = (max(pair[0], 1.0), max(pair[1], 1.0))
    scale = pair if pair[0] != pair[1] or draw(st.booleans()) else pair[0]
    return {"scale_factor": scale,
            "recompute_scale_factor": draw(st.sampled_from([None, False, True]))}


@st.composite
def interpolate_inputs(draw, mode: str, align_corners: bool | None):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 6)),
             draw(st.integers(1, 6)))
    params = {"mode": mode, "align_corners": align_corners, **draw(sizing(shape[2:]))}
    return (draw(arrays(shape)),), params


def interpolate(F, x, **params):
    return F.interpolate(x, **params)


CASES = [OpCase(f"interpolate_{mode}" + ("" if corners is None else f"_corners_{corners}"),
                interpolate, interpolate_inputs(mode, corners)) for mode, corners in MODES]


(test_gradient_matches_finite_differences, test_forward_and_backward_match_pytorch,
 test_no_graph_under_no_grad) = op_tests(CASES, F, lambda torch: torch.nn.functional,
                                         PYTORCH_TOLERANCE, gradient_backend="backend")


# ------------------------------------------------------------------ PyTorch's index rules, all


def sizings(in_size: int) -> list[dict]:
    """Every output size 1..3 in + 2, and every scale factor of SCALES (with and without
    recompute_scale_factor) that leaves a pixel, along H."""
    out = [{"size": (o, 2)} for o in range(1, 3 * in_size + 3)]
    for factor in SCALES:
        if int(in_size * factor) >= 1:
            out += [{"scale_factor": (factor, 1.0)},
                    {"scale_factor": (factor, 1.0), "recompute_scale_factor": True}]
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("mode", "align_corners"), MODES)
def test_every_small_resize_matches_pytorch(torch, mode, align_corners, dtype):
    """Inputs 1..9 pixels tall, every output size up to 3x + 2 and every scale factor: the
    sources PyTorch picks (nearest's floors in float32 included) and its weights."""
    rng = np.random.default_rng(0)
    for in_size in range(1, 10):
        x = rng.standard_normal((1, 2, in_size, 2)).astype(dtype)
        for kwargs in sizings(in_size):
            expected = torch.nn.functional.interpolate(torch.tensor(x), mode=mode,
                                                       align_corners=align_corners, **kwargs)
            out = F.interpolate(mg.tensor(x), mode=mode, align_corners=align_corners, **kwargs)
            assert out.shape == tuple(expected.shape), kwargs
            np.testing.assert_allclose(out.numpy(), expected.numpy(),
                                       **PYTORCH_TOLERANCE[dtype], err_msg=f"{in_size} {kwargs}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_rounds_as_pytorchs_kernels_do_on_both_sides_of_128(torch, mode, dtype):
    """PyTorch's forward has two kernels, switching at OH + OW = 128, which round i * scale
    differently (float32, or the input's precision; nearest-exact with a fused multiply-add),
    and its backward rounds as the first: where i * in / out is a whole number, forward and
    backward can pick different sources. Every output height from 100 to 199 (plus OW = 1)
    from 2, 3 and 4 pixels, forward and backward, exactly."""
    rng = np.random.default_rng(4)
    for in_size in (2, 3, 4):
        x = rng.standard_normal((1, 2, in_size, 3)).astype(dtype)
        for out_size in range(100, 200):
            theirs = torch.tensor(x, requires_grad=True)
            expected = torch.nn.functional.interpolate(theirs, size=(out_size, 1), mode=mode)
            upstream = rng.standard_normal(tuple(expected.shape)).astype(dtype)
            expected.backward(torch.tensor(upstream))
            ours = mg.tensor(x, requires_grad=True)
            out = F.interpolate(ours, size=(out_size, 1), mode=mode)
            out.backward(upstream)
            np.testing.assert_array_equal(out.numpy(), expected.detach().numpy(),
                                          err_msg=f"{in_size} -> {out_size}")
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12,
                                       atol=1e-12 if dtype == "float64" else 1e-5,
                                       err_msg=f"{in_size} -> {out_size}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("mode", "align_corners"), MODES)
def test_large_images_match_pytorch(torch, host_backend, mode, align_corners, dtype):
    """Big enough that the Numba backend splits the W pass's GEMM over its threads."""
    x = np.random.default_rng(1).standard_normal((4, 16, 40, 37)).astype(dtype)
    params = {"mode": mode, "align_corners": align_corners}
    for sizing_ in ({"scale_factor": 2}, {"size": (31, 90)}, {"scale_factor": (0.6, 1.7)}):
        compare_with_pytorch(torch, interpolate, (F, torch.nn.functional), [x],
                             {**params, **sizing_}, 0, PYTORCH_TOLERANCE[dtype], host_backend,
                             layouts=("channels_last", "transposed"))


def non_finite(dtype: str, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((2, 2, 5, 4)).astype(dtype)
    x[0, 0, 1, 2], x[0, 1, 4, 0], x[1, 0, 2, 3] = np.inf, -np.inf, np.nan
    return x


@pytest.mark.parametrize(("mode", "align_corners"), MODES)
def test_inf_and_nan_stay_where_pytorch_puts_them(torch, host_backend, mode, align_corners):
    """An inf or NaN reaches the outputs that read it (and, times a weight of 0, PyTorch's NaN
    next to them), not the whole row a matrix product would smear it over; in the forward
    and in the backward (an upstream gradient with inf and NaN)."""
    rng = np.random.default_rng(2)
    for dtype in DTYPES:
        x = non_finite(dtype, rng)
        for kwargs in ({"scale_factor": 2}, {"size": (7, 9)}, {"scale_factor": (0.5, 1.5)}):
            kwargs = {"mode": mode, "align_corners": align_corners, **kwargs}
            theirs = torch.tensor(x, requires_grad=True)
            expected = torch.nn.functional.interpolate(theirs, **kwargs)
            upstream = non_finite(dtype, rng)
            upstream = np.resize(upstream, tuple(expected.shape)).astype(dtype)
            expected.backward(torch.tensor(upstream))
            with mg.backend(host_backend):
                ours = mg.tensor(x, requires_grad=True)
                out = F.interpolate(ours, **kwargs)
                out.backward(upstream)
            np.testing.assert_allclose(out.numpy(), expected.detach().numpy(),
                                       **PYTORCH_TOLERANCE[dtype])
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(),
                                       **PYTORCH_TOLERANCE[dtype])


def test_values_near_the_float32_limit_are_interpolated_exactly(torch):
    """Their sum overflows, so minigrad takes its tap-by-tap path; still PyTorch's values."""
    x = np.full((1, 1, 3, 3), 3e38, np.float32)
    x[0, 0, 1, 1] = -3e38
    expected = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=2, mode="bilinear")
    out = F.interpolate(mg.tensor(x), scale_factor=2, mode="bilinear")
    assert np.isfinite(out.numpy()).all()
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)


def test_same_size_is_a_copy_not_a_view():
    x = mg.randn(1, 2, 3, 4)
    for mode, corners in MODES:
        out = F.interpolate(x, size=(3, 4), mode=mode, align_corners=corners)
        np.testing.assert_array_equal(out.numpy(), x.numpy())
        assert not np.shares_memory(out.array, x.array)


def test_area_mode_is_adaptive_average_pooling(torch):
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 7))
    for kwargs in ({"size": (3, 7)}, {"scale_factor": 0.5}, {"size": (4, 5)}):
        compare_with_pytorch(torch, interpolate, (F, torch.nn.functional), [x],
                             {"mode": "area", **kwargs}, 0, PYTORCH_TOLERANCE["float64"])


def test_nearest_copies_integer_images(torch):
    x = np.arange(24, dtype=np.uint8).reshape(1, 2, 3, 4)
    expected = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=(1.5, 0.6))
    out = F.interpolate(mg.tensor(x), scale_factor=(1.5, 0.6))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


# ------------------------------------------------------------------------------------- layers

LAYERS = [
    LayerCase("upsample_nearest_x2", lambda nn: nn.Upsample(scale_factor=2), (1, 2, 3, 2)),
    LayerCase("upsample_nearest_size", lambda nn: nn.Upsample(size=(5, 3)), (2, 1, 3, 4)),
    LayerCase("upsample_nearest_exact",
              lambda nn: nn.Upsample(scale_factor=(1.5, 0.7), mode="nearest-exact"),
              (1, 2, 4, 5)),
    LayerCase("upsample_bilinear",
              lambda nn: nn.Upsample(scale_factor=2, mode="bilinear"), (1, 2, 3, 3)),
    LayerCase("upsample_bilinear_align_corners_size",
              lambda nn: nn.Upsample(size=(4, 7), mode="bilinear", align_corners=True),
              (1, 2, 3, 2)),
    LayerCase("upsample_bilinear_recompute",
              lambda nn: nn.Upsample(scale_factor=(1.7, 2.2), mode="bilinear",
                                     recompute_scale_factor=True), (1, 1, 3, 2)),
    LayerCase("upsampling_nearest2d", lambda nn: nn.UpsamplingNearest2d(scale_factor=3),
              (1, 2, 2, 2)),
    LayerCase("upsampling_bilinear2d", lambda nn: nn.UpsamplingBilinear2d(size=(3, 5)),
              (1, 2, 2, 3)),
]
test_layer_gradients, test_layer_against_pytorch, test_layer_builds_no_graph = layer_tests(
    LAYERS)

REPRS = [
    lambda nn: nn.Upsample(scale_factor=2),
    lambda nn: nn.Upsample(scale_factor=(2, 1.5), mode="bilinear", align_corners=True),
    lambda nn: nn.Upsample(size=(3, 4), mode="bilinear"),
    lambda nn: nn.Upsample(size=5, scale_factor=None, mode="nearest-exact"),
    lambda nn: nn.Upsample(scale_factor=0),  # PyTorch's `float(scale_factor) if scale_factor`
    lambda nn: nn.UpsamplingNearest2d(size=4),
    lambda nn: nn.UpsamplingBilinear2d(scale_factor=2),
    lambda nn: nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(2, 2, 3)),
]


@pytest.mark.parametrize("build", REPRS)
def test_repr_and_attributes_are_pytorchs(torch, build):
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    if isinstance(theirs, torch.nn.Upsample):
        for name in ("name", "size", "scale_factor", "mode", "align_corners",
                     "recompute_scale_factor"):
            assert getattr(ours, name) == getattr(theirs, name), name
        assert ours.state_dict() == {} == dict(theirs.state_dict())


# --------------------------------------------------------------------------------------- errors

X = (2, 3, 4, 5)
BAD_CALLS = [
    ("3d-input", {"size": 4}, (3, 4, 5), ValueError,
     ["interpolate: expected a 4-D input (N, C, H, W), got (3, 4, 5)", "'bilinear'"]),
    ("5d-input", {"size": 4}, (1, 2, 3, 4, 5), ValueError, ["4-D", "(1, 2, 3, 4, 5)"]),
    ("trilinear", {"size": 4, "mode": "trilinear"}, X, ValueError,
     ["interpolate: mode 'trilinear' is not supported", "'nearest', 'nearest-exact', "
      "'bilinear', 'area'", "not implemented"]),
    ("unknown-mode", {"size": 4, "mode": "cubic"}, X, ValueError, ["mode 'cubic'"]),
    ("align-corners-with-nearest", {"size": 4, "align_corners": True}, X, ValueError,
     ["align_corners option can only be set with the interpolating modes"]),
    ("size-and-scale", {"size": 4, "scale_factor": 2}, X, ValueError,
     ["only one of size or scale_factor should be defined"]),
    ("neither", {}, X, ValueError, ["either size or scale_factor should be defined"]),
    ("recompute-with-size", {"size": 4, "recompute_scale_factor": True}, X, ValueError,
     ["recompute_scale_factor is not meaningful with an explicit size."]),
    ("size-length", {"size": (4, 5, 6)}, X, ValueError,
     ["input and size must have the same number of spatial dimensions", "[4, 5]", "(4, 5, 6)"]),
    ("scale-length", {"scale_factor": [2.0]}, X, ValueError,
     ["input and scale_factor must have the same number of spatial dimensions"]),
    ("float-size", {"size": (4.0, 5)}, X, TypeError,
     ["expected size to be one of int or Tuple[int, int]", "float"]),
    ("zero-size", {"size": (0, 5)}, X, ValueError,
     ["input and output sizes should be greater than 0", "output (H: 0, W: 5)"]),
    ("scale-to-nothing", {"scale_factor": 0.1}, X, ValueError,
     ["input (H: 4, W: 5) output (H: 0, W: 0)"]),
    ("antialias", {"size": 4, "mode": "bilinear", "antialias": True}, X, ValueError,
     ["antialias=True is not supported"]),
]


@pytest.mark.parametrize(("kwargs", "shape", "error", "details"), [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_rejected_with_a_clear_message(kwargs, shape, error, details):
    with raises_saying(error, details):
        F.interpolate(mg.zeros(*shape), **kwargs)


def test_bilinear_needs_floating_point():
    with pytest.raises(TypeError, match="interpolate: bilinear .* int64"):
        F.interpolate(mg.tensor(np.zeros((1, 1, 2, 2), np.int64)), size=3, mode="bilinear")
