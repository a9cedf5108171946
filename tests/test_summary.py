"""minigrad.summary and `python -m minigrad.models` (issue 15, the article as a table).

- Mult-adds per layer and in total against PyTorch's FlopCounterMode (which counts 2 per
  multiply-add) on the PyTorch twins of lenet5, SimpleCNN and resnet20; the landmark models'
  totals against torchvision's published GFLOPS (`Weights.meta["_ops"]`) at the weights' input
  size, and exactly against FlopCounterMode on torchvision's model (meta device).
- Receptive fields against a brute-force measurement, the support of the input gradient of
  each layer's centre output element, on small models with branches, residual sums,
  concatenation, dilation, groups, transposed convs, resampling, adaptive pooling and
  attention; and against the known values of AlexNet and VGG16.
- Depth, activation memory against a hand count, the input-size conventions, the model's
  state left as it was, and the table's command line.

The landmark models run at 224x224 with `shapes_only`: the conv and matmul kernels return zeros
of the right shape, since no count depends on the values (a VGG16 forward pass costs 15 GMACs).
MINIGRAD_FULL_ZOO=1 checks every zoo builder present against torchvision's published GFLOPS
(minutes: the 300M-parameter ViTs and EfficientNet-B7 at 600x600), not only the article's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from zoo import torchvision_models, without_random_init

import minigrad as mg
import minigrad.models
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.backends.geometry import output_hw
from minigrad.backends.numpy_backend import NumpyBackend
from minigrad.models import SimpleCNN, lenet5, resnet20
from minigrad.summary import Summary, depth, summary
from minigrad.testing.torch_models import torch_lenet5, torch_resnet20, torch_simple_cnn

ROOT = Path(__file__).resolve().parent.parent

# The article's table (python -m minigrad.models): builder, depth by its paper's count.
ARTICLE_DEPTHS = {"alexnet": 8, "vgg16": 16, "googlenet": 22, "resnet50": 50, "resnet152": 152,
                  "efficientnet_b0": 82, "vit_b_16": 50}
ZOO_PATTERNS = ("alexnet", "vgg*", "googlenet", "resnet*", "resnext*", "wide_resnet*",
                "efficientnet_b*", "vit*")


@contextlib.contextmanager
def shapes_only():
    """The numpy backend, its conv and matmul kernels (and attention's softmax(q k^T), and
    erf) returning zeros of the right shape."""
    def conv(self, x, weight, stride, padding, dilation, groups):
        hw = output_hw(x.shape[2:], weight.shape[2:], stride, padding, dilation)
        return np.zeros((x.shape[0], weight.shape[0], *hw), x.dtype)

    def matmul(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            return np.matmul(a, b)
        shape = (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])
        return np.zeros(shape, np.result_type(a, b))

    def probabilities(xp, qh, kh, *args):
        return xp.zeros((*np.broadcast_shapes(qh.shape[:-2], kh.shape[:-2]), qh.shape[-2],
                         kh.shape[-2]), qh.dtype)

    with pytest.MonkeyPatch.context() as patch, mg.backend("numpy"):
        patch.setattr(NumpyBackend, "conv2d_forward", conv)
        patch.setattr(NumpyBackend, "matmul", matmul)
        patch.setattr(NumpyBackend, "erf", lambda self, x: np.zeros_like(x))  # GELU's
        patch.setattr("minigrad.nn.attention._probabilities", probabilities)
        yield


@pytest.fixture(autouse=True)
def numpy_backend():
    """The reference backend: the summaries here need no speed, and Numba's first compiles
    would cost more than the tests."""
    with mg.backend("numpy"):
        yield


def rows_of(text: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in text.splitlines()
            if line[:1].isalpha() and not line.startswith(("Layer", "Total", "Trainable",
                                                           "Memory", "Depth", "input"))}


# ------------------------------------------------------------------- the table and its columns


def test_summary_of_simple_cnn(capsys):
    text = summary(SimpleCNN(), (1, 28, 28))
    assert isinstance(text, Summary) and isinstance(text, str)
    assert capsys.readouterr().out.strip() == text.strip()  # printed as well as returned
    rows = rows_of(text)
    # Layer: type, output shape, params, mult-adds, memory (2 cells), receptive field, jump
    assert rows["features.0"] == ["Conv2d", "32x26x26", "320", "194,688", "86.5", "kB", "3", "1"]
    assert rows["features.2"][1] == "32x13x13" and rows["features.2"][-2:] == ["4", "2"]
    assert rows["features.3"][:4] == ["Conv2d", "64x11x11", "18,496", "2,230,272"]
    assert rows["features.3"][-2:] == ["8", "2"]
    assert rows["features.5"][1] == "64x5x5" and rows["features.5"][-2:] == ["10", "4"]
    assert rows["classifier.0"][1] == "1600" and rows["classifier.0"][-1] == "-"
    assert rows["classifier.1"][:4] == ["Linear", "128", "204,928", "204,800"]
    assert rows["classifier.1"][-1] == "-"  # every position: no spatial axis to step along
    assert rows["classifier.4"][:4] == ["Linear", "10", "1,290", "1,280"]
    assert "Total params: 225,034" in text
    assert "Total mult-adds: 2,631,040 (2.63 M), per sample" in text
    assert "Depth: 4 " in text
    assert text.total_params == 225_034 and text.mult_adds == 2_631_040 and text.depth == 4
    assert summary(SimpleCNN(), (1, 28, 28), verbose=0) == text
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("ours", "theirs", "shape"), [
    (lenet5, torch_lenet5, (1, 28, 28)),
    (SimpleCNN, torch_simple_cnn, (1, 28, 28)),
    (resnet20, torch_resnet20, (3, 32, 32)),
], ids=["lenet5", "simple_cnn", "resnet20"])
def test_columns_match_torch_flop_counter(torch, ours, theirs, shape):
    """Per layer: the output shape (a forward hook on the twin), the parameters, and the
    mult-adds as FlopCounterMode's count / 2; the totals as well; batch 3, per sample."""
    from torch.utils.flop_counter import FlopCounterMode

    reference = theirs(torch).eval()
    shapes: dict[str, list] = {}
    for name, module in reference.named_modules():
        if not list(module.children()):
            module.register_forward_hook(
                lambda m, a, out, name=name: shapes.setdefault(name, []).append(out.shape[1:]))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        reference(torch.zeros(3, *shape))
    flops = counter.get_flop_counts()
    prefix = type(reference).__name__
    result = summary(ours().eval(), shape, batch_size=3, verbose=0)
    assert result.mult_adds * 2 * 3 == counter.get_total_flops()
    assert result.total_params == sum(p.numel() for p in reference.parameters())
    calls: dict[str, int] = {}
    for layer in result.layers:
        if layer.type == "Identity" and not hasattr(reference, layer.name):
            continue  # torchvision's placeholder (resnet20's maxpool), which the twin lacks
        module = reference.get_submodule(layer.name)
        i = calls[layer.name] = calls.get(layer.name, -1) + 1
        assert layer.output_shape == tuple(shapes[layer.name][i]), layer.name
        assert layer.params == sum(p.numel() for p in module.parameters()), layer.name
        expected = sum(flops.get(f"{prefix}.{layer.name}", {}).values())
        if calls[layer.name]:  # a shared layer (resnet's relu): FlopCounter adds its calls
            continue
        assert layer.mult_adds * 2 * 3 == expected // (len(shapes[layer.name])), layer.name
    assert sum(layer.mult_adds for layer in result.layers) == result.mult_adds


def test_activation_memory_by_hand():
    """LeNet-5's outputs per sample, float32: 6x28x28 twice (conv, tanh), 6x14x14, 16x10x10
    twice, 16x5x5, 120 three times (conv, tanh, flatten), 84 twice (linear, tanh), 10;
    float64 doubles it; the batch divides out."""
    elements = [6 * 28 * 28] * 2 + [6 * 14 * 14] + [16 * 10 * 10] * 2 + [16 * 5 * 5] + \
        [120] * 3 + [84] * 2 + [10]
    result = summary(lenet5(), (1, 28, 28), verbose=0)
    assert [layer.activation_bytes for layer in result.layers] == [4 * n for n in elements]
    assert result.activation_bytes == 4 * sum(elements) == 58_888
    assert result.input_bytes == 4 * 28 * 28
    assert result.param_bytes == 4 * 61_706
    assert "layers' outputs 58.9 kB" in result
    doubled = summary(lenet5().double(), input_size=(5, 1, 28, 28), verbose=0)
    assert doubled.dtype == np.float64
    assert doubled.activation_bytes == 8 * sum(elements)
    assert doubled.mult_adds == result.mult_adds == 416_520


def test_input_size_conventions(capsys):
    """input_shape: one sample's shape (minigrad's, since the first summary); input_size=: the
    whole shape, batch dim first (torchinfo's)."""
    per_sample = summary(lenet5(), (1, 28, 28), batch_size=2, verbose=0)
    torchinfo = summary(lenet5(), input_size=(2, 1, 28, 28), verbose=0)
    assert per_sample == torchinfo and per_sample.input_size == (2, 1, 28, 28)
    with pytest.raises(TypeError, match="not both"):
        summary(lenet5(), (1, 28, 28), input_size=(1, 1, 28, 28))
    with pytest.raises(TypeError, match="missing"):
        summary(lenet5())
    with pytest.raises(ValueError, match="positive ints"):
        summary(lenet5(), input_size=(0, 1, 28, 28))
    with pytest.raises(ValueError) as error:  # torchinfo's shape given as minigrad's
        summary(lenet5(), (1, 1, 28, 28))
    assert "pass input_size=(1, 1, 28, 28)" in "".join(error.value.__notes__)
    assert capsys.readouterr().out == ""


def test_summary_leaves_the_model_as_it_was(capsys):
    """Training mode, so BatchNorm would update its statistics and dropout draw numbers;
    the forward hooks go too, also when the forward pass fails."""
    model = resnet20(in_channels=1).train()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    text = summary(model, (1, 28, 28), batch_size=2)
    assert "64x7x7" in text and "Total params: 272,186" in text
    assert model.training
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key], err_msg=key)
    assert all(p.grad is None for p in model.parameters())
    assert all("forward" not in module.__dict__ for module in model.modules())
    assert not any(module._forward_hooks or module._forward_pre_hooks
                   for module in model.modules())
    with pytest.raises(ValueError):
        summary(model, (3, 28, 28))  # the wrong channel count
    assert all("forward" not in module.__dict__ for module in model.modules())
    assert not any(module._forward_hooks or module._forward_pre_hooks
                   for module in model.modules())
    dropout = SimpleCNN().train()
    mg.manual_seed(5)
    expected = mg.rand(3).numpy()
    mg.manual_seed(5)
    summary(dropout, (1, 28, 28), verbose=0)
    np.testing.assert_array_equal(mg.rand(3).numpy(), expected)  # dropout's draws undone
    with mg.no_grad():  # the graph is recorded even so
        assert summary(lenet5(), (1, 28, 28), verbose=0).layers[0].receptive_field == (5, 5)


def test_an_op_without_a_rule_shows_a_question_mark(capsys):
    """An op the receptive field does not know is said so, not guessed; the rest stands."""
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.after = nn.Conv2d(2, 2, 3)

        def forward(self, x):
            y = self.conv(x)
            y = F.huber_loss(y, y * 2, reduction="none")  # no rule for this op
            return self.after(y)

    result = summary(Odd(), (1, 9, 9), verbose=0)
    assert [layer.known for layer in result.layers] == [True, False]
    assert result.layers[0].receptive_field == (3, 3)
    assert rows_of(result)["after"][-2:] == ["?", "?"]
    assert result.mult_adds == 2 * 7 * 7 * 9 + 2 * 5 * 5 * 18


# --------------------------------------------------------------------------- receptive fields


class Branchy(nn.Module):
    """Branches that meet again: a residual sum, a concatenation of a dilated path, a strided
    grouped path brought back by a transposed conv, and a bilinear upsampling; then a padded
    ceil-mode average pool and an adaptive pool whose windows overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.dilated = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.down = nn.Conv2d(4, 4, 5, stride=2, padding=2, groups=2)
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=0)
        self.side = nn.Conv2d(4, 2, 3, stride=2)
        self.resample = nn.Upsample(size=(23, 23), mode="bilinear")
        self.mix = nn.Conv2d(10, 6, 1)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.adaptive = nn.AdaptiveAvgPool2d(5)
        self.act = nn.Tanh()

    def forward(self, x):
        x = self.act(self.stem(x))
        a = self.dilated(x)
        a += x  # in place, as torchvision's blocks do: the graph re-points `a`
        a = self.act(a)
        b = self.up(self.act(self.down(x)))
        c = self.resample(self.act(self.side(x)))
        return self.adaptive(self.pool(self.mix(mg.cat([a, b, c], 1))))


class TinyViT(nn.Module):
    """Patches as tokens, a class token, a LayerNorm per token, attention over all of them."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(2, 8, 4, stride=4)
        self.class_token = nn.Parameter(mg.zeros(1, 1, 8))
        self.norm = nn.LayerNorm(8)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = mg.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], 1)
        tokens = self.norm(tokens)
        out, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return self.head(out[:, 0])


def brute_force_fields(model: nn.Module, shape: tuple[int, ...], names: list[str],
                       wanted: list[bool]) -> list:
    """For each wanted row (name, in call order): the bounding box, per spatial dim, of the
    input positions where the gradient of its output's centre element is not zero."""
    outputs: dict[str, list] = {}
    handles = [model.get_submodule(name).register_forward_hook(
        lambda m, a, out, name=name: outputs.setdefault(name, []).append(
            out[0] if isinstance(out, tuple) else out)) for name in dict.fromkeys(names)]
    x = mg.tensor(np.random.default_rng(0).uniform(0.5, 1.5, (1, *shape)), requires_grad=True)
    model(x)
    for handle in handles:
        handle.remove()
    boxes, seen = [], {}
    for name, want in zip(names, wanted):
        i = seen[name] = seen.get(name, -1) + 1
        if not want:
            continue
        out = outputs[name][i]
        centre = tuple(n // 2 for n in out.shape)
        (grad,) = mg.autograd.grad(out[centre], x, retain_graph=True)
        support = np.abs(grad.numpy()).sum(axis=(0, 1)) > 0
        boxes.append(tuple((int(np.flatnonzero(support.any(axis=1 - d)).min()),
                            int(np.flatnonzero(support.any(axis=1 - d)).max()))
                           for d in range(2)))
    return boxes


def positive(model: nn.Module) -> nn.Module:
    """Weights and biases > 0, scaled by the fan-in so that tanh does not saturate (its
    derivative would round to 0): with positive inputs ReLU is then always on and no gradient
    cancels, BatchNorm is the identity in eval, and the gradient's support is the field."""
    rng = np.random.default_rng(1)
    with mg.no_grad():
        for p in model.parameters():
            fan_in = int(np.prod(p.shape[1:])) if p.ndim > 1 else 10
            p.array[...] = rng.uniform(0.5, 1.5, p.shape) / fan_in
    return model.double().eval()


def block_ends(name: str) -> bool:
    """resnet20's rows after each residual sum, and where the paths split (a backward pass
    per row: all 66 would take long)."""
    return name.endswith(("relu", "downsample.0", "avgpool", "conv1")) and (
        name.count(".") != 2 or name.endswith("relu"))


@pytest.mark.parametrize(("build", "shape", "rows"), [
    (Branchy, (2, 23, 23), None),
    (TinyViT, (2, 16, 16), None),
    (lenet5, (1, 28, 28), None),
    (lambda: resnet20(in_channels=2), (2, 20, 20), block_ends),
], ids=["branchy", "tiny_vit", "lenet5", "resnet20"])
def test_receptive_fields_match_brute_force(build, shape, rows):
    model = positive(build())
    result = summary(model, shape, verbose=0)
    assert all(layer.known for layer in result.layers)
    layers = [layer for layer in result.layers if rows is None or rows(layer.name)]
    names = [layer.name for layer in result.layers]
    expected = brute_force_fields(model, shape, names, [layer in layers for layer in
                                                        result.layers])
    size = shape[1:]
    for layer, box in zip(layers, expected):
        clipped = tuple((max(lo, 0), min(hi, n - 1)) for (lo, hi), n in zip(layer.field, size))
        assert clipped == box, layer.name


def test_receptive_fields_of_branches_and_tokens():
    """The numbers themselves, worked out by hand, where brute force clips at the border."""
    layers = {layer.name: layer for layer in summary(Branchy(), (2, 23, 23), verbose=0).layers}
    assert layers["stem"].receptive_field == (3, 3)
    assert layers["dilated"].receptive_field == (7, 7)  # 3 + 2 * 2
    assert layers["down"].receptive_field == (7, 7) and layers["down"].jump == (2, 2)
    assert layers["up"].jump == (1, 1)
    assert layers["up"].receptive_field == (9, 9)  # odd outputs: two inputs 2 apart, 7 + 2
    assert layers["mix"].receptive_field == (9, 9)  # the transposed conv's path is widest
    vit = {layer.name: layer for layer in summary(TinyViT(), (2, 16, 16), verbose=0).layers}
    assert vit["patch"].receptive_field == (4, 4) and vit["patch"].jump == (4, 4)
    assert vit["norm"].receptive_field == (4, 4) and vit["norm"].jump == (None, None)
    assert vit["norm"].field == ((4, 7), (12, 15))  # centre token 8: patch 7, row 1, col 3
    assert vit["attention"].field == ((0, 15), (0, 15))
    assert vit["head"].receptive_field == (16, 16)


# ----------------------------------------------------------- the landmark models at 224x224


def zoo_builders() -> list[str]:
    """The article's builders; with MINIGRAD_FULL_ZOO=1 every zoo builder torchvision has
    weights for (those not in minigrad.models yet fail, by name)."""
    if os.environ.get("MINIGRAD_FULL_ZOO", "").strip() not in ("", "0"):
        tv = torchvision_models()
        return list(tv.list_models(include=list(ZOO_PATTERNS)))
    return list(ARTICLE_DEPTHS)


def weights_of(tv: Any, name: str) -> Any:
    """The builder's weights with the smallest input (the cheapest to check)."""
    return min(tv.get_model_weights(name), key=lambda w: w.transforms().crop_size[0])


@pytest.fixture(scope="module")
def landmarks(tv):
    """name -> summary at the weights' input size (built without random draws, run with
    shapes_only), computed on first use; the model itself is dropped at once."""
    done: dict[str, Summary] = {}

    def get(name: str) -> Summary:
        if name not in done:
            size = weights_of(tv, name).transforms().crop_size[0]
            kwargs = {"image_size": size} if name.startswith("vit") else {}
            builder = getattr(minigrad.models, name)
            with without_random_init():
                model = builder(**kwargs).eval()
            with shapes_only():
                done[name] = summary(model, (3, size, size), verbose=0)
        return done[name]
    return get


@pytest.mark.parametrize("name", zoo_builders())
def test_mult_adds_are_torchvisions_published(torch, tv, landmarks, name):
    """Our total at the weights' input size is torchvision's published GFLOPS (3 decimals)
    and exactly half of FlopCounterMode's count for torchvision's model."""
    from torch.utils.flop_counter import FlopCounterMode

    weights = weights_of(tv, name)
    size = weights.transforms().crop_size[0]
    ours = landmarks(name)
    assert round(ours.mult_adds / 1e9, 3) == weights.meta["_ops"]
    with torch.device("meta"):
        kwargs = {"image_size": size} if name.startswith("vit") else {}
        if name == "googlenet":
            kwargs["init_weights"] = False  # scipy's slow truncnorm, for nothing on meta
        theirs = tv.get_model(name, **kwargs).eval()
        counter = FlopCounterMode(display=False)
        with counter:
            theirs(torch.zeros(1, 3, size, size))
    assert 2 * ours.mult_adds == counter.get_total_flops()
    assert ours.total_params == sum(p.numel() for p in theirs.parameters())
    assert all(layer.known for layer in ours.layers)


def test_depths(landmarks):
    assert depth(lenet5(), (1, 28, 28)) == 5
    assert depth(resnet20(), input_size=(1, 3, 32, 32)) == 20
    assert depth(SimpleCNN(), (1, 28, 28)) == 4
    for name, expected in ARTICLE_DEPTHS.items():
        assert landmarks(name).depth == expected, name
    googlenet = minigrad.models.googlenet(init_weights=False).train()  # the aux heads run
    assert depth(googlenet, (3, 64, 64)) == 22


def test_known_receptive_fields(landmarks):
    """AlexNet conv5 163 / pool5 195 (torchvision's layers: conv1 11x11 stride 4 padding 2);
    VGG16 conv5_3 196 / pool5 212; their jumps 16 and 32."""
    alexnet = {layer.name: layer for layer in landmarks("alexnet").layers}
    assert alexnet["features.10"].receptive_field == (163, 163)
    assert alexnet["features.10"].jump == (16, 16)
    assert alexnet["features.12"].receptive_field == (195, 195)
    assert alexnet["features.12"].jump == (32, 32)
    vgg = {layer.name: layer for layer in landmarks("vgg16").layers}
    assert vgg["features.28"].receptive_field == (196, 196) and vgg["features.28"].jump == (16, 16)
    assert vgg["features.30"].receptive_field == (212, 212) and vgg["features.30"].jump == (32, 32)
    assert vgg["classifier.0"].receptive_field == (404, 404)  # 212 + 6 * 32: every position
    resnet = {layer.name: layer for layer in landmarks("resnet50").layers}
    assert resnet["conv1"].receptive_field == (7, 7) and resnet["maxpool"].jump == (4, 4)
    assert resnet["layer4.2.relu"].jump == (32, 32)


# ----------------------------------------------------------------------------- the command line


def test_table_command_line():
    command = [sys.executable, "-m", "minigrad.models", "--models", "lenet5", "--no-time",
               "--backend", "numpy"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split() == ["Model", "Year", "Input", "Depth", "Params", "Mult-adds"]
    assert lines[3].split() == ["lenet5", "1998", "1x28x28", "5", "61,706", "0.417", "M"]


def test_table_fails_loudly_without_a_builder(monkeypatch, capsys):
    from minigrad.models.__main__ import main

    monkeypatch.delattr(minigrad.models, "vgg16", raising=False)
    with pytest.raises(SystemExit, match="minigrad.models has no vgg16"):
        main(["--models", "lenet5,vgg16", "--no-time"])
    assert capsys.readouterr().out == ""  # no table with a row left out
    with pytest.raises(SystemExit):
        main(["--models", "lenet6"])
    assert "unknown lenet6" in capsys.readouterr().err
