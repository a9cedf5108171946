"""The differentiable operations: one `Function` per op, forward and backward side by side.

The modules: `elementwise` (arithmetic, activations, comparisons, casts, in-place updates),
`reduce` (sum, mean, var, max, logsumexp, softmax, ...), `shape` (reshape, permute, squeeze,
indexing, gather, cat, stack, pad, and `normalize_dim`, which checks every dim argument),
`linalg` (matmul), `nn` (conv2d, max/avg pooling, linear: the backend's kernels) and `norm`
(batch norm, layer norm). The functions below are what `mg.*` and the Tensor methods call;
`nn` and `norm` are used through `minigrad.nn.functional`.
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
    where,
)
from minigrad.ops.inplace import set_item, update_in_place
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
