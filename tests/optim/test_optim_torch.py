"""minitf.optim against torch.optim and torch.optim.lr_scheduler, in float64.

Skipped when PyTorch is not installed. Each optimizer runs the same 12 steps as its torch
twin (gradients computed from each side's own parameters, so differences compound); the
parameters, the state dicts and a resume from either side's mid-run state dict must agree.
"""
from __future__ import annotations


import numpy as np
import pytest

from minitf.nn import Parameter
from minitf.optim import SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop, lr_scheduler

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), ()]
STEPS = 12
TOL = dict(rtol=1e-12, atol=1e-13)


def start_values(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def gradient(p: np.ndarray, t: int, i: int) -> np.ndarray:
    noise = np.random.default_rng(100 * t + i).standard_normal(np.shape(p))
    return np.sin(3 * p) + 0.5 * noise


def groups_of(params, group_settings):
    """No group settings: a plain parameter list; else params [0], [1, 2] in two groups."""
    if group_settings is None:
        return params
    return [{"params": params[:1], **group_settings[0]}, {"params": params[1:], **group_settings[1]}]


class Pair:
    """A minitf optimizer and its torch twin on equal float64 parameters."""

    def __init__(self, ours_cls, theirs_cls, settings, group_settings=None, values=None):
        values = start_values() if values is None else values
        self.ours_params = [Parameter(v.copy()) for v in values]
        self.theirs_params = [torch.nn.Parameter(torch.tensor(v.copy())) for v in values]
        self.ours = ours_cls(groups_of(self.ours_params, group_settings), **settings)
        self.theirs = theirs_cls(groups_of(self.theirs_params, group_settings), **settings)

    def step(self, t):
        for i, (a, b) in enumerate(zip(self.ours_params, self.theirs_params)):
            a.grad = gradient(a.data, t, i)
            b.grad = torch.tensor(gradient(b.detach().numpy(), t, i))
        self.ours.step()
        self.theirs.step()

    def assert_close(self):
        for a, b in zip(self.ours_params, self.theirs_params):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **TOL)


def assert_state_dicts_equal(ours, theirs):
    assert ours["state"].keys() == theirs["state"].keys()
    for i, entry in theirs["state"].items():
        assert ours["state"][i].keys() == entry.keys(), i
        for key, value in entry.items():
            if key == "step":
                assert ours["state"][i][key] == float(value)
            else:
                np.testing.assert_allclose(ours["state"][i][key], value.numpy(), **TOL)
    assert len(ours["param_groups"]) == len(theirs["param_groups"])
    for mine, their in zip(ours["param_groups"], theirs["param_groups"]):
        assert set(mine) <= set(their), set(mine) - set(their)
        for key, value in mine.items():
            assert value == their[key], key


OPTIMIZERS = [
    (Adam, torch.optim.Adam, dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6), None),
    (Adam, torch.optim.Adam, dict(lr=0.05, weight_decay=0.1), None),
    (Adam, torch.optim.Adam, dict(lr=0.05, weight_decay=0.1, maximize=True), None),
    (Adam, torch.optim.Adam, dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), None),
    (Adam, torch.optim.Adam, dict(lr=0.05), [dict(lr=0.1, betas=(0.7, 0.9)), dict(weight_decay=0.2)]),
    (AdamW, torch.optim.AdamW, dict(lr=0.05, weight_decay=0.1), None),
    (AdamW, torch.optim.AdamW, dict(lr=0.05, maximize=True), [dict(lr=0.01), dict(weight_decay=0.3)]),
    (SGD, torch.optim.SGD, dict(lr=0.1), None),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9), None),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01), None),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05), None),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.5, maximize=True), None),
    (SGD, torch.optim.SGD, dict(lr=0.05), [dict(lr=0.2, momentum=0.9), dict(nesterov=True, momentum=0.7)]),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01), None),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, weight_decay=0.1, eps=1e-4), None),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, centered=True), None),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.5), None),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.05,
                                        maximize=True), None),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01), [dict(centered=True, lr=0.03), dict(momentum=0.9)]),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1), None),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.5,
                                        eps=1e-6), None),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1, maximize=True), [dict(lr=0.3), dict(lr_decay=0.05)]),
    (Adadelta, torch.optim.Adadelta, dict(), None),
    (Adadelta, torch.optim.Adadelta, dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1), None),
    (Adadelta, torch.optim.Adadelta, dict(maximize=True), [dict(lr=2.0), dict(rho=0.5)]),
]
IDS = [f"{o.__name__}-{'-'.join(f'{k}={v}' for k, v in s.items())}{'-groups' if g else ''}"
       for o, _, s, g in OPTIMIZERS]


@pytest.mark.parametrize("ours,theirs,settings,groups", OPTIMIZERS, ids=IDS)
def test_optimizer_matches_torch(ours, theirs, settings, groups):
    pair = Pair(ours, theirs, settings, groups)
    assert_state_dicts_equal(pair.ours.state_dict(), pair.theirs.state_dict())  # before any step
    for t in range(1, STEPS + 1):
        pair.step(t)
        pair.assert_close()
    assert_state_dicts_equal(pair.ours.state_dict(), pair.theirs.state_dict())
    moved = max(np.abs(p.numpy() - v).max() for p, v in zip(pair.ours_params, start_values()))
    assert moved > 1e-2


@pytest.mark.parametrize("ours,theirs,settings,groups", OPTIMIZERS, ids=IDS)
def test_resume_mid_run_matches_torch(ours, theirs, settings, groups):
    """Resume after 5 steps from our own state dict and from torch's: both continue as torch."""
    pair = Pair(ours, theirs, settings, groups)
    for t in range(1, 6):
        pair.step(t)
    now = [p.numpy().copy() for p in pair.ours_params]
    fresh = dict(lr=123.0)  # the loaded state must override the constructor's settings
    from_ours = Pair(ours, theirs, {**settings, **fresh}, groups, values=now)
    from_ours.ours.load_state_dict(pair.ours.state_dict())
    from_theirs = Pair(ours, theirs, {**settings, **fresh}, groups, values=now)
    from_theirs.ours.load_state_dict(pair.theirs.state_dict())  # torch tensors and float steps
    for t in range(6, STEPS + 1):
        pair.step(t)
        for resumed in (from_ours, from_theirs):
            for i, p in enumerate(resumed.ours_params):
                p.grad = gradient(p.data, t, i)
            resumed.ours.step()
    for resumed in (from_ours, from_theirs):
        for a, b in zip(resumed.ours_params, pair.theirs_params):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **TOL)


# ---- schedules ---------------------------------------------------------------------------------

class Decay:
    """A callable object: LambdaLR saves its attributes (not code) in the state dict."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, epoch):
        return self.rate ** epoch


SCHEDULES = [
    ("LambdaLR", "sgd", None, dict(lr_lambda=lambda e: 1 / (1 + 0.3 * e))),
    ("LambdaLR", "adam", "two", dict(lr_lambda=[lambda e: 0.9 ** e, Decay(0.8)])),
    ("StepLR", "sgd", None, dict(step_size=3, gamma=0.5)),
    ("StepLR", "adam", "two", dict(step_size=4)),
    ("MultiStepLR", "sgd", None, dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("MultiStepLR", "adam", "two", dict(milestones=[7, 3])),
    ("OneCycleLR", "sgd", None, dict(max_lr=0.5, total_steps=16)),
    ("OneCycleLR", "sgd", None, dict(max_lr=0.5, total_steps=16, anneal_strategy="linear", pct_start=0.25)),
    ("OneCycleLR", "sgd", None, dict(max_lr=0.5, epochs=4, steps_per_epoch=4, three_phase=True)),
    ("OneCycleLR", "adam", None, dict(max_lr=0.05, total_steps=13, base_momentum=0.8, max_momentum=0.9)),
    ("OneCycleLR", "adam", "two", dict(max_lr=[0.3, 0.1], total_steps=14, three_phase=True,
                                       anneal_strategy="linear")),
    ("OneCycleLR", "sgd", "two", dict(max_lr=0.4, total_steps=13, cycle_momentum=False, div_factor=10.0,
                                      final_div_factor=100.0)),
]
OPTIMIZER_OF = {"sgd": (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
                "adam": (Adam, torch.optim.Adam, dict(lr=0.01))}
GROUPS_OF = {None: None, "two": [dict(lr=0.2), dict(lr=0.05)]}


def make_schedules(name, opt, groups, kwargs, values=None):
    pair = Pair(*OPTIMIZER_OF[opt], GROUPS_OF[groups], values=values)
    ours = getattr(lr_scheduler, name)(pair.ours, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(pair.theirs, **kwargs)
    return pair, ours, theirs


def assert_groups_equal(pair):
    for mine, their in zip(pair.ours.param_groups, pair.theirs.param_groups):
        for key in ("lr", "momentum", "betas", "initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            if key in mine or key in their:
                assert mine[key] == pytest.approx(their[key], rel=1e-12, abs=1e-15), key


def assert_scheduler_states_equal(ours, theirs):
    assert set(ours) <= set(theirs), set(ours) - set(theirs)
    for key, value in ours.items():
        if isinstance(value, list) and value and isinstance(value[0], float):
            np.testing.assert_allclose(value, theirs[key], rtol=1e-12)
        else:
            assert value == theirs[key], key


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name,opt,groups,kwargs", SCHEDULES, ids=[f"{s[0]}-{i}" for i, s in enumerate(SCHEDULES)])
def test_scheduler_matches_torch(name, opt, groups, kwargs):
    pair, ours, theirs = make_schedules(name, opt, groups, kwargs)
    rates = []
    for t in range(1, STEPS + 1):
        assert_groups_equal(pair)
        pair.step(t)
        ours.step()
        theirs.step()
        assert ours.last_epoch == theirs.last_epoch == t
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
        rates.append(ours.get_last_lr())
        pair.assert_close()
    assert len({tuple(r) for r in rates}) > 2  # the rate did change
    assert_scheduler_states_equal(ours.state_dict(), theirs.state_dict())
    assert_state_dicts_equal(pair.ours.state_dict(), pair.theirs.state_dict())


def resume(pair, make, ours_source, theirs_source):
    """Two copies rebuilt from the current parameters, optimizer and scheduler state loaded from
    ours (first) and from torch's (second), as a training script resumes."""
    copies = []
    for source_opt, source_sched in ((pair.ours, ours_source), (pair.theirs, theirs_source)):
        again, sched = make([p.numpy().copy() for p in pair.ours_params])
        again.ours.load_state_dict(source_opt.state_dict())
        sched.load_state_dict(source_sched.state_dict())
        copies.append((again, sched))
    return copies


def step_copies(copies, t, expected_pair, expected_rates, metric=()):
    for again, sched in copies:
        for i, p in enumerate(again.ours_params):
            p.grad = gradient(p.data, t, i)
        again.ours.step()
        sched.step(*metric)
        np.testing.assert_allclose(sched.get_last_lr(), expected_rates, rtol=1e-12)
        again.theirs = expected_pair.theirs  # compare the groups and parameters with torch's run
        again.theirs_params = expected_pair.theirs_params
        assert_groups_equal(again)
        again.assert_close()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name,opt,groups,kwargs", SCHEDULES, ids=[f"{s[0]}-{i}" for i, s in enumerate(SCHEDULES)])
def test_scheduler_resumes_mid_run(name, opt, groups, kwargs):
    """Resumed after 5 steps from our state dicts or torch's, the run continues as torch's."""
    pair, ours, theirs = make_schedules(name, opt, groups, kwargs)
    for t in range(1, 6):
        pair.step(t)
        ours.step()
        theirs.step()

    def make(values):
        again, sched, _ = make_schedules(name, opt, groups, kwargs, values=values)
        return again, sched

    copies = resume(pair, make, ours, theirs)
    for t in range(6, STEPS + 1):
        pair.step(t)
        theirs.step()
        step_copies(copies, t, pair, theirs.get_last_lr())


REDUCE = [dict(), dict(mode="max", factor=0.5, patience=1), dict(patience=1, cooldown=2, threshold=0.1),
          dict(patience=0, threshold_mode="abs", threshold=0.5, min_lr=0.02, factor=0.5),
          dict(mode="max", threshold_mode="abs", patience=2, min_lr=[0.05, 0.001], eps=1e-3)]
METRICS = [5.0, 4.0, 4.0, 3.999, 4.5, 3.0, 3.0, 3.0, 6.0, 2.0, 2.0, 2.0, 2.5, 2.5, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("kwargs", REDUCE)
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    kwargs = {"patience": 2, **kwargs}
    groups = [dict(lr=0.2), dict(lr=0.05)]

    def make(values=None):
        pair = Pair(SGD, torch.optim.SGD, dict(lr=0.1), groups, values=values)
        return pair, lr_scheduler.ReduceLROnPlateau(pair.ours, **kwargs)

    pair, ours = make()
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(pair.theirs, **kwargs)
    rates, copies = [], []
    for t, metric in enumerate(METRICS, 1):
        pair.step(t)
        ours.step(metric)
        theirs.step(metric)
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
        step_copies(copies, t, pair, theirs.get_last_lr(), (metric,))
        rates.append(ours.get_last_lr())
        pair.assert_close()
        if t == 6:
            copies = resume(pair, make, ours, theirs)
    assert len({tuple(r) for r in rates}) > 1
    assert_scheduler_states_equal(ours.state_dict(), theirs.state_dict())
