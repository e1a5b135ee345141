"""Test your own ops as minitf tests its own: hypothesis strategies, `assert_grad_close`, and a
harness (`OpCase`, `OpTest`) that runs the generic checks on an op described once.

Describe how to draw calls of your op, what they should equal, and which checks apply
(`minitf.testing.CHECKS`); then run each check from a test:

    import numpy as np
    import pytest
    from minitf.testing import OpCase, OpTest, float_arrays, shapes

    def softplus(x):  # your op
        return (x.exp() + 1.0).log()

    SOFTPLUS = OpTest("softplus", shapes().flatmap(float_arrays).map(
        lambda x: OpCase(softplus, (x,), reference=lambda x: np.logaddexp(0, x))))

    @pytest.mark.parametrize("check", SOFTPLUS.checks)
    def test_softplus(check):
        SOFTPLUS.check(check)  # forward, gradient, float32, float64 (cupy: skips without a GPU)

A quick gradient check without the harness:

    from hypothesis import given
    from minitf.testing import arrays, shapes, assert_grad_close

    @given(arrays(shapes()))
    def test_my_op(x):
        assert_grad_close(my_op, x)

Needs `hypothesis` (`pip install ".[test]"` from the minitf checkout); the "torch" check needs
PyTorch. Arrays are float64 with bounded values, so that finite differences in float64 are accurate.
"""
from .cases import OpCase
from .gradients import as_tensors, assert_grad_close, device_under_test
from .optest import CHECKS, NUMPY_CHECKS, OpTest, op_tests
from .strategies import (MAX_DIMS, MAX_SIDE, arrays, away_from_zero, axes, broadcastable_shapes, distinct_values,
                         float_arrays, masks, shapes)

__all__ = ["CHECKS", "MAX_DIMS", "MAX_SIDE", "NUMPY_CHECKS", "OpCase", "OpTest", "arrays", "as_tensors",
           "assert_grad_close", "away_from_zero", "axes", "broadcastable_shapes", "device_under_test",
           "distinct_values", "float_arrays", "masks", "op_tests", "shapes"]
