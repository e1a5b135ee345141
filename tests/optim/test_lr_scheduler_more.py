"""The schedulers beside the first ones, without torch: closed-form rates, CyclicLR's triangles and
momentum, SequentialLR/ChainedScheduler composition, state-dict round trips (also through JSON)
and bad arguments. (tests/optim/test_lr_scheduler_more_torch.py compares each with torch.)
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from minitf.nn import Parameter
from minitf.optim import SGD, Adagrad, Adam
from minitf.optim.lr_scheduler import (ChainedScheduler, ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts,
                                       CyclicLR, ExponentialLR, LinearLR, MultiStepLR, PolynomialLR,
                                       ReduceLROnPlateau, SequentialLR, StepLR)

BASES = [1.0, 0.5]


def sgd(**kw):
    return SGD([{"params": [Parameter(np.ones(2))], "lr": lr} for lr in BASES], lr=1.0, **kw)


def rates(scheduler, steps):
    """The rates of epochs 0..steps, one row per epoch, one column per group."""
    out = [scheduler.get_last_lr()]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        out.append(scheduler.get_last_lr())
    return np.array(out)


def expect(got, factor):
    """Each group's rates equal its base rate times factor(epoch)."""
    want = np.array([[base * factor(e) for base in BASES] for e in range(len(got))])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_cosine_annealing_is_the_half_cosine_and_rises_after_t_max():
    got = rates(CosineAnnealingLR(sgd(), T_max=10, eta_min=0.0), 20)
    expect(got, lambda e: (1 + math.cos(math.pi * e / 10)) / 2)
    assert got[10, 0] == pytest.approx(0.0, abs=1e-15) and got[20, 0] == pytest.approx(1.0)
    opt = sgd()
    got = rates(CosineAnnealingLR(opt, T_max=4, eta_min=0.1), 4)
    np.testing.assert_allclose(got[:, 0], [1.0, 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2, 0.55,
                                           0.1 + 0.9 * (1 + math.cos(3 * math.pi / 4)) / 2, 0.1], rtol=1e-12)


def test_warm_restarts_restart_and_take_fractional_epochs():
    scheduler = CosineAnnealingWarmRestarts(sgd(), T_0=4, T_mult=2, eta_min=0.0)
    got = rates(scheduler, 28)
    # periods 4, 8, 16: restarts at epochs 4, 12 and 28
    cur_and_period = [(e, 4) for e in range(4)] + [(e - 4, 8) for e in range(4, 12)] + \
                     [(e - 12, 16) for e in range(12, 28)] + [(0, 32)]
    expect(got, lambda e: (1 + math.cos(math.pi * cur_and_period[e][0] / cur_and_period[e][1])) / 2)
    scheduler.step(5.5)  # back into the second period, half way through its second epoch
    assert (scheduler.T_cur, scheduler.T_i, scheduler.last_epoch) == (1.5, 8, 5)
    assert scheduler.get_last_lr()[0] == pytest.approx((1 + math.cos(math.pi * 1.5 / 8)) / 2)
    scheduler.step()
    assert (scheduler.T_cur, scheduler.last_epoch) == (2.5, 6)
    flat = CosineAnnealingWarmRestarts(sgd(), T_0=3)
    flat.step(7.25)
    assert flat.T_cur == pytest.approx(1.25) and flat.T_i == 3
    with pytest.raises(ValueError, match="Expected non-negative epoch, but got -1"):
        flat.step(-1)


def test_exponential_linear_constant_polynomial():
    expect(rates(ExponentialLR(sgd(), gamma=0.8), 12), lambda e: 0.8 ** e)
    expect(rates(LinearLR(sgd(), start_factor=0.25, end_factor=0.75, total_iters=8), 12),
           lambda e: 0.25 + 0.5 * min(e, 8) / 8)
    expect(rates(ConstantLR(sgd(), factor=0.3, total_iters=4), 8), lambda e: 0.3 if e < 4 else 1.0)
    expect(rates(PolynomialLR(sgd(), total_iters=6, power=2.0), 10), lambda e: (1 - min(e, 6) / 6) ** 2)


def test_cyclic_triangles_and_momentum():
    opt = sgd(momentum=0.5)
    scheduler = CyclicLR(opt, base_lr=0.1, max_lr=1.0, step_size_up=2, step_size_down=3, base_momentum=0.8,
                         max_momentum=0.9)
    lr, momentum = [], []
    for _ in range(11):
        lr.append(opt.param_groups[0]["lr"])
        momentum.append(opt.param_groups[0]["momentum"])
        opt.step()
        scheduler.step()
    np.testing.assert_allclose(lr, [0.1, 0.55, 1.0, 0.7, 0.4, 0.1, 0.55, 1.0, 0.7, 0.4, 0.1], rtol=1e-12)
    np.testing.assert_allclose(momentum, [0.9, 0.85, 0.8, 0.8 + 0.1 / 3, 0.9 - 0.1 / 3, 0.9, 0.85, 0.8,
                                          0.8 + 0.1 / 3, 0.9 - 0.1 / 3, 0.9], rtol=1e-12)
    assert opt.param_groups[1]["lr"] == opt.param_groups[0]["lr"]  # base_lr and max_lr given once: every group's
    halving = rates(CyclicLR(sgd(), base_lr=0.0, max_lr=1.0, step_size_up=1, mode="triangular2",
                             cycle_momentum=False), 6)[:, 0]
    np.testing.assert_allclose(halving, [0, 1, 0, 0.5, 0, 0.25, 0], atol=1e-15)
    shrinking = rates(CyclicLR(sgd(), base_lr=0.0, max_lr=1.0, step_size_up=1, mode="exp_range", gamma=0.5,
                               cycle_momentum=False), 4)[:, 0]
    np.testing.assert_allclose(shrinking, [0, 0.5, 0, 0.125, 0], atol=1e-15)  # gamma ** batch


def test_cyclic_moves_adams_beta1():
    opt = Adam([Parameter(np.ones(2))], lr=1.0, betas=(0.5, 0.99))
    scheduler = CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=1, base_momentum=0.85, max_momentum=0.95)
    assert opt.param_groups[0]["betas"] == (0.95, 0.99)
    opt.step()
    scheduler.step()
    assert opt.param_groups[0]["betas"] == pytest.approx((0.85, 0.99))


def test_sequential_warmup_then_decay():
    opt = sgd()
    warmup = LinearLR(opt, start_factor=0.25, total_iters=3)
    decay = ExponentialLR(opt, gamma=0.5)
    scheduler = SequentialLR(opt, [warmup, decay], milestones=[3])
    expect(rates(scheduler, 7), lambda e: [0.25, 0.5, 0.75, 1.0, 0.5, 0.25, 0.125, 0.0625][e])
    assert scheduler.last_epoch == 7 and decay.last_epoch == 4
    # a StepLR started at a milestone begins at its base rate (its closed form), not where the first ended
    opt = sgd()
    scheduler = SequentialLR(opt, [ConstantLR(opt, factor=0.1, total_iters=10), StepLR(opt, step_size=2, gamma=0.5)],
                             milestones=[2])
    expect(rates(scheduler, 6), lambda e: [0.1, 0.1, 1.0, 1.0, 0.5, 0.5, 0.25][e])


def test_chained_multiplies_the_factors():
    opt = sgd()
    scheduler = ChainedScheduler([ConstantLR(opt, factor=0.5, total_iters=2), ExponentialLR(opt, gamma=0.9)])
    expect(rates(scheduler, 5), lambda e: (0.5 if e < 2 else 1.0) * 0.9 ** e)
    assert scheduler.optimizer is opt


class Scale:
    def __init__(self, rate):
        self.rate = rate

    def __call__(self, x):
        return self.rate ** x


MAKERS = [
    lambda o: CosineAnnealingLR(o, T_max=9, eta_min=0.01),
    lambda o: CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    lambda o: ExponentialLR(o, gamma=0.9),
    lambda o: LinearLR(o, start_factor=0.1, total_iters=30),
    lambda o: ConstantLR(o, factor=0.2, total_iters=25),
    lambda o: PolynomialLR(o, total_iters=40, power=0.5),
    lambda o: CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.5, step_size_up=6, scale_fn=Scale(0.9)),
    lambda o: CyclicLR(o, base_lr=0.01, max_lr=0.5, step_size_up=3, mode="exp_range", gamma=0.99),
    lambda o: SequentialLR(o, [LinearLR(o, total_iters=4), MultiStepLR(o, milestones=[3, 30, 30])], milestones=[5]),
    lambda o: ChainedScheduler([StepLR(o, step_size=7), CosineAnnealingLR(o, T_max=33)]),
]


def advance(scheduler, steps):
    out = []
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        out.append((scheduler.get_last_lr(), [g.get("momentum") for g in scheduler.optimizer.param_groups]))
    return out


@pytest.mark.parametrize("through_json", [False, True])
@pytest.mark.parametrize("make", MAKERS)
def test_state_dict_mid_schedule_resumes_exactly(make, through_json):
    opt = sgd(momentum=0.9)
    scheduler = make(opt)
    advance(scheduler, 20)
    opt_state, state = opt.state_dict(), scheduler.state_dict()
    assert "_is_initial" not in state and "optimizer" not in state
    if through_json:
        opt_state, state = (json.loads(json.dumps(s, default=lambda a: a.tolist())) for s in (opt_state, state))
    expected = advance(scheduler, 30)

    opt2 = sgd(momentum=0.9)
    scheduler2 = make(opt2)
    if isinstance(scheduler2, CyclicLR) and scheduler2._scale_fn_custom is not None:
        assert state["_scale_fn_custom"] == {"rate": 0.9}  # a callable object's attributes, never code
        scheduler2._scale_fn_custom.rate = 0.5  # loading restores it
    opt2.load_state_dict(opt_state)
    scheduler2.load_state_dict(state)
    assert advance(scheduler2, 30) == expected


def test_load_state_dict_errors():
    opt = sgd()
    scheduler = SequentialLR(opt, [ConstantLR(opt), ExponentialLR(opt, gamma=0.5)], milestones=[3])
    state = scheduler.state_dict()
    assert set(state) == {"_milestones", "last_epoch", "_last_lr", "_schedulers"}
    with pytest.raises(ValueError, match="state dict has 1 _schedulers, this scheduler has 2"):
        scheduler.load_state_dict({**state, "_schedulers": state["_schedulers"][:1]})
    with pytest.raises(ValueError, match=r"ExponentialLR state dict: missing entries \['gamma'\]"):
        bad = [state["_schedulers"][0], {k: v for k, v in state["_schedulers"][1].items() if k != "gamma"}]
        scheduler.load_state_dict({**state, "_schedulers": bad})


@pytest.mark.parametrize("make,message", [
    (lambda o: CosineAnnealingWarmRestarts(o, T_0=0), "Expected positive integer T_0, but got 0"),
    (lambda o: CosineAnnealingWarmRestarts(o, T_0=2.5), "Expected positive integer T_0, but got 2.5"),
    (lambda o: CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), "Expected integer T_mult >= 1, but got 0"),
    (lambda o: CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"), "eta_min must be a finite number, got '0'"),
    (lambda o: CosineAnnealingLR(o, T_max=0), "T_max must be a positive number of epochs, got 0"),
    (lambda o: ExponentialLR(o, gamma=0.0), "gamma must be a finite number > 0, got 0.0"),
    (lambda o: ExponentialLR(o, gamma=float("nan")), "gamma must be a finite number > 0, got nan"),
    (lambda o: LinearLR(o, start_factor=0.0), r"start_factor must be a number in \(0, 1\], got 0.0"),
    (lambda o: LinearLR(o, end_factor=1.5), r"end_factor must be a number in \[0, 1\], got 1.5"),
    (lambda o: LinearLR(o, total_iters=0), "total_iters must be a positive integer, got 0"),
    (lambda o: ConstantLR(o, factor=1.2), r"factor must be a number in \[0, 1\], got 1.2"),
    (lambda o: ConstantLR(o, total_iters=-1), "total_iters must be an integer >= 0, got -1"),
    (lambda o: PolynomialLR(o, total_iters=-3), "total_iters must be a positive integer, got -3"),
    (lambda o: PolynomialLR(o, power=-1), "power must be a finite number >= 0, got -1"),
    (lambda o: CyclicLR(o, 0.1, 1.0, step_size_up=0), "step_size_up must be a positive number of batches, got 0"),
    (lambda o: CyclicLR(o, 0.1, 1.0, step_size_down=-2), "step_size_down must be a number of batches >= 0, got -2"),
    (lambda o: CyclicLR(o, 0.1, 1.0, mode="triangle"), "mode must be 'triangular', 'triangular2' or 'exp_range'"),
    (lambda o: CyclicLR(o, 0.1, 1.0, scale_fn=abs, scale_mode="epoch"), "scale_mode must be 'cycle' or 'iterations'"),
    (lambda o: CyclicLR(o, [0.1] * 3, 1.0), "expected 2 values for base_lr, got 3"),
    (lambda o: SequentialLR(o, [], milestones=[]), "SequentialLR expects at least one scheduler"),
    (lambda o: SequentialLR(o, [ExponentialLR(o, 0.5)] * 2, milestones=[]), "one milestone fewer than schedulers"),
    (lambda o: SequentialLR(o, [ExponentialLR(o, 0.5)] * 3, milestones=[5, 2]), "integers in increasing order"),
    (lambda o: SequentialLR(o, [ExponentialLR(o, 0.5), ReduceLROnPlateau(o)], milestones=[2]),
     "does not support ReduceLROnPlateau"),
    (lambda o: SequentialLR(o, [ExponentialLR(sgd(), 0.5)], milestones=[]), "belong to the same optimizer"),
    (lambda o: ChainedScheduler([]), "ChainedScheduler expects at least one scheduler"),
    (lambda o: SequentialLR(o, [ExponentialLR(o, 0.5), ChainedScheduler([ExponentialLR(o, 0.5)])], milestones=[2]),
     "cannot restart the ChainedScheduler at index 1"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make(sgd())


def test_bad_types_and_optimizers():
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        CyclicLR([], 0.1, 1.0)
    with pytest.raises(TypeError, match=r"the scheduler at index 0 \(int\) has no `optimizer` attribute"):
        ChainedScheduler([3])
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        CyclicLR(Adagrad([Parameter(np.ones(2))]), 0.1, 1.0)
    CyclicLR(Adagrad([Parameter(np.ones(2))]), 0.1, 1.0, cycle_momentum=False)  # fine without momentum
