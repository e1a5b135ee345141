"""gradcheck itself: it passes correct backwards and catches wrong ones, naming the worst element."""
import re

import numpy as np
import pytest
from hypothesis import given, settings

import minitf as mt
from minitf import Tensor
from minitf.testing import arrays, shapes


def square(x, wrong_at=None):
    """x ** 2 by hand; with `wrong_at`, its backward is off by 1 at that one element."""
    def backward(g):
        grad = 2 * x.data * g
        if wrong_at is not None:
            grad = grad.copy()
            grad[wrong_at] += 1.0
        return (grad,)

    return Tensor.from_op(x.data ** 2, (x,), backward)


def square_missing_factor_two(x):
    return Tensor.from_op(x.data ** 2, (x,), lambda g: (x.data * g,))


def softmax(x, correct=True):
    """Softmax over the last axis. Its wrong backward is right only for a constant cotangent."""
    xp = mt.backend.get_array_module(x.data)
    e = xp.exp(x.data - x.data.max(axis=-1, keepdims=True))
    s = e / e.sum(axis=-1, keepdims=True)

    def backward(g):
        if correct:
            return (s * (g - (g * s).sum(axis=-1, keepdims=True)),)
        return (s * (g - g.mean(axis=-1, keepdims=True)),)  # zero for g = ones, like the truth

    return Tensor.from_op(s, (x,), backward)


def leaf(array, device="cpu"):
    return mt.tensor(np.asarray(array, dtype=np.float64), requires_grad=True, device=device)


@pytest.mark.parametrize("fast", [False, True])
@settings(max_examples=20)
@given(x=arrays(shapes(), 0.5, 2.0))
def test_passes_a_correct_backward(device, fast, x):
    assert mt.gradcheck(square, [leaf(x, device)], fast=fast) is True
    assert mt.gradcheck(softmax, [leaf(x, device)], fast=fast) is True


@pytest.mark.parametrize("fast", [False, True])
@settings(max_examples=20)
@given(x=arrays(shapes(), 0.5, 2.0))
def test_fails_a_wrong_backward(device, fast, x):
    with pytest.raises(mt.GradcheckError, match="input 0"):
        mt.gradcheck(square_missing_factor_two, [leaf(x, device)], fast=fast)


@pytest.mark.parametrize("index", [(0, 0), (1, 2), (2, 1)])
def test_error_names_the_worst_element(index):
    x = leaf(np.linspace(0.5, 2.0, 9).reshape(3, 3))
    with pytest.raises(mt.GradcheckError) as info:
        mt.gradcheck(lambda t: square(t, wrong_at=index), [x])
    message = str(info.value)
    assert f"index {index}" in message
    assert re.search(r"analytic .* numeric .*1 of 9 elements off", message)


def test_fast_mode_reports_the_projection():
    with pytest.raises(mt.GradcheckError, match=r"input 1 .*v\^T J u"):
        mt.gradcheck(lambda a, b: a * square(b, wrong_at=(0,)), [leaf([1.0, 2.0]), leaf([0.5, 1.5])],
                     fast=True)


@pytest.mark.parametrize("fast", [False, True])
def test_random_cotangent_catches_a_wrong_softmax_backward(fast):
    """Softmax rows sum to 1, so through a plain .sum() every backward looks right."""
    x = leaf(np.random.default_rng(0).standard_normal((3, 4)))
    assert mt.gradcheck(lambda t: softmax(t, correct=False).sum(), [x], fast=fast)  # fooled
    with pytest.raises(mt.GradcheckError):
        mt.gradcheck(lambda t: softmax(t, correct=False), [x], fast=fast)  # caught


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input requires grad"):
        mt.gradcheck(lambda t: t * 2.0, [mt.tensor(np.ones(3))])


def test_fn_must_return_tensors():
    with pytest.raises(TypeError, match="must return tensors"):
        mt.gradcheck(lambda t: t.numpy(), [leaf([1.0])])


def test_multiple_outputs_and_non_tensor_arguments():
    x, y = leaf([[1.0, 2.0], [3.0, 4.0]]), leaf([0.5, -0.5])
    mask = np.array([True, False])

    def fn(a, b, m, scale):
        return [(a * b).masked_fill(m, 0.0) * scale, a.sum(axis=0), b.exp()]

    assert mt.gradcheck(fn, [x, y, mask, 3])
    with pytest.raises(mt.GradcheckError, match="input 1"):
        mt.gradcheck(lambda a, b: [a * 2.0, square_missing_factor_two(b)], [x, y])


def test_only_inputs_that_require_grad_are_checked():
    def product_wrong_for_b(a, b):
        return Tensor.from_op(a.data * b.data, (a, b), lambda g: (g * b.data, g * 999.0))

    a = leaf([3.0, 4.0])
    assert mt.gradcheck(product_wrong_for_b, [a, mt.tensor(np.array([1.0, 2.0]))])
    with pytest.raises(mt.GradcheckError, match="input 1"):
        mt.gradcheck(product_wrong_for_b, [a, leaf([1.0, 2.0])])


def test_leaves_the_callers_tensors_alone():
    x = mt.tensor(np.array([0.5, 1.5], dtype=np.float32), requires_grad=True)
    before = x.numpy().copy()
    assert mt.gradcheck(lambda t: t.exp(), [x])  # checked in float64
    assert x.grad is None and x.dtype == np.float32
    np.testing.assert_array_equal(x.numpy(), before)


@pytest.mark.parametrize("fill", [-1e9, -np.inf])
def test_large_constant_outputs_do_not_swamp_the_difference(fill):
    x = leaf(np.linspace(-1, 1, 12).reshape(3, 4))
    mask = np.arange(4) % 2 == 0
    assert mt.gradcheck(lambda t: t.masked_fill(mask, fill), [x])
    assert mt.gradcheck(lambda t: t.masked_fill(mask, fill), [x], fast=True)


def test_tolerances_are_honoured():
    x = leaf([1.0, 2.0])

    def slightly_off(t):  # relative error 1e-4 in the gradient
        return Tensor.from_op(t.data ** 2, (t,), lambda g: (2 * t.data * g * (1 + 1e-4),))

    assert mt.gradcheck(slightly_off, [x])  # within rtol=1e-3
    with pytest.raises(mt.GradcheckError):
        mt.gradcheck(slightly_off, [x], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, value", [("eps", np.nan), ("eps", np.inf), ("eps", 0.0), ("eps", -1e-6),
                                         ("atol", np.nan), ("atol", np.inf), ("atol", -1e-5),
                                         ("rtol", np.nan), ("rtol", -np.inf), ("rtol", -1e-3)])
@pytest.mark.parametrize("fast", [False, True])
def test_steps_and_tolerances_are_validated(name, value, fast):
    """A NaN tolerance made every comparison false, so a wrong backward passed; eps=0 divided by 0."""
    with pytest.raises(ValueError, match=rf"gradcheck: {name} must be finite and >=? 0, got {value!r}"):
        mt.gradcheck(square_missing_factor_two, [leaf([1.0, 2.0])], fast=fast, **{name: value})


def test_steps_and_tolerances_must_be_numbers():
    with pytest.raises(TypeError, match="gradcheck: atol must be a number, got '1e-5'"):
        mt.gradcheck(square, [leaf([1.0])], atol="1e-5")
    assert mt.gradcheck(square, [leaf([1.0, 2.0])], eps=1e-6, atol=0, rtol=1e-3)  # 0 is a tolerance


def test_a_single_tensor_is_one_input():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    seen = []

    def record(t):
        seen.append(t.shape)
        return square(t)

    assert mt.gradcheck(record, x) is True
    assert set(seen) == {(2, 2)}  # never its rows
    with pytest.raises(mt.GradcheckError, match=r"input 0 \(shape \(2, 2\)\)"):
        mt.gradcheck(square_missing_factor_two, x)


@pytest.mark.parametrize("inputs", [np.ones(3), 1.5, "x", None, {"a": 1}])
def test_inputs_must_be_a_tensor_or_a_sequence(inputs):
    with pytest.raises(TypeError, match="gradcheck: inputs must be a Tensor or a list or tuple"):
        mt.gradcheck(square, inputs)
