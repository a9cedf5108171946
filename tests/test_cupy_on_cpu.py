"""The CuPy backend at the tensor level without a GPU: the stand-in of cuda_on_cpu.py as "the GPU".

`cuda_on_cpu.installed()` makes the stand-in minigrad's `cupy` backend: its arrays hold NumPy
memory behind CuPy's interface (and CuPy's refusals), and its CUDA kernels are compiled as C++.
Here minigrad runs on it end to end: the conv and pooling table and a slice of the op table
(gradcheck and PyTorch), losses and normalisation against PyTorch, gradients that stay on the
device, SimpleCNN against the NumPy backend, device moves and mixing, optimizer state, and
checkpoints of GPU tensors. The first tests show that the stand-in refuses each NumPy-only API
that CuPy lacks (`TRAP_CASES`), as CI must see them refused.

The kernels compile once per run (a second or two); without a C++ compiler the tensor-level
tests skip, saying so.
"""

from __future__ import annotations

import dataclasses
import operator

import cuda_on_cpu
import numpy as np
import pytest
import test_conv_pool
import test_losses_norm
import test_ops
from helpers import skip_or_fail
from hypothesis import given, settings
from hypothesis import strategies as st
from op_table import DTYPES, OpCase, check_against_pytorch, check_gradient, over

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.autograd import DeviceError
from minigrad.models import SimpleCNN
from minigrad.optim import SGD, Adam

GPU_ARRAY = cuda_on_cpu.ndarray


@pytest.fixture(scope="module")
def gpu():
    """The stand-in installed as minigrad's cupy backend for this module's tests; the name of
    the backend to run under (`with mg.backend(gpu):`)."""
    if cuda_on_cpu.compiler() is None:
        skip_or_fail("no C++ compiler (c++, g++ or clang++ on PATH) to build the CUDA kernels "
                     "for the CPU")
    with cuda_on_cpu.installed():
        yield "cupy"


def on_gpu(tensor: mg.Tensor) -> bool:
    return tensor.device == "cuda" and type(tensor.array) is GPU_ARRAY


# ------------------------------------------------------------ the traps: CuPy refuses, so do we

xp_gpu = cuda_on_cpu.CupyOnCpu()


def trap(name, error, fn, match=""):
    """`fn(xp, a)` works with NumPy on a host array and raises `error` on the stand-in."""
    return pytest.param(fn, error, match, id=name)


TRAP_CASES = [
    trap("np.asarray", TypeError, lambda xp, a: np.asarray(a), "Implicit conversion"),
    trap("np.array", TypeError, lambda xp, a: np.array(a), "Implicit conversion"),
    trap("np.testing", TypeError, lambda xp, a: np.testing.assert_allclose(a, a),
         "Implicit conversion"),
    trap("host-operand", TypeError, lambda xp, a: a + np.ones(a.shape), "Unsupported type"),
    trap("host-operand-reflected", TypeError, lambda xp, a: np.ones(a.shape) * a,
         "Unsupported type"),
    trap("host-operand-in-place", TypeError, lambda xp, a: operator.iadd(a, np.ones(a.shape)),
         "Unsupported type"),
    trap("host-ufunc-input", TypeError, lambda xp, a: xp.exp(np.ones(3)), "Unsupported type"),
    trap("host-in-where", TypeError, lambda xp, a: xp.where(a > 0, np.zeros(a.shape), a),
         "Unsupported type"),
    trap("where-python-bool", AttributeError, lambda xp, a: xp.where(True, 1.0, a), "astype"),
    trap("host-in-concatenate", TypeError, lambda xp, a: xp.concatenate([a, np.ones(a.shape)]),
         "Unsupported type"),
    trap("host-in-matmul", TypeError, lambda xp, a: xp.matmul(a, np.ones((3, 2))),
         "Unsupported type"),
    trap("flags.writeable-read", AttributeError, lambda xp, a: a.flags.writeable, "writeable"),
    trap("flags.writeable-write", AttributeError,
         lambda xp, a: setattr(a.flags, "writeable", False), "writeable"),
    trap("setflags", AttributeError, lambda xp, a: a.setflags(write=False), "setflags"),
    trap("indices-sparse", TypeError, lambda xp, a: xp.indices(a.shape, sparse=True), "sparse"),
    trap("subtract.at", NotImplementedError, lambda xp, a: xp.subtract.at(a, [0], 1.0),
         "subtract.at"),
    trap("np.multiply.at", NotImplementedError, lambda xp, a: np.multiply.at(a, [0], 2.0),
         "multiply.at"),
    trap("maximum.reduce", NotImplementedError, lambda xp, a: xp.maximum.reduce(a),
         "maximum.reduce"),
    trap("add.at-into-host", TypeError, lambda xp, a: xp.add.at(np.zeros(3), [0], a[0, :1]),
         "not a GPU array"),
]


@pytest.mark.parametrize(("fn", "error", "match"), TRAP_CASES)
def test_the_stand_in_refuses_what_cupy_refuses(fn, error, match):
    fn(np, np.arange(6.0).reshape(2, 3))  # fine on NumPy: a trap only the GPU springs
    with pytest.raises(error, match=match):
        fn(xp_gpu, xp_gpu.asarray(np.arange(6.0).reshape(2, 3)))


def test_cupyx_functions_take_gpu_arrays_only():
    cupyx = cuda_on_cpu.cupyx_modules()["cupyx"]
    target = xp_gpu.zeros(3)
    cupyx.scatter_add(target, xp_gpu.asarray([0, 0, 2]), 1.0)  # repeated indices add up
    np.testing.assert_array_equal(target.get(), [2.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="not a GPU array"):
        cupyx.scatter_add(np.zeros(3), [0], 1.0)
    assert cupyx.scipy.special.erf(xp_gpu.asarray(np.float32([0.5]))).dtype == np.float32
    with pytest.raises(TypeError, match="Unsupported type"):
        cupyx.scipy.special.erf(np.zeros(2))


def test_a_kernel_given_a_host_array_is_refused(gpu):
    backend = mg.backends.load(gpu)
    with pytest.raises(TypeError, match="Unsupported type"):
        backend.avgpool2d_forward(np.ones((1, 1, 2, 2)), (2, 2), (1, 1), (0, 0))
    out = backend.avgpool2d_forward(xp_gpu.ones((1, 1, 2, 2)), (2, 2), (1, 1), (0, 0))
    assert type(out) is GPU_ARRAY and out.get().item() == 1.0


def test_stand_in_arrays_behave_like_cupy_arrays():
    host = np.arange(6.0)
    a = xp_gpu.asarray(host)
    assert type(a).__module__ == "cupy" and not isinstance(a, np.ndarray)
    a[0] = 10.0  # host memory is copied in, never shared
    assert host[0] == 0.0 and xp_gpu.asarray(a) is a
    assert type(a.get()) is np.ndarray and a.get() is not a.get()
    np.testing.assert_array_equal(xp_gpu.asnumpy(a), [10, 1, 2, 3, 4, 5])
    # reductions and element reads are 0-d GPU arrays; an element read is a view
    total, element = a.sum(), a[1]
    assert type(total) is GPU_ARRAY and total.ndim == 0 and float(total) == 25.0
    a[1] = 7.0
    assert element.item() == 7.0
    # NumPy's functions on GPU arrays run the stand-in's and stay on the GPU
    assert type(np.sum(a)) is GPU_ARRAY and type(np.exp(a)) is GPU_ARRAY
    # a view's base is the array it views (one object), and it does not own its data
    view = a[2:]
    assert view.base is a and a.base is None and not view.flags.owndata and a.flags.owndata
    # out= hands back the same object
    assert xp_gpu.multiply(a, 2, out=a) is a
    np.testing.assert_array_equal(a.get(), [20, 14, 4, 6, 8, 10])


def test_stand_in_takes_host_arrays_where_cupy_does():
    """Host arrays as indices, axes, split points and assigned values are fine on CuPy (it
    copies or reads them), so the stand-in must not refuse them either."""
    a = xp_gpu.asarray(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(a.transpose(np.array([1, 0])).get(), [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(a[np.array([1, 0])].get(), [[3, 4, 5], [0, 1, 2]])
    np.testing.assert_array_equal(xp_gpu.take_along_axis(a, np.array([[2], [0]]), 1).get(),
                                  [[2], [3]])
    assert [part.shape for part in xp_gpu.split(a, np.array([1]), axis=1)] == [(2, 1), (2, 2)]
    a[np.array([0])] = np.array([[7.0, 8.0, 9.0]])
    np.testing.assert_array_equal(a.get()[0], [7, 8, 9])
    assert xp_gpu.zeros_like(np.ones((2, 2))).shape == (2, 2)


# ---------------------------------------------------------------- the op tables on the stand-in


def runs_on_the_gpu(case: OpCase) -> OpCase:
    """`case` with its minigrad side checked to run on the stand-in: every tensor input and
    the output must be GPU tensors (so a fixture that stopped installing the stand-in, or an
    op that fell back to the host, fails instead of passing on the CPU)."""

    def fn(lib, *tensors, **params):
        out = case.fn(lib, *tensors, **params)
        if isinstance(out, mg.Tensor):
            assert all(on_gpu(t) for t in tensors), [t.device for t in tensors]
            assert on_gpu(out), out.device
        return out

    return dataclasses.replace(case, fn=fn)


CONV_POOL_CASES = [runs_on_the_gpu(case) for case in test_conv_pool.CASES]
# conv2d_3x3_stride_1 is there for Numba's Winograd path, which the CuPy backend lacks; its
# element-wise gradcheck (8-9 channels) would cost more than the rest of this file together
CONV_POOL_GRADCHECK_CASES = [case for case in CONV_POOL_CASES
                             if case.name != "conv2d_3x3_stride_1"]
# elementwise, reductions and indexing: the ops that call kernels (relu, gelu's erf, matmul,
# indexing's and gather's scatter_add), broadcasting, and the shape ops with their own backward
OP_SLICE = ["add", "mul", "rpow", "where", "clamp", "matmul", "exp", "relu", "gelu", "sum",
            "var", "max_dim", "log_softmax", "index", "gather", "cat", "pad"]
OP_CASES = [runs_on_the_gpu(case) for case in test_ops.CASES if case.name in OP_SLICE]
assert len(OP_CASES) == len(OP_SLICE), "an op named in OP_SLICE is gone from test_ops.CASES"
# losses (nll's indexing) and the normalisation kernels, which run the reference's array code
NORM_SLICE = ["cross_entropy", "nll_loss", "batch_norm_training", "batch_norm_eval", "layer_norm"]
NORM_CASES = [runs_on_the_gpu(case) for case in test_losses_norm.CASES
              if case.name in NORM_SLICE]
assert len(NORM_CASES) == len(NORM_SLICE), "a case of NORM_SLICE is gone from test_losses_norm"
FEW = settings(max_examples=5)  # the GPU-specific paths, not the math, are what is new here


@over(CONV_POOL_GRADCHECK_CASES)
@given(data=st.data())
def test_conv_pool_gradients_on_the_gpu(gpu, case, data):
    check_gradient(case, data, F, gpu)


@pytest.mark.parametrize("dtype", DTYPES)
@over(CONV_POOL_CASES)
@given(data=st.data())
def test_conv_pool_match_pytorch_on_the_gpu(torch, gpu, case, dtype, data):
    check_against_pytorch(torch, case, data, dtype, (F, torch.nn.functional),
                          test_conv_pool.PYTORCH_TOLERANCE, gpu)


@over(OP_CASES)
@FEW
@given(data=st.data())
def test_ops_gradients_on_the_gpu(gpu, case, data):
    check_gradient(case, data, mg, gpu)


@pytest.mark.parametrize("dtype", DTYPES)
@over(OP_CASES)
@FEW
@given(data=st.data())
def test_ops_match_pytorch_on_the_gpu(torch, gpu, case, dtype, data):
    check_against_pytorch(torch, case, data, dtype, (mg, torch), test_ops.PYTORCH_TOLERANCE, gpu)


@pytest.mark.parametrize("dtype", DTYPES)
@over(NORM_CASES)
@FEW
@given(data=st.data())
def test_losses_and_norms_match_pytorch_on_the_gpu(torch, gpu, case, dtype, data):
    check_against_pytorch(torch, case, data, dtype, (mg, torch),
                          test_losses_norm.PYTORCH_TOLERANCE, gpu)


@over(CONV_POOL_CASES + OP_CASES + NORM_CASES)
@FEW
@given(data=st.data())
def test_gradients_stay_on_the_gpu(gpu, case, data):
    """Every input's gradient is a GPU array of its shape and dtype: a backward that went
    through the host would leave host gradients that the value checks above cannot see."""
    lib = F if case.name in {c.name for c in CONV_POOL_CASES} else mg
    inputs, params = data.draw(case.inputs, label="inputs, params")
    with mg.backend(gpu):
        tensors = [mg.tensor(x, requires_grad=True) for x in inputs]
        out = case.fn(lib, *tensors, **params)
        out.backward(np.random.default_rng(0).standard_normal(out.shape))
    for t in tensors:
        assert on_gpu(t.grad) and t.grad.shape == t.shape and t.grad.dtype == t.dtype


# ----------------------------------------------------------------------------------- a model


def test_simple_cnn_on_the_gpu_matches_the_numpy_backend(gpu):
    """Forward and backward of SimpleCNN (conv, ReLU, max pool, flatten, linear, dropout) in
    float64, on the stand-in and on the NumPy reference, from the same weights and seed."""
    mg.manual_seed(0)
    with mg.backend("numpy"):
        host = SimpleCNN().double()
    device = SimpleCNN().double()
    device.load_state_dict(host.state_dict())
    device.to(gpu)
    rng = np.random.default_rng(0)
    x, upstream = rng.standard_normal((2, 1, 28, 28)), rng.standard_normal((2, 10))
    outputs = {}
    for model, backend in ((host, "numpy"), (device, gpu)):
        with mg.backend(backend):
            mg.manual_seed(1)  # the same dropout mask on both
            outputs[backend] = model(mg.tensor(x))
            outputs[backend].backward(upstream)
    assert on_gpu(outputs[gpu]) and outputs["numpy"].device == "cpu"
    np.testing.assert_allclose(outputs[gpu].numpy(), outputs["numpy"].numpy(), rtol=1e-10,
                               atol=1e-12)
    for (name, p), q in zip(host.named_parameters(), device.parameters()):
        assert on_gpu(q) and on_gpu(q.grad), name
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


# ------------------------------------------------------------------------------------ devices


@pytest.mark.parametrize("name", ["cupy", "cuda"])
def test_to_moves_between_host_and_gpu_differentiably(gpu, name):
    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.device == "cpu"
    y = x.to(name)
    assert on_gpu(y) and y.to(name) is y
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert type(y.numpy()) is np.ndarray
    for host_name in ("numpy", "cpu"):
        back = y.to(host_name)
        assert back.device == "cpu" and type(back.array) is np.ndarray
    (y * y).to("numpy").sum().backward()  # the gradient comes back to the host leaf
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), 2 * x.numpy())

    leaf = mg.tensor(np.ones(3)).to(name).requires_grad_()  # and to a GPU leaf
    (leaf.to("numpy") * 3).sum().backward()
    assert on_gpu(leaf.grad)
    np.testing.assert_array_equal(leaf.grad.numpy(), [3.0, 3.0, 3.0])


def test_the_gpu_backend_makes_gpu_tensors_with_the_host_values(gpu):
    mg.manual_seed(3)
    host = [mg.randn(2, 3), mg.zeros(2), mg.tensor([1.5, 2.5])]
    with mg.backend(gpu):
        mg.manual_seed(3)
        device = [mg.randn(2, 3), mg.zeros(2), mg.tensor([1.5, 2.5])]
    for h, d in zip(host, device):
        assert on_gpu(d) and d.dtype == h.dtype
        np.testing.assert_array_equal(d.numpy(), h.numpy())


def test_module_to_moves_parameters_buffers_and_gradients(gpu):
    with mg.backend("numpy"):
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
        model(mg.randn(2, 1, 5, 5)).sum().backward()
    model.to(gpu)
    for t in [*model.parameters(), *model.buffers()]:
        assert on_gpu(t), t.shape
    assert all(on_gpu(p.grad) for p in model.parameters())
    model.to("numpy")
    assert all(t.device == "cpu" for t in [*model.parameters(), *model.buffers()])


def test_numpy_constants_beside_gpu_tensors_go_to_the_gpu(gpu):
    """A NumPy array next to a GPU tensor is a constant, like a Python number: ops, in-place
    updates, assignments and comparisons copy it over (CuPy itself refuses it as an operand)."""
    with mg.backend(gpu):
        x = mg.tensor([1.0, -2.0, 3.0], requires_grad=True)
        y = x * np.array([2.0, 2.0, 2.0]) + np.ones(3) + mg.where(x > 0, x, np.zeros(3))
        y.sum().backward()
        t = mg.zeros(3)
        t += np.arange(3.0)
        t[1:] = np.array([5.0, 6.0])
        equal = t == np.array([0.0, 5.0, 0.0])
    assert on_gpu(y) and on_gpu(x.grad) and on_gpu(t) and on_gpu(equal)
    np.testing.assert_array_equal(y.numpy(), [4.0, -3.0, 10.0])
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 2.0, 3.0])
    np.testing.assert_array_equal(t.numpy(), [0.0, 5.0, 6.0])
    np.testing.assert_array_equal(equal.numpy(), [True, True, False])


MIXED = [
    pytest.param("add", lambda a, b: a + b, (2, 3), (2, 3), id="add"),
    pytest.param("matmul", lambda a, b: a @ b, (2, 3), (3, 2), id="matmul"),
    pytest.param("where", lambda a, b: mg.where(a > 0, a, b), (2, 3), (2, 3), id="where"),
    pytest.param("conv2d", lambda a, b: F.conv2d(a, b), (1, 1, 4, 4), (1, 1, 3, 3), id="conv2d"),
    pytest.param("linear", lambda a, b: F.linear(a, b), (2, 3), (4, 3), id="linear"),
    pytest.param("eq", lambda a, b: a == b, (2, 3), (2, 3), id="eq"),
    pytest.param("lt", lambda a, b: a < b, (2, 3), (2, 3), id="lt"),
    pytest.param("add_", lambda a, b: a.__iadd__(b), (2, 3), (2, 3), id="add_"),
    pytest.param("copy_", lambda a, b: a.copy_(b), (2, 3), (2, 3), id="copy_"),
]


@pytest.mark.parametrize("gpu_first", [True, False], ids=["gpu-host", "host-gpu"])
@pytest.mark.parametrize(("op", "fn", "shape_a", "shape_b"), MIXED)
def test_mixing_devices_raises_a_clear_error(gpu, op, fn, shape_a, shape_b, gpu_first):
    a, b = mg.ones(*shape_a), mg.ones(*shape_b)
    a, b = (a.to(gpu), b) if gpu_first else (a, b.to(gpu))
    with pytest.raises(DeviceError) as info:
        fn(a, b)
    message = str(info.value)
    assert message.startswith(f"{op}:") and "different devices" in message, message
    assert ".to('cupy')" in message, message


# ------------------------------------------------------------------------- optimizer, checkpoint

OPTIMIZERS = [
    pytest.param(lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01), ["momentum_buffer"],
                 id="sgd-momentum"),
    pytest.param(lambda ps: Adam(ps, lr=0.1, weight_decay=0.01, amsgrad=True),
                 ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], id="adam-amsgrad"),
]


def train(backend, make, weights, targets, steps, state=None):
    """`steps` steps of `make` on a least-squares loss, on `backend`; the parameter and the
    optimizer."""
    with mg.backend(backend):
        p = mg.tensor(weights, requires_grad=True)
        optimizer = make([p])
        if state is not None:
            optimizer.load_state_dict(state)
        for target in targets[:steps]:
            optimizer.zero_grad()
            ((p - mg.tensor(target)) ** 2).sum().backward()
            optimizer.step()
    return p, optimizer


@pytest.mark.parametrize(("make", "buffers"), OPTIMIZERS)
def test_optimizer_state_lives_on_the_gpu_and_steps_as_on_the_host(gpu, make, buffers):
    rng = np.random.default_rng(0)
    weights, targets = rng.standard_normal((3, 4)), rng.standard_normal((4, 3, 4))
    host, host_opt = train("numpy", make, weights, targets, 3)
    device, device_opt = train(gpu, make, weights, targets, 3)
    assert on_gpu(device)
    state = device_opt.state[device]
    for name in buffers:
        assert type(state[name]) is GPU_ARRAY, name
    np.testing.assert_allclose(device.numpy(), host.numpy(), rtol=1e-12, atol=1e-14)

    # the state dict holds host copies; loaded into a GPU optimizer it goes back to the GPU
    saved = device_opt.state_dict()
    for name in buffers:
        assert type(saved["state"][0][name]) is np.ndarray, name
    resumed, resumed_opt = train(gpu, make, device.numpy(), targets[3:], 1, state=saved)
    for name in buffers:
        assert type(resumed_opt.state[resumed][name]) is GPU_ARRAY, name
    train_more = train("numpy", make, weights, targets, 4)[0]
    np.testing.assert_allclose(resumed.numpy(), train_more.numpy(), rtol=1e-12, atol=1e-14)


def test_a_checkpoint_of_gpu_tensors_round_trips(gpu, tmp_path):
    with mg.backend(gpu):
        mg.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(),
                              nn.Linear(18, 3))
        optimizer = Adam(model.parameters(), lr=0.01)
        model(mg.randn(2, 1, 5, 5)).sum().backward()
        optimizer.step()
        checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "epoch": 3}
    assert all(on_gpu(t) for t in checkpoint["model"].values())
    path = tmp_path / "gpu.npz"
    mg.save(checkpoint, path)

    with mg.backend(gpu):
        loaded = mg.load(path)
        fresh = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(),
                              nn.Linear(18, 3))
        fresh.to(gpu)
        fresh.load_state_dict(loaded["model"])
        fresh_optimizer = Adam(fresh.parameters(), lr=0.01)
        fresh_optimizer.load_state_dict(loaded["optimizer"])
    assert loaded["epoch"] == 3
    for key, tensor in checkpoint["model"].items():
        assert on_gpu(loaded["model"][key]), key  # loaded under the GPU backend: on the GPU
        assert loaded["model"][key].dtype == tensor.dtype, key
        np.testing.assert_array_equal(loaded["model"][key].numpy(), tensor.numpy(), err_msg=key)
        np.testing.assert_array_equal(fresh.state_dict()[key].numpy(), tensor.numpy(),
                                      err_msg=key)
    for p, q in zip(model.parameters(), fresh.parameters()):
        for name, value in optimizer.state[p].items():
            copy = fresh_optimizer.state[q][name]
            if name == "step":
                assert copy == value
            else:
                assert type(copy) is GPU_ARRAY, name
                np.testing.assert_array_equal(copy.get(), value.get(), err_msg=name)
    assert mg.load(path)["model"]["0.weight"].device == "cpu"  # under a host backend: the host
