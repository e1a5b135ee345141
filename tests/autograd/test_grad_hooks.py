"""Tensor.register_post_accumulate_grad_hook: fires once per backward with the complete gradient."""
import numpy as np
import pytest

import minitf as mt


def test_hook_sees_the_complete_gradient_of_a_leaf_used_twice():
    w = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.copy()))
    ((w * 3.0).sum() + (w * w).sum()).backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 3.0 + 2 * w.data)


def test_hooks_fire_during_backward_last_layer_first():
    x = mt.tensor(np.ones((2, 3)))
    w1 = mt.tensor(np.full((3, 3), 0.5), requires_grad=True)
    w2 = mt.tensor(np.full((3, 1), 0.5), requires_grad=True)
    order = []
    for name, w in (("w1", w1), ("w2", w2)):
        w.register_post_accumulate_grad_hook(lambda t, name=name: order.append((name, t.grad is not None)))
    ((x @ w1).relu() @ w2).sum().backward()
    assert order == [("w2", True), ("w1", True)]


def test_hook_sees_gradient_added_to_an_earlier_one_and_can_be_removed():
    w = mt.tensor(np.array([1.0]), requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(float(t.grad[0])))
    (w * 2.0).sum().backward()
    (w * 2.0).sum().backward()
    handle.remove()
    (w * 2.0).sum().backward()
    assert seen == [2.0, 4.0] and w.grad[0] == 6.0


def test_hook_on_a_non_leaf_is_an_error():
    w = mt.tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda t: None)
