"""TransformerEncoderLayer and TransformerEncoder (minigrad/nn/transformer.py) against PyTorch:
outputs and every gradient with masks, post- and pre-norm, relu, gelu and callables, batch
first or not, training (dropout 0) and eval; state dicts, reprs and the deep copies; gradients
against finite differences."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from layer_table import LayerCase, layer_tests, random_state
from test_attention import assert_close

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.testing import gradcheck

# Tiny, because the layer table checks every parameter element by finite differences, and
# plain: the table compares float32 element-wise at 1e-5, which attention's softmax backward,
# pre-norm's growing residual stream and LayerNorm's backward over few features (both
# cancellations) exceed now and then with the table's std-1 random weights, in PyTorch too
# (see test_attention.tolerance): about 1 random configuration in 100. The others (gelu,
# pre-norm, batch_first, eval, two layers, a final norm, masks) are compared with PyTorch
# below, relative to each array's scale in float32.
LAYERS = [
    LayerCase("transformer_encoder_layer",
              lambda nn: nn.TransformerEncoderLayer(3, 3, 2, dropout=0.0), (3, 1, 3)),
    LayerCase("transformer_encoder",
              lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(3, 3, 2, dropout=0.0),
                                               1, enable_nested_tensor=False), (2, 2, 3)),
]
test_layer_gradients, test_layer_against_pytorch, test_layer_builds_no_graph = layer_tests(
    LAYERS)


def silu(lib):
    return lib.nn.functional.silu


CONFIGS = {
    "post_norm_relu": dict(d_model=4, nhead=2, dim_feedforward=6, dropout=0.0),
    "pre_norm_gelu_batch_first": dict(d_model=6, nhead=3, dim_feedforward=5, dropout=0.0,
                                      activation="gelu", batch_first=True, norm_first=True),
    "eval_default_dropout": dict(d_model=4, nhead=2, dim_feedforward=8),
    "callable_activation_no_bias_eps": dict(d_model=4, nhead=1, dim_feedforward=3,
                                            dropout=0.0, activation=silu, bias=False,
                                            layer_norm_eps=1e-3, batch_first=True),
}


def build(lib, name: str):
    kwargs = dict(CONFIGS[name])
    if callable(kwargs.get("activation")):
        kwargs["activation"] = kwargs["activation"](lib)
    return lib.nn.TransformerEncoderLayer(**kwargs)


def masks(rng, name: str, kind: str, n: int, length: int, dtype: str) -> dict:
    """src_mask and src_key_padding_mask (key 0 never masked, so no row loses every key)."""
    heads = CONFIGS[name]["nhead"]
    out = {}
    if kind in ("bool", "float"):
        padded = rng.random((n, length)) < 0.3
        padded[:, 0] = False
        attn = rng.random((n * heads, length, length)) < 0.3
        attn[..., 0] = False
        if kind == "bool":
            out = {"src_mask": attn, "src_key_padding_mask": padded}
        else:
            out = {"src_mask": np.where(attn, -np.inf, 0.5).astype(dtype),
                   "src_key_padding_mask": np.where(padded, -np.inf, -0.25).astype(dtype)}
    elif kind == "causal":
        out = {"src_mask": np.triu(np.ones((length, length), bool), 1), "is_causal": True}
    return out


def compare(torch, host_backend, dtype, ours, theirs, x, extra, rng, training=True):
    """Load PyTorch's (random) parameters into ours, run both on x with `extra` keyword
    arguments (numpy masks), and compare the output and every gradient."""
    theirs = theirs.to(getattr(torch, dtype)).train(training)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in random_state(theirs, rng).items()})
    ours = ours.to(dtype).train(training)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())

    def convert(lib, value):
        return lib.tensor(value) if isinstance(value, np.ndarray) else value

    x_theirs = torch.tensor(x, requires_grad=True)
    expected = theirs(x_theirs, **{k: convert(torch, v) for k, v in extra.items()})
    upstream = rng.standard_normal(tuple(expected.shape)).astype(dtype)
    expected.backward(torch.tensor(upstream))
    with mg.backend(host_backend):
        x_ours = mg.tensor(x, requires_grad=True)
        out = ours(x_ours, **{k: convert(mg, v) for k, v in extra.items()})
        out.backward(upstream)
    assert_close(out, expected, dtype, "output")
    assert_close(x_ours.grad, x_theirs.grad, dtype, "input")
    their_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert_close(param.grad, their_params[name].grad, dtype, name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "mask", "batched"), [
    ("post_norm_relu", "bool", True), ("post_norm_relu", "causal", True),
    ("pre_norm_gelu_batch_first", "float", True), ("eval_default_dropout", "bool", True),
    ("callable_activation_no_bias_eps", None, True),
    ("callable_activation_no_bias_eps", None, False)])
def test_encoder_layer_matches_pytorch(torch, host_backend, dtype, name, mask, batched):
    rng = np.random.default_rng(0)
    n, length, d = 2, 4, CONFIGS[name]["d_model"]
    batch_first = CONFIGS[name].get("batch_first", False)
    shape = ((n, length, d) if batch_first else (length, n, d)) if batched else (length, d)
    x = rng.standard_normal(shape).astype(dtype)
    extra = masks(rng, name, mask, n, length, dtype)
    training = name != "eval_default_dropout"
    compare(torch, host_backend, dtype, build(mg, name), build(torch, name), x, extra, rng,
            training)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mask", ["bool", "causal_detected", "causal_hint"])
def test_encoder_matches_pytorch(torch, host_backend, dtype, mask):
    """Two deep-copied layers and a final norm; the causal mask given as a float mask with
    is_causal left to be detected (None), or as a bool mask with the hint."""
    rng = np.random.default_rng(1)
    n, length = 2, 5

    def encoder(lib):
        layer = lib.nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, batch_first=True)
        return lib.nn.TransformerEncoder(layer, 2, norm=lib.nn.LayerNorm(4),
                                         enable_nested_tensor=False)

    x = rng.standard_normal((n, length, 4)).astype(dtype)
    if mask == "bool":
        extra = {k.replace("src_mask", "mask"): v
                 for k, v in masks(rng, "post_norm_relu", "bool", n, length, dtype).items()}
    elif mask == "causal_detected":
        extra = {"mask": np.triu(np.full((length, length), -np.inf), 1).astype(dtype)}
    else:
        extra = {"mask": np.triu(np.ones((length, length), bool), 1), "is_causal": True}
    compare(torch, host_backend, dtype, encoder(mg), encoder(torch), x, extra, rng)


def test_is_causal_is_detected_as_pytorch_does():
    from minigrad.nn.transformer import _detect_is_causal_mask

    causal = np.triu(np.full((4, 4), -np.inf), 1)
    assert _detect_is_causal_mask(mg.tensor(causal), None, 4, np.float64)
    assert _detect_is_causal_mask(mg.tensor(causal != 0), None, 4, np.float64)
    assert not _detect_is_causal_mask(mg.tensor(causal.T), None, 4, np.float64)
    assert not _detect_is_causal_mask(mg.tensor(causal), None, 5, np.float64)
    assert not _detect_is_causal_mask(mg.tensor(causal), False, 4, np.float64)
    assert _detect_is_causal_mask(None, True, 4, np.float64)
    assert not _detect_is_causal_mask(None, None, 4, np.float64)


@given(seed=st.integers(0, 2**16), norm_first=st.booleans(), mask=st.booleans())
def test_encoder_gradients_match_finite_differences(seed, norm_first, mask):
    """A two-layer encoder with masks, through its input and every parameter (in random
    directions: the layer table checks every element of its tiny cases)."""
    rng = np.random.default_rng(seed)
    layer = nn.TransformerEncoderLayer(4, 2, 3, dropout=0.0, activation="gelu",
                                       norm_first=norm_first)
    encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(4)).double()
    encoder.load_state_dict(random_state(encoder, rng))
    x = mg.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    extra = {k.replace("src_mask", "mask"): mg.tensor(v) for k, v in
             masks(rng, "post_norm_relu", "float" if mask else None, 2, 3, "float64").items()}
    assert gradcheck(lambda x, *params: encoder(x, **extra),
                     [x, *encoder.parameters()], seed=seed, fast_mode=True)


@pytest.mark.parametrize("activation", ["relu", "gelu", "F.relu", "F.gelu", "GELU", "lambda"])
def test_repr_state_dict_and_activation_match_pytorch(torch, activation):
    def make(lib):
        chosen = {"F.relu": lib.nn.functional.relu, "F.gelu": lib.nn.functional.gelu,
                  "GELU": lib.nn.GELU(), "lambda": lambda x: x * 2}.get(activation, activation)
        layer = lib.nn.TransformerEncoderLayer(8, 2, 16, activation=chosen, norm_first=True)
        return layer, lib.nn.TransformerEncoder(layer, 3, norm=lib.nn.LayerNorm(8),
                                                enable_nested_tensor=False)

    (layer, encoder), (their_layer, their_encoder) = make(mg), make(torch)
    assert repr(layer) == repr(their_layer)
    assert repr(encoder) == repr(their_encoder)
    assert layer.activation_relu_or_gelu == their_layer.activation_relu_or_gelu
    for ours, theirs in ((layer, their_layer), (encoder, their_encoder)):
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            assert ours.state_dict()[key].shape == tuple(value.shape), key
        assert repr(ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
                    ) == "<All keys matched successfully>"
    assert encoder.num_layers == 3 and encoder.enable_nested_tensor is False
    assert [name for name, _ in layer.named_children()] == \
        [name for name, _ in their_layer.named_children()]


def test_encoder_layers_are_independent_deep_copies():
    mg.manual_seed(0)
    layer = nn.TransformerEncoderLayer(4, 2, 8)
    encoder = nn.TransformerEncoder(layer, 2)
    first, second = encoder.layers[0], encoder.layers[1]
    assert first is not layer and second is not first
    for (name, a), (_, b), (_, c) in zip(first.named_parameters(), second.named_parameters(),
                                         layer.named_parameters()):
        assert a is not b and a is not c, name
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # equal at init, as in PyTorch
        np.testing.assert_array_equal(a.numpy(), c.numpy())
    with mg.no_grad():
        first.linear1.weight.fill_(1.0)
    assert not np.allclose(second.linear1.weight.numpy(), 1.0)
    assert len(list(encoder.parameters())) == 2 * len(list(layer.parameters()))
    assert copy.deepcopy(encoder).layers[0].self_attn.in_proj_weight is not \
        first.self_attn.in_proj_weight


def test_dropout_acts_in_training_only():
    mg.manual_seed(0)
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.5)
    x = mg.randn(3, 2, 4)
    mg.manual_seed(1)
    first = layer(x).numpy()
    mg.manual_seed(1)
    np.testing.assert_array_equal(layer(x).numpy(), first)  # the seed fixes every mask
    layer.eval()
    evaluated = layer(x).numpy()
    assert not np.allclose(first, evaluated)
    np.testing.assert_array_equal(layer(x).numpy(), evaluated)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_padded_positions_under_pytorchs_nested_fast_path(torch):
    """PyTorch's inference path (eval, no grad, batch_first, even nhead) packs the
    sequences into a nested tensor and returns 0 at padded positions; minigrad computes every
    position as in training. The positions that are not padding agree."""
    theirs = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(4, 2, 8, batch_first=True), 2).eval()
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8, batch_first=True),
                                 2).eval()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    padded = np.zeros((2, 5), bool)
    padded[0, 3:] = True
    with torch.no_grad():
        expected = theirs(torch.tensor(x), src_key_padding_mask=torch.tensor(padded)).numpy()
    with mg.no_grad():
        out = ours(mg.tensor(x), src_key_padding_mask=mg.tensor(padded)).numpy()
    np.testing.assert_array_equal(expected[padded], 0.0)
    assert np.abs(out[padded]).max() > 0
    np.testing.assert_allclose(out[~padded], expected[~padded], rtol=1e-5, atol=1e-5)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="activation should be 'relu', 'gelu' or a callable, "
                                         "not 'tanh'"):
        nn.TransformerEncoderLayer(4, 2, activation="tanh")
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads, got "
                                         "embed_dim=6 and num_heads=4"):
        nn.TransformerEncoderLayer(6, 4)
    layer = nn.TransformerEncoderLayer(4, 2, 8)
    with pytest.raises(ValueError, match=r"the 2-D attn_mask has shape \(3, 3\), but should be "
                                         r"\(5, 5\)"):
        layer(mg.zeros(5, 2, 4), src_mask=mg.zeros(3, 3, dtype=np.bool_))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 5\)"):
        layer(mg.zeros(5, 2, 4), src_key_padding_mask=mg.zeros(5, 2, dtype=np.bool_))
    with pytest.raises(ValueError, match=r"expected query's embedding dim to be 4, got query "
                                         r"\(5, 2, 3\)"):
        layer(mg.zeros(5, 2, 3))


def test_on_the_gpu_stand_in_as_on_the_numpy_backend():
    """Token embeddings, a two-layer encoder (padding mask, dropout in training), attention
    with its weights, and sdpa with a bool mask, dropout and a fully masked row: on CuPy's
    stand-in (tests/cuda_on_cpu.py: NumPy memory behind CuPy's interface and refusals) as on
    the NumPy reference, gradients included, in float64 and from the same seed."""
    import cuda_on_cpu
    from helpers import skip_or_fail

    if cuda_on_cpu.compiler() is None:
        skip_or_fail("no C++ compiler (c++, g++ or clang++ on PATH) to build the CUDA kernels "
                     "for the CPU")
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 7, (2, 5))
    padded = np.zeros((2, 5), bool)
    padded[1, 3:] = True
    keep = rng.random((4, 4)) < 0.7
    keep[2] = False
    upstream = [rng.standard_normal(shape) for shape in ((2, 5, 4), (2, 5, 4), (2, 5, 5),
                                                           (2, 4, 3))]
    mg.manual_seed(0)
    with mg.backend("numpy"):
        host = nn.ModuleList([
            nn.Embedding(7, 4, padding_idx=0),
            nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 6, batch_first=True), 2),
            nn.MultiheadAttention(4, 2, dropout=0.3, batch_first=True)]).double()
    device = copy.deepcopy(host)
    results = {}
    with cuda_on_cpu.installed():
        device.to("cupy")
        for backend, model in (("numpy", host), ("cupy", device)):
            with mg.backend(backend):
                embedding, encoder, attention = model
                mg.manual_seed(1)
                x = embedding(mg.tensor(tokens))
                encoded = encoder(x, src_key_padding_mask=mg.tensor(padded))
                attended, weights = attention(encoded, x, x)
                q, k, v = (mg.tensor(rng_values, requires_grad=True) for rng_values in
                           np.random.default_rng(2).standard_normal((3, 2, 4, 3)))
                sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=mg.tensor(keep),
                                                      dropout_p=0.2)
                total = sum(((out * mg.tensor(u)).sum() for out, u in
                             zip((encoded, attended, weights, sdpa), upstream)), mg.tensor(0.0))
                total.backward()
                results[backend] = [t.numpy() for t in (encoded, attended, weights, sdpa,
                                                         q.grad, k.grad, v.grad)]
                results[backend] += [p.grad.numpy() for p in model.parameters()]
                assert sdpa.device == ("cuda" if backend == "cupy" else "cpu")
    assert len(results["numpy"]) == len(results["cupy"])
    for ours, reference in zip(results["cupy"], results["numpy"]):
        np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12)
