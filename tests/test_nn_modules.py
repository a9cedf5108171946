"""The module system (minigrad/nn/module.py), the layers and init: against PyTorch wherever it
has an answer.

Most tests build the same thing twice with one function of the library, `build(nn)` or
`build(lib)`, run with minigrad and with torch: the layer table below is gradient-checked and
compared with PyTorch after loading PyTorch's (randomised) weights through `load_state_dict`;
names, state-dict keys and reprs are compared as strings.
"""

from __future__ import annotations

import importlib
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from helpers import channels_last
from hypothesis import given
from hypothesis import strategies as st
from layer_table import PYTORCH_TOLERANCE, LayerCase, assert_same_state, layer_tests, random_state

import minigrad as mg
from minigrad import nn
from minigrad.testing import gradcheck
from minigrad.testing.strategies import arrays

LAYERS = [
    LayerCase("linear", lambda nn: nn.Linear(3, 4), (2, 3)),
    LayerCase("linear_no_bias_3d", lambda nn: nn.Linear(3, 2, bias=False), (2, 2, 3)),
    LayerCase("conv2d_grouped", lambda nn: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
              (2, 4, 5, 5)),
    LayerCase("conv2d_dilated_no_bias",
              lambda nn: nn.Conv2d(2, 3, (2, 3), dilation=2, bias=False), (1, 2, 5, 6)),
    LayerCase("max_pool2d", lambda nn: nn.MaxPool2d(2), (2, 2, 4, 4), distinct=True),
    LayerCase("max_pool2d_padded", lambda nn: nn.MaxPool2d(3, stride=2, padding=1),
              (1, 2, 5, 5), distinct=True),
    LayerCase("avg_pool2d", lambda nn: nn.AvgPool2d((2, 3), stride=1, padding=1), (1, 2, 4, 5)),
    LayerCase("adaptive_avg_pool2d_global", lambda nn: nn.AdaptiveAvgPool2d(1), (2, 3, 4, 4)),
    LayerCase("adaptive_avg_pool2d", lambda nn: nn.AdaptiveAvgPool2d((2, 3)), (1, 2, 4, 6)),
    LayerCase("flatten", lambda nn: nn.Flatten(), (2, 3, 2, 2)),
    LayerCase("flatten_dims", lambda nn: nn.Flatten(0, 2), (2, 3, 2, 2)),
    LayerCase("batch_norm1d_train", lambda nn: nn.BatchNorm1d(3), (5, 3)),
    LayerCase("batch_norm1d_3d_eval", lambda nn: nn.BatchNorm1d(3), (2, 3, 4), training=False),
    LayerCase("batch_norm2d_train", lambda nn: nn.BatchNorm2d(3), (2, 3, 3, 3)),
    LayerCase("batch_norm2d_eval", lambda nn: nn.BatchNorm2d(3), (2, 3, 3, 3), training=False),
    # without a process group (or in a world of one) SyncBatchNorm is BatchNorm, in torch too
    LayerCase("sync_batch_norm_train", lambda nn: nn.SyncBatchNorm(3), (2, 3, 2, 3)),
    LayerCase("batch_norm2d_no_affine_train", lambda nn: nn.BatchNorm2d(2, affine=False),
              (3, 2, 2, 2)),
    LayerCase("batch_norm2d_untracked_eval",
              lambda nn: nn.BatchNorm2d(2, track_running_stats=False), (3, 2, 2, 2),
              training=False),
    LayerCase("layer_norm", lambda nn: nn.LayerNorm(5), (2, 3, 5)),
    LayerCase("layer_norm_2d_no_affine",
              lambda nn: nn.LayerNorm((3, 4), elementwise_affine=False), (2, 3, 4)),
    LayerCase("layer_norm_no_bias", lambda nn: nn.LayerNorm(4, bias=False), (3, 4)),
    LayerCase("dropout_eval", lambda nn: nn.Dropout(0.5), (3, 4), training=False),
    LayerCase("relu", lambda nn: nn.ReLU(), (3, 4), kinks=(0.0,)),
    LayerCase("sigmoid", lambda nn: nn.Sigmoid(), (3, 4)),
    LayerCase("tanh", lambda nn: nn.Tanh(), (3, 4)),
    LayerCase("gelu", lambda nn: nn.GELU(), (3, 4)),
    LayerCase("gelu_tanh", lambda nn: nn.GELU(approximate="tanh"), (3, 4)),
    LayerCase("silu", lambda nn: nn.SiLU(), (3, 4)),
    LayerCase("softmax", lambda nn: nn.Softmax(dim=1), (2, 4, 3)),
    LayerCase("log_softmax", lambda nn: nn.LogSoftmax(dim=-1), (2, 4, 3)),
    LayerCase("identity", lambda nn: nn.Identity(), (3, 4)),
    LayerCase("sequential",
              lambda nn: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3),
                                       nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                                       nn.Linear(12, 2)), (2, 2, 4, 4)),
]
LAYERS.append(LayerCase("dropout_train", lambda nn: nn.Dropout(0.5), (3, 4), random=True))
test_layer_gradients, test_layer_against_pytorch, test_layer_builds_no_graph = layer_tests(
    LAYERS)

# Exported Module subclasses that are not layers: they have no forward to run.
NOT_LAYERS = {nn.Module: "the base class", nn.ModuleList: "a list of modules"}


def test_every_exported_layer_has_a_case():
    """A layer added to minigrad.nn without a LayerCase in some test module's LAYERS fails
    here (each module runs its cases through layer_table.layer_tests)."""
    exported = {value for name, value in vars(nn).items() if not name.startswith("_")
                and isinstance(value, type) and issubclass(value, nn.Module)}
    cases = [case for path in sorted(Path(__file__).parent.glob("test_*.py"))
             for case in getattr(importlib.import_module(path.stem), "LAYERS", [])]
    covered = {type(case.build(nn)) for case in cases}
    missing = sorted(cls.__name__ for cls in exported - covered - set(NOT_LAYERS))
    assert missing == [], f"layers without a LayerCase: {missing}"
    for cls in NOT_LAYERS:  # really nothing to run
        with pytest.raises(NotImplementedError):
            cls()(mg.zeros(2))


# ------------------------------------------------------------------------------------ BatchNorm


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("shape", "layout"), [((8, 3), "plain"), ((4, 3, 5), "plain"),
                                               ((4, 3, 5, 6), "plain"),
                                               ((4, 3, 5, 6), "channels_last")],
                         ids=["nc", "ncl", "nchw", "nchw-channels_last"])
def test_batch_norm_running_statistics_follow_pytorch_over_training_steps(torch, backend, dtype,
                                                                         shape, layout):
    """Training steps update running_mean/var in place as PyTorch does: the unbiased batch
    variance, averaged with the module's momentum, or with momentum None cumulatively (each
    batch weighs 1 / num_batches_tracked); on every backend, 1d and 2d, plain or channels-last.
    Eval then normalises with them and leaves them, and the batch count, alone."""
    rng = np.random.default_rng(0)
    layer = "BatchNorm2d" if len(shape) == 4 else "BatchNorm1d"
    theirs = getattr(torch.nn, layer)(shape[1]).to(getattr(torch, dtype))
    theirs.load_state_dict({k: torch.tensor(v) for k, v in random_state(theirs, rng).items()})
    ours = getattr(nn, layer)(shape[1]).to(dtype)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.to(backend)  # built on the default backend, which may be cupy
    running = (ours.running_mean, ours.running_var)
    tolerance = PYTORCH_TOLERANCE[dtype]
    momenta = [None, None, 0.1, 0.5, 0.3, None]
    with mg.backend(backend):
        for step, momentum in enumerate(momenta):
            ours.momentum = theirs.momentum = momentum
            x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
            x = channels_last(x) if layout == "channels_last" else x
            out, expected = ours(mg.tensor(x)), theirs(torch.tensor(x))
            np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **tolerance,
                                       err_msg=f"output at step {step}")
            assert_same_state(ours, theirs, tolerance)
        assert int(ours.num_batches_tracked) == len(momenta)

        ours.eval()
        theirs.eval()
        x = rng.standard_normal(shape).astype(dtype)
        out = ours(mg.tensor(x))
    np.testing.assert_allclose(out.numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               **tolerance)
    assert int(ours.num_batches_tracked) == len(momenta)  # eval leaves the statistics alone
    assert_same_state(ours, theirs, tolerance)
    assert ours.running_mean is running[0] and ours.running_var is running[1]  # in place
    assert all(a.dtype == np.dtype(dtype) for a in running)


def test_batch_norm_training_normalises_each_channel(rng):
    x = mg.tensor(rng.standard_normal((8, 3, 4, 4)) * 5 + 7)
    out = nn.BatchNorm2d(3).double()(x).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-4)


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d(3), (2, 3, 4, 5)),
                                          (nn.BatchNorm2d(3), (2, 3, 4))],
                         ids=["1d_given_4d", "2d_given_3d"])
def test_batch_norm_refuses_the_wrong_number_of_dims(layer, shape):
    with pytest.raises(ValueError, match=f"{type(layer).__name__}: expected .*{shape}"):
        layer(mg.zeros(shape))


# -------------------------------------------------------------------------------------- Dropout


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_dropout_is_functional_dropout_in_training_and_the_identity_in_eval(rng, p):
    """The layer adds its p and the training flag to F.dropout, whose statistics, scaling,
    masks and seeding tests/test_losses_norm.py tests: in training, under the same seed, it
    gives F.dropout's output exactly (all of x at p = 0, zeros at p = 1); in eval, x."""
    x = mg.tensor(rng.uniform(1, 2, (40, 50)))
    layer = nn.Dropout(p)
    mg.manual_seed(7)
    out = layer(x).numpy()
    mg.manual_seed(7)
    np.testing.assert_array_equal(out, nn.functional.dropout(x, p).numpy())
    if p in (0.0, 1.0):
        np.testing.assert_array_equal(out, x.numpy() if p == 0.0 else np.zeros(x.shape))
    np.testing.assert_array_equal(layer.eval()(x).numpy(), x.numpy())


@given(x=arrays((3, 4)), seed=st.integers(0, 2**16))
def test_dropout_gradient_goes_through_the_kept_elements(x, seed):
    layer = nn.Dropout(0.4)

    def same_mask_each_call(x):
        mg.manual_seed(seed)
        return layer(x)

    assert gradcheck(same_mask_each_call, [mg.tensor(x, requires_grad=True)])


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_refuses_p_outside_0_1(p):
    with pytest.raises(ValueError, match="Dropout: p must be"):
        nn.Dropout(p)


# ---------------------------------------------------------------- names, keys and printing


def simple_cnn(lib):
    """The article's CNN: 225,034 parameters."""
    nn = lib.nn
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
                               nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2, 2)),
        classifier=nn.Sequential(nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(128, 10)),
    ))


def small_bn_net(lib):
    """Sequential + BatchNorm + nested names, (N, 1, 8, 8) in, (N, 10) out."""
    nn = lib.nn
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                               nn.MaxPool2d(2)),
        classifier=nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.BatchNorm1d(16),
                                 nn.Linear(16, 10)),
    ))


def shared_net(lib):
    """A custom Module with its own parameter and buffer, a Sequential, a ModuleList, one
    Linear reachable under two names and a weight shared by two Linears."""
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(3, 4)
            self.scale = nn.Parameter(lib.ones(4))
            self.register_buffer("steps", lib.zeros(1))
            self.blocks = nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.Linear(4, 4), nn.Tanh()])
            self.head = nn.Sequential(self.encoder, nn.BatchNorm1d(4))
            self.tied = nn.Linear(3, 4)
            self.tied.weight = self.encoder.weight

        def forward(self, x):
            return x

    return Net()


NETS = [simple_cnn, small_bn_net, shared_net]  # build(lib), lib being minigrad or torch
NET_IDS = [build.__name__ for build in NETS]


@pytest.mark.parametrize("build", NETS, ids=NET_IDS)
def test_names_and_state_dict_keys_are_pytorchs(torch, build):
    ours, theirs = build(mg), build(torch)
    for method in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [n for n, _ in getattr(ours, method)()] == [n for n, _ in getattr(theirs, method)()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]


@pytest.mark.parametrize("build", NETS, ids=NET_IDS)
def test_repr_is_pytorchs(torch, build):
    assert repr(build(mg)) == repr(build(torch))


@pytest.mark.parametrize("case", LAYERS, ids=[case.name for case in LAYERS])
def test_layer_repr_is_pytorchs(torch, case):
    assert repr(case.build(nn)) == repr(case.build(torch.nn))


REPRS = [
    lambda nn: nn.Conv2d(1, 32, 3, padding=(0, 1), dilation=(2, 1)),
    lambda nn: nn.MaxPool2d((2, 3), stride=1),
    lambda nn: nn.AvgPool2d(3),
    lambda nn: nn.BatchNorm1d(5, eps=1e-3, momentum=None, affine=False),
    lambda nn: nn.BatchNorm2d(5, bias=False, track_running_stats=False),
    lambda nn: nn.ModuleList(),
    lambda nn: nn.Sequential(),
    lambda nn: nn.ModuleList([nn.Sequential(nn.ReLU(), nn.Tanh())] * 3 + [nn.ReLU()]),
]


@pytest.mark.parametrize("build", REPRS)
def test_more_reprs_are_pytorchs(torch, build):
    assert repr(build(nn)) == repr(build(torch.nn))


def test_parameter_repr_is_pytorchs(torch):
    assert repr(nn.Parameter(mg.ones(2))) == repr(torch.nn.Parameter(torch.ones(2)))


def test_simple_cnn_has_225034_parameters_and_maps_4_images_to_10_logits():
    model = simple_cnn(mg).eval()
    assert sum(p.numel() for p in model.parameters()) == 225_034
    assert model(mg.randn(4, 1, 28, 28)).shape == (4, 10)


# -------------------------------------------------------------------------- load_state_dict


def test_pytorch_state_dict_as_arrays_loads_and_gives_pytorchs_outputs(torch):
    theirs = small_bn_net(torch)
    x = torch.randn(6, 1, 8, 8)
    theirs(x)  # one training step: running statistics and num_batches_tracked move
    ours = small_bn_net(mg)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert int(ours.features[1].num_batches_tracked) == 1
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(mg.tensor(x.numpy())).numpy(), theirs(x).detach().numpy(),
                               rtol=1e-5, atol=1e-5)


def test_load_state_dict_copies_in_place_and_casts_to_the_parameters_dtype():
    model = small_bn_net(mg)
    params = list(model.parameters())
    state = {k: np.full(v.shape, 0.25, dtype=np.float64 if v.dtype.kind == "f" else v.dtype)
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert list(model.parameters()) == params  # the same objects: optimizers keep working
    for param in params:
        assert param.dtype == mg.float32 and param.requires_grad
        assert np.all(param.numpy() == 0.25)


def test_state_dict_values_are_detached_and_share_memory():
    model = nn.Linear(2, 3)
    weight = model.state_dict()["weight"]
    assert not weight.requires_grad and weight.grad_fn is None
    weight.fill_(2.0)
    assert np.all(model.weight.numpy() == 2.0)


def test_num_batches_tracked_may_be_missing():
    model = small_bn_net(mg)
    state = {k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
    assert model.load_state_dict(state) == ([], [])


def assert_refused(model: nn.Module, state: dict, *fragments: str, strict: bool = True):
    """load_state_dict raises naming every fragment, and leaves the model as it was."""
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(state, strict=strict)
    for fragment in fragments:
        assert fragment in str(error.value)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])


def changed_state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy() + 1 for k, v in model.state_dict().items()}


def test_a_wrong_shape_is_refused_naming_the_key_and_both_shapes():
    model = small_bn_net(mg)
    state = changed_state(model)
    state["classifier.1.weight"] = np.zeros((16, 35), dtype=np.float32)
    assert_refused(model, state, "classifier.1.weight", "(16, 35)", "(16, 36)")
    assert_refused(model, state, "classifier.1.weight", strict=False)


def test_a_missing_key_is_refused_naming_it():
    model = small_bn_net(mg)
    state = changed_state(model)
    del state["features.1.running_var"]
    assert_refused(model, state, "Missing key(s)", '"features.1.running_var"')


def test_an_unexpected_key_is_refused_naming_it():
    model = small_bn_net(mg)
    state = changed_state(model)
    state["features.9.weight"] = np.zeros(3)
    assert_refused(model, state, "Unexpected key(s)", '"features.9.weight"')


def test_non_strict_loading_reports_keys_as_pytorch(torch):
    ours, theirs = small_bn_net(mg), small_bn_net(torch)
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    del state["classifier.1.bias"]
    state["extra"] = np.zeros(2, dtype=np.float32)
    result = ours.load_state_dict(state, strict=False)
    expected = theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()},
                                      strict=False)
    assert result == (expected.missing_keys, expected.unexpected_keys)
    assert result.missing_keys == ["classifier.1.bias"]
    np.testing.assert_array_equal(ours.classifier[1].weight.numpy(), state["classifier.1.weight"])


# ------------------------------------------------------------------- module behaviour


def test_train_and_eval_reach_every_submodule():
    model = small_bn_net(mg)
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_sets_gradients_to_none_or_zero(rng):
    model = nn.Linear(3, 2)
    model(mg.tensor(rng.standard_normal((4, 3)))).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_shared_modules_and_parameters_are_listed_once():
    model = shared_net(mg)
    params = list(model.parameters())
    assert len(params) == len({id(p) for p in params}) == 8
    assert sum(m is model.encoder for m in model.modules()) == 1
    assert "tied.weight" not in dict(model.named_parameters())
    # state_dict lists shared state under every name, as PyTorch
    assert {"head.0.weight", "tied.weight"} <= set(model.state_dict())


def test_attribute_assignment_registers_and_replaces():
    model = nn.Module()
    model.w = nn.Parameter(mg.zeros(2))
    model.sub = nn.Linear(2, 2)
    model.register_buffer("stat", mg.zeros(1))
    model.plain = mg.zeros(3)  # a plain tensor attribute is not state
    assert list(model.state_dict()) == ["w", "stat", "sub.weight", "sub.bias"]
    model.w = None
    model.sub = nn.Identity()
    model.stat = mg.ones(1)
    assert list(model.state_dict()) == ["stat"] and model.w is None
    del model.stat
    assert list(model.state_dict()) == [] and not hasattr(model, "stat")


def test_assignment_errors_say_what_was_expected():
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'.*Parameter or None"):
        model.weight = mg.zeros(2, 2)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        model.missing  # noqa: B018

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(mg.zeros(1))

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\)"):
        Early()


def test_apply_visits_children_before_parents():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
    visited = []
    assert model.apply(lambda m: visited.append(type(m).__name__)) is model
    assert visited == ["Linear", "ReLU", "Sequential", "Sequential"]


def test_sequential_indexes_slices_and_iterates_like_a_list():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and list(tail._modules) == ["1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        model[3]
    x = mg.randn(4, 2)
    np.testing.assert_array_equal(model(x).numpy(), layers[2](layers[1](layers[0](x))).numpy())


def test_module_list_holds_parameters_without_a_forward():
    blocks = nn.ModuleList([nn.Linear(2, 2)]).extend([nn.Linear(2, 2)])
    blocks.append(nn.ReLU())
    assert len(blocks) == 3 and isinstance(blocks[:2], nn.ModuleList)
    assert [n for n, _ in blocks.named_parameters()] == ["0.weight", "0.bias", "1.weight",
                                                         "1.bias"]
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        blocks(mg.zeros(2))


def test_double_casts_parameters_in_place_and_keeps_integer_buffers():
    model = small_bn_net(mg)
    params = list(model.parameters())
    assert all(p.dtype == mg.float32 for p in params)
    model.double()
    assert list(model.parameters()) == params
    assert all(p.dtype == mg.float64 and p.requires_grad for p in params)
    assert model.features[1].running_mean.dtype == mg.float64
    assert model.features[1].num_batches_tracked.dtype == mg.int64


def test_requires_grad_false_freezes_every_parameter():
    model = small_bn_net(mg).requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_parameter_is_a_tensor_that_requires_grad():
    param = nn.Parameter([1.0, 2.0])
    assert isinstance(param, mg.Tensor) and param.requires_grad and param.dtype == mg.float32
    assert not nn.Parameter(mg.zeros(2), requires_grad=False).requires_grad
    assert type(param * 2) is mg.Tensor


# -------------------------------------------------------------------------------------- init


def test_manual_seed_makes_models_reproducible():
    def weights(seed):
        mg.manual_seed(seed)
        return [p.numpy().copy() for p in small_bn_net(mg).parameters()]

    for a, b in zip(weights(3), weights(3)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(weights(3)[0], weights(4)[0])


@pytest.mark.parametrize("build, fan_in", [(lambda: nn.Linear(400, 300), 400),
                                           (lambda: nn.Conv2d(8, 200, 3, groups=2), 36)],
                         ids=["linear", "conv2d"])
def test_default_init_is_uniform_within_one_over_sqrt_fan_in(build, fan_in):
    mg.manual_seed(0)
    layer = build()
    bound = 1 / math.sqrt(fan_in)
    for param in (layer.weight, layer.bias):
        values = param.numpy()
        assert param.dtype == mg.float32 and np.abs(values).max() <= bound
    weights = layer.weight.numpy()
    assert abs(weights.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(weights.max() - bound) < 0.01 * bound


@pytest.mark.parametrize("nonlinearity, param", [("relu", None), ("tanh", None),
                                                 ("leaky_relu", None), ("leaky_relu", 0.2),
                                                 ("sigmoid", None), ("linear", None)])
def test_calculate_gain_is_pytorchs(torch, nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param))


@pytest.mark.parametrize("fill, expected_std", [
    (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2 / 500)),
    (lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
     math.sqrt(2 / 200)),
    (lambda t: nn.init.xavier_uniform_(t, gain=2.0), 2 * math.sqrt(2 / 700)),
    (lambda t: nn.init.normal_(t, 3.0, 0.5), 0.5),
    (lambda t: nn.init.uniform_(t, -1.0, 1.0), 1 / math.sqrt(3)),
], ids=["kaiming_uniform", "kaiming_normal", "xavier_uniform", "normal", "uniform"])
def test_random_init_has_the_intended_spread(fill, expected_std):
    mg.manual_seed(0)
    param = nn.Parameter(mg.zeros(200, 500))
    assert fill(param) is param
    assert param.requires_grad and param.grad_fn is None and param.dtype == mg.float32
    assert abs(param.numpy().std() - expected_std) < 0.02 * expected_std


def test_constant_init_fills_in_place():
    param = nn.Parameter(mg.zeros(2, 3, dtype=mg.float64))
    assert np.all(nn.init.constant_(param, 0.5).numpy() == 0.5)
    assert np.all(nn.init.ones_(param).numpy() == 1) and param.dtype == mg.float64
    assert np.all(nn.init.zeros_(param).numpy() == 0)


@pytest.mark.parametrize("shape", [(3, 4), (8, 2, 3, 5)])
def test_fans_are_pytorchs(torch, shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
    assert nn.init.fan_in_and_fan_out(mg.zeros(shape)) == expected
