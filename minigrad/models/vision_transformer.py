"""Vision Transformer (ViT): Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers
for Image Recognition at Scale" (2020), as torchvision 0.28.0's `vision_transformer.py`.

The image is cut into non-overlapping patch_size x patch_size patches; each patch is projected
linearly to a hidden_dim-vector (one strided conv, `conv_proj`), a learned class token is put in
front, learned position embeddings are added, and a plain Transformer encoder (pre-norm blocks of
multi-head self-attention and a GELU MLP) mixes the tokens. The class token's final vector,
through `heads`, gives the logits. No convolutions past the patchify stem, no pooling: the
sequence keeps (image_size // patch_size)^2 + 1 tokens throughout.

Where torchvision differs from the paper: the classification head is a single Linear layer,
the paper's fine-tuning head (it pre-trains with a one-hidden-layer MLP head, a Tanh layer in
its code, which `representation_size` gives back); the head starts at zero, weight and bias
alike, as the paper's fine-tuning head does. `conv_stem_configs`, not in the paper, replaces
the patchify conv by a stack of conv-BatchNorm-ReLU layers and a 1x1 conv (Xiao et al.,
"Early Convolutions Help Transformers See Better", 2021). The model takes exactly
image_size x image_size images: the position embeddings have one entry per patch.

`vit_small_images` is the small-image form: 4x4 patches and a narrow encoder (the
hyper-parameters differ, the model is the same `VisionTransformer`); `in_channels` (keyword
only) takes greyscale images.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

from minigrad import factories, nn, ops
from minigrad.models.blocks import Conv2dNormActivation
from minigrad.nn import init
from minigrad.tensor import Tensor

# torchvision's default norm_layer: LayerNorm with eps 1e-6, as the paper's JAX code (Flax's).
_layer_norm = partial(nn.LayerNorm, eps=1e-6)

# MLPBlock's keys before torchvision 0.14: mlp.linear_1 and mlp.linear_2, now mlp.0 and mlp.3.
_LEGACY_MLP_KEY = re.compile(r"(?<![^.])mlp\.linear_([12])\.(?=(weight|bias)$)")


def _new_mlp_key(match: re.Match) -> str:
    return f"mlp.{3 * (int(match.group(1)) - 1)}."


class ConvStemConfig(NamedTuple):
    """One conv-norm-activation layer of the convolutional stem: a kernel_size conv (padding
    (kernel_size - 1) // 2; a bias only if norm_layer is None) to out_channels with this
    stride, then norm_layer, then activation_layer (either may be None)."""

    out_channels: int
    kernel_size: int
    stride: int
    norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d
    activation_layer: Callable[..., nn.Module] = nn.ReLU


class MLPBlock(nn.Sequential):
    """The Transformer's feed-forward part: Linear(in_dim, mlp_dim), GELU, Dropout,
    Linear(mlp_dim, in_dim), Dropout, keyed "0" to "4" as torchvision's (its MLP class).

    Xavier-uniform weights and nearly-zero biases (N(0, 1e-6^2)), torchvision's init (the
    JAX reference implementation's), not Linear's default."""

    def __init__(self, in_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__(nn.Linear(in_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(mlp_dim, in_dim), nn.Dropout(dropout))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                init.xavier_uniform_(module.weight)
                init.normal_(module.bias, std=1e-6)


def _check_tokens(who: str, x: Tensor) -> None:
    if x.ndim != 3:
        raise ValueError(f"{who}: expected (batch_size, seq_length, hidden_dim), got shape "
                         f"{tuple(x.shape)}")


class EncoderBlock(nn.Module):
    """One pre-norm Transformer block: x + dropout(attention(ln_1(x))), then that + mlp(ln_2(.)).

    Normalising before each sub-layer (the paper's choice, unlike the original Transformer's
    post-norm) leaves the residual path untouched, which keeps deep stacks trainable."""

    def __init__(self, num_heads: int, hidden_dim: int, mlp_dim: int, dropout: float,
                 attention_dropout: float,
                 norm_layer: Callable[..., nn.Module] = _layer_norm) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.ln_1 = norm_layer(hidden_dim)
        self.self_attention = nn.MultiheadAttention(hidden_dim, num_heads,
                                                    dropout=attention_dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = norm_layer(hidden_dim)
        self.mlp = MLPBlock(hidden_dim, mlp_dim, dropout)

    def forward(self, input: Tensor) -> Tensor:
        _check_tokens("EncoderBlock", input)
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x) + input
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Position embeddings (learned, one per token: N(0, 0.02^2) as BERT's), dropout,
    num_layers EncoderBlocks named encoder_layer_0, encoder_layer_1, ..., and a final norm."""

    def __init__(self, seq_length: int, num_layers: int, num_heads: int, hidden_dim: int,
                 mlp_dim: int, dropout: float, attention_dropout: float,
                 norm_layer: Callable[..., nn.Module] = _layer_norm) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(factories.zeros(1, seq_length, hidden_dim))
        init.normal_(self.pos_embedding, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(num_heads, hidden_dim, mlp_dim, dropout,
                                                attention_dropout, norm_layer))
            for i in range(num_layers)))
        self.ln = norm_layer(hidden_dim)

    def forward(self, input: Tensor) -> Tensor:
        _check_tokens("Encoder", input)
        if tuple(input.shape[1:]) != tuple(self.pos_embedding.shape[1:]):
            raise ValueError(f"Encoder: expected (batch_size, {self.pos_embedding.shape[1]}, "
                             f"{self.pos_embedding.shape[2]}) tokens (one position embedding "
                             f"each), got shape {tuple(input.shape)}")
        return self.ln(self.layers(self.dropout(input + self.pos_embedding)))


class VisionTransformer(nn.Module):
    """ViT for (N, in_channels, image_size, image_size) images: patchify (conv_proj), prepend
    the class token, encode, classify the class token with `heads`. See the module's
    docstring.

    representation_size: an extra Linear layer to that size and a Tanh before the head
    (`heads.pre_logits`, `heads.act`), the paper's pre-training head. conv_stem_configs: a
    list of ConvStemConfig; the stem's strides must multiply to patch_size. in_channels
    (keyword only): 1 for greyscale images.
    """

    def __init__(self, image_size: int, patch_size: int, num_layers: int, num_heads: int,
                 hidden_dim: int, mlp_dim: int, dropout: float = 0.0,
                 attention_dropout: float = 0.0, num_classes: int = 1000,
                 representation_size: int | None = None,
                 norm_layer: Callable[..., nn.Module] = _layer_norm,
                 conv_stem_configs: list[ConvStemConfig] | None = None, *,
                 in_channels: int = 3) -> None:
        super().__init__()
        if image_size % patch_size != 0:
            raise ValueError(f"VisionTransformer: image_size ({image_size}) must be divisible "
                             f"by patch_size ({patch_size})")
        self.image_size, self.patch_size = image_size, patch_size
        self.hidden_dim, self.mlp_dim = hidden_dim, mlp_dim
        self.dropout, self.attention_dropout = dropout, attention_dropout
        self.num_classes, self.representation_size = num_classes, representation_size
        self.norm_layer, self.in_channels = norm_layer, in_channels

        if conv_stem_configs is None:
            # One patch_size x patch_size conv with that stride: a Linear map of each patch.
            self.conv_proj: nn.Module = nn.Conv2d(in_channels, hidden_dim, patch_size,
                                                  stride=patch_size)
        else:
            stem = nn.Sequential()
            channels = in_channels
            for i, config in enumerate(conv_stem_configs):
                stem.add_module(f"conv_bn_relu_{i}", Conv2dNormActivation(
                    channels, config.out_channels, config.kernel_size, config.stride,
                    norm_layer=config.norm_layer, activation_layer=config.activation_layer))
                channels = config.out_channels
            stem.add_module("conv_last", nn.Conv2d(channels, hidden_dim, 1))
            self.conv_proj = stem

        self.seq_length = (image_size // patch_size) ** 2 + 1  # the patches and the class token
        self.class_token = nn.Parameter(factories.zeros(1, 1, hidden_dim))
        self.encoder = Encoder(self.seq_length, num_layers, num_heads, hidden_dim, mlp_dim,
                               dropout, attention_dropout, norm_layer)

        heads: OrderedDict[str, nn.Module] = OrderedDict()
        if representation_size is None:
            heads["head"] = nn.Linear(hidden_dim, num_classes)
        else:
            heads["pre_logits"] = nn.Linear(hidden_dim, representation_size)
            heads["act"] = nn.Tanh()
            heads["head"] = nn.Linear(representation_size, num_classes)
        self.heads = nn.Sequential(heads)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's: the patch projection LeCun-normal (truncated N(0, 1/fan_in)), zero
        bias; a conv stem's last 1x1 conv N(0, 2/out_channels), zero bias; pre_logits LeCun
        too; the head all zeros, so a fresh model predicts the uniform distribution."""
        if isinstance(self.conv_proj, nn.Conv2d):
            fan_in = init.fan_in_and_fan_out(self.conv_proj.weight)[0]
            init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
            init.zeros_(self.conv_proj.bias)
        else:
            last = self.conv_proj.conv_last
            init.normal_(last.weight, std=math.sqrt(2.0 / last.out_channels))
            init.zeros_(last.bias)
        if self.representation_size is not None:
            pre_logits = self.heads.pre_logits
            init.trunc_normal_(pre_logits.weight, std=math.sqrt(1 / pre_logits.in_features))
            init.zeros_(pre_logits.bias)
        init.zeros_(self.heads.head.weight)
        init.zeros_(self.heads.head.bias)

    def load_state_dict(self, state_dict: Mapping[str, Any],
                        strict: bool = True) -> nn.IncompatibleKeys:
        """As Module's, and also reads checkpoints from before torchvision 0.14 (its published
        ViT weights among them), whose MLP Linear layers are keyed mlp.linear_1 and
        mlp.linear_2 rather than mlp.0 and mlp.3: they are renamed, as torchvision does."""
        return super().load_state_dict(
            OrderedDict((_LEGACY_MLP_KEY.sub(_new_mlp_key, key), value)
                        for key, value in state_dict.items()), strict)

    def _process_input(self, x: Tensor) -> Tensor:
        """(N, C, H, W) images -> (N, (H/p) * (W/p), hidden_dim) patch tokens, row by row."""
        expected = f"(N, {self.in_channels}, {self.image_size}, {self.image_size})"
        if (x.ndim != 4 or x.shape[1] != self.in_channels
                or x.shape[2:] != (self.image_size, self.image_size)):
            raise ValueError(f"VisionTransformer: expected images of shape {expected} "
                             f"(image_size={self.image_size}: the position embeddings fit "
                             f"only that size), got shape {tuple(x.shape)}")
        n, side = x.shape[0], self.image_size // self.patch_size
        x = self.conv_proj(x)
        if x.shape[2:] != (side, side):
            raise ValueError(f"VisionTransformer: the conv stem gives {tuple(x.shape[2:])} "
                             f"maps, but {expected} images need {(side, side)} (its strides "
                             f"must multiply to patch_size={self.patch_size})")
        return x.reshape(n, self.hidden_dim, side * side).permute(0, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self._process_input(x)
        class_token = self.class_token.expand(x.shape[0], -1, -1)
        x = self.encoder(ops.cat([class_token, x], dim=1))
        return self.heads(x[:, 0])  # the class token's vector alone is classified


def _vision_transformer(patch_size: int, num_layers: int, num_heads: int, hidden_dim: int,
                        mlp_dim: int, image_size: int = 224,
                        **kwargs: Any) -> VisionTransformer:
    return VisionTransformer(image_size, patch_size, num_layers, num_heads, hidden_dim,
                             mlp_dim, **kwargs)


def vit_b_16(**kwargs: Any) -> VisionTransformer:
    """ViT-B/16: 12 layers, 12 heads, hidden 768, MLP 3072, 16x16 patches; 86,567,656
    parameters at image_size=224 (the default) and 1000 classes. Keyword arguments go to
    VisionTransformer (image_size, num_classes, dropout, ...)."""
    return _vision_transformer(16, 12, 12, 768, 3072, **kwargs)


def vit_b_32(**kwargs: Any) -> VisionTransformer:
    """ViT-B/32: ViT-B with 32x32 patches (49 + 1 tokens at 224); 88,224,232 parameters."""
    return _vision_transformer(32, 12, 12, 768, 3072, **kwargs)


def vit_l_16(**kwargs: Any) -> VisionTransformer:
    """ViT-L/16: 24 layers, 16 heads, hidden 1024, MLP 4096, 16x16 patches; 304,326,632
    parameters."""
    return _vision_transformer(16, 24, 16, 1024, 4096, **kwargs)


def vit_l_32(**kwargs: Any) -> VisionTransformer:
    """ViT-L/32: ViT-L with 32x32 patches; 306,535,400 parameters."""
    return _vision_transformer(32, 24, 16, 1024, 4096, **kwargs)


def vit_h_14(**kwargs: Any) -> VisionTransformer:
    """ViT-H/14: 32 layers, 16 heads, hidden 1280, MLP 5120, 14x14 patches; 632,045,800
    parameters at 224 (torchvision's weights are for 518 or 224)."""
    return _vision_transformer(14, 32, 16, 1280, 5120, **kwargs)


def vit_small_images(**kwargs: Any) -> VisionTransformer:
    """The small-image ViT, for 28x28 or 32x32 images (Fashion-MNIST, CIFAR): 4x4 patches
    (a 28x28 image is 49 tokens and the class token; ViT-B/16 would leave it 1) and a narrow
    encoder, 6 layers, 4 heads, hidden 128, MLP 256, which trains from scratch on a CPU.
    image_size=32 by default; with image_size=28, one input channel and 10 classes it has
    805,130 parameters. Keyword arguments go to VisionTransformer."""
    kwargs.setdefault("image_size", 32)
    return _vision_transformer(4, 6, 4, 128, 256, **kwargs)
