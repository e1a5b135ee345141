"""The schedulers added beside the first ones (cosine, warm restarts, exponential, linear, constant,
polynomial, cyclic, sequential, chained) against torch.optim.lr_scheduler: 50 steps on three
parameter groups with different rates, the momentum CyclicLR cycles, the state dicts, a resume
from minitf's or torch's state dict at step 20, and a resume through `last_epoch`.
Skipped when PyTorch is not installed (tests/optim/test_lr_scheduler_more.py needs no torch).
"""
from __future__ import annotations

import numpy as np
import pytest

from minitf.nn import Parameter
from minitf.optim import SGD, Adam, lr_scheduler

torch = pytest.importorskip("torch")

STEPS, SAVE_AT = 50, 20
LRS = [0.1, 0.05, 0.3]
RTOL = 1e-12


class Scale:
    """A callable object for CyclicLR's scale_fn: its attributes go into the state dict."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, x):
        return self.rate ** x


CASES = {
    "cosine": lambda L, o: L.CosineAnnealingLR(o, T_max=7, eta_min=0.001),  # past T_max: up again
    "cosine_long": lambda L, o: L.CosineAnnealingLR(o, T_max=40),
    "warm_restarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=6, eta_min=0.002),
    "warm_restarts_mult": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01),
    "exponential": lambda L, o: L.ExponentialLR(o, gamma=0.93),
    "linear": lambda L, o: L.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=12),
    "linear_down": lambda L, o: L.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=30),
    "constant": lambda L, o: L.ConstantLR(o, factor=0.4, total_iters=9),
    "polynomial": lambda L, o: L.PolynomialLR(o, total_iters=30, power=2.0),
    "polynomial_root": lambda L, o: L.PolynomialLR(o, total_iters=45, power=0.7),
    "cyclic": lambda L, o: L.CyclicLR(o, base_lr=[0.01, 0.02, 0.005], max_lr=[0.1, 0.2, 0.05], step_size_up=4,
                                      step_size_down=6),
    "cyclic_triangular2": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, mode="triangular2",
                                                  base_momentum=[0.7, 0.8, 0.85], max_momentum=0.95),
    "cyclic_exp_range": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3, mode="exp_range",
                                                gamma=0.97),
    "cyclic_scale_fn": lambda L, o: L.CyclicLR(o, base_lr=0.02, max_lr=0.2, step_size_up=7, step_size_down=2,
                                               scale_fn=Scale(0.98), scale_mode="iterations"),
    "cyclic_scale_fn_cycle": lambda L, o: L.CyclicLR(o, base_lr=0.02, max_lr=0.2, step_size_up=4,
                                                     scale_fn=Scale(0.7), cycle_momentum=False),
    "cyclic_fractional_steps": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2.5,
                                                       step_size_down=4),
    "sequential": lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=5),
                                                  L.CosineAnnealingLR(o, T_max=30, eta_min=0.001)], milestones=[5]),
    "sequential3": lambda L, o: L.SequentialLR(o, [L.ConstantLR(o, factor=0.5, total_iters=10),
                                                   L.ExponentialLR(o, gamma=0.9),
                                                   L.MultiStepLR(o, milestones=[25, 35], gamma=0.5)],
                                               milestones=[4, 20]),
    "sequential_step": lambda L, o: L.SequentialLR(o, [L.StepLR(o, step_size=3, gamma=0.5),
                                                       L.PolynomialLR(o, total_iters=20)], milestones=[11]),
    "sequential_restarts": lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.25, total_iters=4),
                                                           L.CosineAnnealingWarmRestarts(o, T_0=8)],
                                                       milestones=[6]),
    "chained": lambda L, o: L.ChainedScheduler([L.ConstantLR(o, factor=0.1, total_iters=10),
                                                L.ExponentialLR(o, gamma=0.95)]),
    "chained3": lambda L, o: L.ChainedScheduler([L.LinearLR(o, start_factor=0.5, total_iters=8),
                                                 L.CosineAnnealingLR(o, T_max=25),
                                                 L.StepLR(o, step_size=10, gamma=0.5)], optimizer=o),
}
OPTIMIZERS = {"sgd": (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
              "adam": (Adam, torch.optim.Adam, dict(lr=0.1, betas=(0.9, 0.99)))}
ADAM_TOO = ["cyclic", "cyclic_triangular2", "cyclic_exp_range", "exponential", "sequential"]
PARAMS = [(case, "sgd") for case in CASES] + [(case, "adam") for case in ADAM_TOO]


def optimizers(opt="sgd"):
    """A minitf optimizer and its torch twin, three groups with different rates."""
    ours_cls, theirs_cls, settings = OPTIMIZERS[opt]
    values = [np.ones((2, 3)), np.ones(4), np.ones(())]
    ours = ours_cls([{"params": [Parameter(v.copy())], "lr": lr} for v, lr in zip(values, LRS)], **settings)
    theirs = theirs_cls([{"params": [torch.nn.Parameter(torch.tensor(v))], "lr": lr} for v, lr in zip(values, LRS)],
                        **settings)
    return ours, theirs


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def step(scheduler, *args):
    scheduler.optimizer.step()  # no gradients: the parameters stay, torch's order warning is avoided
    scheduler.step(*args)


def assert_same(ours, theirs):
    np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=RTOL, atol=0)
    np.testing.assert_allclose([g["lr"] for g in ours.optimizer.param_groups],
                               [g["lr"] for g in theirs.optimizer.param_groups], rtol=RTOL, atol=0)
    np.testing.assert_allclose(momenta(ours.optimizer), momenta(theirs.optimizer), rtol=RTOL, atol=0)


TORCH_ONLY = {"_is_initial", "_get_lr_called_within_step"}


def assert_states_equal(ours, theirs):
    assert set(ours) == set(theirs) - TORCH_ONLY, set(ours) ^ (set(theirs) - TORCH_ONLY)
    for key, value in ours.items():
        if key == "_schedulers":
            for mine, their in zip(value, theirs[key], strict=True):
                assert_states_equal(mine, their)
        elif isinstance(value, list) and value and isinstance(value[0], float):
            np.testing.assert_allclose(value, theirs[key], rtol=RTOL)
        elif isinstance(value, float):
            assert value == pytest.approx(theirs[key], rel=RTOL), key
        else:
            assert value == theirs[key], key


@pytest.mark.parametrize("case,opt", PARAMS)
def test_matches_torch_for_50_steps(case, opt):
    ours_opt, theirs_opt = optimizers(opt)
    ours, theirs = CASES[case](lr_scheduler, ours_opt), CASES[case](torch.optim.lr_scheduler, theirs_opt)
    assert_same(ours, theirs)
    rates = []
    for _ in range(STEPS):
        step(ours)
        step(theirs)
        assert_same(ours, theirs)
        rates.append(tuple(ours.get_last_lr()))
    assert len(set(rates)) > 1  # the schedule moved
    assert_states_equal(ours.state_dict(), theirs.state_dict())


def test_cyclic_momentum_moves_against_the_rate():
    ours_opt, theirs_opt = optimizers("sgd")
    ours, theirs = (L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, base_momentum=0.8, max_momentum=0.9)
                    for L, o in ((lr_scheduler, ours_opt), (torch.optim.lr_scheduler, theirs_opt)))
    seen = []
    for _ in range(STEPS):
        step(ours)
        step(theirs)
        assert_same(ours, theirs)
        seen.append(momenta(ours_opt)[0])
    assert min(seen) == pytest.approx(0.8) and max(seen) == pytest.approx(0.9)


@pytest.mark.parametrize("source", ["minitf", "torch"])
@pytest.mark.parametrize("case,opt", PARAMS)
def test_resumes_at_step_20(case, opt, source):
    """Saved at step 20 (by minitf or by torch), loaded into fresh ones: the next 30 rates and
    momenta are those of the uninterrupted run."""
    ours_opt, theirs_opt = optimizers(opt)
    ours, theirs = CASES[case](lr_scheduler, ours_opt), CASES[case](torch.optim.lr_scheduler, theirs_opt)
    for _ in range(SAVE_AT):
        step(ours)
        step(theirs)
    saved_opt, saved = (ours_opt, ours) if source == "minitf" else (theirs_opt, theirs)
    fresh_opt = optimizers(opt)[0]
    fresh = CASES[case](lr_scheduler, fresh_opt)
    fresh_opt.load_state_dict(saved_opt.state_dict())
    fresh.load_state_dict(saved.state_dict())
    for _ in range(STEPS - SAVE_AT):
        step(ours)
        step(theirs)
        step(fresh)
        assert_same(fresh, theirs)
        assert fresh.get_last_lr() == ours.get_last_lr()


@pytest.mark.parametrize("schedule", [
    lambda L, o, e: L.CosineAnnealingLR(o, T_max=9, last_epoch=e),
    lambda L, o, e: L.ExponentialLR(o, gamma=0.9, last_epoch=e),
    lambda L, o, e: L.LinearLR(o, start_factor=0.3, total_iters=15, last_epoch=e),
    lambda L, o, e: L.PolynomialLR(o, total_iters=20, power=1.5, last_epoch=e),
    lambda L, o, e: L.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=3, last_epoch=e),
    lambda L, o, e: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4, last_epoch=e),
])
def test_resume_through_last_epoch_as_torch(schedule):
    ours_opt, theirs_opt = optimizers()
    for opt in (ours_opt, theirs_opt):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"] * 2
    ours, theirs = schedule(lr_scheduler, ours_opt, 7), schedule(torch.optim.lr_scheduler, theirs_opt, 7)
    assert ours.last_epoch == theirs.last_epoch
    assert_same(ours, theirs)
    for _ in range(15):
        step(ours)
        step(theirs)
        assert_same(ours, theirs)


@pytest.mark.parametrize("t_mult", [1, 2, 3])
def test_warm_restarts_with_fractional_epochs(t_mult):
    """step(epoch) with fractions of an epoch (per batch), a jump back, and plain step()s."""
    ours_opt, theirs_opt = optimizers()
    ours, theirs = (L.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=t_mult, eta_min=0.001)
                    for L, o in ((lr_scheduler, ours_opt), (torch.optim.lr_scheduler, theirs_opt)))
    epochs = [e + b / 4 for e in range(12) for b in range(4)] + [2.5, 7, 20.25, 0, None, None, 39.0, None]
    for epoch in epochs:
        args = () if epoch is None else (epoch,)
        step(ours, *args)
        step(theirs, *args)
        assert_same(ours, theirs)
        assert ours.last_epoch == theirs.last_epoch and ours.T_i == theirs.T_i
        assert ours.T_cur == pytest.approx(theirs.T_cur, rel=RTOL)
    assert_states_equal(ours.state_dict(), theirs.state_dict())
