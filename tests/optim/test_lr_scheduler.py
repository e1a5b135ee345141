"""minitf.optim.lr_scheduler without torch: rates from the schedules' definitions, momentum
cycling, state-dict round trips (also through JSON) and errors. (tests/optim/test_optim_torch.py
compares every schedule with torch.optim.lr_scheduler.)
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from minitf.nn import Parameter
from minitf.optim import SGD, Adam
from minitf.optim.lr_scheduler import LambdaLR, LRScheduler, MultiStepLR, OneCycleLR, ReduceLROnPlateau, StepLR


def sgd(lr=1.0, groups=1, **kw):
    params = [Parameter(np.ones(2)) for _ in range(groups)]
    return SGD([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(params)], lr=lr, **kw)


def rates(scheduler, steps):
    """last_epoch 0..steps: the rates the optimizer steps with (the scheduler stepped after each)."""
    out = [scheduler.get_last_lr()]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        out.append(scheduler.get_last_lr())
    return np.array(out)


def test_lambda_lr():
    opt = sgd(0.5, groups=2)
    scheduler = LambdaLR(opt, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e])
    got = rates(scheduler, 6)
    np.testing.assert_allclose(got[:, 0], [0.5 / (e + 1) for e in range(7)], rtol=1e-15)
    np.testing.assert_allclose(got[:, 1], [1.0 * 0.9 ** e for e in range(7)], rtol=1e-15)
    assert scheduler.last_epoch == 6 and scheduler.base_lrs == [0.5, 1.0]
    assert [g["initial_lr"] for g in opt.param_groups] == [0.5, 1.0]
    with pytest.raises(ValueError, match="expected 2 values for lr_lambda, got 3"):
        LambdaLR(opt, [lambda e: 1.0] * 3)


def test_step_lr_and_multistep_lr():
    got = rates(StepLR(sgd(1.0), step_size=3, gamma=0.5), 10)[:, 0]
    np.testing.assert_allclose(got, [0.5 ** (e // 3) for e in range(11)], rtol=1e-15)
    got = rates(MultiStepLR(sgd(1.0), milestones=[4, 2, 4], gamma=0.1), 6)[:, 0]
    np.testing.assert_allclose(got, [1, 1, 0.1, 0.1, 1e-3, 1e-3, 1e-3], rtol=1e-12)  # 4 is listed twice
    with pytest.raises(ValueError, match="step_size must be a positive integer, got 0"):
        StepLR(sgd(), step_size=0)


def test_one_cycle_two_phases():
    total, peak = 20, 1.0
    opt = sgd(groups=1, momentum=0.9)
    scheduler = OneCycleLR(opt, max_lr=peak, total_steps=total, pct_start=0.25, anneal_strategy="linear")
    got = rates(scheduler, total - 1)
    lr, momentum = got[:, 0], None
    start, end = peak / 25, peak / 25 / 1e4
    np.testing.assert_allclose(lr[0], start)
    np.testing.assert_allclose(lr[4], peak)  # peak at pct_start * total - 1
    np.testing.assert_allclose(lr[-1], end)
    np.testing.assert_allclose(lr[:5], np.linspace(start, peak, 5), rtol=1e-12)
    np.testing.assert_allclose(lr[4:], np.linspace(peak, end, 16), rtol=1e-10)
    momentum = opt.param_groups[0]["momentum"]
    assert momentum == pytest.approx(0.95)  # back at max_momentum at the end
    scheduler.step()  # as torch, one step past the end is allowed, the next is not
    with pytest.raises(ValueError, match="Tried to step 21 times. The specified number of total steps is 20"):
        scheduler.step()


def test_one_cycle_cos_three_phases_and_adam_beta1():
    opt = Adam([Parameter(np.ones(2))], lr=1.0, betas=(0.5, 0.99))
    scheduler = OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=5, three_phase=True, div_factor=10.0,
                           final_div_factor=2.0)
    lr, beta1 = [], []
    for e in range(10):
        lr.append(opt.param_groups[0]["lr"])
        beta1.append(opt.param_groups[0]["betas"][0])
        assert opt.param_groups[0]["betas"][1] == 0.99
        if e < 9:
            scheduler.step()
    cos = lambda a, b, pct: b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)  # noqa: E731
    # phases end at steps 2 (0.3 * 10 - 1), 4 (2 * 3 - 2) and 9
    expected = [cos(0.01, 0.1, e / 2) for e in range(3)] + [cos(0.1, 0.01, (e - 2) / 2) for e in (3, 4)]
    expected += [cos(0.01, 0.005, (e - 4) / 5) for e in range(5, 10)]
    np.testing.assert_allclose(lr, expected, rtol=1e-12)
    assert beta1[0] == 0.95 and beta1[2] == pytest.approx(0.85) and beta1[4] == pytest.approx(0.95)
    assert beta1[9] == pytest.approx(0.95)


def test_one_cycle_errors():
    with pytest.raises(ValueError, match="either total_steps OR"):
        OneCycleLR(sgd(), max_lr=1.0)
    with pytest.raises(ValueError, match="positive integer total_steps, but got 0"):
        OneCycleLR(sgd(), max_lr=1.0, total_steps=0)
    with pytest.raises(ValueError, match="positive integer steps_per_epoch, but got -2"):
        OneCycleLR(sgd(), max_lr=1.0, epochs=2, steps_per_epoch=-2)
    with pytest.raises(ValueError, match="float between 0 and 1 pct_start, but got 1.5"):
        OneCycleLR(sgd(), max_lr=1.0, total_steps=5, pct_start=1.5)
    with pytest.raises(ValueError, match="'cos' or 'linear', instead got cosine"):
        OneCycleLR(sgd(), max_lr=1.0, total_steps=5, anneal_strategy="cosine")
    with pytest.raises(ValueError, match="expected 2 values for max_lr, got 1"):
        OneCycleLR(sgd(groups=2), max_lr=[1.0], total_steps=5)


def test_reduce_lr_on_plateau():
    opt = sgd(1.0, groups=2)
    scheduler = ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=[0.3, 0.0], threshold=0.1)
    metrics = [10, 9.5, 9.5, 9.5, 9.5, 9.5, 1, 1, 1]  # 9.5 is not 10% better than 10
    got = []
    for metric in metrics:
        scheduler.step(metric)
        got.append(scheduler.get_last_lr())
    # 2 bad epochs (> patience) halve the rates: epochs 2-3; 4 is in cooldown; 5-6 (the first group
    # stops at min_lr 0.3); 7 improves (best 1); 8-9 (the first group stays at 0.3)
    expected = [[1, 2], [1, 2], [0.5, 1], [0.5, 1], [0.5, 1], [0.3, 0.5], [0.3, 0.5], [0.3, 0.5], [0.3, 0.25]]
    np.testing.assert_allclose(got, expected)
    assert scheduler.last_epoch == 9 and scheduler.best == 1
    maximizing = ReduceLROnPlateau(sgd(1.0), mode="max", threshold_mode="abs", threshold=1.0, patience=0)
    for metric in (1.0, 1.9, 3.0):  # 1.9 is not better than 1 + 1
        maximizing.step(metric)
    assert maximizing.get_last_lr() == [0.1]
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        ReduceLROnPlateau(sgd(), factor=1.0)
    with pytest.raises(ValueError, match="mode middle is unknown"):
        ReduceLROnPlateau(sgd(), mode="middle")
    with pytest.raises(ValueError, match="threshold mode ratio is unknown"):
        ReduceLROnPlateau(sgd(), threshold_mode="ratio")


class Decay:
    def __init__(self, rate):
        self.rate = rate

    def __call__(self, epoch):
        return self.rate ** epoch


MAKERS = [
    lambda o: LambdaLR(o, [Decay(0.7), lambda e: 1 / (1 + e)]),
    lambda o: StepLR(o, step_size=2, gamma=0.3),
    lambda o: MultiStepLR(o, milestones=[1, 3, 3, 6]),
    lambda o: OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=12, three_phase=True),
    lambda o: ReduceLROnPlateau(o, patience=0, factor=0.5),
]


def advance(scheduler, steps, start=0):
    for i in range(start, start + steps):
        scheduler.optimizer.step()
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(float(i % 3))
        else:
            scheduler.step()
        yield scheduler.get_last_lr(), [g.get("momentum") for g in scheduler.optimizer.param_groups]


@pytest.mark.parametrize("through_json", [False, True])
@pytest.mark.parametrize("make", MAKERS)
def test_state_dict_resumes_exactly(make, through_json):
    opt = sgd(0.4, groups=2, momentum=0.9)
    scheduler = make(opt)
    list(advance(scheduler, 4))
    opt_state, state = opt.state_dict(), scheduler.state_dict()
    if through_json:
        opt_state, state = (json.loads(json.dumps(s, default=lambda a: a.tolist())) for s in (opt_state, state))
    expected = list(advance(scheduler, 6, start=4))

    opt2 = sgd(9.0, groups=2, momentum=0.9)
    scheduler2 = make(opt2)
    if isinstance(scheduler2, LambdaLR):
        assert state["lr_lambdas"] == [{"rate": 0.7}, None]  # a callable object's attributes, never code
        scheduler2.lr_lambdas[0].rate = 0.1  # loading restores it
    opt2.load_state_dict(opt_state)
    scheduler2.load_state_dict(state)
    assert scheduler2.last_epoch == 4
    assert list(advance(scheduler2, 6, start=4)) == expected


def test_load_state_dict_errors():
    scheduler = StepLR(sgd(), step_size=2)
    state = scheduler.state_dict()
    assert set(state) == {"step_size", "gamma", "base_lrs", "last_epoch", "_step_count", "_last_lr"}
    with pytest.raises(ValueError, match=r"missing entries \['gamma'\], unknown entries \['gama'\]"):
        scheduler.load_state_dict({**{k: v for k, v in state.items() if k != "gamma"}, "gama": 0.1})
    scheduler.load_state_dict({**state, "_is_initial": False, "_get_lr_called_within_step": False})  # torch's
    with pytest.raises(ValueError, match="has 2 lr_lambdas, this scheduler has 1"):
        LambdaLR(sgd(), lambda e: 1.0).load_state_dict({"lr_lambdas": [None, None]})


def test_scheduler_errors():
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        StepLR([], step_size=1)
    with pytest.raises(KeyError, match=r"'initial_lr' is not specified in param_groups\[0\]"):
        StepLR(sgd(), step_size=1, last_epoch=3)
    opt = sgd()
    StepLR(opt, step_size=1)
    resumed = StepLR(opt, step_size=1, last_epoch=3)  # initial_lr is there now
    assert resumed.last_epoch == 4 and resumed.base_lrs == [1.0]
    with pytest.raises(NotImplementedError):
        LRScheduler(sgd())
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        from minitf.optim import Adagrad
        OneCycleLR(Adagrad([Parameter(np.ones(2))]), max_lr=1.0, total_steps=4)
