"""minitf.optim's SGD, RMSprop, Adagrad, Adadelta and the Optimizer base, without torch:
first steps worked out by hand, 10 steps against NumPy references written from the formulas,
parameter groups, exact resumes (also through JSON) and errors. (tests/optim/test_optim_torch.py
compares everything with torch.optim.)
"""
from __future__ import annotations

import inspect
import json
import math
import re

import numpy as np
import pytest

from minitf import Tensor, backend
from minitf.nn import Parameter
from minitf.optim import SGD, Adadelta, Adagrad, Adam, AdamW, Optimizer, RMSprop
from fake_gpu import LAUNCHES

SHAPES = [(3, 4), (5,), ()]


def make_params(device="cpu", seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(backend.to_device(rng.standard_normal(s), device)) for s in SHAPES]


def gradient(p, t, i):
    noise = np.random.default_rng(100 * t + i).standard_normal(np.shape(p))
    return np.sin(3 * p) + 0.5 * noise


def run(opt, params, steps, first=1):
    for t in range(first, first + steps):
        for i, p in enumerate(params):
            xp = backend.get_array_module(p.data)
            p.grad = xp.asarray(gradient(backend.to_device(p.data, "cpu"), t, i))
        opt.step()


def one_step(cls, p0, g, steps=1, **settings):
    """The value of a 1-element parameter after `steps` steps with the constant gradient g."""
    p = Parameter(np.array([p0]))
    opt = cls([p], **settings)
    for _ in range(steps):
        p.grad = np.array([g])
        opt.step()
    return float(p.numpy()[0])


# ---- first steps by hand ---------------------------------------------------------------------

def test_sgd_steps_by_hand():
    assert one_step(SGD, 1.0, 0.5, lr=0.1) == pytest.approx(1.0 - 0.1 * 0.5)
    assert one_step(SGD, 1.0, 0.5, lr=0.1, weight_decay=0.2) == pytest.approx(1.0 - 0.1 * (0.5 + 0.2))
    assert one_step(SGD, 1.0, 0.5, lr=0.1, maximize=True) == pytest.approx(1.0 + 0.05)
    # momentum: b1 = g = 0.5, p1 = 0.95; b2 = 0.9 * 0.5 + (1 - 0.25) * 0.5 = 0.825, p2 = 0.95 - 0.0825
    assert one_step(SGD, 1.0, 0.5, 2, lr=0.1, momentum=0.9, dampening=0.25) == pytest.approx(0.95 - 0.0825)
    # nesterov: step with g + 0.9 b; b1 = 0.5 -> p1 = 1 - 0.1 * 0.95; b2 = 0.95 -> p2 = p1 - 0.1 * 1.355
    assert one_step(SGD, 1.0, 0.5, 2, lr=0.1, momentum=0.9, nesterov=True) == pytest.approx(0.905 - 0.1355)


def test_rmsprop_steps_by_hand():
    # s = 0.01 g^2 = 0.0025 (alpha 0.99), step = lr g / (sqrt(s) + eps) = 0.01 * 0.5 / 0.05 = 0.1
    assert one_step(RMSprop, 1.0, 0.5, lr=0.01, eps=0.0) == pytest.approx(0.9)
    # centered: a = 0.01 g = 0.005, d = sqrt(0.0025 - 0.000025)
    assert one_step(RMSprop, 1.0, 0.5, lr=0.01, eps=0.0, centered=True) == pytest.approx(
        1.0 - 0.005 / math.sqrt(0.0025 - 0.005 ** 2))
    # momentum 0.5: b1 = g / d = 10, p1 = 0.9; s2 = 0.99 * 0.0025 + 0.0025, b2 = 5 + 0.5 / sqrt(s2)
    s2 = 0.99 * 0.0025 + 0.0025
    assert one_step(RMSprop, 1.0, 0.5, 2, lr=0.01, eps=0.0, momentum=0.5) == pytest.approx(
        0.9 - 0.01 * (5 + 0.5 / math.sqrt(s2)))


def test_adagrad_steps_by_hand():
    # sum = 0.1 + g^2 = 0.35, p -= lr g / sqrt(0.35)
    assert one_step(Adagrad, 1.0, 0.5, lr=0.1, eps=0.0, initial_accumulator_value=0.1) == pytest.approx(
        1.0 - 0.05 / math.sqrt(0.35))
    # step 2 with lr_decay 0.5: clr = lr / 1.5, sum = 0.5
    p1 = 1.0 - 0.05 / math.sqrt(0.25)
    assert one_step(Adagrad, 1.0, 0.5, 2, lr=0.1, eps=0.0, lr_decay=0.5) == pytest.approx(
        p1 - 0.1 / 1.5 * 0.5 / math.sqrt(0.5))


def test_adadelta_steps_by_hand():
    # s = 0.1 g^2 = 0.025, d = sqrt(0 + eps) / sqrt(s + eps) * g, p -= lr d (rho 0.9)
    eps = 1e-6
    d = math.sqrt(eps) / math.sqrt(0.025 + eps) * 0.5
    assert one_step(Adadelta, 1.0, 0.5, eps=eps) == pytest.approx(1.0 - d, rel=1e-12)
    # step 2: u = 0.1 d^2, s = 0.9 * 0.025 + 0.025
    d2 = math.sqrt(0.1 * d * d + eps) / math.sqrt(0.0475 + eps) * 0.5
    assert one_step(Adadelta, 1.0, 0.5, 2, lr=0.5, eps=eps) == pytest.approx(1.0 - 0.5 * d - 0.5 * d2, rel=1e-12)


# ---- 10 steps against references written from the formulas -----------------------------------

def reference(name, start, steps, lr, wd=0.0, maximize=False, **h):
    out = []
    for i, p in enumerate(start):
        p = np.array(p, dtype=np.float64)
        a, b, c = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p) + h.get("initial_accumulator_value", 0.0)
        for t in range(1, steps + 1):
            g = gradient(p, t, i) * (-1 if maximize else 1) + wd * p
            if name == "sgd":
                b = g if t == 1 else h["momentum"] * b + (1 - h.get("dampening", 0.0)) * g
                p = p - lr * ((g + h["momentum"] * b) if h.get("nesterov") else b)
            elif name == "rmsprop":
                alpha = h["alpha"]
                a = alpha * a + (1 - alpha) * g * g
                c = c + (1 - alpha) * (g - c)
                denom = np.sqrt(a - c * c if h.get("centered") else a) + h["eps"]
                b = h.get("momentum", 0.0) * b + g / denom
                p = p - lr * (b if h.get("momentum") else g / denom)
            elif name == "adagrad":
                c = c + g * g
                p = p - lr / (1 + (t - 1) * h["lr_decay"]) * g / (np.sqrt(c) + h["eps"])
            else:  # adadelta
                rho, eps = h["rho"], h["eps"]
                a = rho * a + (1 - rho) * g * g
                d = np.sqrt(b + eps) / np.sqrt(a + eps) * g
                b = rho * b + (1 - rho) * d * d
                p = p - lr * d
        out.append(p)
    return out


CASES = [
    (SGD, "sgd", dict(lr=0.1, momentum=0.9)),
    (SGD, "sgd", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    (SGD, "sgd", dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.1, maximize=True)),
    (RMSprop, "rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-6)),
    (RMSprop, "rmsprop", dict(lr=0.01, alpha=0.95, eps=1e-6, centered=True, momentum=0.5, weight_decay=0.1)),
    (Adagrad, "adagrad", dict(lr=0.1, lr_decay=0.05, eps=1e-10, initial_accumulator_value=0.2)),
    (Adagrad, "adagrad", dict(lr=0.1, lr_decay=0.0, eps=1e-3, weight_decay=0.1, maximize=True)),
    (Adadelta, "adadelta", dict(lr=1.0, rho=0.9, eps=1e-6)),
    (Adadelta, "adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1)),
]


@pytest.mark.parametrize("cls,name,settings", CASES)
def test_matches_reference(cls, name, settings, device):
    params = make_params(device)
    start = [p.numpy().copy() for p in params]
    run(cls(params, **settings), params, 10)
    h = dict(settings)
    lr, wd, maximize = h.pop("lr"), h.pop("weight_decay", 0.0), h.pop("maximize", False)
    expected = reference(name, start, 10, lr, wd, maximize, **h)
    for p, e, s in zip(params, expected, start):
        np.testing.assert_allclose(p.numpy(), e, rtol=1e-12, atol=1e-13)
    assert max(np.abs(e - s).max() for e, s in zip(expected, start)) > 0.01


@pytest.mark.parametrize("cls,settings", [(SGD, dict(momentum=0.9)), (RMSprop, dict(centered=True)),
                                          (Adagrad, {}), (Adadelta, {}), (Adam, {})])
def test_param_groups_step_with_their_own_settings(cls, settings):
    """Two groups behave as two optimizers, each with its own lr and settings."""
    params, alone = make_params(), make_params()
    opt = cls([{"params": params[:1], "lr": 0.3}, {"params": params[1:], "weight_decay": 0.1}], lr=0.02, **settings)
    assert opt.param_groups[0]["lr"] == 0.3 and opt.param_groups[0]["weight_decay"] == 0.0
    assert opt.param_groups[1]["lr"] == 0.02 and opt.param_groups[1]["weight_decay"] == 0.1
    first, second = cls(alone[:1], lr=0.3, **settings), cls(alone[1:], lr=0.02, weight_decay=0.1, **settings)
    for t in range(1, 6):
        for ps, opts in ((params, [opt]), (alone, [first, second])):
            for i, p in enumerate(ps):
                p.grad = gradient(p.data, t, i)
            for o in opts:
                o.step()
    for a, b in zip(params, alone):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="different learning rates"):
        opt.lr


def test_add_param_group_and_defaults():
    params = make_params()
    opt = SGD(params[:2], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": params[2], "lr": 0.5})
    assert [len(g["params"]) for g in opt.param_groups] == [2, 1]
    assert opt.param_groups[1] == {"params": [params[2]], "lr": 0.5, "momentum": 0.9, "dampening": 0.0,
                                   "weight_decay": 0.0, "nesterov": False, "maximize": False}
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})
    with pytest.raises(ValueError, match="Invalid momentum value: -1"):
        opt.add_param_group({"params": [Parameter(np.zeros(2))], "momentum": -1})
    with pytest.raises(TypeError, match="must be a dict, got list"):
        opt.add_param_group([Parameter(np.zeros(2))])
    with pytest.raises(ValueError, match="needs a 'params' entry"):
        opt.add_param_group({"lr": 0.1})
    assert len(opt.param_groups) == 2  # the failed additions left nothing behind
    opt.lr = 0.01  # the single-rate shorthand sets every group
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01] and opt.lr == 0.01


def test_zero_grad():
    params = make_params()
    opt = SGD(params, lr=0.1)
    for p in params:
        p.grad = np.ones(p.shape)
    grads = [p.grad for p in params]
    opt.zero_grad(set_to_none=False)
    for p, g in zip(params, grads):
        assert p.grad is g and not np.any(p.grad)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_skips_parameters_without_gradient_and_step_counts_are_per_parameter():
    params = make_params()
    opt = RMSprop(params, lr=0.1)
    before = params[1].numpy().copy()
    params[0].grad = np.ones((3, 4))
    opt.step()
    np.testing.assert_array_equal(params[1].numpy(), before)
    assert list(opt.state) == [params[0]] and opt.state[params[0]]["step"] == 1
    run(opt, params, 2)
    assert [opt.state[p]["step"] for p in params] == [3, 2, 2]


def test_step_returns_the_closure_loss():
    params = make_params()
    opt = SGD(params, lr=0.1)
    assert opt.step(lambda: 1.5) == 1.5 and opt.step() is None


# ---- state dicts -----------------------------------------------------------------------------

def to_json_and_back(state):
    """A state dict through JSON: arrays become lists, integer keys strings, tuples lists."""
    return json.loads(json.dumps(state, default=lambda a: a.tolist()))


ALL = [(SGD, dict(lr=0.1, momentum=0.9, nesterov=True)), (RMSprop, dict(centered=True, momentum=0.3)),
       (Adagrad, dict(lr_decay=0.1)), (Adadelta, dict(weight_decay=0.01)), (Adam, dict(weight_decay=0.1)),
       (AdamW, dict(betas=(0.8, 0.9)))]


@pytest.mark.parametrize("through_json", [False, True])
@pytest.mark.parametrize("cls,settings", ALL)
def test_state_dict_resumes_exactly(cls, settings, through_json, device):
    groups = lambda ps: [{"params": ps[:1], "lr": 0.05}, {"params": ps[1:]}]  # noqa: E731
    straight = make_params(device)
    run(cls(groups(straight), **settings), straight, 10)

    first = make_params(device)
    opt = cls(groups(first), **settings)
    run(opt, first, 4)
    state = opt.state_dict()
    assert [g["params"] for g in state["param_groups"]] == [[0], [1, 2]]
    assert all(isinstance(v, np.ndarray) for s in state["state"].values() for k, v in s.items() if k != "step")
    saved = to_json_and_back(state) if through_json else state
    resumed = [Parameter(backend.to_device(p.numpy().copy(), device)) for p in first]
    opt2 = cls(groups(resumed), lr=3.0)  # the settings come from the state
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.05 and opt2.param_groups[1]["lr"] == opt.param_groups[1]["lr"]
    assert all(type(a) is type(b) for a, b in zip(opt2.param_groups[1].values(), opt.param_groups[1].values()))
    run(opt2, resumed, 6, first=5)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert all(backend.is_cupy_array(v) == (device != "cpu") for s in opt2.state.values()
               for k, v in s.items() if k != "step")


def test_load_state_dict_checks_everything_first():
    params = make_params()
    opt = RMSprop(params, centered=True)
    run(opt, params, 2)
    state = opt.state_dict()
    plain = RMSprop(make_params(), lr=0.5)  # not centered: the loaded state must have grad_avg
    missing = {"state": {i: {k: v for k, v in s.items() if k != "grad_avg"} for i, s in state["state"].items()},
               "param_groups": state["param_groups"]}
    with pytest.raises(ValueError, match=r"state of parameter 0 lacks \['grad_avg'\]"):
        plain.load_state_dict(missing)
    bad = {"state": state["state"], "param_groups": [dict(state["param_groups"][0], alpha=-0.5)]}
    with pytest.raises(ValueError, match="Invalid alpha value: -0.5"):
        plain.load_state_dict(bad)
    assert plain.param_groups[0]["lr"] == 0.5 and not plain.param_groups[0]["centered"] and plain.state == {}


WRONG_TYPES = [("eps", "1e-8", "a number"), ("lr", None, "a number"), ("maximize", "no", "true or false"),
               ("betas", (0.9, "0.999"), "a tuple of 2 numbers")]


@pytest.mark.parametrize("cls, key, value, kind", [
    (cls, *case) for cls in (Adam, AdamW, SGD, RMSprop, Adagrad, Adadelta) for case in WRONG_TYPES
    if case[0] in inspect.signature(cls).parameters])
def test_a_hyperparameter_of_the_wrong_type_is_named(cls, key, value, kind):
    opt = cls(make_params(), lr=0.1)
    saved = opt.state_dict()
    saved["param_groups"][0][key] = value
    message = f"{key} must be {kind}, got {type(value).__name__} {value!r}"
    with pytest.raises(ValueError, match=re.escape(f"optimizer.param_groups[0]: {message}")):
        opt.load_state_dict(saved)
    with pytest.raises(TypeError, match=re.escape(message)):
        cls(make_params(), **{"lr": 0.1, key: value})
    with pytest.raises(TypeError, match=re.escape(message)):
        opt.add_param_group({"params": make_params(seed=1), key: value})


def test_adagrad_state_exists_from_construction():
    params = make_params()
    opt = Adagrad(params, initial_accumulator_value=0.3)
    state = opt.state_dict()["state"]
    assert sorted(state) == [0, 1, 2] and all(s["step"] == 0 for s in state.values())
    np.testing.assert_array_equal(state[1]["sum"], np.full(5, 0.3))


# ---- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,settings,message", [
    (SGD, dict(lr=-1), "Invalid learning rate: -1"), (SGD, dict(momentum=-0.1), "Invalid momentum value: -0.1"),
    (SGD, dict(weight_decay=-1), "Invalid weight_decay value: -1"),
    (SGD, dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "Nesterov momentum requires"),
    (RMSprop, dict(alpha=-0.5), "Invalid alpha value: -0.5"), (RMSprop, dict(eps=-1), "Invalid epsilon value: -1"),
    (RMSprop, dict(momentum=-1), "Invalid momentum value: -1"),
    (Adagrad, dict(lr_decay=-1), "Invalid lr_decay value: -1"),
    (Adagrad, dict(initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
    (Adadelta, dict(rho=1.5), "Invalid rho value: 1.5"), (Adadelta, dict(lr=-2), "Invalid learning rate: -2"),
])
def test_bad_settings_raise(cls, settings, message):
    with pytest.raises(ValueError, match=message):
        cls(make_params(), **settings)


@pytest.mark.parametrize("cls", [SGD, RMSprop, Adagrad, Adadelta])
def test_bad_parameters_raise(cls):
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([])
    with pytest.raises(ValueError, match="does not require grad"):
        cls([Tensor(np.zeros(3))])
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, got a Tensor of shape"):
        cls(Parameter(np.zeros(3)))
    with pytest.raises(TypeError, match="can only optimize Tensors, got ndarray"):
        cls([np.zeros(3)])
    p = Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="same parameter more than once"):
        cls([p, p])


def test_base_class_needs_an_update():
    opt = Optimizer(make_params(), {"lr": 0.1})
    opt.param_groups[0]["params"][0].grad = np.zeros((3, 4))
    with pytest.raises(NotImplementedError):
        opt.step()


def test_adam_fused_cuda_path_groups_parameters_by_step_count(fake_gpu):  # noqa: F811
    """On (stand-in) CuPy arrays Adam launches one fused kernel per group and step count; a
    parameter that started later keeps its own bias correction, as on the CPU."""
    start = [p.numpy() for p in make_params()]

    def trajectory(to_device):
        params = [Parameter(to_device(a.copy())) for a in start]
        opt = Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.05}], lr=0.01, weight_decay=0.1)
        for t in range(1, 5):
            for i, p in enumerate(params):
                p.grad = None if (t == 1 and i == 1) else to_device(gradient(np.asarray(p.data), t, i))
            opt.step()
        assert [opt.state[p]["step"] for p in params] == [4, 3, 4]
        return [np.asarray(p.data) for p in params]

    cpu = trajectory(lambda a: a)
    LAUNCHES.clear()
    gpu = trajectory(fake_gpu)
    # step 1: groups 0 and 1; steps 2-4: group 0 has two step counts, group 1 one
    assert LAUNCHES == ["adam_step_multi"] * (2 + 3 * 3)
    for a, b in zip(gpu, cpu):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
