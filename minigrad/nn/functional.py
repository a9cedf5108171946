"""Stateless neural-network functions, as `torch.nn.functional` (imported as F).

The activations are the ops of `minigrad.ops`; this module is where PyTorch users look for them.
"""

from minigrad.ops import gelu, log_softmax, pad, relu, sigmoid, silu, softmax, tanh

__all__ = ["gelu", "log_softmax", "pad", "relu", "sigmoid", "silu", "softmax", "tanh"]
