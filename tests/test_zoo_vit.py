"""The Vision Transformer (minigrad.models.vision_transformer) against torchvision 0.28.0's:
structure of every builder, logits, SGD steps, initialisation, repr and errors (tests/zoo.py)."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import pytest
import zoo
from helpers import backend_under_test, raises_saying

import minigrad as mg
from minigrad import nn
from minigrad.models import vision_transformer as vit

# The smallest sensible ViT: 32x32 images in 4x4 patches of 8x8, 16 + 1 tokens.
SMALL = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 32,
         "mlp_dim": 64}
SMALL_INPUT = (2, 3, 32, 32)
PUBLISHED = {"vit_b_16": 86_567_656, "vit_b_32": 88_224_232, "vit_l_16": 304_326_632,
             "vit_l_32": 306_535_400,  # torchvision's weights metadata (num_params)
             "vit_h_14": 632_045_800}  # at 224 (its weights' metadata counts 518x518's)


def stems(config: Any, silu: Any, stem: str) -> list:
    """Three conv-norm-activation layers of strides 2, 2, 2 (8 = the patch size), one with
    SiLU, as `config` (vit.ConvStemConfig or torchvision's) builds them; stem "batchnorm"
    (the default norm layer) or "plain" (no norm layer: convs with biases)."""
    extra = {} if stem == "batchnorm" else {"norm_layer": None}
    return [config(8, 3, 2, **extra), config(16, 3, 2, activation_layer=silu, **extra),
            config(16, 5, 2, **extra)]


def both(tv: Any, torch: Any, stem: str | None = None, **kwargs: Any) -> tuple[Any, Any]:
    """Ours and torchvision's VisionTransformer with the same arguments; stem: None (the
    patchify conv) or a kind of `stems`."""
    ours_kw, theirs_kw = dict(kwargs), dict(kwargs)
    if stem is not None:
        ours_kw["conv_stem_configs"] = stems(vit.ConvStemConfig, nn.SiLU, stem)
        theirs_kw["conv_stem_configs"] = stems(tv.vision_transformer.ConvStemConfig,
                                               torch.nn.SiLU, stem)
    return vit.VisionTransformer(**ours_kw), tv.VisionTransformer(**theirs_kw)


def shaken(torch: Any, model: Any, scale: float = 0.1) -> Any:
    """Every parameter plus N(0, scale^2) noise (the head starts at zero, most biases near it),
    then `zoo.randomised` for BatchNorm's statistics."""
    torch.manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * scale)
    return zoo.randomised(torch, model)


# ---------------------------------------------------------------------------------- structure


@pytest.fixture(scope="module")
def vit_b_16_pair(torch: Any, tv: Any) -> tuple[Any, Any]:
    with zoo.without_random_init():
        ours = vit.vit_b_16()
    return ours, zoo.meta_model(torch, tv.vit_b_16)


def test_vit_b_16_structure_and_published_count(vit_b_16_pair: tuple) -> None:
    ours, theirs = vit_b_16_pair
    zoo.assert_same_structure(ours, theirs, PUBLISHED["vit_b_16"])
    assert ours.image_size == 224 and ours.seq_length == 14 * 14 + 1


@pytest.mark.parametrize("name", ["vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"])
def test_builder_structure(torch: Any, tv: Any, name: str) -> None:
    with zoo.without_random_init():
        ours = getattr(vit, name)()
    zoo.assert_same_structure(ours, zoo.meta_model(torch, getattr(tv, name)), PUBLISHED[name])


@pytest.mark.parametrize("kwargs", [
    {"num_classes": 7},
    {"image_size": 64, "representation_size": 5, "num_classes": 7},
    {"image_size": 384, "dropout": 0.1, "attention_dropout": 0.1},
])
def test_builder_arguments_structure(torch: Any, tv: Any, kwargs: dict) -> None:
    with zoo.without_random_init():
        ours = vit.vit_b_32(**kwargs)
    zoo.assert_same_structure(ours, zoo.meta_model(torch, tv.vit_b_32, **kwargs))


@pytest.mark.parametrize("stem", [None, "batchnorm", "plain"])
@pytest.mark.parametrize("representation_size", [None, 24])
def test_small_structure(torch: Any, tv: Any, stem: Any, representation_size: Any) -> None:
    ours, theirs = both(tv, torch, stem, representation_size=representation_size,
                        num_classes=7, **SMALL)
    zoo.assert_same_structure(ours, theirs)


# ------------------------------------------------------------------------------------- logits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", [
    {},
    {"stem": "batchnorm", "representation_size": 24, "num_classes": 7},
])
def test_small_logits(torch: Any, tv: Any, dtype: type, variant: dict) -> None:
    ours, theirs = both(tv, torch, **variant, **SMALL)
    zoo.assert_same_logits(torch, ours, shaken(torch, theirs), SMALL_INPUT, dtype)


def test_small_logits_numba(torch: Any, tv: Any) -> None:
    backend_under_test("numba")
    with mg.backend("numba"):
        ours, theirs = both(tv, torch, "batchnorm", representation_size=24, **SMALL)
        zoo.assert_same_logits(torch, ours, shaken(torch, theirs), SMALL_INPUT, np.float32)


def test_vit_b_16_logits_at_224(torch: Any, tv: Any) -> None:
    """The real thing, once: 86.6M parameters, 197 tokens, in float32 (about 3 s)."""
    with zoo.without_random_init():
        ours = vit.vit_b_16()
    theirs = tv.vit_b_16()
    torch.manual_seed(2)
    with torch.no_grad():  # the zero head and class token, the near-zero biases
        for param in theirs.parameters():
            if param.dim() == 1 or param.shape[0] == 1000:
                param.add_(torch.randn_like(param) * 0.05)
        theirs.class_token.normal_(0, 0.5)
    zoo.assert_same_logits(torch, ours, theirs, (1, 3, 224, 224), np.float32)


def test_loads_legacy_mlp_keys(torch: Any, tv: Any) -> None:
    """Checkpoints from before torchvision 0.14 (its published ViT weights) name the MLP's
    Linear layers mlp.linear_1 and mlp.linear_2; they load, and give the same logits."""
    ours, theirs = both(tv, torch, **SMALL)
    theirs = shaken(torch, theirs).eval()
    legacy = {key.replace("mlp.0.", "mlp.linear_1.").replace("mlp.3.", "mlp.linear_2."):
              value.numpy() for key, value in theirs.state_dict().items()}
    assert "encoder.layers.encoder_layer_1.mlp.linear_2.bias" in legacy
    ours.load_state_dict(legacy)
    x = np.random.default_rng(0).standard_normal(SMALL_INPUT).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    assert zoo.relative_error(ours.eval()(mg.tensor(x)).numpy(), expected) <= 1e-4


# ------------------------------------------------------------------------------------ training


@pytest.mark.parametrize("variant", [
    {},
    {"stem": "batchnorm", "representation_size": 24},
    {"stem": "plain"},
])
def test_small_sgd_steps(torch: Any, tv: Any, variant: dict) -> None:
    """Train mode (dropout 0; the stem's BatchNorm on batch statistics): 2 SGD steps agree,
    parameters and running statistics."""
    ours, theirs = both(tv, torch, **variant, **SMALL)
    zoo.assert_same_after_sgd(torch, ours, shaken(torch, theirs), SMALL_INPUT, steps=2)


# ------------------------------------------------------------------------------ initialisation


def _statistics(model: Any) -> dict[str, tuple[float, float, float, float, int]]:
    """Per tensor: mean, std, min, max, size."""
    out = {}
    for key, value in model.state_dict().items():
        a = np.asarray(value.numpy(), dtype=np.float64)
        out[key] = (a.mean(), a.std(), a.min(), a.max(), a.size)
    return out


@pytest.mark.parametrize("stem", [None, "batchnorm"])
def test_initialisation_statistics(torch: Any, tv: Any, stem: Any) -> None:
    """Each tensor of a fresh model is drawn as torchvision draws it: constants exactly
    (the zero head and class token, zero projection biases, LayerNorm's ones and zeros), the
    rest with mean and std near torchvision's (xavier-uniform MLP, N(0, 1e-6) MLP biases,
    N(0, 0.02) position embeddings, truncated LeCun-normal patch projection and pre_logits)."""
    kwargs = dict(SMALL, hidden_dim=96, mlp_dim=192, representation_size=48)
    mg.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = both(tv, torch, stem, **kwargs)
    mine, their = _statistics(ours), _statistics(theirs)
    assert list(mine) == list(their)
    for key, (mean, std, low, high, size) in their.items():
        m_mean, m_std, m_low, m_high, _ = mine[key]
        if low == high:
            assert m_low == m_high == low, key
        else:  # two samples' means and stds differ by about std / sqrt(size): allow 4 times
            tolerance = 4 * std / math.sqrt(size)
            assert abs(m_mean - mean) <= tolerance, key
            assert abs(m_std - std) <= tolerance, key
    # The patch projection's N(0, 1/fan_in) and the position embeddings' N(0, 0.02^2) exactly:
    if stem is None:
        assert mine["conv_proj.weight"][1] == pytest.approx(math.sqrt(1 / (3 * 8 * 8)), rel=0.05)
    assert mine["encoder.pos_embedding"][1] == pytest.approx(0.02, rel=0.05)


def test_fresh_model_predicts_uniform(tv: Any, torch: Any) -> None:
    """The zero head: every class gets logit 0 whatever the image."""
    model = vit.VisionTransformer(**SMALL)
    x = mg.tensor(np.random.default_rng(0).standard_normal(SMALL_INPUT).astype(np.float32))
    np.testing.assert_array_equal(model(x).numpy(), np.zeros((2, 1000), np.float32))


# --------------------------------------------------------------------------------------- repr


def test_vit_b_16_repr(vit_b_16_pair: tuple) -> None:
    ours, theirs = vit_b_16_pair
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("variant", [
    {"stem": "batchnorm", "representation_size": 24},
    {"stem": None, "norm_layer": "eps-1e-5"},
])
def test_small_repr(torch: Any, tv: Any, variant: dict) -> None:
    variant = dict(variant)
    if variant.pop("norm_layer", None):
        ours = vit.VisionTransformer(**SMALL, norm_layer=partial(nn.LayerNorm, eps=1e-5))
        theirs = tv.VisionTransformer(**SMALL, norm_layer=partial(torch.nn.LayerNorm, eps=1e-5))
    else:
        ours, theirs = both(tv, torch, **variant, **SMALL)
    assert repr(ours) == repr(theirs)


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (1, 3, 32, 24), (1, 1, 32, 32), (3, 32, 32)])
def test_wrong_input_shape(shape: tuple) -> None:
    model = vit.VisionTransformer(**SMALL)
    with raises_saying(ValueError, ["(N, 3, 32, 32)", str(shape), "image_size=32"],
                       starts="VisionTransformer:"):
        model(mg.zeros(*shape))


def test_builders_default_to_224() -> None:
    with zoo.without_random_init():
        model = vit.vit_b_32()
    with raises_saying(ValueError, ["(N, 3, 224, 224)", "(1, 3, 256, 256)"],
                       starts="VisionTransformer:"):
        model(mg.zeros(1, 3, 256, 256))


def test_indivisible_image_size() -> None:
    with raises_saying(ValueError, ["image_size (30)", "patch_size (8)"],
                       starts="VisionTransformer:"):
        vit.VisionTransformer(**dict(SMALL, image_size=30))


def test_stem_with_wrong_strides() -> None:
    model = vit.VisionTransformer(**SMALL, conv_stem_configs=[vit.ConvStemConfig(8, 3, 2)])
    with raises_saying(ValueError, ["(16, 16)", "(4, 4)", "patch_size=8"],
                       starts="VisionTransformer:"):
        model(mg.zeros(1, 3, 32, 32))


def test_encoder_errors() -> None:
    model = vit.VisionTransformer(**SMALL)
    with raises_saying(ValueError, ["(batch_size, 17, 32)", "(2, 16, 32)"], starts="Encoder:"):
        model.encoder(mg.zeros(2, 16, 32))
    with raises_saying(ValueError, ["(batch_size, seq_length, hidden_dim)", "(17, 32)"],
                       starts="EncoderBlock:"):
        model.encoder.layers.encoder_layer_0(mg.zeros(17, 32))
