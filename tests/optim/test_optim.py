"""minitf.optim: Adam/AdamW against a NumPy reference, in-place updates, state round trips,
gradient clipping and learning-rate schedules.
"""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from minitf import Tensor, backend
from minitf.nn import Parameter
from minitf.optim import Adam, AdamW, BudgetSchedule, CosineSchedule, InverseSqrtSchedule, clip_grad_norm, global_grad_norm
from optim_steps import gradient, make_params, run, set_grads


def reference(start, steps, lr, betas, eps, weight_decay, decoupled):
    """Adam / AdamW written out from the papers (as torch.optim documents them), in float64."""
    b1, b2 = betas
    out = []
    for i, p in enumerate(start):
        p = np.array(p, dtype=np.float64)
        m, v = np.zeros_like(p), np.zeros_like(p)
        for t in range(1, steps + 1):
            g = gradient(p, t, i)
            if decoupled:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize("cls,weight_decay", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.0), (AdamW, 0.1)])
def test_matches_reference(cls, weight_decay, device):
    params = make_params(device=device)
    start = [p.numpy().copy() for p in params]
    opt = cls(params, lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=weight_decay)
    run(opt, params, 10)
    expected = reference(start, 10, 0.05, (0.8, 0.95), 1e-6, weight_decay, decoupled=cls is AdamW)
    for p, e, s in zip(params, expected, start):
        np.testing.assert_allclose(p.numpy(), e, rtol=1e-12, atol=1e-12)
        assert np.abs(e - s).max() > 0.05  # the parameters did move
    assert all(opt.state[p]["step"] == 10 for p in params)


def test_weight_decay_is_coupled_in_adam_and_decoupled_in_adamw():
    """With a zero gradient Adam's L2 term still drives the update, AdamW only shrinks p."""
    results = {}
    for cls in (Adam, AdamW):
        p = Parameter(np.array([2.0, -4.0]))
        opt = cls([p], lr=0.1, weight_decay=0.5)
        p.grad = np.zeros(2)
        opt.step()
        results[cls] = p.numpy()
    np.testing.assert_allclose(results[AdamW], [2.0 * 0.95, -4.0 * 0.95])
    # Adam: g = 0.5 p, so the first step moves each entry by lr against its sign
    np.testing.assert_allclose(results[Adam], [2.0 - 0.1, -4.0 + 0.1], rtol=1e-6)
    assert AdamW([Parameter(np.zeros(1))]).param_groups[0]["weight_decay"] == 0.01
    assert Adam([Parameter(np.zeros(1))]).param_groups[0]["weight_decay"] == 0.0


def test_float32_parameters_stay_float32():
    params = make_params(np.float32)
    start = [p.numpy().astype(np.float64) for p in params]
    opt = AdamW(params, lr=0.05, weight_decay=0.1)
    run(opt, params, 10)
    expected = reference(start, 10, 0.05, (0.9, 0.999), 1e-8, 0.1, decoupled=True)
    for p, e in zip(params, expected):
        assert p.dtype == np.float32
        np.testing.assert_allclose(p.numpy(), e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls,weight_decay", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.1)])
def test_updates_in_place_without_new_arrays(cls, weight_decay, device):
    params = make_params(device=device)
    data = [p.data for p in params]
    opt = cls(params, lr=0.01, weight_decay=weight_decay)
    run(opt, params, 1)
    def buffers():
        return [(id(opt.state[p]["exp_avg"]), id(opt.state[p]["exp_avg_sq"]), id(opt._scratch[p])) for p in params]
    before = buffers()
    assert all(m is not None for m in opt.m)
    run(opt, params, 5, first=2)
    assert buffers() == before
    assert all(p.data is d for p, d in zip(params, data))


@pytest.mark.parametrize("cls,weight_decay", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.1)])
def test_step_allocates_no_memory(cls, weight_decay):
    p = Parameter(np.random.default_rng(0).standard_normal(100_000))  # 800 kB
    p.grad = np.random.default_rng(1).standard_normal(100_000)
    opt = cls([p], lr=0.01, weight_decay=weight_decay)
    opt.step()
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000, f"step() allocated {peak} bytes"


def test_parameters_without_grad_are_skipped():
    params = make_params()
    before = [p.numpy().copy() for p in params]
    opt = Adam(params, lr=0.1)
    params[0].grad = np.ones((3, 4))
    opt.step()
    assert not np.allclose(params[0].numpy(), before[0])
    np.testing.assert_array_equal(params[1].numpy(), before[1])
    np.testing.assert_array_equal(params[2].numpy(), before[2])
    assert opt.m[1] is None and opt.v[2] is None
    # a later step with gradients: the skipped parameters start their moments then
    set_grads(params, 2)
    opt.step()
    assert opt.m[1] is not None and not np.allclose(params[1].numpy(), before[1])
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_state_dict_resumes_exactly(cls, device):
    settings = dict(lr=0.03, betas=(0.85, 0.99), eps=1e-7, weight_decay=0.05)
    straight = make_params(device=device)
    run(cls(straight, **settings), straight, 10)

    first = make_params(device=device)
    opt = cls(first, **settings)
    run(opt, first, 4)
    state = opt.state_dict()
    assert [s["step"] for s in state["state"].values()] == [4, 4, 4]
    assert all(isinstance(s["exp_avg"], np.ndarray) for s in state["state"].values())
    saved_m = [s["exp_avg"].copy() for s in state["state"].values()]
    weights = [p.numpy().copy() for p in first]

    resumed = [Parameter(backend.to_device(w, device)) for w in weights]
    opt2 = cls(resumed, lr=1.0)  # settings come from the state
    opt2.load_state_dict(state)
    group = opt2.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (0.03, (0.85, 0.99), 1e-7, 0.05)
    assert [opt2.state[p]["step"] for p in resumed] == [4, 4, 4]
    run(opt2, resumed, 6, first=5)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip([s["exp_avg"] for s in state["state"].values()], saved_m):  # not written into
        np.testing.assert_array_equal(a, b)


def test_state_dict_with_unstepped_parameters():
    params = make_params()
    opt = Adam(params)
    state = opt.state_dict()
    assert state["state"] == {} and state["param_groups"][0]["params"] == [0, 1, 2]
    opt2 = Adam(make_params())
    opt2.load_state_dict(state)
    assert opt2.m == [None, None, None] and opt2.state == {}


def test_load_state_dict_errors():
    params = make_params()
    opt = Adam(params)
    run(opt, params, 2)
    state = opt.state_dict()
    other = Adam(make_params()[:2])
    with pytest.raises(ValueError, match="group 0 of the optimizer state holds 3 parameters.*has 2"):
        other.load_state_dict(state)
    bad = {"state": {i: dict(s) for i, s in state["state"].items()}, "param_groups": state["param_groups"]}
    bad["state"][2]["exp_avg_sq"] = np.zeros(4)
    fresh = Adam(make_params(), lr=0.5)
    with pytest.raises(ValueError, match=r"'exp_avg_sq' of parameter 2 has shape \(4,\), the parameter has \(\)"):
        fresh.load_state_dict(bad)
    del bad["state"][2]["exp_avg_sq"]
    with pytest.raises(ValueError, match=r"state of parameter 2 lacks \['exp_avg_sq'\]"):
        fresh.load_state_dict(bad)
    with pytest.raises(ValueError, match="holds 2 parameter groups, this optimizer has 1"):
        fresh.load_state_dict({"state": {}, "param_groups": state["param_groups"] * 2})
    with pytest.raises(ValueError, match="entry for parameter 7, which no group lists"):
        fresh.load_state_dict({"state": {7: state["state"][0]}, "param_groups": state["param_groups"]})
    with pytest.raises(ValueError, match="no 'param_groups' entry"):
        fresh.load_state_dict({"state": {}})
    assert fresh.param_groups[0]["lr"] == 0.5 and fresh.m == [None] * 3  # nothing was loaded


@pytest.mark.parametrize("settings,message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"), (dict(betas=(1.0, 0.9)), "beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "beta parameter at index 1: -0.1"), (dict(eps=-1e-8), "Invalid epsilon value"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1")])
def test_bad_settings_raise(settings, message):
    with pytest.raises(ValueError, match=message):
        Adam(make_params(), **settings)
    with pytest.raises(ValueError, match=message):  # in a parameter group too
        Adam([{"params": make_params()[:1]}, {"params": make_params()[1:], **settings}])


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="empty parameter list"):
        AdamW([])
    with pytest.raises(ValueError, match="does not require grad"):
        Adam([Tensor(np.zeros(3))])


# ---- clipping ------------------------------------------------------------------------------------

def grads_of(norm_target=None):
    params = make_params()
    for i, p in enumerate(params):
        p.grad = np.random.default_rng(i).standard_normal(p.shape)
    total = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
    if norm_target is not None:
        for p in params:
            p.grad *= norm_target / total
        total = norm_target
    return params, total


def test_clip_grad_norm_scales_to_max_norm(device):
    params, total = grads_of()
    for p in params:
        p.grad = backend.to_device(p.grad, device)
    original = [backend.to_device(p.grad, "cpu").copy() for p in params]
    grads = [p.grad for p in params]
    returned = clip_grad_norm(params, 1.0)
    assert total > 2
    assert returned == pytest.approx(total, rel=1e-12)
    assert global_grad_norm(params) == pytest.approx(1.0, rel=1e-5)
    for p, g, o in zip(params, grads, original):
        assert p.grad is g  # scaled in place
        np.testing.assert_allclose(backend.to_device(p.grad, "cpu"), o / total, rtol=1e-5)


def test_clip_grad_norm_leaves_small_gradients():
    params, total = grads_of(0.5)
    original = [p.grad.copy() for p in params]
    assert clip_grad_norm(params, 1.0) == pytest.approx(0.5)
    for p, o in zip(params, original):
        np.testing.assert_array_equal(p.grad, o)


def test_clip_grad_norm_skips_params_without_grad():
    params, _ = grads_of()
    params[1].grad = None
    expected = math.sqrt(float((params[0].grad ** 2).sum() + (params[2].grad ** 2).sum()))
    assert clip_grad_norm(params, 0.1) == pytest.approx(expected)
    assert params[1].grad is None
    assert global_grad_norm(params) == pytest.approx(0.1, rel=1e-5)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_grad_norm_does_nothing_on_non_finite(bad):
    params, _ = grads_of()
    params[0].grad[1, 2] = bad
    original = [p.grad.copy() for p in params]
    norm = clip_grad_norm(params, 1.0)
    assert not math.isfinite(norm)
    for p, o in zip(params, original):
        np.testing.assert_array_equal(p.grad, o)


# ---- schedules -----------------------------------------------------------------------------------

def rates(schedule, opt, steps):
    """The learning rate each optimizer step 1..steps runs with."""
    out = []
    for _ in range(steps):
        out.append(opt.lr)
        schedule.step()
    return out


def test_inverse_sqrt_schedule():
    opt = Adam(make_params(), lr=2.0)
    schedule = InverseSqrtSchedule(opt, warmup=4)
    assert schedule.base_lr == 2.0
    lr = rates(schedule, opt, 12)
    expected = [2.0 * s / 4 for s in range(1, 5)] + [2.0 * math.sqrt(4 / s) for s in range(5, 13)]
    np.testing.assert_allclose(lr, expected, rtol=1e-12)
    assert max(lr) == lr[3] == 2.0  # the peak is at step `warmup`
    assert all(a > b for a, b in zip(lr[3:], lr[4:]))
    # an explicit base rate overrides the optimizer's
    other = Adam(make_params(), lr=2.0)
    InverseSqrtSchedule(other, warmup=10, base_lr=1e-3)
    assert other.lr == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="warmup"):
        InverseSqrtSchedule(opt, warmup=0)


def test_cosine_schedule():
    opt = Adam(make_params(), lr=1.0)
    schedule = CosineSchedule(opt, warmup=2, total=10, min_factor=0.1)
    lr = rates(schedule, opt, 13)
    np.testing.assert_allclose(lr[:2], [0.5, 1.0])
    for step in range(3, 11):
        progress = (step - 2) / 8
        np.testing.assert_allclose(lr[step - 1], 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)),
                                   rtol=1e-12)
    np.testing.assert_allclose(lr[4], 0.1 + 0.45 * (1 + math.cos(math.pi * 3 / 8)))
    np.testing.assert_allclose(lr[5], 0.55)  # halfway
    np.testing.assert_allclose(lr[9:], [0.1] * 4)  # min_factor at `total` and after
    assert all(a >= b for a, b in zip(lr[1:], lr[2:]))
    no_warmup = Adam(make_params(), lr=1.0)
    CosineSchedule(no_warmup, warmup=0, total=4)
    assert no_warmup.lr == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    for warmup, total in ((5, 5), (-1, 3)):
        with pytest.raises(ValueError, match="warmup < total"):
            CosineSchedule(opt, warmup=warmup, total=total)


def test_budget_schedule_decays_with_the_budget_spent():
    opt = Adam(make_params(), lr=2.0)
    cosine = BudgetSchedule(opt, warmup=4, shape="cosine")
    assert opt.lr == 0.5  # step 1 of the warm-up, nothing spent
    rates(cosine, opt, 5)  # the next step is the 6th: past the warm-up
    for used in (0.0, 0.25, 0.5, 1.0):
        assert cosine.set_used(used) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * used)), abs=1e-15)
    assert cosine.set_used(1.5) == 0.0 and cosine.used == 1.0  # clipped: the last step may run over the limit
    assert cosine.set_used(-1.0) == 2.0 and cosine.used == 0.0
    linear = BudgetSchedule(Adam(make_params(), lr=2.0), warmup=10, shape="linear")
    rates(linear, linear.optimizer, 1)  # the next step is the 2nd: 2/10 of the warm-up
    assert linear.set_used(0.25) == pytest.approx(2.0 * 0.2 * 0.75)
    with pytest.raises(ValueError, match="warmup"):
        BudgetSchedule(opt, warmup=0)
    with pytest.raises(ValueError, match=r"shape must be one of \['linear', 'cosine'\], got 'step'"):
        BudgetSchedule(opt, warmup=1, shape="step")
    with pytest.raises(ValueError, match="finite fraction, got nan"):
        cosine.set_used(float("nan"))


@pytest.mark.parametrize("make", [lambda o: InverseSqrtSchedule(o, warmup=3),
                                  lambda o: CosineSchedule(o, warmup=2, total=9, min_factor=0.2),
                                  lambda o: BudgetSchedule(o, warmup=3)])
def test_schedule_state_dict_round_trip(make):
    opt = Adam(make_params(), lr=0.5)
    schedule = make(opt)
    rates(schedule, opt, 5)
    state = schedule.state_dict()
    assert state == {"steps": 5, "base_lr": 0.5}
    expected = rates(schedule, opt, 6)

    opt2 = Adam(make_params(), lr=123.0)
    schedule2 = make(opt2)
    schedule2.load_state_dict(state)
    assert schedule2.base_lr == 0.5
    assert rates(schedule2, opt2, 6) == expected


@pytest.mark.parametrize("bad", [-1.0, -1e-9, np.nan, np.inf, -np.inf, True, "1.0"])
def test_clip_grad_norm_rejects_a_negative_or_non_finite_max_norm(bad):
    params, _ = grads_of()
    original = [p.grad.copy() for p in params]
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0"):
        clip_grad_norm(params, bad)
    for p, o in zip(params, original):
        np.testing.assert_array_equal(p.grad, o)


def test_clip_grad_norm_zero_means_no_clipping():
    params, total = grads_of()
    original = [p.grad.copy() for p in params]
    assert total > 2 and clip_grad_norm(params, 0) == pytest.approx(total, rel=1e-12)
    for p, o in zip(params, original):
        np.testing.assert_array_equal(p.grad, o)
