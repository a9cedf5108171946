"""Matrix products: matmul (NumPy's rules: batched, broadcast, 1-D operands), bmm, einsum."""

from __future__ import annotations

import math
import string
from typing import Any

from minigrad.autograd import Function, describe
from minigrad.backends import kernels_for
from minigrad.tensor import Tensor


class Matmul(Function):
    """C = A @ B, so dA = dC @ B^T and dB = A^T @ dC over the last two dims.

    A 1-D operand is treated as a row (A) or column (B) and that dim is dropped from C, as
    NumPy does; backward restores it so the engine can sum broadcast batch dims away.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        ctx.matmul = kernels_for(ctx.xp).matmul
        return ctx.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        xp = ctx.xp
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b.ndim == 1:  # restore C's dropped column dim, then its dropped row dim
            grad = xp.expand_dims(grad, -1)
        if a.ndim == 1:
            grad = xp.expand_dims(grad, -2)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = ctx.matmul(grad, b2.swapaxes(-1, -2))
            grad_a = grad_a[..., 0, :] if a.ndim == 1 else grad_a
        if ctx.needs_input_grad[1]:
            grad_b = ctx.matmul(a2.swapaxes(-1, -2), grad)
            grad_b = grad_b[..., 0] if b.ndim == 1 else grad_b
        return grad_a, grad_b


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product; checks shapes first so a mismatch names both of them."""
    a_shape, b_shape = getattr(a, "shape", ()), getattr(b, "shape", ())
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                         f"{tuple(a_shape)} and {tuple(b_shape)}")
    inner_a = a_shape[-1]
    inner_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if inner_a != inner_b:
        raise ValueError(f"matmul: shapes {tuple(a_shape)} and {tuple(b_shape)} do not align: "
                         f"{inner_a} (last dim of the first) != {inner_b} (the second's rows)")
    return Matmul.apply(a, b)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product of two 3-D tensors (b, n, m) @ (b, m, p) -> (b, n, p), without
    broadcasting, as torch.bmm."""
    for name, t in (("batch1", input), ("batch2", mat2)):
        if getattr(t, "ndim", 0) != 3:
            raise ValueError(f"bmm: {name} must be a 3-D tensor, got shape "
                             f"{tuple(getattr(t, 'shape', ()))}")
    expected = (input.shape[0], input.shape[2])
    if mat2.shape[:2] != expected:
        raise ValueError(f"bmm: batch1 of shape {input.shape} needs batch2 of shape "
                         f"({expected[0]}, {expected[1]}, p), got {mat2.shape}")
    return Matmul.apply(input, mat2)


# ------------------------------------------------------------------------------------ einsum

# Subscripts: PyTorch's and NumPy's letters; implicit outputs sort them in this (ASCII) order.
_LETTERS = string.ascii_uppercase + string.ascii_lowercase


class Einsum(Function):
    """Einstein summation. Each operand's gradient is an einsum too: of the output gradient
    with the other operands, giving the operand's own subscripts (PyTorch's rule). Two cases
    need care: a letter only that operand has and the output lacks was summed over, so its
    gradient is the same all along it (broadcast); a letter repeated within the operand
    ('ii->i', 'ii') read a diagonal, so its gradient is written into that diagonal."""

    @staticmethod
    def forward(ctx, *operands, inputs, output, sizes):
        ctx.inputs, ctx.output, ctx.sizes = inputs, output, sizes
        ctx.save_for_backward(*operands)
        return contract(ctx.xp, inputs, output, operands)

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        return tuple(_operand_gradient(ctx, i, grad, operands) if needed else None
                     for i, needed in enumerate(ctx.needs_input_grad))


def _operand_gradient(ctx, i: int, grad: Any, operands: tuple) -> Any:
    xp, sizes, subscripts = ctx.xp, ctx.sizes, ctx.inputs[i]
    others = [j for j in range(len(operands)) if j != i]
    letters = "".join(dict.fromkeys(subscripts))  # each letter once, in the operand's order
    known = set(ctx.output).union(*(ctx.inputs[j] for j in others))
    kept = "".join(c for c in letters if c in known)
    gradient = contract(xp, [ctx.output, *(ctx.inputs[j] for j in others)], kept,
                        [grad, *(operands[j] for j in others)])
    # letters summed in this operand alone: the gradient is the same all along them
    gradient = xp.broadcast_to(gradient.reshape([gradient.shape[kept.index(c)] if c in kept
                                                 else 1 for c in letters]),
                               [sizes[c] for c in letters])
    if len(letters) == len(subscripts):
        return gradient
    # repeated letters: the operand's diagonal got the gradient, every other element none
    full = xp.zeros([sizes[c] for c in subscripts], dtype=gradient.dtype)
    places = tuple(xp.arange(sizes[c]).reshape([sizes[c] if d == c else 1 for d in letters])
                   for c in subscripts)
    full[places] = gradient
    return full


def contract(xp: Any, inputs: list[str], output: str, operands: Any) -> Any:
    """The einsum of `operands` with explicit subscripts (letters only): a pair of operands
    without repeated letters as one batched matmul, anything else by xp.einsum."""
    if len(operands) == 2 and all(len(set(s)) == len(s) for s in inputs):
        return _pair(xp, *inputs, output, *operands)
    equation = ",".join(inputs) + "->" + output
    return xp.einsum(equation, *operands, optimize=len(operands) > 2)


def _pair(xp: Any, sa: str, sb: str, output: str, a: Any, b: Any) -> Any:
    """einsum of two operands as torch.einsum does it, through one batched matmul: letters in
    both operands and the output are the batch dims, those in both but not the output are
    summed by the product, the others are its rows (a's) and columns (b's)."""
    # summed first: letters of one operand only, absent from the output, and summed letters
    # whose sizes differ (1 on one side: that side's factor is constant along the letter)
    mismatched = {c for c in sa if c in sb and c not in output
                  and a.shape[sa.index(c)] != b.shape[sb.index(c)]}
    a, sa = _sum_letters(a, sa, {c for c in sa if c not in sb + output} | mismatched)
    b, sb = _sum_letters(b, sb, {c for c in sb if c not in sa + output} | mismatched)
    batch = [c for c in output if c in sa and c in sb]
    rows = [c for c in output if c in sa and c not in sb]
    cols = [c for c in output if c in sb and c not in sa]
    inner = [c for c in sa if c in sb and c not in output]
    a = a.transpose([sa.index(c) for c in batch + rows + inner])
    b = b.transpose([sb.index(c) for c in batch + inner + cols])
    nb, nr = len(batch), len(rows)
    row_sizes, col_sizes = a.shape[nb:nb + nr], b.shape[nb + len(inner):]
    inner_size = math.prod(a.shape[nb + nr:])
    product = kernels_for(xp).matmul(
        a.reshape(a.shape[:nb] + (math.prod(row_sizes), inner_size)),
        b.reshape(b.shape[:nb] + (inner_size, math.prod(col_sizes))))
    product = product.reshape(product.shape[:nb] + row_sizes + col_sizes)
    order = batch + rows + cols
    return product.transpose([order.index(c) for c in output])


def _sum_letters(x: Any, subscripts: str, letters: set[str]) -> tuple[Any, str]:
    axes = tuple(i for i, c in enumerate(subscripts) if c in letters)
    if not axes:
        return x, subscripts
    return x.sum(axis=axes), "".join(c for c in subscripts if c not in letters)


def _parse(equation: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str, dict]:
    """An einsum equation -> (each operand's subscripts, the output's, each letter's size),
    with '...' replaced by letters of its own (right-aligned: broadcasting), and the output of
    implicit mode (no '->') written out: the ellipsis dims, then the letters that appear once,
    in ASCII order. The checks and their messages follow torch.einsum's."""
    def fail(message: str) -> ValueError:
        return ValueError(f"einsum: {message} (equation {equation!r}, operand shapes "
                          f"{', '.join(str(s) for s in shapes)})")

    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string, got {type(equation).__name__}")
    written = equation.replace(" ", "")
    if written.count("->") > 1:
        raise fail("'->' appears more than once")
    left, arrow, right = written.partition("->")
    terms = left.split(",")
    if len(terms) != len(shapes):
        raise fail(f"the equation has subscripts for {len(terms)} operands, but "
                   f"{len(shapes)} were given")
    for term in [*terms, right]:
        rest = term.replace("...", "", 1)
        if "." in rest:
            raise fail(f"'.' in {term!r} that is not part of one ellipsis '...'")
        bad = [c for c in rest if c not in _LETTERS]
        if bad:
            raise fail(f"invalid subscript {bad[0]!r}; subscripts must be letters in [a-zA-Z]")
    free = [c for c in _LETTERS if c not in written]
    spans = []  # how many dims the ellipsis of each operand stands for
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        named = len(term.replace("...", ""))
        if ("..." in term and named > len(shape)) or ("..." not in term and named != len(shape)):
            raise fail(f"operand {i} has {len(shape)} dims but its subscripts {term!r} name "
                       f"{named}{' and no ellipsis' if '...' not in term else ''}")
        spans.append(len(shape) - named if "..." in term else 0)
    ellipsis = "".join(free[:max(spans, default=0)])
    inputs = [term.replace("...", ellipsis[len(ellipsis) - span:])
              for term, span in zip(terms, spans)]
    sizes: dict[str, int] = {}
    for i, (term, shape) in enumerate(zip(inputs, shapes)):
        own: dict[str, int] = {}
        for c, n in zip(term, shape):
            if own.setdefault(c, n) != n:
                raise fail(f"subscript {c!r} is repeated for operand {i} with sizes "
                           f"{own[c]} and {n}, which must match")
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise fail(f"subscript {c!r} has size {n} for operand {i}, which does not "
                           f"broadcast with the size {sizes[c]} seen before")
            sizes[c] = max(sizes.get(c, 1), n)
    if arrow:
        output = right.replace("...", ellipsis)
        for c in output:
            if output.count(c) > 1:
                raise fail(f"output subscript {c!r} appears more than once in the output")
            if c not in sizes:
                raise fail(f"output subscript {c!r} does not appear in any operand's subscripts")
    else:
        once = sorted((c for c in sizes if c not in ellipsis and "".join(terms).count(c) == 1),
                      key=_LETTERS.index)
        output = ellipsis + "".join(once)
    return inputs, output, sizes


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation over the operands' subscripted dims, as torch.einsum and
    numpy.einsum: 'ij,jk->ik' (matmul), 'bhqd,bhkd->bhqk' (attention scores), 'ii->i'
    (diagonal), 'ii' (trace), '...ij->...ji' (batched transpose). Without '->' the output is
    the letters that appear once, in alphabetical order. Operands may be given as a list.
    Differentiable for every operand."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum: operands must be tensors, operand {i} is "
                            f"{type(t).__name__}")
    dtypes = {t.dtype for t in operands}
    if len(dtypes) > 1:
        raise TypeError(f"einsum: the operands must have one dtype, got "
                        f"{', '.join(describe(t) for t in operands)}")
    inputs, output, sizes = _parse(equation, [t.shape for t in operands])
    return Einsum.apply(*operands, inputs=inputs, output=output, sizes=sizes)
