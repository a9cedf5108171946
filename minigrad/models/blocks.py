"""Building blocks the model zoo shares, as torchvision.ops has them (same names, arguments,
defaults and module names, so state dicts and reprs match torchvision's):

- `Conv2dNormActivation`: the conv -> norm -> activation triple of every modern CNN, a
  Sequential named "0", "1", "2";
- `SqueezeExcitation` (Hu, Shen and Sun, "Squeeze-and-Excitation Networks", 2017): rescale each
  channel by a gate computed from the global average of all channels;
- `stochastic_depth` and `StochasticDepth` (Huang, Sun, Liu, Sedra and Weinberger, "Deep
  Networks with Stochastic Depth", 2016): drop a residual branch at random in training.
"""

from __future__ import annotations

from collections.abc import Callable

from minigrad import nn
from minigrad.autograd import array_module, describe
from minigrad.nn.arguments import IntOrPair, pair
from minigrad.random import generator
from minigrad.tensor import Tensor

STOCHASTIC_DEPTH_MODES = ("batch", "row")


def stochastic_depth(input: Tensor, p: float, mode: str, training: bool = True) -> Tensor:
    """Zero the input with probability `p` and scale what survives by 1 / (1 - p), as
    torchvision.ops.stochastic_depth: `mode="row"` decides for each sample of the batch
    (input[n] is all kept or all zeroed), `mode="batch"` once for the whole input.

    Applied to a residual branch, x + stochastic_depth(f(x)) skips f for the dropped samples:
    the network is shallower for them in this step. The 1 / (1 - p) keeps the branch's
    expected value, so evaluation (`training=False`) and p = 0 return the input itself.
    p = 1 zeroes everything (nothing survives to rescale). The decisions are drawn from
    minigrad's generator (`mg.manual_seed`), on the host, like dropout's masks.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"stochastic_depth: drop probability has to be between 0 and 1, "
                         f"but got {p}")
    if mode not in STOCHASTIC_DEPTH_MODES:
        raise ValueError(f"stochastic_depth: mode has to be either 'batch' or 'row', "
                         f"but got {mode}")
    if not training or p == 0.0:
        return input
    if mode == "row" and input.ndim == 0:
        raise ValueError(f"stochastic_depth: mode 'row' needs an input (N, ...) with a batch "
                         f"dim, got {describe(input)}")
    survival_rate = 1.0 - p
    # one decision per row, broadcast over the rest of the row; or one for everything
    size = (input.shape[0],) + (1,) * (input.ndim - 1) if mode == "row" else (1,) * input.ndim
    keep = (generator().random(size) < survival_rate).astype(input.dtype)
    if survival_rate > 0.0:
        keep = keep / input.dtype.type(survival_rate)  # in the input's dtype, as torch
    return input * array_module([input.array]).asarray(keep)


class StochasticDepth(nn.Module):
    """`stochastic_depth(x, p, mode, self.training)` as a layer; see `stochastic_depth`."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, input: Tensor) -> Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training)

    def __repr__(self) -> str:
        return f"StochasticDepth(p={self.p}, mode={self.mode})"  # torchvision's: mode unquoted


class Conv2dNormActivation(nn.Sequential):
    """Conv2d, then `norm_layer(out_channels)`, then `activation_layer(inplace=inplace)`; a
    layer given as None is left out. `padding=None` keeps the size at stride 1:
    (kernel_size - 1) // 2 * dilation per side. `bias=None` gives the conv a bias only
    without a norm layer (a BatchNorm's own shift would cancel it). `inplace=None` calls
    `activation_layer()` without the flag (for activations that have none)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair = 3,
                 stride: IntOrPair = 1, padding: IntOrPair | str | None = None, groups: int = 1,
                 norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
                 activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
                 dilation: IntOrPair = 1, inplace: bool | None = True,
                 bias: bool | None = None) -> None:
        if padding is None:
            kernel = pair("Conv2dNormActivation", "kernel_size", kernel_size, 1)
            spacing = pair("Conv2dNormActivation", "dilation", dilation, 1)
            padding = ((kernel[0] - 1) // 2 * spacing[0], (kernel[1] - 1) // 2 * spacing[1])
            if isinstance(kernel_size, int) and isinstance(dilation, int):
                padding = padding[0]
        if bias is None:
            bias = norm_layer is None
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                             padding, dilation=dilation, groups=groups,
                                             bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer() if inplace is None
                          else activation_layer(inplace=inplace))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """input * scale_activation(fc2(activation(fc1(avgpool(input))))): the "squeeze" is the
    global average of each channel, the "excitation" a two-layer bottleneck (1x1 convs
    through `squeeze_channels`) whose sigmoid gates each channel between 0 and 1, so the
    block learns which feature maps matter for this input. `activation` and
    `scale_activation` are the paper's delta and sigma (eq. 3)."""

    def __init__(self, input_channels: int, squeeze_channels: int,
                 activation: Callable[..., nn.Module] = nn.ReLU,
                 scale_activation: Callable[..., nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, input: Tensor) -> Tensor:
        """The (N, C, 1, 1) gate."""
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(input)))))

    def forward(self, input: Tensor) -> Tensor:
        return self._scale(input) * input
