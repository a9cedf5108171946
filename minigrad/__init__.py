"""minigrad: a PyTorch-shaped Tensor with reverse-mode autograd, small enough to read.

    import minigrad as mg
    x = mg.randn(3, 4, requires_grad=True)
    (x.relu() ** 2).sum().backward()
    x.grad          # d/dx of the sum

Where things are: `tensor.py` (the Tensor), `autograd.py` (Function, no_grad, the backward
pass), `ops/` (every op, forward and backward side by side), `backends/` (the conv, pooling and
matmul kernels: NumPy, Numba, CuPy), `nn/`, `testing/` (gradcheck and Hypothesis strategies).
"""

import numpy as _np

from minigrad import autograd, backends, cuda, data, models, nn, optim, testing, utils
from minigrad.autograd import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from minigrad.backends import backend, get_backend, set_backend
from minigrad.devices import Device as device
from minigrad.factories import (
    arange,
    empty,
    eye,
    from_numpy,
    full,
    linspace,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from minigrad.ops import (
    abs,
    add,
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    argsort,
    bmm,
    cat,
    chunk,
    clamp,
    clone,
    cos,
    cumsum,
    div,
    einsum,
    exp,
    flatten,
    flip,
    gather,
    index_select,
    log,
    log_softmax,
    logsumexp,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    norm,
    pad,
    permute,
    pow,
    relu,
    reshape,
    roll,
    sigmoid,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sub,
    sum,
    tanh,
    topk,
    transpose,
    tril,
    triu,
    unbind,
    unsqueeze,
    var,
    where,
)
from minigrad.random import manual_seed
from minigrad.serialization import load, save
from minigrad.summary import summary
from minigrad.tensor import Tensor

float32 = _np.dtype(_np.float32)
float64 = _np.dtype(_np.float64)
int64 = _np.dtype(_np.int64)
bool_ = _np.dtype(_np.bool_)
clip = clamp

__version__ = "0.1.0"

__all__ = [
    "abs", "add", "all", "amax", "amin", "any", "arange", "argmax", "argmin", "argsort",
    "autograd", "backend", "backends", "bmm", "bool_", "chunk", "clone", "cuda", "cumsum",
    "device", "cat", "clamp", "clip", "cos", "data", "div", "einsum", "empty", "enable_grad",
    "exp", "eye", "flatten", "flip", "float32", "float64", "from_numpy", "full", "Function",
    "gather", "get_backend", "index_select", "int64", "is_grad_enabled", "linspace", "load", "log",
    "log_softmax", "logsumexp", "manual_seed", "masked_fill", "matmul", "max", "maximum", "mean",
    "min", "minimum", "models", "mul", "neg", "nn", "no_grad", "norm", "ones", "ones_like",
    "optim", "pad", "permute", "pow", "rand", "randint", "randn", "randperm", "relu", "reshape",
    "roll", "save", "set_backend", "set_grad_enabled", "sigmoid", "sin", "softmax", "sort",
    "split", "sqrt", "squeeze", "stack", "std", "sub", "sum", "summary", "tanh", "Tensor",
    "tensor", "testing", "topk", "transpose", "tril", "triu", "unbind", "unsqueeze", "utils",
    "var", "where", "zeros", "zeros_like",
]
