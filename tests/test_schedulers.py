"""The learning-rate schedulers against torch.optim.lr_scheduler: every lr of every step equal to
PyTorch's with ==, state dicts with PyTorch's keys and values, and resuming from a state dict
continuing exactly. (StepLR, CosineAnnealingLR and OneCycleLR have their traces in
test_optim.py; here they appear inside SequentialLR and in the state-dict checks.)

Each schedule is written once, as `make(lr_scheduler_module, optimizer)`, and run with both
libraries on an SGD with two param groups of different lrs.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.optim import SGD, lr_scheduler


def optimizer(lib, lrs=(0.1, 0.03)):
    groups = [{"params": [lib.ones(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return lib.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def trace(lib, make, steps=100, metrics=None, lrs=(0.1, 0.03)):
    """get_last_lr() and each group's lr before every step, and the final state dict."""
    opt = optimizer(lib, lrs)
    sched = make(lib.optim.lr_scheduler, opt)
    seen = []
    for i in range(steps):
        seen.append((sched.get_last_lr(), [g["lr"] for g in opt.param_groups]))
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
    return seen, sched


def same_as_torch(torch, make, steps=100, metrics=None, lrs=(0.1, 0.03)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's "lr_scheduler.step() before optimizer"...
        theirs, torch_sched = trace(torch, make, steps, metrics, lrs)
    ours, sched = trace(mg, make, steps, metrics, lrs)
    assert ours == theirs  # exactly: the same float arithmetic in the same order
    for lr_list, group_lrs in ours:
        assert lr_list == group_lrs
    return ours, sched, torch_sched


class Halving:
    """A callable object: LambdaLR saves its __dict__ (a plain function it cannot save)."""

    def __init__(self, every):
        self.every = every

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


SCHEDULES = {
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, milestones=[10, 25, 25, 60], gamma=0.3),
    "MultiStepLR-unsorted-default": lambda L, o: L.MultiStepLR(o, [30, 5]),
    "MultiStepLR-milestone-0": lambda L, o: L.MultiStepLR(o, [0, 3], gamma=0.5),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, gamma=0.95),
    "LambdaLR": lambda L, o: L.LambdaLR(o, lambda epoch: 1 / math.sqrt(1 + epoch)),
    "LambdaLR-per-group": lambda L, o: L.LambdaLR(o, [lambda e: 0.97**e, Halving(7)]),
    "LinearLR-defaults": lambda L, o: L.LinearLR(o),
    "LinearLR-warmup": lambda L, o: L.LinearLR(o, start_factor=0.01, total_iters=10),
    "LinearLR-decay": lambda L, o: L.LinearLR(o, 1.0, 0.05, total_iters=37),
    "warmup-cosine": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.01, total_iters=5), L.CosineAnnealingLR(o, T_max=95)],
        milestones=[5]),
    "warmup-cosine-eta_min": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, 0.1, 1.0, 10), L.CosineAnnealingLR(o, T_max=40, eta_min=1e-3)],
        milestones=[10]),
    "cosine-then-linear": lambda L, o: L.SequentialLR(
        o, [L.CosineAnnealingLR(o, 20), L.LinearLR(o, 0.5, 1.0, 30)], milestones=[20]),
    "three-schedulers": lambda L, o: L.SequentialLR(
        o, [L.ExponentialLR(o, 0.9), L.StepLR(o, 4, 0.5), L.MultiStepLR(o, [3, 8])],
        milestones=[10, 30]),
    "nested-sequential": lambda L, o: L.SequentialLR(
        o, [L.SequentialLR(o, [L.LinearLR(o, 0.2, 1.0, 4), L.ExponentialLR(o, 0.9)], [4]),
            L.CosineAnnealingLR(o, 30)], milestones=[20]),
    "sequential-one": lambda L, o: L.SequentialLR(o, [L.ExponentialLR(o, 0.9)], milestones=[]),
}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_equal_torchs(torch, schedule):
    ours, _, _ = same_as_torch(torch, SCHEDULES[schedule])
    assert len({lrs[0] for lrs, _ in ours}) > 1


def test_warmup_then_cosine_as_people_write_it(torch):
    """5 warm-up epochs from 1% of the lr, then a cosine down to 0 at epoch 100."""
    ours, _, _ = same_as_torch(torch, SCHEDULES["warmup-cosine"], steps=101)
    lrs = [lrs[0] for lrs, _ in ours]
    assert lrs[0] == pytest.approx(0.001) and lrs[5] == 0.1 and lrs[100] < 1e-15
    assert lrs[:6] == sorted(lrs[:6]) and lrs[5:] == sorted(lrs[5:], reverse=True)


@st.composite
def schedules(draw):
    """A drawn schedule, as a builder for both libraries."""
    kind = draw(st.sampled_from(["multistep", "exponential", "linear", "warmup-cosine"]))
    if kind == "multistep":
        milestones = draw(st.lists(st.integers(0, 40), max_size=6))
        gamma = draw(st.floats(0.01, 1.0))
        return lambda L, o: L.MultiStepLR(o, milestones, gamma)
    if kind == "exponential":
        gamma = draw(st.floats(0.5, 1.0))
        return lambda L, o: L.ExponentialLR(o, gamma)
    start = draw(st.floats(1e-3, 1.0))
    end = draw(st.floats(0.0, 1.0))
    iters = draw(st.integers(1, 30))
    if kind == "linear":
        return lambda L, o: L.LinearLR(o, start, end, iters)
    t_max = draw(st.integers(1, 30))
    eta_min = draw(st.sampled_from([0.0, 1e-4]))
    return lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start, 1.0, iters),
                                           L.CosineAnnealingLR(o, t_max, eta_min)], [iters])


@given(make=schedules(), lr=st.floats(1e-4, 10.0))
def test_drawn_schedules_equal_torchs(torch, make, lr):
    same_as_torch(torch, make, steps=60, lrs=(lr, lr / 3))


# ------------------------------------------------------------------------- ReduceLROnPlateau
LOSSES = [1.0, 0.9, 0.95, 0.9, 0.9, 0.9, 0.89, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.6] * 4


@pytest.mark.parametrize("kwargs", [
    {},
    {"patience": 2},
    {"patience": 2, "cooldown": 3, "factor": 0.5, "min_lr": [0.02, 0.01]},
    {"patience": 1, "threshold": 0.1, "threshold_mode": "abs", "min_lr": 0.005},
    {"patience": 1, "factor": 0.8, "eps": 0.01},  # cuts smaller than eps are skipped
    {"mode": "max", "patience": 0},
    {"mode": "max", "patience": 1, "threshold": 0.05, "threshold_mode": "abs"},
], ids=str)
def test_reduce_lr_on_plateau_equals_torchs(torch, kwargs):
    ours, sched, torch_sched = same_as_torch(
        torch, lambda L, o: L.ReduceLROnPlateau(o, **kwargs), steps=len(LOSSES), metrics=LOSSES)
    assert sched.state_dict() == torch_sched.state_dict()
    if kwargs.get("mode") != "max":
        assert len({lrs[0] for lrs, _ in ours}) > 1


@given(losses=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=60),
       mode=st.sampled_from(["min", "max"]), threshold_mode=st.sampled_from(["rel", "abs"]),
       patience=st.integers(0, 4), cooldown=st.integers(0, 3), factor=st.floats(0.0, 0.99),
       threshold=st.sampled_from([0.0, 1e-4, 0.1]), min_lr=st.sampled_from([0.0, 1e-3]))
def test_reduce_lr_on_plateau_drawn_equals_torchs(torch, losses, mode, threshold_mode, patience,
                                                  cooldown, factor, threshold, min_lr):
    kwargs = {"mode": mode, "threshold_mode": threshold_mode, "patience": patience,
              "cooldown": cooldown, "factor": factor, "threshold": threshold, "min_lr": min_lr}
    _, sched, torch_sched = same_as_torch(
        torch, lambda L, o: L.ReduceLROnPlateau(o, **kwargs), steps=len(losses), metrics=losses)
    assert sched.state_dict() == torch_sched.state_dict()


def test_reduce_lr_on_plateau_takes_a_tensor_metric():
    opt = SGD([mg.ones(2, requires_grad=True)], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(mg.tensor(1.0))
    sched.step(mg.tensor([2.0]))
    assert sched.get_last_lr() == [0.1] and opt.param_groups[0]["lr"] == 0.1
    assert sched.best == 1.0 and type(sched.best) is float


def test_reduce_lr_on_plateau_with_per_group_min_lr_refuses_a_new_group():
    params = [mg.ones(2, requires_grad=True) for _ in range(2)]
    opt = SGD(params[:1], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0])
    opt.add_param_group({"params": params[1:]})
    sched.step(1.0)
    with pytest.raises(RuntimeError, match="ReduceLROnPlateau: the optimizer has 2 param groups "
                                           "but min_lr has 1 values"):
        sched.step(2.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=0.5)
    sched.step(1.0)
    sched.step(2.0)  # one min_lr for all: the new group gets it too
    assert sched.get_last_lr() == [0.5, 0.5]


# ------------------------------------------------------------------------------ state dicts
STATE_SCHEDULES = {
    **{k: SCHEDULES[k] for k in ["MultiStepLR", "ExponentialLR", "LambdaLR-per-group",
                                 "LinearLR-warmup", "warmup-cosine", "three-schedulers",
                                 "nested-sequential"]},
    "StepLR": lambda L, o: L.StepLR(o, 7, 0.5),
    "CosineAnnealingLR": lambda L, o: L.CosineAnnealingLR(o, 13, 1e-3),
    "ReduceLROnPlateau": lambda L, o: L.ReduceLROnPlateau(o, patience=1, cooldown=2),
}


def metrics_for(schedule, steps):
    return LOSSES[:steps] if schedule == "ReduceLROnPlateau" else None


@pytest.mark.parametrize("schedule", STATE_SCHEDULES)
def test_state_dict_is_torchs(torch, schedule):
    make, metrics = STATE_SCHEDULES[schedule], metrics_for(schedule, 12)
    _, sched, torch_sched = same_as_torch(torch, make, steps=12, metrics=metrics)
    ours, theirs = sched.state_dict(), torch_sched.state_dict()
    assert list(ours) == list(theirs)
    assert ours == theirs
    assert [type(v) for v in ours.values()] == [type(v) for v in theirs.values()]


def test_lambda_lr_saves_callable_objects_not_functions(torch):
    _, sched, torch_sched = same_as_torch(torch, SCHEDULES["LambdaLR-per-group"], steps=3)
    assert sched.state_dict()["lr_lambdas"] == torch_sched.state_dict()["lr_lambdas"] \
        == [None, {"every": 7}]
    opt = optimizer(mg)
    halving = Halving(2)
    fresh = lr_scheduler.LambdaLR(opt, [lambda e: 0.97**e, halving])
    fresh.load_state_dict(sched.state_dict())
    assert halving.every == 7 and fresh.last_epoch == 3


@pytest.mark.parametrize("via", ["dict", "json", "checkpoint"])
@pytest.mark.parametrize("schedule", STATE_SCHEDULES)
def test_resuming_from_a_state_dict_continues_exactly(schedule, via, tmp_path):
    make, metrics = STATE_SCHEDULES[schedule], metrics_for(schedule, 40)

    def advance(opt, sched, start, stop):
        lrs = []
        for i in range(start, stop):
            opt.step()
            sched.step() if metrics is None else sched.step(metrics[i])
            lrs.append(sched.get_last_lr())
        return lrs

    whole_opt = optimizer(mg)
    whole = make(lr_scheduler, whole_opt)
    uninterrupted = advance(whole_opt, whole, 0, 40)

    opt = optimizer(mg)
    sched = make(lr_scheduler, opt)
    advance(opt, sched, 0, 17)
    saved = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    if via == "json":  # the scheduler's part: numbers, strings and lists (Counter keys: strings)
        saved["scheduler"] = json.loads(json.dumps(saved["scheduler"]))
    elif via == "checkpoint":
        mg.save(saved, tmp_path / "ckpt.npz")
        saved = mg.load(tmp_path / "ckpt.npz")

    opt = optimizer(mg, lrs=(0.5, 0.5))  # the lrs come back from the state dicts
    sched = make(lr_scheduler, opt)
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    assert advance(opt, sched, 17, 40) == uninterrupted[17:]
    assert sched.state_dict() == whole.state_dict()


def test_state_dict_is_a_snapshot():
    opt = optimizer(mg)
    sched = SCHEDULES["warmup-cosine"](lr_scheduler, opt)
    saved = sched.state_dict()
    before = json.dumps(saved)
    for _ in range(10):
        sched.step()
    assert json.dumps(saved) == before


# ---------------------------------------------------------------------------- bad arguments
def _other_optimizer_scheduler(L, o):
    other = type(o)([{"params": [p]} for g in o.param_groups for p in g["params"]], lr=0.1)
    return L.SequentialLR(o, [L.ExponentialLR(o, 0.9), L.ExponentialLR(other, 0.9)], [3])


BAD = [
    (lambda L, o: L.LinearLR(o, start_factor=0), ValueError,
     "LinearLR: start_factor expected to be greater than 0 and less or equal to 1, got 0"),
    (lambda L, o: L.LinearLR(o, start_factor=1.5), ValueError, "start_factor expected"),
    (lambda L, o: L.LinearLR(o, end_factor=-0.1), ValueError,
     "LinearLR: end_factor expected to be between 0 and 1, got -0.1"),
    (lambda L, o: L.LinearLR(o, end_factor=1.1), ValueError, "end_factor expected"),
    (lambda L, o: L.LambdaLR(o, [lambda e: 1.0]), ValueError,
     r"LambdaLR: expected 2 lr_lambdas \(one per param group\), but got 1"),
    (lambda L, o: L.SequentialLR(o, [], []), ValueError,
     "SequentialLR: expects at least one scheduler"),
    (lambda L, o: L.SequentialLR(o, [L.ExponentialLR(o, 0.9), L.ExponentialLR(o, 0.5)], []),
     ValueError, "SequentialLR: expects one milestone fewer than schedulers, but got 2 "
                 "schedulers and 0 milestones"),
    (lambda L, o: L.SequentialLR(o, [L.ExponentialLR(o, 0.9), L.ReduceLROnPlateau(o)], [3]),
     ValueError, r"SequentialLR: does not support ReduceLROnPlateau \(index 1\)"),
    (lambda L, o: L.SequentialLR(o, [object()], []), TypeError,
     "SequentialLR: the scheduler at index 0 .* has no `optimizer` attribute"),
    (_other_optimizer_scheduler, ValueError,
     "SequentialLR: all schedulers must belong to the same optimizer, but ExponentialLR at "
     "index 1"),
    (lambda L, o: L.ReduceLROnPlateau(o, factor=1.0), ValueError,
     "ReduceLROnPlateau: factor should be < 1.0, got 1.0"),
    (lambda L, o: L.ReduceLROnPlateau(o, mode="lowest"), ValueError,
     "ReduceLROnPlateau: mode must be 'min' or 'max', got 'lowest'"),
    (lambda L, o: L.ReduceLROnPlateau(o, threshold_mode="relative"), ValueError,
     "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs'"),
    (lambda L, o: L.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError,
     r"ReduceLROnPlateau: expected 2 min_lrs \(one per param group\), got 1"),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD, ids=[m for _, _, m in BAD])
def test_bad_arguments_raise_like_torch(torch, make, error, message):
    with pytest.raises(error, match=message):
        make(lr_scheduler, optimizer(mg))
    with pytest.raises(error):
        make(torch.optim.lr_scheduler, optimizer(torch))


@pytest.mark.parametrize("name", ["MultiStepLR", "ExponentialLR", "LambdaLR", "LinearLR",
                                  "ReduceLROnPlateau"])
def test_schedulers_need_an_optimizer(name):
    args = {"MultiStepLR": ([3],), "ExponentialLR": (0.9,), "LambdaLR": (lambda e: 1.0,),
            "LinearLR": (), "ReduceLROnPlateau": ()}[name]
    with pytest.raises(TypeError, match=f"{name}: list is not an Optimizer"):
        getattr(lr_scheduler, name)([mg.ones(2, requires_grad=True)], *args)


def test_schedulers_are_lr_schedulers_like_torchs():
    opt = optimizer(mg)
    for make in SCHEDULES.values():
        assert isinstance(make(lr_scheduler, optimizer(mg)), lr_scheduler.LRScheduler)
    assert isinstance(lr_scheduler.ReduceLROnPlateau(opt), lr_scheduler.LRScheduler)


def test_sequential_lr_state_dict_layout(torch):
    _, sched, torch_sched = same_as_torch(torch, SCHEDULES["warmup-cosine"], steps=7)
    ours = sched.state_dict()
    assert list(ours) == ["_milestones", "last_epoch", "_last_lr", "_schedulers"]
    assert [list(s) for s in ours["_schedulers"]] == \
        [list(s) for s in torch_sched.state_dict()["_schedulers"]]
    assert np.isclose(ours["_last_lr"][0], 0.1 * (1 + math.cos(math.pi * 2 / 95)) / 2)
