"""minitf.scatter: scatter-adds with repeated indices."""
import numpy as np

from minitf import scatter


def test_scatter_add_adds_repeated_indices():
    target = np.zeros(3)
    scatter.scatter_add(target, np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(target, [4.0, 0.0, 2.0])
