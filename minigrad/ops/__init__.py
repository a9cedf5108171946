"""The differentiable operations: one `Function` per op, forward and backward side by side.

`elementwise` (arithmetic, activations), `reduce` (sum, max, softmax, ...), `shape` (reshape,
indexing, cat, pad) and `linalg` (matmul). The functions below are what `mg.*` and the Tensor
methods call.
"""

from minigrad.ops.elementwise import (
    Cast,
    abs,
    add,
    clamp,
    compare,
    cos,
    div,
    exp,
    gelu,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    silu,
    sin,
    sqrt,
    sub,
    tanh,
    to,
    update_in_place,
    where,
)
from minigrad.ops.linalg import matmul
from minigrad.ops.reduce import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    softmax,
    std,
    sum,
    var,
)
from minigrad.ops.shape import (
    cat,
    expand,
    flatten,
    gather,
    get_item,
    normalize_dim,
    pad,
    permute,
    reshape,
    set_item,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)

__all__ = [
    "Cast", "abs", "add", "all", "amax", "amin", "any", "argmax", "argmin", "cat", "clamp",
    "compare", "cos", "div", "exp", "expand", "flatten", "gather", "gelu", "get_item", "log",
    "log_softmax", "logsumexp", "matmul", "max", "maximum", "mean", "min", "minimum", "mul",
    "neg", "normalize_dim", "pad", "permute", "pow", "relu", "reshape", "set_item", "sigmoid",
    "silu", "sin", "softmax", "sqrt", "squeeze", "stack", "std", "sub", "sum", "tanh",
    "to", "transpose", "unsqueeze", "update_in_place", "var", "where",
]
