"""Module hooks (forward, forward pre, full backward, full backward pre), the module-tree
helpers (named_modules, get_submodule, ...) and summary's use of hooks, against PyTorch.

Every comparison builds the same model with minigrad.nn and torch.nn (`build(lib)`, lib being
minigrad or torch), loads PyTorch's weights into ours by state-dict key, registers the same
hooks on both and compares what the hooks saw and what came out.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.nn.module import RemovableHandle
from minigrad.summary import summary
from minigrad.testing import gradcheck

TOLERANCE = {"float64": {"rtol": 1e-10, "atol": 1e-10}, "float32": {"rtol": 1e-5, "atol": 1e-5}}
HOOK_DICTS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
              "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_backward_hooks",
              "_backward_pre_hooks")


# ------------------------------------------------------------------------------ models, helpers


def mlp(lib: Any) -> Any:
    return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))


def two_inputs(lib: Any) -> Any:
    class TwoInputs(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = lib.nn.Linear(3, 3)

        def forward(self, a, b, scale=2.0):
            return self.lin(a) * b * scale

    return TwoInputs()


def two_outputs(lib: Any) -> Any:
    class TwoOutputs(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = lib.nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x), x * x

    return TwoOutputs()


def scaled(lib: Any) -> Any:
    class Scaled(lib.nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale

    return Scaled()


def failing(lib: Any) -> Any:
    class Failing(lib.nn.Module):
        def forward(self, x):
            raise ValueError("forward failed")

    return Failing()


def pair(torch: Any, build: Any, dtype: str = "float64") -> tuple[Any, Any]:
    """(ours, theirs): the same model, with PyTorch's weights."""
    theirs = build(torch).to(getattr(torch, dtype))
    ours = build(mg).to(dtype)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def tensors(torch: Any, array: np.ndarray, requires_grad: bool = True) -> tuple[Any, Any]:
    return (mg.tensor(array, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def values(items: Any) -> Any:
    """Tensors (of either library) in a nest of tuples as arrays, for comparison."""
    if isinstance(items, (tuple, list)):
        return tuple(values(item) for item in items)
    if hasattr(items, "detach"):
        return items.detach().numpy().copy()
    return items


def assert_same(ours: Any, theirs: Any, dtype: str = "float64", where: str = "") -> None:
    """Same nesting, None in the same places, arrays equal within tolerance."""
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs), (where, ours, theirs)
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, dtype, f"{where}[{i}]")
    elif isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), (where, ours)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, where
        np.testing.assert_allclose(ours, theirs, **TOLERANCE[dtype], err_msg=where)
    else:
        assert ours == theirs, where


def assert_same_grads(ours: Any, theirs: Any, dtype: str = "float64") -> None:
    their_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert_same(values(param.grad), values(their_params[name].grad), dtype, name)


# ------------------------------------------------------------------------------- forward hooks


def test_forward_hooks_see_pytorchs_args_and_outputs(torch, rng):
    ours, theirs = pair(torch, mlp)
    x = rng.standard_normal((5, 3))
    logs: dict[str, list] = {"ours": [], "theirs": []}
    for key, model in (("ours", ours), ("theirs", theirs)):
        for name, module in model.named_modules():
            module.register_forward_pre_hook(
                lambda m, args, name=name, log=logs[key]: log.append(("pre", name,
                                                                      values(args))))
            module.register_forward_hook(
                lambda m, args, out, name=name, log=logs[key]: log.append(
                    ("post", name, values(args), values(out))))
    ours(mg.tensor(x))
    theirs(torch.tensor(x))
    assert [entry[:2] for entry in logs["ours"]] == [entry[:2] for entry in logs["theirs"]]
    assert [entry[:2] for entry in logs["ours"]][:3] == [("pre", ""), ("pre", "0"), ("post", "0")]
    assert_same(tuple(logs["ours"]), tuple(logs["theirs"]))


def test_forward_hook_replaces_the_output_and_gradients_follow(torch, rng):
    ours, theirs = pair(torch, mlp)
    x = rng.standard_normal((5, 3))
    x_ours, x_theirs = tensors(torch, x)
    results = []
    for model, xt in ((ours, x_ours), (theirs, x_theirs)):
        model[1].register_forward_hook(lambda m, args, out: out * 3)
        model[1].register_forward_hook(lambda m, args, out: None)  # None keeps the output
        out = model(xt)
        out.sum().backward()
        results.append((values(out), values(xt.grad)))
    assert_same(results[0], results[1])
    assert_same_grads(ours, theirs)


@pytest.mark.parametrize("replacement", ["single", "tuple"])
def test_forward_pre_hook_replaces_the_args(torch, rng, replacement):
    """A single value returned is wrapped in a tuple; a tuple replaces args as it is."""
    ours, theirs = pair(torch, two_inputs)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    outs = []
    for lib, model in ((mg, ours), (torch, theirs)):
        seen = []
        if replacement == "single":
            model.lin.register_forward_pre_hook(lambda m, args: args[0] * 2)
        else:
            model.register_forward_pre_hook(lambda m, args: (args[1], args[0]))
        model.lin.register_forward_hook(lambda m, args, out, seen=seen: seen.append(args))
        outs.append(values(model(lib.tensor(a), lib.tensor(b))))
        assert isinstance(seen[0], tuple) and len(seen[0]) == 1
    assert_same(outs[0], outs[1])


def test_hooks_with_kwargs(torch, rng):
    ours, theirs = pair(torch, scaled)
    x = rng.standard_normal((2, 3))

    def trace(lib, model):
        log: list = []
        model.register_forward_pre_hook(
            lambda m, args, kwargs: (args, {**kwargs, "scale": kwargs["scale"] * 10}),
            with_kwargs=True)
        model.register_forward_pre_hook(lambda m, args: log.append(("pre", len(args))))
        model.register_forward_hook(
            lambda m, args, kwargs, out: log.append(("post", dict(kwargs))) or out + 1,
            with_kwargs=True)
        return log, values(model(lib.tensor(x), scale=0.5))

    (log, out), (their_log, their_out) = trace(mg, ours), trace(torch, theirs)
    assert log == their_log == [("pre", 1), ("post", {"scale": 5.0})]
    assert_same(out, their_out)


def test_forward_pre_hook_with_kwargs_must_return_a_pair(torch):
    for lib in (mg, torch):
        model = scaled(lib)
        model.register_forward_pre_hook(lambda m, args, kwargs: 5, with_kwargs=True)
        with pytest.raises(RuntimeError, match=r"forward pre-hook must return None or a tuple "
                                               r"of \(new_args, new_kwargs\), but got 5\."):
            model(lib.ones(2))


def test_hooks_run_in_registration_order_and_prepend_goes_first(torch):

    def trace(lib):
        log: list = []
        model = lib.nn.Linear(2, 2)
        for tag in ("a", "b", "c"):
            prepend = tag == "c"
            model.register_forward_pre_hook(lambda m, args, t=tag: log.append("pre" + t),
                                            prepend=prepend)
            model.register_forward_hook(lambda m, args, out, t=tag: log.append("fwd" + t),
                                        prepend=prepend)
            model.register_full_backward_pre_hook(lambda m, go, t=tag: log.append("bpre" + t),
                                                  prepend=prepend)
            model.register_full_backward_hook(lambda m, gi, go, t=tag: log.append("bwd" + t),
                                              prepend=prepend)
        model(lib.ones(1, 2, requires_grad=True)).sum().backward()
        return log

    log = trace(mg)
    assert log == trace(torch)
    assert log[:3] == ["prec", "prea", "preb"] and log[-3:] == ["bwdc", "bwda", "bwdb"]


def test_removal_and_handles(torch):
    model = nn.Linear(2, 2)
    calls = []
    first = model.register_forward_hook(lambda m, args, out: calls.append("first"))
    second = model.register_forward_hook(lambda m, args, out: calls.append("second"),
                                         with_kwargs=False, always_call=True)
    assert isinstance(first, RemovableHandle) and second.id > first.id
    first.remove()
    first.remove()  # a second time does nothing
    model(mg.ones(1, 2))
    assert calls == ["second"]
    with model.register_forward_pre_hook(lambda m, args: calls.append("pre")) as handle:
        assert handle.id in model._forward_pre_hooks
        model(mg.ones(1, 2))
    model(mg.ones(1, 2))
    assert calls == ["second", "pre", "second", "second"]
    second.remove()
    # the flags kept under a handle's id go with it, as in PyTorch
    theirs = torch.nn.Linear(2, 2)
    for module in (model, theirs):
        module.register_forward_hook(lambda m, a, k, o: None, with_kwargs=True,
                                     always_call=True).remove()
        module.register_forward_pre_hook(lambda m, a, k: None, with_kwargs=True).remove()
        module.register_full_backward_hook(lambda m, gi, go: None).remove()
        module.register_full_backward_pre_hook(lambda m, go: None).remove()
    assert all(len(getattr(model, d)) == len(getattr(theirs, d)) == 0 for d in HOOK_DICTS)


def test_a_hook_may_remove_itself_while_hooks_run():
    model, calls = nn.Identity(), []

    def once(module, args, out):
        calls.append("once")
        handle.remove()

    handle = model.register_forward_hook(once)
    model.register_forward_hook(lambda m, args, out: calls.append("always"))
    model(mg.ones(1))
    model(mg.ones(1))
    assert calls == ["once", "always", "always"]


def test_hooks_are_not_state():
    model = mlp(mg)
    keys = list(model.state_dict())
    model.register_forward_hook(lambda m, args, out: None)
    model[0].register_full_backward_hook(lambda m, gi, go: None)
    assert list(model.state_dict()) == keys
    assert model.load_state_dict(model.state_dict()) is not None
    assert repr(model) == repr(mlp(mg))


def test_always_call_hooks_run_when_forward_raises(torch):

    def broken(module, args, out):
        raise KeyError("hook failed")

    def trace(lib):
        log: list = []
        model = failing(lib)
        model.register_forward_hook(lambda m, args, out: log.append("plain"))
        model.register_forward_hook(lambda m, args, out: log.append(("always", out)),
                                    always_call=True)
        model.register_forward_hook(lambda m, a, k, out: log.append(("kwargs", k)),
                                    always_call=True, with_kwargs=True)
        model.register_forward_hook(broken, always_call=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ValueError, match="forward failed"):
                model(lib.ones(2))
        return log, [str(w.message) for w in caught]

    (log, messages), theirs = trace(mg), trace(torch)
    assert (log, messages) == theirs
    assert log == [("always", None), ("kwargs", {})] and "hook failed" in messages[0]


def test_always_call_hooks_that_already_ran_are_not_run_again(torch):

    def broken(module, args, out):
        raise KeyError("hook failed")

    def trace(lib):
        log: list = []
        model = lib.nn.Identity()
        model.register_forward_hook(lambda m, args, out: log.append("always first"),
                                    always_call=True)
        model.register_forward_hook(broken)
        model.register_forward_hook(lambda m, args, out: log.append("always later"),
                                    always_call=True)
        with pytest.raises(KeyError):
            model(lib.ones(2))
        return log

    assert trace(mg) == trace(torch) == ["always first", "always later"]


# ------------------------------------------------------------------------------ backward hooks


def _linear_no_grad(lib, model, xs):
    return [model(*xs)]


BACKWARD_CASES = {
    # name: (build, [(input shape, requires grad) ...], run(lib, model, inputs) -> outputs to
    # put into the loss)
    "linear": (lambda lib: lib.nn.Linear(3, 2), [((4, 3), True)],
               lambda lib, m, xs: [m(*xs)]),
    "input-needs-no-grad": (lambda lib: lib.nn.Linear(3, 2), [((4, 3), False)],
                            lambda lib, m, xs: [m(*xs)]),
    "one-input-needs-no-grad": (two_inputs, [((4, 3), True), ((4, 3), False)],
                                lambda lib, m, xs: [m(*xs)]),
    "non-tensor-argument": (two_inputs, [((4, 3), True), ((4, 3), True)],
                            lambda lib, m, xs: [m(*xs, 3.0)]),
    "same-tensor-twice": (two_inputs, [((3, 3), True)], lambda lib, m, xs: [m(xs[0], xs[0])]),
    "unused-output": (two_outputs, [((4, 3), True)], lambda lib, m, xs: [m(*xs)[0]]),
    "two-outputs": (two_outputs, [((4, 3), True)], lambda lib, m, xs: list(m(*xs))),
    "sequential": (mlp, [((5, 3), True)], lambda lib, m, xs: [m(*xs)]),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(BACKWARD_CASES))
def test_backward_hooks_see_pytorchs_gradients(torch, rng, host_backend, case, dtype):
    """grad_input and grad_output of every module (None and zeros where PyTorch has them),
    the order the hooks fire in, and the gradients that come out, hooks and pre-hooks on every
    module of the model."""
    build, specs, run = BACKWARD_CASES[case]
    ours, theirs = pair(torch, build, dtype)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape, _ in specs]
    results = []
    for lib, model in ((mg, ours), (torch, theirs)):
        log: list = []
        for name, module in model.named_modules():
            module.register_full_backward_pre_hook(
                lambda m, go, name=name, log=log: log.append(("pre", name, values(go))))
            module.register_full_backward_hook(
                lambda m, gi, go, name=name, log=log: log.append(("hook", name, values(gi),
                                                                  values(go))))
        xs = [lib.tensor(a, requires_grad=grad) for a, (_, grad) in zip(arrays, specs)]
        with mg.backend(host_backend), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # both warn where no input requires grad
            outs = run(lib, model, xs)
            loss = sum((out * lib.tensor(np.linspace(-1, 2, out.numel()).reshape(out.shape)
                                         .astype(dtype))).sum() for out in outs)
            loss.backward()
        results.append((tuple(log), values(tuple(x.grad for x in xs))))
    assert [entry[:2] for entry in results[0][0]] == [entry[:2] for entry in results[1][0]]
    assert results[0][0], "no hook fired"
    assert_same(results[0], results[1], dtype)
    assert_same_grads(ours, theirs, dtype)


def test_no_input_requiring_grad_fires_at_the_outputs_with_a_warning(torch):

    def trace(lib):
        model, seen = lib.nn.Linear(2, 2), []
        model.register_full_backward_hook(lambda m, gi, go: seen.append((gi, values(go))))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model(lib.ones(1, 2)).sum().backward()
        return seen, [(w.category, str(w.message)) for w in caught]

    (seen, messages), (their_seen, their_messages) = trace(mg), trace(torch)
    assert messages == their_messages and len(messages) == 1
    assert "since no inputs require gradients" in messages[0][1]
    assert seen[0][0] == their_seen[0][0] == (None,)
    assert_same(seen[0][1], their_seen[0][1], "float32")


def _model_and_input(lib, build, x):
    model = build(lib)
    return model, lib.tensor(x, requires_grad=True)


REPLACEMENTS = {
    # name: (build, which module gets the hook, register(module))
    "grad_input-scaled": (mlp, "2", lambda m: m.register_full_backward_hook(
        lambda mod, gi, go: (gi[0] * 10,))),
    "grad_input-dropped": (mlp, "2", lambda m: m.register_full_backward_hook(
        lambda mod, gi, go: (None,))),
    "grad_input-as-a-list": (mlp, "1", lambda m: m.register_full_backward_hook(
        lambda mod, gi, go: [gi[0] * -1])),
    "grad_output-scaled": (mlp, "2", lambda m: m.register_full_backward_pre_hook(
        lambda mod, go: (go[0] * 3,))),
    "grad_output-dropped": (mlp, "2", lambda m: m.register_full_backward_pre_hook(
        lambda mod, go: (None,))),
    "both": (mlp, "0", lambda m: (m.register_full_backward_pre_hook(lambda mod, go: (go[0] * 3,)),
                                  m.register_full_backward_hook(lambda mod, gi, go: (gi[0] + 1,)))),
    "non-tensor-argument": (two_inputs, "", lambda m: m.register_full_backward_hook(
        lambda mod, gi, go: (gi[0] * 2, gi[1], None))),
    "input-needs-no-grad": (two_inputs, "", lambda m: m.register_full_backward_hook(
        lambda mod, gi, go: (gi[0] * 2, gi[1] + 5, None))),  # b needs no grad: goes nowhere
}


@pytest.mark.parametrize("case", list(REPLACEMENTS))
def test_replaced_gradients_flow_on_as_in_pytorch(torch, rng, case):
    build, where, register = REPLACEMENTS[case]
    ours, theirs = pair(torch, build)
    x, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    grads = []
    for lib, model in ((mg, ours), (torch, theirs)):
        register(model.get_submodule(where))
        xt = lib.tensor(x, requires_grad=True)
        args = (xt,) if build is mlp else (xt, lib.tensor(b), 3.0)
        model(*args).sum().backward()
        grads.append(values(xt.grad))
    assert_same(grads[0], grads[1])
    assert_same_grads(ours, theirs)


def test_retained_graph_fires_the_hooks_each_backward(torch, rng):
    ours, theirs = pair(torch, two_inputs)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    logs = []
    for lib, model in ((mg, ours), (torch, theirs)):
        log: list = []
        model.register_full_backward_hook(lambda m, gi, go, log=log: log.append(values(gi)))
        loss = model(lib.tensor(a, requires_grad=True), lib.tensor(b)).sum()
        loss.backward(retain_graph=True)
        loss.backward()
        logs.append(tuple(log))
    assert len(logs[0]) == 2
    assert_same(logs[0], logs[1])


def test_backward_hook_errors(torch):
    def run(lib, hook, pre=False, inputs_need_grad=True):
        model = two_inputs(lib)
        if pre:
            model.register_full_backward_pre_hook(hook)
        else:
            model.register_full_backward_hook(hook)
        a = lib.ones(2, 3, requires_grad=inputs_need_grad)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model(a, lib.ones(2, 3)).sum().backward()

    for lib in (mg, torch):
        with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of "
                                               "grad_input, got 1, but expected 2"):
            run(lib, lambda m, gi, go: (gi[0],))
        with pytest.raises(RuntimeError, match="Backward pre hook returned an invalid number "
                                               "of grad_output, got 2, but expected 1"):
            run(lib, lambda m, go: (go[0], go[0]), pre=True)
        with pytest.raises(RuntimeError, match="Backward hook for Modules where no input "
                                               "requires gradient should always return None"):
            run(lib, lambda m, gi, go: (go[0], None), inputs_need_grad=False)
    # where PyTorch's messages say less
    with pytest.raises(RuntimeError, match=r"backward hook of TwoInputs: grad_input\[0\] has "
                                           r"shape \(3,\), but the tensor it is for has shape "
                                           r"\(2, 3\)"):
        run(mg, lambda m, gi, go: (mg.ones(3), None))
    with pytest.raises(RuntimeError, match="Backward hook returned a Tensor, but a tuple of "
                                           "grad_input"):
        run(mg, lambda m, gi, go: gi[0])
    with pytest.raises(RuntimeError, match=r"grad_output\[0\] has shape \(2,\)"):
        run(mg, lambda m, go: (mg.ones(2),), pre=True)


def test_backward_hooks_need_a_tensor_or_tuple_output(torch):

    def trace(lib):
        class Listed(lib.nn.Module):
            def forward(self, x):
                return [x * 2]

        model, seen = Listed(), []
        model.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model(lib.ones(2, requires_grad=True))[0].sum().backward()
        assert seen == []
        return [str(w.message) for w in caught]

    assert trace(mg) == trace(torch) == [
        "For backward hooks to be called, module output should be a Tensor or a tuple of Tensors "
        "but received <class 'list'>"]


def test_backward_hooks_wrap_only_with_grad_enabled():
    """Under no_grad nothing is wrapped (forward hooks still run); with grad, module and
    caller see views of the tensors, sharing memory and version counter."""
    model, calls = nn.Identity(), []
    model.register_full_backward_hook(lambda m, gi, go: calls.append("backward"))
    model.register_forward_hook(lambda m, args, out: calls.append("forward"))
    x = mg.ones(2, requires_grad=True)
    with mg.no_grad():
        assert model(x) is x
    y = model(x)
    assert y is not x and y.array.base is x.array and y._version == x._version
    assert y.grad_fn is not None
    y.sum().backward()
    assert calls == ["forward", "forward", "backward"]
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1])


def test_backward_hooks_on_the_gpu(rng):
    """On the cupy backend (CuPy's stand-in on the CPU: cuda_on_cpu.py), hooks get GPU
    tensors and the same gradients as on the host, and a replacement goes on as there."""
    import cuda_on_cpu
    from helpers import skip_or_fail

    if cuda_on_cpu.compiler() is None:
        skip_or_fail("no C++ compiler (c++, g++ or clang++ on PATH) to build the CUDA kernels "
                     "for the CPU")
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    def trace(device):
        model = two_outputs(mg).double()
        model.load_state_dict({k: np.full(v.shape, 0.5) for k, v in model.state_dict().items()})
        model.to(device)
        log: list = []

        def hook(module, grad_input, grad_output):
            log.append([type(g.array) is cuda_on_cpu.ndarray
                        for g in grad_input + grad_output if g is not None])
            log.append(values([g.to("numpy") for g in grad_input + grad_output]))
            return (grad_input[0] * 2,)

        model.register_full_backward_hook(hook)
        x = mg.tensor(a).to(device).requires_grad_()
        first, second = model(x)
        (first.sum() + (second * mg.tensor(b).to(device)).sum()).backward()
        return log, x.grad.to("numpy").numpy(), model.lin.weight.grad.to("numpy").numpy()

    with cuda_on_cpu.installed():
        on_gpu = trace("cupy")
    on_host = trace("numpy")
    assert on_gpu[0][0] == [True] * 3 and on_host[0][0] == [False] * 3
    assert_same(on_gpu[0][1], on_host[0][1])
    for gpu_grad, host_grad in zip(on_gpu[1:], on_host[1:]):
        np.testing.assert_allclose(gpu_grad, host_grad, **TOLERANCE["float64"])


@given(seed=st.integers(0, 2**16))
def test_hooked_modules_have_the_same_gradients(seed):
    """The hooks' identity nodes change no gradient: finite differences agree, float64."""
    rng = np.random.default_rng(seed)
    model = two_outputs(mg).double()
    model.load_state_dict({k: rng.standard_normal(v.shape) for k, v in
                           model.state_dict().items()})
    model.register_full_backward_hook(lambda m, gi, go: None)
    model.lin.register_full_backward_pre_hook(lambda m, go: None)
    x = mg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert gradcheck(lambda x, *params: model(x), [x, *model.parameters()], seed=seed)


# ------------------------------------------------------------------------- walking the tree


def shared_net(lib: Any) -> Any:
    nn_ = lib.nn
    shared = nn_.Linear(2, 2)
    inner = nn_.Sequential(shared, nn_.ReLU(), nn_.BatchNorm1d(2))
    return nn_.Sequential(inner, shared, nn_.Sequential(inner))


def test_named_modules_is_pytorchs(torch):
    ours, theirs = shared_net(mg), shared_net(torch)

    def names(model, **kwargs):
        return [name for name, _ in model.named_modules(**kwargs)]

    for kwargs in ({}, {"prefix": "net"}, {"remove_duplicate": False}):
        assert names(ours, **kwargs) == names(theirs, **kwargs), kwargs
    assert names(ours)[0] == ""
    assert len(list(ours.modules(remove_duplicate=False))) == len(
        list(theirs.modules(remove_duplicate=False))) > len(list(ours.modules()))
    memo = {ours[1]}  # modules already listed are skipped, with what is under them
    assert names(ours, memo=memo) == names(theirs, memo={theirs[1]})
    assert ours[0] in memo
    for method in ("named_parameters", "named_buffers"):
        assert ([n for n, _ in getattr(ours, method)(remove_duplicate=False)]
                == [n for n, _ in getattr(theirs, method)(remove_duplicate=False)])
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]


TARGETS = ["", "0", "0.2", "2.0.0", "missing", "0.missing", "0.0.weight", "training", "1.bias",
           "0.2.running_mean", "0.2.num_batches_tracked", "0.0.nothing"]


def _outcome(getter: Any, target: str) -> Any:
    try:
        found = getter(target)
    except AttributeError as error:
        return "AttributeError: " + str(error)
    return tuple(found.shape) if hasattr(found, "shape") and not callable(found) else (
        type(found).__name__)


@pytest.mark.parametrize("method", ["get_submodule", "get_parameter", "get_buffer"])
def test_getters_and_their_errors_are_pytorchs(torch, method):
    ours, theirs = shared_net(mg), shared_net(torch)
    for target in TARGETS:
        expected = _outcome(getattr(theirs, method), target)
        assert _outcome(getattr(ours, method), target) == expected, target
    assert ours.get_submodule("") is ours
    assert ours.get_submodule("0.0") is ours[1]
    assert ours.get_parameter("1.weight") is ours[1].weight


def test_set_submodule_is_pytorchs(torch):
    outcomes = []
    for lib in (mg, torch):
        model, got = shared_net(lib), []
        model.set_submodule("0.1", lib.nn.Tanh())
        model.set_submodule("2.extra", lib.nn.ReLU())
        got.append([name for name, _ in model.named_modules()])
        for target, strict in (("2.other", True), ("0.0.weight", False), ("", False)):
            try:
                model.set_submodule(target, lib.nn.ReLU(), strict=strict)
            except (AttributeError, ValueError) as error:
                got.append(f"{type(error).__name__}: {error}")
        try:
            model.set_submodule("0", "not a module")
        except ValueError as error:
            got.append(str(error).split(",")[0])
        outcomes.append(got)
    assert outcomes[0] == outcomes[1]


def test_register_module_requires_grad_and_zero_grad(rng):
    model = nn.Module()
    model.register_module("lin", nn.Linear(2, 2))
    assert model.get_submodule("lin") is model.lin
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    assert model.requires_grad_() is model and all(p.requires_grad for p in model.parameters())
    model.lin(mg.tensor(rng.standard_normal((3, 2)))).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# ----------------------------------------------------------------------------------- summary


class _NoForwardPatching(nn.Module):
    """A leaf that checks, while it runs, that summary did not replace its forward."""

    def forward(self, x):
        assert "forward" not in self.__dict__
        return x * 2


def test_summary_uses_hooks_and_leaves_none(capsys):
    model = nn.Sequential(nn.Linear(4, 3), _NoForwardPatching(), nn.ReLU())
    calls = []
    handle = model[0].register_forward_hook(lambda m, args, out: calls.append(out.shape))
    text = summary(model, (4,))
    assert "_NoForwardPatching" in text and calls == [(1, 3)]
    assert [len(m._forward_hooks) for m in model.modules()] == [0, 1, 0, 0]
    handle.remove()
    with pytest.raises(ValueError):
        summary(model, (5,))  # the wrong input size: the forward pass raises
    assert all(not getattr(m, d) for m in model.modules() for d in HOOK_DICTS)
    assert all("forward" not in m.__dict__ for m in model.modules())
    capsys.readouterr()
