"""The autograd surface PyTorch code uses beyond backward(): `.data`, version counters (saved
tensors changed in place), in-place ops inside the graph, tensor hooks, `retain_grad`,
`autograd.grad`, `backward(inputs=)`, anomaly detection, and devices.

Each scenario runs the same code with minigrad and with torch (`lib` is either module) and
expects the same outcome: the same gradients, or an error from both.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.testing import gradcheck
from minigrad.testing.strategies import arrays

START = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])


def run(lib, scenario):
    """Run scenario(lib, *leaves) on fresh leaves; the gradients, or the error's type."""
    x = lib.tensor(START, requires_grad=True)
    y = lib.tensor(START[::-1].copy() + 0.5, requires_grad=True)
    try:
        scenario(lib, x, y)
    except RuntimeError as error:
        return RuntimeError, str(error)
    return [None if t.grad is None else t.grad.detach().numpy().copy() for t in (x, y)], ""


def same_outcome(torch, scenario):
    expected, _ = run(torch, scenario)
    got, message = run(mg, scenario)
    if expected is RuntimeError:
        assert got is RuntimeError, "PyTorch raises, minigrad does not"
        return message
    assert got is not RuntimeError, f"minigrad raises, PyTorch does not: {message}"
    for ours, theirs in zip(got, expected):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    return ""


# ----------------------------------------------------------------------------------- .data


def test_data_is_a_tensor_sharing_memory_outside_the_graph():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    d = w.data
    assert isinstance(d, mg.Tensor) and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.array, w.array)
    (w * w).sum().backward()
    w.data -= 0.25 * w.grad  # the classic hand-written SGD step
    assert w.tolist() == [0.5, 1.0] and w.requires_grad and w.is_leaf


def test_max_of_outputs_data_over_dim_1_as_the_tutorial_writes_it():
    outputs = mg.tensor([[0.1, 0.9, 0.0], [2.0, -1.0, 3.0]], requires_grad=True) * 1.0
    _, predicted = mg.max(outputs.data, 1)
    assert predicted.tolist() == [1, 2] and predicted.dtype == np.int64


def test_assigning_data_replaces_the_memory_and_keeps_the_tensor():
    p = nn.Parameter(mg.zeros(3))
    p.data = mg.ones(3)
    assert p.tolist() == [1.0, 1.0, 1.0] and p.requires_grad
    with pytest.raises(TypeError, match="data: expected a Tensor"):
        p.data = np.ones(3)


# ------------------------------------------------------------------------- version counters


def mul_then_change_the_factor(lib, x, y):
    a = y.detach()
    z = x * a
    a.add_(1)  # detach shares the version counter: the saved factor changed
    z.sum().backward()


def exp_then_change_its_output_under_no_grad(lib, x, y):
    z = x.exp()
    with lib.no_grad():
        z.mul_(2)
    z.sum().backward()


def exp_then_change_a_view_of_its_output(lib, x, y):
    z = x.exp()
    with lib.no_grad():
        z[0].add_(1)
    z.sum().backward()


def mul_then_change_the_base_of_a_saved_view(lib, x, y):
    base = y.detach().clone()
    view = base.reshape(3, 2)
    z = x.reshape(3, 2) * view
    base.add_(1)
    z.sum().backward()


def add_then_change_an_input(lib, x, y):
    a = y.detach().clone()
    z = x + a  # add saves nothing: the change does not matter
    a.add_(1)
    z.sum().backward()


def mul_then_change_through_data(lib, x, y):
    z = x * y
    y.data.add_(1)  # .data has its own counter: not detected, as in PyTorch
    z.sum().backward()


def optimizer_step_between_forward_and_backward(lib, x, y):
    loss = (x * y).sum()
    y.grad = lib.ones_like(y)
    lib.optim.SGD([y], lr=0.1).step()
    loss.backward()


def matmul_then_setitem_on_an_input(lib, x, y):
    a = y.detach().clone()
    z = x @ a.T
    a[0, 0] = 5.0
    z.sum().backward()


VERSION_SCENARIOS = [mul_then_change_the_factor, exp_then_change_its_output_under_no_grad,
                     exp_then_change_a_view_of_its_output,
                     mul_then_change_the_base_of_a_saved_view, add_then_change_an_input,
                     mul_then_change_through_data, optimizer_step_between_forward_and_backward,
                     matmul_then_setitem_on_an_input]


@pytest.mark.parametrize("scenario", VERSION_SCENARIOS, ids=lambda f: f.__name__)
def test_a_saved_tensor_changed_in_place_raises_as_in_pytorch(torch, scenario):
    same_outcome(torch, scenario)


def test_the_error_names_the_op_the_shape_and_the_versions():
    w, a = mg.ones(3, requires_grad=True), mg.ones(3)
    y = w * a
    a.add_(1)
    with pytest.raises(RuntimeError, match=r"shape \(3,\) that mul saved .* version 1; mul "
                                           r"saved version 0"):
        y.sum().backward()


def test_versions_count_in_place_changes_as_pytorch(torch):
    def changes(lib):
        t = lib.zeros(4)
        counts = [t._version]
        for change in (lambda: t.add_(1), lambda: t.mul_(2), lambda: t.__setitem__(0, 3.0),
                       lambda: t.copy_(lib.ones(4)), lambda: t.zero_(), lambda: t[1:].fill_(2)):
            change()
            counts.append(t._version)
        return counts

    assert changes(mg) == changes(torch)


def test_an_untouched_graph_has_no_version_check_cost_in_results():
    """The check reads the counters only: a graph nobody changed gives the same gradients."""
    x = mg.tensor(START, requires_grad=True)
    ((x.exp() * x).sum() / 3).backward()
    np.testing.assert_allclose(x.grad.numpy(), (np.exp(START) * (START + 1)) / 3)


# --------------------------------------------------------------------- in-place ops in the graph


def residual_add(lib, x, y):
    h = x * 2
    h += y
    h.relu().sum().backward()


def scale_in_place(lib, x, y):
    h = x.tanh()
    h.mul_(y)
    (h * h).sum().backward()


def divide_and_subtract_in_place(lib, x, y):
    h = x * 1.0
    h.div_(y + 3)
    h.sub_(y)
    (h ** 2).sum().backward()


def copy_into_a_non_leaf(lib, x, y):
    h = x * 3
    h.copy_(y * y)
    h.sum().backward()


def fill_and_zero_a_non_leaf(lib, x, y):
    h = x * 3
    h.zero_()
    g = x.exp()
    g.fill_(2.0)
    (h.sum() + (g * y).sum()).backward()


def setitem_slices_masks_and_lists(lib, x, y):
    h = x * 1.0
    h[0, 1:] = y[1, :2]
    h[h > 1] = 0.0
    h[[1, 0], [2, 2]] = y[0, 0] * 4
    (h * lib.tensor(START)).sum().backward()


def exp_output_changed_in_the_graph(lib, x, y):
    h = x.exp()  # exp saves its output
    h += y
    h.sum().backward()


def leaf_changed_in_the_graph(lib, x, y):
    x.add_(1)


IN_GRAPH_SCENARIOS = [residual_add, scale_in_place, divide_and_subtract_in_place,
                      copy_into_a_non_leaf, fill_and_zero_a_non_leaf,
                      setitem_slices_masks_and_lists, exp_output_changed_in_the_graph,
                      leaf_changed_in_the_graph]


@pytest.mark.parametrize("scenario", IN_GRAPH_SCENARIOS, ids=lambda f: f.__name__)
def test_in_place_ops_in_the_graph_differentiate_as_in_pytorch(torch, scenario):
    same_outcome(torch, scenario)


def test_in_place_ops_in_the_graph_write_into_the_same_memory():
    h = mg.tensor(START, requires_grad=True) * 1.0
    memory = h.array
    h += 1
    h[0] = 7.0
    assert h.array is memory and h.grad_fn is not None and h[0].tolist() == [7.0] * 3


@given(x=arrays((2, 3)), y=arrays((3,)))
def test_in_place_ops_in_the_graph_match_finite_differences(x, y):
    def f(x, y):
        h = x * 1.5
        h += y
        h[1, ::2] = y[:2] * 2
        h.mul_(y.tanh())
        return h

    assert gradcheck(f, [mg.tensor(x, requires_grad=True), mg.tensor(y, requires_grad=True)])


def test_in_place_on_a_tensor_with_a_view_in_the_graph_is_refused():
    """PyTorch rewrites the view's history; minigrad refuses rather than give a wrong
    gradient to the other tensor."""
    h = mg.tensor(START, requires_grad=True) * 1.0
    row = h[0]
    with pytest.raises(RuntimeError, match="shares its memory with a view"):
        row.add_(1)
    with pytest.raises(RuntimeError, match="shares its memory with a view"):
        h.mul_(2)


def test_in_place_with_an_incompatible_dtype_or_shape_is_refused():
    h = mg.tensor(START, requires_grad=True) * 1.0
    with pytest.raises(RuntimeError, match=r"add_: the result has shape \(3, 2, 3\)"):
        h.add_(mg.ones((3, 1, 3), requires_grad=True))
    counts = mg.zeros(3, dtype=mg.int64)
    with pytest.raises(TypeError, match="add_"):
        counts.add_(0.5)


# ------------------------------------------------------------------------------------- hooks


def hooks_replace_and_observe(lib, x, y, seen=None):
    h = x * y
    h.register_hook(lambda g: g * 10)
    h.register_hook(lambda g: g + 1)  # runs second, on the first one's result
    y.register_hook(lambda g: g * 0.5)  # a leaf: what lands in .grad
    h.exp().sum().backward()


def removed_hook(lib, x, y):
    h = x * y
    handle = h.register_hook(lambda g: g * 10)
    handle.remove()
    h.sum().backward()


def hook_returning_none_observes(lib, x, y):
    seen = []
    h = x * y
    h.register_hook(lambda g: seen.append(g.sum().item()))
    h.sum().backward()
    assert seen == [6.0]


@pytest.mark.parametrize("scenario", [hooks_replace_and_observe, removed_hook,
                                      hook_returning_none_observes], ids=lambda f: f.__name__)
def test_tensor_hooks_act_as_in_pytorch(torch, scenario):
    same_outcome(torch, scenario)


def test_retain_grad_keeps_a_non_leaf_gradient_as_pytorch(torch):
    def grads(lib):
        x = lib.tensor(START, requires_grad=True)
        h = x.exp()
        h.retain_grad()
        h.register_hook(lambda g: g * 3)  # retain_grad sees the hooked gradient
        (h * h).sum().backward(retain_graph=True)
        (h * h).sum().backward()  # accumulates, as leaves do
        return h.grad.detach().numpy(), x.grad.detach().numpy(), h.retains_grad

    (ours_h, ours_x, ours_flag), (theirs_h, theirs_x, theirs_flag) = grads(mg), grads(torch)
    np.testing.assert_allclose(ours_h, theirs_h, rtol=1e-12)
    np.testing.assert_allclose(ours_x, theirs_x, rtol=1e-12)
    assert ours_flag and theirs_flag


def test_hooks_need_a_tensor_that_requires_grad():
    with pytest.raises(RuntimeError, match="register_hook: .* does not require grad"):
        mg.ones(2).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="retain_grad: .* does not require grad"):
        mg.ones(2).retain_grad()
    h = mg.ones(2, requires_grad=True) * 2
    h.register_hook(lambda g: mg.ones(3))
    with pytest.raises(RuntimeError, match=r"shape \(3,\) for a tensor of shape \(2,\)"):
        h.sum().backward()


def test_post_accumulate_grad_hooks_see_each_accumulated_grad_as_pytorch(torch):
    """Called with the leaf after each accumulation (twice for two backwards, never for an
    unused leaf); refused on a non-leaf; a removed hook is not called."""
    def seen(lib):
        x, unused = lib.tensor(START, requires_grad=True), lib.ones(2, requires_grad=True)
        calls = []
        x.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.sum().item()))
        unused.register_post_accumulate_grad_hook(lambda t: calls.append("unused"))
        removed = x.register_post_accumulate_grad_hook(lambda t: calls.append("removed"))
        removed.remove()
        (x * 2).sum().backward()
        (x * 3).sum().backward()
        with pytest.raises(RuntimeError, match="non-leaf"):
            (x * 1).register_post_accumulate_grad_hook(lambda t: None)
        return calls

    ours, theirs = seen(mg), seen(torch)
    assert ours == theirs == [2.0 * START.size, 5.0 * START.size]


def test_queued_callbacks_run_once_backward_has_filled_every_grad():
    from minigrad import autograd

    x, y = mg.tensor(START, requires_grad=True), mg.tensor(START, requires_grad=True)
    ran = []

    def on_x(t):  # x's gradient comes first: y's is not there yet, the callback sees both
        autograd.queue_callback(lambda: ran.append((x.grad is not None, y.grad is not None)))

    x.register_post_accumulate_grad_hook(on_x)
    (x.exp() * 2 + (x * y).sum()).sum().backward()
    assert ran == [(True, True)]
    y.register_post_accumulate_grad_hook(lambda t: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        (x * y).sum().backward()
    (x * 2).sum().backward()  # the failed pass left nothing queued but this pass's own
    assert ran == [(True, True), (True, True)]


# ------------------------------------------------------------------- autograd.grad, inputs=


def test_autograd_grad_returns_gradients_and_leaves_grad_alone(torch):
    def grads(lib):
        x = lib.tensor(START, requires_grad=True)
        y = lib.tensor(START[0], requires_grad=True)
        hidden = x * y
        outs = [(hidden ** 2).sum(), hidden.tanh()]
        found = lib.autograd.grad(outs, [x, y, hidden], grad_outputs=[None, lib.ones(2, 3) * 2])
        assert x.grad is None and y.grad is None
        return [g.detach().numpy() for g in found]

    for ours, theirs in zip(grads(mg), grads(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_autograd_grad_unused_inputs_and_retain_graph():
    x, unused = mg.ones(2, requires_grad=True), mg.ones(3, requires_grad=True)
    y = (x * 3).sum()
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(3,\)\) was not used"):
        mg.autograd.grad(y, [x, unused], retain_graph=True)
    assert mg.autograd.grad(y, [x, unused], allow_unused=True, retain_graph=True)[1] is None
    (dx,) = mg.autograd.grad(y, x)
    assert dx.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="second time"):
        mg.autograd.grad(y, x)
    assert mg.autograd.grad((x * 2).sum(), [unused], materialize_grads=True)[0].tolist() == \
        [0.0] * 3
    with pytest.raises(NotImplementedError, match="create_graph"):
        mg.autograd.grad((x * 2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.autograd.grad((x * 2).sum(), mg.ones(2))


def test_backward_with_inputs_accumulates_only_into_them(torch):
    def grads(lib):
        x = lib.tensor(START, requires_grad=True)
        y = lib.tensor(START, requires_grad=True)
        h = x * y
        (h * h).sum().backward(inputs=[y])
        return x.grad, y.grad.detach().numpy()

    (ours_x, ours_y), (theirs_x, theirs_y) = grads(mg), grads(torch)
    assert ours_x is None and theirs_x is None
    np.testing.assert_allclose(ours_y, theirs_y, rtol=1e-12)


# -------------------------------------------------------------------------- detect_anomaly


def test_detect_anomaly_names_the_op_and_where_it_was_called():
    with mg.autograd.detect_anomaly():
        x = mg.tensor([0.0, 4.0], requires_grad=True)
        y = x.sqrt().sum()  # d sqrt / dx is inf at 0
        with pytest.raises(RuntimeError, match=r"(?s)backward of sqrt returned inf.*"
                                               r"test_versions_and_hooks\.py.*x\.sqrt\(\)"), \
                np.errstate(divide="ignore"):
            y.backward()


def test_without_detect_anomaly_nothing_is_recorded_or_checked():
    assert not mg.autograd.is_anomaly_enabled()
    x = mg.tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt()
    assert y.grad_fn.created_at is None
    with np.errstate(divide="ignore"):
        y.sum().backward()
    assert np.isinf(x.grad.numpy()[0])


def test_detect_anomaly_nan_from_a_later_op():
    with mg.autograd.detect_anomaly():
        x = mg.tensor([-1.0, 1.0], requires_grad=True)
        with np.errstate(invalid="ignore"):
            y = (x.sqrt() * 0).sum()  # nan in the forward, harmless until sqrt's backward
            with pytest.raises(RuntimeError, match="backward of sqrt returned nan"):
                y.backward()
    assert not mg.autograd.is_anomaly_enabled()


# ----------------------------------------------------------------------------------- devices


@pytest.mark.parametrize("spec", [("cpu",), ("cuda",), ("cuda:0",), ("cuda", 1), ("cuda:3",)])
def test_device_objects_are_pytorchs(torch, spec):
    ours, theirs = mg.device(*spec), torch.device(*spec)
    assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert repr(ours) == repr(theirs) and str(ours) == str(theirs)
    assert ours == mg.device(str(theirs))


@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "cuda:-1", 3])
def test_a_bad_device_is_refused(spec):
    with pytest.raises((RuntimeError, TypeError), match="device"):
        mg.device(spec)


def test_tensors_live_on_the_cpu_device_and_to_moves_or_casts():
    t = mg.tensor(START, requires_grad=True)
    assert t.device == mg.device("cpu") and t.device == "cpu" and not t.is_cuda
    assert t.cpu() is t and t.to("cpu") is t and t.to(mg.device("cpu")) is t
    assert t.to(mg.float32).dtype == np.float32
    assert t.to("cpu", mg.float32).dtype == np.float32
    assert t.to(device="cpu", dtype=mg.float32).dtype == np.float32
    other = mg.zeros(1, dtype=mg.float32)
    assert t.to(other).dtype == np.float32
    copied = t.to("cpu", copy=True)
    assert copied is not t and not np.shares_memory(copied.array, t.array)
    with pytest.raises(ValueError, match="to: expected a device"):
        t.to(device="tpu")


@pytest.mark.skipif(mg.cuda.is_available(), reason="a GPU is here")
def test_cuda_without_a_gpu_says_why():
    assert mg.cuda.is_available() is False and mg.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="'cuda' means the cupy backend's GPU, which cannot "
                                           "run here: cupy backend"):
        mg.ones(2).cuda()
    with pytest.raises(RuntimeError, match="cupy"):
        nn.Linear(2, 2).to(mg.device("cuda"))
    with pytest.raises(RuntimeError, match="cupy backend"):
        mg.cuda.synchronize()


def test_model_to_a_cpu_device_keeps_its_parameters():
    model = nn.Linear(3, 2)
    weight = model.weight
    assert model.to(mg.device("cpu")) is model and model.weight is weight
    assert model.to("cpu") is model


@given(st.sampled_from(["cpu", mg.device("cpu"), "numpy", "numba"]))
def test_host_device_names_keep_the_tensor_where_it_is(device):
    t = mg.ones(2)
    assert t.to(device) is t
