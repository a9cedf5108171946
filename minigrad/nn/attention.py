"""Attention: `scaled_dot_product_attention`, `multi_head_attention_forward` and
`MultiheadAttention`, as PyTorch's.

Attention is softmax(q k^T * scale + mask) v, one softmax row per query over the keys. It is
one op here (`Attention`): forward keeps the probabilities, backward goes through the softmax
once, and the matmuls read each head straight out of the projections' (tokens, embed_dim)
layout (strided views BLAS can use), so splitting and merging heads copies nothing. The
attention weights MultiheadAttention returns (need_weights=True) are a second op,
`AttentionWeights`, which hands out the probabilities that `Attention` computed and backs them
up into q and k if the loss uses them.

A query whose every key is masked (all scores -inf) has no softmax. As PyTorch 2.13 on the CPU,
`scaled_dot_product_attention` (and MultiheadAttention with need_weights=False, which calls it)
gives that row zero weights: its output is 0 and its gradients are 0. MultiheadAttention with
need_weights=True computes a plain softmax, as PyTorch's does, and that row is NaN (output,
weights and gradients).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from minigrad import ops
from minigrad.autograd import Function, array_module, describe
from minigrad.nn import init
from minigrad.nn.linear import Linear, empty_parameter, linear
from minigrad.nn.module import Module
from minigrad.random import generator
from minigrad.tensor import Tensor

NEG_INF = float("-inf")

# -------------------------------------------------------------------------------- the op


def _to_heads(x: Any, heads: int, batch_first: bool) -> Any:
    """(N, T, E) if batch_first else (T, N, E) -> (N, heads, T, E // heads), a view: the last
    dim splits without a copy even when x is a column slice of a packed projection."""
    a, b, e = x.shape
    x = x.reshape(a, b, heads, e // heads)
    return x.transpose(0, 2, 1, 3) if batch_first else x.transpose(1, 2, 0, 3)


def _split(q: Any, k: Any, v: Any, heads: int | None, batch_first: bool) -> tuple:
    """q, k, v as (..., T, head_dim) per head. heads=None: they already are (sdpa's inputs).
    k and v None: q is the packed projection (tokens, 3 E) of self-attention, q|k|v side by
    side in its last dim."""
    if heads is None:
        return q, k, v
    if k is None:
        e = q.shape[-1] // 3
        q, k, v = q[..., :e], q[..., e:2 * e], q[..., 2 * e:]
    return tuple(_to_heads(x, heads, batch_first) for x in (q, k, v))


def _repeat_heads(x: Any, groups: int, xp: Any) -> Any:
    """Grouped-query attention: each key/value head serves `groups` consecutive query heads."""
    return x if groups == 1 else xp.repeat(x, groups, axis=-3)


def _sum_groups(grad: Any, groups: int) -> Any:
    """The gradient of `_repeat_heads`: the copies of each head add up."""
    if groups == 1:
        return grad
    *batch, heads, t, e = grad.shape
    return grad.reshape(*batch, heads // groups, groups, t, e).sum(axis=-3)


def _probabilities(xp: Any, qh: Any, kh: Any, bias: Any, scale: float, causal: bool,
                   zero_masked_rows: bool) -> Any:
    """softmax(q k^T * scale + bias) over the keys, in one fresh array, max-shifted so no exp
    overflows (scores of +-1000 are fine). `causal` masks key j > query i (PyTorch's top-left
    aligned lower triangle). A row whose scores are all -inf: zeros if zero_masked_rows
    (PyTorch's sdpa), else NaN (PyTorch's softmax)."""
    scores = xp.matmul(qh, kh.swapaxes(-1, -2))
    scores *= scale
    if bias is not None:
        scores += bias
    if causal:
        length, source = scores.shape[-2:]
        xp.copyto(scores, NEG_INF, where=xp.triu(xp.ones((length, source), bool), 1))
    if scores.shape[-1] == 0:
        return scores
    top = scores.max(axis=-1, keepdims=True)
    if zero_masked_rows:
        top = xp.where(xp.isneginf(top), 0, top)  # exp(-inf - 0) = 0: the row sums to 0
    with np.errstate(invalid="ignore"):  # -inf - -inf: the NaN rows PyTorch's softmax gives
        scores -= top
    xp.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    if zero_masked_rows:
        total = xp.where(total == 0, xp.inf, total)  # 0 / inf: zero weights
    scores /= total
    return scores


def _matmul_into(xp: Any, a: Any, b: Any, out: Any) -> Any:
    """a @ b, written into `out` (a strided view of a gradient buffer) when one is given."""
    if out is None:
        return xp.matmul(a, b)
    xp.matmul(a, b, out=out)
    return out


def _score_backward(xp: Any, dp: Any, p: Any, qh: Any, kh: Any, scale: float,
                    outs: tuple, needs: tuple) -> tuple:
    """From dL/dp (dp, overwritten) to the gradients of the bias, q and k, through
    p = softmax(s): ds = p * (dp - sum(dp * p)) over each row; s = q k^T * scale + bias, so
    dbias = ds, dq = ds k * scale, dk = ds^T q * scale. `outs` are views to write dq and dk
    into (or None)."""
    dp -= xp.einsum("...s,...s->...", dp, p)[..., None]
    dp *= p
    need_q, need_k, need_bias = needs
    dq = dk = None
    if need_q:
        dq = _matmul_into(xp, dp, kh, outs[0])
        dq *= scale
    if need_k:
        dk = _matmul_into(xp, dp.swapaxes(-1, -2), qh, outs[1])
        dk *= scale
    return (dp if need_bias else None), dq, dk


def _gradient_buffers(xp: Any, q: Any, k: Any, v: Any, heads: int | None, batch_first: bool,
                      needs: tuple) -> tuple[tuple, tuple]:
    """For the multi-head layout: arrays for dq, dk, dv in the inputs' own layouts (one array
    for a packed projection), and their per-head views, which the matmuls write into."""
    if heads is None or not any(needs):
        return (None, None, None), (None, None, None)
    if k is None:
        grad = xp.empty(q.shape, q.dtype)
        return (grad, None, None), _split(grad, None, None, heads, batch_first)
    grads = tuple(xp.empty(x.shape, x.dtype) if need else None for x, need in zip((q, k, v), needs))
    views = tuple(None if g is None else _to_heads(g, heads, batch_first) for g in grads)
    return grads, views


class Attention(Function):
    """out = P v with P = softmax(q k^T * scale + bias) (times the dropout mask `keep`).

    dv = P^T dout; dP = dout v^T; the rest is softmax's and the scores' VJP (_score_backward).
    `heads` given: q, k, v are (N, T, E) (batch_first) or (T, N, E) and each has `heads`
    heads of E // heads features side by side, k and v None meaning q is the packed (.., 3 E)
    projection; the output has q's layout. heads=None: q, k, v are (..., T, E), batch dims
    broadcast (sdpa). `probs`, a list, receives P for AttentionWeights.
    """

    name = "scaled_dot_product_attention"

    @staticmethod
    def forward(ctx, q, k, v, bias, *, heads, batch_first, scale, causal, keep,
                zero_masked_rows, groups=1, probs=None):
        xp = ctx.xp
        qh, kh, vh = _split(q, k, v, heads, batch_first)
        kh, vh = _repeat_heads(kh, groups, xp), _repeat_heads(vh, groups, xp)
        p = _probabilities(xp, qh, kh, bias, scale, causal, zero_masked_rows)
        if probs is not None:
            probs.append(p)
        weights = p if keep is None else p * keep
        if heads is None:
            out = xp.matmul(weights, vh)
        else:
            out = xp.empty((*q.shape[:2], vh.shape[1] * vh.shape[3]), q.dtype)
            xp.matmul(weights, vh, out=_to_heads(out, heads, batch_first))
        ctx.save_for_backward(q, k, v, p, keep)
        ctx.layout = (heads, batch_first, scale, groups)
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        q, k, v, p, keep = ctx.saved_tensors
        heads, batch_first, scale, groups = ctx.layout
        need_q, need_k, need_v, need_bias = ctx.needs_input_grad
        if k is None:  # packed: the one input gets all three gradients
            need_q = need_k = need_v = need_q
        qh, kh, vh = _split(q, k, v, heads, batch_first)
        kh, vh = _repeat_heads(kh, groups, xp), _repeat_heads(vh, groups, xp)
        gh = grad if heads is None else _to_heads(grad, heads, batch_first)
        grads, views = _gradient_buffers(xp, q, k, v, heads, batch_first,
                                         (need_q, need_k, need_v))
        dv = dk = dq = dbias = None
        if need_v:
            weights = p if keep is None else p * keep
            dv = _sum_groups(_matmul_into(xp, weights.swapaxes(-1, -2), gh, views[2]), groups)
        if need_q or need_k or need_bias:
            dp = xp.matmul(gh, vh.swapaxes(-1, -2))
            if keep is not None:
                dp *= keep
            dbias, dq, dk = _score_backward(xp, dp, p, qh, kh, scale, views[:2],
                                            (need_q, need_k, need_bias))
            dk = None if dk is None else _sum_groups(dk, groups)
        if heads is None:
            return dq, dk, dv, dbias
        return (*grads, dbias)  # dq, dk, dv were written into these


class AttentionWeights(Function):
    """The attention probabilities (after dropout) that the `Attention` call in `probs`
    computed, per head (N, H, L, S) or averaged over the heads (N, L, S); backward is
    softmax's and the scores', into q, k and the bias."""

    name = "multi_head_attention_forward"

    @staticmethod
    def forward(ctx, q, k, bias, *, probs, keep, heads, batch_first, scale, average):
        p = probs[0]
        ctx.save_for_backward(q, k, p, keep)
        ctx.layout = (heads, batch_first, scale, average)
        weights = p if keep is None else p * keep
        return weights.mean(axis=1) if average else weights.copy()  # Attention keeps p

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        q, k, p, keep = ctx.saved_tensors
        heads, batch_first, scale, average = ctx.layout
        need_q, need_k, need_bias = ctx.needs_input_grad
        if k is None:
            need_k = need_q
        dp = xp.broadcast_to(grad[:, None] / heads, p.shape) if average else grad
        dp = dp * keep if keep is not None else dp.copy()  # _score_backward overwrites it
        qh, kh, _ = _split(q, k, k, heads, batch_first)
        grads, views = _gradient_buffers(xp, q, k, k, heads, batch_first,
                                         (need_q, need_k, False))
        dbias, dq, dk = _score_backward(xp, dp, p, qh, kh, scale, views[:2],
                                        (need_q, need_k, need_bias))
        if k is None and grads[0] is not None:  # packed: v's third gets nothing from these
            grads[0][..., 2 * (q.shape[-1] // 3):] = 0
        return grads[0], grads[1], dbias


# ------------------------------------------------------------------------------- helpers


def _dropout_keep(p: float, shape: tuple[int, ...], like: Any) -> Any:
    """Inverted dropout's multiplier, 0 or 1/(1-p) per element, drawn on the host from
    minigrad's generator (as F.dropout draws it), on `like`'s device; None for p = 0."""
    if p == 0:
        return None
    keep = generator().random(shape, dtype=np.float32) >= p
    scaled = keep.astype(like.dtype) / (1 - p) if p < 1 else np.zeros(shape, like.dtype)
    return array_module([like]).asarray(scaled)


def _additive_mask(op: str, name: str, mask: Any, dtype: np.dtype, true_means: str) -> Any:
    """A mask as scores to add: a bool mask becomes 0 and -inf (True meaning 'take part' for
    sdpa, 'masked out' for MultiheadAttention: `true_means`), a float mask is itself."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}: {name} must be a bool or floating-point tensor, got "
                        f"{describe(mask)}")
    if mask.dtype == np.bool_:
        xp = array_module([mask.array])
        masked = ~mask.array if true_means == "keep" else mask.array
        return Tensor._wrap(xp.where(masked, NEG_INF, 0.0).astype(dtype))
    if mask.dtype.kind != "f":
        raise TypeError(f"{op}: only bool and floating-point {name} are supported, got "
                        f"{describe(mask)}")
    if mask.dtype != dtype:
        raise TypeError(f"{op}: a floating-point {name} must have the query's dtype {dtype}, "
                        f"got {describe(mask)}")
    return mask


def _broadcast(op: str, what: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{op}: {what} do not broadcast: "
                         + ", ".join(str(tuple(s)) for s in shapes)) from None


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether `shape` broadcasts to `target` itself (in place: target does not grow)."""
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


# ----------------------------------------------------------------------------- functional


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, *, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(query key^T * scale + mask) value over the last two dims: query (..., L, E),
    key (..., S, E), value (..., S, Ev) -> (..., L, Ev); leading dims broadcast.

    attn_mask: bool, True where a query may attend a key (as PyTorch's sdpa, the opposite of
    MultiheadAttention's masks), or float, added to the scores; it broadcasts to (..., L, S).
    is_causal: query i attends keys 0..i (not with attn_mask). scale defaults to 1/sqrt(E).
    Dropout (probability dropout_p, always applied when > 0, as PyTorch) drops attention
    weights. enable_gqa: key and value may have fewer heads (dim -3) than query, each serving
    a group of query heads. A query row with every key masked gets zeros, as PyTorch 2.13.
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.ndim < 2 or t.dtype.kind != "f":
            raise ValueError(f"{op}: {name} must be a floating-point tensor of at least 2 "
                             f"dims (..., sequence, features), got {describe(t)}")
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError(f"{op}: query, key and value must have one dtype, got "
                        f"{query.dtype}, {key.dtype} and {value.dtype}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{op}: query {query.shape} and key {key.shape} need the same last "
                         f"dim (E), key and value {value.shape} the same sequence length "
                         f"(dim -2)")
    groups = 1
    if enable_gqa:
        if (min(query.ndim, key.ndim, value.ndim) < 3 or key.shape[-3] != value.shape[-3]
                or query.shape[-3] % key.shape[-3]):
            raise ValueError(f"{op}: enable_gqa needs heads at dim -3, key's and value's "
                             f"the same and dividing query's: query {query.shape}, key "
                             f"{key.shape}, value {value.shape}")
        groups = query.shape[-3] // key.shape[-3]
    key_batch, value_batch = key.shape[:-2], value.shape[:-2]
    if groups > 1:  # as if key and value had query's heads
        key_batch = (*key.shape[:-3], query.shape[-3])
        value_batch = (*value.shape[:-3], query.shape[-3])
    _broadcast(op, "the batch dims (all but the last two) of query, key and value",
               query.shape[:-2], key_batch, value_batch)
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1], got {dropout_p!r}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: explicit attn_mask should not be set when is_causal=True")
    bias = _additive_mask(op, "attn_mask", attn_mask, query.dtype, true_means="keep")
    scores = (*np.broadcast_shapes(query.shape[:-2], key_batch), query.shape[-2],
              key.shape[-2])
    if bias is not None and not _broadcasts_to(bias.shape, scores):
        raise ValueError(f"{op}: attn_mask {bias.shape} must broadcast to the attention "
                         f"scores' shape {scores} (..., L, S), for query {query.shape} and "
                         f"key {key.shape}")
    if scale is None:
        scale = 1 / math.sqrt(query.shape[-1]) if query.shape[-1] else 1.0
    keep = _dropout_keep(dropout_p, scores, query.array)
    return Attention.apply(query, key, value, bias, heads=None, batch_first=False,
                           scale=float(scale), causal=bool(is_causal), keep=keep,
                           zero_masked_rows=True, groups=groups)


def _tokens_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """linear over the last dim of (A, B, E), as one 2-D matmul (A*B, E) x (E, F)."""
    rows = linear(x.reshape(-1, x.shape[-1]), weight, bias)
    return rows.reshape(*x.shape[:-1], weight.shape[0])


def _check_mha_shapes(op: str, query: Tensor, key: Tensor, value: Tensor,
                      key_padding_mask: Tensor | None, attn_mask: Tensor | None,
                      num_heads: int) -> bool:
    """PyTorch's shape rules for query, key, value and masks; True for batched (3-D) input."""
    if query.ndim not in (2, 3):
        raise ValueError(f"{op}: query should be unbatched 2-D (L, E) or batched 3-D, got "
                         f"shape {query.shape}")
    batched = query.ndim == 3
    kind = "batched (3-D)" if batched else "unbatched (2-D)"
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(f"{op}: for {kind} query {query.shape}, key and value must be "
                         f"{query.ndim}-D too, got key {key.shape} and value {value.shape}")
    if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
        raise ValueError(f"{op}: for {kind} query {query.shape}, key_padding_mask must be "
                         f"None or {query.ndim - 1}-D, got shape {key_padding_mask.shape}")
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise ValueError(f"{op}: attn_mask must be None, 2-D (L, S) or 3-D "
                         f"(N * num_heads, L, S), got shape {attn_mask.shape}")
    return batched


def multi_head_attention_forward(
        query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
        in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
        bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor,
        out_proj_bias: Tensor | None, training: bool = True,
        key_padding_mask: Tensor | None = None, need_weights: bool = True,
        attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False,
        q_proj_weight: Tensor | None = None, k_proj_weight: Tensor | None = None,
        v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
        static_v: Tensor | None = None, average_attn_weights: bool = True,
        is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
    """MultiheadAttention's computation with its parameters passed in, as PyTorch's: query
    (L, N, E), key and value (S, N, Ek / Ev), or unbatched (L, E), (S, E). See
    `MultiheadAttention.forward`. static_k and static_v are not supported."""
    if static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: static_k and static_v are "
                                  "not supported")
    return _multi_head_attention(
        "multi_head_attention_forward", query, key, value, embed_dim_to_check, num_heads,
        in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
        out_proj_weight, out_proj_bias, training, key_padding_mask, need_weights, attn_mask,
        use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight,
        average_attn_weights, is_causal, batch_first=False)


def _multi_head_attention(op, query, key, value, embed_dim, num_heads, in_proj_weight,
                          in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
                          out_proj_weight, out_proj_bias, training, key_padding_mask,
                          need_weights, attn_mask, use_separate_proj_weight, q_proj_weight,
                          k_proj_weight, v_proj_weight, average_attn_weights, is_causal,
                          batch_first):
    """The work of multi_head_attention_forward, in either layout: (N, T, E) when
    batch_first, else (T, N, E), so that batch_first costs no transposes."""
    batched = _check_mha_shapes(op, query, key, value, key_padding_mask, attn_mask, num_heads)
    self_attention = query is key and key is value  # before unsqueeze makes new tensors
    if not batched:  # a batch of one, in the (T, N, E) layout
        batch_first = False
        query, key, value = (x.unsqueeze(1) for x in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    seq, batch = (1, 0) if batch_first else (0, 1)
    length, n, e = query.shape[seq], query.shape[batch], query.shape[-1]
    source = key.shape[seq]
    if e != embed_dim:
        raise ValueError(f"{op}: expected query's embedding dim to be {embed_dim}, got query "
                         f"{query.shape}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ValueError(f"{op}: embed_dim {embed_dim} is not divisible by num_heads "
                         f"{num_heads}")
    same = key.shape[:2] == value.shape[:2] if use_separate_proj_weight else \
        key.shape == value.shape
    if not same or key.shape[batch] != n:
        raise ValueError(f"{op}: key {key.shape} and value {value.shape} must match (in "
                         f"sequence and batch{'' if use_separate_proj_weight else ' and features'}"
                         f"), and their batch size query's {query.shape}")

    # Masks, as scores to add (bool True = masked out), shaped for (N, H, L, S) scores.
    dtype = query.dtype
    if (key_padding_mask is not None and attn_mask is not None
            and (key_padding_mask.dtype == np.bool_) != (attn_mask.dtype == np.bool_)):
        warnings.warn("Support for mismatched key_padding_mask and attn_mask is deprecated. "
                      "Use same type for both instead.", stacklevel=3)
    padding = _additive_mask(op, "key_padding_mask", key_padding_mask, dtype, "masked")
    if padding is not None and padding.shape != (n, source):
        raise ValueError(f"{op}: key_padding_mask must have shape {(n, source)} (N, S) for "
                         f"key {key.shape}, got {padding.shape}")
    if is_causal and attn_mask is None:
        raise ValueError(f"{op}: is_causal needs attn_mask, the causal mask itself (PyTorch's "
                         "rule; nn.Transformer.generate_square_subsequent_mask makes one)")
    causal = bool(is_causal) and padding is None and not need_weights
    mask = None if causal else _additive_mask(op, "attn_mask", attn_mask, dtype, "masked")
    if mask is not None:
        expected = (length, source) if mask.ndim == 2 else (n * num_heads, length, source)
        if mask.shape != expected:
            raise ValueError(f"{op}: the {mask.ndim}-D attn_mask has shape {mask.shape}, but "
                             f"should be {expected} for query {query.shape} and key "
                             f"{key.shape} with {num_heads} heads")
        mask = mask.reshape(-1, num_heads, length, source) if mask.ndim == 3 else \
            mask.reshape(1, 1, length, source)

    # Projections: self-attention in one matmul (N*L, E) x (E, 3 E), left packed.
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ValueError(f"{op}: use_separate_proj_weight needs q_proj_weight, "
                             "k_proj_weight and v_proj_weight")
        for name, w, features in (("q_proj_weight", q_proj_weight, e),
                                  ("k_proj_weight", k_proj_weight, key.shape[-1]),
                                  ("v_proj_weight", v_proj_weight, value.shape[-1])):
            if w.shape != (e, features):
                raise ValueError(f"{op}: {name} must have shape {(e, features)}, got "
                                 f"{w.shape}")
        weights = (q_proj_weight, k_proj_weight, v_proj_weight)
    else:
        if in_proj_weight is None or in_proj_weight.shape != (3 * e, e):
            raise ValueError(f"{op}: in_proj_weight must have shape {(3 * e, e)}, got "
                             f"{describe(in_proj_weight)}")
        weights = None if self_attention else \
            (in_proj_weight[:e], in_proj_weight[e:2 * e], in_proj_weight[2 * e:])
    if in_proj_bias is not None and in_proj_bias.shape != (3 * e,):
        raise ValueError(f"{op}: in_proj_bias must have shape {(3 * e,)}, got "
                         f"{in_proj_bias.shape}")
    if weights is None:
        q = _tokens_linear(query, in_proj_weight, in_proj_bias)
        k = v = None
    else:
        biases = (None,) * 3 if in_proj_bias is None else \
            (in_proj_bias[:e], in_proj_bias[e:2 * e], in_proj_bias[2 * e:])
        q, k, v = (_tokens_linear(x, w, b) for x, w, b in zip((query, key, value), weights,
                                                               biases))

    # Extra key/value positions: a learned one (bias_k, bias_v), then a zero one.
    extra = []
    if (bias_k is None) != (bias_v is None):
        raise ValueError(f"{op}: give both bias_k and bias_v, or neither")
    if bias_k is not None:
        extra.append((bias_k, bias_v))
    if add_zero_attn:
        zeros = Tensor._wrap(array_module([q.array]).zeros((1, 1, e), dtype))
        extra.append((zeros, zeros))
    if extra and k is None:
        q, k, v = q[..., :e], q[..., e:2 * e], q[..., 2 * e:]
    for extra_k, extra_v in extra:
        shape = (n, 1, e) if batch_first else (1, n, e)
        k = ops.cat([k, extra_k.reshape(1, 1, e).expand(shape)], dim=seq)
        v = ops.cat([v, extra_v.reshape(1, 1, e).expand(shape)], dim=seq)
        mask = None if mask is None else ops.pad(mask, (0, 1))
        padding = None if padding is None else ops.pad(padding, (0, 1))
    source += len(extra)

    if padding is not None:
        padding = padding.reshape(n, 1, 1, source)
        mask = padding if mask is None else mask + padding

    keep = _dropout_keep(dropout_p if training else 0.0, (n, num_heads, length, source),
                         query.array)
    scale = 1 / math.sqrt(head_dim)
    probs = [] if need_weights else None
    out = Attention.apply(q, k, v, mask, heads=num_heads, batch_first=batch_first,
                          scale=scale, causal=causal, keep=keep,
                          zero_masked_rows=not need_weights, probs=probs)
    out = _tokens_linear(out, out_proj_weight, out_proj_bias)
    weights_out = None
    if need_weights:
        weights_out = AttentionWeights.apply(q, k, mask, probs=probs, keep=keep,
                                             heads=num_heads, batch_first=batch_first,
                                             scale=scale, average=average_attn_weights)
    if not batched:
        out = out.squeeze(1)
        weights_out = None if weights_out is None else weights_out.squeeze(0)
    return out, weights_out


# --------------------------------------------------------------------------------- layer


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear: PyTorch's name for MultiheadAttention's out_proj (it keeps PyTorch's dynamic
    quantization off it), kept so that reprs match."""


def _xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot & Bengio (2010): N(0, gain^2 * 2 / (fan_in + fan_out))."""
    fan_in, fan_out = init.fan_in_and_fan_out(tensor)
    return init.normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al., 2017), as `torch.nn.MultiheadAttention`: project
    query, key and value (in_proj_weight (3 E, E), packed q|k|v, or q/k/v_proj_weight when
    kdim or vdim differ from embed_dim), attend per head (head_dim = embed_dim // num_heads),
    concatenate the heads and project (out_proj). forward returns (output, weights or None)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None,
                 batch_first: bool = False) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater "
                             f"than 0, got embed_dim={embed_dim} and num_heads={num_heads}")
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads, self.dropout, self.batch_first = num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise ValueError(f"MultiheadAttention: embed_dim must be divisible by num_heads, "
                             f"got embed_dim={embed_dim} and num_heads={num_heads}")
        if self._qkv_same_embed_dim:
            self.in_proj_weight = empty_parameter(3 * embed_dim, embed_dim)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = empty_parameter(embed_dim, embed_dim)
            self.k_proj_weight = empty_parameter(embed_dim, self.kdim)
            self.v_proj_weight = empty_parameter(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        self.register_parameter("in_proj_bias", empty_parameter(3 * embed_dim) if bias else None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias)
        if add_bias_kv:
            self.bias_k = empty_parameter(1, 1, embed_dim)
            self.bias_v = empty_parameter(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's: Xavier-uniform projections, zero biases (out_proj's too), Xavier-normal
        bias_k and bias_v; out_proj's weight keeps Linear's init."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        for extra in (self.bias_k, self.bias_v):
            if extra is not None:
                _xavier_normal_(extra)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """query (L, N, E) ((N, L, E) if batch_first; (L, E) unbatched), key (S, N, kdim),
        value (S, N, vdim) -> output like query, and, if need_weights, the attention weights
        (N, L, S) averaged over heads, or (N, num_heads, L, S) if not average_attn_weights.

        key_padding_mask (N, S): True (or -inf) for keys to ignore (padding); attn_mask
        (L, S) or (N * num_heads, L, S): True (or -inf) where a query may not attend a key;
        float masks are added to the scores. is_causal: a hint that attn_mask is the causal
        mask (it is still required, as in PyTorch).
        """
        return _multi_head_attention(
            "MultiheadAttention", query, key, value, self.embed_dim, self.num_heads,
            self.in_proj_weight, self.in_proj_bias, self.bias_k, self.bias_v,
            self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias,
            self.training, key_padding_mask, need_weights, attn_mask,
            not self._qkv_same_embed_dim, self.q_proj_weight, self.k_proj_weight,
            self.v_proj_weight, average_attn_weights, is_causal, self.batch_first)
