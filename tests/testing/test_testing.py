"""minitf.testing: the strategies produce what they claim, assert_grad_close checks user ops, and the
op-test harness (OpCase, OpTest) passes a correct op and catches broken ones."""
import textwrap

import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

import minitf as mt
from minitf import Tensor, testing
from minitf.testing import (OpCase, OpTest, arrays, as_tensors, assert_grad_close, axes, broadcastable_shapes,
                            distinct_values, masks, shapes)


@given(st.data(), st.integers(0, 3), st.integers(0, 3), st.integers(1, 4), st.integers(0, 3))
def test_shapes_stay_in_bounds(data, min_dims, extra_dims, min_side, extra_side):
    max_dims, max_side = min_dims + extra_dims, min_side + extra_side
    shape = data.draw(shapes(min_dims, max_dims, min_side, max_side))
    assert isinstance(shape, tuple) and min_dims <= len(shape) <= max_dims
    assert all(min_side <= n <= max_side for n in shape)


@given(shapes())
def test_default_shapes_follow_the_documented_limits(shape):
    assert len(shape) <= testing.MAX_DIMS == 4
    assert all(1 <= n <= testing.MAX_SIDE == 5 for n in shape)


@given(st.data(), st.integers(1, 4))
def test_broadcastable_shapes_really_broadcast(data, num_shapes):
    result = data.draw(broadcastable_shapes(num_shapes))
    assert len(result) == num_shapes
    full = np.broadcast_shapes(*result)
    for shape in result:
        assert len(shape) <= testing.MAX_DIMS and all(1 <= n <= testing.MAX_SIDE for n in shape)
        np.broadcast_to(np.zeros(shape), full)


def test_broadcastable_shapes_exercise_broadcasting():
    """They are not all equal: some pairs differ in rank, some stretch a size-1 axis."""
    find(broadcastable_shapes(2), lambda s: len(s[0]) != len(s[1]))
    find(broadcastable_shapes(2), lambda s: any(a == 1 < b for a, b in zip(s[0][::-1], s[1][::-1])))


@given(st.data(), st.floats(-10, 0), st.floats(0.1, 10), st.sampled_from([np.float32, np.float64]))
def test_arrays_have_the_claimed_shape_dtype_and_bounds(data, low, width, dtype):
    shape = data.draw(shapes())
    high = low + width
    a = data.draw(arrays(shape, low, high, dtype=dtype))
    assert a.shape == shape and a.dtype == dtype
    assert np.isfinite(a).all()
    assert ((a >= dtype(low)) & (a <= dtype(high))).all()
    assert data.draw(arrays(shapes())).dtype == np.float64


@given(st.data())
def test_axes_are_valid_for_the_rank(data):
    shape = data.draw(shapes())
    axis = data.draw(axes(len(shape)))
    np.sum(np.zeros(shape), axis=axis)  # NumPy accepts it: in range, no repeats
    if isinstance(axis, tuple):
        assert len({a % len(shape) for a in axis}) == len(axis)


@pytest.mark.parametrize("predicate", [
    lambda a: a is None,
    lambda a: isinstance(a, int) and a < 0,
    lambda a: isinstance(a, tuple) and len(a) > 1 and any(x < 0 for x in a),
])
def test_axes_cover_none_negative_and_tuples(predicate):
    find(axes(3), predicate)


@given(axes(2, allow_none=False, allow_tuple=False))
def test_axes_can_be_restricted_to_ints(axis):
    assert axis in (-2, -1, 0, 1)


def test_axes_of_a_scalar_are_none():
    assert find(axes(0), lambda a: True) is None


@given(st.data())
def test_masks_are_boolean(data):
    shape = data.draw(shapes())
    m = data.draw(masks(shape))
    assert m.dtype == np.bool_ and m.shape == shape


@given(st.data(), st.sampled_from([0.1, 0.5]))
def test_distinct_values_are_gap_apart(data, gap):
    shape = data.draw(shapes())
    x = data.draw(distinct_values(shape, gap))
    assert x.dtype == np.float64 and x.shape == shape
    np.testing.assert_allclose(np.diff(np.sort(x, axis=None)), gap)


def test_float_arrays_are_bounded_float64_and_sometimes_transposed_views():
    x = find(testing.float_arrays((2, 3), -1.0, 1.0), lambda a: not a.flags.c_contiguous)
    assert x.shape == (2, 3) and x.dtype == np.float64 and (np.abs(x) <= 1).all()
    find(testing.float_arrays((2, 3)), lambda a: a.flags.c_contiguous)


@given(arrays(shapes()), st.sampled_from([0.05, 0.5]))
def test_away_from_zero_keeps_the_margin_and_the_sign(x, margin):
    y = testing.away_from_zero(x, margin)
    assert (np.abs(y) >= margin).all() and (np.sign(y) == np.where(x >= 0, 1, -1)).all()


def test_device_under_test_and_as_tensors(monkeypatch):
    monkeypatch.delenv("MINITF_TEST_DEVICE", raising=False)
    assert testing.device_under_test() == "cpu"
    monkeypatch.setenv("MINITF_TEST_DEVICE", "cuda:1")
    assert testing.device_under_test() == "cuda:1"
    a, b = as_tensors(np.ones(2, dtype=np.float32), [1, 2], device="cpu")
    assert a.dtype == b.dtype == np.float64 and a.requires_grad and b.requires_grad
    (c,) = as_tensors([1.0], requires_grad=False, device="cpu")
    assert not c.requires_grad


# ---- assert_grad_close on a user-defined op (the README's example) ----------------------

def softplus(x):
    """log(1 + exp(x)), built from minitf ops."""
    return (x.exp() + 1.0).log()


def softplus_by_hand(x, wrong=False):
    """The same op as a new primitive with its own backward (d/dx = sigmoid(x))."""
    xp = mt.backend.get_array_module(x.data)
    out = xp.log1p(xp.exp(x.data))

    def backward(g):
        slope = 1 / (1 + xp.exp(-x.data))
        return (g * (slope if not wrong else slope * slope),)

    return Tensor.from_op(out, (x,), backward)


@given(arrays(shapes()))
def test_assert_grad_close_on_user_ops(device, x):
    assert_grad_close(softplus, x)
    assert_grad_close(softplus_by_hand, x, fast=True)


def test_assert_grad_close_catches_a_wrong_user_backward(device):
    x = np.linspace(-2, 2, 6).reshape(2, 3)
    with pytest.raises(AssertionError, match="gradient mismatch"):
        assert_grad_close(lambda t: softplus_by_hand(t, wrong=True), x)


def test_assert_grad_close_passes_non_float_inputs_through(device):
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    rows = mt.tensor(np.arange(2), device=device)
    ids = mt.tensor(np.array([2, 0]), device=device)
    mask = mt.tensor(np.array([[True, False, True]]), device=device)
    assert_grad_close(lambda t, i, m: t[rows, i].exp() + t.masked_fill(m, 0.0).sum(), x, ids, mask)


# ---- the op-test harness: OpCase and OpTest ------------------------------------------------

def softplus_by_hand_float64(x):
    """softplus_by_hand, but its output is always float64 (a dtype bug)."""
    out = softplus_by_hand(x)
    return Tensor.from_op(out.data.astype(np.float64), (x,), lambda g: (g / (1 + np.exp(-x.data)),))


def softplus_test(op=softplus_by_hand, reference=lambda x: np.logaddexp(0, x), **options):
    cases = shapes().flatmap(testing.float_arrays).map(lambda x: OpCase(op, (x,), reference))
    return OpTest("softplus", cases, checks=("forward", "gradient", "float32", "float64"), **options)


@pytest.mark.parametrize("check", ["forward", "gradient", "float32", "float64"])
def test_op_test_passes_a_correct_op(check, device):
    softplus_test().check(check, device)


@pytest.mark.parametrize("check, broken", [
    ("forward", dict(reference=lambda x: np.logaddexp(0, x) + 1e-6)),
    ("gradient", dict(op=lambda t: softplus_by_hand(t, wrong=True))),
    ("float32", dict(op=softplus_by_hand_float64)),
])
def test_op_test_catches_a_broken_op(check, broken, device):
    with pytest.raises(AssertionError):
        softplus_test(**broken).check(check, device)


def test_op_test_runs_a_fixed_case_once(device):
    calls = []

    def op(t):
        calls.append(t.shape)
        return softplus(t)

    OpTest("fixed", OpCase(op, (np.linspace(-2, 2, 5),), lambda x: np.logaddexp(0, x))).check("forward", device)
    assert calls == [(5,)]


def test_op_test_takes_examples_and_options_per_check(device):
    seen = []
    cases = shapes().map(lambda s: OpCase(lambda t: seen.append(t.shape) or softplus(t), (np.zeros(s),),
                                          lambda x: np.logaddexp(0, x) + 1e-3))
    OpTest("few", cases, examples={"forward": 3}, options={"forward": {"atol": 1e-2}}).check("forward", device)
    assert 1 <= len(seen) <= 3


def test_op_test_refuses_unknown_and_undeclared_checks():
    case = OpCase(softplus, (np.zeros(2),), lambda x: x)
    with pytest.raises(ValueError, match="unknown checks"):
        OpTest("typo", case, checks=("forwrd",))
    with pytest.raises(ValueError, match="does not declare the check 'torch'"):
        OpTest("numpy only", case).check("torch")


def test_op_case_and_op_test_name_a_misuse_instead_of_failing_later():
    x = np.linspace(-2, 2, 6)
    with pytest.raises(TypeError, match="floats must be a tuple of NumPy arrays"):
        OpCase(softplus, x, lambda a: np.logaddexp(0, a))  # (x,) meant
    with pytest.raises(TypeError, match="reference must be a function or None"):
        OpCase(softplus, (x,), np.logaddexp(0, x))
    with pytest.raises(ValueError, match="'softplus' has no reference, which the forward, float32"):
        OpTest("no reference", OpCase(softplus, (x,))).check("forward")
    with pytest.raises(ValueError, match="has no torch, which the torch check"):
        OpCase(softplus, (x,)).check_matches_torch()
    with pytest.raises(TypeError, match="the op must return a minitf Tensor, got ndarray"):
        OpCase(lambda t: np.exp(t.data), (x,), np.exp).check_forward("cpu")
    with pytest.raises(AssertionError, match=r"output shape \(6,\), the reference's \(\)"):
        OpCase(softplus, (x,), lambda a: np.logaddexp(0, a).sum()).check_forward("cpu")
    with pytest.raises(TypeError, match="checks a tuple of names"):
        OpTest("a string", OpCase(softplus, (x,), np.exp), checks="forward")
    with pytest.raises(TypeError, match="cases must be an OpCase or a hypothesis strategy"):
        OpTest("a list", [OpCase(softplus, (x,), np.exp)])


def test_torch_check_catches_a_wrong_counterpart():
    torch = pytest.importorskip("torch")
    x = np.linspace(-2, 2, 6).reshape(2, 3)
    OpCase(softplus, (x,), torch=torch.nn.functional.softplus).check_matches_torch()
    with pytest.raises(AssertionError):
        OpCase(softplus, (x,), torch=torch.sigmoid).check_matches_torch()


def test_module_docstring_example_runs():
    """minitf.testing's usage example, as a user would paste it into a test file."""
    doc = testing.__doc__
    code = textwrap.dedent(doc[doc.index("from a test:\n") + len("from a test:\n"):doc.index("A quick gradient check")])
    assert "SOFTPLUS.check(check)" in code
    namespace: dict = {}
    exec(compile(code, "<minitf.testing docstring>", "exec"), namespace)
    for check in namespace["SOFTPLUS"].checks:
        try:
            namespace["test_softplus"](check)
        except pytest.skip.Exception:
            assert check == "cupy"
