"""The Transformer encoder: `TransformerEncoderLayer` and `TransformerEncoder`, as PyTorch's.

A layer is self-attention and a two-layer feed-forward network, each in a residual branch with
dropout and a LayerNorm: after the branch (post-norm, "Attention Is All You Need", the
default) or at its start (norm_first=True, pre-norm, which trains more stably when deep).
Submodule names, and so state-dict keys, are PyTorch's, and a PyTorch checkpoint loads as is.

PyTorch has fused "fast paths" for inference (eval mode, no gradient): the same math, with one
visible difference, which minigrad does not copy: TransformerEncoder given a
src_key_padding_mask (and batch_first, an even nhead, ...) packs the sequences into a nested
tensor, so its output at padded positions is 0; minigrad's is what the layers compute there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad import ops
from minigrad.nn.activation import GELU, ReLU, relu
from minigrad.nn.attention import NEG_INF, MultiheadAttention, _additive_mask
from minigrad.nn.dropout import Dropout
from minigrad.nn.linear import Linear
from minigrad.nn.module import Module, ModuleList
from minigrad.nn.normalization import LayerNorm
from minigrad.ops import gelu
from minigrad.tensor import Tensor


def _activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    if activation == "relu":
        return relu
    if activation == "gelu":
        return gelu
    if isinstance(activation, str) or not callable(activation):
        raise ValueError(f"TransformerEncoderLayer: activation should be 'relu', 'gelu' or a "
                         f"callable, not {activation!r}")
    return activation


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward network (d_model -> dim_feedforward -> d_model),
    each a residual branch with dropout and LayerNorm. Input (S, N, E), or (N, S, E) if
    batch_first, or unbatched (S, E)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1,
                 activation: str | Callable[[Tensor], Tensor] = relu,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        activation = _activation(activation)
        # PyTorch's flag for its fused inference path: 1 relu, 2 gelu, 0 anything else.
        is_relu = activation in (relu, ops.relu) or isinstance(activation, ReLU)
        is_gelu = activation is gelu or isinstance(activation, GELU)
        self.activation_relu_or_gelu = 1 if is_relu else 2 if is_gelu else 0
        self.activation = activation  # a Module given here becomes a submodule, as in PyTorch

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """src_mask: MultiheadAttention's attn_mask (L, L) or (N * nhead, L, L);
        src_key_padding_mask: its key_padding_mask (N, L). True (or -inf) masks out."""
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x: Tensor, attn_mask: Tensor | None,
                  key_padding_mask: Tensor | None, is_causal: bool) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    """A stack of num_layers copies of encoder_layer (deep copies: they start with equal
    parameters, as in PyTorch), then an optional norm. enable_nested_tensor and mask_check,
    which steer PyTorch's nested-tensor inference path, are kept but change nothing here."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Module | None = None, enable_nested_tensor: bool = True,
                 mask_check: bool = True) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = False  # minigrad has no nested tensors
        self.mask_check = mask_check

    def forward(self, src: Tensor, mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        """mask and src_key_padding_mask go to every layer. is_causal=None (the default)
        detects whether mask is the causal mask (-inf above the diagonal, or True there)."""
        batch_first = self.layers[0].self_attn.batch_first if len(self.layers) else False
        seq_len = src.shape[0] if src.ndim == 2 else src.shape[1 if batch_first else 0]
        is_causal = _detect_is_causal_mask(mask, is_causal, seq_len, src.dtype)
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, is_causal=is_causal,
                           src_key_padding_mask=src_key_padding_mask)
        if self.norm is not None:
            output = self.norm(output)
        return output


def _detect_is_causal_mask(mask: Tensor | None, is_causal: bool | None, size: int,
                           dtype: Any) -> bool:
    """PyTorch's rule: an explicit is_causal wins; else a (size, size) mask is causal when it
    masks exactly the keys after each query."""
    if is_causal is not None or mask is None:
        return is_causal is True
    scores = _additive_mask("TransformerEncoder", "mask", mask, np.dtype(dtype), "masked")
    if scores.shape != (size, size):
        return False
    causal = np.triu(np.full((size, size), NEG_INF), 1)
    return bool(np.array_equal(np.asarray(scores.numpy()), causal))
