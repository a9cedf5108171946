"""What the model-zoo tests share: torchvision 0.28.0 as the oracle, and the three checks every
architecture goes through.

- `assert_same_structure`: the same state-dict keys in the same order, the same shapes and
  dtypes, the same parameter count (torchvision's model is built on PyTorch's "meta" device,
  which allocates nothing; ours under `without_random_init`, so a 300M-parameter ViT costs
  memory writes but no random draws).
- `assert_same_logits`: torchvision's (randomised) weights loaded into ours by state-dict key,
  eval mode, the same input: relative 1e-4 in float32, 1e-10 in float64; and a second input
  must move the oracle's logits by 100 times the tolerance, or the comparison proves little.
- `assert_same_after_sgd`: train mode (BatchNorm on batch statistics), a few SGD steps on the same
  batch in float64: the same parameters and running statistics afterwards.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from helpers import skip_or_fail

import minigrad as mg

TORCHVISION = "0.28.0"
LOGITS_TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}  # max |ours - theirs| / max |theirs|
SGD_TOLERANCE = 1e-9  # float64, relative per tensor, after the steps


def torchvision_models() -> Any:
    """`torchvision.models` of torchvision 0.28.0 on the CPU build of torch 2.13.

    The wheel's compiled operators need CUDA libraries; its models are pure Python. An empty
    `torchvision._meta_registrations` keeps the import from registering the compiled ones."""
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    try:
        import torchvision
    except ImportError as error:
        skip_or_fail(f"torchvision is missing (pip install -e .[oracle]): {error}")
    assert torchvision.__version__.split("+")[0] == TORCHVISION, torchvision.__version__
    return torchvision.models


class _Zeros:
    """A stand-in for minigrad's random generator whose every draw is zeros: np.zeros is
    allocated lazily, so building a large model costs no random numbers."""

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> np.ndarray:
        return np.zeros(size)

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = None) -> np.ndarray:
        return np.zeros(size)

    def random(self, size: Any = None) -> np.ndarray:
        return np.zeros(size)


@contextlib.contextmanager
def without_random_init() -> Iterator[None]:
    """Build models whose initial values do not matter (shape checks): every init draw is 0."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("minigrad.nn.init.default_generator", lambda: _Zeros())
        yield


def meta_model(torch: Any, builder: Any, **kwargs: Any) -> Any:
    """A torchvision model on the meta device: shapes only, built in milliseconds."""
    with torch.device("meta"):
        return builder(**kwargs)


def count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_same_structure(ours: mg.nn.Module, theirs: Any, parameters: int | None = None) -> None:
    """Same keys in the same order, same shapes and dtypes; `parameters`: the expected count."""
    mine = ours.state_dict()
    their = theirs.state_dict()
    assert list(mine) == list(their)
    for key, value in their.items():
        assert tuple(mine[key].shape) == tuple(value.shape), key
        assert str(mine[key].dtype) == str(value.dtype).removeprefix("torch."), key
    assert count(ours) == count(theirs)
    if parameters is not None:
        assert count(ours) == parameters


def randomised(torch: Any, model: Any, seed: int = 0, weights: bool = True) -> Any:
    """Weights that make every layer matter: conv and Linear weights redrawn He-normal (fan in),
    so the signal neither dies nor explodes through the depth (torchvision's small initial
    weights, GoogLeNet's N(0, 0.01) say, would let BatchNorm's shifts drown the input), biases
    small and non-zero, and non-trivial BatchNorm affine parameters and running statistics
    (fresh ones are ones and zeros, which would hide a mix-up). `weights=False` leaves the conv
    and Linear layers as they are."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if weights and isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1)
            elif isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(7)
    return model


def copy_weights(ours: mg.nn.Module, theirs: Any) -> None:
    """torchvision's state dict into ours, by key, as a user would."""
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-30))


def assert_same_logits(torch: Any, ours: mg.nn.Module, theirs: Any, input_shape: tuple[int, ...],
                       dtype: type = np.float32, seed: int = 0) -> None:
    """Eval mode, theirs' weights copied into ours, one random batch of `input_shape`."""
    copy_weights(ours, theirs)
    if dtype == np.float64:
        ours, theirs = ours.double(), theirs.double()
    ours.eval()
    theirs.eval()
    rng = np.random.default_rng(seed)
    x, other = (rng.standard_normal(input_shape).astype(dtype) for _ in range(2))
    with mg.no_grad():
        mine = ours(mg.tensor(x)).numpy()
    with torch.no_grad():
        their = theirs(torch.from_numpy(x)).numpy()
        their_other = theirs(torch.from_numpy(other)).numpy()
    assert mine.shape == their.shape
    assert relative_error(mine, their) <= LOGITS_TOLERANCE[dtype]
    # The comparison means something only if the logits depend on the input well above the
    # tolerance: small initial weights under BatchNorm's shifts can drown the input.
    assert relative_error(their_other, their) >= 100 * LOGITS_TOLERANCE[dtype], \
        "the oracle's logits barely depend on the input: randomise its weights more"


def assert_same_after_sgd(torch: Any, ours: mg.nn.Module, theirs: Any,
                          input_shape: tuple[int, ...], steps: int = 2, lr: float = 0.05,
                          seed: int = 0, output: Any = None) -> None:
    """Train mode in float64: `steps` SGD(momentum 0.9) steps of cross-entropy on one random
    batch; every parameter and buffer must then agree. `output(result)` picks the logits where
    the model returns more (GoogLeNet's auxiliary heads). The models must not draw random
    numbers in training (dropout 0, stochastic depth 0): the two libraries' draws differ."""
    copy_weights(ours, theirs)
    ours, theirs = ours.double().train(), theirs.double().train()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(input_shape)
    pick = output or (lambda result: result)
    ours_opt = mg.optim.SGD(ours.parameters(), lr=lr, momentum=0.9)
    theirs_opt = torch.optim.SGD(theirs.parameters(), lr=lr, momentum=0.9)
    y = rng.integers(0, 2, input_shape[0])  # every model has at least two classes
    for _ in range(steps):
        ours_opt.zero_grad()
        mg.nn.functional.cross_entropy(pick(ours(mg.tensor(x))), mg.tensor(y)).backward()
        ours_opt.step()
        theirs_opt.zero_grad()
        torch.nn.functional.cross_entropy(pick(theirs(torch.from_numpy(x))),
                                          torch.from_numpy(y)).backward()
        theirs_opt.step()
    mine = ours.state_dict()
    for key, value in theirs.state_dict().items():
        their = value.numpy()
        if their.dtype.kind == "f":
            assert relative_error(mine[key].numpy(), their) <= SGD_TOLERANCE, key
        else:
            np.testing.assert_array_equal(mine[key].numpy(), their, err_msg=key)
